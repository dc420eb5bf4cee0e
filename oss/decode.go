package oss

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/ossjobwatch/ossjobwatch/job"
)

// The XML shapes below follow the ListJobs and DescribeJob references.
// Numbers and times are decoded as text so that a bad value is reported
// with the element it came from; elements not named here are ignored.

type xmlListJobsResult struct {
	XMLName   xml.Name `xml:"ListJobsResult"`
	NextToken string   `xml:"NextToken"`
	Jobs      []xmlJob `xml:"Jobs>JobListDescriptor"`
}

type xmlDescribeJobResult struct {
	XMLName xml.Name `xml:"DescribeJobResult"`
	Job     *xmlJob  `xml:"Job"`
}

type xmlJob struct {
	CreationTime    string       `xml:"CreationTime"`
	Description     string       `xml:"Description"`
	JobID           string       `xml:"JobId"`
	Operation       xmlOperation `xml:"Operation"`
	Priority        string       `xml:"Priority"`
	ProgressSummary struct {
		Total     string `xml:"TotalNumberOfTasks"`
		Succeeded string `xml:"NumberOfTasksSucceeded"`
		Failed    string `xml:"NumberOfTasksFailed"`
		// ElapsedTimeInActiveSeconds sits under Timers in the API page's
		// example and directly here in Alibaba's generated SDK models.
		Elapsed string `xml:"ElapsedTimeInActiveSeconds"`
		Timers  struct {
			Elapsed string `xml:"ElapsedTimeInActiveSeconds"`
		} `xml:"Timers"`
	} `xml:"ProgressSummary"`
	Status          string `xml:"Status"`
	TerminationDate string `xml:"TerminationDate"`

	// DescribeJob only.
	ConfirmationRequired string `xml:"ConfirmationRequired"`
	FailureReasons       []struct {
		Code   string `xml:"FailureCode"`
		Reason string `xml:"FailureReason"`
	} `xml:"FailureReasons>JobFailure"`
	StatusUpdateReason string `xml:"StatusUpdateReason"`
	RoleArn            string `xml:"RoleArn"`
}

// xmlOperation is a plain string in ListJobs and may be a structure in
// DescribeJob (<Operation><PutObjectTagging>…</PutObjectTagging></Operation>):
// either way the operation's name is what we keep.
type xmlOperation struct {
	Text  string `xml:",chardata"`
	Inner []struct {
		XMLName xml.Name
	} `xml:",any"`
}

func (o xmlOperation) name() string {
	if len(o.Inner) > 0 {
		return o.Inner[0].XMLName.Local
	}
	return strings.TrimSpace(o.Text)
}

// DecodeListJobs decodes a ListJobs response body. Any error rejects the
// whole page: a page is used entirely or not at all.
func DecodeListJobs(body []byte) (*Page, error) {
	var r xmlListJobsResult
	if !scanListJobs(body, &r) {
		r = xmlListJobsResult{}
		if err := unmarshal(body, &r); err != nil {
			return nil, err
		}
	}
	return listJobsPage(&r)
}

// decodeListJobsXML is DecodeListJobs with encoding/xml alone, the
// reference its fast path is tested against.
func decodeListJobsXML(body []byte) (*Page, error) {
	var r xmlListJobsResult
	if err := unmarshal(body, &r); err != nil {
		return nil, err
	}
	return listJobsPage(&r)
}

func listJobsPage(r *xmlListJobsResult) (*Page, error) {
	page := &Page{NextToken: strings.TrimSpace(r.NextToken), Jobs: make([]job.Job, 0, len(r.Jobs))}
	// A page repeats a handful of operations and statuses a thousand times;
	// sharing one string for each keeps a 100,000-job listing megabytes
	// smaller.
	intern := map[string]string{}
	for i := range r.Jobs {
		j, err := r.Jobs[i].toJob()
		if err != nil {
			return nil, fmt.Errorf("JobListDescriptor %d: %w", i+1, err)
		}
		j.Operation = internString(intern, j.Operation)
		j.Status = job.Status(internString(intern, string(j.Status)))
		page.Jobs = append(page.Jobs, j)
	}
	return page, nil
}

func internString(m map[string]string, s string) string {
	if v, ok := m[s]; ok {
		return v
	}
	m[s] = s
	return s
}

// DecodeDescribeJob decodes a DescribeJob response body.
func DecodeDescribeJob(body []byte) (*job.Detail, error) {
	var r xmlDescribeJobResult
	if err := unmarshal(body, &r); err != nil {
		return nil, err
	}
	if r.Job == nil {
		return nil, errors.New("no Job element in DescribeJobResult")
	}
	j, err := r.Job.toJob()
	if err != nil {
		return nil, fmt.Errorf("element Job: %w", err)
	}
	d := &job.Detail{
		Job:                j,
		StatusUpdateReason: r.Job.StatusUpdateReason,
		RoleARN:            r.Job.RoleArn,
		FailureReasons:     []job.FailureReason{},
	}
	if v := strings.TrimSpace(r.Job.ConfirmationRequired); v != "" {
		if d.ConfirmationRequired, err = strconv.ParseBool(v); err != nil {
			return nil, fmt.Errorf("element Job: ConfirmationRequired: %q is not a boolean", v)
		}
	}
	for _, f := range r.Job.FailureReasons {
		if f.Code == "" && f.Reason == "" {
			continue // some answers hold one empty <JobFailure/> for a job that did not fail
		}
		d.FailureReasons = append(d.FailureReasons, job.FailureReason{Code: f.Code, Reason: f.Reason})
	}
	return d, nil
}

// unmarshal decodes exactly one root element and refuses trailing content,
// which is how a truncated or spliced body often shows itself.
func unmarshal(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return errors.New("empty body")
	}
	dec := xml.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("xml: %w", err)
	}
	for {
		tok, err := dec.Token()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("xml after root element: %w", err)
		}
		switch t := tok.(type) {
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return errors.New("xml: text after root element")
			}
		case xml.Comment, xml.ProcInst:
		default:
			return errors.New("xml: content after root element")
		}
	}
}

// toJob builds a job from one descriptor. JobId is opaque and kept byte
// for byte, spaces included; a missing or blank one comes back empty.
// Malformed values (text where a number must be) reject the descriptor and
// so the page; well-formed values that are out of range do not: the field
// stays zero and an anomaly keeps the raw text (see numParser).
func (x *xmlJob) toJob() (job.Job, error) {
	j := job.Job{
		ID:          x.JobID,
		Operation:   x.Operation.name(),
		Description: x.Description,
		Status:      job.Status(strings.TrimSpace(x.Status)),
	}
	if strings.TrimSpace(j.ID) == "" {
		// An empty element and a pretty-printed one cannot be told apart:
		// a blank id is treated as none. A job without an id is well-formed
		// XML with an odd value: it does not reject the page (which would
		// block the target for as long as OSS lists it) but comes back with
		// an empty ID, which the sweep leaves out and names (diff.Clean).
		j.ID = ""
		return j, nil
	}
	if j.Status == "" {
		// Likewise: the sweep leaves a job without a status out, and names
		// it (diff.Clean), instead of the page failing on every sweep.
		return j, nil
	}
	p := &numParser{}
	j.Priority = p.int("Priority", x.Priority, true)
	j.Tasks.Total = p.int("TotalNumberOfTasks", x.ProgressSummary.Total, false)
	j.Tasks.Succeeded = p.int("NumberOfTasksSucceeded", x.ProgressSummary.Succeeded, false)
	j.Tasks.Failed = p.int("NumberOfTasksFailed", x.ProgressSummary.Failed, false)
	elapsed := x.ProgressSummary.Timers.Elapsed
	if strings.TrimSpace(elapsed) == "" {
		elapsed = x.ProgressSummary.Elapsed
	}
	j.ElapsedActiveSeconds = p.int("ElapsedTimeInActiveSeconds", elapsed, false)
	j.CreationTime = p.time("CreationTime", x.CreationTime)
	j.TerminationTime = p.time("TerminationDate", x.TerminationDate)
	if p.err != nil {
		return j, fmt.Errorf("job %q: %w", j.ID, p.err)
	}
	j.Anomalies = p.anomalies
	return j, nil
}

// Bounds of the times a descriptor may hold. Every time the decoder returns
// lies in year 0 to 9999 UTC, which RFC 3339 and encoding/json can write.
var (
	// maxUnixSeconds is 9999-12-31T23:59:59Z.
	maxUnixSeconds = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC).Unix()
	// Milliseconds are accepted from 2000 to 2200. Every such value is more
	// than maxUnixSeconds, so a value read as milliseconds could never have
	// been a valid number of seconds: the reading is unambiguous.
	minUnixMillis = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	maxUnixMillis = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
)

// numParser parses optional numeric elements. A value that is not a number,
// or one out of range, is an anomaly, and the field is left zero: one odd
// descriptor must not fail its page on every sweep. (err is kept for
// errors that must still reject the page; none does today.)
type numParser struct {
	err       error
	anomalies []job.Anomaly
}

func (p *numParser) anomaly(name, raw, reason string) {
	p.anomalies = append(p.anomalies, job.Anomaly{Field: name, Raw: truncate(raw, maxAnomalyRaw), Reason: reason})
}

// maxAnomalyRaw bounds the raw text an anomaly keeps: every out-of-range
// number is short, so only a pathological one is cut.
const maxAnomalyRaw = 256

// int reads a decimal integer. More digits than 64 bits hold is an
// anomaly, and so is a negative value unless signed allows it.
func (p *numParser) int(name, raw string, signed bool) int64 {
	s := strings.TrimSpace(raw)
	if s == "" || p.err != nil {
		return 0
	}
	n, err := strconv.ParseInt(s, 10, 64)
	switch {
	case errors.Is(err, strconv.ErrRange):
		p.anomaly(name, raw, "integer out of 64-bit range")
		return 0
	case err != nil:
		p.anomaly(name, raw, "not an integer")
		return 0
	case n < 0 && !signed:
		p.anomaly(name, raw, "negative")
		return 0
	}
	return n
}

// time reads integer Unix seconds, tolerating ISO 8601; 0 and absence are
// the zero time. An integer past year 9999 as seconds that lands between
// 2000 and 2200 as milliseconds is read as milliseconds. Any other integer
// past year 9999, a negative one, or an ISO 8601 time outside years 0 to
// 9999 once in UTC is an anomaly, and the time stays zero.
func (p *numParser) time(name, raw string) time.Time {
	s := strings.TrimSpace(raw)
	if s == "" || s == "0" || p.err != nil {
		return time.Time{}
	}
	if isInteger(s) {
		n, err := strconv.ParseInt(s, 10, 64)
		switch {
		case err != nil: // only ErrRange: s is all digits
			p.anomaly(name, raw, "integer out of 64-bit range")
		case n < 0:
			p.anomaly(name, raw, "negative Unix time")
		case n == 0:
		case n <= maxUnixSeconds:
			return time.Unix(n, 0).UTC()
		case n >= minUnixMillis && n < maxUnixMillis:
			return time.UnixMilli(n).UTC()
		default:
			p.anomaly(name, raw, "past year 9999 as Unix seconds and not Unix milliseconds from 2000 to 2200")
		}
		return time.Time{}
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05Z0700", "2006-01-02T15:04:05"} {
		if t, err := time.Parse(layout, s); err == nil {
			t = t.UTC()
			if y := t.Year(); y < 0 || y > 9999 {
				p.anomaly(name, raw, "outside years 0 to 9999 in UTC")
				return time.Time{}
			}
			return t
		}
	}
	p.anomaly(name, raw, "neither Unix seconds nor ISO 8601")
	return time.Time{}
}

// isInteger reports whether s is an optional sign followed by ASCII digits.
func isInteger(s string) bool {
	if s != "" && (s[0] == '+' || s[0] == '-') {
		s = s[1:]
	}
	if s == "" {
		return false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

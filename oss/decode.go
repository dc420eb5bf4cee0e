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
	if err := unmarshal(body, &r); err != nil {
		return nil, err
	}
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

func (x *xmlJob) toJob() (job.Job, error) {
	j := job.Job{
		ID:          strings.TrimSpace(x.JobID),
		Operation:   x.Operation.name(),
		Description: x.Description,
		Status:      job.Status(strings.TrimSpace(x.Status)),
	}
	if j.ID == "" {
		return j, errors.New("no JobId")
	}
	if j.Status == "" {
		return j, fmt.Errorf("job %s: no Status", j.ID)
	}
	p := &numParser{}
	j.Priority = p.int("Priority", x.Priority)
	j.Tasks.Total = p.int("TotalNumberOfTasks", x.ProgressSummary.Total)
	j.Tasks.Succeeded = p.int("NumberOfTasksSucceeded", x.ProgressSummary.Succeeded)
	j.Tasks.Failed = p.int("NumberOfTasksFailed", x.ProgressSummary.Failed)
	elapsed := x.ProgressSummary.Timers.Elapsed
	if strings.TrimSpace(elapsed) == "" {
		elapsed = x.ProgressSummary.Elapsed
	}
	j.ElapsedActiveSeconds = p.int("ElapsedTimeInActiveSeconds", elapsed)
	j.CreationTime = p.time("CreationTime", x.CreationTime)
	j.TerminationTime = p.time("TerminationDate", x.TerminationDate)
	if p.err != nil {
		return j, fmt.Errorf("job %s: %w", j.ID, p.err)
	}
	return j, nil
}

// numParser parses optional numeric elements, keeping the first error.
type numParser struct{ err error }

func (p *numParser) int(name, s string) int64 {
	s = strings.TrimSpace(s)
	if s == "" || p.err != nil {
		return 0
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		p.err = fmt.Errorf("%s: %q is not an integer", name, truncate(s, 40))
	}
	return n
}

// time reads integer Unix seconds, tolerating ISO 8601; 0 and absence are
// the zero time.
func (p *numParser) time(name, s string) time.Time {
	s = strings.TrimSpace(s)
	if s == "" || s == "0" || p.err != nil {
		return time.Time{}
	}
	if secs, err := strconv.ParseInt(s, 10, 64); err == nil {
		if secs <= 0 {
			return time.Time{}
		}
		return time.Unix(secs, 0).UTC()
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05Z0700", "2006-01-02T15:04:05"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC()
		}
	}
	p.err = fmt.Errorf("%s: %q is neither Unix seconds nor ISO 8601", name, truncate(s, 40))
	return time.Time{}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

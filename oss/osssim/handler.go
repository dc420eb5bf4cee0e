package osssim

import (
	"cmp"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ossjobwatch/ossjobwatch/job"
)

const (
	opListJobs    = "ListJobs"
	opDescribeJob = "DescribeJob"
	opUnknown     = "Unknown"

	// ecNoSuchJob is the EC OSS gives an unknown or invalid job id.
	ecNoSuchJob = "0017-00001002"
)

// ServeHTTP answers one request: authentication first, then any injected
// fault, then the operation. Truncate faults abort the connection by
// panicking with http.ErrAbortHandler, which net/http servers (and so
// httptest) handle quietly.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	now := s.now()
	reqID := s.nextRequestID()
	h := w.Header()
	h.Set("x-oss-request-id", reqID)
	h.Set("Server", "AliyunOSS")
	// The SDK corrects its clock from the Date of a RequestTimeTooSkewed
	// answer, so Date must come from the simulator's clock.
	h.Set("Date", now.UTC().Format(http.TimeFormat))
	rec := record{op: operationOf(r)}
	defer func() {
		s.stats.add(rec)
		// Only public request parts are logged: never a header, a query
		// value or anything derived from a secret.
		s.log.LogAttrs(r.Context(), slog.LevelDebug, "oss request", slog.String("method", r.Method),
			slog.String("op", rec.op), slog.Int("status", rec.status), slog.String("code", rec.code),
			slog.String("request_id", reqID), slog.Bool("fault", rec.injected), slog.Duration("duration", time.Since(start)))
	}()

	if e := s.authenticate(r, now); e != nil {
		rec.auth = true
		s.writeError(w, r, reqID, e, &rec)
		return
	}
	p := s.nextPlan()
	rec.injected = p.injected
	if p.delay > 0 {
		rec.slowed = true
		t := time.NewTimer(p.delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			rec.status = 499
			return
		}
	}
	if p.err != nil {
		s.writeError(w, r, reqID, p.err, &rec)
		return
	}
	body, e := s.dispatch(r, rec.op)
	if e != nil {
		s.writeError(w, r, reqID, e, &rec)
		return
	}
	if tok := r.URL.Query().Get("continuation-token"); p.repeat && tok != "" {
		body = nextTokenPattern.ReplaceAll(body, []byte("<NextToken>"+xmlEscape(tok)+"</NextToken>"))
	}
	h.Set("Content-Type", "application/xml")
	rec.status = http.StatusOK
	switch {
	case p.truncate:
		rec.truncated = true
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body[:len(body)/2])
		_ = http.NewResponseController(w).Flush()
		panic(http.ErrAbortHandler)
	case p.malformed:
		rec.malformed = true
		// Half a document closed by a tag that matches nothing: no XML
		// parser can accept it, wherever the cut falls.
		body = append(body[:len(body)/2:len(body)/2], "</Broken>\n"...)
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

var nextTokenPattern = regexp.MustCompile(`<NextToken>[^<]*</NextToken>`)

func xmlEscape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// operationOf names the operation a request is for, before any validation.
func operationOf(r *http.Request) string {
	q := r.URL.Query()
	switch {
	case !q.Has("batchJob"):
		return opUnknown
	case q.Has("batchJobId"):
		return opDescribeJob
	}
	return opListJobs
}

func (s *Simulator) writeError(w http.ResponseWriter, r *http.Request, reqID string, e *apiError, rec *record) {
	host := cmp.Or(r.Host, "oss-"+s.cfg.Region+".aliyuncs.com")
	body := e.body(reqID, host)
	h := w.Header()
	h.Set("Content-Type", "application/xml")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if e.ec != "" {
		h.Set("x-oss-ec", e.ec)
	}
	if e.retryAfter > 0 {
		h.Set("Retry-After", strconv.FormatInt(max(1, int64((e.retryAfter+time.Second-1)/time.Second)), 10))
	}
	if r.Method == http.MethodHead {
		// A HEAD answer has no body; OSS sends the error document here.
		h.Set("x-oss-err", base64.StdEncoding.EncodeToString(body))
	}
	if e.status == http.StatusMethodNotAllowed {
		h.Set("Allow", http.MethodGet)
	}
	w.WriteHeader(e.status)
	_, _ = w.Write(body)
	rec.status, rec.code = e.status, e.code
}

func internalError() *apiError {
	return &apiError{status: http.StatusInternalServerError, code: "InternalError",
		message: "We encountered an internal error. Please try again."}
}

func invalidArgument(name, value, message, ec string) *apiError {
	if len(value) > 128 {
		value = value[:128] + "…"
	}
	return &apiError{status: http.StatusBadRequest, code: "InvalidArgument", message: message, ec: ec,
		extra: [][2]string{{"ArgumentName", name}, {"ArgumentValue", value}}}
}

// dispatch validates the request and returns the body of a successful answer.
func (s *Simulator) dispatch(r *http.Request, op string) ([]byte, *apiError) {
	if r.Method != http.MethodGet {
		return nil, &apiError{status: http.StatusMethodNotAllowed, code: "MethodNotAllowed",
			message: "The specified method is not allowed against this resource: ListJobs and DescribeJob are GET requests."}
	}
	if r.URL.Path != "/" {
		return nil, &apiError{
			status:  http.StatusNotFound,
			code:    "NoSuchBucket",
			message: "The specified bucket does not exist. Batch Operations calls go to the regional endpoint's path /.",
			ec:      "0015-00000101",
			extra:   [][2]string{{"BucketName", strings.Trim(r.URL.Path, "/")}},
		}
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, invalidArgument("query", r.URL.RawQuery, "The query string is not properly encoded: "+err.Error()+".", "0017-00000100")
	}
	switch op {
	case opListJobs:
		return s.listJobs(q)
	case opDescribeJob:
		return s.describeJob(q)
	}
	return nil, invalidArgument("batchJob", "", "This endpoint serves only Batch Operations requests: the batchJob sub-resource is required.", "0017-00000100")
}

func (s *Simulator) listJobs(q url.Values) ([]byte, *apiError) {
	maxKeys := 100
	if q.Has("max-keys") {
		v := q.Get("max-keys")
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return nil, invalidArgument("max-keys", v, fmt.Sprintf("max-keys must be an integer from 1 to 1000, got %q.", v), "0017-00000103")
		}
		maxKeys = n
	}
	var want []job.Status
	if raw := q.Get("batchJobStatuses"); raw != "" {
		for _, p := range strings.Split(raw, "|") {
			st := job.Status(p)
			if !st.Known() {
				return nil, invalidArgument("batchJobStatuses", raw, fmt.Sprintf("batchJobStatuses holds %q, which is not a job status. Valid values: %s.", p, statusList()), "0017-00000104")
			}
			if !slices.Contains(want, st) {
				want = append(want, st)
			}
		}
		slices.Sort(want)
	}
	filter := joinStatuses(want)
	var after string
	resume := q.Has("continuation-token")
	if resume {
		tok := q.Get("continuation-token")
		id, err := s.decodeToken(filter, tok)
		if err != nil {
			return nil, invalidArgument("continuation-token", tok, "continuation-token "+err.Error()+".", "0017-00000105")
		}
		after = id
	}
	match := func(e *entry) bool { return len(want) == 0 || slices.Contains(want, e.d.Status) }

	s.mu.RLock()
	defer s.mu.RUnlock()
	ids := s.world.ids
	i := 0
	if resume {
		var found bool
		if i, found = slices.BinarySearch(ids, after); found {
			i++
		}
	}
	page := make([]*entry, 0, min(maxKeys, len(ids)-i))
	for ; i < len(ids) && len(page) < maxKeys; i++ {
		if e := s.world.jobs[ids[i]]; match(e) {
			page = append(page, e)
		}
	}
	more := false
	for ; i < len(ids) && !more; i++ {
		more = match(s.world.jobs[ids[i]])
	}

	x := newXMLWriter()
	x.b.Grow(len(page) * 800)
	x.open("ListJobsResult")
	if more {
		x.leaf("NextToken", s.encodeToken(filter, page[len(page)-1].d.ID))
	}
	x.open("Jobs")
	for _, e := range page {
		x.open("JobListDescriptor")
		writeDescriptor(x, &e.d, ShapeOf(e.d.ID), s.cfg.UnknownElements, false)
		x.close("JobListDescriptor")
	}
	x.close("Jobs")
	x.close("ListJobsResult")
	return x.bytes(), nil
}

func (s *Simulator) describeJob(q url.Values) ([]byte, *apiError) {
	id := q.Get("batchJobId")
	if id == "" {
		return nil, invalidArgument("batchJobId", id, "batchJobId must not be empty.", ecNoSuchJob)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.world.jobs[id]
	if !ok {
		return nil, &apiError{status: http.StatusNotFound, code: "NoSuchJob",
			message: "The specified job does not exist.", ec: ecNoSuchJob}
	}
	x := newXMLWriter()
	x.open("DescribeJobResult")
	x.open("Job")
	writeDescriptor(x, &e.d, ShapeOf(id), s.cfg.UnknownElements, true)
	x.close("Job")
	x.close("DescribeJobResult")
	return x.bytes(), nil
}

func joinStatuses(ss []job.Status) string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = string(s)
	}
	return strings.Join(parts, "|")
}

func statusList() string { return strings.ReplaceAll(joinStatuses(job.Statuses), "|", ", ") }

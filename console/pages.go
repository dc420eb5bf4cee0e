package console

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ossjobwatch/ossjobwatch/job"
	"github.com/ossjobwatch/ossjobwatch/store"
)

// page is what the layout shows around a page's content.
type page struct {
	Title   string
	Nav     string // overview, jobs or live: the tab to highlight
	Now     when
	Content any
	// Script includes console.js (the live view).
	Script bool
}

func (c *Console) page(_ *http.Request, nav, title string, content any) page {
	return page{Title: title, Nav: nav, Now: c.when(c.cfg.NowFunc()), Content: content}
}

// overviewPage is the overview's content.
type overviewPage struct {
	Targets       []targetView
	Attention     []jobView
	AttentionMore bool
	OutboxPending int64
	OutboxOldest  when
}

type targetView struct {
	Name   string
	URL    string
	Total  int
	Counts []countView
	Sweep  *sweepView
}

type countView struct {
	Status string
	Class  string
	Jobs   int
	URL    string
}

type sweepView struct {
	store.LastSweep
	Started      when
	Took         string
	LastComplete when
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request) {
	o, err := c.cfg.Reader.Overview(r.Context())
	if err != nil {
		c.fail(w, r, http.StatusInternalServerError, "The overview could not be read from the database.", err)
		return
	}
	counts, err := c.jobCounts(r.Context())
	if err != nil {
		c.fail(w, r, http.StatusInternalServerError, "The jobs could not be counted.", err)
		return
	}
	byTarget := map[string]*targetView{}
	var p overviewPage
	target := func(name string) *targetView {
		if t, ok := byTarget[name]; ok {
			return t
		}
		p.Targets = append(p.Targets, targetView{Name: name, URL: jobsURL(url.Values{"target": {name}})})
		t := &p.Targets[len(p.Targets)-1]
		byTarget[name] = t
		return t
	}
	for _, name := range o.Targets {
		target(name)
	}
	for _, n := range counts {
		target(n.Target)
	}
	// Pointers into p.Targets are stable from here: no more appends.
	byTarget = map[string]*targetView{}
	for i := range p.Targets {
		byTarget[p.Targets[i].Name] = &p.Targets[i]
	}
	for _, n := range counts {
		t := byTarget[n.Target]
		t.Total += n.Jobs
		t.Counts = append(t.Counts, countView{Status: n.Status, Class: statusClass(n.Status), Jobs: n.Jobs,
			URL: jobsURL(url.Values{"target": {n.Target}, "status": {n.Status}})})
	}
	for i := range p.Targets {
		slices.SortStableFunc(p.Targets[i].Counts, func(a, b countView) int { return statusRank(a.Status) - statusRank(b.Status) })
	}
	for _, s := range o.Sweeps {
		v := &sweepView{LastSweep: s, Started: c.when(s.StartedAt), LastComplete: c.when(s.LastCompleteAt)}
		if !s.FinishedAt.IsZero() {
			v.Took = humanDuration(s.FinishedAt.Sub(s.StartedAt))
		}
		byTarget[s.Target].Sweep = v
	}
	for _, j := range o.Attention {
		p.Attention = append(p.Attention, c.jobView(j))
	}
	p.AttentionMore = o.AttentionMore
	p.OutboxPending, p.OutboxOldest = o.OutboxPending, c.when(o.OutboxOldest)
	c.render(w, r, http.StatusOK, "overview", c.page(r, "overview", "Overview", p))
}

// statusRank orders statuses as a job goes through them; unknown ones last.
func statusRank(s string) int {
	if i := slices.Index(job.Statuses, job.Status(s)); i >= 0 {
		return i
	}
	return len(job.Statuses)
}

func jobsURL(q url.Values) string {
	if len(q) == 0 {
		return Prefix + "jobs"
	}
	return Prefix + "jobs?" + q.Encode()
}

// jobsPage is the jobs list's content.
type jobsPage struct {
	Filter   jobsFilter
	Targets  []string
	Statuses []string
	Jobs     []jobView
	OlderURL string
	NewerURL string
	// Filtered is true when some filter is set.
	Filtered bool
}

// jobsFilter is the jobs list's query string, as the form shows it.
type jobsFilter struct {
	Target    string
	Status    []string
	Operation string
	Q         string
	From, To  string
}

// HasStatus helps the form mark the selected status.
func (f jobsFilter) HasStatus(s string) bool { return slices.Contains(f.Status, s) }

// dateLayouts are what the created-between fields accept: the browser's
// date and datetime-local inputs, and RFC 3339. Times without a zone are
// UTC.
var dateLayouts = []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"}

func parseDate(field, v string) (time.Time, error) {
	for _, l := range dateLayouts {
		if t, err := time.Parse(l, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errors.New(field + ": not a date such as 2026-12-01 or 2026-12-01T08:00")
}

// encodeCursor makes a page cursor a URL parameter: creation time (empty
// for none), target and job id, NUL-separated (a job id may hold anything
// but NUL, which PostgreSQL text cannot), base64url-encoded.
func encodeCursor(cur *store.JobCursor) string {
	created := ""
	if !cur.Created.IsZero() {
		created = cur.Created.UTC().Format(time.RFC3339Nano)
	}
	return base64.RawURLEncoding.EncodeToString([]byte(created + "\x00" + cur.Target + "\x00" + cur.JobID))
}

func decodeCursor(param, s string) (*store.JobCursor, error) {
	bad := errors.New(param + ": the page cursor is not one this console made")
	b, err := base64.RawURLEncoding.DecodeString(s)
	parts := strings.SplitN(string(b), "\x00", 3)
	if err != nil || len(parts) != 3 || !validText(parts[1]) || !validText(parts[2]) {
		return nil, bad
	}
	cur := &store.JobCursor{Target: parts[1], JobID: parts[2]}
	if parts[0] != "" {
		if cur.Created, err = time.Parse(time.RFC3339Nano, parts[0]); err != nil {
			return nil, bad
		}
	}
	return cur, nil
}

// jobsQuery reads the jobs list's query string.
func jobsQuery(q url.Values) (store.JobsPageQuery, jobsFilter, error) {
	f := jobsFilter{Target: q.Get("target"), Operation: q.Get("operation"), Q: q.Get("q"), From: q.Get("from"), To: q.Get("to")}
	for _, s := range q["status"] {
		if s != "" {
			f.Status = append(f.Status, s)
		}
	}
	sq := store.JobsPageQuery{Target: f.Target, Statuses: f.Status, Operation: f.Operation, Text: f.Q}
	var err error
	if f.From != "" {
		if sq.CreatedFrom, err = parseDate("created from", f.From); err != nil {
			return sq, f, err
		}
	}
	if f.To != "" {
		if sq.CreatedTo, err = parseDate("created to", f.To); err != nil {
			return sq, f, err
		}
		if len(f.To) == len("2006-01-02") {
			sq.CreatedTo = sq.CreatedTo.Add(24 * time.Hour) // the whole day
		}
	}
	if v := q.Get("after"); v != "" {
		if sq.After, err = decodeCursor("after", v); err != nil {
			return sq, f, err
		}
	}
	if v := q.Get("before"); v != "" {
		if sq.Before, err = decodeCursor("before", v); err != nil {
			return sq, f, err
		}
	}
	if sq.After != nil && sq.Before != nil {
		return sq, f, errors.New("a page is after a cursor or before one, not both")
	}
	return sq, f, nil
}

func (c *Console) jobs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	sq, f, err := jobsQuery(q)
	if err != nil {
		c.fail(w, r, http.StatusBadRequest, err.Error(), nil)
		return
	}
	targets, err := c.cfg.Reader.Targets(r.Context())
	if err != nil {
		c.fail(w, r, http.StatusInternalServerError, "The targets could not be read from the database.", err)
		return
	}
	list, err := c.cfg.Reader.JobsPage(r.Context(), sq)
	if err != nil {
		c.fail(w, r, http.StatusInternalServerError, "The jobs could not be read from the database.", err)
		return
	}
	p := jobsPage{Filter: f, Targets: targets, Filtered: f.Target != "" || len(f.Status) > 0 || f.Operation != "" || f.Q != "" || f.From != "" || f.To != ""}
	for _, s := range job.Statuses {
		p.Statuses = append(p.Statuses, string(s))
	}
	// A job whose id is the text comes first, however old.
	for _, j := range list.Exact {
		p.Jobs = append(p.Jobs, c.jobView(j))
	}
	for _, j := range list.Jobs {
		if !slices.ContainsFunc(list.Exact, func(e store.JobRow) bool { return e.Target == j.Target && e.JobID == j.JobID }) {
			p.Jobs = append(p.Jobs, c.jobView(j))
		}
	}
	link := func(param string, cur *store.JobCursor) string {
		if cur == nil {
			return ""
		}
		v := url.Values{}
		for k, vs := range q {
			if k != "after" && k != "before" {
				v[k] = vs
			}
		}
		v.Set(param, encodeCursor(cur))
		return jobsURL(v)
	}
	p.OlderURL, p.NewerURL = link("after", list.Older), link("before", list.Newer)
	c.render(w, r, http.StatusOK, "jobs", c.page(r, "jobs", "Jobs", p))
}

// jobPage is one job's content.
type jobPage struct {
	View       jobView
	Job        store.JobDetail
	Terminated when
	FirstSeen  when
	LastSeen   when
	Removed    when
	Timeline   []spanView
	Events     []eventView
	More       int // events not shown
	Deliveries []deliveryView
	Descriptor string
}

type spanView struct {
	Status  string
	Class   string
	Width   string
	Entered when
	Lasted  string
	Current bool
}

type eventView struct {
	Sequence  int64
	Kind      string
	Summary   string
	Observed  when
	After     string // time since the previous event shown
	Published when
	Pending   bool
	Data      eventData
}

type deliveryView struct {
	store.EventDelivery
	Delivered   when
	LastAttempt when
}

func (c *Console) job(w http.ResponseWriter, r *http.Request) {
	target, id := r.URL.Query().Get("target"), r.URL.Query().Get("id")
	if target == "" || id == "" {
		c.fail(w, r, http.StatusBadRequest, "A job page needs a target and an id (target=…&id=…).", nil)
		return
	}
	d, err := c.cfg.Reader.Job(r.Context(), target, id)
	if errors.Is(err, store.ErrNotFound) {
		c.fail(w, r, http.StatusNotFound, "Target "+target+" has no job "+id+".", nil)
		return
	}
	if err != nil {
		c.fail(w, r, http.StatusInternalServerError, "The job could not be read from the database.", err)
		return
	}
	now := c.cfg.NowFunc()
	p := jobPage{View: c.jobView(d.JobRow), Job: d, Terminated: c.when(d.TerminationTime), FirstSeen: c.when(d.FirstSeenAt),
		LastSeen: c.when(d.LastSeenAt), Removed: c.when(d.RemovedAt), Descriptor: prettyJSON(d.Descriptor),
		More: d.EventsTotal - len(d.Events)}
	p.Timeline = c.timeline(d, now)
	for i, e := range d.Events {
		data := decodeEventData(e.Payload)
		v := eventView{Sequence: e.Sequence, Kind: kind(e.Type), Summary: summary(e.Type, e.From, e.To, data),
			Observed: c.when(e.ObservedAt), Published: c.when(e.PublishedAt), Pending: e.PublishedAt.IsZero(), Data: data}
		if i+1 < len(d.Events) { // newest first: the previous event is the next one
			v.After = "+" + humanDuration(e.ObservedAt.Sub(d.Events[i+1].ObservedAt))
		}
		p.Events = append(p.Events, v)
	}
	for _, dv := range d.Deliveries {
		p.Deliveries = append(p.Deliveries, deliveryView{EventDelivery: dv, Delivered: c.when(dv.DeliveredAt), LastAttempt: c.when(dv.LastAttemptAt)})
	}
	c.render(w, r, http.StatusOK, "job", c.page(r, "jobs", "Job "+id, p))
}

// timeline draws the statuses a job was seen in as bar segments as wide as
// each lasted: the current one up to now, or to when the job was removed;
// a terminal status, which lasts for ever, gets a sliver.
func (c *Console) timeline(d store.JobDetail, now time.Time) []spanView {
	if len(d.Statuses) == 0 {
		return nil
	}
	type span struct {
		store.StatusSpan
		end time.Time
	}
	spans := make([]span, len(d.Statuses))
	for i, s := range d.Statuses {
		end := s.LeftAt
		if end.IsZero() {
			switch {
			case job.Status(s.Status).Terminal():
				end = s.EnteredAt
			case !d.RemovedAt.IsZero():
				end = d.RemovedAt
			default:
				end = now
			}
		}
		spans[i] = span{s, end}
	}
	start, stop := spans[0].EnteredAt, spans[len(spans)-1].end
	total := stop.Sub(start)
	var out []spanView
	for _, s := range spans {
		lasted := s.end.Sub(s.EnteredAt)
		width := widthClass(float64(lasted), float64(total))
		if width == "w0" {
			width = "w1" // seen, however briefly
		}
		v := spanView{Status: s.Status, Class: statusClass(s.Status), Width: width, Entered: c.when(s.EnteredAt),
			Lasted: humanDuration(lasted), Current: s.LeftAt.IsZero()}
		if v.Current && job.Status(s.Status).Terminal() {
			v.Lasted = "final"
		} else if v.Current && d.RemovedAt.IsZero() {
			v.Lasted += " so far"
		}
		out = append(out, v)
	}
	return out
}

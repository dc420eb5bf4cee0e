package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ossjobwatch/ossjobwatch/config"
	"github.com/ossjobwatch/ossjobwatch/job"
	"github.com/ossjobwatch/ossjobwatch/store"
)

func init() {
	verbs["jobs"] = verb{summary: "print what is happening now, one line per job, from SQL", run: runJobs}
}

// defaultJobsLimit keeps a terminal readable; the lines left out are
// counted, never dropped silently.
const defaultJobsLimit = 100

// statusList is a flag that may be repeated and takes comma lists.
type statusList []string

func (s *statusList) String() string { return strings.Join(*s, ",") }

func (s *statusList) Set(v string) error {
	for part := range strings.SplitSeq(v, ",") {
		if part = strings.TrimSpace(part); part != "" {
			*s = append(*s, part)
		}
	}
	return nil
}

func runJobs(ctx context.Context, c cli) int {
	fs := flag.NewFlagSet("jobs", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(c.stderr, "Usage: ossjobwatch jobs [flags]")
		fmt.Fprintln(c.stderr, "  The live unfinished jobs, newest first, with how long each has been in its status;")
		fmt.Fprintln(c.stderr, "  stalled jobs and jobs awaiting confirmation (OSS fails them 14 days after they")
		fmt.Fprintln(c.stderr, "  were suspended) say so. Removed jobs are never shown.")
		fs.PrintDefaults()
	}
	f := commonFlags(fs)
	var statuses statusList
	fs.Var(&statuses, "status", "only jobs in this status (repeat it, or a comma list; finished statuses need no --all)")
	target := fs.String("target", "", "only this target's jobs")
	stalled := fs.Bool("stalled", false, "only stalled jobs (a stalled event announced, no change since)")
	suspended := fs.Bool("suspended", false, "only jobs in Suspended, awaiting confirmation, with when OSS fails them")
	all := fs.Bool("all", false, "finished jobs (Complete, Cancelled, Failed) too")
	asJSON := fs.Bool("json", false, "one JSON object a line, every field")
	limit := fs.Int("limit", defaultJobsLimit, "print at most this many jobs (0: all); the rest are counted")
	if code, ok := parseFlags(fs, c); !ok {
		return code
	}
	if fs.NArg() != 0 || *limit < 0 {
		fmt.Fprintln(c.stderr, "ossjobwatch jobs: takes flags only, and --limit must not be negative")
		fs.Usage()
		return exitUsage
	}
	cfg, ok := loadConfig(c, *f, config.Needs{Database: true})
	if !ok {
		return exitUsage
	}
	st, ok := openStore(ctx, c, "jobs", cfg)
	if !ok {
		return exitFailure
	}
	defer st.Close()
	q := store.JobsQuery{
		Target: *target, Statuses: statuses, Stalled: *stalled, Suspended: *suspended,
		// Naming a status is asking for it, finished or not.
		Finished: *all || len(statuses) > 0,
		Limit:    *limit,
	}
	list, err := st.Jobs(ctx, q)
	if err != nil {
		fmt.Fprintf(c.stderr, "ossjobwatch jobs: %v\n", err)
		return exitFailure
	}
	now := time.Now()
	more := list.Total - len(list.Jobs)
	moreLine := fmt.Sprintf("… %d more (--limit %d; --limit 0 shows all)", more, *limit)
	switch {
	case *asJSON:
		enc := json.NewEncoder(c.stdout)
		enc.SetEscapeHTML(false) // descriptions are shown, not embedded in HTML
		for _, j := range list.Jobs {
			if err := enc.Encode(jobJSONOf(j)); err != nil {
				fmt.Fprintf(c.stderr, "ossjobwatch jobs: %v\n", err)
				return exitFailure
			}
		}
		if more > 0 {
			fmt.Fprintln(c.stderr, moreLine)
		}
	case isCharDevice(c.stdout):
		printJobsTable(c.stdout, list.Jobs, now, isTerminal(c.stdout))
		if more > 0 {
			fmt.Fprintln(c.stdout, moreLine)
		}
		fmt.Fprintln(c.stdout, jobsSummary(list, q))
	default:
		// On a pipe: one job a line, tab-separated, nothing else on stdout.
		for _, j := range list.Jobs {
			fmt.Fprintln(c.stdout, strings.Join(jobFields(j, now), "\t"))
		}
		if more > 0 {
			fmt.Fprintln(c.stderr, moreLine)
		}
		fmt.Fprintln(c.stderr, jobsSummary(list, q))
	}
	return exitOK
}

// jobFields are a job's columns as text: target, id, status, for how long,
// tasks, attention, description. Text from OSS is made safe to print.
func jobFields(j store.JobRow, now time.Time) []string {
	since := "-"
	if !j.StatusSince.IsZero() {
		since = humanDuration(now.Sub(j.StatusSince))
	}
	tasks := fmt.Sprintf("%d/%d ok, %d failed", j.Tasks.Succeeded, j.Tasks.Total, j.Tasks.Failed)
	return []string{safeText(j.Target, true), safeText(j.JobID, true), safeText(j.Status, true), since, tasks,
		attention(j, now), safeText(j.Description, false)}
}

// attention says why a job needs a human, or "".
func attention(j store.JobRow, now time.Time) string {
	switch {
	case !j.StalledAt.IsZero():
		return "stalled for " + humanDuration(now.Sub(j.StalledSince()))
	case j.Status == string(job.StatusSuspended) && j.FailsAt().IsZero():
		return "awaiting confirmation"
	case j.Status == string(job.StatusSuspended):
		at := j.FailsAt().UTC().Format("2006-01-02 15:04Z")
		if left := j.FailsAt().Sub(now); left > 0 {
			return "confirm: fails in " + humanDuration(left) + ", " + at
		}
		return "unconfirmed past " + at + ": OSS fails it"
	}
	return ""
}

// urgentBefore is when a job awaiting confirmation turns red: the alert
// rule's two days.
const urgentBefore = 48 * time.Hour

var jobsHeader = []string{"TARGET", "JOB", "STATUS", "FOR", "TASKS", "ATTENTION", "DESCRIPTION"}

// printJobsTable prints aligned columns under a header, for a person at a
// terminal; colour paints statuses and what needs attention.
func printJobsTable(w io.Writer, jobs []store.JobRow, now time.Time, colour bool) {
	rows := [][]string{jobsHeader}
	for _, j := range jobs {
		rows = append(rows, jobFields(j, now))
	}
	widths := make([]int, len(jobsHeader))
	for _, r := range rows {
		for i, f := range r {
			widths[i] = max(widths[i], utf8.RuneCountInString(f))
		}
	}
	if widths[5] == 0 {
		widths[5] = len("ATTENTION")
	}
	for n, r := range rows {
		var b strings.Builder
		for i, f := range r {
			code := ""
			switch {
			case n == 0:
				code = ansiDim
			case i == 2:
				code = statusColour(f)
			case i == 5 && f != "":
				code = ansiRed
				if j := jobs[n-1]; j.StalledAt.IsZero() && !j.FailsAt().IsZero() && j.FailsAt().Sub(now) > urgentBefore {
					code = ansiYellow
				}
			}
			if i == len(r)-1 {
				b.WriteString(paintText(colour, code, f))
				break
			}
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(f)+2)
			b.WriteString(paintText(colour, code, f) + pad)
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}

func paintText(colour bool, code, s string) string {
	if !colour || code == "" || s == "" {
		return s
	}
	return code + s + ansiReset
}

func statusColour(s string) string {
	switch job.Status(s) {
	case job.StatusFailed, job.StatusFailing, job.StatusCancelled, job.StatusCancelling:
		return ansiRed
	case job.StatusComplete:
		return ansiGreen
	case job.StatusSuspended:
		return ansiYellow
	case job.StatusActive:
		return ansiCyan
	}
	return ""
}

// jobsSummary counts the jobs the filter selected, by status in lifecycle
// order (statuses OSS does not document after, by name): "12 unfinished
// jobs: 3 New, 9 Active".
func jobsSummary(list store.JobList, q store.JobsQuery) string {
	what := "job"
	if !q.Finished {
		what = "unfinished job"
	}
	if list.Total != 1 {
		what += "s"
	}
	var order, extra []string
	for _, s := range job.Statuses {
		order = append(order, string(s))
	}
	for s := range list.ByStatus {
		if !job.Status(s).Known() {
			extra = append(extra, s)
		}
	}
	slices.Sort(extra)
	var parts []string
	for _, s := range append(order, extra...) {
		if n := list.ByStatus[s]; n > 0 {
			parts = append(parts, strconv.Itoa(n)+" "+safeText(s, true))
		}
	}
	if len(parts) == 0 {
		return "0 " + what
	}
	return fmt.Sprintf("%d %s: %s", list.Total, what, strings.Join(parts, ", "))
}

// humanDuration renders d in its two largest units: 45s, 12m30s, 3h12m,
// 2d4h (a zero second unit is left out: 3h, 2d).
func humanDuration(d time.Duration) string {
	d = max(d, 0).Round(time.Second)
	day := 24 * time.Hour
	two := func(n1 int64, u1 string, n2 int64, u2 string) string {
		if n2 == 0 {
			return strconv.FormatInt(n1, 10) + u1
		}
		return strconv.FormatInt(n1, 10) + u1 + strconv.FormatInt(n2, 10) + u2
	}
	switch {
	case d < time.Minute:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	case d < time.Hour:
		return two(int64(d/time.Minute), "m", int64(d%time.Minute/time.Second), "s")
	case d < day:
		return two(int64(d/time.Hour), "h", int64(d%time.Hour/time.Minute), "m")
	}
	return two(int64(d/day), "d", int64(d%day/time.Hour), "h")
}

// safeText makes text from OSS safe to print on a terminal. A value holding
// a control or other invisible character, invalid UTF-8, or (with
// quoteSpaces, for a column a space would blur) a space or tab, is printed
// Go-quoted, every such character escaped: nothing OSS returns can move the
// cursor, change colours or forge a line.
func safeText(s string, quoteSpaces bool) string {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size <= 1 {
				return strconv.QuoteToGraphic(s)
			}
		}
		if !unicode.IsGraphic(r) || quoteSpaces && unicode.IsSpace(r) {
			return strconv.QuoteToGraphic(s)
		}
	}
	return s
}

// jobJSON is a job as --json prints it: the event contract's names, times
// in RFC 3339 UTC, null when unknown.
type jobJSON struct {
	Target          string     `json:"target"`
	JobID           string     `json:"jobId"`
	Status          string     `json:"status"`
	Operation       string     `json:"operation"`
	Description     string     `json:"description"`
	Priority        int64      `json:"priority"`
	CreationTime    *time.Time `json:"creationTime"`
	TerminationTime *time.Time `json:"terminationTime"`
	Tasks           struct {
		Total     int64 `json:"total"`
		Succeeded int64 `json:"succeeded"`
		Failed    int64 `json:"failed"`
	} `json:"tasks"`
	ElapsedActiveSeconds int64      `json:"elapsedActiveSeconds"`
	StatusSince          *time.Time `json:"statusSince"`
	ActivityAt           *time.Time `json:"activityAt"`
	StalledAt            *time.Time `json:"stalledAt"`
	StalledSince         *time.Time `json:"stalledSince"`
	SuspendedSince       *time.Time `json:"suspendedSince"`
	FailsAt              *time.Time `json:"failsAt"`
	RemindersSent        int        `json:"remindersSent"`
	FirstSeenAt          *time.Time `json:"firstSeenAt"`
	LastSeenAt           *time.Time `json:"lastSeenAt"`
}

func jobJSONOf(j store.JobRow) jobJSON {
	ts := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		t = t.UTC()
		return &t
	}
	out := jobJSON{
		Target: j.Target, JobID: j.JobID, Status: j.Status, Operation: j.Operation, Description: j.Description,
		Priority: j.Priority, CreationTime: ts(j.CreationTime), TerminationTime: ts(j.TerminationTime),
		ElapsedActiveSeconds: j.ElapsedActiveSeconds, StatusSince: ts(j.StatusSince), ActivityAt: ts(j.ActivityAt),
		StalledAt: ts(j.StalledAt), StalledSince: ts(j.StalledSince()), SuspendedSince: ts(j.SuspendedSince),
		FailsAt: ts(j.FailsAt()), RemindersSent: j.RemindersSent, FirstSeenAt: ts(j.FirstSeenAt), LastSeenAt: ts(j.LastSeenAt),
	}
	out.Tasks.Total, out.Tasks.Succeeded, out.Tasks.Failed = j.Tasks.Total, j.Tasks.Succeeded, j.Tasks.Failed
	return out
}

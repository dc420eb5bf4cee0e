package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"math"
	"net/url"
	"strings"
	"time"

	"github.com/ossjobwatch/ossjobwatch/job"
	"github.com/ossjobwatch/ossjobwatch/store"
)

// parsePages parses each page with the layout into a set of its own, so
// that each page defines "content" once.
func parsePages() (map[string]*template.Template, error) {
	pages := map[string]*template.Template{}
	for _, name := range []string{"overview", "jobs", "job", "live", "error"} {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console: parse %s page: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

var funcs = template.FuncMap{
	"statusClass": statusClass,
	"abs":         absTime,
	"dur":         humanDuration,
	"jobURL":      jobURL,
	"widthClass":  widthClass,
	"kind":        kind,
	"num":         num,
}

// statusClass maps a status, any string OSS sends, to one of a fixed set of
// CSS classes: Failed red, Complete green, Active blue, Suspended amber.
func statusClass(status string) string {
	switch job.Status(status) {
	case job.StatusFailed, job.StatusFailing:
		return "st st-bad"
	case job.StatusComplete, job.StatusCompleting:
		return "st st-ok"
	case job.StatusActive:
		return "st st-run"
	case job.StatusSuspended, job.StatusPaused, job.StatusPausing:
		return "st st-warn"
	case job.StatusCancelled, job.StatusCancelling:
		return "st st-off"
	}
	return "st"
}

// absTime is a time as the title attribute shows it; "" for zero.
func absTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// relTime is t relative to now: "3m ago", "in 2d 4h", "just now".
func relTime(t, now time.Time) string {
	if t.IsZero() {
		return "—"
	}
	d := now.Sub(t)
	switch {
	case d > -time.Second && d < time.Second:
		return "just now"
	case d < 0:
		return "in " + humanDuration(-d)
	}
	return humanDuration(d) + " ago"
}

// humanDuration shows d in its two largest units: "3d 4h", "5m 12s",
// "800ms".
func humanDuration(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	units := []struct {
		name string
		d    time.Duration
	}{{"d", 24 * time.Hour}, {"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}}
	for i, u := range units {
		if d < u.d {
			continue
		}
		n, rest := d/u.d, d%u.d
		out := fmt.Sprintf("%d%s", n, u.name)
		if i+1 < len(units) {
			if m := rest / units[i+1].d; m > 0 {
				out += fmt.Sprintf(" %d%s", m, units[i+1].name)
			}
		}
		return out
	}
	return d.String()
}

// jobURL is the job page's address. Job ids are opaque bytes (spaces,
// slashes, %, <, …): they travel as an escaped query parameter, never as
// path segments, which a router would clean or split.
func jobURL(target, id string) string {
	return Prefix + "job?" + url.Values{"target": {target}, "id": {id}}.Encode()
}

// widthClass names the CSS class of a bar segment n/total wide, in whole
// percent (w0 … w100); a non-zero share is at least 1%.
func widthClass(n, total float64) string {
	if total <= 0 || n <= 0 {
		return "w0"
	}
	p := int(math.Round(100 * n / total))
	return fmt.Sprintf("w%d", min(100, max(1, p)))
}

// kind is an event type without the ossjobwatch.job. prefix.
func kind(typ string) string { return strings.TrimPrefix(typ, "ossjobwatch.job.") }

// thousands shows n with thin separators: 100,000.
func thousands(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// when is a time for a template: its relative form, shown, and its
// absolute form, in the title attribute.
type when struct {
	Rel, Abs string
}

func (c *Console) when(t time.Time) when {
	return when{Rel: relTime(t, c.cfg.NowFunc()), Abs: absTime(t)}
}

// eventData is the part of an event's data the console shows.
type eventData struct {
	Status             string              `json:"status"`
	PreviousStatus     string              `json:"previousStatus"`
	FailedDelta        int64               `json:"failedDelta"`
	SucceededDelta     int64               `json:"succeededDelta"`
	Tasks              job.Tasks           `json:"tasks"`
	FailureReasons     []job.FailureReason `json:"failureReasons"`
	StatusUpdateReason string              `json:"statusUpdateReason"`
	EnrichmentError    string              `json:"enrichmentError"`
	Reason             string              `json:"reason"`
	StalledSince       *time.Time          `json:"stalledSince"`
	FailsAt            *time.Time          `json:"failsAt"`
	Baseline           bool                `json:"baseline"`
}

func decodeEventData(payload []byte) eventData {
	var env struct {
		Data eventData `json:"data"`
	}
	_ = json.Unmarshal(payload, &env) // a payload is JSON by construction; a bad one shows nothing
	return env.Data
}

// summary says what an event reports, in a few words.
func summary(typ, from, to string, d eventData) string {
	switch kind(typ) {
	case "discovered":
		if d.Baseline {
			return "found in " + to + " (baseline)"
		}
		return "found in " + to
	case "status_changed":
		return from + " → " + to
	case "tasks_failed":
		return fmt.Sprintf("+%s failed tasks (%s of %s failed)", thousands(d.FailedDelta), thousands(d.Tasks.Failed), thousands(d.Tasks.Total))
	case "progress":
		return fmt.Sprintf("%s of %s tasks done (+%s)", thousands(d.Tasks.Succeeded), thousands(d.Tasks.Total), thousands(d.SucceededDelta))
	case "stalled":
		if d.StalledSince != nil {
			return "no change since " + absTime(*d.StalledSince)
		}
		return "stalled"
	case "confirmation_due":
		if d.FailsAt != nil {
			return "awaiting confirmation; OSS fails it at " + absTime(*d.FailsAt)
		}
		return "awaiting confirmation"
	case "removed":
		return "gone from the listing (" + d.Reason + ")"
	}
	return kind(typ)
}

// prettyJSON indents JSON for a <pre>; the template escapes it.
func prettyJSON(b []byte) string {
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return string(b)
	}
	return out.String()
}

// tasksBar is a job's task counters as bar segments.
type tasksBar struct {
	Total, Succeeded, Failed int64
	OKClass, BadClass        string
}

func newTasksBar(t job.Tasks) tasksBar {
	return tasksBar{Total: t.Total, Succeeded: t.Succeeded, Failed: t.Failed,
		OKClass:  widthClass(float64(t.Succeeded), float64(t.Total)),
		BadClass: widthClass(float64(t.Failed), float64(t.Total))}
}

// jobView is a jobs row as the templates show it.
type jobView struct {
	store.JobRow
	URL         string
	Created     when
	StatusSince when
	Bar         tasksBar
	// Attention, on the overview: what the job waits for, and until when.
	Note     string
	Deadline when
	Stalled  bool
}

func (c *Console) jobView(j store.JobRow) jobView {
	v := jobView{JobRow: j, URL: jobURL(j.Target, j.JobID), Created: c.when(j.CreationTime), StatusSince: c.when(j.StatusSince),
		Bar: newTasksBar(j.Tasks)}
	switch {
	case !j.FailsAt().IsZero():
		v.Note, v.Deadline = "awaiting confirmation; OSS fails it", c.when(j.FailsAt())
	case !j.StalledAt.IsZero():
		v.Note, v.Deadline, v.Stalled = "stalled: no change", c.when(j.StalledSince()), true
	}
	return v
}

// num shows an integer with thousands separators.
func num(v any) string {
	switch n := v.(type) {
	case int:
		return thousands(int64(n))
	case int64:
		return thousands(n)
	}
	return fmt.Sprint(v)
}

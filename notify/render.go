package notify

import (
	"fmt"
	"strconv"
	"strings"
	"text/template"
	"time"
	"unicode/utf8"
)

// This file turns events into what people read. Every platform gets the
// same content from summarize; the platform files only decide the syntax
// (style), escaping and size limits.

// Event kinds, the CloudEvent type without its "ossjobwatch.job." prefix.
const (
	kindDiscovered      = "discovered"
	kindStatusChanged   = "status_changed"
	kindTasksFailed     = "tasks_failed"
	kindProgress        = "progress"
	kindStalled         = "stalled"
	kindConfirmationDue = "confirmation_due"
	kindRemoved         = "removed"
)

// Kind is the event's kind: "status_changed", "stalled", … (its type
// without the "ossjobwatch.job." prefix).
func (e Event) Kind() string { return strings.TrimPrefix(e.Type, "ossjobwatch.job.") }

// severity orders how bad an event is; a digest takes its worst.
type severity int

const (
	sevInfo severity = iota
	sevGood
	sevMuted
	sevWarn
	sevBad
)

// field is one "label: value" line of a message. Value is user data and
// gets escaped; Code marks values shown as code (job ids).
type field struct {
	Label string
	Value string
	Code  bool
}

// summary is one event as people read it, before any platform's syntax.
type summary struct {
	Icon     string
	Headline string // e.g. "Job Failed", plain text
	Severity severity
	Target   string // "prod-hz (cn-hangzhou)"
	Fields   []field
	List     []string // failure reasons, one per line, user data
	ListHead string
	Footer   string // plain text
}

// statusSeverity is how a status into it reads.
func statusSeverity(s string) severity {
	switch s {
	case "Failed", "Failing":
		return sevBad
	case "Suspended":
		return sevWarn
	case "Complete":
		return sevGood
	case "Cancelled", "Cancelling":
		return sevMuted
	}
	return sevInfo
}

func statusIcon(s string) string {
	switch s {
	case "Failed", "Failing":
		return "❌"
	case "Complete":
		return "✅"
	case "Suspended":
		return "⏸️"
	case "Cancelled", "Cancelling":
		return "⛔"
	}
	return "🔄"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// fmtTime renders a time for people: UTC, to the second.
func fmtTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

// fmtDuration renders a duration coarsely: "3d 4h", "2h 10m", "45m", "30s".
func fmtDuration(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	d = d.Round(time.Second)
	days := int64(d / (24 * time.Hour))
	h := int64(d/time.Hour) % 24
	m := int64(d/time.Minute) % 60
	s := int64(d/time.Second) % 60
	switch {
	case days > 0:
		return fmt.Sprintf("%dd %dh", days, h)
	case h > 0:
		return fmt.Sprintf("%dh %dm", h, m)
	case m > 0:
		return fmt.Sprintf("%dm", m)
	}
	return fmt.Sprintf("%ds", s)
}

func fmtTasks(t Tasks) string {
	return fmt.Sprintf("%d succeeded, %d failed, %d total", t.Succeeded, t.Failed, t.Total)
}

// target names where an event comes from: "prod-hz (cn-hangzhou)".
func target(d EventData) string {
	if d.Region == "" || d.Region == d.Target {
		return d.Target
	}
	return d.Target + " (" + d.Region + ")"
}

// summarize is what a single-event message says.
func summarize(e Event) summary {
	d := e.Data
	s := summary{Target: target(d), Severity: sevInfo, Icon: "ℹ️"}
	s.Fields = append(s.Fields, field{Label: "Job", Value: d.JobID, Code: true})
	if d.Description != "" {
		s.Fields = append(s.Fields, field{Label: "Description", Value: d.Description})
	}
	if d.Operation != "" {
		s.Fields = append(s.Fields, field{Label: "Operation", Value: d.Operation})
	}
	at := d.ObservedAt
	if at.IsZero() {
		at = e.Time
	}
	switch e.Kind() {
	case kindStatusChanged:
		s.Icon, s.Severity = statusIcon(d.Status), statusSeverity(d.Status)
		s.Headline = "Job " + d.Status
		s.Fields = append(s.Fields, field{Label: "Status", Value: orDash(d.PreviousStatus) + " → " + d.Status})
	case kindTasksFailed:
		s.Icon, s.Severity = "⚠️", sevWarn
		s.Headline = fmt.Sprintf("%d more tasks failed", d.FailedDelta)
		s.Fields = append(s.Fields, field{Label: "Status", Value: d.Status})
	case kindProgress:
		s.Icon = "📈"
		s.Headline = "Job progress"
		s.Fields = append(s.Fields, field{Label: "Status", Value: d.Status})
	case kindStalled:
		s.Icon, s.Severity = "⏳", sevWarn
		s.Headline = "Job stalled"
		s.Fields = append(s.Fields, field{Label: "Status", Value: d.Status})
		if d.StalledSince != nil {
			s.Fields = append(s.Fields, field{Label: "Unchanged since",
				Value: fmtTime(*d.StalledSince) + " (" + fmtDuration(at.Sub(*d.StalledSince)) + ")"})
		}
	case kindConfirmationDue:
		s.Icon, s.Severity = "⏰", sevWarn
		s.Headline = "Job awaits confirmation"
		s.Fields = append(s.Fields, field{Label: "Status", Value: d.Status})
		if d.SuspendedSince != nil {
			s.Fields = append(s.Fields, field{Label: "Suspended since",
				Value: fmtTime(*d.SuspendedSince) + " (" + fmtDuration(at.Sub(*d.SuspendedSince)) + " ago)"})
		}
	case kindRemoved:
		s.Icon, s.Severity = "🗑️", sevMuted
		s.Headline = "Job removed"
		s.Fields = append(s.Fields, field{Label: "Reason", Value: orDash(d.Reason)}, field{Label: "Last status", Value: d.Status})
	case kindDiscovered:
		s.Icon = "🆕"
		s.Headline = "Job discovered"
		if d.Baseline {
			s.Headline = "Job discovered (first sweep)"
		}
		s.Fields = append(s.Fields, field{Label: "Status", Value: d.Status})
	default:
		s.Headline = "Job event " + e.Kind()
		s.Fields = append(s.Fields, field{Label: "Status", Value: d.Status})
	}
	if d.FailsAt != nil {
		s.Fields = append(s.Fields, field{Label: "Fails at",
			Value: fmtTime(*d.FailsAt) + " (in " + fmtDuration(d.FailsAt.Sub(at)) + ", unless confirmed)"})
	}
	if d.Status == "Suspended" && e.Kind() == kindStatusChanged && d.SuspendedSince != nil && d.FailsAt == nil {
		s.Fields = append(s.Fields, field{Label: "Suspended since", Value: fmtTime(*d.SuspendedSince)})
	}
	tasks := fmtTasks(d.Tasks)
	if d.FailedDelta > 0 {
		tasks += fmt.Sprintf(" (+%d failed)", d.FailedDelta)
	}
	s.Fields = append(s.Fields, field{Label: "Tasks", Value: tasks})
	if d.StatusUpdateReason != "" {
		s.Fields = append(s.Fields, field{Label: "Status reason", Value: d.StatusUpdateReason})
	}
	if d.ConfirmationRequired {
		s.Fields = append(s.Fields, field{Label: "Confirmation", Value: "required"})
	}
	if d.EnrichmentError != "" {
		s.Fields = append(s.Fields, field{Label: "Details unavailable", Value: "DescribeJob failed: " + d.EnrichmentError})
	}
	for _, fr := range d.FailureReasons {
		switch {
		case fr.Code != "" && fr.Reason != "":
			s.List = append(s.List, fr.Code+": "+fr.Reason)
		default:
			s.List = append(s.List, fr.Code+fr.Reason)
		}
	}
	if len(s.List) > 0 {
		s.ListHead = "Failure reasons"
	}
	s.Footer = footer(e, at)
	return s
}

// footer is the small print: when, which event. "ossjobwatch" is in every
// message, so it can be a DingTalk or Feishu robot's custom keyword.
func footer(e Event, at time.Time) string {
	f := "ossjobwatch · " + fmtTime(at)
	if e.Data.Sequence > 0 {
		f += " · seq " + strconv.FormatInt(e.Data.Sequence, 10)
	}
	return f + " · event " + e.ID
}

// digestLine is one event of a digest, plain text (user data unescaped;
// the style escapes the whole line).
func digestLine(e Event) string {
	d := e.Data
	var what string
	switch e.Kind() {
	case kindStatusChanged:
		what = statusIcon(d.Status) + " " + orDash(d.PreviousStatus) + " → " + d.Status
	case kindTasksFailed:
		what = fmt.Sprintf("⚠️ +%d tasks failed", d.FailedDelta)
	case kindStalled:
		what = "⏳ stalled in " + d.Status
	case kindConfirmationDue:
		what = "⏰ awaits confirmation"
		if d.FailsAt != nil {
			what += ", fails at " + fmtTime(*d.FailsAt)
		}
	case kindRemoved:
		what = "🗑️ removed (" + orDash(d.Reason) + ")"
	case kindDiscovered:
		what = "🆕 discovered, " + d.Status
	case kindProgress:
		what = "📈 progress, " + d.Status
	default:
		what = e.Kind() + ", " + d.Status
	}
	at := d.ObservedAt
	if at.IsZero() {
		at = e.Time
	}
	line := at.UTC().Format("15:04:05") + " " + what + " · job " + d.JobID
	if d.Description != "" {
		line += " (" + cutRunes(d.Description, 60) + ")"
	}
	line += fmt.Sprintf(" · tasks %d ok, %d failed / %d", d.Tasks.Succeeded, d.Tasks.Failed, d.Tasks.Total)
	if len(d.FailureReasons) > 0 {
		line += " · " + d.FailureReasons[0].Code
	}
	return line
}

// digestTitle is "12 events for target prod-hz", or "… for 3 targets".
func digestTitle(evs []Event) string {
	targets := map[string]bool{}
	for _, e := range evs {
		targets[e.Data.Target] = true
	}
	if len(targets) == 1 {
		return fmt.Sprintf("%d events for target %s", len(evs), evs[0].Data.Target)
	}
	return fmt.Sprintf("%d events for %d targets", len(evs), len(targets))
}

func digestSeverity(evs []Event) severity {
	worst := sevInfo
	for _, e := range evs {
		s := summarize(e).Severity
		if s > worst {
			worst = s
		}
	}
	return worst
}

// renderTemplate runs a route's template over the event, its "esc"
// function bound to the platform's escaper.
func renderTemplate(t *template.Template, e Event, esc func(string) string) (string, error) {
	t, err := t.Clone()
	if err != nil {
		return "", err
	}
	t.Funcs(template.FuncMap{"esc": esc})
	w := &limitedWriter{n: templateOutputLimit}
	if err := t.Execute(w, e); err != nil {
		return "", err
	}
	return w.b.String(), nil
}

// cutBytes cuts s to at most n bytes on a UTF-8 boundary.
func cutBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if n <= 0 {
		return ""
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}

// cutRunes cuts s to at most n characters, ending with "…" when cut.
func cutRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// moreLine is the line that says how much was cut.
func moreLine(n int, unit string) string {
	if n == 1 {
		return "… 1 more " + unit
	}
	return fmt.Sprintf("… %d more %ss", n, unit)
}

// fitLines joins lines with sep within limit bytes (as measured by size),
// keeping whole lines from the start and ending with a "… N more" line
// (built by more) when some do not fit. A single line longer than a
// quarter of the limit is ellipsized first, so one huge description does
// not crowd out the rest. head lines are always kept (they are short).
func fitLines(head, lines []string, sep string, limit int, size func(string) int, more func(n int) string) string {
	text, _ := fitLinesN(head, lines, sep, limit, size, more)
	return text
}

// fitLinesN is fitLines, also returning how many of lines it kept.
func fitLinesN(head, lines []string, sep string, limit int, size func(string) int, more func(n int) string) (string, int) {
	if size == nil {
		size = func(s string) int { return len(s) }
	}
	capLine := max(limit/4, 64)
	out := append([]string(nil), head...)
	used := size(strings.Join(out, sep))
	for i, l := range lines {
		if size(l) > capLine {
			l = ellipsizeBy(l, capLine, size)
		}
		add := size(l)
		if len(out) > 0 {
			add += size(sep)
		}
		rest := len(lines) - i - 1
		reserve := 0
		if rest > 0 {
			reserve = size(sep) + size(more(rest))
		}
		if used+add+reserve > limit {
			// Adding the line before this one reserved room for this.
			out = append(out, more(len(lines)-i))
			return strings.Join(out, sep), i
		}
		out = append(out, l)
		used += add
	}
	return strings.Join(out, sep), len(lines)
}

// ellipsizeBy cuts s until size(s…) ≤ n, on rune boundaries.
func ellipsizeBy(s string, n int, size func(string) int) string {
	if size(s) <= n {
		return s
	}
	r := []rune(s)
	lo, hi := 0, len(r)
	for lo < hi { // largest k with size(r[:k]+"…") ≤ n
		k := (lo + hi + 1) / 2
		if size(string(r[:k])+"…") <= n {
			lo = k
		} else {
			hi = k - 1
		}
	}
	return string(r[:lo]) + "…"
}

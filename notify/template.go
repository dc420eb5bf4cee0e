package notify

import (
	"fmt"
	"strings"
	"text/template"
	"time"
)

// ParseTemplate parses a route's template (RouteConfig.Template): a Go
// text/template over an Event that renders the message's text, in the
// receiver's markup (DingTalk/WeCom markdown, Feishu lark_md, Slack
// mrkdwn). Missing map keys are errors, and these functions are defined:
//
//	esc     escapes user data for the receiver's markup (a job id or a
//	        description can hold anything, markup included)
//	time    formats a time.Time or *time.Time as "2006-01-02 15:04:05 UTC"
//	join    strings.Join
//	upper   strings.ToUpper
//
// Example: "{{esc .Data.JobID}}: {{.Data.PreviousStatus}} → {{.Data.Status}} at {{time .Data.ObservedAt}}".
//
// ParseTemplate also runs the template once over SampleEvent, so a
// misspelt field ({{.Data.Jobid}}) or an output over templateOutputLimit
// fails config loading rather than every message. A template that still
// fails on some event does not stop the message: it goes out in the
// default form with a "Template error" line.
func ParseTemplate(name, text string) (*template.Template, error) {
	t, err := template.New(name).Option("missingkey=error").Funcs(template.FuncMap{
		"time": func(v any) string {
			switch t := v.(type) {
			case time.Time:
				return fmtTime(t)
			case *time.Time:
				if t == nil {
					return "-"
				}
				return fmtTime(*t)
			}
			return fmt.Sprint(v)
		},
		// esc is bound to the receiver's escaper when the template runs.
		"esc":   func(s string) string { return s },
		"join":  strings.Join,
		"upper": strings.ToUpper,
	}).Parse(text)
	if err != nil {
		return nil, fmt.Errorf("route %s: template: %w", name, err)
	}
	sample := SampleEvent(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	if _, err := renderTemplate(t, sample, mdEsc); err != nil {
		return nil, fmt.Errorf("route %s: template fails on a sample event: %w", name, err)
	}
	return t, nil
}

// templateOutputLimit bounds what a template may write: a few times the
// largest platform limit (about 20 KB), so a runaway {{range}} stops early
// instead of building megabytes that would be cut anyway.
const templateOutputLimit = 64 << 10

// errTemplateOutput is the error of a template that wrote too much.
var errTemplateOutput = fmt.Errorf("output over %d bytes", templateOutputLimit)

// limitedWriter is a strings.Builder that refuses to grow past n bytes.
type limitedWriter struct {
	b strings.Builder
	n int
}

func (w *limitedWriter) Write(p []byte) (int, error) {
	if w.b.Len()+len(p) > w.n {
		return 0, errTemplateOutput
	}
	return w.b.Write(p)
}

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
// A template that fails on an event does not stop the message: it goes
// out in the default form with a "Template error" line.
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
	return t, nil
}

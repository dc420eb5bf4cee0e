package notify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"
	"unicode/utf8"

	"github.com/ossjobwatch/ossjobwatch/notify"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// failedEvent is the contract's enriched Active→Failed event.
func failedEvent(t *testing.T) notify.Event {
	t.Helper()
	b, err := os.ReadFile("testdata/event_failed.json")
	if err != nil {
		t.Fatal(err)
	}
	ev, err := notify.ParseEvent("ossjobs.prod-hz.status.Active.Failed", b)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// body sends m to a capturing server as a receiver of typ (unsigned) and
// returns the request body.
func body(t *testing.T, typ string, m notify.Message) []byte {
	t.Helper()
	reply := map[string]string{"dingtalk": `{"errcode":0}`, "wecom": `{"errcode":0}`, "feishu": `{"code":0}`}[typ]
	srv, reqs := capture(t, 200, cmpOr(reply, "ok"))
	s, err := notify.NewSender(notify.ReceiverConfig{Name: "g", Type: typ, URL: srv.URL + "/x"}, nil, func() time.Time { return fixedNow })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Send(context.Background(), m); err != nil {
		t.Fatalf("send: %v", err)
	}
	return (<-reqs).body
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// golden compares got (JSON) with testdata/name, indented for review.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Indent(&buf, got, "", "  "); err != nil {
		t.Fatalf("%s: not JSON: %v\n%s", name, err, got)
	}
	buf.WriteByte('\n')
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("%s differs from the golden file (go test -update to accept):\n%s", name, buf.Bytes())
	}
}

func TestGoldenMessages(t *testing.T) {
	t.Parallel()
	ev := failedEvent(t)
	single := notify.Message{Events: []notify.Event{ev}}
	for _, typ := range []string{"dingtalk", "feishu", "wecom", "slack"} {
		golden(t, typ+"_failed.json", body(t, typ, single))
	}
	golden(t, "dingtalk_digest.json", body(t, "dingtalk", notify.Message{Events: digestEvents(t, 5)}))
	golden(t, "feishu_digest.json", body(t, "feishu", notify.Message{Events: digestEvents(t, 5)}))
}

// digestEvents are n events of one target, oldest first, of every kind.
func digestEvents(t *testing.T, n int) []notify.Event {
	base := failedEvent(t)
	kinds := []string{"discovered", "status_changed", "tasks_failed", "stalled", "confirmation_due", "removed", "progress"}
	var evs []notify.Event
	for i := range n {
		e := base
		e.ID = fmt.Sprintf("01937a2e-2222-7000-8000-%012d", i)
		e.Type = "ossjobwatch.job." + kinds[i%len(kinds)]
		e.Data.JobID = fmt.Sprintf("job-%03d", i)
		e.Data.Sequence = int64(i + 1)
		e.Data.ObservedAt = base.Data.ObservedAt.Add(time.Duration(i) * time.Minute)
		e.Data.FailedDelta = 2
		e.Data.Reason = "expired"
		since := e.Data.ObservedAt.Add(-3 * time.Hour)
		e.Data.StalledSince, e.Data.SuspendedSince = &since, &since
		fails := since.Add(14 * 24 * time.Hour)
		e.Data.FailsAt = &fails
		evs = append(evs, e)
	}
	return evs
}

func TestFeishuColours(t *testing.T) {
	t.Parallel()
	base := failedEvent(t)
	for _, tc := range []struct{ typ, status, colour string }{
		{"status_changed", "Failed", "red"},
		{"status_changed", "Complete", "green"},
		{"status_changed", "Suspended", "orange"},
		{"stalled", "Active", "orange"},
		{"confirmation_due", "Suspended", "orange"},
		{"status_changed", "Active", "blue"},
		{"discovered", "Ready", "blue"},
	} {
		e := base
		e.Type, e.Data.Status = "ossjobwatch.job."+tc.typ, tc.status
		var card struct {
			Card struct {
				Header struct{ Template string } `json:"header"`
			} `json:"card"`
		}
		if err := json.Unmarshal(body(t, "feishu", notify.Message{Events: []notify.Event{e}}), &card); err != nil {
			t.Fatal(err)
		}
		if card.Card.Header.Template != tc.colour {
			t.Errorf("%s into %s: colour %q, want %q", tc.typ, tc.status, card.Card.Header.Template, tc.colour)
		}
	}
}

// texts extracts what people read from a request body of each type.
func texts(t *testing.T, typ string, b []byte) string {
	t.Helper()
	var v struct {
		Markdown struct{ Title, Text, Content string } `json:"markdown"`
		Card     struct {
			Elements []struct {
				Text     struct{ Content string } `json:"text"`
				Elements []struct{ Content string }
			} `json:"elements"`
		} `json:"card"`
		Text   string `json:"text"`
		Blocks []struct {
			Text     struct{ Text string } `json:"text"`
			Elements []struct{ Text string }
		} `json:"blocks"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	switch typ {
	case "dingtalk":
		return v.Markdown.Text
	case "wecom":
		return v.Markdown.Content
	case "feishu":
		var parts []string
		for _, e := range v.Card.Elements {
			parts = append(parts, e.Text.Content)
			for _, x := range e.Elements {
				parts = append(parts, x.Content)
			}
		}
		return strings.Join(parts, "\n")
	case "slack":
		var parts []string
		for _, bl := range v.Blocks {
			parts = append(parts, bl.Text.Text)
			for _, x := range bl.Elements {
				parts = append(parts, x.Text)
			}
		}
		return strings.Join(parts, "\n")
	}
	t.Fatalf("type %s", typ)
	return ""
}

func TestEscaping(t *testing.T) {
	t.Parallel()
	e := failedEvent(t)
	e.Data.JobID = `<script>alert(1)</script>[click](javascript:alert(2))**bold**_x_` + "`code`"
	e.Data.Description = "# heading\n> quote <img src=x onerror=alert(3)> & <!-- c -->"
	e.Data.FailureReasons = []notify.FailureReason{{Code: "<b>", Reason: "[a](http://evil)"}}
	m := notify.Message{Events: []notify.Event{e}}
	// A markdown link or bold made of user data: unescaped "](" or "**".
	unescaped := regexp.MustCompile(`(^|[^\\])(\]\(|\*\*bold)`)
	for _, typ := range []string{"dingtalk", "feishu", "wecom", "slack"} {
		text := texts(t, typ, body(t, typ, m))
		// HTML tags and comments, and markdown block markup at a line start.
		for _, bad := range []string{"<script", "<img", "<b>", "<!--", "\n# heading", "\n> quote"} {
			if strings.Contains(text, bad) {
				t.Errorf("%s: user data became markup %q:\n%s", typ, bad, text)
			}
		}
		// Slack's mrkdwn has no [text](url) links and no way to escape
		// * _ ~ ` (its docs escape only & < >): bold may show, a link
		// cannot.
		if typ != "slack" {
			if m := unescaped.FindString(text); m != "" {
				t.Errorf("%s: user data became markup %q:\n%s", typ, m, text)
			}
		}
		if !strings.Contains(text, "&lt;script&gt;") {
			t.Errorf("%s: the job id is not shown escaped:\n%s", typ, text)
		}
	}
}

// bigEvent has many long Chinese failure reasons and a huge description.
func bigEvent(t *testing.T, reasons int) notify.Event {
	e := failedEvent(t)
	e.Data.Description = strings.Repeat("归档日志的标签任务", 5000)
	for i := range reasons {
		e.Data.FailureReasons = append(e.Data.FailureReasons, notify.FailureReason{
			Code: "AccessDenied" + strconv.Itoa(i), Reason: strings.Repeat("存储桶策略拒绝了对象标签操作。", 8),
		})
	}
	return e
}

var moreRE = regexp.MustCompile(`… (\d+) more (line|event)s?`)

func TestTruncation(t *testing.T) {
	t.Parallel()
	limits := map[string]func(b []byte, text string) bool{
		"dingtalk": func(b []byte, text string) bool { return len(text) <= 20000 },
		"wecom":    func(b []byte, text string) bool { return len(text) <= 4096 },
		"feishu":   func(b []byte, text string) bool { return len(b) <= 20<<10 },
		"slack": func(b []byte, text string) bool {
			var v struct {
				Blocks []struct {
					Type string
					Text struct{ Text string }
				}
			}
			_ = json.Unmarshal(b, &v)
			for _, bl := range v.Blocks {
				if bl.Type == "section" && utf8.RuneCountInString(bl.Text.Text) > 3000 {
					return false
				}
			}
			return len(v.Blocks) <= 50
		},
	}
	const reasons = 400
	for typ, within := range limits {
		t.Run(typ, func(t *testing.T) {
			t.Parallel()
			b := body(t, typ, notify.Message{Events: []notify.Event{bigEvent(t, reasons)}})
			text := texts(t, typ, b)
			if !within(b, text) {
				t.Fatalf("over the limit: %d bytes body, %d bytes text", len(b), len(text))
			}
			if !utf8.ValidString(text) || strings.Contains(text, "\uFFFD") {
				t.Fatal("cut inside a character")
			}
			m := moreRE.FindStringSubmatch(text)
			if m == nil {
				t.Fatalf("no \"… N more\" line:\n%.2000s", text)
			}
			// Shown reasons + N = all of them.
			shown := strings.Count(text, "AccessDenied")
			n, _ := strconv.Atoi(m[1])
			if shown+n != reasons {
				t.Fatalf("%d reasons shown + %d more != %d", shown, n, reasons)
			}
			if !strings.Contains(text, "… ") || !strings.Contains(text, "event 01937a2e-1111-7000-8000-000000000001") {
				t.Fatal("the footer was cut")
			}
			if !strings.Contains(text, "归档日志") || !strings.Contains(text, "…") {
				t.Fatal("the description is missing or not ellipsized")
			}
		})
	}
}

func TestDigest(t *testing.T) {
	t.Parallel()
	const n = 1000
	evs := digestEvents(t, n)
	for _, typ := range []string{"dingtalk", "wecom", "feishu", "slack"} {
		text := texts(t, typ, body(t, typ, notify.Message{Events: evs}))
		m := moreRE.FindStringSubmatch(text)
		if m == nil || m[2] != "event" {
			t.Fatalf("%s: no \"… N more events\" line", typ)
		}
		more, _ := strconv.Atoi(m[1])
		shown := regexp.MustCompile(`job-(\d{3})`).FindAllStringSubmatch(text, -1)
		if len(shown)+more != n {
			t.Fatalf("%s: %d shown + %d more != %d", typ, len(shown), more, n)
		}
		for i, s := range shown { // oldest first, none skipped
			if s[1] != fmt.Sprintf("%03d", i) {
				t.Fatalf("%s: line %d is %s", typ, i, s[0])
			}
		}
		if !strings.Contains(text, "1000 events for target prod-hz") && typ != "feishu" && typ != "slack" {
			t.Fatalf("%s: no digest header", typ)
		}
	}
}

func TestTemplate(t *testing.T) {
	t.Parallel()
	ev := failedEvent(t)
	tmpl := template.Must(template.New("r").Parse("**{{.Data.JobID}}** went {{.Data.PreviousStatus}} → {{.Data.Status}} on {{.Data.Target}}\n"))
	for _, typ := range []string{"dingtalk", "wecom", "feishu", "slack"} {
		text := texts(t, typ, body(t, typ, notify.Message{Events: []notify.Event{ev}, Template: tmpl}))
		if !strings.Contains(text, "**MzRjZGU2NGQ3YTY5NGRhMTkxZmZhYzY5OTM5YTcxYWU=** went Active → Failed on prod-hz") {
			t.Fatalf("%s: template not used:\n%s", typ, text)
		}
	}
	bad := template.Must(template.New("r").Parse("{{.Data.NoSuchField}}"))
	text := texts(t, "dingtalk", body(t, "dingtalk", notify.Message{Events: []notify.Event{ev}, Template: bad}))
	if !strings.Contains(text, "Template error") || !strings.Contains(text, "Active → Failed") {
		t.Fatalf("a failing template should fall back to the default text with a note:\n%s", text)
	}
}

func TestWebhookTakesNoDigest(t *testing.T) {
	t.Parallel()
	if notify.Digestible("webhook") || !notify.Digestible("dingtalk") || !notify.Digestible("slack") {
		t.Fatal("Digestible")
	}
	s, _ := notify.NewSender(notify.ReceiverConfig{Name: "w", Type: "webhook", URL: "http://127.0.0.1:1/"}, nil, nil)
	ev := failedEvent(t)
	_, err := s.Send(context.Background(), notify.Message{Events: []notify.Event{ev, ev}})
	var se *notify.SendError
	if !errors.As(err, &se) || !se.Slow || !strings.Contains(err.Error(), "one event per request") {
		t.Fatalf("got %v, want a slow error: the engine must not fold a webhook's events", err)
	}
}

func TestParseTemplate(t *testing.T) {
	t.Parallel()
	tmpl, err := notify.ParseTemplate("failures", "{{upper .Data.Status}} {{time .Data.ObservedAt}} {{time .Data.FailsAt}} {{esc .Data.Description}}")
	if err != nil {
		t.Fatal(err)
	}
	text := texts(t, "wecom", body(t, "wecom", notify.Message{Events: []notify.Event{failedEvent(t)}, Template: tmpl}))
	if !strings.Contains(text, "\nFAILED 2026-11-24 09:30:00 UTC - Tag &lt;archive&gt; &amp; logs\n") {
		t.Fatalf("got %q", text)
	}
	if _, err := notify.ParseTemplate("bad", "{{.Data"); err == nil || !strings.Contains(err.Error(), "route bad") {
		t.Fatalf("got %v", err)
	}
}

// TestParseTemplateRunsOnSample: a template that cannot render the sample
// event (a misspelt field, a runaway range) fails config loading with a
// message naming the route and the fault, instead of every message
// carrying a "Template error" line.
func TestParseTemplateRunsOnSample(t *testing.T) {
	t.Parallel()
	for text, want := range map[string]string{
		"{{.Data.Jobid}}":                    "Jobid",
		"{{range 3000000}}xxxxxxxxxx{{end}}": "output over",
		`{{index .Data.FailureReasons 0 | printf "%v"}} {{.NoSuchAttr}}`: "NoSuchAttr",
	} {
		_, err := notify.ParseTemplate("failures", text)
		if err == nil || !strings.Contains(err.Error(), "route failures") || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want an error naming the route and %q", text, err, want)
		}
	}
	if _, err := notify.ParseTemplate("ok", "{{esc .Data.JobID}} {{join (list) \",\"}}"); err == nil {
		t.Error("an undefined function should fail")
	}
}

// TestTemplateOutputIsBounded: a template that writes without end stops
// early and the message goes out in the default form with a note.
func TestTemplateOutputIsBounded(t *testing.T) {
	t.Parallel()
	huge := template.Must(template.New("r").Parse(`{{range 3000000}}xxxxxxxxxx{{end}}`))
	text := texts(t, "dingtalk", body(t, "dingtalk", notify.Message{Events: []notify.Event{failedEvent(t)}, Template: huge}))
	if !strings.Contains(text, "Template error") || !strings.Contains(text, "output over") || !strings.Contains(text, "Active → Failed") {
		t.Fatalf("want the default text with a template error line:\n%.800s", text)
	}
}

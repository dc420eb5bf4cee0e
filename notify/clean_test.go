package notify_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ossjobwatch/ossjobwatch/notify"
)

// TestUserDataIsCleaned: control characters, invalid UTF-8 and U+2028 in
// user data would grow on the wire (JSON spells them \u0001, U+FFFD,
// \u2028) past what the limits measured, and no platform shows them.
func TestUserDataIsCleaned(t *testing.T) {
	t.Parallel()
	dirty := "a\x00b\x01c\x1b[31md\x7fe\xff\xfef\u2028g\u2029h"
	e := failedEvent(t)
	e.Data.JobID = "job" + dirty
	e.Data.Status = "Failed" + dirty
	e.Data.Description = dirty
	e.Data.Target = "prod" + dirty
	m := notify.Message{Events: []notify.Event{e}}
	for _, typ := range []string{"dingtalk", "feishu", "wecom", "slack"} {
		b := body(t, typ, m)
		if !utf8.Valid(b) {
			t.Errorf("%s: body is not valid UTF-8", typ)
		}
		if bytes.Contains(b, []byte(`\u00`)) || bytes.Contains(b, []byte(`\u202`)) {
			t.Errorf("%s: control or separator characters reached the wire:\n%s", typ, b)
		}
		if text := texts(t, typ, b); !strings.Contains(text, "abc") {
			t.Errorf("%s: the text around the control characters is lost:\n%s", typ, text)
		}
	}
}

// TestInvalidUTF8StaysWithinWeComLimit: each invalid byte was measured as
// one byte but went out as U+FFFD, three.
func TestInvalidUTF8StaysWithinWeComLimit(t *testing.T) {
	t.Parallel()
	e := failedEvent(t)
	bad := strings.Repeat("\xff", 900)
	e.Data.Description, e.Data.StatusUpdateReason = bad, bad
	e.Data.FailureReasons = []notify.FailureReason{{Code: "A", Reason: bad}, {Code: "B", Reason: bad}, {Code: "C", Reason: bad}}
	text := texts(t, "wecom", body(t, "wecom", notify.Message{Events: []notify.Event{e}}))
	if len(text) > 4096 {
		t.Fatalf("wecom content %d bytes on the wire, over 4096", len(text))
	}
}

// TestFeishuCardShrinksInProportion: when JSON escaping doubles the
// card's text (every '"' becomes '\"'), the card is cut to fit 20 KB, no
// further, and keeps its fields and footer.
func TestFeishuCardShrinksInProportion(t *testing.T) {
	t.Parallel()
	for name, unit := range map[string]string{"quotes": `"`, "quotes and controls": "\"\x01\"\x02\t"} {
		e := failedEvent(t)
		e.Data.Description = strings.Repeat(unit, 6000)
		e.Data.FailureReasons = nil
		for range 300 {
			e.Data.FailureReasons = append(e.Data.FailureReasons, notify.FailureReason{Code: "C", Reason: strings.Repeat(unit, 200)})
		}
		b := body(t, "feishu", notify.Message{Events: []notify.Event{e}})
		if len(b) > 20<<10 {
			t.Fatalf("%s: body %d bytes, over 20 KB", name, len(b))
		}
		if len(b) < 15<<10 {
			t.Errorf("%s: body %d bytes: cut far more than the 20 KB limit needs", name, len(b))
		}
		text := texts(t, "feishu", b)
		for _, want := range []string{"**Job**", "**Status**", "**Tasks**", "event 01937a2e-1111-7000-8000-000000000001"} {
			if !strings.Contains(text, want) {
				t.Errorf("%s: the card lost %q:\n%.600s", name, want, text)
			}
		}
	}
}

// TestLongTitleIsCut: a status (raw data from OSS) or target of any length
// must not push the heading past a platform's limit.
func TestLongTitleIsCut(t *testing.T) {
	t.Parallel()
	e := failedEvent(t)
	e.Data.Status = strings.Repeat("X", 5000)
	amp := failedEvent(t)
	amp.Data.Target = strings.Repeat("&", 3000) // escaped as &amp;: five times longer
	for name, ev := range map[string]notify.Event{"long status": e, "escaped target": amp} {
		for _, typ := range []string{"dingtalk", "feishu", "wecom", "slack"} {
			b := body(t, typ, notify.Message{Events: []notify.Event{ev}})
			text := texts(t, typ, b)
			if typ == "wecom" && len(text) > 4096 {
				t.Errorf("%s: wecom content %d bytes, over 4096", name, len(text))
			}
			if !strings.Contains(text, "**Job**") && !strings.Contains(text, "*Job*") {
				t.Errorf("%s: %s: the heading crowded out the fields:\n%.300s", name, typ, text)
			}
			if !strings.Contains(text, "event 01937a2e-1111-7000-8000-000000000001") {
				t.Errorf("%s: %s: the footer is gone", name, typ)
			}
		}
		var v struct{ Markdown struct{ Title string } }
		_ = json.Unmarshal(body(t, "dingtalk", notify.Message{Events: []notify.Event{ev}}), &v)
		if n := utf8.RuneCountInString(v.Markdown.Title); n > 200 {
			t.Errorf("%s: dingtalk title %d characters", name, n)
		}
	}
}

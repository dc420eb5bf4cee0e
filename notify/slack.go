package notify

import (
	"context"
	"errors"
	"strings"
)

// Slack incoming webhook, Block Kit messages.
//
// Documented (docs.slack.dev, "Sending messages using incoming webhooks",
// "Rate limits", Block Kit reference):
//   - POST {"text", "blocks"}; text is the notification fallback when
//     blocks are present. Success is HTTP 200 with body "ok"; errors are
//     HTTP 400 invalid_payload / 403 action_prohibited / 404 no_service /
//     410 channel_is_archived / 500 rollup_error.
//   - message posting is limited to about 1 per second per channel, with
//     short bursts allowed; beyond it HTTP 429 with Retry-After.
//   - a message has at most 50 blocks; a section's text at most 3000
//     characters; a header's at most 150; text at most 40,000 (truncated
//     beyond). Messages whose blocks total more than about 13,000
//     characters are refused (msg_blocks_too_long, reported in
//     slackapi/bolt-js#2509), so slackTextLimit stays below that.

const (
	slackTextLimit    = 11000
	slackSectionLimit = 2900
	slackHeaderLimit  = 150
	slackMaxBlocks    = 50
)

var slackStyle = style{
	esc:    slackEsc,
	bold:   func(s string) string { return "*" + s + "*" },
	small:  func(s string) string { return s },
	bullet: "• ",
	sep:    "\n",
	size:   runes,
}

type slack struct{ base }

type slackText struct {
	Type  string `json:"type"`
	Text  string `json:"text"`
	Emoji bool   `json:"emoji,omitempty"`
	// Verbatim stops Slack from turning URLs, #channels and @mentions in
	// user data into links and pings.
	Verbatim bool `json:"verbatim,omitempty"`
}

type slackBlock struct {
	Type     string      `json:"type"`
	Text     *slackText  `json:"text,omitempty"`
	Elements []slackText `json:"elements,omitempty"`
}

type slackBody struct {
	Text   string       `json:"text"`
	Blocks []slackBlock `json:"blocks"`
}

func slackMessage(m Message) []byte {
	c := compose(m, slackStyle, slackTextLimit)
	b := slackBody{Text: slackEsc(c.Title) + "\n" + c.Body}
	b.Blocks = append(b.Blocks, slackBlock{Type: "header",
		Text: &slackText{Type: "plain_text", Text: cutRunes(c.Title, slackHeaderLimit), Emoji: true}})
	for _, sec := range chunkLines(c.Body, slackSectionLimit) {
		if len(b.Blocks) == slackMaxBlocks-1 {
			break // cannot happen within slackTextLimit; keep the footer anyway
		}
		b.Blocks = append(b.Blocks, slackBlock{Type: "section", Text: &slackText{Type: "mrkdwn", Text: sec, Verbatim: true}})
	}
	b.Blocks = append(b.Blocks, slackBlock{Type: "context", Elements: []slackText{{Type: "mrkdwn", Text: c.Footer, Verbatim: true}}})
	return marshal(b)
}

// chunkLines splits text at line ends into pieces of at most n characters
// (a longer line is cut on a rune boundary).
func chunkLines(text string, n int) []string {
	var out []string
	var cur strings.Builder
	curN := 0
	flush := func() {
		if curN > 0 {
			out = append(out, cur.String())
			cur.Reset()
			curN = 0
		}
	}
	for _, l := range strings.Split(text, "\n") {
		l = ellipsizeBy(l, n, runes)
		ln := runes(l)
		if curN > 0 && curN+1+ln > n {
			flush()
		}
		if curN > 0 {
			cur.WriteByte('\n')
			curN++
		}
		cur.WriteString(l)
		curN += ln
	}
	flush()
	return out
}

func (s *slack) Send(ctx context.Context, m Message) (Reply, error) {
	rp, serr := s.do(ctx, request{url: s.url, contentType: "application/json; charset=utf-8", body: slackMessage(m)})
	if serr != nil {
		return Reply{}, serr
	}
	if e := s.judge(rp); e != nil {
		return Reply{}, e
	}
	return s.okReply(rp), nil
}

// judge accepts what Slack documents as success, HTTP 200 with the body
// "ok" (docs.slack.dev, "Sending messages using incoming webhooks"; the
// Python SDK's example asserts both). Another 2xx, or a 200 with another
// body, came from something in between (a proxy, a captive portal): the
// message did not reach Slack, and a person must look.
func (s *slack) judge(rp reply) *SendError {
	if e := s.httpError(rp); e != nil {
		return e
	}
	if rp.status == 200 && strings.TrimSpace(string(rp.body)) == "ok" {
		return nil
	}
	e := s.fail("rejected", rp.status, 0, errors.New("reply is not Slack's (want HTTP 200 \"ok\"): "+s.excerpt(rp.body)))
	e.Slow = true
	return e
}

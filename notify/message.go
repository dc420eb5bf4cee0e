package notify

import (
	"strings"
	"unicode/utf8"
)

// style is a platform's markdown dialect: how to escape user data, bold a
// label, set a heading and the small print, and what separates lines.
type style struct {
	esc     func(string) string
	bold    func(string) string
	heading func(string) string // nil: the platform shows the title itself
	small   func(string) string
	bullet  string
	sep     string
	// size measures text against the platform's limit: bytes unless set.
	size func(string) int
}

func (st style) measure(s string) int {
	if st.size != nil {
		return st.size(s)
	}
	return len(s)
}

// composed is a message ready for a platform: a plain-text title (for the
// notification preview or card header), the marked-up body, and how bad
// it is (a card's colour).
type composed struct {
	Title string
	// Plain is Title without its leading icon, for a header whose colour
	// already says it (Feishu's card).
	Plain    string
	Body     string
	Footer   string
	Severity severity
	Digest   bool
	// Shown is how many of a digest's events Body names; the others are
	// only counted ("… N more events").
	Shown int
}

// text is the body and the small print in one.
func (c composed) text(st style) string { return c.Body + st.sep + c.Footer }

// compose renders m in st within limit (as measured by st.size).
func compose(m Message, st style, limit int) composed {
	evs := m.Events
	if len(evs) == 0 {
		return composed{Title: "ossjobwatch", Body: st.esc("(no events)"), Footer: st.small("ossjobwatch")}
	}
	if len(evs) > 1 {
		return composeDigest(evs, st, limit)
	}
	e := evs[0]
	s := summarize(e)
	// Titles are plain text (a notification preview, a card header) but
	// hold user data: cleaned, not escaped.
	c := composed{Title: cutTitle(s.Icon + " " + plainTitle(s)), Plain: cutTitle(plainTitle(s)), Severity: s.Severity}
	head := st.head(c.Title, limit)
	foot := st.small(st.esc(s.Footer))
	c.Footer = foot
	budget := limit - st.measure(foot) - st.measure(st.sep)
	var lines []string
	if m.Template != nil {
		text, err := renderTemplate(m.Template, e, st.esc)
		if err != nil {
			// The message still goes out (nothing is dropped), in the
			// default form, saying what is wrong with the template: it
			// would fail the same way on every retry.
			lines = append(lines, st.bold("Template error")+": "+st.esc(err.Error()))
		} else {
			// The template's output is the operator's markup: not escaped,
			// only cleaned.
			lines = append(lines, strings.Split(strings.TrimRight(clean(text), "\n"), "\n")...)
			c.Body = fitLines(head, lines, "\n", budget, st.size, moreLines)
			return c
		}
	}
	for _, f := range s.Fields {
		lines = append(lines, st.bold(f.Label)+": "+st.esc(f.Value))
	}
	if len(s.List) > 0 {
		lines = append(lines, st.bold(s.ListHead)+":")
		for _, l := range s.List {
			lines = append(lines, st.bullet+st.esc(l))
		}
	}
	c.Body = fitLines(head, lines, st.sep, budget, st.size, moreLines)
	return c
}

func composeDigest(evs []Event, st style, limit int) composed {
	c := composed{Title: cutTitle("📋 " + digestTitle(evs)), Plain: cutTitle(digestTitle(evs)), Severity: digestSeverity(evs), Digest: true}
	head := st.head(c.Title, limit)
	lines := make([]string, len(evs))
	for i, e := range evs {
		lines[i] = st.bullet + st.esc(digestLine(e))
	}
	last := evs[len(evs)-1]
	foot := st.small(st.esc("ossjobwatch · " + fmtTime(last.Data.ObservedAt) + " · " + digestTitle(evs)))
	c.Footer = foot
	c.Body, c.Shown = fitLinesN(head, lines, st.sep, limit-st.measure(foot)-st.measure(st.sep), st.size, moreEvents)
	return c
}

// digestFit is how many of evs, oldest first, a digest to a receiver of
// type typ names in full: the worker sends those and leaves the rest for
// the next message, so that every event recorded delivered was shown. A
// type that takes no digests, or an unknown one, takes them all.
func digestFit(typ string, evs []Event) int {
	shown := func(evs []Event) int {
		m := Message{Events: evs}
		switch typ {
		case TypeDingTalk:
			return compose(m, dingTalkStyle, dingTalkTextLimit).Shown
		case TypeWeCom:
			return compose(m, weComStyle, weComTextLimit).Shown
		case TypeSlack:
			return compose(m, slackStyle, slackTextLimit).Shown
		case TypeFeishu:
			_, c := feishuBuild(m, "", "")
			return c.Shown
		}
		return len(evs)
	}
	n := len(evs)
	if n < 2 {
		return n
	}
	// Fewer events make a slightly different title and footer: measure
	// again until what is sent is shown whole.
	for {
		k := max(1, shown(evs[:n]))
		if k >= n || n == 1 {
			return n
		}
		n = k
	}
}

func plainTitle(s summary) string { return s.Headline + " · " + s.Target }

// titleRunes bounds a title: it holds a status and a target name, raw
// data of any length, and is shown whole in a notification preview.
const titleRunes = 200

// cutTitle cleans a plain-text title (user data, not escaped) and cuts it
// to titleRunes.
func cutTitle(s string) string { return cutRunes(clean(s), titleRunes) }

// head is the heading line of a text within limit, if the platform has
// one: the title, escaped, cut so the heading takes at most an eighth of
// the limit (escaping can make a title five times longer).
func (st style) head(title string, limit int) []string {
	if st.heading == nil {
		return nil
	}
	size := func(s string) int { return st.measure(st.heading(st.esc(s))) }
	return []string{st.heading(st.esc(ellipsizeBy(title, limit/8, size)))}
}

func moreLines(n int) string  { return moreLine(n, "line") }
func moreEvents(n int) string { return moreLine(n, "event") }

// runes measures text in characters (Slack's limits are in characters).
func runes(s string) int { return utf8.RuneCountInString(s) }

// Escapers. Job ids and descriptions can hold anything, markup included;
// these keep user data from turning into markup (a link, a heading, an
// HTML tag) on each platform.

// mdEscaper backslash-escapes CommonMark's inline markup characters and
// HTML-escapes angle brackets and ampersands: DingTalk and WeCom markdown
// (both render a subset of markdown plus a few HTML tags such as <font>).
var mdEscaper = strings.NewReplacer(
	"&", "&amp;", "<", "&lt;", ">", "&gt;",
	`\`, `\\`, "*", `\*`, "_", `\_`, "`", "\\`", "[", `\[`, "]", `\]`,
	"#", `\#`, "~", `\~`, "|", `\|`, "!", `\!`,
	"\r", "", "\n", " ",
)

func mdEsc(s string) string { return mdEscaper.Replace(clean(s)) }

// larkEscaper escapes Feishu card markdown (lark_md) with HTML entities,
// the escapes Feishu's card documentation lists for its special characters.
var larkEscaper = strings.NewReplacer(
	"&", "&amp;", "<", "&lt;", ">", "&gt;",
	"*", "&#42;", "_", "&#95;", "~", "&#126;", "`", "&#96;",
	"[", "&#91;", "]", "&#93;", "#", "&#35;",
	`\`, "&#92;",
	"\r", "", "\n", " ",
)

func larkEsc(s string) string { return larkEscaper.Replace(clean(s)) }

// slackEscaper escapes the three characters Slack's mrkdwn reserves
// (&, <, >: "Escaping text" in Slack's formatting reference).
var slackEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "\r", "", "\n", " ")

func slackEsc(s string) string { return slackEscaper.Replace(clean(s)) }

// clean makes user data safe to measure: invalid UTF-8 becomes U+FFFD (JSON
// would do it on the wire, making a byte three), C0 control characters and
// DEL go (JSON spells each \u00XX, six bytes, and no platform shows them)
// except tab and line ends, which the escapers handle, and U+2028/U+2029
// become line ends (JSON spells them \u2028). After clean, a text's JSON
// form is at most twice its size (a '"' is '\"').
func clean(s string) string {
	dirty := !utf8.ValidString(s)
	for i := 0; i < len(s) && !dirty; i++ {
		c := s[i]
		dirty = (c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f || c == 0xe2
	}
	if !dirty {
		return s
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			return r
		case r < 0x20 || r == 0x7f:
			return -1
		case r == '\u2028' || r == '\u2029':
			return '\n'
		}
		return r
	}, s)
}

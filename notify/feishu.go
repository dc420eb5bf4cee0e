package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"time"
)

// Feishu (Lark) custom bot ("自定义机器人"), interactive card messages.
//
// Documented (open.feishu.cn, "自定义机器人使用指南" / "Custom bot usage
// guide"):
//   - signing ("签名校验"): body fields timestamp (seconds, a string,
//     within one hour) and sign = base64(HmacSHA256(key = timestamp + "\n"
//     + secret, message = empty)); failure is code 19021 "sign match fail
//     or timestamp is not within one hour from current time".
//   - keywords ("自定义关键词") failure is code 19024 "Key Words Not Found";
//     IP allow-list failure is 19022 "Ip Not Allowed". These need a
//     person (SendError.Slow), as does 19001, an invalid hook token; other
//     codes are retried at the normal pace (see judge).
//   - a bot may send 100 requests a minute and 5 a second; code 11232 is
//     the throttling answer ("frequency limited").
//   - the request body may not exceed 20 KB; a malformed or oversized body
//     gets code 9499 "Bad Request".
//   - success is {"code":0,"msg":"success","data":{}}; older replies (and
//     the redundant fields of new ones) carry StatusCode/StatusMessage.

const (
	// feishuBodyLimit bounds the whole request body, in bytes (20 KB).
	feishuBodyLimit = 20 << 10
	// feishuTextLimit is the first budget of the card's markdown; it
	// shrinks until the body fits feishuBodyLimit.
	feishuTextLimit = 18000
	// feishuMinText is the smallest budget the shrinking goes to: room
	// for the fields. (A cleaned text at most doubles in JSON, so the
	// body fits long before.)
	feishuMinText = 4096
)

var feishuStyle = style{
	esc:    larkEsc,
	bold:   func(s string) string { return "**" + s + "**" },
	small:  func(s string) string { return s },
	bullet: "- ",
	sep:    "\n",
}

type feishu struct{ base }

type feishuText struct {
	Tag     string `json:"tag"`
	Content string `json:"content"`
}

type feishuElement struct {
	Tag      string       `json:"tag"`
	Text     *feishuText  `json:"text,omitempty"`
	Elements []feishuText `json:"elements,omitempty"`
}

type feishuCard struct {
	Config struct {
		WideScreenMode bool `json:"wide_screen_mode"`
	} `json:"config"`
	Header struct {
		Template string     `json:"template"`
		Title    feishuText `json:"title"`
	} `json:"header"`
	Elements []feishuElement `json:"elements"`
}

type feishuBody struct {
	Timestamp string     `json:"timestamp,omitempty"`
	Sign      string     `json:"sign,omitempty"`
	MsgType   string     `json:"msg_type"`
	Card      feishuCard `json:"card"`
}

// feishuColour is a card header's template colour.
func feishuColour(s severity) string {
	switch s {
	case sevBad:
		return "red"
	case sevGood:
		return "green"
	case sevWarn:
		return "orange"
	case sevMuted:
		return "grey"
	}
	return "blue"
}

// feishuMessage is the request body of m; timestamp and sign are empty
// when unsigned.
//
// The text's budget is in bytes before JSON encoding, the body's limit
// after: the budget shrinks in proportion to how much the body is over
// (escaping can double a text), never below feishuMinText, so the card
// keeps its fields however the user data escapes.
func feishuMessage(m Message, timestamp, sign string) []byte {
	body, _ := feishuBuild(m, timestamp, sign)
	return body
}

// feishuBuild is feishuMessage, also returning what it composed.
func feishuBuild(m Message, timestamp, sign string) ([]byte, composed) {
	budget := feishuTextLimit
	for {
		c := compose(m, feishuStyle, budget)
		b := feishuBody{Timestamp: timestamp, Sign: sign, MsgType: "interactive"}
		b.Card.Config.WideScreenMode = true
		b.Card.Header.Template = feishuColour(c.Severity)
		// The header is plain text: user data needs no escaping there. Its
		// colour says what an icon would, and a red ❌ on red is unreadable.
		b.Card.Header.Title = feishuText{Tag: "plain_text", Content: cutRunes(c.Plain, 100)}
		b.Card.Elements = []feishuElement{
			{Tag: "div", Text: &feishuText{Tag: "lark_md", Content: c.Body}},
			{Tag: "hr"},
			{Tag: "note", Elements: []feishuText{{Tag: "lark_md", Content: c.Footer}}},
		}
		body := marshal(b)
		if len(body) <= feishuBodyLimit || budget <= feishuMinText {
			return body, c
		}
		// The body holds the text's JSON form and a little more, so
		// scaling by the whole body's excess undershoots a little, never
		// overshoots.
		next := int(int64(budget) * (feishuBodyLimit - 256) / int64(len(body)))
		budget = max(min(next, budget-256), feishuMinText)
	}
}

// FeishuSign is Feishu's custom bot signature of a timestamp in seconds.
func FeishuSign(secret string, timestampSeconds int64) string {
	key := strconv.FormatInt(timestampSeconds, 10) + "\n" + secret
	mac := hmac.New(sha256.New, []byte(key))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func (f *feishu) Send(ctx context.Context, m Message) (Reply, error) {
	var ts, sign string
	if f.secret != "" {
		now := f.now().Unix()
		ts, sign = strconv.FormatInt(now, 10), FeishuSign(f.secret, now)
	}
	rp, serr := f.do(ctx, request{url: f.url, contentType: "application/json; charset=utf-8", body: feishuMessage(m, ts, sign)})
	if serr != nil {
		return Reply{}, serr
	}
	if e := f.judge(rp); e != nil {
		return Reply{}, e
	}
	return f.okReply(rp), nil
}

type feishuReply struct {
	Code          *int   `json:"code"`
	Msg           string `json:"msg"`
	StatusCode    *int   `json:"StatusCode"`
	StatusMessage string `json:"StatusMessage"`
}

// code is the reply's code: code, else the older StatusCode.
func (r feishuReply) code() (int, string, bool) {
	if r.Code != nil {
		return *r.Code, r.Msg, true
	}
	if r.StatusCode != nil {
		return *r.StatusCode, r.StatusMessage, true
	}
	return 0, "", false
}

func (f *feishu) judge(rp reply) *SendError {
	var r feishuReply
	jerr := json.Unmarshal(rp.body, &r)
	code, msg, has := r.code()
	if jerr != nil {
		has = false
	}
	e := f.httpError(rp)
	if e == nil {
		if !has {
			// Not Feishu: a proxy or a wrong URL, which a person must fix.
			e := f.fail("rejected", rp.status, 0, errors.New("reply is not Feishu's: "+f.excerpt(rp.body)))
			e.Slow = true
			return e
		}
		if code == 0 {
			return nil
		}
		// An unknown code is retried at the normal pace: Feishu documents
		// few of its codes, an unknown one may well be its own trouble,
		// and the backoff and the receiver's rate bound the cost. The
		// codes known to need a person are slow (below).
		e = f.fail("rejected", rp.status, code, errors.New(f.redact.Replace(msg)))
	} else if has && code != 0 {
		e.Code = code
	}
	if e.RetryAfter == 0 {
		// Feishu's gateway names its wait in x-ogw-ratelimit-reset
		// (seconds) rather than Retry-After.
		e.RetryAfter = retryAfter(rp.header.Get("X-Ogw-Ratelimit-Reset"), f.now())
	}
	switch code {
	case 11232, 99991400:
		e.Reason, e.Slow, e.Content = "throttled", false, false
		if e.RetryAfter == 0 {
			e.RetryAfter = time.Second
		}
	case 19021:
		e.Reason, e.Slow, e.Content = "signature", true, false
	case 19024:
		e.Reason, e.Slow, e.Content = "keyword", true, false
	case 19022:
		// "Ip Not Allowed": the bot's IP allow-list.
		e.Slow, e.Content = true, false
	case 19001:
		// "param invalid: incoming webhook access token invalid" (widely
		// reported, not in the guide): a wrong or deleted hook.
		e.Slow, e.Content = true, false
	case 9499:
		// Malformed or over 20 KB; ours is neither unless something
		// changed, so a person should look.
		e.Reason, e.Slow = "rejected", true
	}
	return e
}

package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DingTalk custom robot ("自定义机器人"), markdown messages.
//
// Documented (open.dingtalk.com, "自定义机器人接入" / "自定义机器人安全设置"):
//   - signing ("加签"): timestamp in ms, within one hour of DingTalk's
//     clock; sign = urlEncode(base64(HmacSHA256(key = secret,
//     msg = timestamp + "\n" + secret))), both appended to the webhook URL.
//   - each robot sends at most 20 messages a minute; beyond that it is
//     throttled for 10 minutes (errcode 130101, "send too fast, exceed 20
//     times per minute", with HTTP 200).
//   - security failures answer errcode 310000 with errmsg "sign not match",
//     "keywords not in content" or "ip X not in whitelist".
//
// Not documented by DingTalk but widely reported: a markdown text of more
// than about 20,000 bytes is refused; dingTalkTextLimit keeps under it.

const (
	// dingTalkTextLimit bounds markdown.text, in bytes.
	dingTalkTextLimit = 18000
	// dingTalkThrottleWait is how long to wait after errcode 130101: the
	// robot is throttled for 10 minutes, but the 20/min limit may have been
	// spent by another sender of the same robot; retrying a minute later
	// costs one refused request.
	dingTalkThrottleWait = time.Minute
)

var dingTalkStyle = style{
	esc:     mdEsc,
	bold:    func(s string) string { return "**" + s + "**" },
	heading: func(s string) string { return "#### " + s },
	small:   func(s string) string { return "###### " + s },
	bullet:  "- ",
	sep:     "\n\n",
}

type dingTalk struct{ base }

type dingTalkBody struct {
	MsgType  string `json:"msgtype"`
	Markdown struct {
		Title string `json:"title"`
		Text  string `json:"text"`
	} `json:"markdown"`
}

// dingTalkMessage is the request body of m.
func dingTalkMessage(m Message) []byte {
	c := compose(m, dingTalkStyle, dingTalkTextLimit)
	var b dingTalkBody
	b.MsgType = "markdown"
	b.Markdown.Title = c.Title
	b.Markdown.Text = c.text(dingTalkStyle)
	return marshal(b)
}

// DingTalkSign is DingTalk's robot signature of a timestamp in
// milliseconds, before URL encoding.
func DingTalkSign(secret string, timestampMillis int64) string {
	ts := strconv.FormatInt(timestampMillis, 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "\n" + secret))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func (d *dingTalk) Send(ctx context.Context, m Message) (Reply, error) {
	target := d.url
	if d.secret != "" {
		u, err := url.Parse(d.url)
		if err != nil {
			return Reply{}, d.fail("rejected", 0, 0, errors.New("url does not parse"))
		}
		ts := d.now().UnixMilli()
		q := u.Query()
		q.Set("timestamp", strconv.FormatInt(ts, 10))
		q.Set("sign", DingTalkSign(d.secret, ts))
		u.RawQuery = q.Encode()
		target = u.String()
	}
	rp, serr := d.do(ctx, request{url: target, contentType: "application/json; charset=utf-8", body: dingTalkMessage(m)})
	if serr != nil {
		return Reply{}, serr
	}
	if e := d.judge(rp); e != nil {
		return Reply{}, e
	}
	return d.okReply(rp), nil
}

// errcodeReply is DingTalk's and WeCom's answer.
type errcodeReply struct {
	ErrCode *int   `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
}

// judgeErrcode reads a DingTalk or WeCom answer: nil when errcode is 0; an
// HTTP failure, or a slow "rejected" one when the reply is not the
// platform's; otherwise a "rejected" failure carrying errcode and errmsg,
// with coded true, for the platform to classify.
func (b *base) judgeErrcode(rp reply, platform string) (r errcodeReply, e *SendError, coded bool) {
	jerr := json.Unmarshal(rp.body, &r)
	if e := b.httpError(rp); e != nil {
		if jerr == nil && r.ErrCode != nil && *r.ErrCode != 0 {
			e.Code = *r.ErrCode
		}
		return r, e, false
	}
	if jerr != nil || r.ErrCode == nil {
		// Not the platform: a proxy or a wrong URL, which a person must fix.
		e := b.fail("rejected", rp.status, 0, errors.New("reply is not "+platform+"'s: "+b.excerpt(rp.body)))
		e.Slow = true
		return r, e, false
	}
	if *r.ErrCode == 0 {
		return r, nil, false
	}
	return r, b.fail("rejected", rp.status, *r.ErrCode, errors.New(b.redact.Replace(r.ErrMsg))), true
}

func (d *dingTalk) judge(rp reply) *SendError {
	r, e, coded := d.judgeErrcode(rp, "DingTalk")
	if !coded {
		return e
	}
	code := e.Code
	msg := strings.ToLower(r.ErrMsg)
	switch {
	case code == 130101 || code == 410100:
		// 130101: "send too fast, exceed 20 times per minute". 410100
		// ("发送速度太快而限流") is the newer code for the same.
		e.Reason, e.RetryAfter = "throttled", dingTalkThrottleWait
	case code == 310000 && strings.Contains(msg, "keyword"):
		e.Reason, e.Slow = "keyword", true
	case code == 310000 && (strings.Contains(msg, "sign") || strings.Contains(msg, "timestamp")):
		e.Reason, e.Slow = "signature", true
	case code == -1:
		// "系统繁忙": DingTalk's busy answer, retry soon.
		e.Reason = "http_5xx"
	case code/1000 == 430:
		// 430xxx: this message's content refused; others may pass.
		e.Slow, e.Content = true, true
	default:
		// 310000 ip whitelist, 300001/400101 bad token, 400102 robot
		// disabled: a person must act.
		e.Slow = true
	}
	return e
}

// marshal encodes v as JSON without escaping <, > and & (the platforms
// read UTF-8 JSON; \u003c only makes bodies bigger and harder to read).
func marshal(v any) []byte {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic("notify: marshal: " + err.Error()) // only our own structs come here
	}
	return []byte(strings.TrimSuffix(b.String(), "\n"))
}

package notify

import (
	"context"
	"time"
)

// WeCom (企业微信) group robot ("群机器人"), markdown messages.
//
// Documented (developer.work.weixin.qq.com/document/path/91770, "群机器人配置说明"):
//   - POST {"msgtype":"markdown","markdown":{"content":…}} to the webhook
//     URL (its key= is the credential; there is no signing);
//   - markdown.content is at most 4096 bytes, UTF-8;
//   - each robot may send 20 messages a minute; beyond that the answer is
//     errcode 45009 ("api freq out of limit").
//   - success is {"errcode":0,"errmsg":"ok"}.

const (
	weComTextLimit = 4096
	// weComThrottleWait: the limit is per minute.
	weComThrottleWait = 30 * time.Second
)

var weComStyle = style{
	esc:     mdEsc,
	bold:    func(s string) string { return "**" + s + "**" },
	heading: func(s string) string { return "### " + s },
	small:   func(s string) string { return `<font color="comment">` + s + "</font>" },
	bullet:  "> ",
	sep:     "\n",
}

type weCom struct{ base }

type weComBody struct {
	MsgType  string `json:"msgtype"`
	Markdown struct {
		Content string `json:"content"`
	} `json:"markdown"`
}

func weComMessage(m Message) []byte {
	c := compose(m, weComStyle, weComTextLimit)
	var b weComBody
	b.MsgType = "markdown"
	b.Markdown.Content = c.text(weComStyle)
	return marshal(b)
}

func (w *weCom) Send(ctx context.Context, m Message) (Reply, error) {
	rp, serr := w.do(ctx, request{url: w.url, contentType: "application/json; charset=utf-8", body: weComMessage(m)})
	if serr != nil {
		return Reply{}, serr
	}
	if e := w.judge(rp); e != nil {
		return Reply{}, e
	}
	return w.okReply(rp), nil
}

func (w *weCom) judge(rp reply) *SendError {
	_, e, coded := w.judgeErrcode(rp, "WeCom")
	if !coded {
		return e
	}
	code := e.Code
	switch code {
	case 45009:
		e.Reason, e.RetryAfter = "throttled", weComThrottleWait
	case -1:
		e.Reason = "http_5xx" // "system busy"
	case 40058:
		// A field over its length limit; our content is cut to 4096
		// bytes, so this means the limit changed.
		e.Reason, e.Slow, e.Content = "too_large", true, true
	default:
		// 93000 invalid webhook url (a wrong or deleted key), …
		e.Slow = true
	}
	return e
}

package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DefaultRequestTimeout bounds one request when the caller's context has no
// deadline of its own.
const DefaultRequestTimeout = 10 * time.Second

// maxReplyBytes is how much of a reply's body is read: every platform's
// answer is a small JSON object (or "ok"); a proxy's HTML error page is not
// worth more.
const maxReplyBytes = 64 << 10

// replyBodyChars is how much of a reply's body Reply.Body keeps.
const replyBodyChars = 512

// NewSender returns the Sender of a receiver: it formats, signs and posts
// the request of rc.Type (see the contract's Notifications table) with hc
// and judges the platform's answer. now is the clock of the signatures'
// timestamps; nil means time.Now. hc nil means a client with
// DefaultRequestTimeout and a connection pool of the Sender's own. A Sender
// is safe for concurrent use.
func NewSender(rc ReceiverConfig, hc *http.Client, now func() time.Time) (Sender, error) {
	if rc.Name == "" {
		return nil, errors.New("receiver: empty name")
	}
	if rc.URL == "" {
		return nil, fmt.Errorf("receiver %s: empty url", rc.Name)
	}
	u, err := url.Parse(rc.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// The URL holds a token: say what is wrong without it.
		return nil, fmt.Errorf("receiver %s: url is not an absolute http(s) URL", rc.Name)
	}
	if hc == nil {
		hc = &http.Client{Transport: ownTransport(), Timeout: DefaultRequestTimeout}
	}
	hc = noRedirects(hc)
	if now == nil {
		now = time.Now
	}
	b := base{name: rc.Name, url: rc.URL, secret: rc.Secret, hc: hc, now: now, redact: newRedactor(rc)}
	switch rc.Type {
	case TypeDingTalk:
		return &dingTalk{base: b}, nil
	case TypeFeishu:
		return &feishu{base: b}, nil
	case TypeWeCom:
		if rc.Secret != "" {
			return nil, fmt.Errorf("receiver %s: type wecom takes no secret (its webhook key is in the url)", rc.Name)
		}
		return &weCom{base: b}, nil
	case TypeSlack:
		if rc.Secret != "" {
			return nil, fmt.Errorf("receiver %s: type slack takes no secret (its incoming webhook url is the secret)", rc.Name)
		}
		return &slack{base: b}, nil
	case TypeWebhook:
		key, err := WebhookKey(rc.Secret)
		if err != nil {
			return nil, fmt.Errorf("receiver %s: secret: %w", rc.Name, err)
		}
		return &webhook{base: b, key: key}, nil
	}
	return nil, fmt.Errorf("receiver %s: unknown type %q (want one of %s)", rc.Name, rc.Type, strings.Join(Types, ", "))
}

// noRedirects is a copy of hc that never follows a redirect: a 301/302
// would turn the POST into a bodiless GET whose 2xx looks like a delivery,
// and a 307/308 would forward the signed body to a host nobody configured.
// A redirect is answered as a failure (see httpError).
func noRedirects(hc *http.Client) *http.Client {
	c := *hc
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// ownTransport returns a copy of http.DefaultTransport (its proxy settings,
// timeouts, HTTP/2 and pool sizes) with a pool of its own. Whoever calls
// CloseIdleConnections on the shared DefaultTransport (httptest.Server's
// Close does; so do some libraries) can break a request in flight: after
// a reply without a body (a 204, a redirect) net/http puts the connection
// back in the pool a moment before it hands the reply over. It does not
// retry a POST, so the notification would fail, and its retry would post
// it again.
func ownTransport() http.RoundTripper {
	if t, ok := http.DefaultTransport.(*http.Transport); ok {
		return t.Clone()
	}
	return http.DefaultTransport
}

// Digestible reports whether a receiver type may get a digest, one request
// folding several events. Chat robots may; a webhook may not: its body is
// the CloudEvent exactly as published, one event per request, so the
// engine must never fold a webhook's events.
func Digestible(typ string) bool { return typ != TypeWebhook }

// base is what every Sender shares: where to post, the secret, the client
// and clock, and how to keep the URL's token and the secret out of errors.
type base struct {
	name   string
	url    string
	secret string
	hc     *http.Client
	now    func() time.Time
	redact redactor
}

// request is one POST to make.
type request struct {
	url         string
	contentType string
	header      http.Header
	body        []byte
}

// reply is what came back.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// do posts r and reads at most maxReplyBytes of the answer. Transport
// failures come back as *SendError ("timeout" or "network"), with the URL
// stripped.
func (b *base) do(ctx context.Context, r request) (reply, *SendError) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultRequestTimeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(r.body))
	if err != nil {
		return reply{}, b.fail("network", 0, 0, errors.New("build request"))
	}
	for k, vs := range r.header {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", r.contentType)
	req.Header.Set("User-Agent", "ossjobwatch-notify")
	resp, err := b.hc.Do(req)
	if err != nil {
		return reply{}, b.transportError(ctx, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxReplyBytes))
	if err != nil {
		return reply{}, b.transportError(ctx, err)
	}
	// Drain a little more so the connection can be reused; give up on
	// anything bigger.
	_, _ = io.CopyN(io.Discard, resp.Body, maxReplyBytes)
	return reply{status: resp.StatusCode, header: resp.Header, body: body}, nil
}

// transportError classifies a failed request: a deadline is "timeout",
// anything else "network". The error text never holds the URL: a
// *url.Error is unwrapped to its cause, and what is left is redacted.
func (b *base) transportError(ctx context.Context, err error) *SendError {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	msg := b.redact.Replace(err.Error())
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(ctx.Err(), context.Canceled):
		// The caller gave up (shutdown): "network", but errors.Is finds
		// context.Canceled.
		return b.fail("network", 0, 0, wrapSentinel(msg, context.Canceled))
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) || errors.Is(ctx.Err(), context.DeadlineExceeded):
		return b.fail("timeout", 0, 0, wrapSentinel(msg, context.DeadlineExceeded))
	}
	return b.fail("network", 0, 0, errors.New(msg))
}

// wrapSentinel is msg wrapping sentinel, without saying it twice.
func wrapSentinel(msg string, sentinel error) error {
	if msg == sentinel.Error() {
		return sentinel
	}
	return fmt.Errorf("%s: %w", msg, sentinel)
}

func (b *base) fail(reason string, status, code int, err error) *SendError {
	return &SendError{Receiver: b.name, Reason: reason, Status: status, Code: code, Err: err}
}

// okReply is the Reply of an accepted request.
func (b *base) okReply(rp reply) Reply {
	return Reply{Status: rp.status, Body: b.excerpt(rp.body)}
}

// excerpt is the start of a reply's body, redacted (a platform may echo
// the request), then cut on a UTF-8 boundary. Redacting first matters: a
// cut through a token would leave a prefix no redactor recognises.
func (b *base) excerpt(body []byte) string {
	s := b.redact.Replace(strings.TrimSpace(string(body)))
	return cutBytes(s, replyBodyChars)
}

// httpError judges a reply by its HTTP status alone: nil for 2xx, else a
// *SendError. 429 is "throttled"; 5xx "http_5xx"; 408 "timeout"; 413
// "too_large"; other 4xx "http_4xx", slow, since a person must fix it
// (both but 401, 403, 404 and 410 refuse the content: SendError.Content);
// 3xx "redirected", slow too: redirects are not followed (see
// noRedirects), so someone must configure the new URL. Retry-After is
// honoured on every failure that has it.
func (b *base) httpError(rp reply) *SendError {
	if rp.status >= 200 && rp.status < 300 {
		return nil
	}
	e := b.fail("http_4xx", rp.status, 0, nil)
	switch {
	case rp.status == http.StatusTooManyRequests:
		e.Reason = "throttled"
	case rp.status == http.StatusRequestTimeout:
		e.Reason = "timeout"
	case rp.status == http.StatusRequestEntityTooLarge:
		e.Reason = "too_large"
		e.Slow, e.Content = true, true
	case rp.status >= 500:
		e.Reason = "http_5xx"
	case rp.status >= 400:
		e.Slow = true
		// 401, 403, 404 and 410 are about the receiver (its credentials,
		// its URL), whatever the message; the rest about the request.
		switch rp.status {
		case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusGone:
		default:
			e.Content = true
		}
	case rp.status >= 300:
		// The body and the Location may hold another host's tokens: name
		// only the host.
		e.Reason, e.Slow = "redirected", true
		e.Err = errors.New(b.redirectTarget(rp.header.Get("Location")))
		return e
	default: // 1xx as a final answer: odd.
		e.Reason = "rejected"
	}
	e.RetryAfter = retryAfter(rp.header.Get("Retry-After"), b.now())
	if body := b.excerpt(rp.body); body != "" {
		e.Err = errors.New(body)
	}
	return e
}

// redirectTarget says where a redirect points, naming only the host of
// its Location (redacted, in case it is the receiver's own).
func (b *base) redirectTarget(location string) string {
	u, err := url.Parse(strings.TrimSpace(location))
	switch {
	case location == "":
		return "redirect without a Location; redirects are not followed"
	case err != nil:
		return "redirect to an unreadable Location; redirects are not followed"
	case u.Host == "":
		return "redirect to another path of the same host; redirects are not followed, configure the new URL"
	}
	return "redirect to host " + b.redact.Replace(u.Host) + "; redirects are not followed, configure the new URL"
}

// maxRetryAfter caps the wait a receiver may ask for.
const maxRetryAfter = 24 * time.Hour

// retryAfter reads a Retry-After header: delay-seconds or an HTTP-date
// (RFC 9110 §10.2.3), at most maxRetryAfter. 0 when absent, unreadable or
// past; a number too big for an int64 is the cap.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		return time.Duration(min(n, int64(maxRetryAfter/time.Second))) * time.Second
	} else if errors.Is(err, strconv.ErrRange) {
		if v[0] == '-' {
			return 0
		}
		return maxRetryAfter
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			// Up to a whole second: the date has no fraction.
			return min((d + time.Second - 1).Truncate(time.Second), maxRetryAfter)
		}
	}
	return 0
}

// minSecret is the length below which a secret is not replaced inside
// text: a one- to three-character secret would turn every word holding it
// into "[REDACTED]" and say which characters it is made of. Such a secret
// is worthless anyway; a text that is exactly it is still redacted.
const minSecret = 4

// Secrets are the strings of a receiver's config that must never reach a
// log, an error or the database: its URL, the values of the URL's query
// (a DingTalk access_token, a WeCom key), the long segments of its path (a
// Feishu hook token, a Slack webhook's path), the password of its
// userinfo, and its secret (also without its "whsec_" prefix), each also
// as it appears inside a JSON string (a reply echoing the request). A
// secret shorter than four characters is left out (see minSecret).
// Longest first, so a replacer built from them replaces a URL whole before
// its parts.
func Secrets(rc ReceiverConfig) []string {
	var out []string
	add := func(s string, minLen int) {
		if len(s) >= minLen && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	// Parts of the URL shorter than this are words ("robot", "send"),
	// not credentials.
	const minPart = 6
	add(rc.URL, 1)
	add(rc.Secret, minSecret)
	if rest, ok := strings.CutPrefix(rc.Secret, "whsec_"); ok {
		add(rest, minSecret)
	}
	if u, err := url.Parse(rc.URL); err == nil {
		add(u.RawQuery, minPart)
		for _, vs := range u.Query() {
			for _, v := range vs {
				add(v, minPart)
				add(url.QueryEscape(v), minPart)
			}
		}
		for _, seg := range strings.Split(u.Path, "/") {
			add(seg, 16)
		}
		if pw, ok := u.User.Password(); ok && len(pw) >= minSecret {
			add(pw, minSecret)
			add(u.User.String(), minSecret) // "user:p%40ss", as in the URL
		}
	}
	for _, s := range slices.Clone(out) {
		add(jsonString(s, true), 1)
		add(jsonString(s, false), 1)
	}
	slices.SortStableFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out
}

// jsonString is s as it appears between the quotes of a JSON string, with
// <, > and & escaped (as most encoders do) or not.
func jsonString(s string, escapeHTML bool) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(escapeHTML)
	_ = enc.Encode(s) // a string always encodes
	return strings.TrimSuffix(strings.TrimPrefix(strings.TrimSuffix(b.String(), "\n"), `"`), `"`)
}

// redactor replaces a receiver's Secrets with "[REDACTED]".
type redactor struct {
	r *strings.Replacer
	// short are secrets under minSecret: redacted only when they are the
	// whole text.
	short []string
}

func (r redactor) Replace(s string) string {
	if len(r.short) > 0 && slices.Contains(r.short, strings.TrimSpace(s)) {
		return "[REDACTED]"
	}
	return r.r.Replace(s)
}

func newRedactor(rc ReceiverConfig) redactor {
	var olds []string
	for _, s := range Secrets(rc) {
		olds = append(olds, s, "[REDACTED]")
	}
	rd := redactor{r: strings.NewReplacer(olds...)}
	for _, s := range []string{rc.Secret, strings.TrimPrefix(rc.Secret, "whsec_")} {
		if s != "" && len(s) < minSecret {
			rd.short = append(rd.short, s)
		}
	}
	return rd
}

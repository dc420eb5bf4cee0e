package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ossjobwatch/ossjobwatch/notify"
)

// TestReplyClassification sends one message to a server answering as
// scripted and checks how the answer is judged.
func TestReplyClassification(t *testing.T) {
	t.Parallel()
	httpDate := fixedNow.Add(90 * time.Second).Format(http.TimeFormat)
	type want struct {
		ok         bool
		reason     string
		code       int
		retryAfter time.Duration
		slow       bool
		content    bool
	}
	for _, tc := range []struct {
		name   string
		typ    string
		status int
		header map[string]string
		body   string
		want   want
	}{
		// DingTalk: errcode in an HTTP 200 reply.
		{"dingtalk ok", "dingtalk", 200, nil, `{"errcode":0,"errmsg":"ok"}`, want{ok: true}},
		{"dingtalk throttled", "dingtalk", 200, nil, `{"errcode":130101,"errmsg":"send too fast, exceed 20 times per minute"}`, want{reason: "throttled", code: 130101, retryAfter: time.Minute}},
		{"dingtalk throttled 410100", "dingtalk", 200, nil, `{"errcode":410100,"errmsg":"发送速度太快而限流"}`, want{reason: "throttled", code: 410100, retryAfter: time.Minute}},
		{"dingtalk bad sign", "dingtalk", 200, nil, `{"errcode":310000,"errmsg":"sign not match, more: [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]"}`, want{reason: "signature", code: 310000, slow: true}},
		{"dingtalk old timestamp", "dingtalk", 200, nil, `{"errcode":310000,"errmsg":"invalid timestamp"}`, want{reason: "signature", code: 310000, slow: true}},
		{"dingtalk keyword", "dingtalk", 200, nil, `{"errcode":310000,"errmsg":"keywords not in content, more: [...]"}`, want{reason: "keyword", code: 310000, slow: true}},
		{"dingtalk ip", "dingtalk", 200, nil, `{"errcode":310000,"errmsg":"ip 1.2.3.4 not in whitelist"}`, want{reason: "rejected", code: 310000, slow: true}},
		{"dingtalk bad token", "dingtalk", 200, nil, `{"errcode":300001,"errmsg":"token is not exist"}`, want{reason: "rejected", code: 300001, slow: true}},
		{"dingtalk content refused", "dingtalk", 200, nil, `{"errcode":430102,"errmsg":"含有不合适的文本"}`, want{reason: "rejected", code: 430102, slow: true, content: true}},
		{"dingtalk busy", "dingtalk", 200, nil, `{"errcode":-1,"errmsg":"系统繁忙"}`, want{reason: "http_5xx", code: -1}},
		{"dingtalk not json", "dingtalk", 200, nil, `<html>proxy</html>`, want{reason: "rejected", slow: true}},
		{"dingtalk 502", "dingtalk", 502, nil, `bad gateway`, want{reason: "http_5xx"}},
		// Feishu: code, or the older StatusCode.
		{"feishu ok", "feishu", 200, nil, `{"code":0,"msg":"success","data":{}}`, want{ok: true}},
		{"feishu ok old", "feishu", 200, nil, `{"Extra":null,"StatusCode":0,"StatusMessage":"success"}`, want{ok: true}},
		{"feishu old refused", "feishu", 200, nil, `{"StatusCode":19021,"StatusMessage":"sign match fail"}`, want{reason: "signature", code: 19021, slow: true}},
		{"feishu throttled", "feishu", 200, nil, `{"code":11232,"msg":"frequency limited psm[x]","data":{}}`, want{reason: "throttled", code: 11232, retryAfter: time.Second}},
		{"feishu gateway 429", "feishu", 429, map[string]string{"X-Ogw-Ratelimit-Reset": "52"}, `{"code":99991400,"msg":"request trigger frequency limit"}`, want{reason: "throttled", code: 99991400, retryAfter: 52 * time.Second}},
		{"feishu bad sign", "feishu", 200, nil, `{"code":19021,"msg":"sign match fail or timestamp is not within one hour from current time","data":{}}`, want{reason: "signature", code: 19021, slow: true}},
		{"feishu keyword", "feishu", 200, nil, `{"code":19024,"msg":"Key Words Not Found"}`, want{reason: "keyword", code: 19024, slow: true}},
		{"feishu ip", "feishu", 200, nil, `{"code":19022,"msg":"Ip Not Allowed"}`, want{reason: "rejected", code: 19022, slow: true}},
		{"feishu bad request", "feishu", 400, nil, `{"code":9499,"msg":"Bad Request","data":{}}`, want{reason: "rejected", code: 9499, slow: true, content: true}},
		{"feishu empty", "feishu", 200, nil, `{}`, want{reason: "rejected", slow: true}},
		{"feishu not json", "feishu", 200, nil, `<html>proxy</html>`, want{reason: "rejected", slow: true}},
		{"feishu unknown code", "feishu", 200, nil, `{"code":12345,"msg":"something new"}`, want{reason: "rejected", code: 12345}},
		{"feishu bad token", "feishu", 200, nil, `{"code":19001,"msg":"param invalid: incoming webhook access token invalid"}`, want{reason: "rejected", code: 19001, slow: true}},
		// WeCom.
		{"wecom ok", "wecom", 200, nil, `{"errcode":0,"errmsg":"ok"}`, want{ok: true}},
		{"wecom not json", "wecom", 200, nil, `<html>proxy</html>`, want{reason: "rejected", slow: true}},
		{"wecom throttled", "wecom", 200, nil, `{"errcode":45009,"errmsg":"api freq out of limit"}`, want{reason: "throttled", code: 45009, retryAfter: 30 * time.Second}},
		{"wecom bad key", "wecom", 200, nil, `{"errcode":93000,"errmsg":"invalid webhook url"}`, want{reason: "rejected", code: 93000, slow: true}},
		{"wecom too long", "wecom", 200, nil, `{"errcode":40058,"errmsg":"markdown.content exceed max length 4096"}`, want{reason: "too_large", code: 40058, slow: true, content: true}},
		// Slack: HTTP status.
		{"slack ok", "slack", 200, nil, `ok`, want{ok: true}},
		{"slack 429 seconds", "slack", 429, map[string]string{"Retry-After": "30"}, `rate_limited`, want{reason: "throttled", retryAfter: 30 * time.Second}},
		{"slack 429 no header", "slack", 429, nil, `rate_limited`, want{reason: "throttled"}},
		{"slack invalid", "slack", 400, nil, `invalid_payload`, want{reason: "http_4xx", slow: true, content: true}},
		{"slack archived", "slack", 410, nil, `channel_is_archived`, want{reason: "http_4xx", slow: true}},
		{"slack 500", "slack", 500, nil, `rollup_error`, want{reason: "http_5xx"}},
		{"slack 200 not ok", "slack", 200, nil, `<html>portal</html>`, want{reason: "rejected", slow: true}},
		{"slack 204", "slack", 204, nil, ``, want{reason: "rejected", slow: true}},
		// Webhook: any 2xx.
		{"webhook 204", "webhook", 204, nil, ``, want{ok: true}},
		{"webhook 202", "webhook", 202, nil, `queued`, want{ok: true}},
		{"webhook 503 date", "webhook", 503, map[string]string{"Retry-After": httpDate}, `down`, want{reason: "http_5xx", retryAfter: 90 * time.Second}},
		{"webhook 429 past date", "webhook", 429, map[string]string{"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, ``, want{reason: "throttled"}},
		{"webhook 413", "webhook", 413, nil, ``, want{reason: "too_large", slow: true, content: true}},
		{"webhook 400", "webhook", 400, nil, `bad event`, want{reason: "http_4xx", slow: true, content: true}},
		{"webhook 403", "webhook", 403, nil, `forbidden`, want{reason: "http_4xx", slow: true}},
		{"webhook 404", "webhook", 404, nil, `no such hook`, want{reason: "http_4xx", slow: true}},
		{"webhook 429 overflowing retry-after", "webhook", 429, map[string]string{"Retry-After": "99999999999999999999"}, ``, want{reason: "throttled", retryAfter: 24 * time.Hour}},
		{"webhook 429 day and more", "webhook", 429, map[string]string{"Retry-After": "86401"}, ``, want{reason: "throttled", retryAfter: 24 * time.Hour}},
		{"webhook 429 negative overflow", "webhook", 429, map[string]string{"Retry-After": "-99999999999999999999"}, ``, want{reason: "throttled"}},
		{"webhook 408", "webhook", 408, nil, ``, want{reason: "timeout"}},
		{"webhook 401", "webhook", 401, nil, `bad signature`, want{reason: "http_4xx", slow: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			}))
			t.Cleanup(srv.Close)
			s, err := notify.NewSender(notify.ReceiverConfig{Name: "rcv", Type: tc.typ, URL: srv.URL + "/hook?access_token=t0k3n-s3cr3t-value"}, nil, func() time.Time { return fixedNow })
			if err != nil {
				t.Fatal(err)
			}
			rep, err := s.Send(context.Background(), notify.Message{Events: []notify.Event{notify.SampleEvent(fixedNow)}})
			if tc.want.ok {
				if err != nil {
					t.Fatalf("want accepted, got %v", err)
				}
				if rep.Status != tc.status {
					t.Fatalf("reply %+v", rep)
				}
				return
			}
			var se *notify.SendError
			if !errors.As(err, &se) {
				t.Fatalf("want *SendError, got %v (reply %+v)", err, rep)
			}
			got := want{reason: se.Reason, code: se.Code, retryAfter: se.RetryAfter, slow: se.Slow, content: se.Content}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v (%v)", got, tc.want, se)
			}
			if se.Status != tc.status || se.Receiver != "rcv" {
				t.Fatalf("status %d receiver %q", se.Status, se.Receiver)
			}
		})
	}
}

// TestTransportErrors: timeouts and refused connections, with the URL's
// token kept out of the error.
func TestTransportErrors(t *testing.T) {
	t.Parallel()
	const token = "access-token-9f8e7d6c5b4a"
	block := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(block); slow.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + ln.Addr().String()
	ln.Close()

	for _, tc := range []struct {
		name, url, reason string
		timeout           time.Duration
		sentinel          error
	}{
		{"timeout", slow.URL + "/robot/send?access_token=" + token, "timeout", 100 * time.Millisecond, context.DeadlineExceeded},
		{"refused", closedURL + "/robot/send?access_token=" + token, "network", time.Second, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := notify.NewSender(notify.ReceiverConfig{Name: "ops-dingtalk", Type: "dingtalk", URL: tc.url, Secret: "SECsecret-value-42"}, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), tc.timeout)
			defer cancel()
			_, err = s.Send(ctx, notify.Message{Events: []notify.Event{notify.SampleEvent(time.Now())}})
			var se *notify.SendError
			if !errors.As(err, &se) || se.Reason != tc.reason {
				t.Fatalf("got %v, want reason %s", err, tc.reason)
			}
			if tc.sentinel != nil && !errors.Is(err, tc.sentinel) {
				t.Fatalf("%v does not wrap %v", err, tc.sentinel)
			}
			for _, secret := range []string{token, "SECsecret-value-42", "access_token"} {
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("error leaks %q: %v", secret, err)
				}
			}
			if !strings.Contains(err.Error(), "ops-dingtalk") {
				t.Fatalf("error does not name the receiver: %v", err)
			}
		})
	}
	t.Run("canceled", func(t *testing.T) {
		t.Parallel()
		s, _ := notify.NewSender(notify.ReceiverConfig{Name: "r", Type: "slack", URL: slow.URL + "/services/T/B/" + token}, nil, nil)
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		_, err := s.Send(ctx, notify.Message{Events: []notify.Event{notify.SampleEvent(time.Now())}})
		if !errors.Is(err, context.Canceled) || strings.Contains(err.Error(), token) {
			t.Fatalf("got %v", err)
		}
	})
}

// TestRepliesAreRedacted: a platform echoing the request must not leak the
// token or the secret through Reply.Body or the error.
func TestRepliesAreRedacted(t *testing.T) {
	t.Parallel()
	const token, secret = "tok-0123456789abcdef", "SECsecret-0123456789"
	for _, status := range []int{200, 400} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(status)
			code := 0
			if status != 200 {
				code = 40035
			}
			_, _ = io.WriteString(w, `{"errcode":`+strconv.Itoa(code)+`,"errmsg":"you sent `+r.URL.String()+` with `+secret+`"}`)
		}))
		t.Cleanup(srv.Close)
		s, _ := notify.NewSender(notify.ReceiverConfig{Name: "d", Type: "dingtalk", URL: srv.URL + "/robot/send?access_token=" + token, Secret: secret}, nil, nil)
		rep, err := s.Send(context.Background(), notify.Message{Events: []notify.Event{notify.SampleEvent(time.Now())}})
		text := rep.Body
		if err != nil {
			text += err.Error()
		}
		if strings.Contains(text, token) || strings.Contains(text, secret) || !strings.Contains(text, "[REDACTED]") {
			t.Fatalf("HTTP %d: not redacted: %q", status, text)
		}
	}
}

func TestSecrets(t *testing.T) {
	t.Parallel()
	got := notify.Secrets(notify.ReceiverConfig{
		URL:    "https://oapi.dingtalk.com/robot/send?access_token=0123456789abcdef",
		Secret: "whsec_c2VjcmV0",
	})
	want := []string{
		"https://oapi.dingtalk.com/robot/send?access_token=0123456789abcdef",
		"access_token=0123456789abcdef",
		"0123456789abcdef",
		"whsec_c2VjcmV0",
		"c2VjcmV0",
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("got %q, want %q", got, want)
	}
	got = notify.Secrets(notify.ReceiverConfig{URL: "https://hooks.slack.com/services/T0001/B0001/XXXXXXXXXXXXXXXXXXXXXXXX"})
	if len(got) != 2 || got[1] != "XXXXXXXXXXXXXXXXXXXXXXXX" {
		t.Fatalf("slack: %q", got)
	}
}

// TestReplyExcerptRedactsBeforeCutting: a token echoed across the point
// where a reply's excerpt is cut must not leak its first characters.
func TestReplyExcerptRedactsBeforeCutting(t *testing.T) {
	t.Parallel()
	const token = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for pad := 430; pad < 520; pad += 7 {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(400)
			_, _ = io.WriteString(w, strings.Repeat("x", pad)+" bad url "+r.URL.String())
		}))
		s, _ := notify.NewSender(notify.ReceiverConfig{Name: "d", Type: "dingtalk", URL: srv.URL + "/robot/send?access_token=" + token}, nil, nil)
		_, err := s.Send(context.Background(), notify.Message{Events: []notify.Event{notify.SampleEvent(time.Now())}})
		srv.Close()
		if err == nil {
			t.Fatal("want an error")
		}
		msg := err.Error()
		if i := strings.LastIndex(msg, "access_token="); i >= 0 {
			if tail := msg[i+len("access_token="):]; len(tail) >= 4 && strings.HasPrefix(token, tail) {
				t.Fatalf("pad %d: error leaks the first %d characters of the token: %q", pad, len(tail), tail)
			}
		}
		for n := 8; n <= len(token); n += 8 {
			if strings.Contains(msg, token[:n]) {
				t.Fatalf("pad %d: error holds %q", pad, token[:n])
			}
		}
	}
}

// TestSecretsCoverPasswordAndJSONForms: the URL's userinfo password is a
// secret, and every secret is also listed as a JSON string spells it, for
// a reply that echoes the request as JSON.
func TestSecretsCoverPasswordAndJSONForms(t *testing.T) {
	t.Parallel()
	got := notify.Secrets(notify.ReceiverConfig{URL: "https://bot:p%40ss-word@hook.example/x", Secret: `se"cr<et&`})
	for _, want := range []string{"p@ss-word", "bot:p%40ss-word", `se"cr<et&`, `se\"cr<et&`, `se\"cr\u003cet\u0026`} {
		if !slices.Contains(got, want) {
			t.Errorf("Secrets lacks %q: %q", want, got)
		}
	}
}

// TestShortSecretsAreNotReplacedInText: a secret of one to three
// characters is left out of Secrets (replacing it inside words would
// garble every error and spell it out), yet a reply that is exactly the
// secret is still redacted.
func TestShortSecretsAreNotReplacedInText(t *testing.T) {
	t.Parallel()
	if got := notify.Secrets(notify.ReceiverConfig{URL: "https://h.example/x", Secret: "abc"}); slices.Contains(got, "abc") {
		t.Fatalf("Secrets holds a 3-character secret: %q", got)
	}
	for body, want := range map[string]string{"abc": "[REDACTED]", "the cabbage is bad": "the cabbage is bad"} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(400)
			_, _ = io.WriteString(w, body)
		}))
		s, _ := notify.NewSender(notify.ReceiverConfig{Name: "d", Type: "dingtalk", URL: srv.URL + "/robot/send", Secret: "abc"}, nil, nil)
		_, err := s.Send(context.Background(), notify.Message{Events: []notify.Event{notify.SampleEvent(time.Now())}})
		srv.Close()
		if err == nil || !strings.HasSuffix(err.Error(), ": "+want) {
			t.Errorf("reply %q: got %v, want it to end %q", body, err, want)
		}
	}
}

// TestJSONEchoedSecretIsRedacted: a reply echoing the request as JSON
// spells a secret with escapes; those forms are redacted too.
func TestJSONEchoedSecretIsRedacted(t *testing.T) {
	t.Parallel()
	const secret = `SEC"quote<and>&amp`
	echo, _ := json.Marshal(map[string]string{"you_sent": secret})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(400)
		_, _ = w.Write(echo)
	}))
	t.Cleanup(srv.Close)
	s, _ := notify.NewSender(notify.ReceiverConfig{Name: "d", Type: "dingtalk", URL: srv.URL + "/robot/send", Secret: secret}, nil, nil)
	_, err := s.Send(context.Background(), notify.Message{Events: []notify.Event{notify.SampleEvent(time.Now())}})
	if err == nil || strings.Contains(err.Error(), "quote") || !strings.Contains(err.Error(), "[REDACTED]") {
		t.Fatalf("got %v", err)
	}
}

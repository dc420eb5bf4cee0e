package notify_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ossjobwatch/ossjobwatch/notify"
)

// The expected signatures here are computed inline from each platform's
// documented formula with crypto/hmac, never by calling notify's signers.

func hmacSHA256B64(key, msg []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// captured is one request a capturing server saw.
type captured struct {
	url    *url.URL
	header http.Header
	body   []byte
}

// capture starts a server answering every request with status and body,
// and returns a channel of the requests it saw.
func capture(t *testing.T, status int, body string) (*httptest.Server, chan captured) {
	t.Helper()
	ch := make(chan captured, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		ch <- captured{url: r.URL, header: r.Header.Clone(), body: b}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, ch
}

var fixedNow = time.Date(2026, 11, 24, 9, 30, 0, 123_000_000, time.UTC)

func sendOne(t *testing.T, rc notify.ReceiverConfig) {
	t.Helper()
	s, err := notify.NewSender(rc, nil, func() time.Time { return fixedNow })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Send(context.Background(), notify.Message{Events: []notify.Event{notify.SampleEvent(fixedNow)}}); err != nil {
		t.Fatalf("send: %v", err)
	}
}

func TestDingTalkSignature(t *testing.T) {
	t.Parallel()
	const secret = "SEC0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab"
	srv, reqs := capture(t, 200, `{"errcode":0,"errmsg":"ok"}`)
	sendOne(t, notify.ReceiverConfig{Name: "d", Type: notify.TypeDingTalk, URL: srv.URL + "/robot/send?access_token=tok123", Secret: secret})
	r := <-reqs
	q := r.url.Query()
	ts := strconv.FormatInt(fixedNow.UnixMilli(), 10)
	if q.Get("timestamp") != ts {
		t.Fatalf("timestamp %q, want %q (ms)", q.Get("timestamp"), ts)
	}
	want := hmacSHA256B64([]byte(secret), []byte(ts+"\n"+secret))
	if q.Get("sign") != want {
		t.Fatalf("sign %q, want %q", q.Get("sign"), want)
	}
	if q.Get("access_token") != "tok123" {
		t.Fatalf("access_token lost: %q", r.url.RawQuery)
	}
	// URL-encoded: base64's + / = must not appear raw in the query.
	if raw := r.url.RawQuery; strings.ContainsAny(rawParam(raw, "sign"), "+/=") {
		t.Fatalf("sign not URL-encoded in %q", raw)
	}
	if got := notify.DingTalkSign(secret, fixedNow.UnixMilli()); got != want {
		t.Fatalf("DingTalkSign %q, want %q", got, want)
	}
}

func TestFeishuSignature(t *testing.T) {
	t.Parallel()
	const secret = "fs-9fJ2kQ0xLr7v"
	srv, reqs := capture(t, 200, `{"code":0,"msg":"success","data":{}}`)
	sendOne(t, notify.ReceiverConfig{Name: "f", Type: notify.TypeFeishu, URL: srv.URL + "/open-apis/bot/v2/hook/abc", Secret: secret})
	r := <-reqs
	var body struct {
		Timestamp any    `json:"timestamp"`
		Sign      string `json:"sign"`
		MsgType   string `json:"msg_type"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatal(err)
	}
	ts := strconv.FormatInt(fixedNow.Unix(), 10)
	if body.Timestamp != ts { // a JSON string, in seconds
		t.Fatalf("timestamp %#v, want string %q", body.Timestamp, ts)
	}
	// Key = timestamp + "\n" + secret, message empty.
	want := hmacSHA256B64([]byte(ts+"\n"+secret), nil)
	if body.Sign != want {
		t.Fatalf("sign %q, want %q", body.Sign, want)
	}
	if body.MsgType != "interactive" {
		t.Fatalf("msg_type %q", body.MsgType)
	}
}

func TestWebhookSignature(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, secret string
		key          []byte
	}{
		{"whsec", "whsec_c2VjcmV0LWtleS1ieXRlcw==", []byte("secret-key-bytes")},
		{"raw", "my plain secret", []byte("my plain secret")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, reqs := capture(t, 204, "")
			sendOne(t, notify.ReceiverConfig{Name: "w", Type: notify.TypeWebhook, URL: srv.URL, Secret: tc.secret})
			r := <-reqs
			ev := notify.SampleEvent(fixedNow)
			if string(r.body) != string(ev.Raw) {
				t.Fatalf("body is not the event as published:\n%s\n%s", r.body, ev.Raw)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/cloudevents+json" {
				t.Fatalf("Content-Type %q", ct)
			}
			ts := strconv.FormatInt(fixedNow.Unix(), 10)
			if r.header.Get("webhook-id") != ev.ID || r.header.Get("webhook-timestamp") != ts {
				t.Fatalf("headers %v", r.header)
			}
			want := "v1," + hmacSHA256B64(tc.key, []byte(ev.ID+"."+ts+"."+string(r.body)))
			if got := r.header.Get("webhook-signature"); got != want {
				t.Fatalf("webhook-signature %q, want %q", got, want)
			}
		})
	}
}

// TestStandardWebhooksVector checks the Standard Webhooks specification's
// published test vector (the one its reference libraries test against).
func TestStandardWebhooksVector(t *testing.T) {
	t.Parallel()
	key, err := notify.WebhookKey("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	got := notify.WebhookSign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func TestWebhookKey(t *testing.T) {
	t.Parallel()
	if k, err := notify.WebhookKey(""); err != nil || k != nil {
		t.Fatalf("empty: %v %v", k, err)
	}
	if _, err := notify.WebhookKey("whsec_not base64!"); err == nil {
		t.Fatal("bad base64 accepted")
	}
	if _, err := notify.WebhookKey("whsec_"); err == nil {
		t.Fatal("empty whsec_ accepted")
	}
	if _, err := notify.NewSender(notify.ReceiverConfig{Name: "w", Type: "webhook", URL: "http://x", Secret: "whsec_%%"}, nil, nil); err == nil {
		t.Fatal("NewSender took a bad whsec_ secret")
	}
}

// rawParam is the raw (still encoded) value of a query parameter.
func rawParam(rawQuery, name string) string {
	for _, kv := range strings.Split(rawQuery, "&") {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v
		}
	}
	return ""
}

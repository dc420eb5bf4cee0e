package notify_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ossjobwatch/ossjobwatch/notify"
	"github.com/ossjobwatch/ossjobwatch/notify/notifytest"
)

// TestSendersAgainstFakes sends the sample event to each platform's fake
// and checks that it was accepted, signed when a secret is set.
func TestSendersAgainstFakes(t *testing.T) {
	t.Parallel()
	fakes := map[string]func(t *testing.T) *notifytest.Server{
		"dingtalk":        func(t *testing.T) *notifytest.Server { return notifytest.NewDingTalk(t, "") },
		"dingtalk-signed": func(t *testing.T) *notifytest.Server { return notifytest.NewDingTalk(t, "SECabc123def456") },
		"feishu":          func(t *testing.T) *notifytest.Server { return notifytest.NewFeishu(t, "") },
		"feishu-signed":   func(t *testing.T) *notifytest.Server { return notifytest.NewFeishu(t, "fs-secret-0001") },
		"wecom":           func(t *testing.T) *notifytest.Server { return notifytest.NewWeCom(t) },
		"slack":           func(t *testing.T) *notifytest.Server { return notifytest.NewSlack(t) },
		"webhook":         func(t *testing.T) *notifytest.Server { return notifytest.NewWebhook(t, "") },
		"webhook-whsec": func(t *testing.T) *notifytest.Server {
			return notifytest.NewWebhook(t, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
		},
		"webhook-raw-secret": func(t *testing.T) *notifytest.Server { return notifytest.NewWebhook(t, "plain secret") },
	}
	for name, mk := range fakes {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fake := mk(t)
			s, err := notify.NewSender(fake.Receiver("r-"+name), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			ev := notify.SampleEvent(time.Now())
			rep, err := s.Send(context.Background(), notify.Message{Events: []notify.Event{ev}})
			if err != nil {
				t.Fatalf("send: %v", err)
			}
			if rep.Status/100 != 2 {
				t.Fatalf("reply %+v", rep)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := fake.WaitEventIDs(ctx, ev.ID); err != nil {
				t.Fatal(err)
			}
			if got := fake.Events(); got != 1 {
				t.Fatalf("events %d, want 1", got)
			}
		})
	}
}

func TestWrongSecretIsSignatureError(t *testing.T) {
	t.Parallel()
	for _, fake := range []*notifytest.Server{notifytest.NewDingTalk(t, "SECright"), notifytest.NewFeishu(t, "right")} {
		rc := fake.Receiver("wrong")
		rc.Secret = "SECwrong-secret"
		s, err := notify.NewSender(rc, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Send(context.Background(), notify.Message{Events: []notify.Event{notify.SampleEvent(time.Now())}})
		var se *notify.SendError
		if !errors.As(err, &se) || se.Reason != "signature" || !se.Slow {
			t.Fatalf("%s: got %v, want a slow signature error", fake.Type, err)
		}
	}
}

// TestDefaultClientKeepsItsOwnPool: with no client given, a Sender's
// connections are its own. Closing http.DefaultTransport's idle
// connections (httptest.Server's Close does, and so may any library in the
// same program) must not touch them: net/http does not retry a POST whose
// connection broke, so a shared pool can fail a notification mid-flight.
func TestDefaultClientKeepsItsOwnPool(t *testing.T) {
	t.Parallel()
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, "ok")
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	s, err := notify.NewSender(notify.ReceiverConfig{Name: "r", Type: "slack", URL: srv.URL + "/services/T/B/x"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := notify.Message{Events: []notify.Event{notify.SampleEvent(time.Now())}}
	for i := range 3 {
		if _, err := s.Send(context.Background(), m); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("3 sends opened %d connections, want 1: the Sender shares http.DefaultTransport's pool", n)
	}
}

package notify_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ossjobwatch/ossjobwatch/notify"
	"github.com/ossjobwatch/ossjobwatch/notify/notifytest"
)

// TestRedirectsAreNotFollowed: a receiver answering 3xx is a failure that
// needs a person. Following a 301/302 would turn the POST into a bodiless
// GET whose 2xx counts as delivered (the event lost); following a 307/308
// would hand the signed body to a host nobody configured. The error names
// only the Location's host, never its path or query.
func TestRedirectsAreNotFollowed(t *testing.T) {
	t.Parallel()
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		_, _ = io.WriteString(w, `{"errcode":0,"code":0}`)
	}))
	t.Cleanup(other.Close)
	otherURL, _ := url.Parse(other.URL)
	for _, typ := range notify.Types {
		for _, code := range []int{301, 302, 303, 307, 308} {
			t.Run(typ+" "+strconv.Itoa(code), func(t *testing.T) {
				t.Parallel()
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					http.Redirect(w, r, other.URL+"/moved?token=other-host-token", code)
				}))
				t.Cleanup(srv.Close)
				rc := notify.ReceiverConfig{Name: "r", Type: typ, URL: srv.URL + "/hook?access_token=t0k3n-s3cr3t-value"}
				if typ == notify.TypeWebhook {
					rc.Secret = "whsec_c2VjcmV0c2VjcmV0"
				}
				s, err := notify.NewSender(rc, nil, nil)
				if err != nil {
					t.Fatal(err)
				}
				_, err = s.Send(context.Background(), notify.Message{Events: []notify.Event{notify.SampleEvent(time.Now())}})
				var se *notify.SendError
				if !errors.As(err, &se) || se.Reason != "redirected" || !se.Slow || se.Status != code {
					t.Fatalf("got %v, want a slow redirected error with HTTP %d", err, code)
				}
				msg := err.Error()
				if !strings.Contains(msg, otherURL.Host) || strings.Contains(msg, "other-host-token") || strings.Contains(msg, "/moved") {
					t.Fatalf("error should name the Location's host only: %v", err)
				}
			})
		}
	}
	t.Cleanup(func() {
		if n := elsewhere.Load(); n != 0 {
			t.Errorf("the redirect target got %d requests", n)
		}
	})
}

// TestRedirectsNotFollowedWithCallersClient: the caller's client is copied,
// not changed, and its own redirect policy is overridden.
func TestRedirectsNotFollowedWithCallersClient(t *testing.T) {
	t.Parallel()
	followed := false
	hc := notifytest.Client(t)
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { followed = true; return nil }
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	}))
	t.Cleanup(srv.Close)
	s, err := notify.NewSender(notify.ReceiverConfig{Name: "r", Type: "slack", URL: srv.URL + "/services/x"}, hc, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Send(context.Background(), notify.Message{Events: []notify.Event{notify.SampleEvent(time.Now())}})
	var se *notify.SendError
	if !errors.As(err, &se) || se.Reason != "redirected" || followed {
		t.Fatalf("got %v, followed %v", err, followed)
	}
	if hc.CheckRedirect == nil {
		t.Fatal("the caller's client was changed")
	}
}

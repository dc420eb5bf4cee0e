package app

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ossjobwatch/ossjobwatch/config"
	"github.com/ossjobwatch/ossjobwatch/notify/notifytest"
	"github.com/ossjobwatch/ossjobwatch/oss/osssim"
)

// TestRunServesTheConsole: run serves /ui/ on its HTTP listener, behind
// basic auth when configured, and a live view left open does not hold up
// a graceful stop.
func TestRunServesTheConsole(t *testing.T) {
	t.Parallel()
	b := setup(t, osssim.Config{Jobs: 20, Seed: 5}, 1, "@every 1s")
	b.cfg.UI.Auth = config.UIAuth{User: "ops", Password: "s3cret"}
	a := b.open(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	sweeps := make(chan SweepResult, 100)
	ln := httptestListener(t)
	done := make(chan error, 1)
	go func() {
		done <- a.Run(ctx, RunOptions{Listener: ln, ShutdownTimeout: 20 * time.Second, OnSweep: func(r SweepResult) { sweeps <- r }})
	}()
	select {
	case r := <-sweeps:
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no sweep within 30s")
	}
	base := "http://" + ln.Addr().String()
	do := func(path string, auth bool) *http.Response {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		if auth {
			req.SetBasicAuth("ops", "s3cret")
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := do("/ui/", false); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("/ui/ without auth: %d", res.StatusCode)
	}
	res := do("/ui/", true)
	var body strings.Builder
	buf := make([]byte, 1<<16)
	for {
		n, err := res.Body.Read(buf)
		body.Write(buf[:n])
		if err != nil {
			break
		}
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(body.String(), `id="target-target-0"`) {
		t.Errorf("/ui/: %d\n%s", res.StatusCode, body.String())
	}
	get(t, base+"/metrics", 200) // not behind the console's auth

	stream := do("/ui/live/events?after=0", true)
	defer stream.Body.Close()
	if stream.StatusCode != http.StatusOK {
		t.Fatalf("live stream: %d", stream.StatusCode)
	}
	start := time.Now()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	// The HTTP server's share of the stop would wait for the stream until
	// the deadline; the console ends it at once.
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("stopping with a live view open took %s", took)
	}
}

func TestConsoleOff(t *testing.T) {
	t.Parallel()
	b := setup(t, osssim.Config{Jobs: 1, Seed: 5}, 0, "@every 1m")
	b.cfg.UI.Enabled = false
	a := b.open(t)
	srv := httptest.NewServer(a.handler())
	defer srv.Close()
	get(t, srv.URL+"/ui/", http.StatusNotFound)
	get(t, srv.URL+"/healthz", http.StatusOK)
}

// TestNotifyServesNoConsole: notify serves /metrics, /healthz and /readyz
// on its listener, not the console (run and demo serve it).
func TestNotifyServesNoConsole(t *testing.T) {
	t.Parallel()
	hook := notifytest.NewWebhook(t, "")
	b := newNotifyBundle(t, &config.Notify{
		Receivers: []config.Receiver{fakeReceiver("hook", hook, "100/s")},
		Routes:    []config.Route{{Name: "all", Subjects: []string{"ossjobs.>"}, Receivers: []string{"hook"}}},
	})
	if !b.cfg.UI.Enabled {
		t.Fatal("the console is off in the config: the test shows nothing")
	}
	a, err := Open(t.Context(), b.cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	ln := httptestListener(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.RunNotify(ctx, RunOptions{Listener: ln, NATSRetry: 100 * time.Millisecond}) }()
	base := "http://" + ln.Addr().String()
	get(t, base+"/healthz", http.StatusOK)
	get(t, base+"/metrics", http.StatusOK)
	get(t, base+"/ui/", http.StatusNotFound)
	get(t, base+"/ui/live/events?after=0", http.StatusNotFound)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("RunNotify: %v", err)
	}
}

// TestCloseEndsTheLiveStreams: App.Close ends the console's live streams,
// whoever serves the console, before it closes the pool they read.
func TestCloseEndsTheLiveStreams(t *testing.T) {
	t.Parallel()
	b := setup(t, osssim.Config{Jobs: 1, Seed: 5}, 0, "@every 1m")
	a := b.open(t)
	srv := httptest.NewServer(a.handler())
	defer srv.Close()
	res, err := http.Get(srv.URL + "/ui/live/events?after=0")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("live stream: %d", res.StatusCode)
	}
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		_, _ = io.Copy(io.Discard, res.Body)
	}()
	a.Close()
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the live stream is still open after Close")
	}
}

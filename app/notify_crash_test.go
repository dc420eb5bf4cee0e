package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ossjobwatch/ossjobwatch/config"
	"github.com/ossjobwatch/ossjobwatch/notify"
	"github.com/ossjobwatch/ossjobwatch/notify/notifytest"
	"github.com/ossjobwatch/ossjobwatch/store"
	"github.com/ossjobwatch/ossjobwatch/store/storetest"
)

// notifyHelperEnv makes the test binary an `ossjobwatch notify` process
// on the config file OSSJOBWATCH_CONFIG (see TestMain).
const notifyHelperEnv = "OSSJOBWATCH_TEST_NOTIFY_HELPER"

func runNotifyHelper() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	cfg, err := config.Load(os.Getenv, config.Flags{}, config.Needs{Database: true, NATS: true, Notify: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a, err := Open(ctx, cfg, Options{Logger: log, Notify: NotifyOptions{Tune: quickRetries}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer a.Close()
	if err := a.RunNotify(ctx, RunOptions{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// startNotifyProcess starts the test binary as a notify process.
func startNotifyProcess(t *testing.T, configFile string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append(env, notifyHelperEnv+"=1", "OSSJOBWATCH_CONFIG="+configFile)...)
	cmd.Stderr = t.Output()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd
}

// publishEvents publishes n events on subject straight to the stream.
func publishEvents(t *testing.T, js jetstream.JetStream, subject string, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		ev := storetest.NewEvent(t, "hz", fmt.Sprintf("job-%d", i), 1, time.Now().UTC())
		if _, err := js.Publish(t.Context(), subject, ev.Payload, jetstream.WithMsgID(ev.ID)); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ev.ID)
	}
	return ids
}

// duplicates is how many requests beyond the first each event got.
func duplicates(ids []string) (dups, distinct int) {
	c := counts(ids)
	for _, n := range c {
		dups += n - 1
	}
	return dups, len(c)
}

// TestNotifyCrash: a notify process killed with SIGKILL while it delivers,
// then restarted: every event is delivered; the repeats are at most what
// was in flight (sent, not yet recorded) when it died.
func TestNotifyCrash(t *testing.T) {
	t.Parallel()
	hook := notifytest.NewWebhook(t, "whsec_c2VjcmV0LWNyYXNo")
	ns := newNotifyBundle(t, &config.Notify{Routes: []config.Route{{Name: "all", Receivers: []string{"hook"}}}})
	file := filepath.Join(t.TempDir(), "notify.yaml")
	yaml := fmt.Sprintf(`database_url: %s
nats_url: %s
http: {listen: "off"}
notify:
  receivers:
    - {name: hook, type: webhook, url: "%s", secret: "${HOOK_SECRET}", rate: 40/s}
  routes:
    - {name: all, subjects: ["ossjobs.>"], receivers: [hook]}
`, ns.dbURL, ns.nats.URL(), hook.URL)
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	secret := "HOOK_SECRET=" + hook.Secret
	first := startNotifyProcess(t, file, secret)
	waitConsumers(t, ns.js, ns.cfg.Notify)

	const total = 400
	ids := publishEvents(t, ns.js, "ossjobs.hz.progress", total)
	start := time.Now()
	eventually(t, "a quarter delivered", 60*time.Second, func() bool { return hook.Events() >= total/4 })
	if err := first.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	_ = first.Wait()
	atKill := hook.Events()
	var unacked int
	if c, err := ns.js.Consumer(t.Context(), "OSSJOBS", notify.DefaultConsumerPrefix+"all"); err == nil {
		if info, err := c.Info(t.Context()); err == nil {
			unacked = info.NumAckPending
		}
	}
	second := startNotifyProcess(t, file, secret)
	st, err := store.Open(t.Context(), ns.dbURL, store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	eventually(t, "every event delivered after the restart", 90*time.Second, func() bool {
		return len(delivered(t, st, "hook")) == total
	})
	drained := time.Since(start).Round(time.Millisecond)
	got := counts(hook.EventIDs())
	for _, id := range ids {
		if got[id] == 0 {
			t.Errorf("event %s never reached the webhook", id)
		}
	}
	dups, distinct := duplicates(hook.EventIDs())
	t.Logf("SIGKILL after %d of %d events; all %d delivered in %s; %d requests, %d duplicates; %d messages were in the dead process's hands (unacknowledged), redelivered",
		atKill, total, distinct, drained, hook.Requests(), dups, unacked)
	// One request at a time per receiver: at most one was in flight.
	if dups > 1 {
		t.Errorf("%d duplicates after SIGKILL, want at most the 1 request in flight", dups)
	}
	_ = second.Process.Signal(syscall.SIGTERM)
	_ = second.Wait()
}

// TestNotifyTwoProcesses: two notify processes on the same config share
// the durable consumers: everything is delivered once.
func TestNotifyTwoProcesses(t *testing.T) {
	t.Parallel()
	hook := notifytest.NewWebhook(t, "")
	n := &config.Notify{
		Receivers: []config.Receiver{fakeReceiver("hook", hook, "100/s")},
		Routes:    []config.Route{{Name: "all", Subjects: []string{"ossjobs.>"}, Receivers: []string{"hook"}}},
	}
	b := newNotifyBundle(t, n)
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	var apps []*App
	for range 2 {
		a, err := Open(t.Context(), b.cfg, Options{Notify: NotifyOptions{Tune: quickRetries}})
		if err != nil {
			t.Fatal(err)
		}
		apps = append(apps, a)
		wg.Go(func() {
			if err := a.RunNotify(ctx, RunOptions{Listener: httptestListener(t), NATSRetry: 100 * time.Millisecond}); err != nil {
				t.Errorf("RunNotify: %v", err)
			}
		})
	}
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		for _, a := range apps {
			a.Close()
		}
	})
	waitConsumers(t, b.js, n)
	eventually(t, "both processes bound", 20*time.Second, func() bool {
		c, err := b.js.Consumer(t.Context(), "OSSJOBS", notify.DefaultConsumerPrefix+"all")
		if err != nil {
			return false
		}
		info, err := c.Info(t.Context())
		return err == nil && info.NumWaiting >= 2
	})
	const total = 400
	ids := publishEvents(t, b.js, "ossjobs.hz.progress", total)
	start := time.Now()
	st := apps[0].Store()
	eventually(t, "every event delivered", 60*time.Second, func() bool { return len(delivered(t, st, "hook")) == total })
	got := counts(hook.EventIDs())
	for _, id := range ids {
		if got[id] == 0 {
			t.Errorf("event %s never reached the webhook", id)
		}
	}
	dups, distinct := duplicates(hook.EventIDs())
	t.Logf("two processes: %d events delivered in %s, %d requests, %d duplicates", distinct, time.Since(start).Round(time.Millisecond), hook.Requests(), dups)
	if dups != 0 {
		t.Errorf("%d duplicates with two processes", dups)
	}
}

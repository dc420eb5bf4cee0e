package app

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ossjobwatch/ossjobwatch/config"
	"github.com/ossjobwatch/ossjobwatch/event"
	"github.com/ossjobwatch/ossjobwatch/internal/natstest"
	"github.com/ossjobwatch/ossjobwatch/notify"
	"github.com/ossjobwatch/ossjobwatch/notify/notifytest"
	"github.com/ossjobwatch/ossjobwatch/store"
	"github.com/ossjobwatch/ossjobwatch/store/storetest"
)

// notifyBundle is a run daemon with no targets and a notify section:
// events written to its outbox are relayed to JetStream and notified.
type notifyBundle struct {
	nats  *natstest.Server
	dbURL string
	cfg   config.Config
	app   *App
	js    jetstream.JetStream
	reg   *prometheus.Registry
}

func fakeReceiver(name string, f *notifytest.Server, rate string) config.Receiver {
	rates, err := config.ParseRates(rate)
	if err != nil {
		panic(err)
	}
	return config.Receiver{Name: name, Type: f.Type, URL: config.Secret(f.URL), Secret: config.Secret(f.Secret), Rates: rates}
}

// quickRetries shortens the backoff and the ack wait for tests.
func quickRetries(c *notify.Config) {
	c.MinBackoff, c.MaxBackoff, c.SlowRetry = 50*time.Millisecond, time.Second, time.Second
	c.AckWait = 3 * time.Second
	c.SendTimeout = time.Second
	c.MaxRetryAfter = 500 * time.Millisecond // DingTalk's throttling asks for a minute
}

func newNotifyBundle(t *testing.T, n *config.Notify) *notifyBundle {
	t.Helper()
	ns := natstest.Start(t)
	b := &notifyBundle{nats: ns, dbURL: storetest.NewDatabaseURL(t)}
	env := map[string]string{"OSSJOBWATCH_DATABASE_URL": b.dbURL, "OSSJOBWATCH_NATS_URL": ns.URL()}
	cfg, err := config.Load(func(k string) string { return env[k] }, config.Flags{}, config.Needs{Database: true, NATS: true})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Notify = n
	b.cfg = cfg
	js, err := jetstream.New(ns.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	b.js = js
	return b
}

// run starts the daemon and waits until the routes' consumers exist (they
// deliver new messages only: events must come after).
func (b *notifyBundle) run(t *testing.T, tune func(*notify.Config)) {
	t.Helper()
	b.reg = prometheus.NewRegistry()
	log := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	a, err := Open(t.Context(), b.cfg, Options{Registry: b.reg, Logger: log, Notify: NotifyOptions{Tune: tune}})
	if err != nil {
		t.Fatal(err)
	}
	b.app = a
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- a.Run(ctx, RunOptions{Listener: httptestListener(t), ShutdownTimeout: 10 * time.Second, NATSRetry: 100 * time.Millisecond})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		a.Close()
	})
	waitConsumers(t, b.js, b.cfg.Notify)
}

func waitConsumers(t *testing.T, js jetstream.JetStream, n *config.Notify) {
	t.Helper()
	for _, r := range n.Routes {
		eventually(t, "consumer of route "+r.Name, 20*time.Second, func() bool {
			_, err := js.Consumer(t.Context(), "OSSJOBS", notify.DefaultConsumerPrefix+r.Name)
			return err == nil
		})
	}
}

func eventually(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// insert writes n events on subject to the outbox (the relay publishes
// them) and returns their ids.
func insertEvents(t *testing.T, st *store.Store, subject string, n int) []string {
	t.Helper()
	var evs []event.Event
	var ids []string
	for range n {
		ev := storetest.NewEvent(t, "hz", "job-"+strings.ReplaceAll(subject, ".", "-")+"-"+fmt.Sprint(len(ids)), 1, time.Now().UTC())
		ev.Subject = subject
		evs = append(evs, ev)
		ids = append(ids, ev.ID)
	}
	storetest.InsertEvents(t, st, "hz", evs...)
	return ids
}

// delivered returns the event ids receiver has accepted, per the
// deliveries table.
func delivered(t *testing.T, st *store.Store, receiver string) map[string]store.Delivery {
	t.Helper()
	rows, err := st.ReceiverDeliveries(t.Context(), receiver)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]store.Delivery{}
	for _, r := range rows {
		if !r.DeliveredAt.IsZero() {
			out[r.EventID] = r
		}
	}
	return out
}

func counts(ids []string) map[string]int {
	out := map[string]int{}
	for _, id := range ids {
		out[id]++
	}
	return out
}

// TestNotifyRouting: two routes of different subjects and receivers
// (DingTalk, Feishu, webhooks) under the real wiring of run: every event
// reaches every receiver of each route it matches, and no other.
func TestNotifyRouting(t *testing.T) {
	t.Parallel()
	ding := notifytest.NewDingTalk(t, "SECding")
	feishu := notifytest.NewFeishu(t, "SECfeishu")
	hookA := notifytest.NewWebhook(t, "whsec_"+"c2VjcmV0LWE=")
	hookB := notifytest.NewWebhook(t, "raw-secret-b")
	n := &config.Notify{
		Receivers: []config.Receiver{fakeReceiver("ding", ding, "600/m"), fakeReceiver("feishu", feishu, "10/s"), fakeReceiver("hook-a", hookA, "50/s"), fakeReceiver("hook-b", hookB, "50/s")},
		Routes: []config.Route{
			{Name: "failures", Subjects: []string{"ossjobs.*.status.*.Failed", "ossjobs.*.tasks_failed"}, Receivers: []string{"ding", "hook-a"}},
			{Name: "attention", Subjects: []string{"ossjobs.*.stalled", "ossjobs.*.removed"}, Receivers: []string{"feishu", "hook-b"}},
		},
	}
	b := newNotifyBundle(t, n)
	b.run(t, quickRetries)
	st := b.app.Store()

	failures := append(insertEvents(t, st, "ossjobs.hz.status.Active.Failed", 10), insertEvents(t, st, "ossjobs.hz.tasks_failed", 10)...)
	attention := append(insertEvents(t, st, "ossjobs.hz.stalled", 10), insertEvents(t, st, "ossjobs.hz.removed", 10)...)
	neither := append(insertEvents(t, st, "ossjobs.hz.progress", 10), insertEvents(t, st, "ossjobs.hz.status.Active.Complete", 10)...)

	start := time.Now()
	eventually(t, "every receiver to have its route's 20 events", 60*time.Second, func() bool {
		return len(delivered(t, st, "ding")) == 20 && len(delivered(t, st, "feishu")) == 20 &&
			len(delivered(t, st, "hook-a")) == 20 && len(delivered(t, st, "hook-b")) == 20
	})
	t.Logf("60 events, 20 per receiver, delivered in %s; requests: ding %d, feishu %d, hook-a %d, hook-b %d",
		time.Since(start).Round(time.Millisecond), ding.Requests(), feishu.Requests(), hookA.Requests(), hookB.Requests())

	for name, want := range map[string][]string{"ding": failures, "hook-a": failures, "feishu": attention, "hook-b": attention} {
		got := delivered(t, st, name)
		for _, id := range want {
			if _, ok := got[id]; !ok {
				t.Errorf("%s lacks event %s", name, id)
			}
		}
		if len(got) != len(want) {
			t.Errorf("%s has %d events, want %d", name, len(got), len(want))
		}
	}
	for name, f := range map[string]*notifytest.Server{"hook-a": hookA, "hook-b": hookB} {
		want := failures
		if name == "hook-b" {
			want = attention
		}
		got := counts(f.EventIDs())
		if !slices.Equal(slices.Sorted(maps.Keys(got)), slices.Sorted(slices.Values(want))) {
			t.Errorf("%s received %d distinct events, want its route's %d", name, len(got), len(want))
		}
		for id, c := range got {
			if c != 1 {
				t.Errorf("%s received %s %d times", name, id, c)
			}
		}
	}
	if ding.Events() != 20 || feishu.Events() != 20 {
		t.Errorf("chat fakes counted ding %d, feishu %d events; want 20 each", ding.Events(), feishu.Events())
	}
	for _, id := range neither {
		for _, name := range []string{"ding", "feishu", "hook-a", "hook-b"} {
			if _, ok := delivered(t, st, name)[id]; ok {
				t.Errorf("event %s of no route reached %s", id, name)
			}
		}
	}
	// Every message acknowledged.
	for _, r := range n.Routes {
		c, err := b.js.Consumer(t.Context(), "OSSJOBS", notify.DefaultConsumerPrefix+r.Name)
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, "route "+r.Name+" acknowledged", 10*time.Second, func() bool {
			info, err := c.Info(t.Context())
			return err == nil && info.NumAckPending == 0 && info.NumPending == 0
		})
	}
}

// TestNotifyFaults: a DingTalk robot that throttles (130101), a webhook
// that answers 500 for a while, a Feishu bot that answers slowly (past the
// request timeout), and a burst of 300 events to an 18/m robot: every
// receiver gets everything, the burst in a few digests.
func TestNotifyFaults(t *testing.T) {
	t.Parallel()
	ding := notifytest.NewDingTalk(t, "SECding")
	burst := notifytest.NewDingTalk(t, "SECburst")
	feishu := notifytest.NewFeishu(t, "")
	hook := notifytest.NewWebhook(t, "whsec_c2VjcmV0")
	ding.Inject(notifytest.Fault{Kind: notifytest.Throttle, Count: 3})
	hook.Inject(notifytest.Fault{Kind: notifytest.Fail, Count: 8})
	hook2 := notifytest.NewWebhook(t, "")
	hook2.Inject(notifytest.Fault{Kind: notifytest.Throttle, Count: 3, RetryAfter: 300 * time.Millisecond})
	feishu.Inject(notifytest.Fault{Kind: notifytest.Slow, Count: 3, Delay: 1500 * time.Millisecond})
	n := &config.Notify{
		Receivers: []config.Receiver{
			fakeReceiver("ding", ding, ""), fakeReceiver("burst", burst, "18/m"), fakeReceiver("feishu", feishu, ""),
			fakeReceiver("hook", hook, ""), fakeReceiver("hook2", hook2, ""),
		},
		Routes: []config.Route{
			{Name: "failures", Subjects: []string{"ossjobs.*.status.*.Failed"}, Receivers: []string{"ding", "feishu", "hook", "hook2"}},
			{Name: "burst", Subjects: []string{"ossjobs.*.progress"}, Receivers: []string{"burst"}},
		},
	}
	b := newNotifyBundle(t, n)
	b.run(t, quickRetries)
	st := b.app.Store()
	failures := insertEvents(t, st, "ossjobs.hz.status.Active.Failed", 20)
	progress := insertEvents(t, st, "ossjobs.hz.progress", 300)
	start := time.Now()
	t.Cleanup(func() {
		if t.Failed() {
			for _, name := range []string{"ding", "feishu", "hook", "hook2", "burst"} {
				t.Logf("%s: %d delivered", name, len(delivered(t, st, name)))
			}
			t.Logf("requests: ding %d/%d refused, feishu %d/%d, hook %d/%d, hook2 %d/%d, burst %d/%d", ding.Requests(), ding.Refused(),
				feishu.Requests(), feishu.Refused(), hook.Requests(), hook.Refused(), hook2.Requests(), hook2.Refused(), burst.Requests(), burst.Refused())
		}
	})
	eventually(t, "everything delivered", 120*time.Second, func() bool {
		for _, name := range []string{"ding", "feishu", "hook", "hook2"} {
			if len(delivered(t, st, name)) != len(failures) {
				return false
			}
		}
		return len(delivered(t, st, "burst")) == len(progress)
	})
	took := time.Since(start).Round(time.Millisecond)
	t.Logf("drained in %s; requests (accepted+refused): ding %d (%d refused), feishu %d, hook %d (%d refused), hook2 %d (%d refused), burst %d for %d events",
		took, ding.Requests(), ding.Refused(), feishu.Requests(), hook.Requests(), hook.Refused(), hook2.Requests(), hook2.Refused(), burst.Requests(), burst.Events())
	if burst.Requests() > 20 {
		t.Errorf("the burst of 300 took %d requests; want a handful of digests", burst.Requests())
	}
	if got := burst.Events(); got < 300 {
		t.Errorf("the burst fake counted %d events, want 300", got)
	}
	if hook.Refused() < 8 || ding.Refused() < 3 || hook2.Refused() < 3 {
		t.Errorf("faults not seen: hook refused %d, ding %d, hook2 %d", hook.Refused(), ding.Refused(), hook2.Refused())
	}
	for id, c := range counts(hook.EventIDs()) {
		if c != 1 {
			t.Errorf("hook received %s %d times", id, c)
		}
	}
	// The errors recorded name no secret.
	for name, f := range map[string]*notifytest.Server{"ding": ding, "hook": hook, "hook2": hook2, "feishu": feishu} {
		rows, _ := st.ReceiverDeliveries(t.Context(), name)
		for _, r := range rows {
			for _, secret := range []string{f.Token, f.Secret, f.URL} {
				if secret != "" && strings.Contains(r.LastError, secret) {
					t.Errorf("%s's last_error shows a secret: %s", name, r.LastError)
				}
			}
		}
	}
	rows, _ := st.ReceiverDeliveries(t.Context(), "hook")
	var retried int
	for _, r := range rows {
		if r.Attempts > 1 {
			retried++
		}
	}
	if retried == 0 {
		t.Errorf("no hook row records a retry")
	}
	var digestRows int
	for _, r := range delivered(t, st, "burst") {
		if r.DigestSize > 1 {
			digestRows++
		}
	}
	t.Logf("burst: %d of 300 events delivered in digests", digestRows)
	if digestRows < 250 {
		t.Errorf("only %d of the burst's events went in digests", digestRows)
	}
}

// TestNotifyRoutesTemplates: route templates get notify's functions, and
// one naming a field events lack fails at start, naming the route.
func TestNotifyRoutesTemplates(t *testing.T) {
	t.Parallel()
	n := &config.Notify{Routes: []config.Route{
		{Name: "ok", Subjects: []string{"ossjobs.>"}, Template: "{{esc .Data.JobID}} {{upper .Data.Status}}"},
		{Name: "bad", Subjects: []string{"ossjobs.>"}, Template: "{{.Data.Nope}}"},
	}}
	routes, err := NotifyRoutes(n)
	if err == nil || !strings.Contains(err.Error(), "notify.routes[1].template") || strings.Contains(err.Error(), "routes[0]") {
		t.Fatalf("NotifyRoutes = %v", err)
	}
	if len(routes) != 1 || routes[0].Template == nil {
		t.Errorf("routes = %+v", routes)
	}
}

// TestReadyzReportsRouteDown: a route whose consumer cannot be created
// again (deleted, and its name taken by a consumer of another deliver
// policy) makes /readyz say so once it has been down past RouteGrace.
func TestReadyzReportsRouteDown(t *testing.T) {
	t.Parallel()
	hook := notifytest.NewWebhook(t, "")
	n := &config.Notify{
		Receivers: []config.Receiver{fakeReceiver("hook", hook, "50/s")},
		Routes:    []config.Route{{Name: "stalls", Subjects: []string{"ossjobs.*.stalled"}, Receivers: []string{"hook"}}},
	}
	b := newNotifyBundle(t, n)
	b.run(t, quickRetries)
	b.app.opts.Notify.RouteGrace = 500 * time.Millisecond
	eventually(t, "ready", 20*time.Second, func() bool { return len(b.app.readiness(t.Context())) == 0 })

	name := notify.DefaultConsumerPrefix + "stalls"
	if err := b.js.DeleteConsumer(t.Context(), "OSSJOBS", name); err != nil {
		t.Fatal(err)
	}
	if _, err := b.js.CreateConsumer(t.Context(), "OSSJOBS", jetstream.ConsumerConfig{Durable: name, DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: "ossjobs.none"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "/readyz to report the route", 20*time.Second, func() bool {
		return slices.ContainsFunc(b.app.readiness(t.Context()), func(p string) bool { return strings.Contains(p, "notify route stalls") })
	})
}

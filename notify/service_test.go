package notify_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ossjobwatch/ossjobwatch/internal/natstest"
	"github.com/ossjobwatch/ossjobwatch/notify"
	"github.com/ossjobwatch/ossjobwatch/store"
	"github.com/ossjobwatch/ossjobwatch/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

// fakeSender records what it is sent; fail, if set, decides each
// request's fate.
type fakeSender struct {
	mu       sync.Mutex
	messages []notify.Message
	requests int
	fail     func(n int, m notify.Message) error
	changed  chan struct{}
}

func newFake() *fakeSender { return &fakeSender{changed: make(chan struct{}, 1)} }

func (f *fakeSender) Send(ctx context.Context, m notify.Message) (notify.Reply, error) {
	f.mu.Lock()
	f.requests++
	n := f.requests
	fail := f.fail
	f.mu.Unlock()
	if fail != nil {
		if err := fail(n, m); err != nil {
			return notify.Reply{}, err
		}
	}
	f.mu.Lock()
	f.messages = append(f.messages, m)
	f.mu.Unlock()
	select {
	case f.changed <- struct{}{}:
	default:
	}
	return notify.Reply{Status: 200, Body: "ok"}, nil
}

// ids counts each event id received.
func (f *fakeSender) ids() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]int{}
	for _, m := range f.messages {
		for _, e := range m.Events {
			out[e.ID]++
		}
	}
	return out
}

func (f *fakeSender) stats() (requests, messages int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests, len(f.messages)
}

// waitFor waits until cond holds, polling on the fake's signal with a
// deadline.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type bundle struct {
	js  jetstream.JetStream
	st  *store.Store
	reg *prometheus.Registry
}

func setup(t *testing.T) bundle {
	t.Helper()
	ns := natstest.Start(t)
	js, err := jetstream.New(ns.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "OSSJOBS", Subjects: []string{"ossjobs.>"}, Duplicates: 30 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	return bundle{js: js, st: storetest.NewStore(t), reg: prometheus.NewRegistry()}
}

// start starts a service on b's JetStream and PostgreSQL store.
func start(t *testing.T, b bundle, cfg notify.Config) *notify.Service {
	t.Helper()
	return startMem(t, b, b.st, cfg)
}

// publish publishes n events of job on subject, returning their ids.
func publish(t *testing.T, js jetstream.JetStream, subject, job string, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		ev := storetest.NewEvent(t, "hz", job, int64(i+1), time.Now().UTC())
		if _, err := js.Publish(t.Context(), subject, ev.Payload, jetstream.WithMsgID(ev.ID)); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ev.ID)
	}
	return ids
}

// ackPending is the consumer's messages delivered and not acknowledged,
// plus those not delivered yet.
func ackPending(t *testing.T, js jetstream.JetStream, consumer string) (int, uint64) {
	t.Helper()
	c, err := js.Consumer(t.Context(), "OSSJOBS", consumer)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.NumAckPending, info.NumPending
}

func route(name string, subjects []string, receivers ...string) notify.Route {
	return notify.Route{RouteConfig: notify.RouteConfig{Name: name, Subjects: subjects, Receivers: receivers}}
}

// TestRoutesAndAcks: each route's events reach its receivers and no
// other; every message is acknowledged once all its receivers have it.
func TestRoutesAndAcks(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a, c, hook := newFake(), newFake(), newFake()
	start(t, b, notify.Config{
		Routes: []notify.Route{
			route("failures", []string{"ossjobs.*.status.*.Failed", "ossjobs.*.tasks_failed"}, "a", "hook"),
			route("all", []string{"ossjobs.>"}, "c"),
		},
		Receivers: []notify.Receiver{{Name: "a", Sender: a, Digest: true}, {Name: "c", Sender: c, Digest: true}, {Name: "hook", Sender: hook}},
	})
	failed := publish(t, b.js, "ossjobs.hz.status.Active.Failed", "job-1", 5)
	tf := publish(t, b.js, "ossjobs.hz.tasks_failed", "job-2", 5)
	other := publish(t, b.js, "ossjobs.hz.progress", "job-3", 5)

	want := append(append([]string{}, failed...), tf...)
	waitFor(t, "a and hook to have the failures, c everything", 60*time.Second, func() bool {
		return len(a.ids()) == 10 && len(hook.ids()) == 10 && len(c.ids()) == 15
	})
	for _, f := range []*fakeSender{a, hook} {
		got := f.ids()
		for _, id := range want {
			if got[id] != 1 {
				t.Errorf("event %s received %d times, want once", id, got[id])
			}
		}
		for _, id := range other {
			if got[id] != 0 {
				t.Errorf("progress event %s reached a failures receiver", id)
			}
		}
	}
	waitFor(t, "every message acknowledged", 30*time.Second, func() bool {
		p1, n1 := ackPending(t, b.js, "ossjobwatch-notify-failures")
		p2, n2 := ackPending(t, b.js, "ossjobwatch-notify-all")
		return p1+p2 == 0 && n1+n2 == 0
	})
	rows, err := b.st.ReceiverDeliveries(t.Context(), "hook")
	if err != nil || len(rows) != 10 {
		t.Fatalf("hook's deliveries = %d rows, %v; want 10", len(rows), err)
	}
	for _, r := range rows {
		if r.DeliveredAt.IsZero() || r.Route != "failures" || r.Target != "hz" || r.DigestSize != 1 {
			t.Errorf("row %+v", r)
		}
	}
	if got := testutil.ToFloat64(mustVec(t, b.reg, "ossjobwatch_notify_deliveries_total", map[string]string{"receiver": "c", "route": "all"})); got != 15 {
		t.Errorf("deliveries_total{c,all} = %v, want 15", got)
	}
}

// TestAckWaitsForEveryReceiver: while one receiver of a route fails, the
// message stays unacknowledged (and is not redelivered, thanks to the
// heartbeat); another route is not held up; once the receiver recovers,
// all is delivered and acknowledged.
func TestAckWaitsForEveryReceiver(t *testing.T) {
	t.Parallel()
	b := setup(t)
	good, bad, other := newFake(), newFake(), newFake()
	var recovered sync.WaitGroup
	recovered.Add(1)
	release := make(chan struct{})
	bad.fail = func(n int, m notify.Message) error {
		select {
		case <-release:
			return nil
		default:
			return &notify.SendError{Receiver: "bad", Reason: "http_5xx", Status: 500, Err: errors.New("https://x.example/hook?access_token=SECRETTOKEN said no")}
		}
	}
	start(t, b, notify.Config{
		AckWait: 2 * time.Second,
		Routes: []notify.Route{
			route("r1", []string{"ossjobs.*.stalled"}, "good", "bad"),
			route("r2", []string{"ossjobs.*.removed"}, "other"),
		},
		Receivers: []notify.Receiver{{Name: "good", Sender: good}, {Name: "bad", Sender: bad, Secrets: []string{"https://x.example/hook?access_token=SECRETTOKEN"}}, {Name: "other", Sender: other}},
	})
	ids := publish(t, b.js, "ossjobs.hz.stalled", "job-1", 3)
	publish(t, b.js, "ossjobs.hz.removed", "job-2", 3)
	waitFor(t, "good and other served", 30*time.Second, func() bool { return len(good.ids()) == 3 && len(other.ids()) == 3 })
	// Past two ack waits, the messages are still in hand, not redelivered.
	waitFor(t, "bad to fail for 5s", 30*time.Second, func() bool {
		rows, _ := b.st.ReceiverDeliveries(t.Context(), "bad")
		// One event at a time (no digest): the oldest is retried.
		return len(rows) >= 1 && rows[0].LastAttemptAt.Sub(rows[0].FirstAttemptAt) > 5*time.Second
	})
	if p, _ := ackPending(t, b.js, "ossjobwatch-notify-r1"); p != 3 {
		t.Errorf("r1 has %d messages pending ack, want 3 while bad fails", p)
	}
	c, _ := b.js.Consumer(t.Context(), "OSSJOBS", "ossjobwatch-notify-r1")
	info, _ := c.Info(t.Context())
	if info.NumRedelivered != 0 {
		t.Errorf("%d messages redelivered while being worked on", info.NumRedelivered)
	}
	if got := good.ids(); len(got) != 3 || got[ids[0]] != 1 {
		t.Errorf("good got %v: each event once", got)
	}
	rows, _ := b.st.ReceiverDeliveries(t.Context(), "bad")
	for _, r := range rows {
		if r.Attempts < 2 || r.LastError == "" || !r.DeliveredAt.IsZero() || strings.Contains(r.LastError, "SECRETTOKEN") {
			t.Errorf("bad's row %+v", r)
		}
	}
	if age := testutil.ToFloat64(mustVec(t, b.reg, "ossjobwatch_notify_queue_age_seconds", map[string]string{"receiver": "bad"})); age < 5 {
		t.Errorf("queue_age_seconds{bad} = %v while its events wait over 5s", age)
	}
	if age := testutil.ToFloat64(mustVec(t, b.reg, "ossjobwatch_notify_queue_age_seconds", map[string]string{"receiver": "good"})); age != 0 {
		t.Errorf("queue_age_seconds{good} = %v with nothing waiting", age)
	}
	close(release)
	waitFor(t, "bad served and r1 acknowledged", 30*time.Second, func() bool {
		p, n := ackPending(t, b.js, "ossjobwatch-notify-r1")
		return len(bad.ids()) == 3 && p == 0 && n == 0
	})
	if got := testutil.ToFloat64(mustVec(t, b.reg, "ossjobwatch_notify_failures_total", map[string]string{"receiver": "bad", "reason": "http_5xx"})); got < 2 {
		t.Errorf("failures_total{bad,http_5xx} = %v", got)
	}
}

// TestRedeliverySkipsDelivered: a message whose event a receiver already
// has (per the deliveries table) is not sent to it again.
func TestRedeliverySkipsDelivered(t *testing.T) {
	t.Parallel()
	b := setup(t)
	x, y := newFake(), newFake()
	start(t, b, notify.Config{
		Routes:    []notify.Route{route("r", []string{"ossjobs.*.stalled"}, "x", "y")},
		Receivers: []notify.Receiver{{Name: "x", Sender: x}, {Name: "y", Sender: y}},
	})
	ev := storetest.NewEvent(t, "hz", "job-1", 1, time.Now())
	if err := b.st.RecordDelivered(t.Context(), []store.DeliveryRef{{EventID: ev.ID, Receiver: "x", Route: "r", Target: "hz", JobID: "job-1"}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := b.js.Publish(t.Context(), "ossjobs.hz.stalled", ev.Payload); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "y served and the message acknowledged", 30*time.Second, func() bool {
		p, n := ackPending(t, b.js, "ossjobwatch-notify-r")
		return len(y.ids()) == 1 && p == 0 && n == 0
	})
	if r, _ := x.stats(); r != 0 {
		t.Errorf("x got %d requests for an event it had", r)
	}
}

// TestDigest: a burst to a slow-rated receiver is folded into a few
// digests, each event recorded delivered once.
func TestServiceDigest(t *testing.T) {
	t.Parallel()
	b := setup(t)
	d := newFake()
	start(t, b, notify.Config{
		Routes:    []notify.Route{route("r", []string{"ossjobs.>"}, "d")},
		Receivers: []notify.Receiver{{Name: "d", Sender: d, Digest: true, Rates: []notify.Rate{{Count: 3, Per: 2 * time.Second}}}},
		MaxDigest: 100,
	})
	ids := publish(t, b.js, "ossjobs.hz.progress", "job-1", 300)
	waitFor(t, "300 events", 30*time.Second, func() bool { return len(d.ids()) == 300 })
	req, _ := d.stats()
	if req > 15 {
		t.Errorf("%d requests for 300 events, want a handful of digests", req)
	}
	for _, id := range ids {
		if d.ids()[id] != 1 {
			t.Fatalf("event %s received %d times", id, d.ids()[id])
		}
	}
	rows, _ := b.st.ReceiverDeliveries(t.Context(), "d")
	if len(rows) != 300 {
		t.Errorf("%d rows, want 300", len(rows))
	}
	digests := testutil.ToFloat64(mustVec(t, b.reg, "ossjobwatch_notify_digests_total", map[string]string{"receiver": "d"}))
	t.Logf("300 events in %d requests (%v digests)", req, digests)
	if digests < 1 {
		t.Errorf("no digest counted")
	}
}

// TestMalformedTerminated: a message that is not an event is terminated
// and does not hold up the ones behind it.
func TestMalformedTerminated(t *testing.T) {
	t.Parallel()
	b := setup(t)
	x := newFake()
	start(t, b, notify.Config{
		Routes:    []notify.Route{route("r", []string{"ossjobs.>"}, "x")},
		Receivers: []notify.Receiver{{Name: "x", Sender: x}},
	})
	for _, body := range []string{"not json", `{"id":"not-a-uuid"}`, `{"specversion":"1.0"}`} {
		if _, err := b.js.Publish(t.Context(), "ossjobs.hz.progress", []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	publish(t, b.js, "ossjobs.hz.progress", "job-1", 2)
	waitFor(t, "the events after the garbage", 30*time.Second, func() bool {
		p, n := ackPending(t, b.js, "ossjobwatch-notify-r")
		return len(x.ids()) == 2 && p == 0 && n == 0
	})
	if got := testutil.ToFloat64(mustVec(t, b.reg, "ossjobwatch_notify_malformed_messages_total", map[string]string{"route": "r"})); got != 3 {
		t.Errorf("malformed = %v, want 3", got)
	}
}

// mustVec finds the counter with labels in reg.
func mustVec(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) prometheus.Collector {
	t.Helper()
	return collectorFunc(func() float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
		metric:
			for _, m := range mf.GetMetric() {
				got := map[string]string{}
				for _, l := range m.GetLabel() {
					got[l.GetName()] = l.GetValue()
				}
				for k, v := range labels {
					if got[k] != v {
						continue metric
					}
				}
				if c := m.GetCounter(); c != nil {
					return c.GetValue()
				}
				return m.GetGauge().GetValue()
			}
		}
		return 0
	})
}

// collectorFunc is a gauge whose value fn gives, for testutil.ToFloat64.
func collectorFunc(fn func() float64) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "probe", Help: "probe"}, fn)
}

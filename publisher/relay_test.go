package publisher_test

import (
	"context"
	"errors"
	"iter"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ossjobwatch/ossjobwatch/event"
	"github.com/ossjobwatch/ossjobwatch/internal/natstest"
	"github.com/ossjobwatch/ossjobwatch/publisher"
	"github.com/ossjobwatch/ossjobwatch/store"
	"github.com/ossjobwatch/ossjobwatch/store/storetest"
)

func TestRelayPublishesPendingEvents(t *testing.T) {
	t.Parallel()
	var lags []time.Duration
	b := setup(t, publisher.Config{
		NowFunc:     func() time.Time { return observed.Add(time.Minute) },
		OnPublished: func(_ int, lag time.Duration) { lags = append(lags, lag) },
	})
	var evs []event.Event
	for _, job := range []string{"a", "b", "c", "d"} {
		evs = append(evs, storetest.NewEvent(t, "t1", job, 1, observed))
	}
	storetest.InsertEvents(t, b.store, "t1", evs...)

	n, err := b.relay.RelayOnce(t.Context())
	if err != nil || n != len(evs) {
		t.Fatalf("RelayOnce = %d, %v; want %d, nil", n, err, len(evs))
	}
	msgs := readStream(t, b.js)
	if len(msgs) != len(evs) {
		t.Fatalf("stream holds %d messages, want %d", len(msgs), len(evs))
	}
	for i, m := range msgs {
		want := evs[i] // distinct jobs: insert order exactly
		if m.Subject() != want.Subject {
			t.Errorf("message %d: subject %s, want %s", i, m.Subject(), want.Subject)
		}
		if string(m.Data()) != string(want.Payload) {
			t.Errorf("message %d: body differs from the stored payload:\n%s\n%s", i, m.Data(), want.Payload)
		}
		h := m.Headers()
		if got := slices.Sorted(maps.Keys(h)); !slices.Equal(got, []string{"Content-Type", "Nats-Msg-Id"}) {
			t.Errorf("message %d: headers %v, want Content-Type and Nats-Msg-Id only", i, got)
		}
		if h.Get("Nats-Msg-Id") != want.ID || h.Get("Content-Type") != event.ContentType {
			t.Errorf("message %d: headers %v, want Nats-Msg-Id %s, Content-Type %s", i, h, want.ID, event.ContentType)
		}
		// A CloudEvents reader sees a valid structured-mode event.
		var ce cloudevents.Event
		if err := ce.UnmarshalJSON(m.Data()); err != nil || ce.Validate() != nil || ce.ID() != want.ID {
			t.Errorf("message %d: not a valid CloudEvent with id %s: %v, %v", i, want.ID, err, ce.Validate())
		}
	}
	if p := pending(t, b.store); p != 0 {
		t.Errorf("%d events still pending", p)
	}
	if len(lags) != 1 || lags[0] != time.Minute {
		t.Errorf("OnPublished lags = %v, want [1m]", lags)
	}
	// published_at is the acknowledgement's time on the relay's clock.
	var wrong int
	if err := b.store.Pool().QueryRow(t.Context(), `SELECT count(*) FROM job_events WHERE published_at IS DISTINCT FROM $1`, observed.Add(time.Minute)).Scan(&wrong); err != nil || wrong != 0 {
		t.Errorf("%d events (%v) have a published_at other than the acknowledgement's time %v", wrong, err, observed.Add(time.Minute))
	}

	if n, err := b.relay.RelayOnce(t.Context()); err != nil || n != 0 {
		t.Fatalf("second RelayOnce = %d, %v; want 0, nil", n, err)
	}
	if got := streamMsgs(t, b.js); got != uint64(len(evs)) {
		t.Errorf("stream holds %d messages after a second round, want %d", got, len(evs))
	}
}

func TestRelayKeepsEachJobsOrder(t *testing.T) {
	t.Parallel()
	// A small window and batches, so that rounds end mid-job and a job's
	// next event often waits for the previous one's acknowledgement.
	b := setup(t, publisher.Config{BatchSize: 150, MaxInFlight: 16})
	want := insertShuffled(t, b.store, "t1", 40, 20, 200)

	n, err := b.relay.Drain(t.Context())
	if err != nil || n != len(want) {
		t.Fatalf("Drain = %d, %v; want %d, nil", n, err, len(want))
	}
	checkStream(t, b.js, want)
}

func TestRelaySurvivesNATSOutage(t *testing.T) {
	t.Parallel()
	b := setup(t, publisher.Config{PublishTimeout: 300 * time.Millisecond})
	want := insertJobs(t, b.store, "t1", 10, 10)
	status := b.nc.StatusChanged(nats.RECONNECTING, nats.CONNECTED)

	b.nats.Shutdown()
	natstest.WaitStatus(t, status, nats.RECONNECTING)
	if n, err := b.relay.RelayOnce(t.Context()); err == nil || n != 0 {
		t.Fatalf("RelayOnce with NATS down = %d, %v; want 0 and an error", n, err)
	} else {
		t.Logf("RelayOnce with NATS down: %v", err)
	}
	if _, err := b.relay.Drain(t.Context()); err == nil {
		t.Fatal("Drain with NATS down succeeded")
	}
	if p := pending(t, b.store); p != int64(len(want)) {
		t.Fatalf("%d events pending after the failed rounds, want all %d", p, len(want))
	}

	b.nats.Restart(t)
	natstest.WaitStatus(t, status, nats.CONNECTED)
	// JetStream may take a moment after the server is back (recovering its
	// streams); the daemon's relay retries, and so does this.
	total, deadline := 0, time.Now().Add(30*time.Second)
	for {
		n, err := b.relay.Drain(t.Context())
		total += n
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Drain after the restart still fails after 30s: %v", err)
		}
		t.Logf("Drain after the restart: %v; again", err)
	}
	if total != len(want) {
		t.Fatalf("Drain after the restart published %d, want %d", total, len(want))
	}
	checkStream(t, b.js, want)
}

func TestStartedRelayRetriesUntilNATSIsBack(t *testing.T) {
	t.Parallel()
	failed, published := newSignal(), newSignal()
	var total atomic.Int64
	b := setup(t, publisher.Config{
		PublishTimeout: 200 * time.Millisecond,
		PollInterval:   time.Hour,
		OnError:        func(error) { failed.send() },
		OnPublished: func(n int, _ time.Duration) {
			total.Add(int64(n))
			published.send()
		},
	})
	want := insertJobs(t, b.store, "t1", 5, 4)

	b.nats.Shutdown()
	if err := b.relay.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.relay.Stop)
	failed.wait(t, "a failed round")
	b.nats.Restart(t)
	waitFor(t, published, "all events published", func() bool { return total.Load() == int64(len(want)) })
	checkStream(t, b.js, want)
}

func TestRelayStoppedBetweenAckAndMark(t *testing.T) {
	t.Parallel()
	b := setup(t, publisher.Config{})
	want := insertJobs(t, b.store, "t1", 5, 4)

	// The round publishes, then loses its database connection before it can
	// mark the events: they are in the stream and still pending.
	_, _, err := b.store.RelayRound(t.Context(), 100, func(ctx context.Context, events iter.Seq[store.OutboxEvent], ack func(string, time.Time)) error {
		batch := slices.Collect(events)
		var acked []string
		err := b.relay.Publish(ctx, batch, func(ev store.OutboxEvent, _ *jetstream.PubAck) { acked = append(acked, ev.ID) })
		var killed int
		if err := b.store.Pool().QueryRow(t.Context(), `
			SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid() AND xact_start IS NOT NULL`).Scan(&killed); err != nil || killed != 1 {
			t.Errorf("terminated %d relay connections (%v), want 1", killed, err)
		}
		for _, id := range acked {
			ack(id, time.Now())
		}
		return err
	})
	if err == nil {
		t.Fatal("a round that lost its connection succeeded")
	}
	if p := pending(t, b.store); p != int64(len(want)) {
		t.Fatalf("%d events pending after the broken round, want %d", p, len(want))
	}
	if got := streamMsgs(t, b.js); got != uint64(len(want)) {
		t.Fatalf("stream holds %d messages after the broken round, want %d", got, len(want))
	}

	// The next round publishes them again: JetStream acknowledges each as a
	// duplicate and stores nothing.
	var dups int
	n, _, err := b.store.RelayRound(t.Context(), 100, func(ctx context.Context, events iter.Seq[store.OutboxEvent], ack func(string, time.Time)) error {
		batch := slices.Collect(events)
		return b.relay.Publish(ctx, batch, func(ev store.OutboxEvent, pa *jetstream.PubAck) {
			if pa.Duplicate {
				dups++
			}
			ack(ev.ID, time.Now())
		})
	})
	if err != nil || n != len(want) {
		t.Fatalf("next round = %d, %v; want %d, nil", n, err, len(want))
	}
	if dups != len(want) {
		t.Errorf("%d duplicate acknowledgements, want %d", dups, len(want))
	}
	checkStream(t, b.js, want)
}

// TestTwoRelaysPublishEachEventOnce runs two relays at once, each on a
// connection through a proxy that counts the publishes on the wire: the
// relay lock must let one publish each event, once. (JetStream would drop
// a second publication as a duplicate, so the stream alone cannot tell.)
func TestTwoRelaysPublishEachEventOnce(t *testing.T) {
	t.Parallel()
	cfg := publisher.Config{BatchSize: 100}
	b := setup(t, cfg)
	proxy := natstest.NewProxy(t, b.nats)
	b.relay = newRelay(t, b.store, newJetStream(t, proxy.Connect(t)), cfg)
	other := newRelay(t, b.store, newJetStream(t, proxy.Connect(t)), cfg)
	want := insertShuffled(t, b.store, "t1", 100, 15, 100)

	var wg sync.WaitGroup
	counts := make([]int, 2)
	for i, r := range []*publisher.Relay{b.relay, other} {
		wg.Go(func() {
			n, err := r.Drain(t.Context())
			if err != nil {
				t.Errorf("relay %d: Drain: %v", i, err)
			}
			counts[i] = n
		})
	}
	wg.Wait()
	if counts[0]+counts[1] != len(want) {
		t.Errorf("relays published %v events, want %d in all", counts, len(want))
	}
	t.Logf("published per relay: %v", counts)
	checkStream(t, b.js, want)
	published := proxy.Published()
	twice := 0
	for id := range want {
		if published[id] != 1 {
			twice++
		}
	}
	if twice > 0 {
		t.Errorf("%d events were not published exactly once on the wire", twice)
	}
}

func TestListenWakesStartedRelay(t *testing.T) {
	t.Parallel()
	b := setup(t, publisher.Config{PollInterval: time.Hour})
	if err := b.relay.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.relay.Stop)
	cons, err := b.js.OrderedConsumer(t.Context(), publisher.DefaultStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}

	// Besides notifications, only the first round and the one after the
	// listener connects can publish, each at most one of these phases: the
	// third needs a notification.
	for seq := int64(1); seq <= 3; seq++ {
		ev := storetest.NewEvent(t, "t1", "job", seq, observed)
		storetest.InsertEvents(t, b.store, "t1", ev)
		if _, err := b.store.Pool().Exec(t.Context(), `SELECT pg_notify($1, 't1')`, store.OutboxChannel); err != nil {
			t.Fatal(err)
		}
		m, err := cons.Next(jetstream.FetchMaxWait(waitTimeout))
		if err != nil {
			t.Fatalf("event #%d not published: %v", seq, err)
		}
		if id := m.Headers().Get(jetstream.MsgIDHeader); id != ev.ID {
			t.Fatalf("got event %s, want #%d %s", id, seq, ev.ID)
		}
	}
}

func TestRelayStartStop(t *testing.T) {
	t.Parallel()
	b := setup(t, publisher.Config{})
	b.relay.Stop() // not started: nothing to do
	if b.relay.Stopped() != nil {
		t.Error("Stopped of a relay never started is not nil")
	}
	ctx, cancel := context.WithCancel(t.Context())
	if err := b.relay.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.relay.Start(ctx); err == nil {
		t.Error("second Start succeeded")
	}
	cancel()
	select {
	case <-b.relay.Stopped():
	case <-time.After(waitTimeout):
		t.Fatal("relay did not stop when its context was cancelled")
	}
	// Once stopped it can start again, and Stop waits for it.
	if err := b.relay.Start(t.Context()); err != nil {
		t.Fatalf("Start after stopping: %v", err)
	}
	b.relay.Stop()
	<-b.relay.Stopped()
}

func TestRelayRefusesAnotherStreamsAck(t *testing.T) {
	t.Parallel()
	b := setup(t, publisher.Config{})
	r := newRelay(t, b.store, b.js, publisher.Config{Stream: "ELSEWHERE"})
	insertJobs(t, b.store, "t1", 2, 1)
	_, err := r.RelayOnce(t.Context())
	if err == nil || !strings.Contains(err.Error(), "stored in stream OSSJOBS, not ELSEWHERE") {
		t.Fatalf("RelayOnce = %v, want an error about the stream", err)
	}
	if p := pending(t, b.store); p != 2 {
		t.Errorf("%d events pending, want 2", p)
	}
}

func TestNewValidatesConfig(t *testing.T) {
	t.Parallel()
	st := storetest.NewStore(t)
	js := newJetStream(t, natstest.Start(t).Connect(t))
	tests := []struct {
		name string
		cfg  publisher.Config
		want string
	}{
		{"no store", publisher.Config{JetStream: js}, "Config.Store: required"},
		{"no JetStream", publisher.Config{Store: st}, "Config.JetStream: required"},
		{"bad stream", publisher.Config{Store: st, JetStream: js, Stream: "a.b"}, "Config.Stream"},
		{"negative batch", publisher.Config{Store: st, JetStream: js, BatchSize: -1}, "Config.BatchSize: must be positive"},
		{"negative window", publisher.Config{Store: st, JetStream: js, MaxInFlight: -1}, "Config.MaxInFlight"},
		{"negative timeout", publisher.Config{Store: st, JetStream: js, PublishTimeout: -time.Second}, "Config.PublishTimeout"},
		{"negative poll", publisher.Config{Store: st, JetStream: js, PollInterval: -time.Second}, "Config.PollInterval"},
	}
	for _, tt := range tests {
		if _, err := publisher.New(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: New = %v, want an error containing %q", tt.name, err, tt.want)
		}
	}
	if _, err := publisher.New(publisher.Config{Store: st, JetStream: js}); err != nil {
		t.Errorf("New with defaults: %v", err)
	}
}

// TestRelayDoesNotBufferAcrossADisconnect publishes while NATS is down on a
// connection made by publisher.Connect: the publish must fail at once,
// rather than wait in the client's reconnect buffer to be sent, possibly
// after newer events, on reconnecting; the events stay pending, and after
// the reconnection the relay publishes them, each stored by its publish
// (not acknowledged as a duplicate of a buffered copy).
func TestRelayDoesNotBufferAcrossADisconnect(t *testing.T) {
	t.Parallel()
	st := storetest.NewStore(t)
	srv := natstest.Start(t)
	nc, err := publisher.Connect(srv.URL(), "test", slog.New(slog.NewTextHandler(t.Output(), nil)),
		nats.ReconnectWait(20*time.Millisecond), nats.ReconnectJitter(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := publisher.NewJetStream(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := publisher.EnsureStream(t.Context(), js, publisher.StreamConfig{Managed: true}); err != nil {
		t.Fatal(err)
	}
	// Acknowledgements are awaited for longer than the test: a failure
	// must come from the publish itself.
	relay := newRelay(t, st, js, publisher.Config{PublishTimeout: time.Hour})
	want := insertJobs(t, st, "t1", 3, 2)
	status := nc.StatusChanged(nats.RECONNECTING, nats.CONNECTED)

	srv.Shutdown()
	natstest.WaitStatus(t, status, nats.RECONNECTING)
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	n, err := relay.RelayOnce(ctx)
	cancel()
	if !errors.Is(err, nats.ErrReconnectBufExceeded) || n != 0 {
		t.Fatalf("RelayOnce while disconnected = %d, %v; want 0 and nats.ErrReconnectBufExceeded", n, err)
	}
	if p := pending(t, st); p != int64(len(want)) {
		t.Fatalf("%d events pending, want all %d", p, len(want))
	}

	srv.Restart(t)
	natstest.WaitStatus(t, status, nats.CONNECTED)
	var dups []string
	n, _, err = st.RelayRound(t.Context(), 100, func(ctx context.Context, events iter.Seq[store.OutboxEvent], ack func(string, time.Time)) error {
		return relay.Publish(ctx, slices.Collect(events), func(ev store.OutboxEvent, pa *jetstream.PubAck) {
			if pa.Duplicate {
				dups = append(dups, ev.ID)
			}
			ack(ev.ID, time.Now())
		})
	})
	if err != nil || n != len(want) {
		t.Fatalf("round after reconnecting = %d, %v; want %d, nil", n, err, len(want))
	}
	if len(dups) > 0 {
		t.Errorf("%d events were in the stream before the relay published them after reconnecting: a buffered copy got there first", len(dups))
	}
	checkStream(t, js, want)
}

// TestRelayHoldsAJobsNextEventUntilTheLastIsAcknowledged loses one publish
// on its way to NATS while the job's next event would go through: the
// relay must not publish the next one before the lost one is acknowledged,
// or the stream gets them out of order.
func TestRelayHoldsAJobsNextEventUntilTheLastIsAcknowledged(t *testing.T) {
	t.Parallel()
	st := storetest.NewStore(t)
	srv := natstest.Start(t)
	if _, err := publisher.EnsureStream(t.Context(), newJetStream(t, srv.Connect(t)), publisher.StreamConfig{Managed: true}); err != nil {
		t.Fatal(err)
	}
	proxy := natstest.NewProxy(t, srv)
	js := newJetStream(t, proxy.Connect(t))
	// The lost publish is given up after PublishTimeout.
	relay := newRelay(t, st, js, publisher.Config{PublishTimeout: time.Second, MaxInFlight: 16})
	want := insertJobs(t, st, "t1", 3, 3)
	for id, ev := range want {
		if ev.JobID == "job-1" && ev.Sequence == 1 {
			proxy.Drop(id, 1)
		}
	}

	for round := 1; pending(t, st) > 0; round++ {
		if round > 5 {
			t.Fatalf("%d events still pending after %d rounds", pending(t, st), round-1)
		}
		n, err := relay.RelayOnce(t.Context())
		t.Logf("round %d: published %d, %v", round, n, err)
	}
	select {
	case <-proxy.Dropped():
	default:
		t.Fatal("the proxy dropped nothing")
	}
	checkStream(t, js, want)
}

// TestRelayReportsALongLockWait holds the relay lock, as a replay or a
// stuck replica's round would, while the relay's rounds try for it on a
// fake clock: the relay must publish nothing, report the wait to
// LockWait and OnLockWait, log it once past LockWaitWarning (not per
// round), and report zero again once it has the lock.
func TestRelayReportsALongLockWait(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := observed
	advance := func(d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(d)
	}
	var waits []time.Duration
	logs := syncBuffer{written: newSignal()}
	b := setup(t, publisher.Config{
		NowFunc: func() time.Time {
			mu.Lock()
			defer mu.Unlock()
			return now
		},
		OnLockWait: func(d time.Duration) { waits = append(waits, d) },
		Logger:     slog.New(slog.NewTextHandler(&logs, nil)),
	})
	insertJobs(t, b.store, "t1", 2, 1)

	unlock, err := b.store.LockRelay(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	round := func() {
		t.Helper()
		if _, err := b.relay.RelayOnce(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	for _, step := range []time.Duration{0, 30 * time.Second, 30 * time.Second, 10 * time.Second, 10 * time.Second} {
		advance(step)
		round()
	}
	if p := pending(t, b.store); p != 2 {
		t.Errorf("%d events pending while the lock was held elsewhere, want 2", p)
	}
	if got := b.relay.LockWait(); got != 80*time.Second {
		t.Errorf("LockWait = %s, want 1m20s", got)
	}
	if want := []time.Duration{0, 30 * time.Second, time.Minute, 70 * time.Second, 80 * time.Second}; !slices.Equal(waits, want) {
		t.Errorf("OnLockWait got %v, want %v", waits, want)
	}
	if n := strings.Count(logs.String(), "relay lock held elsewhere"); n != 1 || !strings.Contains(logs.String(), "waited=1m0s") {
		t.Errorf("logged the wait %d times, want once with waited=1m0s:\n%s", n, logs.String())
	}

	unlock()
	advance(5 * time.Second)
	waits = nil
	if n, err := b.relay.RelayOnce(t.Context()); err != nil || n != 2 {
		t.Fatalf("RelayOnce after the lock was released = %d, %v; want 2, nil", n, err)
	}
	if got := b.relay.LockWait(); got != 0 || !slices.Equal(waits, []time.Duration{0}) {
		t.Errorf("after getting the lock: LockWait = %s, OnLockWait got %v; want 0 and [0]", got, waits)
	}
	if !strings.Contains(logs.String(), "relay lock taken") || !strings.Contains(logs.String(), "waited=1m25s") {
		t.Errorf("the end of the wait was not logged:\n%s", logs.String())
	}
}

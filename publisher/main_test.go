package publisher_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ossjobwatch/ossjobwatch/event"
	"github.com/ossjobwatch/ossjobwatch/internal/natstest"
	"github.com/ossjobwatch/ossjobwatch/publisher"
	"github.com/ossjobwatch/ossjobwatch/store"
	"github.com/ossjobwatch/ossjobwatch/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

// waitTimeout bounds every wait for a signal or a condition.
const waitTimeout = 15 * time.Second

var observed = time.Date(2026, 11, 24, 9, 30, 0, 0, time.UTC)

type bundle struct {
	store *store.Store
	nats  *natstest.Server
	nc    *nats.Conn
	js    jetstream.JetStream
	relay *publisher.Relay
}

// setup starts a database, a NATS server with the managed stream and a relay
// configured by cfg (Store and JetStream filled in). Its connection does not
// buffer while disconnected, as publisher.Connect's.
func setup(t *testing.T, cfg publisher.Config) *bundle {
	t.Helper()
	st := storetest.NewStore(t)
	srv := natstest.Start(t)
	nc := srv.Connect(t, nats.ReconnectBufSize(-1))
	js := newJetStream(t, nc)
	if _, err := publisher.EnsureStream(t.Context(), js, publisher.StreamConfig{Managed: true}); err != nil {
		t.Fatal(err)
	}
	return &bundle{store: st, nats: srv, nc: nc, js: js, relay: newRelay(t, st, js, cfg)}
}

func newRelay(t *testing.T, st *store.Store, js jetstream.JetStream, cfg publisher.Config) *publisher.Relay {
	t.Helper()
	cfg.Store, cfg.JetStream = st, js
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	}
	r, err := publisher.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func newJetStream(t testing.TB, nc *nats.Conn) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// insertJobs writes jobs × perJob events of target, a job's events spread
// over the insert order (job-0 #1, job-1 #1, …, job-0 #2, …), and returns
// them by id.
func insertJobs(t *testing.T, st *store.Store, target string, jobs, perJob int) map[string]event.Event {
	t.Helper()
	var evs []event.Event
	for seq := 1; seq <= perJob; seq++ {
		for j := range jobs {
			evs = append(evs, storetest.NewEvent(t, target, fmt.Sprintf("job-%d", j), int64(seq), observed))
		}
	}
	storetest.InsertEvents(t, st, target, evs...)
	return byID(evs)
}

// insertShuffled writes perJob events of each of jobs in a random
// interleaving, each job's in sequence order, plus one hot job with
// hotEvents events among them.
func insertShuffled(t *testing.T, st *store.Store, target string, jobs, perJob, hotEvents int) map[string]event.Event {
	t.Helper()
	left := map[string]int{"hot": hotEvents}
	for j := range jobs {
		left[fmt.Sprintf("job-%d", j)] = perJob
	}
	names := make([]string, 0, len(left))
	for name := range left {
		names = append(names, name)
	}
	next := map[string]int64{}
	var evs []event.Event
	for len(names) > 0 {
		i := rand.N(len(names))
		name := names[i]
		next[name]++
		evs = append(evs, storetest.NewEvent(t, target, name, next[name], observed))
		if left[name]--; left[name] == 0 {
			names = append(names[:i], names[i+1:]...)
		}
	}
	storetest.InsertEvents(t, st, target, evs...)
	return byID(evs)
}

func byID(evs []event.Event) map[string]event.Event {
	m := make(map[string]event.Event, len(evs))
	for _, ev := range evs {
		m[ev.ID] = ev
	}
	return m
}

func pending(t *testing.T, st *store.Store) int64 {
	t.Helper()
	n, _, err := st.OutboxStats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func streamMsgs(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	s, err := js.Stream(t.Context(), publisher.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	return s.CachedInfo().State.Msgs
}

// readStream reads the whole stream with an ordered consumer.
func readStream(t *testing.T, js jetstream.JetStream) []jetstream.Msg {
	t.Helper()
	n := int(streamMsgs(t, js))
	cons, err := js.OrderedConsumer(t.Context(), publisher.DefaultStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var out []jetstream.Msg
	for len(out) < n {
		batch, err := cons.Fetch(n-len(out), jetstream.FetchMaxWait(waitTimeout))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			out = append(out, m)
		}
		if err := batch.Error(); err != nil {
			t.Fatalf("read stream: %v after %d of %d messages", err, len(out), n)
		}
	}
	return out
}

// checkStream checks that the stream holds each of want exactly once, each
// job's events in sequence order.
func checkStream(t *testing.T, js jetstream.JetStream, want map[string]event.Event) {
	t.Helper()
	msgs := readStream(t, js)
	if len(msgs) != len(want) {
		t.Errorf("stream holds %d messages, want %d", len(msgs), len(want))
	}
	seen := map[string]bool{}
	last := map[string]int64{}
	for _, m := range msgs {
		id := m.Headers().Get(jetstream.MsgIDHeader)
		ev, ok := want[id]
		switch {
		case !ok:
			t.Fatalf("unexpected message %s on %s", id, m.Subject())
		case seen[id]:
			t.Fatalf("event %s stored twice", id)
		case ev.Sequence != last[ev.JobID]+1:
			t.Fatalf("job %s: event #%d follows #%d", ev.JobID, ev.Sequence, last[ev.JobID])
		}
		seen[id], last[ev.JobID] = true, ev.Sequence
	}
}

// signal is a coalescing notification, for hooks.
type signal chan struct{}

func newSignal() signal { return make(signal, 1) }

func (s signal) send() {
	select {
	case s <- struct{}{}:
	default:
	}
}

func (s signal) wait(t *testing.T, what string) {
	t.Helper()
	select {
	case <-s:
	case <-time.After(waitTimeout):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// waitFor waits until cond holds, re-checking it on each signal.
func waitFor(t *testing.T, s signal, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	for !cond() {
		select {
		case <-s:
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

package app

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ossjobwatch/ossjobwatch/internal/natstest"
	"github.com/ossjobwatch/ossjobwatch/internal/proctest"
	"github.com/ossjobwatch/ossjobwatch/store"
)

// connPeaks are the most connections the replicas had open to the test's
// database at once, by pg_stat_activity, sampled every 50 ms.
type connPeaks struct {
	open   int            // every replica's connections, the test's own left out
	busy   int            // of them, not idle (in a statement or a transaction)
	perApp map[string]int // open, by application_name (the replica's id)
	// waits counts, over the samples, the busy connections by what they
	// were doing: "active", "active/Lock:advisory", "idle in transaction"…
	waits   map[string]int
	samples int
}

type connMonitor struct {
	mu   sync.Mutex
	p    connPeaks
	stop func()
}

func startConnMonitor(tb testing.TB, st *store.Store) *connMonitor {
	m := &connMonitor{p: connPeaks{perApp: map[string]int{}, waits: map[string]int{}}}
	ctx, cancel := context.WithCancel(context.WithoutCancel(tb.Context()))
	done := make(chan struct{})
	m.stop = sync.OnceFunc(func() { cancel(); <-done })
	tb.Cleanup(m.stop)
	go func() {
		defer close(done)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			m.sample(ctx, st)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return m
}

func (m *connMonitor) sample(ctx context.Context, st *store.Store) {
	rows, err := st.Pool().Query(ctx, `
		SELECT application_name, state || coalesce('/' || wait_event_type || ':' || wait_event, ''), count(*)
		FROM pg_stat_activity
		WHERE datname = current_database() AND application_name LIKE 'replica-%'
		GROUP BY 1, 2`)
	if err != nil {
		return // the test is ending
	}
	defer rows.Close()
	var open, busy int
	per, waits := map[string]int{}, map[string]int{}
	for rows.Next() {
		var app, state string
		var n int
		if rows.Scan(&app, &state, &n) != nil {
			return
		}
		open, per[app] = open+n, per[app]+n
		if state != "idle" && state != "idle/Client:ClientRead" {
			busy += n
			waits[state] += n
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.p.open, m.p.busy = max(m.p.open, open), max(m.p.busy, busy)
	for app, n := range per {
		m.p.perApp[app] = max(m.p.perApp[app], n)
	}
	for w, n := range waits {
		m.p.waits[w] += n
	}
	m.p.samples++
}

func (m *connMonitor) reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.p = connPeaks{perApp: map[string]int{}, waits: map[string]int{}}
}

func (m *connMonitor) peaks() connPeaks {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.p
	p.perApp, p.waits = maps.Clone(m.p.perApp), maps.Clone(m.p.waits)
	return p
}

// cpuUse is CPU time: this process's (replicas, simulators, NATS server,
// test), and PostgreSQL's, the server's whole process tree by /proc,
// backends that ended included (pg is -1 where that cannot be read, as
// with a remote test database).
type cpuUse struct {
	process time.Duration
	pg      time.Duration
}

func (c cpuUse) pgCores(window time.Duration) string {
	if c.pg < 0 {
		return "not measured (not a local server)"
	}
	return fmt.Sprintf("%.2f cores", c.pg.Seconds()/window.Seconds())
}

// readCPU reads the CPU used so far; pgPID is storetest.ServerPID's.
func readCPU(tb testing.TB, pgPID int) cpuUse {
	tb.Helper()
	self, err := proctest.Self()
	if err != nil {
		tb.Fatal(err)
	}
	c := cpuUse{process: self, pg: -1}
	if pgPID != 0 {
		if c.pg, err = proctest.TreeCPU(pgPID); err != nil {
			tb.Fatal(err)
		}
	}
	return c
}

// since is the CPU used from c0 to c.
func (c cpuUse) since(c0 cpuUse) cpuUse {
	d := cpuUse{process: c.process - c0.process, pg: -1}
	if c.pg >= 0 && c0.pg >= 0 {
		d.pg = c.pg - c0.pg
	}
	return d
}

// checkDeliveredAtScale is checkDelivered for hundreds of thousands of
// events: it drains the outbox with a relay of its own, then reads the
// stream once with an ordered consumer and holds digests, not bodies.
// Every stored event must be in the stream exactly once, byte for byte, on
// its subject, each job's in sequence order; sequences are gap-free from 1
// and the outbox is empty.
func checkDeliveredAtScale(tb testing.TB, a *App, ns *natstest.Server, st *store.Store) int {
	tb.Helper()
	ctx, cancel := context.WithTimeout(tb.Context(), 5*time.Minute)
	defer cancel()
	rel, err := a.ConnectNATS(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := rel.Drain(ctx); err != nil {
		tb.Fatal(err)
	}
	var pending, unpublished, gappy int
	if err := st.Pool().QueryRow(ctx, `SELECT (SELECT count(*) FROM outbox), (SELECT count(*) FROM job_events WHERE published_at IS NULL)`).Scan(&pending, &unpublished); err != nil {
		tb.Fatal(err)
	}
	if pending != 0 || unpublished != 0 {
		tb.Fatalf("after the drain: %d in the outbox, %d events unpublished", pending, unpublished)
	}
	if err := st.Pool().QueryRow(ctx, `
		SELECT count(*) FROM (SELECT 1 FROM job_events GROUP BY target, job_id
		HAVING min(sequence) <> 1 OR max(sequence) <> count(*) OR count(DISTINCT sequence) <> count(*)) g`).Scan(&gappy); err != nil {
		tb.Fatal(err)
	}
	if gappy != 0 {
		tb.Fatalf("%d jobs have sequences with gaps or repeats in job_events", gappy)
	}

	type stored struct {
		subject, key string
		sequence     int64
		digest       [16]byte
		seen         bool
	}
	events := map[string]*stored{}
	rows, err := st.Pool().Query(ctx, `SELECT id::text, subject, target || '/' || job_id, sequence, md5(payload::text) FROM job_events`)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, sum string
		e := &stored{}
		if err := rows.Scan(&id, &e.subject, &e.key, &e.sequence, &sum); err != nil {
			tb.Fatal(err)
		}
		if n, err := hex.Decode(e.digest[:], []byte(sum)); err != nil || n != len(e.digest) {
			tb.Fatalf("md5 %q: %v", sum, err)
		}
		events[id] = e
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	rows.Close()

	js, err := jetstream.New(ns.Connect(tb))
	if err != nil {
		tb.Fatal(err)
	}
	s, err := js.Stream(ctx, a.cfg.Stream.Name)
	if err != nil {
		tb.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	if int(info.State.Msgs) != len(events) {
		tb.Errorf("the stream holds %d messages, job_events %d events", info.State.Msgs, len(events))
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		tb.Fatal(err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(4096))
	if err != nil {
		tb.Fatal(err)
	}
	defer it.Stop()
	next := map[string]int64{}
	for range info.State.Msgs {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			tb.Fatalf("read the stream: %v", err)
		}
		id := m.Headers().Get("Nats-Msg-Id")
		e, ok := events[id]
		switch {
		case !ok:
			tb.Fatalf("stream holds %s, which is not in job_events", id)
		case e.seen:
			tb.Fatalf("event %s is in the stream twice", id)
		case m.Subject() != e.subject || md5.Sum(m.Data()) != e.digest || m.Headers().Get("Content-Type") != "application/cloudevents+json":
			tb.Fatalf("event %s differs in the stream: subject %q, body or content type", id, m.Subject())
		case e.sequence != next[e.key]+1:
			tb.Fatalf("job %s: sequence %d follows %d in the stream", e.key, e.sequence, next[e.key])
		}
		e.seen = true
		next[e.key] = e.sequence
	}
	for id, e := range events {
		if !e.seen {
			tb.Fatalf("stored event %s (%s #%d) never reached the stream", id, e.key, e.sequence)
		}
	}
	return len(events)
}

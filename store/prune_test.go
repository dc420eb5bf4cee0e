package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	jobevent "github.com/ossjobwatch/ossjobwatch/event"
	"github.com/ossjobwatch/ossjobwatch/job"
	"github.com/ossjobwatch/ossjobwatch/oss/osssim"
	"github.com/ossjobwatch/ossjobwatch/oss/osstest"
	"github.com/ossjobwatch/ossjobwatch/poller"
	"github.com/ossjobwatch/ossjobwatch/store"
	"github.com/ossjobwatch/ossjobwatch/store/storetest"
)

// Tests prune with ages measured back from the database's clock: rows are
// written relative to now(), long enough before or after each cutoff that
// the test's own duration does not matter.
const (
	retention = 720 * time.Hour
	old       = 1000 * time.Hour // beyond the retention
	recent    = time.Hour        // within it
)

func count(t *testing.T, st *store.Store, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := st.Pool().QueryRow(t.Context(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func exec(t *testing.T, st *store.Store, sql string, args ...any) {
	t.Helper()
	if _, err := st.Pool().Exec(t.Context(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// dbNow is the database's clock, the one Prune measures ages on.
func dbNow(t *testing.T, st *store.Store) time.Time {
	t.Helper()
	var now time.Time
	if err := st.Pool().QueryRow(t.Context(), `SELECT now()`).Scan(&now); err != nil {
		t.Fatal(err)
	}
	return now
}

// publishAll marks every pending event published, as the relay does: one
// statement sets published_at and empties the outbox.
func publishAll(t *testing.T, st *store.Store) {
	t.Helper()
	exec(t, st, `
		WITH marked AS (
			UPDATE job_events SET published_at = observed_at + interval '1 second'
			WHERE published_at IS NULL RETURNING pos
		)
		DELETE FROM outbox WHERE pos IN (SELECT pos FROM marked)`)
}

// sequences returns job-1's remaining event sequences in target hz.
func sequences(t *testing.T, st *store.Store, target, jobID string) []int64 {
	t.Helper()
	rows, err := st.Pool().Query(t.Context(), `SELECT sequence FROM job_events WHERE target = $1 AND job_id = $2 ORDER BY sequence`, target, jobID)
	if err != nil {
		t.Fatal(err)
	}
	seqs, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	return seqs
}

func insertJobRow(t *testing.T, st *store.Store, target, jobID string, lastSequence int64) {
	t.Helper()
	exec(t, st, `
		INSERT INTO jobs (target, job_id, status, descriptor, first_seen_at, last_seen_at, last_changed_at, last_sequence)
		VALUES ($1, $2, 'Active', '{}', now() - interval '2000 hours', now() - interval '2000 hours', now() - interval '2000 hours', $3)`,
		target, jobID, lastSequence)
}

// TestPruneProgressKeepsEverythingElse is the retention guarantee: aged
// published progress events go; recent ones, other events (with events
// kept), unpublished events however old, and jobs rows stay.
func TestPruneProgressKeepsEverythingElse(t *testing.T) {
	t.Parallel()
	st := storetest.NewStore(t)
	now := dbNow(t, st)
	type ev struct {
		seq   int64
		typ   string
		age   time.Duration
		state string // published, pending (in the outbox), null-only (published_at null, not queued), queued-only (published_at set, still queued)
		goes  bool
	}
	evs := []ev{
		{1, typeDiscovered, old + 5*time.Hour, "published", false},
		{2, typeProgress, old + 4*time.Hour, "published", true},
		{3, typeProgress, old + 3*time.Hour, "published", true},
		{4, typeStatusChanged, old + 2*time.Hour, "published", false},
		{5, typeTasksFailed, old + time.Hour, "published", false},
		{6, typeProgress, old, "published", true},
		{7, typeProgress, old, "pending", false},
		{8, typeProgress, old, "null-only", false},
		{9, typeProgress, old, "queued-only", false},
		{10, typeProgress, recent, "published", false},
		{11, typeProgress, recent, "pending", false},
	}
	for _, e := range evs {
		var from, to *string
		switch e.typ {
		case typeDiscovered:
			to = status("New")
		case typeStatusChanged:
			from, to = status("New"), status("Active")
		}
		if err := insertEvent(t, st, event{target: "hz", jobID: "job-1", sequence: e.seq, typ: e.typ, from: from, to: to, observedAt: now.Add(-e.age)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range evs {
		switch e.state {
		case "published":
			exec(t, st, `WITH m AS (UPDATE job_events SET published_at = observed_at WHERE sequence = $1 RETURNING pos) DELETE FROM outbox WHERE pos IN (SELECT pos FROM m)`, e.seq)
		case "null-only":
			exec(t, st, `DELETE FROM outbox WHERE pos = (SELECT pos FROM job_events WHERE sequence = $1)`, e.seq)
		case "queued-only":
			exec(t, st, `UPDATE job_events SET published_at = observed_at WHERE sequence = $1`, e.seq)
		}
	}
	insertJobRow(t, st, "hz", "job-1", 11)
	insertJobRow(t, st, "hz", "job-gone", 0) // a job with no events left at all

	pruned, locked, err := st.Prune(t.Context(), store.PruneConfig{Progress: retention})
	if err != nil || !locked {
		t.Fatalf("Prune = %v, %v, %v", pruned, locked, err)
	}
	if want := (store.Pruned{store.PruneProgress: 3}); !maps(pruned, want) {
		t.Errorf("pruned %v, want %v", pruned, want)
	}
	var want []int64
	for _, e := range evs {
		if !e.goes {
			want = append(want, e.seq)
		}
	}
	if got := sequences(t, st, "hz", "job-1"); !slices.Equal(got, want) {
		t.Errorf("sequences left %v, want %v", got, want)
	}
	if n := count(t, st, `SELECT count(*) FROM jobs`); n != 2 {
		t.Errorf("%d jobs rows left, want 2: jobs rows are never deleted", n)
	}
	if n := count(t, st, `SELECT last_sequence FROM jobs WHERE job_id = 'job-1'`); n != 11 {
		t.Errorf("job-1's last_sequence = %d after pruning, want 11", n)
	}
	if n := count(t, st, `SELECT count(*) FROM outbox`); n != 3 {
		t.Errorf("outbox holds %d events after pruning, want the 3 queued ones", n)
	}

	// A second pass finds nothing more.
	if pruned, _, err := st.Prune(t.Context(), store.PruneConfig{Progress: retention}); err != nil || pruned.Total() != 0 {
		t.Errorf("second Prune = %v, %v; want nothing deleted", pruned, err)
	}
}

func maps(a, b store.Pruned) bool {
	for _, k := range store.PruneKinds {
		if a[k] != b[k] {
			return false
		}
	}
	return true
}

// TestPruneEvents: with an events retention, aged published events of every
// type but progress go too; progress events follow their own setting (here
// 0, kept).
func TestPruneEvents(t *testing.T) {
	t.Parallel()
	st := storetest.NewStore(t)
	now := dbNow(t, st)
	for _, e := range []event{
		{sequence: 1, typ: typeDiscovered, to: status("New"), observedAt: now.Add(-old - time.Hour)},
		{sequence: 2, typ: typeProgress, observedAt: now.Add(-old)},
		{sequence: 3, typ: typeStatusChanged, from: status("New"), to: status("Failed"), observedAt: now.Add(-old)},
		{sequence: 4, typ: typeTasksFailed, observedAt: now.Add(-recent)},
	} {
		e.target, e.jobID = "hz", "job-1"
		if err := insertEvent(t, st, e); err != nil {
			t.Fatal(err)
		}
	}
	publishAll(t, st)
	// Old, but not published: #5 pending, #6 with published_at null
	// but not queued, #7 queued but with published_at set.
	for _, e := range []event{
		{sequence: 5, typ: "ossjobwatch.job.stalled", observedAt: now.Add(-old)},
		{sequence: 6, typ: typeTasksFailed, observedAt: now.Add(-old)},
		{sequence: 7, typ: "ossjobwatch.job.removed", observedAt: now.Add(-old)},
	} {
		e.target, e.jobID = "hz", "job-1"
		if err := insertEvent(t, st, e); err != nil {
			t.Fatal(err)
		}
	}
	exec(t, st, `DELETE FROM outbox WHERE pos = (SELECT pos FROM job_events WHERE sequence = 6)`)
	exec(t, st, `UPDATE job_events SET published_at = observed_at WHERE sequence = 7`)

	pruned, _, err := st.Prune(t.Context(), store.PruneConfig{Events: retention})
	if err != nil {
		t.Fatal(err)
	}
	if want := (store.Pruned{store.PruneEvents: 2}); !maps(pruned, want) {
		t.Errorf("pruned %v, want %v", pruned, want)
	}
	if got, want := sequences(t, st, "hz", "job-1"), []int64{2, 4, 5, 6, 7}; !slices.Equal(got, want) {
		t.Errorf("sequences left %v, want %v", got, want)
	}
}

// TestPruneOperationalRows: old sweep records (but each target's last
// applied one), dead replicas' rows and long-expired leases go.
func TestPruneOperationalRows(t *testing.T) {
	t.Parallel()
	st := storetest.NewStore(t)
	exec(t, st, `
		INSERT INTO sweeps (id, target, started_at) VALUES
			('00000000-0000-7000-8000-000000000001', 'hz', now() - interval '200 hours'),
			('00000000-0000-7000-8000-000000000002', 'hz', now() - interval '190 hours'),
			('00000000-0000-7000-8000-000000000003', 'sh', now() - interval '300 hours'),
			('00000000-0000-7000-8000-000000000004', 'hz', now() - interval '1 hour')`)
	// sh's last applied sweep is old (the target went quiet): it is kept.
	exec(t, st, `INSERT INTO targets (target, baseline_done, last_sweep_id) VALUES ('sh', true, '00000000-0000-7000-8000-000000000003')`)
	exec(t, st, `
		INSERT INTO replicas (id, heartbeat_at) VALUES ('dead', now() - interval '2 hours'), ('alive', now()), ('late', now() - interval '5 minutes')`)
	exec(t, st, `
		INSERT INTO target_leases (target, holder, acquired_at, expires_at) VALUES
			('a', 'dead', now() - interval '3 hours', now() - interval '2 hours'),
			('b', 'late', now() - interval '6 minutes', now() - interval '5 minutes'),
			('c', 'alive', now(), now() + interval '30 seconds')`)

	pruned, _, err := st.Prune(t.Context(), store.PruneConfig{Sweeps: 168 * time.Hour, DeadAfter: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if want := (store.Pruned{store.PruneSweeps: 2, store.PruneReplicas: 1, store.PruneLeases: 1}); !maps(pruned, want) {
		t.Errorf("pruned %v, want %v", pruned, want)
	}
	if n := count(t, st, `SELECT count(*) FROM sweeps WHERE id IN ('00000000-0000-7000-8000-000000000003', '00000000-0000-7000-8000-000000000004')`); n != 2 {
		t.Errorf("%d of the recent sweep and sh's last applied one left, want 2", n)
	}
	if n := count(t, st, `SELECT count(*) FROM replicas WHERE id IN ('alive', 'late')`); n != 2 {
		t.Errorf("%d live replicas left, want 2", n)
	}
	if n := count(t, st, `SELECT count(*) FROM target_leases WHERE target IN ('b', 'c')`); n != 2 {
		t.Errorf("%d recent leases left, want 2", n)
	}
	// Zero keeps.
	exec(t, st, `INSERT INTO replicas (id, heartbeat_at) VALUES ('dead', now() - interval '2 hours')`)
	if pruned, _, err := st.Prune(t.Context(), store.PruneConfig{}); err != nil || pruned.Total() != 0 {
		t.Errorf("Prune with every age 0 = %v, %v; want nothing deleted", pruned, err)
	}
}

// insertAged writes perJob progress events (sequences 2, 3, …) for each of
// jobs jobs of target, unpublished, observed about old ago, a second apart.
func insertAged(t testing.TB, st *store.Store, target string, jobs, perJob int) {
	t.Helper()
	now := time.Now()
	var evs []jobevent.Event
	for j := range jobs {
		for i := range perJob {
			evs = append(evs, storetest.NewEvent(t, target, fmt.Sprintf("job-%d", j), int64(i+2), now.Add(-old-time.Duration(perJob-i)*time.Second)))
		}
	}
	storetest.InsertEvents(t, st, target, evs...)
}

// TestPruneBatches: more than a batch to delete is deleted in several
// statements, each of at most BatchSize rows, all of it; events that may
// not go are passed over, and not read again by the next batches.
func TestPruneBatches(t *testing.T) {
	t.Parallel()
	st := storetest.NewStore(t)
	insertAged(t, st, "hz", 5, 500) // 2,500 events
	publishAll(t, st)
	insertAged(t, st, "hz-pending", 3, 100) // 300 unpublished, as old

	var batches []int64
	start := time.Now()
	pruned, _, err := st.Prune(t.Context(), store.PruneConfig{
		Progress: retention, Pause: time.Millisecond,
		OnBatch: func(kind store.PruneKind, n int64) {
			if kind != store.PruneProgress {
				t.Errorf("batch of %s, want only progress", kind)
			}
			batches = append(batches, n)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("pruned %d events in %d batches in %s", pruned[store.PruneProgress], len(batches), time.Since(start))
	if pruned[store.PruneProgress] != 2500 || !slices.Equal(batches, []int64{1000, 1000, 500}) {
		t.Errorf("pruned %v in batches %v, want 2500 in 1000, 1000, 500", pruned, batches)
	}
	if n := count(t, st, `SELECT count(*) FROM job_events`); n != 300 {
		t.Errorf("%d events left, want the 300 unpublished", n)
	}

	// Smaller batches: the cursor moves past the unpublished events.
	publishAll(t, st)
	insertAged(t, st, "hz-pending-2", 1, 10)
	batches = nil
	pruned, _, err = st.Prune(t.Context(), store.PruneConfig{Progress: retention, BatchSize: 7, Pause: time.Millisecond,
		OnBatch: func(_ store.PruneKind, n int64) { batches = append(batches, n) }})
	if err != nil || pruned[store.PruneProgress] != 300 || len(batches) != 43 {
		t.Errorf("pruned %v, %v in %d batches; want 300 in 43", pruned, err, len(batches))
	}
	if _, _, err := st.Prune(t.Context(), store.PruneConfig{BatchSize: 1001}); err == nil || !strings.Contains(err.Error(), "BatchSize") {
		t.Errorf("BatchSize 1001: %v, want an error naming it", err)
	}
}

// TestPruneOneAtATime: a pass finding another one running skips, deleting
// nothing; once the first is done, the next one prunes.
func TestPruneOneAtATime(t *testing.T) {
	t.Parallel()
	st := storetest.NewStore(t)
	insertAged(t, st, "hz", 1, 1500)
	publishAll(t, st)

	inBatch, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	first := make(chan error, 1)
	go func() {
		_, locked, err := st.Prune(t.Context(), store.PruneConfig{Progress: retention, Pause: time.Millisecond,
			OnBatch: func(store.PruneKind, int64) {
				once.Do(func() { close(inBatch); <-release })
			}})
		if err == nil && !locked {
			err = errors.New("the first pass did not get the lock")
		}
		first <- err
	}()
	select {
	case <-inBatch:
	case <-time.After(30 * time.Second):
		t.Fatal("the first pass did not delete a batch within 30s")
	}

	pruned, locked, err := st.Prune(t.Context(), store.PruneConfig{Progress: retention})
	if err != nil || locked || pruned.Total() != 0 {
		t.Errorf("second pass while the first runs = %v, %v, %v; want nothing done and locked false", pruned, locked, err)
	}
	if n := count(t, st, `SELECT count(*) FROM job_events`); n != 500 {
		t.Errorf("%d events left while the first pass waits after its first batch, want 500", n)
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}

	insertAged(t, st, "sh", 1, 10)
	publishAll(t, st)
	pruned, locked, err = st.Prune(t.Context(), store.PruneConfig{Progress: retention})
	if err != nil || !locked || pruned[store.PruneProgress] != 10 {
		t.Errorf("pass after the first ended = %v, %v, %v; want 10 deleted", pruned, locked, err)
	}
}

// TestPruneBatchBounded: a batch that waits on a row lock gives up after
// the lock timeout with an error naming it, and the lock is free again.
func TestPruneBatchBounded(t *testing.T) {
	t.Parallel()
	st := storetest.NewStore(t)
	insertAged(t, st, "hz", 1, 3)
	publishAll(t, st)
	tx, err := st.Pool().Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(t.Context(), `SELECT FROM job_events WHERE sequence = 3 FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, _, err = st.Prune(t.Context(), store.PruneConfig{Progress: retention, LockTimeout: 200 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "lock timeout (200ms)") {
		t.Errorf("Prune with a row locked = %v, want the lock timeout named", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Prune took %s with a 200ms lock timeout", d)
	}
	if err := tx.Rollback(t.Context()); err != nil {
		t.Fatal(err)
	}
	if pruned, locked, err := st.Prune(t.Context(), store.PruneConfig{Progress: retention}); err != nil || !locked || pruned[store.PruneProgress] != 3 {
		t.Errorf("Prune after the row lock went = %v, %v, %v; want 3 deleted", pruned, locked, err)
	}
}

// TestPruneSequencesContinue: after its progress events are pruned, a job's
// next event takes the next sequence number, and job_status_history reads
// as before.
func TestPruneSequencesContinue(t *testing.T) {
	t.Parallel()
	st := storetest.NewStore(t)
	sim, cfg := osstest.Start(t, osssim.Config{EmptyWorld: true})
	p, err := poller.New(poller.Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	target := poller.Target{Name: "hz", Region: sim.Region(), Client: osstest.NewClient(t, cfg)}
	sweep := func() {
		t.Helper()
		if _, err := p.SweepOnce(context.Background(), target); err != nil {
			t.Fatal(err)
		}
	}
	d := job.Detail{Job: job.Job{ID: "job-1", Status: job.StatusActive, Operation: "PutObjectTagging", Tasks: job.Tasks{Total: 100}}}
	sim.Put(d)
	sweep() // #1 discovered
	for _, s := range []int64{10, 20, 30} {
		d.Tasks.Succeeded = s
		sim.Put(d)
		sweep() // #2, #3, #4 progress
	}
	d.Status = job.StatusPaused
	sim.Put(d)
	sweep() // #5 status Active → Paused
	var batches [][]store.OutboxEvent
	for {
		n, _, err := st.RelayRound(t.Context(), 100, ackAll(&batches))
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	if got := sequences(t, st, "hz", "job-1"); !slices.Equal(got, []int64{1, 2, 3, 4, 5}) {
		t.Fatalf("sequences before pruning %v", got)
	}
	history := func() string {
		t.Helper()
		rows, err := st.Pool().Query(t.Context(), `SELECT status, sequence, entered_at, left_at, duration FROM job_status_history WHERE target = 'hz' AND job_id = 'job-1' ORDER BY sequence`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var b strings.Builder
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintln(&b, vals...)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	// Age every event, as if they had been observed six weeks ago.
	exec(t, st, `UPDATE job_events SET observed_at = observed_at - interval '1000 hours', published_at = published_at - interval '1000 hours'`)
	before := history()

	pruned, _, err := st.Prune(t.Context(), store.PruneConfig{Progress: retention})
	if err != nil || pruned[store.PruneProgress] != 3 {
		t.Fatalf("Prune = %v, %v; want the 3 progress events deleted", pruned, err)
	}
	if after := history(); after != before || strings.Count(after, "\n") != 2 {
		t.Errorf("job_status_history after pruning:\n%s\nbefore:\n%s", after, before)
	}

	// A new poller (no snapshots cached) reads jobs.last_sequence.
	p, err = poller.New(poller.Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	d.Status, d.Tasks.Succeeded = job.StatusActive, 40
	sim.Put(d)
	sweep() // #6 status Paused → Active, #7 progress
	if got, want := sequences(t, st, "hz", "job-1"), []int64{1, 5, 6, 7}; !slices.Equal(got, want) {
		t.Errorf("sequences after pruning and a sweep %v, want %v", got, want)
	}
	if after := history(); strings.Count(after, "\n") != 3 || !strings.Contains(after, "Active 6") {
		t.Errorf("job_status_history after the next sweep:\n%s", after)
	}
}

package poller_test

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ossjobwatch/ossjobwatch/job"
	"github.com/ossjobwatch/ossjobwatch/oss/osssim"
	"github.com/ossjobwatch/ossjobwatch/poller"
)

// eventKeys returns every stored event as job, sequence, type, statuses
// and baseline flag, sorted.
func eventKeys(t *testing.T, b *bundle) []string {
	t.Helper()
	var keys []string
	for _, e := range events(t, b.store) {
		keys = append(keys, fmt.Sprintf("%s#%d %s %s>%s baseline=%v", e.JobID, e.Sequence, e.Type, e.From, e.To, e.Data["baseline"]))
	}
	slices.Sort(keys)
	return keys
}

// A first sweep large enough to be written in parts that fails after its
// first part committed leaves a target the next sweep finishes: the two
// together write exactly the events one successful first sweep writes,
// every job's discovery a baseline one, every job once.
func TestFirstSweepFailedInPartIsFinishedByTheNext(t *testing.T) {
	t.Parallel()
	const n = 25000 // three parts
	world := make([]job.Detail, n)
	for i := range world {
		status := job.Statuses[i%len(job.Statuses)]
		j := job.Job{ID: fmt.Sprintf("job-%05d", i), Status: status, Operation: "PutObjectTagging", Priority: 1,
			CreationTime: time.Unix(1749983400, 0), Tasks: job.Tasks{Total: 100, Succeeded: int64(i % 100), Failed: int64(i % 3)}}
		if status.Terminal() {
			j.TerminationTime = time.Unix(1749990000, 0)
		}
		world[i] = job.Detail{Job: j}
	}
	whole, failing := setup(t, osssim.Config{EmptyWorld: true}), setup(t, osssim.Config{EmptyWorld: true})
	for _, b := range []*bundle{whole, failing} {
		for _, d := range world {
			b.sim.Put(d)
		}
	}
	sweep(t, whole)

	// The database refuses a job of the second part.
	if _, err := failing.store.Pool().Exec(t.Context(), `
		CREATE FUNCTION refuse_job() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'job % refused for the test', NEW.job_id; END $$;
		CREATE TRIGGER refuse_job BEFORE INSERT ON jobs FOR EACH ROW
			WHEN (NEW.job_id = 'job-15000') EXECUTE FUNCTION refuse_job()`); err != nil {
		t.Fatal(err)
	}
	res, err := failing.poller.SweepOnce(t.Context(), failing.target)
	if err == nil || !strings.Contains(err.Error(), "job job-15000 refused for the test") {
		t.Fatalf("first sweep: %v, want the database's refusal", err)
	}
	if got := count(t, failing.store, `SELECT count(*) FROM jobs`); got != 10000 {
		t.Errorf("after the failed part, %d jobs stored, want the first part's 10000", got)
	}
	if res.Events != 10000 {
		t.Errorf("the failed sweep reports %d events written, want the first part's 10000", res.Events)
	}
	if got := count(t, failing.store, `SELECT events FROM sweeps WHERE id = $1 AND NOT complete AND error LIKE '%refused%'`, res.SweepID); got != 10000 {
		t.Errorf("the failed sweep's record counts %d events, want 10000, not complete, with its error", got)
	}
	if _, err := failing.store.Pool().Exec(t.Context(), `DROP TRIGGER refuse_job ON jobs`); err != nil {
		t.Fatal(err)
	}
	sweep(t, failing)

	want, got := eventKeys(t, whole), eventKeys(t, failing)
	if len(want) < n || !slices.Equal(got, want) {
		t.Errorf("a failed first sweep and the next wrote %d events, one whole first sweep %d; first difference: %s",
			len(got), len(want), firstDiff(got, want))
	}
	if got := count(t, failing.store, `SELECT count(*) FROM jobs`); got != n {
		t.Errorf("%d jobs stored, want %d", got, n)
	}
}

// waitForLocks waits until cond holds of the advisory locks sessions wait
// for: how many wait for the gate's lock and how many for another (a
// target's).
func waitForLocks(t *testing.T, b *bundle, gate int64, what string, cond func(gated, other int) bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		var gated, other int
		if err := b.store.Pool().QueryRow(t.Context(), `
			SELECT count(*) FILTER (WHERE classid = 0 AND objid = $1), count(*) FILTER (WHERE NOT (classid = 0 AND objid = $1))
			FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`, gate).Scan(&gated, &other); err != nil {
			t.Fatal(err)
		}
		if cond(gated, other) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited a minute for %s: %d sessions wait for the gate, %d for another lock", what, gated, other)
		}
		runtime.Gosched()
	}
}

// A sweep of a target whose first sweep another process is writing in
// parts conflicts once per part that commits after it read the snapshots.
// It waits the parts out and applies after them, rather than failing after
// maxApplyAttempts as it would for other conflicts. The database lets the
// first sweep's parts commit one at a time, each once the second sweep
// waits to apply.
func TestSweepWaitsOutAnotherSweepsParts(t *testing.T) {
	t.Parallel()
	const n, gate = 35000, 4242 // four parts: the last three gated
	b := setup(t, osssim.Config{EmptyWorld: true})
	for i := range n {
		b.sim.Put(activeJob(fmt.Sprintf("job-%05d", i), int64(i%100)))
	}
	// Every COPY into jobs after the first waits for the gate's lock.
	if _, err := b.store.Pool().Exec(t.Context(), `
		CREATE FUNCTION hold_later_parts() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF EXISTS (SELECT 1 FROM jobs) THEN PERFORM pg_advisory_xact_lock(4242); END IF;
			RETURN NULL;
		END $$;
		CREATE TRIGGER hold_later_parts BEFORE INSERT ON jobs FOR EACH STATEMENT EXECUTE FUNCTION hold_later_parts()`); err != nil {
		t.Fatal(err)
	}
	holder, err := b.store.Pool().Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Release()
	lock := func() {
		t.Helper()
		if _, err := holder.Exec(t.Context(), `SELECT pg_advisory_lock($1)`, int64(gate)); err != nil {
			t.Fatal(err)
		}
	}
	lock()

	type outcome struct {
		res poller.Result
		err error
	}
	first, second := make(chan outcome, 1), make(chan outcome, 1)
	go func() {
		res, err := b.poller.SweepOnce(t.Context(), b.target)
		first <- outcome{res, err}
	}()
	waitForLocks(t, b, gate, "the first sweep's second part to wait for the gate", func(gated, _ int) bool { return gated == 1 })
	other := newPoller(t, b.store)
	go func() {
		res, err := other.SweepOnce(t.Context(), b.target)
		second <- outcome{res, err}
	}()
	for part := 1; part <= 3; part++ {
		waitForLocks(t, b, gate, fmt.Sprintf("the second sweep to wait to apply, before part %d", part),
			func(gated, other int) bool { return gated == 1 && other == 1 })
		// Let this part commit: the gate's lock goes to the part, and
		// comes back once its transaction has ended.
		if _, err := holder.Exec(t.Context(), `SELECT pg_advisory_unlock($1)`, int64(gate)); err != nil {
			t.Fatal(err)
		}
		lock()
	}
	if _, err := holder.Exec(t.Context(), `SELECT pg_advisory_unlock($1)`, int64(gate)); err != nil {
		t.Fatal(err)
	}
	p1, p2 := <-first, <-second
	if p1.err != nil || p1.res.Events != n {
		t.Fatalf("first sweep: %d events, %v; want %d, no error", p1.res.Events, p1.err, n)
	}
	if p2.err != nil || p2.res.Stale || p2.res.Events != 0 {
		t.Errorf("second sweep: %d events, stale %v, %v; want it applied after the parts, with nothing new", p2.res.Events, p2.res.Stale, p2.err)
	}
	if got := count(t, b.store, `SELECT count(*) FROM job_events`); got != n {
		t.Errorf("%d events stored, want %d", got, n)
	}
}

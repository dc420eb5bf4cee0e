package poller_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ossjobwatch/ossjobwatch/diff"
	"github.com/ossjobwatch/ossjobwatch/job"
	"github.com/ossjobwatch/ossjobwatch/oss/osssim"
	"github.com/ossjobwatch/ossjobwatch/oss/osstest"
	"github.com/ossjobwatch/ossjobwatch/poller"
	"github.com/ossjobwatch/ossjobwatch/store"
	"github.com/ossjobwatch/ossjobwatch/store/storetest"
)

func TestMain(m *testing.M) {
	if os.Getenv(osstest.RemoteEnv) != "" {
		osstest.ServeRemote() // the benchmarks' out-of-process simulator
	}
	storetest.Main(m)
}

type bundle struct {
	sim    *osssim.Simulator
	store  *store.Store
	target poller.Target
	poller *poller.Poller
}

func setup(t *testing.T, simCfg osssim.Config) *bundle {
	t.Helper()
	sim, cfg := osstest.Start(t, simCfg)
	st := storetest.NewStore(t)
	return &bundle{
		sim:    sim,
		store:  st,
		target: poller.Target{Name: "test-target", Region: sim.Region(), Client: osstest.NewClient(t, cfg)},
		poller: newPoller(t, st),
	}
}

func newPoller(t *testing.T, st *store.Store) *poller.Poller {
	t.Helper()
	p, err := poller.New(poller.Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// storedEvent is a job_events row as the tests read it back.
type storedEvent struct {
	JobID, Type, Subject, From, To string
	Sequence                       int64
	Data                           map[string]any
}

func (e storedEvent) key() string { return fmt.Sprintf("%s#%d %s", e.JobID, e.Sequence, e.Subject) }

func events(t *testing.T, st *store.Store) []storedEvent {
	t.Helper()
	rows, err := st.Pool().Query(t.Context(), `
		SELECT job_id, type, subject, coalesce(from_status, ''), coalesce(to_status, ''), sequence, payload
		FROM job_events ORDER BY pos`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []storedEvent
	for rows.Next() {
		var e storedEvent
		var payload []byte
		if err := rows.Scan(&e.JobID, &e.Type, &e.Subject, &e.From, &e.To, &e.Sequence, &payload); err != nil {
			t.Fatal(err)
		}
		var env struct {
			Data map[string]any `json:"data"`
		}
		if err := json.Unmarshal(payload, &env); err != nil {
			t.Fatalf("payload of %s: %v", e.key(), err)
		}
		e.Data = env.Data
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func count(t *testing.T, st *store.Store, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := st.Pool().QueryRow(t.Context(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func sweep(t *testing.T, b *bundle) poller.Result {
	t.Helper()
	res, err := b.poller.SweepOnce(t.Context(), b.target)
	if err != nil {
		t.Fatalf("SweepOnce: %v", err)
	}
	return res
}

func activeJob(id string, succeeded int64) job.Detail {
	return job.Detail{Job: job.Job{ID: id, Status: job.StatusActive, Operation: "PutObjectTagging", Priority: 1,
		CreationTime: time.Unix(1749983400, 0), Tasks: job.Tasks{Total: 100, Succeeded: succeeded}}}
}

func TestSweepWritesTheContractsEvents(t *testing.T) {
	t.Parallel()
	b := setup(t, osssim.Config{EmptyWorld: true})
	for _, id := range []string{"job-a", "job-b", "job-c"} {
		b.sim.Put(activeJob(id, 10))
	}
	res := sweep(t, b)
	if res.Events != 3 || res.Snapshots != 3 || res.Jobs != 3 || res.Pages != 1 {
		t.Fatalf("first sweep = %+v", res)
	}
	got := events(t, b.store)
	for _, e := range got {
		if e.Type != "ossjobwatch.job.discovered" || e.Subject != "ossjobs.test-target.discovered" || e.Sequence != 1 || e.Data["baseline"] != true {
			t.Errorf("baseline event %+v", e)
		}
	}

	// A completes with failures, B vanishes while running, C does not
	// change, D appears, already Active (so New→Active too).
	done := activeJob("job-a", 90)
	done.Status, done.Tasks.Failed, done.TerminationTime = job.StatusComplete, 10, time.Unix(1749990000, 0)
	b.sim.Put(done)
	b.sim.Remove("job-b")
	b.sim.Put(activeJob("job-d", 0))
	res = sweep(t, b)
	if res.Events != 6 || res.Snapshots != 3 {
		t.Fatalf("second sweep = %+v, want 6 events over 3 jobs", res)
	}
	var keys []string
	for _, e := range events(t, b.store)[3:] {
		keys = append(keys, e.key())
	}
	want := []string{
		"job-a#2 ossjobs.test-target.status.Active.Complete",
		"job-a#3 ossjobs.test-target.tasks_failed",
		"job-a#4 ossjobs.test-target.progress",
		"job-b#2 ossjobs.test-target.removed",
		"job-d#1 ossjobs.test-target.discovered",
		"job-d#2 ossjobs.test-target.status.New.Active",
	}
	if !slices.Equal(keys, want) {
		t.Fatalf("second sweep's events\n%v\nwant\n%v", keys, want)
	}
	evs := events(t, b.store)
	if d := evs[4].Data; d["failedDelta"] != 10.0 {
		t.Errorf("tasks_failed data = %v, want failedDelta 10", d)
	}
	if d := evs[6].Data; d["reason"] != "vanished" {
		t.Errorf("removed data = %v, want reason vanished", d)
	}
	if d := evs[7].Data; d["baseline"] != false {
		t.Errorf("a job discovered after the baseline has baseline %v", d["baseline"])
	}
	if n := count(t, b.store, `SELECT count(*) FROM jobs WHERE removed_at IS NOT NULL`); n != 1 {
		t.Errorf("%d tombstones, want 1", n)
	}

	// An unchanged world writes nothing but the sweep's record.
	res = sweep(t, b)
	if res.Events != 0 || res.Snapshots != 0 {
		t.Errorf("idle sweep = %+v, want nothing written", res)
	}
	if n := count(t, b.store, `SELECT count(*) FROM sweeps WHERE complete AND finished_at IS NOT NULL AND error IS NULL`); n != 3 {
		t.Errorf("%d complete sweeps recorded, want 3", n)
	}

	// The removed job comes back: discovered again, its sequence going on.
	b.sim.Put(activeJob("job-b", 50))
	sweep(t, b)
	last := events(t, b.store)
	if e := last[len(last)-1]; e.key() != "job-b#3 ossjobs.test-target.discovered" {
		t.Errorf("rediscovery = %s", e.key())
	}
}

func TestFailedListingCommitsNothingButItsRecord(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		failure osssim.Failure
		times   int
	}{
		{"server errors on page 2", osssim.Failure{Status: 500}, 5},
		{"malformed page 2", osssim.Failure{Malformed: true}, 1},
		{"truncated page 2", osssim.Failure{Truncate: true}, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, osssim.Config{Jobs: 2500, Seed: 4})
			sweep(t, b)
			before := count(t, b.store, `SELECT count(*) FROM job_events`)
			for range 30 {
				b.sim.Step() // plenty to report, had the sweep succeeded
			}
			b.sim.FailNext(1, osssim.Failure{})
			b.sim.FailNext(tc.times, tc.failure)
			_, err := b.poller.SweepOnce(t.Context(), b.target)
			if err == nil || !strings.Contains(err.Error(), "page 2") {
				t.Fatalf("SweepOnce err = %v, want one naming page 2", err)
			}
			if after := count(t, b.store, `SELECT count(*) FROM job_events`); after != before {
				t.Errorf("a failed sweep wrote %d events", after-before)
			}
			if n := count(t, b.store, `SELECT count(*) FROM sweeps WHERE NOT complete AND error LIKE '%page 2%' AND finished_at IS NOT NULL AND pages = 1`); n != 1 {
				t.Errorf("failed sweep records = %d, want 1 with its error", n)
			}
			// The next sweep reports what the failed one could not.
			if res := sweep(t, b); res.Events == 0 {
				t.Error("the sweep after a failure found nothing to report")
			}
		})
	}
}

// oracle replays the world's history through the pure diff, sequentially:
// what a single, never-failing poller would have written.
type oracle struct {
	snaps []job.Snapshot
	keys  []string
}

func (o *oracle) observe(world []job.Detail, baseline bool) {
	listing := make([]job.Job, len(world))
	for i, d := range world {
		listing[i] = d.Job
	}
	res := diff.Compute(diff.Input{Previous: o.snaps, Listing: listing, Complete: true, Baseline: baseline})
	for _, c := range res.Changes {
		subject := "ossjobs.test-target." + c.Kind.String()
		if c.Kind == diff.StatusChanged {
			subject = "ossjobs.test-target.status." + c.From.Token() + "." + c.Job.Status.Token()
		}
		o.keys = append(o.keys, fmt.Sprintf("%s#%d %s", c.Job.ID, c.Sequence, subject))
	}
	o.snaps = diff.Merge(o.snaps, res.Snapshots)
}

func TestConcurrentSweepsWriteEveryEventOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, osssim.Config{Jobs: 500, Seed: 21, Lively: true})
	second := newPoller(t, b.store) // another process: its own cache
	o := &oracle{}
	stale := 0
	for round := range 8 {
		if round > 0 {
			b.sim.Step()
		}
		o.observe(b.sim.Jobs(), round == 0)
		var wg sync.WaitGroup
		results := make([]poller.Result, 2)
		errs := make([]error, 2)
		for i, p := range []*poller.Poller{b.poller, second} {
			wg.Go(func() { results[i], errs[i] = p.SweepOnce(context.Background(), b.target) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d, poller %d: %v", round, i, err)
			}
			if results[i].Stale {
				stale++
			}
		}
	}
	var got []string
	for _, e := range events(t, b.store) {
		got = append(got, e.key())
	}
	slices.Sort(got)
	want := slices.Clone(o.keys)
	slices.Sort(want)
	if len(want) < 1000 {
		t.Fatalf("the oracle saw only %d events; the world is too quiet to test anything", len(want))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("stored %d events, a sequential poller would write %d; first difference: %s", len(got), len(want), firstDiff(got, want))
	}
	t.Logf("%d events over 8 rounds; %d of 16 sweeps were superseded", len(got), stale)
}

func firstDiff(a, b []string) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprintf("got %q, want %q", a[i], b[i])
		}
	}
	return fmt.Sprintf("lengths %d and %d", len(a), len(b))
}

func TestStaleListingIsDiscarded(t *testing.T) {
	t.Parallel()
	b := setup(t, osssim.Config{Jobs: 20, Seed: 3})
	sweep(t, b)
	// Another replica applied a listing taken later than any this sweep can
	// take (listing times come from the database's clock).
	if _, err := b.store.Pool().Exec(t.Context(), `UPDATE targets SET last_listed_at = now() + interval '1 hour'`); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		b.sim.Step()
	}
	before := count(t, b.store, `SELECT count(*) FROM job_events`)
	res, err := b.poller.SweepOnce(t.Context(), b.target)
	if err != nil || !res.Stale || res.Events != 0 {
		t.Fatalf("older listing: %+v, %v; want stale and nothing written", res, err)
	}
	if after := count(t, b.store, `SELECT count(*) FROM job_events`); after != before {
		t.Errorf("a stale sweep wrote %d events", after-before)
	}
	if n := count(t, b.store, `SELECT count(*) FROM sweeps WHERE error LIKE 'superseded%'`); n != 1 {
		t.Errorf("%d superseded sweeps recorded, want 1", n)
	}
}

func TestStatusEventsAreEnriched(t *testing.T) {
	t.Parallel()
	b := setup(t, osssim.Config{EmptyWorld: true})
	b.sim.Put(activeJob("job-f", 10))
	b.sim.Put(activeJob("job-g", 10))
	sweep(t, b)

	failed := activeJob("job-f", 10)
	failed.Status = job.StatusFailed
	failed.FailureReasons = []job.FailureReason{{Code: "ManifestNotFound", Reason: "manifest.csv is missing"}}
	failed.StatusUpdateReason = "stopped by the system"
	b.sim.Put(failed)
	res := sweep(t, b)
	if res.DescribeFailures != 0 {
		t.Fatalf("DescribeFailures = %d", res.DescribeFailures)
	}
	evs := events(t, b.store)
	d := evs[len(evs)-1].Data
	reasons, _ := d["failureReasons"].([]any)
	if len(reasons) != 1 || d["statusUpdateReason"] != "stopped by the system" || d["confirmationRequired"] != false {
		t.Fatalf("Failed event data = %v, want DescribeJob's fields", d)
	}

	// DescribeJob failing leaves the event unenriched but the sweep fine.
	cancelled := activeJob("job-g", 10)
	cancelled.Status = job.StatusCancelled
	b.sim.Put(cancelled)
	b.sim.FailNext(1, osssim.Failure{})                                        // the listing
	b.sim.FailNext(5, osssim.Failure{Status: 503, Code: "ServiceUnavailable"}) // every DescribeJob attempt
	res = sweep(t, b)
	if res.DescribeFailures != 1 || res.Events != 1 {
		t.Fatalf("sweep = %+v, want 1 event and 1 describe failure", res)
	}
	evs = events(t, b.store)
	if d := evs[len(evs)-1].Data; d["statusUpdateReason"] != nil || d["status"] != "Cancelled" {
		t.Errorf("unenriched event data = %v", d)
	}
}

func TestSweepRefusesBadTargets(t *testing.T) {
	t.Parallel()
	b := setup(t, osssim.Config{Jobs: 1})
	bad := b.target
	bad.Name = "no spaces"
	if _, err := b.poller.SweepOnce(t.Context(), bad); err == nil || !strings.Contains(err.Error(), "no spaces") {
		t.Errorf("err = %v, want one naming the target", err)
	}
	if _, err := poller.New(poller.Config{}); err == nil {
		t.Error("New without a store succeeded")
	}
	if _, err := poller.New(poller.Config{Store: b.store, SubjectPrefix: "a.>"}); err == nil {
		t.Error("New with a wildcard prefix succeeded")
	}
}

// TestEveryStatusPairThroughTheDatabase moves one job through each of the
// 13×13 status pairs (and into an undocumented status) in one sweep and
// checks the stored subjects and the snapshots.
func TestEveryStatusPairThroughTheDatabase(t *testing.T) {
	t.Parallel()
	b := setup(t, osssim.Config{EmptyWorld: true})
	to := func(i int) job.Status {
		all := append(slices.Clone(job.Statuses), "Archiving.v2")
		return all[i%len(all)]
	}
	n := len(job.Statuses) + 1
	for i := range n * n {
		d := activeJob(fmt.Sprintf("pair-%03d", i), 10)
		d.Status = to(i / n)
		b.sim.Put(d)
	}
	sweep(t, b)
	want := map[string]string{}
	for i := range n * n {
		id := fmt.Sprintf("pair-%03d", i)
		from, next := to(i/n), to(i)
		d := activeJob(id, 10)
		d.Status = next
		b.sim.Put(d)
		if from != next {
			want[id] = fmt.Sprintf("ossjobs.test-target.status.%s.%s", from.Token(), next.Token())
		}
	}
	res := sweep(t, b)
	if res.Events != len(want) {
		t.Fatalf("%d events, want %d", res.Events, len(want))
	}
	for _, e := range events(t, b.store)[n*n:] {
		if want[e.JobID] != e.Subject || e.Sequence != 2 || e.To != string(to(indexOf(e.JobID))) {
			t.Errorf("%s: %s #%d to %q, want %s", e.JobID, e.Subject, e.Sequence, e.To, want[e.JobID])
		}
		delete(want, e.JobID)
	}
	if len(want) != 0 {
		t.Errorf("missing status events for %d jobs", len(want))
	}
	if n := count(t, b.store, `SELECT count(*) FROM jobs j WHERE j.status <> (SELECT to_status FROM job_events e
		WHERE e.job_id = j.job_id AND e.to_status IS NOT NULL ORDER BY sequence DESC LIMIT 1)`); n != 0 {
		t.Errorf("%d snapshots disagree with their last status event", n)
	}
}

func indexOf(id string) int {
	var i int
	fmt.Sscanf(id, "pair-%03d", &i)
	return i
}

package poller_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"
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

func hotSweep(t *testing.T, p *poller.Poller, target poller.Target) poller.Result {
	t.Helper()
	res, err := p.Sweep(t.Context(), target, poller.Hot)
	if err != nil {
		t.Fatalf("hot sweep: %v", err)
	}
	return res
}

// requests returns the simulator's requests by operation since before.
func requests(sim *osssim.Simulator, before osssim.Stats) map[string]int64 {
	now := sim.Stats()
	out := map[string]int64{}
	for op, n := range now.ByOperation {
		if d := n - before.ByOperation[op]; d > 0 {
			out[op] = d
		}
	}
	return out
}

// A hot sweep lists the unfinished jobs, one page per 1,000, and
// describes each job last known unfinished that the listing lacks, and
// nothing else: the finished history costs nothing.
func TestHotSweepMakesTheRequestsTheContractSays(t *testing.T) {
	t.Parallel()
	b := setup(t, osssim.Config{EmptyWorld: true})
	const finished, running = 2500, 1500
	for i := range finished {
		d := activeJob(fmt.Sprintf("done-%04d", i), 100)
		d.Status = job.StatusComplete
		b.sim.Put(d)
	}
	for i := range running {
		b.sim.Put(activeJob(fmt.Sprintf("run-%04d", i), 10))
	}
	sweep(t, b)

	// 30 complete, 10 fail, 5 wait for confirmation, 3 are gone from OSS,
	// one is created and completed between two sweeps.
	for i := range 48 {
		id := fmt.Sprintf("run-%04d", i)
		d := activeJob(id, 10)
		switch {
		case i < 30:
			d.Status = job.StatusComplete
		case i < 40:
			d.Status = job.StatusFailed
			d.FailureReasons = []job.FailureReason{{Code: "ManifestNotFound", Reason: "gone"}}
		case i < 45:
			d.Status = job.StatusSuspended
			d.ConfirmationRequired = true
		default:
			b.sim.Remove(id)
			continue
		}
		b.sim.Put(d)
	}
	unseen := activeJob("born-done", 100)
	unseen.Status = job.StatusComplete
	b.sim.Put(unseen)

	before := b.sim.Stats()
	res := hotSweep(t, b.poller, b.target)
	// 1,457 unfinished jobs listed: 2 pages. DescribeJob: the 43 that left
	// the unfinished set (3 of them unknown now), and the 5 Suspended ones
	// for enrichment; the 10 Failed reuse what the first calls said.
	want := map[string]int64{"ListJobs": 2, "DescribeJob": 48}
	if got := requests(b.sim, before); !maps.Equal(got, want) {
		t.Errorf("hot sweep requests %v, want %v", got, want)
	}
	if !res.Hot || res.Described != 43 || res.Gone != 3 || res.Events != 45 || res.EventsByKind[diff.Removed] != 0 {
		t.Errorf("hot sweep = %+v, want 43 described, 3 gone, 45 status events", res)
	}
	var failedWithReasons int
	for _, e := range events(t, b.store) {
		if e.Sequence < 2 {
			continue
		}
		if e.Type == "ossjobwatch.job.removed" {
			t.Errorf("a hot sweep reported %s", e.key())
		}
		if reasons, _ := e.Data["failureReasons"].([]any); e.To == "Failed" && len(reasons) == 1 {
			failedWithReasons++
		}
	}
	if failedWithReasons != 10 {
		t.Errorf("%d Failed events enriched, want 10", failedWithReasons)
	}
	if n := count(t, b.store, `SELECT count(*) FROM sweeps WHERE mode = 'hot' AND complete`); n != 1 {
		t.Errorf("%d complete hot sweeps recorded, want 1", n)
	}

	// The full sweep after it finds what hot sweeps cannot: the job born
	// finished, and the removals.
	before = b.sim.Stats()
	res = sweep(t, b)
	if got := requests(b.sim, before); got["ListJobs"] != 4 { // 3,998 jobs
		t.Errorf("full sweep requests %v, want 4 pages", got)
	}
	if res.Hot || res.FoundFinished != 1 || res.TerminalChanged != 0 || res.EventsByKind[diff.Removed] != 3 {
		t.Errorf("full sweep = %+v, want one job found finished and 3 removals", res)
	}
	var keys []string
	for _, e := range events(t, b.store) {
		if e.JobID == "born-done" || e.Type == "ossjobwatch.job.removed" {
			keys = append(keys, e.key())
		}
	}
	want2 := []string{
		"born-done#1 ossjobs.test-target.discovered", "born-done#2 ossjobs.test-target.status.New.Complete",
		"run-0045#2 ossjobs.test-target.removed", "run-0046#2 ossjobs.test-target.removed", "run-0047#2 ossjobs.test-target.removed",
	}
	if !slices.Equal(keys, want2) {
		t.Errorf("full sweep's catch-up events %v, want %v", keys, want2)
	}
}

// A hot sweep of a target never swept is its baseline, and lists
// everything.
func TestHotSweepOfANewTargetIsFull(t *testing.T) {
	t.Parallel()
	b := setup(t, osssim.Config{EmptyWorld: true})
	done := activeJob("done", 100)
	done.Status = job.StatusComplete
	b.sim.Put(done)
	b.sim.Put(activeJob("running", 10))
	res := hotSweep(t, b.poller, b.target)
	if res.Hot || res.Events != 2 {
		t.Errorf("first sweep asked hot = %+v, want a full baseline of 2 jobs", res)
	}
}

// history is a job's events as a consumer compares them: everything but
// ids, times and sweep ids.
func history(t *testing.T, st *store.Store) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, e := range events(t, st) {
		d := e.Data
		tasks, _ := d["tasks"].(map[string]any)
		out[e.JobID] = append(out[e.JobID], fmt.Sprintf("#%d %s %s→%s tasks=%v/%v/%v reasons=%v why=%v removed=%v baseline=%v",
			e.Sequence, strings.TrimPrefix(e.Type, "ossjobwatch.job."), e.From, e.To,
			tasks["total"], tasks["succeeded"], tasks["failed"], d["failureReasons"], d["statusUpdateReason"], d["reason"], d["baseline"]))
	}
	return out
}

// Hot sweeps with a full one every few rounds tell each job's story as
// full sweeps alone do, event for event, apart from the documented delay:
// a job created and finished between two hot sweeps is reported by the
// next full sweep (and one that also expired meanwhile, not at all).
func TestHotAndFullSweepsTellTheSameStory(t *testing.T) {
	t.Parallel()
	sim, cfg := osstest.Start(t, osssim.Config{Jobs: 400, Seed: 11, Lively: true})
	target := poller.Target{Name: "test-target", Region: sim.Region(), Client: osstest.NewClient(t, cfg)}
	fullStore, hotStore := storetest.NewStore(t), storetest.NewStore(t)
	fullPoller, hotPoller := newPoller(t, fullStore), newPoller(t, hotStore)

	const rounds, reconcileEvery = 40, 5
	hotSweeps := 0
	for round := range rounds + 1 {
		if _, err := fullPoller.SweepOnce(t.Context(), target); err != nil {
			t.Fatal(err)
		}
		mode := poller.Hot
		if round%reconcileEvery == 0 || round == rounds {
			mode = poller.Full // the last round too, so both end on a full listing
		}
		res, err := hotPoller.Sweep(t.Context(), target, mode)
		if err != nil {
			t.Fatal(err)
		}
		if res.Hot {
			hotSweeps++
		}
		sim.Step()
	}
	if hotSweeps < rounds/2 {
		t.Fatalf("only %d hot sweeps", hotSweeps)
	}
	full, hot := history(t, fullStore), history(t, hotStore)
	events, unseen := 0, 0
	for id, want := range full {
		events += len(want)
		got, ok := hot[id]
		if !ok {
			// Created, finished and expired between two full sweeps.
			if !strings.Contains(want[0], "discovered →") || !strings.Contains(want[len(want)-1], "removed") {
				t.Errorf("job %s never reported by hot sweeps, though not born finished and expired: %v", id, want)
			}
			unseen++
			continue
		}
		if !slices.Equal(got, want) {
			t.Errorf("job %s:\n hot  %v\n full %v", id, got, want)
		}
	}
	for id := range hot {
		if _, ok := full[id]; !ok {
			t.Errorf("job %s reported by hot sweeps only", id)
		}
	}
	t.Logf("%d jobs, %d events; %d hot sweeps; %d jobs born finished and expired between full sweeps", len(full), events, hotSweeps, unseen)
	if events < 1000 {
		t.Fatalf("only %d events: the world is too quiet to prove anything", events)
	}
}

// A hot sweep is full when the target's last full listing is older than
// its reconcile interval, on the database's clock.
func TestHotSweepReconcilesWhenDue(t *testing.T) {
	t.Parallel()
	b := setup(t, osssim.Config{EmptyWorld: true})
	b.sim.Put(activeJob("running", 10))
	sweep(t, b)
	b.target.ReconcileInterval = time.Hour
	if res := hotSweep(t, b.poller, b.target); !res.Hot {
		t.Fatalf("a hot sweep right after a full one was full")
	}
	// The last full listing an hour and a minute ago, by the database.
	if _, err := b.store.Pool().Exec(t.Context(), `UPDATE targets SET last_full_listed_at = now() - interval '61 minutes'`); err != nil {
		t.Fatal(err)
	}
	if res := hotSweep(t, b.poller, b.target); res.Hot {
		t.Fatalf("a hot sweep with the last full listing 61 minutes old stayed hot")
	}
	if res := hotSweep(t, b.poller, b.target); !res.Hot {
		t.Errorf("the full sweep did not reset the reconcile clock")
	}
}

// Credentials of another account during hot sweeps: DescribeJob no longer
// knows our jobs, and the hot listing holds jobs that are not ours. The
// sweep lists everything instead, under the mass-removal guard, and
// announces nothing; while removals are held every sweep is full.
func TestHotSweepDoesNotBypassTheMassRemovalGuard(t *testing.T) {
	t.Parallel()
	ours, oursCfg := osstest.Start(t, osssim.Config{EmptyWorld: true})
	theirs, theirsCfg := osstest.Start(t, osssim.Config{EmptyWorld: true})
	b := setup(t, osssim.Config{EmptyWorld: true})
	b.target.Client = osstest.NewClient(t, oursCfg)
	for i := range 20 {
		ours.Put(activeJob(fmt.Sprintf("ours-%02d", i), 10))
	}
	for i := range 30 {
		theirs.Put(activeJob(fmt.Sprintf("theirs-%02d", i), 10))
	}
	sweep(t, b)
	foreign := b.target
	foreign.Client = osstest.NewClient(t, theirsCfg)
	for range 2 {
		res := hotSweep(t, b.poller, foreign)
		if res.Hot || res.Events != 0 || res.HeldRemovals != 20 {
			t.Fatalf("hot sweep with another account's credentials = %+v, want a full sweep holding 20 removals, no event", res)
		}
	}
	if n := count(t, b.store, `SELECT count(*) FROM jobs WHERE job_id LIKE 'theirs-%'`); n != 0 {
		t.Errorf("%d of another account's jobs stored", n)
	}
}

// A job last seen in a status the API does not document is unfinished: the
// hot listing's filter cannot name it, so a hot sweep describes it.
func TestHotSweepDescribesJobsInUnknownStatuses(t *testing.T) {
	t.Parallel()
	b := setup(t, osssim.Config{EmptyWorld: true})
	queued := activeJob("queued", 10)
	queued.Status = "Queued"
	b.sim.Put(queued)
	sweep(t, b)
	queued.Status = job.StatusFailed
	b.sim.Put(queued)
	res := hotSweep(t, b.poller, b.target)
	if !res.Hot || res.Described != 1 || res.Events != 1 {
		t.Errorf("hot sweep = %+v, want queued described and its Queued→Failed", res)
	}
}

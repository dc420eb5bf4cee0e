package poller_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ossjobwatch/ossjobwatch/diff"
	"github.com/ossjobwatch/ossjobwatch/job"
	"github.com/ossjobwatch/ossjobwatch/oss"
	"github.com/ossjobwatch/ossjobwatch/oss/osssim"
	"github.com/ossjobwatch/ossjobwatch/oss/osstest"
	"github.com/ossjobwatch/ossjobwatch/poller"
	"github.com/ossjobwatch/ossjobwatch/store"
)

// isDescribe tells DescribeJob requests from ListJobs ones, as OSS does:
// by the batchJobId parameter.
func isDescribe(r *http.Request) bool { return r.URL.Query().Has("batchJobId") }

// gate serves sim through a handler that holds every request of one
// operation: it signals reached when the first arrives, and lets them all
// through once release is closed.
type gate struct {
	reached, release chan struct{}
	once             sync.Once
}

func newGate() *gate { return &gate{reached: make(chan struct{}), release: make(chan struct{})} }

func (g *gate) serve(t *testing.T, sim http.Handler, cfg oss.Config, describe bool) oss.Config {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isDescribe(r) == describe {
			g.once.Do(func() { close(g.reached) })
			select {
			case <-g.release:
			case <-r.Context().Done():
				return
			}
		}
		sim.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	cfg.Endpoint = srv.URL
	return cfg
}

func wait(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// statusPath returns a job's status events as "From→To", in stored order.
func statusPath(t *testing.T, st *store.Store, id string) []string {
	t.Helper()
	var path []string
	for _, e := range events(t, st) {
		if e.JobID == id && e.From != "" {
			path = append(path, e.From+"→"+e.To)
		}
	}
	return path
}

// Sweep A begins first but its listing is slow; sweep B begins later,
// reads the older picture at once and is slow to enrich. A's newer listing
// is applied first: B's, which began before A's ended, must be refused, or
// the stream would say the job went back.
func TestOverlappingListingsApplyInReadOrder(t *testing.T) {
	t.Parallel()
	sim, cfg := osstest.Start(t, osssim.Config{EmptyWorld: true})
	b := setup(t, osssim.Config{EmptyWorld: true})
	b.sim, b.target.Client = sim, osstest.NewClient(t, cfg)
	sim.Put(activeJob("job-x", 10))
	sweep(t, b)

	slowList, slowDescribe := newGate(), newGate()
	targetA, targetB := b.target, b.target
	targetA.Client = osstest.NewClient(t, slowList.serve(t, sim, cfg, false))
	targetB.Client = osstest.NewClient(t, slowDescribe.serve(t, sim, cfg, true))
	// Two pollers, as two replicas (one poller serialises its own sweeps).
	pollerA, pollerB := newPoller(t, b.store), newPoller(t, b.store)

	type outcome struct {
		res poller.Result
		err error
	}
	doneA, doneB := make(chan outcome, 1), make(chan outcome, 1)
	go func() {
		res, err := pollerA.SweepOnce(t.Context(), targetA)
		doneA <- outcome{res, err}
	}()
	wait(t, slowList.reached, "sweep A's first page") // A has begun

	failing := activeJob("job-x", 20)
	failing.Status = job.StatusFailing
	sim.Put(failing)
	go func() {
		res, err := pollerB.SweepOnce(t.Context(), targetB)
		doneB <- outcome{res, err}
	}()
	wait(t, slowDescribe.reached, "sweep B's DescribeJob") // B has listed Failing

	failed := failing
	failed.Status = job.StatusFailed
	sim.Put(failed)
	close(slowList.release) // A lists Failed now, and applies
	a := <-doneA
	if a.err != nil || a.res.Stale {
		t.Fatalf("sweep A: %+v, %v", a.res, a.err)
	}
	close(slowDescribe.release)
	bo := <-doneB
	if bo.err != nil {
		t.Fatalf("sweep B: %v", bo.err)
	}
	if !bo.res.Stale || bo.res.Events != 0 {
		t.Errorf("sweep B = %+v, want refused as stale", bo.res)
	}
	if got, want := statusPath(t, b.store, "job-x"), []string{"Active→Failed"}; !slices.Equal(got, want) {
		t.Errorf("job-x's status events %v, want %v", got, want)
	}
	if n := count(t, b.store, `SELECT count(*) FROM sweeps WHERE error LIKE 'superseded%'`); n != 1 {
		t.Errorf("%d superseded sweeps recorded, want 1", n)
	}
}

// A burst of 300 cancellations: every event carries DescribeJob's fields,
// none is left out by a cap.
func TestEveryStatusEventIsEnriched(t *testing.T) {
	t.Parallel()
	b := setup(t, osssim.Config{EmptyWorld: true})
	const n = 300
	for i := range n {
		b.sim.Put(activeJob(fmt.Sprintf("job-%03d", i), 10))
	}
	sweep(t, b)
	for i := range n {
		d := activeJob(fmt.Sprintf("job-%03d", i), 10)
		d.Status = job.StatusCancelled
		d.StatusUpdateReason = "cancelled: " + d.ID
		b.sim.Put(d)
	}
	res := sweep(t, b)
	if res.Events != n || res.DescribeFailures != 0 {
		t.Fatalf("sweep = %+v, want %d events and no describe failure", res, n)
	}
	enriched := 0
	for _, e := range events(t, b.store) {
		if e.To != "Cancelled" {
			continue
		}
		want := "cancelled: " + e.JobID
		if e.Data["statusUpdateReason"] != want || e.Data["failureReasons"] == nil {
			t.Errorf("%s: data %v, want statusUpdateReason %q", e.key(), e.Data, want)
			continue
		}
		enriched++
	}
	if enriched != n {
		t.Errorf("%d of %d Cancelled events enriched", enriched, n)
	}
}

// DescribeJob failing after its retries: the event says so.
func TestFailedEnrichmentIsExplained(t *testing.T) {
	t.Parallel()
	b := setup(t, osssim.Config{EmptyWorld: true})
	b.sim.Put(activeJob("job-g", 10))
	sweep(t, b)
	cancelled := activeJob("job-g", 10)
	cancelled.Status = job.StatusCancelled
	b.sim.Put(cancelled)
	b.sim.FailNext(1, osssim.Failure{})                                        // the listing
	b.sim.FailNext(9, osssim.Failure{Status: 503, Code: "ServiceUnavailable"}) // every DescribeJob attempt
	res := sweep(t, b)
	if res.DescribeFailures != 1 || res.Events != 1 {
		t.Fatalf("sweep = %+v, want 1 event and 1 describe failure", res)
	}
	evs := events(t, b.store)
	d := evs[len(evs)-1].Data
	if d["enrichmentError"] != "ServiceUnavailable" || d["statusUpdateReason"] != nil || d["status"] != "Cancelled" {
		t.Errorf("event data = %v, want enrichmentError ServiceUnavailable and no enrichment", d)
	}
}

// A job created and failed between two sweeps reaches a subscriber of
// status.*.Failed, with its reasons.
func TestJobBornFailedGetsAStatusEvent(t *testing.T) {
	t.Parallel()
	b := setup(t, osssim.Config{EmptyWorld: true})
	b.sim.Put(activeJob("job-a", 10))
	sweep(t, b)
	failed := activeJob("job-b", 0)
	failed.Status = job.StatusFailed
	failed.FailureReasons = []job.FailureReason{{Code: "ManifestNotFound", Reason: "manifest.csv is missing"}}
	b.sim.Put(failed)
	sweep(t, b)
	var keys []string
	var statusData map[string]any
	for _, e := range events(t, b.store) {
		if e.JobID == "job-b" {
			keys = append(keys, e.key())
			if e.From != "" {
				statusData = e.Data
			}
		}
	}
	want := []string{"job-b#1 ossjobs.test-target.discovered", "job-b#2 ossjobs.test-target.status.New.Failed"}
	if !slices.Equal(keys, want) {
		t.Fatalf("job-b's events %v, want %v", keys, want)
	}
	if reasons, _ := statusData["failureReasons"].([]any); len(reasons) != 1 || statusData["previousStatus"] != "New" {
		t.Errorf("status event data %v, want previousStatus New and the failure reason", statusData)
	}
}

// Job ids are opaque: spaces are part of them, in SQL, events and
// DescribeJob calls.
func TestJobIDsKeepEveryByte(t *testing.T) {
	t.Parallel()
	b := setup(t, osssim.Config{EmptyWorld: true})
	ids := []string{" job 1 ", "job 1", "job+1%2F"}
	for _, id := range ids {
		b.sim.Put(activeJob(id, 10))
	}
	sweep(t, b)
	for _, id := range ids {
		d := activeJob(id, 10)
		d.Status = job.StatusFailed
		d.StatusUpdateReason = "reason of " + id
		b.sim.Put(d)
	}
	res := sweep(t, b)
	if res.DescribeFailures != 0 {
		t.Fatalf("sweep = %+v: DescribeJob was asked about ids that do not exist", res)
	}
	for _, id := range ids {
		if n := count(t, b.store, `SELECT count(*) FROM jobs WHERE job_id = $1`, id); n != 1 {
			t.Errorf("%d rows for job %q, want 1", n, id)
		}
	}
	for _, e := range events(t, b.store) {
		if e.Data["jobId"] != e.JobID {
			t.Errorf("event of %q has jobId %q", e.JobID, e.Data["jobId"])
		}
		if e.To == "Failed" && e.Data["statusUpdateReason"] != "reason of "+e.JobID {
			t.Errorf("%q's Failed event was enriched with %v", e.JobID, e.Data["statusUpdateReason"])
		}
	}
}

// rewriting serves sim through fn, which may rewrite ListJobs answers.
func rewriting(t *testing.T, sim http.Handler, cfg oss.Config, fn func([]byte) []byte) oss.Config {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		sim.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		if !isDescribe(r) && rec.Code == http.StatusOK {
			body = fn(body)
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Del("Content-Length")
		w.WriteHeader(rec.Code)
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	cfg.Endpoint = srv.URL
	return cfg
}

var jobElement = regexp.MustCompile(`(?s)<JobListDescriptor>.*?</JobListDescriptor>\s*`)

// A listing that names one job twice, or a job with no id: the sweep says
// which, applies the rest, removes nothing and writes one snapshot per id.
func TestListingWithRepeatedOrEmptyIDs(t *testing.T) {
	t.Parallel()
	sim, cfg := osstest.Start(t, osssim.Config{EmptyWorld: true})
	b := setup(t, osssim.Config{EmptyWorld: true})
	b.sim, b.target.Client = sim, osstest.NewClient(t, cfg)
	for _, id := range []string{"job-a", "job-b", "job-c"} {
		sim.Put(activeJob(id, 10))
	}
	sweep(t, b)

	var mu sync.Mutex
	mode := "repeat"
	b.target.Client = osstest.NewClient(t, rewriting(t, sim, cfg, func(body []byte) []byte {
		mu.Lock()
		defer mu.Unlock()
		jobs := jobElement.FindAll(body, -1)
		switch mode {
		case "repeat": // job-a twice, job-c missing
			first := jobs[0]
			body = bytes.Replace(body, jobs[2], nil, 1)
			return bytes.Replace(body, first, append(slices.Clone(first), first...), 1)
		case "empty": // job-b's id blank, job-c missing
			body = bytes.Replace(body, jobs[2], nil, 1)
			return bytes.Replace(body, []byte("<JobId>job-b</JobId>"), []byte("<JobId></JobId>"), 1)
		case "nostatus": // job-b's status blank, job-c missing
			body = bytes.Replace(body, jobs[2], nil, 1)
			return regexp.MustCompile(`(<JobId>job-b</JobId>(?s:.*?))<Status>\w+</Status>`).ReplaceAll(body, []byte("${1}<Status/>"))
		}
		return body
	}))
	sim.Put(activeJob("job-b", 50))
	res, err := b.poller.SweepOnce(t.Context(), b.target)
	if err == nil || !strings.Contains(err.Error(), `"job-a"`) {
		t.Fatalf("sweep err = %v, want one naming job-a", err)
	}
	if res.LeftOut != 1 || res.EventsByKind == nil {
		t.Errorf("sweep = %+v, want 1 left out, the rest applied", res)
	}
	if got := statusPathOrProgress(t, b.store); !slices.Equal(got, []string{"job-b#2 ossjobs.test-target.progress"}) {
		t.Errorf("events after the baseline %v, want job-b's progress alone (no removal of job-c)", got)
	}
	if n := count(t, b.store, `SELECT count(*) FROM sweeps WHERE NOT complete AND error LIKE '%job-a%'`); n != 1 {
		t.Errorf("%d sweeps recorded incomplete with the error, want 1", n)
	}

	mu.Lock()
	mode = "empty"
	mu.Unlock()
	if _, err := b.poller.SweepOnce(t.Context(), b.target); err == nil || !strings.Contains(err.Error(), "empty JobId") {
		t.Fatalf("sweep err = %v, want one naming the empty JobId", err)
	}
	if n := count(t, b.store, `SELECT count(*) FROM jobs WHERE removed_at IS NOT NULL OR job_id = ''`); n != 0 {
		t.Errorf("%d jobs removed or stored with an empty id, want none", n)
	}

	mu.Lock()
	mode = "nostatus"
	mu.Unlock()
	if _, err := b.poller.SweepOnce(t.Context(), b.target); err == nil || !strings.Contains(err.Error(), `without a Status: "job-b"`) {
		t.Fatalf("sweep err = %v, want one naming job-b's missing status", err)
	}
	if n := count(t, b.store, `SELECT count(*) FROM jobs WHERE removed_at IS NOT NULL OR status = ''`); n != 0 {
		t.Errorf("%d jobs removed or stored without a status, want none", n)
	}
}

func statusPathOrProgress(t *testing.T, st *store.Store) []string {
	t.Helper()
	var keys []string
	for _, e := range events(t, st) {
		if e.Sequence > 1 {
			keys = append(keys, e.key())
		}
	}
	return keys
}

// An empty answer (credentials of another account, an empty
// <ListJobsResult/>) must not mark every job removed: a listing that would
// remove more than half of the live jobs, and more than 10, is believed
// only when a second full listing at least ConfirmRemovalsAfter later
// agrees.
func TestMassRemovalWaitsForASecondListing(t *testing.T) {
	t.Parallel()
	sim, cfg := osstest.Start(t, osssim.Config{EmptyWorld: true})
	b := setup(t, osssim.Config{EmptyWorld: true})
	b.sim, b.target.Client = sim, osstest.NewClient(t, cfg)
	const n = 30
	for i := range n {
		sim.Put(activeJob(fmt.Sprintf("job-%02d", i), 10))
	}
	sweep(t, b)

	var mu sync.Mutex
	empty := true
	emptying := b.target
	emptying.Client = osstest.NewClient(t, rewriting(t, sim, cfg, func(body []byte) []byte {
		mu.Lock()
		defer mu.Unlock()
		if empty {
			return jobElement.ReplaceAll(body, nil)
		}
		return body
	}))
	removed := func() int {
		return count(t, b.store, `SELECT count(*) FROM job_events WHERE type = 'ossjobwatch.job.removed'`)
	}
	for range 2 { // two empty answers within the minute: both held
		res, err := b.poller.SweepOnce(t.Context(), emptying)
		if err != nil || res.HeldRemovals != n || res.Events != 0 {
			t.Fatalf("empty listing: %+v, %v; want %d removals held, no event", res, err, n)
		}
	}
	if got := removed(); got != 0 {
		t.Fatalf("%d removals reported from an empty answer", got)
	}
	if held := count(t, b.store, `SELECT coalesce(removals_held_count, 0) FROM targets`); held != n {
		t.Errorf("targets.removals_held_count = %d, want %d", held, n)
	}
	// The jobs come back: nothing happened, nothing is held.
	mu.Lock()
	empty = false
	mu.Unlock()
	if res := sweep(t, b); res.Events != 0 || res.HeldRemovals != 0 {
		t.Fatalf("listing after the empty ones = %+v, want no event", res)
	}
	if held := count(t, b.store, `SELECT count(*) FROM targets WHERE removals_held_since IS NOT NULL`); held != 0 {
		t.Errorf("removals still held after a listing that disagrees")
	}

	// With a second agreeing listing late enough, the removals are real.
	quick, err := poller.New(poller.Config{Store: b.store, ConfirmRemovalsAfter: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	empty = true
	mu.Unlock()
	if res, err := quick.SweepOnce(t.Context(), emptying); err != nil || res.HeldRemovals != n {
		t.Fatalf("first empty listing: %+v, %v", res, err)
	}
	if res, err := quick.SweepOnce(t.Context(), emptying); err != nil || res.HeldRemovals != 0 || res.Events != n {
		t.Fatalf("agreeing listing: %+v, %v; want %d removals", res, err, n)
	}
	if got := removed(); got != n {
		t.Errorf("%d removals, want %d", got, n)
	}

	// Ten removals are believed at once, however few jobs remain.
	mu.Lock()
	empty = false
	mu.Unlock()
	for i := range 12 {
		sim.Put(activeJob(fmt.Sprintf("small-%02d", i), 10))
	}
	sweep(t, b)
	for i := range 10 {
		sim.Remove(fmt.Sprintf("small-%02d", i))
	}
	if res := sweep(t, b); res.HeldRemovals != 0 || res.EventsByKind[diff.Removed] != 10 {
		t.Errorf("ten removals = %+v, want all reported", res)
	}
}

// The poller holds the live snapshots of the targets it sweeps, not the
// tombstones of removed jobs, and nothing of a target it gave away.
func TestPollerMemoryFollowsLiveJobs(t *testing.T) {
	t.Parallel()
	b := setup(t, osssim.Config{EmptyWorld: true})
	for i := range 20 {
		b.sim.Put(activeJob(fmt.Sprintf("job-%02d", i), 10))
	}
	sweep(t, b)
	for i := range 5 {
		b.sim.Remove(fmt.Sprintf("job-%02d", i))
	}
	sweep(t, b)
	if got := b.poller.Cached(b.target.Name); got != 15 {
		t.Errorf("after removals the poller holds %d snapshots, want the 15 live ones", got)
	}
	b.poller.Forget(b.target.Name)
	if got := b.poller.Cached(b.target.Name); got != 0 {
		t.Errorf("after Forget the poller holds %d snapshots", got)
	}
	// Read back from the database: still the live ones only.
	b.sim.Put(activeJob("job-19", 99))
	sweep(t, b)
	if got := b.poller.Cached(b.target.Name); got != 15 {
		t.Errorf("after a reload the poller holds %d snapshots, want 15", got)
	}
	// A removed job back continues its sequence from its tombstone.
	b.sim.Put(activeJob("job-00", 10))
	sweep(t, b)
	evs := events(t, b.store)
	if e := evs[len(evs)-1]; e.key() != "job-00#3 ossjobs.test-target.discovered" {
		t.Errorf("rediscovery = %s, want job-00#3 discovered", e.key())
	}
}

// A descriptor with a value out of range never stops its target: a
// millisecond timestamp is read as one, anything else becomes null with
// its raw text kept, and every sweep goes on.
func TestOddValuesNeverBlockATarget(t *testing.T) {
	t.Parallel()
	b := setup(t, osssim.Config{EmptyWorld: true})
	millis := activeJob("job-ms", 10)
	millis.CreationTime = time.Unix(1749983400123, 0) // OSS sent milliseconds
	absurd := activeJob("job-absurd", 10)
	absurd.CreationTime = time.Unix(1<<60, 0) // neither seconds nor milliseconds
	b.sim.Put(millis)
	b.sim.Put(absurd)
	b.sim.Put(activeJob("job-ok", 10))
	for round := range 3 {
		res, err := b.poller.SweepOnce(t.Context(), b.target)
		if err != nil {
			t.Fatalf("sweep %d: %v", round, err)
		}
		if res.Anomalies != 1 {
			t.Errorf("sweep %d counted %d anomalies, want 1", round, res.Anomalies)
		}
		if round > 0 && res.Events != 1 {
			t.Errorf("sweep %d wrote %d events, want job-ok's progress alone", round, res.Events)
		}
		b.sim.Put(activeJob("job-ok", int64(20+round))) // the rest of the target moves on
	}
	created := map[string]any{}
	for _, e := range events(t, b.store) {
		if e.Sequence == 1 {
			created[e.JobID] = e.Data["creationTime"]
		}
	}
	if created["job-ms"] != "2025-06-15T10:30:00.123Z" || created["job-absurd"] != nil || created["job-ok"] != "2025-06-15T10:30:00Z" {
		t.Errorf("creation times %v", created)
	}
	if n := count(t, b.store, `SELECT count(*) FROM jobs WHERE job_id = 'job-absurd' AND creation_time IS NULL
		AND descriptor->'anomalies'->0->>'field' = 'CreationTime'`); n != 1 {
		t.Error("the odd value's raw text is not kept in the stored descriptor")
	}
	if n := count(t, b.store, `SELECT count(*) FROM job_events WHERE job_id = 'job-ok'`); n != 3 {
		t.Errorf("job-ok has %d events, want 3: the target stopped", n)
	}
}

// Credentials of another account: its listing lacks all of ours and holds
// jobs that are not ours. Neither its removals nor its discoveries count
// until a second listing a minute later agrees, however the live count
// would move.
func TestMassRemovalGuardHoldsAnotherAccountsListing(t *testing.T) {
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
	before := count(t, b.store, `SELECT count(*) FROM job_events`)

	foreign := b.target
	foreign.Client = osstest.NewClient(t, theirsCfg)
	for i := range 3 {
		res, err := b.poller.SweepOnce(t.Context(), foreign)
		if err != nil || res.HeldRemovals != 20 || res.Events != 0 {
			t.Fatalf("foreign listing %d: %+v, %v; want 20 removals held and no event", i, res, err)
		}
	}
	if n := count(t, b.store, `SELECT count(*) FROM job_events`); n != before {
		t.Errorf("a foreign listing wrote %d events", n-before)
	}
	if n := count(t, b.store, `SELECT count(*) FROM jobs WHERE job_id LIKE 'theirs-%'`); n != 0 {
		t.Errorf("%d of another account's jobs stored", n)
	}
	if res := sweep(t, b); res.Events != 0 || res.HeldRemovals != 0 { // our credentials again
		t.Errorf("our own listing again = %+v, want nothing", res)
	}
}

// A sweep whose every listed job is new lets its listing go once diffed
// (its snapshots copy it). Should another replica apply first, with an
// older listing, the sweep diffs again against that replica's snapshots,
// from its listing taken back from its own: the same jobs, so nothing is
// written twice, nothing removed and nothing held.
func TestRetryAfterConflictKeepsTheListing(t *testing.T) {
	t.Parallel()
	sim, cfg := osstest.Start(t, osssim.Config{EmptyWorld: true})
	b := setup(t, osssim.Config{EmptyWorld: true})
	b.sim, b.target.Client = sim, osstest.NewClient(t, cfg)
	sweep(t, b) // the baseline: no jobs, so the next sweep's are all new
	const n = 20
	for i := range n {
		d := activeJob(fmt.Sprintf("job-%02d", i), 0)
		d.Status = job.StatusFailed // a status event each, enriched
		sim.Put(d)
	}

	slowA, slowB := newGate(), newGate()
	targetA, targetB := b.target, b.target
	targetA.Client = osstest.NewClient(t, slowA.serve(t, sim, cfg, true))
	targetB.Client = osstest.NewClient(t, slowB.serve(t, sim, cfg, true))
	pollerA, pollerB := newPoller(t, b.store), newPoller(t, b.store)
	type outcome struct {
		res poller.Result
		err error
	}
	doneA, doneB := make(chan outcome, 1), make(chan outcome, 1)
	go func() {
		res, err := pollerB.SweepOnce(t.Context(), targetB)
		doneB <- outcome{res, err}
	}()
	wait(t, slowB.reached, "sweep B's DescribeJob") // B's listing has ended
	go func() {
		res, err := pollerA.SweepOnce(t.Context(), targetA)
		doneA <- outcome{res, err}
	}()
	wait(t, slowA.reached, "sweep A's DescribeJob") // A has diffed, against no snapshots
	close(slowB.release)
	if bo := <-doneB; bo.err != nil || bo.res.Events != 2*n {
		t.Fatalf("sweep B: %+v, %v; want %d events", bo.res, bo.err, 2*n)
	}
	close(slowA.release) // A's apply finds B's: a conflict, and a retry
	a := <-doneA
	if a.err != nil || a.res.Stale || a.res.Events != 0 || a.res.HeldRemovals != 0 || a.res.Statuses[job.StatusFailed] != n {
		t.Fatalf("sweep A: %+v, %v; want applied with no events, nothing held, %d jobs Failed", a.res, a.err, n)
	}
	if got := len(events(t, b.store)); got != 2*n {
		t.Errorf("%d events stored, want %d (B's)", got, 2*n)
	}
	if got := pollerA.Cached(b.target.Name); got != n {
		t.Errorf("sweep A's poller holds %d snapshots, want %d", got, n)
	}
}

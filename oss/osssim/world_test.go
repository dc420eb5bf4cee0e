package osssim_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aliyun/alibabacloud-oss-go-sdk-v2/oss/credentials"
	"github.com/aliyun/alibabacloud-oss-go-sdk-v2/oss/signer"

	"github.com/ossjobwatch/ossjobwatch/job"
	"github.com/ossjobwatch/ossjobwatch/oss/osssim"
)

// tickingClock returns a NowFunc that advances one second per reading, so
// timestamps move but stay reproducible.
func tickingClock() func() time.Time {
	var n atomic.Int64
	base := time.Date(2025, 6, 15, 10, 0, 0, 0, time.UTC)
	return func() time.Time { return base.Add(time.Duration(n.Add(1)) * time.Second) }
}

func TestStepDeterministic(t *testing.T) {
	t.Parallel()
	run := func(seed int64, traffic bool) []job.Detail {
		cfg := osssim.Config{Jobs: 300, Seed: seed, NowFunc: tickingClock()}
		if traffic {
			// Requests and their faults draw from another stream: they must
			// not change how the world evolves.
			cfg.Faults = osssim.Faults{Error500: 0.3, Truncate: 0.1}
			cfg.NowFunc = nil
		}
		b := setup(t, cfg)
		c := b.client(osssim.DefaultCredential)
		for range 100 {
			b.sim.Step()
			if traffic {
				_, _, _ = invoke(t, c, "ListJobs", map[string]string{"max-keys": "50"})
			}
		}
		return b.sim.Jobs()
	}
	a, again := run(1, false), run(1, false)
	if !reflect.DeepEqual(a, again) {
		t.Fatalf("same seed and steps gave different worlds")
	}
	if other := run(2, false); reflect.DeepEqual(jobIDs(a), jobIDs(other)) {
		t.Fatalf("different seeds gave the same world")
	}
	// With traffic the clock is real, so compare what does not depend on it.
	strip := func(ds []job.Detail) []job.Detail {
		out := slices.Clone(ds)
		for i := range out {
			out[i].CreationTime, out[i].TerminationTime = time.Time{}, time.Time{}
		}
		return out
	}
	if busy := run(1, true); !reflect.DeepEqual(strip(a), strip(busy)) {
		t.Fatalf("request traffic changed the world's evolution")
	}
}

// next holds the documented direct transitions.
var next = map[job.Status][]job.Status{
	job.StatusNew:        {job.StatusPreparing, job.StatusCancelling, job.StatusFailing},
	job.StatusPreparing:  {job.StatusSuspended, job.StatusReady, job.StatusCancelling, job.StatusFailing},
	job.StatusSuspended:  {job.StatusReady, job.StatusCancelling, job.StatusFailing},
	job.StatusReady:      {job.StatusActive, job.StatusCancelling, job.StatusFailing},
	job.StatusActive:     {job.StatusCompleting, job.StatusPausing, job.StatusCancelling, job.StatusFailing},
	job.StatusPausing:    {job.StatusPaused, job.StatusCancelling, job.StatusFailing},
	job.StatusPaused:     {job.StatusActive, job.StatusCancelling, job.StatusFailing},
	job.StatusCompleting: {job.StatusComplete},
	job.StatusCancelling: {job.StatusCancelled},
	job.StatusFailing:    {job.StatusFailed},
}

// reachable reports whether to follows from in at most n transitions.
func reachable(from, to job.Status, n int) bool {
	if from == to {
		return true
	}
	if n == 0 {
		return false
	}
	for _, s := range next[from] {
		if reachable(s, to, n-1) {
			return true
		}
	}
	return false
}

func TestLifecycle(t *testing.T) {
	t.Parallel()
	for _, lively := range []bool{false, true} {
		t.Run(map[bool]string{false: "calm", true: "lively"}[lively], func(t *testing.T) {
			t.Parallel()
			sim, err := osssim.New(osssim.Config{Jobs: 400, Seed: 3, Lively: lively, NowFunc: tickingClock()})
			if err != nil {
				t.Fatal(err)
			}
			prev := map[string]job.Detail{}
			for _, d := range sim.Jobs() {
				prev[d.ID] = d
			}
			var arrived, expired, skipped int
			statuses := map[job.Status]bool{}
			for step := range 300 {
				sim.Step()
				cur := map[string]job.Detail{}
				for _, d := range sim.Jobs() {
					cur[d.ID] = d
					statuses[d.Status] = true
					checkJob(t, step, d)
					p, ok := prev[d.ID]
					if !ok {
						arrived++
						if d.Status != job.StatusNew {
							t.Fatalf("step %d: job %s arrived as %s", step, d.ID, d.Status)
						}
						continue
					}
					checkTransition(t, step, p, d)
					if d.Status != p.Status && !slices.Contains(next[p.Status], d.Status) {
						skipped++
					}
				}
				for id, p := range prev {
					if _, ok := cur[id]; !ok {
						if !p.Status.Terminal() {
							t.Fatalf("step %d: job %s vanished while %s", step, id, p.Status)
						}
						expired++
					}
				}
				prev = cur
			}
			if arrived == 0 || expired == 0 || skipped == 0 {
				t.Fatalf("arrived %d, expired %d, skipped states %d: want all non-zero", arrived, expired, skipped)
			}
			if len(statuses) != len(job.Statuses) {
				t.Fatalf("only these statuses occurred: %v", statuses)
			}
		})
	}
}

func checkJob(t *testing.T, step int, d job.Detail) {
	t.Helper()
	tasks := d.Tasks
	switch {
	case !d.Status.Known():
		t.Fatalf("step %d: job %s has unknown status %q", step, d.ID, d.Status)
	case tasks.Succeeded < 0 || tasks.Failed < 0 || tasks.Succeeded+tasks.Failed > tasks.Total:
		t.Fatalf("step %d: job %s counters %+v", step, d.ID, tasks)
	case (d.Status == job.StatusSuspended) != d.ConfirmationRequired:
		t.Fatalf("step %d: job %s is %s with ConfirmationRequired %v", step, d.ID, d.Status, d.ConfirmationRequired)
	case d.Status.Terminal() != !d.TerminationTime.IsZero():
		t.Fatalf("step %d: job %s is %s with TerminationTime %v", step, d.ID, d.Status, d.TerminationTime)
	case (d.Status == job.StatusFailing || d.Status == job.StatusFailed) && (len(d.FailureReasons) == 0 || d.StatusUpdateReason == ""):
		t.Fatalf("step %d: job %s is %s without reasons", step, d.ID, d.Status)
	case d.Status == job.StatusComplete && tasks.Succeeded+tasks.Failed != tasks.Total:
		t.Fatalf("step %d: job %s is Complete with counters %+v", step, d.ID, tasks)
	}
}

func checkTransition(t *testing.T, step int, p, d job.Detail) {
	t.Helper()
	switch {
	case p.Status.Terminal() && !reflect.DeepEqual(p, d):
		t.Fatalf("step %d: terminal job changed:\n%+v\n%+v", step, p, d)
	case !reachable(p.Status, d.Status, 3):
		t.Fatalf("step %d: job %s went %s → %s", step, d.ID, p.Status, d.Status)
	case d.Tasks.Total != p.Tasks.Total || d.Tasks.Succeeded < p.Tasks.Succeeded || d.Tasks.Failed < p.Tasks.Failed:
		t.Fatalf("step %d: job %s counters went %+v → %+v", step, d.ID, p.Tasks, d.Tasks)
	case d.ElapsedActiveSeconds < p.ElapsedActiveSeconds:
		t.Fatalf("step %d: job %s elapsed went back", step, d.ID)
	}
}

func TestPutAndRemove(t *testing.T) {
	t.Parallel()
	sim, err := osssim.New(osssim.Config{EmptyWorld: true})
	if err != nil {
		t.Fatal(err)
	}
	d := job.Detail{Job: job.Job{ID: "b", Status: "Mystery"}, FailureReasons: []job.FailureReason{{Code: "x"}}}
	sim.Put(d)
	sim.Put(job.Detail{Job: job.Job{ID: "a", Status: job.StatusComplete}})
	d.FailureReasons[0].Code = "changed by caller"
	got := sim.Jobs()
	if len(got) != 2 || got[0].ID != "a" || got[1].FailureReasons[0].Code != "x" {
		t.Fatalf("Jobs() = %+v", got)
	}
	got[1].FailureReasons[0].Code = "changed by reader"
	for range 50 {
		sim.Step()
	}
	// An unknown status never evolves; a terminal job put in expires; an
	// empty world has no arrivals.
	if got := sim.Jobs(); len(got) != 1 || got[0].Status != "Mystery" || got[0].FailureReasons[0].Code != "x" {
		t.Fatalf("after steps: %+v", got)
	}
	if !sim.Remove("b") || sim.Remove("b") || len(sim.Jobs()) != 0 {
		t.Fatalf("Remove did not remove exactly once")
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  osssim.Config
	}{
		{"negative jobs", osssim.Config{Jobs: -1}},
		{"huge world", osssim.Config{Jobs: 2_000_000}},
		{"jobs with EmptyWorld", osssim.Config{Jobs: 5, EmptyWorld: true}},
		{"bad region", osssim.Config{Region: "CN Hangzhou"}},
		{"negative tick", osssim.Config{Tick: -time.Second}},
		{"negative skew", osssim.Config{MaxClockSkew: -time.Second}},
		{"credential without secret", osssim.Config{Credentials: []osssim.Credential{{AccessKeyID: "a"}}}},
		{"duplicate credential", osssim.Config{Credentials: []osssim.Credential{osssim.DefaultCredential, osssim.DefaultCredential}}},
		{"rate above 1", osssim.Config{Faults: osssim.Faults{Error500: 1.5}}},
		{"rates sum above 1", osssim.Config{Faults: osssim.Faults{Error500: 0.6, Throttle503: 0.6}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := osssim.New(tt.cfg); err == nil {
				t.Fatalf("New(%+v) accepted an invalid config", tt.cfg)
			}
		})
	}
	if sim, err := osssim.New(osssim.Config{}); err != nil || len(sim.Jobs()) != 100 || sim.Region() != "cn-hangzhou" {
		t.Fatalf("zero Config: %v", err)
	}
}

// TestLargeWorld pages through 100,000 jobs to show the world holds them and
// a page is a binary search plus a scan.
func TestLargeWorld(t *testing.T) {
	if testing.Short() {
		t.Skip("large world")
	}
	t.Parallel()
	b := setup(t, osssim.Config{Jobs: 100_000, Seed: 9})
	b.sim.Step()
	want := jobIDs(b.sim.Jobs())
	c := b.client(osssim.DefaultCredential)
	params := map[string]string{"max-keys": "1000"}
	var ids []string
	for {
		body, _, err := invoke(t, c, "ListJobs", params)
		if err != nil {
			t.Fatal(err)
		}
		// encoding/xml would dominate the run time; the other tests decode.
		ids = append(ids, elements(body, "JobId")...)
		tok := elements(body, "NextToken")
		if len(tok) == 0 {
			break
		}
		params["continuation-token"] = tok[0]
	}
	if !slices.Equal(ids, want) {
		t.Fatalf("listed %d of %d jobs", len(ids), len(want))
	}
}

// elements returns the text of every <name> element, unescaped only as far
// as JobIds and tokens need.
func elements(body []byte, name string) []string {
	var out []string
	open, end := []byte("<"+name+">"), []byte("</"+name+">")
	for {
		i := bytes.Index(body, open)
		if i < 0 {
			return out
		}
		body = body[i+len(open):]
		j := bytes.Index(body, end)
		out = append(out, string(body[:j]))
		body = body[j:]
	}
}

func BenchmarkStep(b *testing.B) {
	sim, err := osssim.New(osssim.Config{Jobs: 100_000})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		sim.Step()
	}
}

// BenchmarkListJobsPage measures the server side of one 1000-job page in a
// 100,000-job world, from the middle of the listing.
func BenchmarkListJobsPage(b *testing.B) {
	sim, err := osssim.New(osssim.Config{Jobs: 100_000})
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "http://oss-cn-hangzhou.aliyuncs.com/?batchJob&max-keys=1000", nil)
	product, region := "oss", sim.Region()
	cred := osssim.DefaultCredential
	sc := &signer.SigningContext{Product: &product, Region: &region, Request: req,
		Credentials: &credentials.Credentials{AccessKeyID: cred.AccessKeyID, AccessKeySecret: cred.AccessKeySecret}}
	if err := (&signer.SignerV4{}).Sign(context.Background(), sc); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		w := httptest.NewRecorder()
		sim.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}

// TestStartTicks lets the tick loop run while requests are served: the race
// detector checks the locking, and the test ends when a listing shows the
// world has moved.
func TestStartTicks(t *testing.T) {
	t.Parallel()
	b := setup(t, osssim.Config{Jobs: 50, Tick: time.Millisecond, Lively: true})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := b.client(osssim.DefaultCredential)
	first := list(t, c, map[string]string{"max-keys": "1000"})
	b.sim.Start(ctx)
	b.sim.Start(ctx) // a second call must not start a second loop
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if cur := list(t, c, map[string]string{"max-keys": "1000"}); !reflect.DeepEqual(cur, first) {
			return
		}
	}
	t.Fatalf("the world did not move within 10s of ticking every millisecond")
}

// NeedsAttention adds a job that progresses for a few ticks and then
// freezes, and one that waits in Suspended, created over a day ago, for a
// confirmation that never comes; the seeded jobs are those of the same seed
// without it.
func TestNeedsAttention(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 6, 15, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	plain := setup(t, osssim.Config{Jobs: 30, Seed: 4, NowFunc: clock, Lively: true}).sim.Jobs()
	sim := setup(t, osssim.Config{Jobs: 30, Seed: 4, NowFunc: clock, Lively: true, NeedsAttention: true}).sim
	find := func(desc string) job.Detail {
		t.Helper()
		for _, d := range sim.Jobs() {
			if d.Description == desc {
				return d
			}
		}
		t.Fatalf("no job %q in the world", desc)
		return job.Detail{}
	}
	seeded := sim.Jobs()
	if len(seeded) != len(plain)+2 {
		t.Fatalf("%d jobs, want the %d of the same seed and 2", len(seeded), len(plain))
	}
	for _, d := range plain {
		if got, ok := sim.Job(d.ID); !ok || !reflect.DeepEqual(got, d) {
			t.Errorf("seeded job %s differs with NeedsAttention", d.ID)
		}
	}
	unconfirmed := find(osssim.UnconfirmedDescription)
	if unconfirmed.Status != job.StatusSuspended || !unconfirmed.ConfirmationRequired || now.Sub(unconfirmed.CreationTime) <= 24*time.Hour {
		t.Errorf("unconfirmed job: %+v, want Suspended, confirmation required, created over a day ago", unconfirmed)
	}
	var frozen job.Tasks
	prev := find(osssim.StallingDescription)
	// Past the simulator's 15 Lively ticks of Suspended after which OSS
	// fails a job.
	for step := 1; step <= 40; step++ {
		sim.Step()
		d := find(osssim.StallingDescription)
		if d.Status != job.StatusActive || d.ElapsedActiveSeconds <= prev.ElapsedActiveSeconds {
			t.Fatalf("step %d: stalling job %s, active %ds: want Active, its active time growing", step, d.Status, d.ElapsedActiveSeconds)
		}
		moved := d.Tasks != prev.Tasks
		if want := step < osssim.StallAfterTicks; moved != want {
			t.Fatalf("step %d: stalling job's tasks moved = %v (%+v → %+v), want %v", step, moved, prev.Tasks, d.Tasks, want)
		}
		if step == osssim.StallAfterTicks {
			frozen = d.Tasks
		}
		prev = d
		if u := find(osssim.UnconfirmedDescription); !reflect.DeepEqual(u, unconfirmed) {
			t.Fatalf("step %d: the unconfirmed job changed: %+v", step, u)
		}
	}
	if frozen.Succeeded <= 12_000 {
		t.Errorf("the stalling job made no progress before it froze: %+v", frozen)
	}
}

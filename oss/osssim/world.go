package osssim

import (
	"encoding/base64"
	"encoding/hex"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"time"

	"github.com/ossjobwatch/ossjobwatch/job"
)

// entry is one job plus what the lifecycle needs to remember about it.
type entry struct {
	d job.Detail
	// terminalTick is the tick the job became terminal: it expires
	// retention ticks later.
	terminalTick int64
	// suspendedTick is the tick the job entered Suspended: OSS fails a job
	// left unconfirmed for 14 days, which the simulator scales to ticks.
	suspendedTick int64
	// stallTick, when positive, is the tick from which the job never
	// changes again but for its ElapsedTimeInActiveSeconds (NeedsAttention).
	// Until then it only makes progress.
	stallTick int64
}

type worldConfig struct {
	seed      int64
	jobs      int
	arrivals  bool
	lively    bool
	tick      time.Duration
	attention bool
}

// world is the simulated account's set of jobs. Its methods are not
// synchronised: Simulator.mu guards it.
type world struct {
	rng  *rand.Rand
	tick int64
	jobs map[string]*entry
	// ids is kept sorted so a ListJobs page is a binary search plus a scan,
	// never a sort.
	ids []string

	meanArrivals int     // per tick
	retention    int64   // ticks a terminal job stays listed
	suspendLimit int64   // ticks a job may stay Suspended before it fails
	pace         float64 // multiplies transition probabilities
	chain        float64 // chance of a further transition within one tick
	activeStep   int64   // ElapsedTimeInActiveSeconds added per active tick
}

func newWorld(cfg worldConfig, now time.Time) *world {
	w := &world{
		// A world stream of its own: request faults draw from another, so
		// traffic never changes how the world evolves.
		rng:          rand.New(rand.NewPCG(uint64(cfg.seed), 0x6f737373696d)),
		jobs:         make(map[string]*entry, cfg.jobs),
		retention:    30,
		suspendLimit: 40,
		pace:         1,
		chain:        0.25,
		activeStep:   max(1, int64(cfg.tick/time.Second)),
	}
	if cfg.tick == 0 {
		w.activeStep = 5
	}
	if cfg.lively {
		w.retention, w.suspendLimit, w.pace, w.chain = 12, 15, 2, 0.4
	}
	if cfg.arrivals {
		// About what expiry removes, so the world keeps roughly its size.
		w.meanArrivals = max(1, cfg.jobs/40)
		if cfg.lively {
			w.meanArrivals *= 2
		}
	}
	w.ids = make([]string, 0, cfg.jobs)
	for range cfg.jobs {
		e := w.seedJob(now)
		w.jobs[e.d.ID] = e
		w.ids = append(w.ids, e.d.ID)
	}
	if cfg.attention {
		w.addAttentionJobs(now)
	}
	sort.Strings(w.ids)
	return w
}

// StallAfterTicks is how many ticks the stalling job of
// Config.NeedsAttention makes progress before its counters freeze.
const StallAfterTicks = 4

// Descriptions of the jobs of Config.NeedsAttention, which say what they
// are in `ossjobwatch jobs`.
const (
	StallingDescription    = "demo: stops making progress after a few ticks"
	UnconfirmedDescription = "demo: waits in Suspended for a confirmation"
)

// addAttentionJobs adds the two jobs of Config.NeedsAttention.
func (w *world) addAttentionJobs(now time.Time) {
	stalling := w.newJob(now.Add(-10 * time.Minute))
	stalling.d.Status, stalling.d.Description = job.StatusActive, StallingDescription
	stalling.d.Tasks = job.Tasks{Total: 100_000, Succeeded: 12_000, Failed: 40}
	stalling.d.ElapsedActiveSeconds = 600
	stalling.stallTick = StallAfterTicks

	// Created, and so (for a watcher that discovers it Suspended) suspended,
	// over a day ago: its first confirmation reminder is due at once.
	unconfirmed := w.newJob(now.Add(-26 * time.Hour))
	unconfirmed.d.Status, unconfirmed.d.Description = job.StatusSuspended, UnconfirmedDescription
	unconfirmed.d.ConfirmationRequired = true
	unconfirmed.stallTick = 1
	for _, e := range []*entry{stalling, unconfirmed} {
		w.jobs[e.d.ID] = e
		w.ids = append(w.ids, e.d.ID)
	}
}

var operations = []string{
	"PutObjectTagging", "AddObjectTagging", "DeleteObjectTagging", "PutObjectAcl", "RestoreObject",
}

// descriptions include XML's special characters and non-ASCII text, so the
// client's decoding is exercised on every page.
var descriptions = []string{
	"Tag objects under logs/2024/ for lifecycle expiry",
	`Restore "cold" archives & retry <batch 7>`,
	"Set ACL to private: owner's request",
	"",
	"批量为对象设置标签",
	"Delete tags on a/b & c/d older than 30 days",
	"nightly-retag",
}

// initialStatus weights spread a seeded world over the lifecycle.
var initialStatus = []struct {
	s job.Status
	w int
}{
	{job.StatusNew, 5}, {job.StatusPreparing, 5}, {job.StatusSuspended, 4}, {job.StatusReady, 6},
	{job.StatusActive, 25}, {job.StatusPausing, 2}, {job.StatusPaused, 4}, {job.StatusCompleting, 4},
	{job.StatusComplete, 25}, {job.StatusCancelling, 2}, {job.StatusCancelled, 6},
	{job.StatusFailing, 2}, {job.StatusFailed, 6},
}

var failures = []job.FailureReason{
	{Code: "ManifestNotFound", Reason: "The manifest object does not exist or cannot be read."},
	{Code: "AccessDenied", Reason: "The RAM role cannot access the source bucket."},
	{Code: "InternalError", Reason: "An internal error occurred while the job was running."},
}

var confirmationTimeout = job.FailureReason{
	Code: "ConfirmationTimeout", Reason: "The job was not confirmed within 14 days.",
}

// newJob returns a New job created at created with a fresh JobId.
func (w *world) newJob(created time.Time) *entry {
	var id string
	for {
		var raw [16]byte
		for i := range raw {
			raw[i] = byte(w.rng.UintN(256))
		}
		// OSS JobIds are base64 of 32 hex digits: 44 characters ending in '='.
		id = base64.StdEncoding.EncodeToString([]byte(hex.EncodeToString(raw[:])))
		if _, dup := w.jobs[id]; !dup {
			break
		}
	}
	// Totals span 1 to a million tasks, log-uniformly, as real manifests do.
	total := int64(math.Round(math.Pow(10, w.rng.Float64()*6)))
	return &entry{d: job.Detail{
		Job: job.Job{
			ID:           id,
			Operation:    operations[w.rng.IntN(len(operations))],
			Description:  descriptions[w.rng.IntN(len(descriptions))],
			Priority:     int64(w.rng.IntN(100)),
			Status:       job.StatusNew,
			CreationTime: created.Truncate(time.Second),
			Tasks:        job.Tasks{Total: max(1, total)},
		},
		RoleARN: "acs:ram::1234567890123456:role/AliyunOSSBatchOperationsDefaultRole",
	}}
}

// seedJob returns a job of the initial world: created in the last 30 days
// and in a status drawn from initialStatus, with fields consistent with it.
func (w *world) seedJob(now time.Time) *entry {
	age := time.Duration(w.rng.Int64N(int64(30 * 24 * time.Hour)))
	e := w.newJob(now.Add(-age))
	d := &e.d
	sum := 0
	for _, s := range initialStatus {
		sum += s.w
	}
	pick := w.rng.IntN(sum)
	for _, s := range initialStatus {
		if pick < s.w {
			d.Status = s.s
			break
		}
		pick -= s.w
	}
	ran := func(frac float64) {
		done := int64(float64(d.Tasks.Total) * frac)
		d.Tasks.Failed = int64(float64(done) * w.rng.Float64() * 0.05)
		d.Tasks.Succeeded = done - d.Tasks.Failed
		d.ElapsedActiveSeconds = 1 + int64(float64(age/time.Second)*frac/2)
	}
	switch d.Status {
	case job.StatusSuspended:
		d.ConfirmationRequired = true
		e.suspendedTick = -w.rng.Int64N(w.suspendLimit)
	case job.StatusActive, job.StatusPausing, job.StatusPaused, job.StatusCancelling, job.StatusCancelled:
		ran(w.rng.Float64())
	case job.StatusCompleting, job.StatusComplete:
		ran(1)
	case job.StatusFailing, job.StatusFailed:
		ran(w.rng.Float64() / 2)
		f := failures[w.rng.IntN(len(failures))]
		d.FailureReasons = []job.FailureReason{f}
		d.StatusUpdateReason = f.Reason
	}
	if d.Status == job.StatusCancelling || d.Status == job.StatusCancelled {
		d.StatusUpdateReason = "Cancelled by user request."
	}
	if d.Status.Terminal() {
		d.TerminationTime = d.CreationTime.Add(time.Duration(w.rng.Int64N(int64(age) + 1))).Truncate(time.Second)
		// Spread expiry so the first ticks already see some jobs vanish.
		e.terminalTick = -w.rng.Int64N(w.retention)
	}
	return e
}

func (w *world) put(d job.Detail) {
	e, ok := w.jobs[d.ID]
	if !ok {
		e = &entry{}
		w.jobs[d.ID] = e
		i, _ := slices.BinarySearch(w.ids, d.ID)
		w.ids = slices.Insert(w.ids, i, d.ID)
	}
	if d.Status.Terminal() && (!ok || !e.d.Status.Terminal()) {
		e.terminalTick = w.tick
	}
	if d.Status == job.StatusSuspended && (!ok || e.d.Status != job.StatusSuspended) {
		e.suspendedTick = w.tick
	}
	e.d = d
}

func (w *world) remove(id string) bool {
	if _, ok := w.jobs[id]; !ok {
		return false
	}
	delete(w.jobs, id)
	i, _ := slices.BinarySearch(w.ids, id)
	w.ids = slices.Delete(w.ids, i, i+1)
	return true
}

// step advances the world one tick in O(N): terminal jobs past retention
// expire, every other job may move along its lifecycle, and new jobs arrive.
// Jobs are visited in JobId order so that a seed fixes the outcome.
func (w *world) step(now time.Time) {
	w.tick++
	expired := false
	for _, id := range w.ids {
		e := w.jobs[id]
		if e.d.Status.Terminal() && w.tick-e.terminalTick >= w.retention {
			delete(w.jobs, id)
			expired = true
			continue
		}
		w.evolve(e, now)
	}
	if expired {
		w.ids = slices.DeleteFunc(w.ids, func(id string) bool { _, ok := w.jobs[id]; return !ok })
	}
	if w.meanArrivals == 0 {
		return
	}
	n := w.rng.IntN(2*w.meanArrivals + 1)
	if n == 0 {
		return
	}
	arrived := make([]string, 0, n)
	for range n {
		e := w.newJob(now)
		w.jobs[e.d.ID] = e
		arrived = append(arrived, e.d.ID)
	}
	sort.Strings(arrived)
	w.ids = mergeSorted(w.ids, arrived)
}

// mergeSorted merges two sorted, disjoint slices in one pass: inserting
// arrivals one by one would cost O(N) each.
func mergeSorted(a, b []string) []string {
	out := make([]string, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		if a[i] < b[j] {
			out = append(out, a[i])
			i++
		} else {
			out = append(out, b[j])
			j++
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}

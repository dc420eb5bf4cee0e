// Package poller sweeps targets: one sweep lists every job of a target,
// diffs the listing against the stored snapshots and writes the changed
// snapshots, the events and the sweep's record in one transaction. The
// outbox table is its only contract with the publisher.
package poller

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ossjobwatch/ossjobwatch/diff"
	"github.com/ossjobwatch/ossjobwatch/event"
	"github.com/ossjobwatch/ossjobwatch/job"
	"github.com/ossjobwatch/ossjobwatch/oss"
	"github.com/ossjobwatch/ossjobwatch/store"
)

// Target is one account and region to watch.
type Target struct {
	// Name is the target's name in subjects and SQL, [A-Za-z0-9_-]+.
	Name string
	// Region is the OSS region id, carried in every event.
	Region string
	// Client lists the target's jobs.
	Client *oss.Client
	// StallAfter is how long an unfinished job other than a Suspended one
	// may show the same status and counters before a stalled event; 0
	// disables.
	StallAfter time.Duration
	// ReconcileInterval makes a hot sweep full when the last full listing
	// applied began this long before its own (on the database's clock, so
	// every replica agrees); 0 leaves hot sweeps hot.
	ReconcileInterval time.Duration
}

// Config configures a Poller.
type Config struct {
	// Store is where snapshots and events live. Required.
	Store *store.Store
	// SubjectPrefix starts every subject. Defaults to "ossjobs".
	SubjectPrefix string
	// DescribeConcurrency is how many DescribeJob calls one sweep runs at
	// once to enrich its status events (every one of them is enriched; the
	// target's client paces them at its OSS request rate). Defaults to 4.
	DescribeConcurrency int
	// Reminders are the waits after which a job still Suspended gets a
	// confirmation_due event, once each per suspension; sorted by New.
	Reminders []time.Duration
	// ConfirmRemovalsAfter is how long after a listing that would remove
	// most of a target's live jobs a second listing must come to confirm
	// those removals (see HoldsRemovals). Defaults to a minute.
	ConfirmRemovalsAfter time.Duration
	// Logger defaults to discarding.
	Logger *slog.Logger
	// NowFunc is the clock of durations. Defaults to time.Now. Times that
	// fence or order sweeps (the listing time, which events carry as
	// observedAt) come from the database's clock instead.
	NowFunc func() time.Time
	// OnDescribeError, if set, is called for every failed enrichment, for
	// metrics.
	OnDescribeError func(target string, err error)
}

// Poller runs sweeps. It is safe for concurrent use; sweeps of one target
// in one process are serialised, and the store fences sweeps of several
// processes.
type Poller struct {
	cfg   Config
	log   *slog.Logger
	mu    sync.Mutex
	state map[string]*targetState
}

// targetState is a process's knowledge of one target: a lock that
// serialises its sweeps, and the live snapshots as of the sweep it applied
// last, so that a steady-state sweep need not read every row back.
// Tombstones of removed jobs are not kept: a sweep reads those its listing
// names again.
type targetState struct {
	mu      sync.Mutex
	version string
	loaded  bool
	inParts bool           // the snapshots were read while a sweep was written in parts
	snaps   []job.Snapshot // live ones, sorted by job id
	forget  atomic.Bool    // Forget was called while a sweep ran
}

// New checks cfg and returns a poller.
func New(cfg Config) (*Poller, error) {
	if cfg.Store == nil {
		return nil, errors.New("poller: Config.Store is required")
	}
	cfg.SubjectPrefix = cmp.Or(cfg.SubjectPrefix, event.DefaultSubjectPrefix)
	if !event.ValidPrefix(cfg.SubjectPrefix) {
		return nil, fmt.Errorf("poller: subject prefix %q: must be dot-separated tokens of [A-Za-z0-9_-]", cfg.SubjectPrefix)
	}
	cfg.DescribeConcurrency = cmp.Or(cfg.DescribeConcurrency, 4)
	cfg.ConfirmRemovalsAfter = cmp.Or(cfg.ConfirmRemovalsAfter, time.Minute)
	cfg.Reminders = slices.Sorted(slices.Values(cfg.Reminders))
	if len(cfg.Reminders) > 0 && cfg.Reminders[0] < 0 {
		return nil, errors.New("poller: Reminders must not be negative")
	}
	if cfg.DescribeConcurrency < 1 || cfg.ConfirmRemovalsAfter < 0 {
		return nil, errors.New("poller: DescribeConcurrency must be positive and ConfirmRemovalsAfter not negative")
	}
	if cfg.NowFunc == nil {
		cfg.NowFunc = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Poller{cfg: cfg, log: log, state: map[string]*targetState{}}, nil
}

// Result says what a sweep did.
type Result struct {
	SweepID string
	// Hot is true for a hot sweep: only the unfinished jobs were listed,
	// and the jobs last known unfinished that the listing lacked described.
	Hot bool
	// Described counts a hot sweep's DescribeJob calls for jobs that left
	// the unfinished set; Gone, those of them OSS no longer knows (they wait
	// for the next full sweep).
	Described, Gone int
	// FoundFinished counts the jobs a full sweep discovered already
	// finished (created and finished since the last sweep: hot sweeps
	// cannot see those), and TerminalChanged the finished jobs whose
	// status changed again, which no documented behaviour explains.
	FoundFinished, TerminalChanged int
	Pages                          int
	Jobs                           int
	Events                         int
	// Snapshots is how many job rows the sweep wrote.
	Snapshots int
	// EventsByKind counts the events written, by kind.
	EventsByKind map[diff.Kind]int
	// Statuses counts the listed jobs by status.
	Statuses map[job.Status]int
	// Stale is true when another process applied a listing first that
	// this one may be older than (it began before that one ended): this
	// sweep wrote nothing, and that is not an error.
	Stale bool
	// DescribeFailures counts enrichments that failed; their events carry
	// enrichmentError instead of DescribeJob's fields.
	DescribeFailures int
	// HeldRemovals counts the removals this sweep's listing would have made
	// but that wait for a second listing to agree (see HoldsRemovals).
	HeldRemovals int
	// LeftOut counts the listed entries the sweep could not use (an empty
	// or repeated JobId, no status); SweepOnce then also returns an error
	// naming them.
	LeftOut int
	// Anomalies counts the listed jobs with a value out of range (see
	// job.Job.Anomalies).
	Anomalies int
	Duration  time.Duration
}

// maxApplyAttempts bounds the re-reads after ErrConflict: another process
// applying a sweep of the same target between our read and our write.
const maxApplyAttempts = 3

// recordTimeout bounds recording a failed sweep, which runs even when the
// sweep's context was cancelled.
const recordTimeout = 5 * time.Second

// Mode says what a sweep lists.
type Mode int

const (
	// Full lists every job: it alone may report removals.
	Full Mode = iota
	// Hot lists the unfinished jobs only, and describes each job last
	// known unfinished that the listing lacks, to learn where it went.
	Hot
)

func (m Mode) String() string {
	if m == Hot {
		return "hot"
	}
	return "full"
}

// SweepOnce makes a full sweep of t: Sweep(ctx, t, Full).
func (p *Poller) SweepOnce(ctx context.Context, t Target) (Result, error) {
	return p.Sweep(ctx, t, Full)
}

// Sweep lists the jobs of t (every one, or with Hot the unfinished ones),
// diffs and applies the result. A listing that fails or does not complete
// writes nothing but the sweep's record, with the error. A listing with
// entries it cannot use (an empty or repeated JobId, no status) is applied
// without them and without removals, and Sweep returns an error naming
// them. A hot sweep of a target no sweep was applied to yet is full (a
// baseline lists everything), and so is one whose target's last full
// listing is older than t.ReconcileInterval.
//
// A hot sweep never reports removals; a job that left the unfinished set is
// described, and a job DescribeJob no longer knows waits for the next full
// sweep. Everything else holds as for full sweeps: fencing, enrichment,
// ordering, sequences.
func (p *Poller) Sweep(ctx context.Context, t Target, mode Mode) (Result, error) {
	if !event.ValidName(t.Name) {
		return Result{}, fmt.Errorf("sweep: target name %q: must match [A-Za-z0-9_-]+", t.Name)
	}
	if t.Client == nil {
		return Result{}, fmt.Errorf("sweep %s: no OSS client", t.Name)
	}
	ts := p.target(t.Name)
	ts.mu.Lock()
	defer ts.mu.Unlock()
	defer ts.drop()

	sweepID, err := event.NewID()
	if err != nil {
		return Result{}, err
	}
	started := p.cfg.NowFunc()
	res := Result{SweepID: sweepID}
	log := p.log.With("target", t.Name, "sweep", sweepID)
	// The listing's times come from the database, not this process's
	// clock: they fence out listings that may be older than the last one
	// applied, across replicas whose clocks may disagree.
	listedAt, err := p.cfg.Store.StartSweep(ctx, sweepID, t.Name)
	if err != nil {
		return res, fmt.Errorf("sweep %s: %w", t.Name, err)
	}
	// record notes a sweep that wrote nothing, even when ctx was cancelled.
	// If an apply committed although its client saw an error, the record
	// it wrote stands.
	record := func(why string) error {
		res.Duration = p.cfg.NowFunc().Sub(started)
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
		defer cancel()
		err := p.cfg.Store.FinishSweep(rctx, store.SweepRecord{
			ID: sweepID, Hot: res.Hot, Pages: res.Pages, JobsListed: res.Jobs, Err: why,
		})
		if errors.Is(err, store.ErrRecorded) {
			log.Warn("the sweep's apply committed although its result was an error; its record stands", "error", why)
			return nil
		}
		return err
	}
	fail := func(err error) (Result, error) {
		return res, fmt.Errorf("sweep %s: %w", t.Name, errors.Join(err, record(err.Error())))
	}

	var details map[string]*job.Detail
	if mode == Hot {
		st, err := p.load(ctx, t.Name, ts, 0)
		if err != nil {
			return fail(err)
		}
		switch {
		case !st.Baselined:
			log.Info("no sweep of the target applied yet: this one lists every job")
			mode = Full
		case !st.Held.IsZero():
			log.Info("removals are held for a second full listing to confirm or contradict: this sweep lists every job")
			mode = Full
		case t.ReconcileInterval > 0 && listedAt.Sub(st.LastFullListedAt) >= t.ReconcileInterval:
			log.Info("the last full listing is older than the reconcile interval: this sweep lists every job",
				"last_full", st.LastFullListedAt, "reconcile_interval", t.ReconcileInterval)
			mode = Full
		}
	}
	res.Hot = mode == Hot
	var listing []job.Job
	if res.Hot {
		listing, err = p.listHot(ctx, t, &res)
		if err == nil {
			// What DescribeJob says is part of the listing: the listing
			// ends after it.
			listing, details = p.describeLeft(ctx, t, ts.snaps, listing, &res, log)
			if HoldsRemovals(res.Gone, res.Described) {
				// Most of the jobs it asked about are unknown to OSS: the
				// answers may be another account's (credentials changed).
				// A full listing decides, under the mass-removal guard.
				log.Warn("DescribeJob no longer knows most of the jobs that left the hot listing; listing every job instead",
					"gone", res.Gone, "described", res.Described)
				mode, res.Hot, res.Described, res.Gone, details = Full, false, 0, 0, nil
			}
		}
	}
	if !res.Hot && err == nil {
		listing, err = p.list(ctx, t, len(ts.snaps), &res)
	}
	if err != nil {
		return fail(err)
	}
	endedAt, err := p.cfg.Store.EndListing(ctx, sweepID)
	if err != nil {
		return fail(err)
	}
	listing, bad := diff.Clean(listing)
	if bad != nil {
		res.LeftOut = bad.Count()
		log.Error("listing has entries the sweep cannot use; applying the rest, with no removals", "problem", bad.Error())
	}
	p.reportAnomalies(listing, &res, log)

	statuses := map[job.Status]int{}
	for i := range listing {
		statuses[listing[i].Status]++
	}
	l := &listingOf{jobs: listing, startedAt: listedAt, endedAt: endedAt, bad: bad, hot: res.Hot, details: details}
	listing = nil // l holds it, and may let it go (see apply)
	for attempt := 1; ; attempt++ {
		// A first sweep written in parts may have committed some before
		// an error: its events count too.
		written, err := p.apply(ctx, t, ts, l, &res, log)
		res.Events += written
		switch {
		case err == nil:
			res.Statuses = statuses
			res.Duration = p.cfg.NowFunc().Sub(started)
			log.Info("sweep applied", "mode", mode, "pages", res.Pages, "jobs", res.Jobs, "described", res.Described,
				"events", res.Events, "duration", res.Duration)
			if bad != nil {
				return res, fmt.Errorf("sweep %s: applied without the entries it could not use: %w", t.Name, bad)
			}
			return res, nil
		case errors.Is(err, store.ErrStale):
			res.Stale = true
			if res.Events > 0 {
				// A first sweep written in parts, some committed before
				// another sweep was applied between two of them.
				log.Info("listing refused part way: another sweep's listing, which this one began before the end of, was applied between two of its parts; the parts written stand",
					"events", res.Events)
			} else {
				log.Info("listing refused: another sweep's listing, which this one began before the end of, was applied first; nothing written")
			}
			return res, record("superseded: " + store.ErrStale.Error())
		case errors.Is(err, store.ErrConflict) && attempt < maxApplyAttempts:
			log.Info("snapshots changed under the sweep; reading them again", "attempt", attempt)
			ts.loaded = false
			continue
		case errors.Is(err, store.ErrConflict) && ts.inParts:
			// The snapshots were read while another process wrote the
			// target's first sweep in parts, and a part committed since:
			// wait it out rather than fail. It has finitely many parts,
			// and one that failed part way changes nothing more.
			log.Info("snapshots changed under the sweep: another sweep is being written in parts; reading them again", "attempt", attempt)
			ts.loaded = false
			continue
		default:
			ts.loaded = false
			return fail(err)
		}
	}
}

// Forget drops the snapshots the poller holds of a target, as when this
// process no longer sweeps it; a later sweep reads them again. It never
// waits: if a sweep of the target is running, that sweep drops them when
// it ends.
func (p *Poller) Forget(target string) {
	p.mu.Lock()
	ts, ok := p.state[target]
	p.mu.Unlock()
	if !ok {
		return
	}
	ts.forget.Store(true)
	if ts.mu.TryLock() {
		ts.drop()
		ts.mu.Unlock()
	}
}

// drop forgets the snapshots if Forget asked for it; ts.mu is held.
func (ts *targetState) drop() {
	if ts.forget.Swap(false) {
		ts.snaps, ts.loaded, ts.version, ts.inParts = nil, false, "", false
	}
}

func (p *Poller) target(name string) *targetState {
	p.mu.Lock()
	defer p.mu.Unlock()
	ts, ok := p.state[name]
	if !ok {
		ts = &targetState{}
		p.state[name] = ts
	}
	return ts
}

// list fetches every page, with no status filter: with one, a job whose
// status changed would look as if it had vanished.
//
// sizeHint, the number of jobs last known, sizes the listing up front: at
// 100,000 jobs, growing by doubling would leave tens of megabytes behind.
func (p *Poller) list(ctx context.Context, t Target, sizeHint int, res *Result) ([]job.Job, error) {
	pager := t.Client.Pager(oss.ListJobsOptions{MaxKeys: 1000})
	jobs := make([]job.Job, 0, sizeHint+sizeHint/50+1000)
	// Without a hint (a first sweep, or the sweep verb's fresh process) the
	// pages are kept as they come and joined once at the end: growing one
	// slice page by page copied it, and faulted in fresh memory, a dozen
	// times over.
	var pages [][]job.Job
	for page, err := range pager.All(ctx) {
		if err != nil {
			res.Pages, res.Jobs = pager.Pages(), pager.Jobs()
			return nil, err
		}
		if sizeHint == 0 {
			pages = append(pages, page.Jobs)
			continue
		}
		jobs = append(jobs, page.Jobs...)
	}
	res.Pages, res.Jobs = pager.Pages(), pager.Jobs()
	if !pager.Complete() {
		return nil, errors.New("listing ended before its last page")
	}
	if sizeHint == 0 {
		jobs = slices.Concat(pages...)
	}
	return jobs, nil
}

// listingOf is one sweep's listing: its jobs, sorted and cleaned, when it
// was read, and what was left out of it.
type listingOf struct {
	// jobs is nil once apply has let the listing go, the jobs being those
	// of copiedTo.
	jobs []job.Job
	// copiedTo are snapshots that hold every listed job, and nothing else,
	// in order: a first sweep's.
	copiedTo           []job.Snapshot
	startedAt, endedAt time.Time
	bad                *diff.ListingError
	// hot marks a hot sweep's listing (the unfinished jobs, and those that
	// left the set as DescribeJob told); details are DescribeJob's answers
	// it already has, which enrichment reuses.
	hot     bool
	details map[string]*job.Detail
}

// apply reads the snapshots (unless this process applied the last sweep
// and still holds them), diffs, enriches and writes. It returns how many
// events it wrote, with an error too when parts of a first sweep written in
// parts committed before it (see store.Store.ApplySweep).
func (p *Poller) apply(ctx context.Context, t Target, ts *targetState, l *listingOf, res *Result, log *slog.Logger) (int, error) {
	if l.jobs == nil && l.copiedTo != nil {
		// An apply let the listing go, then failed: take it back.
		l.jobs = make([]job.Job, len(l.copiedTo))
		for i := range l.copiedTo {
			l.jobs[i] = l.copiedTo[i].Job
		}
		l.copiedTo = nil
	}
	sizeHint := 0
	if !l.hot {
		sizeHint = len(l.jobs)
	}
	st, err := p.load(ctx, t.Name, ts, sizeHint)
	if err != nil {
		return 0, err
	}
	if st.Stale(l.startedAt) {
		return 0, store.ErrStale
	}
	previous := ts.snaps
	if st.Baselined {
		tombs, err := p.cfg.Store.Tombstones(ctx, t.Name, unknownIDs(l.jobs, ts.snaps))
		if err != nil {
			return 0, err
		}
		if len(tombs) > 0 {
			// Clipped, so that Merge copies instead of writing into the
			// cache.
			previous = diff.Merge(slices.Clip(ts.snaps), tombs)
		}
	}

	full := !l.hot
	d := diff.Compute(diff.Input{
		Previous: previous, Listing: l.jobs, Complete: full && l.bad == nil, Baseline: !st.Baselined,
		Now: l.startedAt, StallAfter: t.StallAfter, Reminders: p.cfg.Reminders,
	})
	held := st.Held
	if full && l.bad == nil {
		held = p.holdRemovals(&d, ts.snaps, st.Held, l.startedAt, log)
	}
	if len(previous) == 0 && len(d.Snapshots) == len(l.jobs) {
		// Every listed job is new, so d.Snapshots copy the whole listing
		// (and d.Changes point into them): keeping the listing too would
		// hold 100,000 descriptors twice through the apply.
		l.jobs, l.copiedTo = nil, d.Snapshots
	}
	res.HeldRemovals = held.Count
	if full && st.Baselined {
		res.FoundFinished, res.TerminalChanged = foundByFull(d.Changes)
	}
	enriched := p.enrich(ctx, t, d.Changes, l.details, res, log)
	meta := event.Meta{Target: t.Name, Region: t.Region, SubjectPrefix: p.cfg.SubjectPrefix, SweepID: res.SweepID, ObservedAt: l.startedAt}
	events := func(yield func(event.Event, error) bool) {
		for _, c := range d.Changes {
			id, err := event.NewID()
			if err != nil {
				yield(event.Event{}, err)
				return
			}
			var en event.Enrichment
			if c.Kind == diff.StatusChanged {
				en = enriched[c.Job.ID]
			}
			if !yield(event.Encode(id, c, en, meta)) {
				return
			}
		}
	}
	rec := store.SweepRecord{Hot: l.hot, Pages: res.Pages, JobsListed: res.Jobs}
	if l.bad != nil {
		rec.Err = l.bad.Error()
	}
	written, err := p.cfg.Store.ApplySweep(ctx, store.Apply{
		Target:         t.Name,
		SweepID:        res.SweepID,
		ListedAt:       l.startedAt,
		ListingEndedAt: l.endedAt,
		Expect:         ts.version,
		Snapshots:      d.Snapshots,
		Events:         events,
		Record:         rec,
		Held:           held,
	})
	if err != nil {
		return written, err
	}
	res.Snapshots = len(d.Snapshots)
	res.EventsByKind = map[diff.Kind]int{}
	for _, c := range d.Changes {
		res.EventsByKind[c.Kind]++
	}
	ts.snaps = slices.DeleteFunc(diff.Merge(ts.snaps, d.Snapshots), func(s job.Snapshot) bool { return s.Removed })
	ts.version, ts.inParts = res.SweepID, false
	return written, nil
}

// unknownIDs returns the ids of listed jobs without a live snapshot: new
// jobs, or removed ones back. Both are sorted by id.
func unknownIDs(listing []job.Job, live []job.Snapshot) []string {
	var ids []string
	k := 0
	for i := range listing {
		id := listing[i].ID
		for k < len(live) && live[k].Job.ID < id {
			k++
		}
		if k == len(live) || live[k].Job.ID != id {
			ids = append(ids, id)
		}
	}
	return ids
}

// reportAnomalies logs the listed jobs whose descriptors held values out
// of range (left null, the raw value kept in the stored descriptor), one
// line a sweep naming the first few, and counts them.
func (p *Poller) reportAnomalies(listing []job.Job, res *Result, log *slog.Logger) {
	const named = 5
	var examples []string
	for i := range listing {
		j := &listing[i]
		if len(j.Anomalies) == 0 {
			continue
		}
		res.Anomalies++
		if len(examples) < named {
			a := j.Anomalies[0]
			examples = append(examples, fmt.Sprintf("job %q %s=%q: %s", j.ID, a.Field, a.Raw, a.Reason))
		}
	}
	if res.Anomalies > 0 {
		log.Warn("listed jobs hold values out of range; those fields are null, the raw values kept in jobs.descriptor",
			"jobs", res.Anomalies, "first", strings.Join(examples, "; "))
	}
}

// load returns the target's state, reading its live snapshots into ts
// unless ts holds them as of the sweep applied last. sizeHint is about how
// many there are, 0 if unknown (see store.Store.Snapshots): a full
// listing's length.
func (p *Poller) load(ctx context.Context, target string, ts *targetState, sizeHint int) (store.TargetState, error) {
	st, err := p.cfg.Store.TargetState(ctx, target)
	if err != nil {
		return st, err
	}
	if !ts.loaded || ts.version != st.Version() {
		ts.loaded, ts.snaps = false, nil
		if st, ts.snaps, err = p.cfg.Store.Snapshots(ctx, target, sizeHint); err != nil {
			return st, err
		}
		ts.version, ts.loaded, ts.inParts = st.Version(), true, st.Parts > 0
	}
	return st, nil
}

// listHot fetches every page of the unfinished jobs.
func (p *Poller) listHot(ctx context.Context, t Target, res *Result) ([]job.Job, error) {
	pager := t.Client.Pager(oss.ListJobsOptions{MaxKeys: 1000, Statuses: job.Unfinished()})
	var jobs []job.Job
	for page, err := range pager.All(ctx) {
		if err != nil {
			res.Pages, res.Jobs = pager.Pages(), pager.Jobs()
			return nil, err
		}
		jobs = append(jobs, page.Jobs...)
	}
	res.Pages, res.Jobs = pager.Pages(), pager.Jobs()
	if !pager.Complete() {
		return nil, errors.New("listing ended before its last page")
	}
	return jobs, nil
}

// describeLeft calls DescribeJob for every job last known unfinished (a
// live snapshot in a status the hot listing covers) that the hot listing
// lacks, DescribeConcurrency at a time, and returns the listing with what
// DescribeJob said appended, as if listed, and its answers for
// enrichment. A job OSS no longer knows is left out (the next full sweep
// reports its removal); one whose call failed is left out too, counted and
// logged (the next sweep tries again).
func (p *Poller) describeLeft(ctx context.Context, t Target, live []job.Snapshot, listing []job.Job, res *Result, log *slog.Logger) ([]job.Job, map[string]*job.Detail) {
	listed := make(map[string]bool, len(listing))
	for i := range listing {
		listed[listing[i].ID] = true
	}
	var ids []string
	for i := range live {
		j := &live[i].Job
		// Unknown statuses count as unfinished (as Terminal says): the hot
		// listing's filter cannot name them, so they are described.
		if !j.Status.Terminal() && !listed[j.ID] {
			ids = append(ids, j.ID)
		}
	}
	details := make(map[string]*job.Detail, len(ids))
	p.describeEach(ctx, t, ids, func(id string, d *job.Detail, err error) {
		res.Described++
		var apiErr *oss.APIError
		switch {
		case errors.As(err, &apiErr) && apiErr.NotFound():
			res.Gone++
		case err != nil:
			res.DescribeFailures++
			log.Warn("DescribeJob failed for a job that left the unfinished set; the next sweep tries again", "job", id, "error", err)
			if p.cfg.OnDescribeError != nil {
				p.cfg.OnDescribeError(t.Name, err)
			}
		default:
			d.Job.ID = id // the job asked about, whatever the answer says
			details[id] = d
		}
	})
	for _, id := range ids {
		if d, ok := details[id]; ok {
			listing = append(listing, d.Job)
		}
	}
	return listing, details
}

// foundByFull counts, among a full sweep's changes, the jobs discovered
// already finished and the finished jobs whose status changed.
func foundByFull(changes []diff.Change) (finished, terminalChanged int) {
	for _, c := range changes {
		switch {
		case c.Kind == diff.Discovered && c.Job.Status.Terminal():
			finished++
		case c.Kind == diff.StatusChanged && c.From.Terminal():
			terminalChanged++
		}
	}
	return finished, terminalChanged
}

package diff

import (
	"cmp"
	"slices"

	"github.com/ossjobwatch/ossjobwatch/job"
)

// Kind is what a change says happened to a job. Kinds sort in the order
// the contract fixes for one job within one sweep.
type Kind int

// The kinds of change, in their order within a sweep.
const (
	Discovered Kind = iota + 1
	StatusChanged
	TasksFailed
	Progress
	Removed
)

var kindNames = map[Kind]string{
	Discovered:    "discovered",
	StatusChanged: "status_changed",
	TasksFailed:   "tasks_failed",
	Progress:      "progress",
	Removed:       "removed",
}

// String is the kind's name as the event type uses it, e.g. "tasks_failed".
func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return "unknown"
}

// RemovalReason says why a job left the listing.
type RemovalReason string

// The reasons for a removal.
const (
	// Expired: the job was terminal, so OSS retention dropped it.
	Expired RemovalReason = "expired"
	// Vanished: the job was still running when it disappeared.
	Vanished RemovalReason = "vanished"
)

// Snapshot is what the store knows of one job.
type Snapshot = job.Snapshot

// Change is one transition of one job.
type Change struct {
	Kind Kind
	// Sequence is this change's place in the job's event history.
	Sequence int64
	// Job is the job's current state; for Removed, its last known state.
	Job job.Job
	// From is the status before a StatusChanged.
	From job.Status
	// Baseline marks Discovered changes of a target's first sweep.
	Baseline bool
	// FailedDelta and SucceededDelta are the counters' moves since the
	// snapshot (zero for Discovered and Removed).
	FailedDelta    int64
	SucceededDelta int64
	// Reason is set for Removed.
	Reason RemovalReason
}

// Input is one sweep's view of a target.
type Input struct {
	// Previous holds the target's snapshots, tombstones included, by job id.
	Previous map[string]Snapshot
	// Listing is every job the sweep's listing returned.
	Listing []job.Job
	// Complete is true when the listing reached its last page. Only then
	// can an absent job be called removed.
	Complete bool
	// Baseline is true on the target's first sweep.
	Baseline bool
}

// Result is what a sweep must write.
type Result struct {
	// Changes are ordered by job id, then by Kind.
	Changes []Change
	// Snapshots are the new snapshots of every job that changed, including
	// descriptor-only changes that carry no event, ordered by job id.
	Snapshots []Snapshot
}

// Compute applies the rules of the package documentation.
func Compute(in Input) Result {
	current := dedupe(in.Listing)
	var res Result
	for _, cur := range current {
		prev, known := in.Previous[cur.ID]
		seq := prev.Sequence
		next := func(c Change) {
			seq++
			c.Sequence = seq
			c.Job = cur
			res.Changes = append(res.Changes, c)
		}
		switch {
		case !known || prev.Removed:
			next(Change{Kind: Discovered, Baseline: in.Baseline})
		default:
			p := prev.Job
			failed := cur.Tasks.Failed - p.Tasks.Failed
			succeeded := cur.Tasks.Succeeded - p.Tasks.Succeeded
			if cur.Status != p.Status {
				next(Change{Kind: StatusChanged, From: p.Status})
			}
			if failed > 0 {
				next(Change{Kind: TasksFailed, FailedDelta: failed, SucceededDelta: succeeded})
			}
			if succeeded != 0 || cur.Tasks.Total != p.Tasks.Total {
				next(Change{Kind: Progress, FailedDelta: failed, SucceededDelta: succeeded})
			}
			if seq == prev.Sequence && sameDescriptor(p, cur) {
				continue
			}
		}
		res.Snapshots = append(res.Snapshots, Snapshot{Job: cur, Sequence: seq})
	}

	if in.Complete {
		res.removals(in.Previous, current)
	}
	// Jobs were visited in id order and removals appended after them; one
	// stable sort by id merges the two while keeping each job's kinds in
	// order.
	slices.SortStableFunc(res.Changes, func(a, b Change) int { return cmp.Compare(a.Job.ID, b.Job.ID) })
	slices.SortStableFunc(res.Snapshots, func(a, b Snapshot) int { return cmp.Compare(a.Job.ID, b.Job.ID) })
	return res
}

// removals adds a Removed change for every live snapshot absent from the
// listing.
func (res *Result) removals(previous map[string]Snapshot, current []job.Job) {
	var gone []Snapshot
	for id, prev := range previous {
		if prev.Removed {
			continue
		}
		if _, found := slices.BinarySearchFunc(current, id, func(j job.Job, id string) int { return cmp.Compare(j.ID, id) }); !found {
			gone = append(gone, prev)
		}
	}
	slices.SortFunc(gone, func(a, b Snapshot) int { return cmp.Compare(a.Job.ID, b.Job.ID) })
	for _, prev := range gone {
		reason := Vanished
		if prev.Job.Status.Terminal() {
			reason = Expired
		}
		seq := prev.Sequence + 1
		res.Changes = append(res.Changes, Change{Kind: Removed, Sequence: seq, Job: prev.Job, Reason: reason})
		res.Snapshots = append(res.Snapshots, Snapshot{Job: prev.Job, Sequence: seq, Removed: true})
	}
}

// dedupe returns the listing sorted by id with one descriptor per job, the
// last one given. OSS lists in id order, so the usual listing is returned
// as it is, without a copy: at 100,000 jobs a copy is megabytes.
func dedupe(listing []job.Job) []job.Job {
	if slices.IsSortedFunc(listing, func(a, b job.Job) int { return cmp.Compare(a.ID, b.ID) }) && unique(listing) {
		return listing
	}
	out := slices.Clone(listing)
	// Sort by id, keeping input order among equal ids, then keep the last
	// of each run.
	slices.SortStableFunc(out, func(a, b job.Job) int { return cmp.Compare(a.ID, b.ID) })
	w := 0
	for i := range out {
		if i+1 < len(out) && out[i+1].ID == out[i].ID {
			continue
		}
		out[w] = out[i]
		w++
	}
	return out[:w]
}

// unique reports whether a sorted listing names every job once.
func unique(sorted []job.Job) bool {
	for i := 1; i < len(sorted); i++ {
		if sorted[i].ID == sorted[i-1].ID {
			return false
		}
	}
	return true
}

// sameDescriptor compares everything but the active-time timer.
func sameDescriptor(a, b job.Job) bool {
	return a.ID == b.ID &&
		a.Status == b.Status &&
		a.Operation == b.Operation &&
		a.Description == b.Description &&
		a.Priority == b.Priority &&
		a.Tasks == b.Tasks &&
		a.CreationTime.Equal(b.CreationTime) &&
		a.TerminationTime.Equal(b.TerminationTime)
}

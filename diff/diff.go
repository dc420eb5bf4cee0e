package diff

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

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
	Stalled
	ConfirmationDue
	Removed
)

var kindNames = map[Kind]string{
	Discovered:      "discovered",
	StatusChanged:   "status_changed",
	TasksFailed:     "tasks_failed",
	Progress:        "progress",
	Stalled:         "stalled",
	ConfirmationDue: "confirmation_due",
	Removed:         "removed",
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
	// It points into the Result's Snapshots (every change has its job's new
	// snapshot there), which must not be reordered or filtered in place
	// while the change is in use. Not into the listing: a caller may let
	// the listing go once it has the Result, and a baseline's snapshots
	// copy every listed job.
	Job *job.Job
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
	// StalledSince is set for Stalled: when the job last moved.
	StalledSince time.Time
	// SuspendedSince and FailsAt are set for ConfirmationDue and for a
	// StatusChanged into Suspended: when the job was first seen Suspended
	// (or created, if it was Suspended when discovered), and when OSS fails
	// it unless confirmed.
	SuspendedSince, FailsAt time.Time
}

// Input is one sweep's view of a target.
type Input struct {
	// Previous holds the target's snapshots, tombstones included, one per
	// job, sorted by job id (byte order). An unsorted slice is sorted on a
	// copy first.
	Previous []Snapshot
	// Listing is every job the sweep's listing returned.
	Listing []job.Job
	// Complete is true when the listing reached its last page. Only then
	// can an absent job be called removed.
	Complete bool
	// Baseline is true on the target's first sweep.
	Baseline bool
	// Now is when the listing was taken (the events' observedAt): the
	// clock of the attention rules.
	Now time.Time
	// StallAfter is how long an unfinished job other than a Suspended one
	// may show the same status and counters before a Stalled change
	// announces it, once per episode; 0 disables.
	StallAfter time.Duration
	// Reminders are the waits, ascending (Compute relies on it), after which a job still Suspended
	// gets a ConfirmationDue change, once each per suspension.
	Reminders []time.Duration
}

// Result is what a sweep must write.
type Result struct {
	// Changes are ordered by job id, then by Kind.
	Changes []Change
	// Snapshots are the new snapshots of every job that changed, including
	// descriptor-only changes that carry no event, ordered by job id.
	Snapshots []Snapshot
}

// Compute applies the rules of the package documentation. Listing and
// snapshots are both in id order, so one merge pass pairs them: no map, no
// search, and the output comes out in id order.
//
// A listing Clean finds fault with is cleaned first and reports no
// removals, as if incomplete: callers should Clean it themselves and say
// what was wrong.
func Compute(in Input) Result {
	current, problems := Clean(in.Listing)
	if problems != nil {
		in.Complete = false
	}
	previous := sortedSnapshots(in.Previous)
	var res Result
	if len(previous) == 0 {
		// A first sweep writes a snapshot and an event per job: sized up
		// front, a baseline of 100,000 jobs leaves no doubling garbage
		// behind (tens of megabytes at its peak).
		res.Snapshots = make([]Snapshot, 0, len(current))
		res.Changes = make([]Change, 0, len(current))
	}
	i, k := 0, 0
	for i < len(current) || k < len(previous) {
		switch {
		case k == len(previous) || (i < len(current) && current[i].ID < previous[k].Job.ID):
			res.observe(&current[i], Snapshot{}, false, &in)
			i++
		case i == len(current) || previous[k].Job.ID < current[i].ID:
			if in.Complete && !previous[k].Removed {
				res.remove(&previous[k])
			}
			k++
		default:
			res.observe(&current[i], previous[k], true, &in)
			i++
			k++
		}
	}
	res.pointAtSnapshots()
	return res
}

// pointAtSnapshots points each change's Job at its job's new snapshot, the
// same descriptor as the listing's (or, for Removed, the previous
// snapshot's). Both are in id order, and each change has its snapshot: a
// change moves the sequence, and a moved sequence writes one.
func (res *Result) pointAtSnapshots() {
	k := 0
	for i := range res.Changes {
		c := &res.Changes[i]
		for k < len(res.Snapshots) && res.Snapshots[k].Job.ID < c.Job.ID {
			k++
		}
		if k < len(res.Snapshots) && res.Snapshots[k].Job.ID == c.Job.ID {
			c.Job = &res.Snapshots[k].Job
		}
	}
}

// observe compares a listed job with its snapshot, if it has one.
func (res *Result) observe(cur *job.Job, prev Snapshot, known bool, in *Input) {
	seq := prev.Sequence
	next := func(c Change) {
		seq++
		c.Sequence = seq
		c.Job = cur
		res.Changes = append(res.Changes, c)
	}
	now := in.Now
	att := prev.Attention
	moved := false // the status or a counter changed
	switch {
	case !known:
		next(Change{Kind: Discovered, Baseline: in.Baseline})
		// Every job starts as New: one first seen later than that, after
		// the baseline, went through a transition no sweep saw, and a
		// subscriber of status events (a failure bot) must still hear of it.
		if !in.Baseline && cur.Status != job.StatusNew {
			next(res.statusChange(cur, job.StatusNew, &att, now))
		}
		att = job.Attention{StatusSince: now, ActivityAt: now}
		if cur.Status == job.StatusSuspended {
			att.SuspendedSince = cmp.Or(cur.CreationTime, now)
			if !in.Baseline {
				res.Changes[len(res.Changes)-1].SuspendedSince = att.SuspendedSince
				res.Changes[len(res.Changes)-1].FailsAt = att.SuspendedSince.Add(job.SuspensionLimit)
			}
		}
	case prev.Removed:
		// A job back after its removal: it continues its sequence, and a
		// status other than the one it left in is a transition too.
		next(Change{Kind: Discovered, Baseline: in.Baseline})
		if cur.Status != prev.Job.Status {
			next(res.statusChange(cur, prev.Job.Status, &att, now))
		}
		moved = true
	default:
		p := prev.Job
		failed := cur.Tasks.Failed - p.Tasks.Failed
		succeeded := cur.Tasks.Succeeded - p.Tasks.Succeeded
		if cur.Status != p.Status {
			next(res.statusChange(cur, p.Status, &att, now))
		}
		if failed > 0 {
			next(Change{Kind: TasksFailed, FailedDelta: failed, SucceededDelta: succeeded})
		}
		if succeeded != 0 || cur.Tasks.Total != p.Tasks.Total {
			next(Change{Kind: Progress, FailedDelta: failed, SucceededDelta: succeeded})
		}
		moved = cur.Status != p.Status || cur.Tasks != p.Tasks
	}
	if moved {
		att.ActivityAt, att.StalledAt = now, time.Time{}
	}
	if att.StatusSince.IsZero() || att.ActivityAt.IsZero() {
		// A row from before these were kept: start their clocks now.
		att.StatusSince, att.ActivityAt = cmp.Or(att.StatusSince, now), cmp.Or(att.ActivityAt, now)
	}
	if cur.Status != job.StatusSuspended {
		att.SuspendedSince, att.RemindersSent, att.RemindedUpTo = time.Time{}, 0, 0
	} else if att.SuspendedSince.IsZero() {
		att.SuspendedSince = cmp.Or(cur.CreationTime, now)
	}

	if in.StallAfter > 0 && !now.IsZero() && !cur.Status.Terminal() && cur.Status != job.StatusSuspended &&
		att.StalledAt.IsZero() && now.Sub(att.ActivityAt) >= in.StallAfter {
		next(Change{Kind: Stalled, StalledSince: att.ActivityAt})
		att.StalledAt = now
	}
	if cur.Status == job.StatusSuspended && !now.IsZero() {
		for _, wait := range in.Reminders {
			if wait > att.RemindedUpTo && now.Sub(att.SuspendedSince) >= wait {
				next(Change{Kind: ConfirmationDue, SuspendedSince: att.SuspendedSince, FailsAt: att.SuspendedSince.Add(job.SuspensionLimit)})
				att.RemindersSent++
				att.RemindedUpTo = wait
			}
		}
	}

	if known && !prev.Removed && seq == prev.Sequence && sameDescriptor(prev.Job, *cur) && att.Equal(prev.Attention) {
		return
	}
	res.Snapshots = append(res.Snapshots, Snapshot{Job: *cur, Sequence: seq, Attention: att})
}

// statusChange is the change of cur's status from from, and the new
// status's clocks: when it began and, into Suspended, the suspension's.
func (res *Result) statusChange(cur *job.Job, from job.Status, att *job.Attention, now time.Time) Change {
	c := Change{Kind: StatusChanged, From: from}
	att.StatusSince = now
	if cur.Status == job.StatusSuspended {
		att.SuspendedSince, att.RemindersSent, att.RemindedUpTo = now, 0, 0
		c.SuspendedSince, c.FailsAt = now, now.Add(job.SuspensionLimit)
	}
	return c
}

// remove reports a live snapshot that a complete listing lacks.
func (res *Result) remove(prev *Snapshot) {
	reason := Vanished
	if prev.Job.Status.Terminal() {
		reason = Expired
	}
	seq := prev.Sequence + 1
	res.Changes = append(res.Changes, Change{Kind: Removed, Sequence: seq, Job: &prev.Job, Reason: reason})
	res.Snapshots = append(res.Snapshots, Snapshot{Job: prev.Job, Sequence: seq, Removed: true, Attention: prev.Attention})
}

func byID(a, b Snapshot) int { return cmp.Compare(a.Job.ID, b.Job.ID) }

func sortedSnapshots(s []Snapshot) []Snapshot {
	if slices.IsSortedFunc(s, byID) {
		return s
	}
	s = slices.Clone(s)
	slices.SortStableFunc(s, byID)
	return s
}

// Merge returns snapshots with the changed ones applied: both sorted by id,
// the result too. It is how a poller keeps its copy of the snapshots
// current without reading them back. It works in place, reusing
// snapshots' array, when its capacity allows (so snapshots must not be
// used afterwards), and returns changed itself when snapshots is empty;
// otherwise it allocates with some headroom so that the
// next sweeps' new jobs fit.
func Merge(snapshots, changed []Snapshot) []Snapshot {
	if len(snapshots) == 0 {
		return changed // a first sweep: nothing to merge into
	}
	added := 0
	for i, k := 0, 0; k < len(changed); {
		switch {
		case i == len(snapshots) || changed[k].Job.ID < snapshots[i].Job.ID:
			added++
			k++
		case snapshots[i].Job.ID < changed[k].Job.ID:
			i++
		default:
			i++
			k++
		}
	}
	n := len(snapshots) + added
	out := snapshots
	if cap(snapshots) < n {
		out = make([]Snapshot, len(snapshots), n+n/10)
		copy(out, snapshots)
	}
	out = out[:n]
	// Fill from the back, so that no element is overwritten before it has
	// been moved: the classic in-place merge of two sorted arrays.
	i, k := len(snapshots)-1, len(changed)-1
	for w := n - 1; k >= 0; w-- {
		switch {
		case i >= 0 && out[i].Job.ID > changed[k].Job.ID:
			out[w] = out[i]
			i--
		case i >= 0 && out[i].Job.ID == changed[k].Job.ID:
			out[w] = changed[k]
			i--
			k--
		default:
			out[w] = changed[k]
			k--
		}
	}
	return out
}

// ListingError says which entries of a listing Clean left out.
type ListingError struct {
	// Empty counts the jobs listed with an empty JobId.
	Empty int
	// Duplicates are the JobIds listed more than once, sorted.
	Duplicates []string
	// NoStatus are the JobIds listed without a status, sorted.
	NoStatus []string
}

// Count is how many jobs the listing left out, counting a repeated JobId
// once.
func (e *ListingError) Count() int { return e.Empty + len(e.Duplicates) + len(e.NoStatus) }

func (e *ListingError) Error() string {
	var parts []string
	if e.Empty > 0 {
		parts = append(parts, fmt.Sprintf("%d job(s) with an empty JobId", e.Empty))
	}
	if len(e.Duplicates) > 0 {
		parts = append(parts, "JobId listed more than once: "+quoteSome(e.Duplicates))
	}
	if len(e.NoStatus) > 0 {
		parts = append(parts, "job(s) without a Status: "+quoteSome(e.NoStatus))
	}
	return "listing left out " + strings.Join(parts, "; ")
}

// quoteSome quotes the first ten ids and says how many more there are.
func quoteSome(ids []string) string {
	const shown = 10
	q := make([]string, 0, shown)
	for _, id := range ids[:min(shown, len(ids))] {
		q = append(q, strconv.Quote(id))
	}
	more := ""
	if n := len(ids) - shown; n > 0 {
		more = fmt.Sprintf(" and %d more", n)
	}
	return strings.Join(q, ", ") + more
}

// Clean returns the listing sorted by id, one entry per job, and an error
// naming what it left out: jobs with an empty JobId, every copy of a JobId
// listed more than once (which copy is current cannot be told, so neither
// is believed), and jobs without a status. OSS lists in id order, so the usual listing is
// returned as it is, without a copy: at 100,000 jobs a copy is megabytes.
func Clean(listing []job.Job) ([]job.Job, *ListingError) {
	byJobID := func(a, b job.Job) int { return cmp.Compare(a.ID, b.ID) }
	if slices.IsSortedFunc(listing, byJobID) && unique(listing) && (len(listing) == 0 || listing[0].ID != "") && allHaveStatus(listing) {
		return listing, nil
	}
	out := slices.Clone(listing)
	slices.SortStableFunc(out, byJobID)
	var bad ListingError
	w := 0
	for i := 0; i < len(out); {
		k := i + 1
		for k < len(out) && out[k].ID == out[i].ID {
			k++
		}
		switch {
		case out[i].ID == "":
			bad.Empty += k - i
		case k-i > 1:
			bad.Duplicates = append(bad.Duplicates, out[i].ID)
		case out[i].Status == "":
			bad.NoStatus = append(bad.NoStatus, out[i].ID)
		default:
			out[w] = out[i]
			w++
		}
		i = k
	}
	if bad.Count() == 0 {
		return out, nil
	}
	return out[:w], &bad
}

func allHaveStatus(listing []job.Job) bool {
	for i := range listing {
		if listing[i].Status == "" {
			return false
		}
	}
	return true
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

// sameDescriptor compares everything but the active-time timer. Anomalies
// count: when OSS sends another odd value, the stored descriptor keeps the
// new raw text, though no event follows from it.
func sameDescriptor(a, b job.Job) bool {
	a.ElapsedActiveSeconds = b.ElapsedActiveSeconds
	return a.Equal(b)
}

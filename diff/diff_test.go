package diff_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ossjobwatch/ossjobwatch/diff"
	"github.com/ossjobwatch/ossjobwatch/job"
)

func active(id string, total, succeeded, failed int64) job.Job {
	return job.Job{ID: id, Status: job.StatusActive, Operation: "PutObjectTagging", Priority: 1,
		Tasks: job.Tasks{Total: total, Succeeded: succeeded, Failed: failed}}
}

func kinds(cs []diff.Change) []string {
	var out []string
	for _, c := range cs {
		out = append(out, fmt.Sprintf("%s:%s#%d", c.Job.ID, c.Kind, c.Sequence))
	}
	return out
}

func prevOf(seq int64, jobs ...job.Job) []diff.Snapshot {
	var s []diff.Snapshot
	for _, j := range jobs {
		s = append(s, diff.Snapshot{Job: j, Sequence: seq})
	}
	return s
}

func TestComputeEveryStatusPair(t *testing.T) {
	t.Parallel()
	statuses := append(slices.Clone(job.Statuses), "Archiving") // an unknown one too
	for _, from := range statuses {
		for _, to := range statuses {
			prev := active("j", 10, 5, 0)
			prev.Status = from
			cur := prev
			cur.Status = to
			res := diff.Compute(diff.Input{Previous: prevOf(4, prev), Listing: []job.Job{cur}, Complete: true})
			if from == to {
				if len(res.Changes) != 0 || len(res.Snapshots) != 0 {
					t.Errorf("%s→%s: got changes %v, snapshots %d; want none", from, to, kinds(res.Changes), len(res.Snapshots))
				}
				continue
			}
			if len(res.Changes) != 1 {
				t.Fatalf("%s→%s: changes %v, want one status change", from, to, kinds(res.Changes))
			}
			c := res.Changes[0]
			if c.Kind != diff.StatusChanged || c.From != from || c.Job.Status != to || c.Sequence != 5 {
				t.Errorf("%s→%s: got %+v", from, to, c)
			}
			if len(res.Snapshots) != 1 || res.Snapshots[0].Sequence != 5 || res.Snapshots[0].Job.Status != to {
				t.Errorf("%s→%s: snapshots %+v", from, to, res.Snapshots)
			}
		}
	}
}

func TestComputeCounters(t *testing.T) {
	t.Parallel()
	base := active("j", 100, 10, 2)
	tests := []struct {
		name      string
		cur       job.Job
		want      []string
		failed    int64
		succeeded int64
		rewrite   bool
	}{
		{"nothing moved", base, nil, 0, 0, false},
		{"only the timer moved", func() job.Job { j := base; j.ElapsedActiveSeconds = 999; return j }(), nil, 0, 0, false},
		{"succeeded grew", active("j", 100, 15, 2), []string{"j:progress#8"}, 0, 5, true},
		{"total changed", active("j", 120, 10, 2), []string{"j:progress#8"}, 0, 0, true},
		{"failed grew", active("j", 100, 10, 5), []string{"j:tasks_failed#8"}, 3, 0, true},
		{"failed and succeeded grew", active("j", 100, 12, 3), []string{"j:tasks_failed#8", "j:progress#9"}, 1, 2, true},
		{"failed went down", active("j", 100, 10, 1), nil, 0, 0, true},
		{"priority changed", func() job.Job { j := base; j.Priority = 9; return j }(), nil, 0, 0, true},
		{"status and every counter", func() job.Job { j := active("j", 100, 100, 4); j.Status = job.StatusComplete; return j }(),
			[]string{"j:status_changed#8", "j:tasks_failed#9", "j:progress#10"}, 2, 90, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := diff.Compute(diff.Input{Previous: prevOf(7, base), Listing: []job.Job{tt.cur}, Complete: true})
			if got := kinds(res.Changes); !slices.Equal(got, tt.want) {
				t.Fatalf("changes %v, want %v", got, tt.want)
			}
			for _, c := range res.Changes {
				if c.Kind == diff.TasksFailed || c.Kind == diff.Progress {
					if c.FailedDelta != tt.failed || c.SucceededDelta != tt.succeeded {
						t.Errorf("%s deltas = %d/%d, want %d/%d", c.Kind, c.FailedDelta, c.SucceededDelta, tt.failed, tt.succeeded)
					}
				}
			}
			if got := len(res.Snapshots) == 1; got != tt.rewrite {
				t.Errorf("snapshot rewritten = %v, want %v", got, tt.rewrite)
			}
		})
	}
}

func TestComputeDiscoveryAndRemoval(t *testing.T) {
	t.Parallel()
	done := active("done", 10, 10, 0)
	done.Status = job.StatusComplete
	running := active("running", 10, 1, 0)
	gone := active("gone", 10, 1, 0)
	tomb := diff.Snapshot{Job: active("back", 10, 0, 0), Sequence: 6, Removed: true}

	prev := append(prevOf(3, done, running), tomb) // unsorted on purpose

	t.Run("first sweep is a baseline", func(t *testing.T) {
		t.Parallel()
		res := diff.Compute(diff.Input{Previous: nil, Listing: []job.Job{running, done}, Complete: true, Baseline: true})
		if got, want := kinds(res.Changes), []string{"done:discovered#1", "running:discovered#1"}; !slices.Equal(got, want) {
			t.Fatalf("changes %v, want %v", got, want)
		}
		for _, c := range res.Changes {
			if !c.Baseline {
				t.Errorf("%s: Baseline false on a first sweep", c.Job.ID)
			}
		}
	})
	t.Run("complete listing removes, with reasons", func(t *testing.T) {
		t.Parallel()
		res := diff.Compute(diff.Input{Previous: prev, Listing: []job.Job{gone}, Complete: true})
		want := []string{"done:removed#4", "gone:discovered#1", "gone:status_changed#2", "running:removed#4"}
		if got := kinds(res.Changes); !slices.Equal(got, want) {
			t.Fatalf("changes %v, want %v", got, want)
		}
		if r := res.Changes[0].Reason; r != diff.Expired {
			t.Errorf("terminal job removal reason %q, want expired", r)
		}
		if r := res.Changes[3].Reason; r != diff.Vanished {
			t.Errorf("running job removal reason %q, want vanished", r)
		}
		if res.Changes[1].Baseline {
			t.Error("a job discovered after the first sweep is marked baseline")
		}
	})
	t.Run("incomplete listing removes nothing", func(t *testing.T) {
		t.Parallel()
		res := diff.Compute(diff.Input{Previous: prev, Listing: []job.Job{gone}, Complete: false})
		if got, want := kinds(res.Changes), []string{"gone:discovered#1", "gone:status_changed#2"}; !slices.Equal(got, want) {
			t.Fatalf("changes %v, want %v", got, want)
		}
	})
	t.Run("a removed job seen again is rediscovered, sequence continuing", func(t *testing.T) {
		t.Parallel()
		res := diff.Compute(diff.Input{Previous: prev, Listing: []job.Job{done, running, tomb.Job}, Complete: true})
		if got, want := kinds(res.Changes), []string{"back:discovered#7"}; !slices.Equal(got, want) {
			t.Fatalf("changes %v, want %v", got, want)
		}
	})
	t.Run("tombstones are not removed twice", func(t *testing.T) {
		t.Parallel()
		res := diff.Compute(diff.Input{Previous: prev, Listing: []job.Job{done, running}, Complete: true})
		if len(res.Changes) != 0 {
			t.Fatalf("changes %v, want none", kinds(res.Changes))
		}
	})
}

func TestDiscoveryAfterBaselineOutsideNewIsAStatusChange(t *testing.T) {
	t.Parallel()
	failed := active("failed", 10, 3, 7)
	failed.Status = job.StatusFailed
	fresh := active("fresh", 10, 0, 0)
	fresh.Status = job.StatusNew
	back := active("back", 10, 10, 0)
	back.Status = job.StatusComplete
	tomb := diff.Snapshot{Job: active("back", 10, 4, 0), Sequence: 6, Removed: true}

	res := diff.Compute(diff.Input{Previous: []diff.Snapshot{tomb}, Listing: []job.Job{back, failed, fresh}, Complete: true})
	want := []string{"back:discovered#7", "back:status_changed#8", "failed:discovered#1", "failed:status_changed#2", "fresh:discovered#1"}
	if got := kinds(res.Changes); !slices.Equal(got, want) {
		t.Fatalf("changes %v, want %v", got, want)
	}
	if c := res.Changes[3]; c.From != job.StatusNew || c.Job.Status != job.StatusFailed {
		t.Errorf("new job's status change %s→%s, want New→Failed", c.From, c.Job.Status)
	}
	if c := res.Changes[1]; c.From != job.StatusActive || c.Job.Status != job.StatusComplete {
		t.Errorf("returning job's status change %s→%s, want Active→Complete", c.From, c.Job.Status)
	}

	// A baseline reports what it finds, with no status events.
	res = diff.Compute(diff.Input{Listing: []job.Job{failed}, Complete: true, Baseline: true})
	if got, want := kinds(res.Changes), []string{"failed:discovered#1"}; !slices.Equal(got, want) {
		t.Fatalf("baseline changes %v, want %v", got, want)
	}
}

func TestCleanLeavesOutWhatItCannotTrust(t *testing.T) {
	t.Parallel()
	first := active("j", 10, 1, 0)
	last := active("j", 10, 2, 0)
	listing := []job.Job{first, active("a", 1, 0, 0), last, active("", 1, 0, 0), active(" a", 1, 0, 0)}
	clean, bad := diff.Clean(listing)
	if got := ids(clean); !slices.Equal(got, []string{" a", "a"}) {
		t.Errorf("clean listing %q, want [\" a\" \"a\"]", got)
	}
	if bad == nil || bad.Empty != 1 || !slices.Equal(bad.Duplicates, []string{"j"}) {
		t.Fatalf("ListingError = %+v, want one empty and j twice", bad)
	}
	if msg := bad.Error(); !strings.Contains(msg, `"j"`) || !strings.Contains(msg, "empty JobId") {
		t.Errorf("error %q does not name what was wrong", msg)
	}

	// Compute cleans too, and a dirty listing removes nothing: the
	// repeated job keeps its snapshot, untouched.
	prev := prevOf(3, active("j", 10, 0, 0), active("z", 10, 0, 0))
	res := diff.Compute(diff.Input{Previous: prev, Listing: listing, Complete: true})
	if got, want := kinds(res.Changes), []string{" a:discovered#1", " a:status_changed#2", "a:discovered#1", "a:status_changed#2"}; !slices.Equal(got, want) {
		t.Fatalf("changes %v, want %v", got, want)
	}
	for _, sn := range res.Snapshots {
		if sn.Job.ID == "j" || sn.Job.ID == "z" {
			t.Errorf("snapshot of %q written from a listing that repeats it", sn.Job.ID)
		}
	}

	if clean, bad := diff.Clean([]job.Job{active("a", 1, 0, 0), active("b", 1, 0, 0)}); bad != nil || len(clean) != 2 {
		t.Errorf("a clean listing: %v, %v", ids(clean), bad)
	}
}

func ids(jobs []job.Job) []string {
	var out []string
	for _, j := range jobs {
		out = append(out, j.ID)
	}
	return out
}

// checkInvariants asserts what every Compute result must satisfy: the
// snapshots, applied to the previous ones, reproduce the listing; each
// job's changes are in kind order with consecutive sequences; the status
// history the changes tell leads from the old status to the new one.
func checkInvariants(t *testing.T, in diff.Input) {
	t.Helper()
	res := diff.Compute(in)

	previous := map[string]diff.Snapshot{}
	for _, s := range in.Previous {
		previous[s.Job.ID] = s
	}
	after := map[string]diff.Snapshot{}
	for id, s := range previous {
		after[id] = s
	}
	for _, s := range res.Snapshots {
		after[s.Job.ID] = s
	}
	listed := map[string]job.Job{}
	times := map[string]int{}
	for _, j := range in.Listing {
		listed[j.ID] = j
		times[j.ID]++
	}
	complete := in.Complete
	for id, n := range times {
		if n > 1 || id == "" {
			// Clean leaves out every copy of a repeated or empty id, and
			// the listing then removes nothing.
			delete(listed, id)
			complete = false
		}
	}
	for id, j := range listed {
		s, ok := after[id]
		if !ok || s.Removed {
			t.Fatalf("listed job %s is not live after applying the snapshots", id)
		}
		got, want := s.Job, j
		got.ElapsedActiveSeconds, want.ElapsedActiveSeconds = 0, 0
		if !got.Equal(want) {
			t.Fatalf("job %s after apply = %+v, want %+v", id, got, want)
		}
	}
	for id, s := range after {
		if _, ok := listed[id]; !ok && !s.Removed && complete {
			t.Fatalf("job %s absent from a complete listing is still live", id)
		}
		if _, ok := listed[id]; !ok && !complete && !sameSnapshot(s, previous[id]) {
			t.Fatalf("job %s absent from a partial listing was touched", id)
		}
	}

	lastSeq := map[string]int64{}
	lastKind := map[string]diff.Kind{}
	status := map[string]job.Status{}
	for id, s := range previous {
		lastSeq[id] = s.Sequence
		status[id] = s.Job.Status
	}
	for i, c := range res.Changes {
		id := c.Job.ID
		if i > 0 && res.Changes[i-1].Job.ID > id {
			t.Fatalf("changes not ordered by job id at %d", i)
		}
		if c.Sequence != lastSeq[id]+1 {
			t.Fatalf("job %s: sequence %d after %d", id, c.Sequence, lastSeq[id])
		}
		if c.Kind < lastKind[id] || c.Kind == lastKind[id] && c.Kind != diff.ConfirmationDue {
			t.Fatalf("job %s: %s after %s", id, c.Kind, lastKind[id])
		}
		lastSeq[id], lastKind[id] = c.Sequence, c.Kind
		switch c.Kind {
		case diff.Discovered:
			// A job discovered after the baseline passed through New; one
			// back from removal left in its last status: a status change
			// must follow if it is elsewhere now.
			prev, known := previous[id]
			switch {
			case known && prev.Removed:
				status[id] = prev.Job.Status
			case !known && !in.Baseline:
				status[id] = job.StatusNew
			default:
				status[id] = c.Job.Status
			}
		case diff.Stalled:
			if c.Job.Status.Terminal() || c.Job.Status == job.StatusSuspended || in.StallAfter == 0 || in.Now.Sub(c.StalledSince) < in.StallAfter {
				t.Fatalf("job %s: stalled in %s since %s (StallAfter %s)", id, c.Job.Status, c.StalledSince, in.StallAfter)
			}
		case diff.ConfirmationDue:
			if c.Job.Status != job.StatusSuspended || !c.FailsAt.Equal(c.SuspendedSince.Add(job.SuspensionLimit)) {
				t.Fatalf("job %s: confirmation_due in %s, suspended %s, fails %s", id, c.Job.Status, c.SuspendedSince, c.FailsAt)
			}
		case diff.TasksFailed:
			if c.FailedDelta <= 0 {
				t.Fatalf("job %s: tasks_failed with delta %d", id, c.FailedDelta)
			}
		case diff.StatusChanged:
			if c.From != status[id] {
				t.Fatalf("job %s: status change from %s, but it was %s", id, c.From, status[id])
			}
			status[id] = c.Job.Status
		}
	}
	// Merge both with a fresh array and in place, in spare capacity.
	for _, base := range [][]diff.Snapshot{sortedCopy(in.Previous), slices.Grow(sortedCopy(in.Previous), 64)} {
		merged := diff.Merge(base, res.Snapshots)
		if len(merged) != len(after) {
			t.Fatalf("Merge gave %d snapshots, want %d", len(merged), len(after))
		}
		for i, s := range merged {
			if i > 0 && merged[i-1].Job.ID >= s.Job.ID {
				t.Fatalf("Merge output not sorted at %d", i)
			}
			if !sameSnapshot(after[s.Job.ID], s) {
				t.Fatalf("Merge kept %+v for %s, want %+v", s, s.Job.ID, after[s.Job.ID])
			}
		}
	}
	for id, s := range after {
		if s.Sequence != lastSeq[id] {
			t.Fatalf("job %s: snapshot sequence %d, last change %d", id, s.Sequence, lastSeq[id])
		}
		if !s.Removed && status[id] != s.Job.Status {
			t.Fatalf("job %s: changes lead to %s, snapshot says %s", id, status[id], s.Job.Status)
		}
	}
}

// randomWorld builds a previous state and a listing that differ in every
// way the rules know: new, changed, unchanged, removed and returning jobs.
func randomWorld(r *rand.Rand) diff.Input {
	statuses := append(slices.Clone(job.Statuses), "Unknown?")
	randJob := func(id string) job.Job {
		j := active(id, r.Int64N(5), r.Int64N(5), r.Int64N(5))
		j.Status = statuses[r.IntN(len(statuses))]
		j.Priority = r.Int64N(3)
		j.ElapsedActiveSeconds = r.Int64N(100)
		if r.IntN(2) == 0 {
			j.TerminationTime = time.Unix(r.Int64N(3), 0)
		}
		return j
	}
	in := diff.Input{Complete: r.IntN(3) > 0, Baseline: r.IntN(4) == 0,
		Now: time.Unix(1e9, 0), StallAfter: time.Duration(r.IntN(3)) * time.Hour, Reminders: []time.Duration{time.Hour, 5 * time.Hour}}
	previous := map[string]diff.Snapshot{}
	for _, i := range r.Perm(30)[:r.IntN(30)] {
		id := fmt.Sprintf("job-%02d", i)
		previous[id] = diff.Snapshot{Job: randJob(id), Sequence: r.Int64N(10), Removed: r.IntN(5) == 0, Attention: job.Attention{
			StatusSince: in.Now.Add(-time.Duration(r.IntN(10)) * time.Hour), ActivityAt: in.Now.Add(-time.Duration(r.IntN(10)) * time.Hour),
			SuspendedSince: in.Now.Add(-time.Duration(r.IntN(10)) * time.Hour), RemindersSent: r.IntN(3),
		}}
		in.Previous = append(in.Previous, previous[id])
	}
	for range r.IntN(40) {
		id := fmt.Sprintf("job-%02d", r.IntN(40))
		j := randJob(id)
		if prev, ok := previous[id]; ok && r.IntN(2) == 0 {
			j = prev.Job // unchanged, or only the timer
			j.ElapsedActiveSeconds += r.Int64N(2)
		}
		in.Listing = append(in.Listing, j)
	}
	return in
}

func sortedCopy(s []diff.Snapshot) []diff.Snapshot {
	s = slices.Clone(s)
	slices.SortFunc(s, func(a, b diff.Snapshot) int { return strings.Compare(a.Job.ID, b.Job.ID) })
	return s
}

func TestComputeProperties(t *testing.T) {
	t.Parallel()
	for seed := range uint64(2000) {
		in := randomWorld(rand.New(rand.NewPCG(seed, 1)))
		checkInvariants(t, in)
	}
}

func FuzzCompute(f *testing.F) {
	for seed := range uint64(8) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, seed uint64) {
		checkInvariants(t, randomWorld(rand.New(rand.NewPCG(seed, 2))))
	})
}

func sameSnapshot(a, b diff.Snapshot) bool {
	return a.Job.Equal(b.Job) && a.Sequence == b.Sequence && a.Removed == b.Removed
}

// TestComputeAnomaliesUpdateTheDescriptorOnly: a new odd value is no event,
// but the snapshot keeps the raw text OSS sent last; the same anomalies
// again change nothing.
func TestComputeAnomaliesUpdateTheDescriptorOnly(t *testing.T) {
	t.Parallel()
	prev := active("j", 10, 5, 0)
	prev.Anomalies = []job.Anomaly{{Field: "CreationTime", Raw: "-1", Reason: "negative Unix time"}}
	same := prev
	same.Anomalies = slices.Clone(prev.Anomalies)
	if res := diff.Compute(diff.Input{Previous: prevOf(3, prev), Listing: []job.Job{same}, Complete: true}); len(res.Changes) != 0 || len(res.Snapshots) != 0 {
		t.Errorf("same anomalies: changes %v, %d snapshots; want none", kinds(res.Changes), len(res.Snapshots))
	}
	cur := prev
	cur.Anomalies = []job.Anomaly{{Field: "CreationTime", Raw: "-2", Reason: "negative Unix time"}}
	res := diff.Compute(diff.Input{Previous: prevOf(3, prev), Listing: []job.Job{cur}, Complete: true})
	if len(res.Changes) != 0 || len(res.Snapshots) != 1 || res.Snapshots[0].Sequence != 3 || !res.Snapshots[0].Job.Equal(cur) {
		t.Errorf("new anomaly: changes %v, snapshots %+v; want no event and the new descriptor at sequence 3", kinds(res.Changes), res.Snapshots)
	}
}

// Reminders are remembered by the longest wait announced: changing the
// list neither skips the last one nor repeats an earlier one.
func TestRemindersSurviveAChangeOfTheList(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	j := active("waiting", 10, 0, 0)
	j.Status = job.StatusSuspended
	prev := diff.Snapshot{Job: j, Sequence: 2, Attention: job.Attention{
		StatusSince: now.Add(-100 * time.Hour), ActivityAt: now.Add(-100 * time.Hour),
		SuspendedSince: now.Add(-100 * time.Hour), RemindersSent: 1, RemindedUpTo: 24 * time.Hour,
	}}
	due := func(reminders []time.Duration, at time.Time) int {
		res := diff.Compute(diff.Input{Previous: []diff.Snapshot{prev}, Listing: []job.Job{j}, Complete: true, Now: at, Reminders: reminders})
		n := 0
		for _, c := range res.Changes {
			if c.Kind == diff.ConfirmationDue {
				n++
			}
		}
		return n
	}
	if n := due([]time.Duration{12 * time.Hour, 24 * time.Hour, 312 * time.Hour}, now); n != 0 {
		t.Errorf("a reminder list grown with 12h repeats %d reminders at 100h", n)
	}
	if n := due([]time.Duration{312 * time.Hour}, now.Add(213*time.Hour)); n != 1 {
		t.Errorf("a reminder list shrunk to 312h gives %d reminders at 313h, want 1", n)
	}
}

// TestChangesPointIntoSnapshots: a change's Job is its job's new snapshot
// in the Result, with the descriptor listed (or, for a removal, the last
// one known), so that a caller may let the listing go.
func TestChangesPointIntoSnapshots(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	gone := active("a-gone", 5, 5, 0)
	gone.Status = job.StatusComplete
	moved := active("b-moved", 10, 2, 0)
	listing := []job.Job{active("b-moved", 10, 4, 1), active("c-new", 3, 0, 0), active("d-same", 1, 0, 0)}
	listing[1].Status = job.StatusFailed
	res := diff.Compute(diff.Input{Previous: prevOf(3, gone, moved, active("d-same", 1, 0, 0)), Listing: listing, Complete: true, Now: now})
	if got, want := kinds(res.Changes), []string{"a-gone:removed#4", "b-moved:tasks_failed#4", "b-moved:progress#5",
		"c-new:discovered#1", "c-new:status_changed#2"}; !slices.Equal(got, want) {
		t.Fatalf("changes %v, want %v", got, want)
	}
	for _, c := range res.Changes {
		i := slices.IndexFunc(res.Snapshots, func(s diff.Snapshot) bool { return s.Job.ID == c.Job.ID })
		if i < 0 || c.Job != &res.Snapshots[i].Job {
			t.Errorf("%s's change points at %p, not at its snapshot", c.Job.ID, c.Job)
		}
	}
	for _, j := range listing {
		i := slices.IndexFunc(res.Snapshots, func(s diff.Snapshot) bool { return s.Job.ID == j.ID })
		if i >= 0 && !res.Snapshots[i].Job.Equal(j) {
			t.Errorf("snapshot of %s = %+v, want the listed %+v", j.ID, res.Snapshots[i].Job, j)
		}
	}
	if res.Snapshots[0].Job.ID != "a-gone" || !res.Snapshots[0].Removed || !res.Snapshots[0].Job.Equal(gone) {
		t.Errorf("first snapshot %+v, want a-gone's tombstone", res.Snapshots[0])
	}
}

package store_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	ossevent "github.com/ossjobwatch/ossjobwatch/event"
	"github.com/ossjobwatch/ossjobwatch/job"
	"github.com/ossjobwatch/ossjobwatch/store"
	"github.com/ossjobwatch/ossjobwatch/store/storetest"
)

// TestSnapshotsKeepIDsAndAnomalies: a snapshot read back equals the one
// written, an id with spaces and the raw text of odd values included, so
// that the next sweep's diff sees no change where there is none.
func TestSnapshotsKeepIDsAndAnomalies(t *testing.T) {
	t.Parallel()
	s := storetest.NewStore(t)
	ctx := t.Context()
	const target = "t1"
	sweepID := uuid.NewString()
	listedAt, err := s.StartSweep(ctx, sweepID, target)
	if err != nil {
		t.Fatal(err)
	}
	written := []job.Snapshot{
		{Job: job.Job{ID: " job 1 ", Status: job.StatusActive, CreationTime: time.Unix(1749983400, 0).UTC(),
			Anomalies: []job.Anomaly{{Field: "TerminationDate", Raw: "-5", Reason: "negative Unix time"}, {Field: "NumberOfTasksFailed", Raw: "-1", Reason: "negative"}}}, Sequence: 1},
		{Job: job.Job{ID: "job+1%2B", Status: job.StatusComplete}, Sequence: 2},
	}
	if _, err := s.ApplySweep(ctx, store.Apply{
		Target: target, SweepID: sweepID, ListedAt: listedAt, Snapshots: written,
		Events: func(func(ossevent.Event, error) bool) {},
	}); err != nil {
		t.Fatalf("ApplySweep: %v", err)
	}
	_, read, err := s.Snapshots(ctx, target, 0)
	if err != nil {
		t.Fatalf("Snapshots: %v", err)
	}
	// A size hint, right or wrong, changes how they are read, not what.
	for _, hint := range []int{1, 2, 1000} {
		_, sized, err := s.Snapshots(ctx, target, hint)
		if err != nil {
			t.Fatalf("Snapshots with size hint %d: %v", hint, err)
		}
		if len(sized) != len(read) || !slices.EqualFunc(sized, read, func(a, b job.Snapshot) bool {
			return a.Job.Equal(b.Job) && a.Sequence == b.Sequence && a.Attention.Equal(b.Attention)
		}) {
			t.Errorf("Snapshots with size hint %d = %+v, want %+v", hint, sized, read)
		}
	}
	slices.SortFunc(written, func(a, b job.Snapshot) int { return strings.Compare(a.Job.ID, b.Job.ID) })
	if len(read) != len(written) {
		t.Fatalf("read %d snapshots, wrote %d", len(read), len(written))
	}
	for i := range read {
		if !read[i].Job.Equal(written[i].Job) || read[i].Sequence != written[i].Sequence || read[i].Removed != written[i].Removed {
			t.Errorf("read back\n%+v\nwrote\n%+v", read[i], written[i])
		}
	}
}

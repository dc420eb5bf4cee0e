package store_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ossjobwatch/ossjobwatch/store"
	"github.com/ossjobwatch/ossjobwatch/store/storetest"
)

func TestDeliveries(t *testing.T) {
	t.Parallel()
	st := storetest.NewStore(t)
	ctx := t.Context()
	ids := []string{"018f0000-0000-7000-8000-000000000001", "018f0000-0000-7000-8000-000000000002", "018f0000-0000-7000-8000-000000000003"}
	ref := func(id, receiver string) store.DeliveryRef {
		return store.DeliveryRef{EventID: id, Receiver: receiver, Route: "failures", Target: "hz", JobID: "job 1"}
	}
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

	// A digest of the first two fails twice, then is accepted.
	digest := []store.DeliveryRef{ref(ids[0], "ding"), ref(ids[1], "ding")}
	if err := st.RecordFailure(ctx, digest, t0, "notify ding: throttled (HTTP 200, code 130101)"); err != nil {
		t.Fatal(err)
	}
	if err := st.RecordFailure(ctx, digest, t0.Add(time.Minute), strings.Repeat("é", 800)); err != nil {
		t.Fatal(err)
	}
	got, err := st.Delivered(ctx, ids, "ding")
	if err != nil || len(got) != 0 {
		t.Fatalf("Delivered before any delivery = %v, %v", got, err)
	}
	if err := st.RecordDelivered(ctx, digest, t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	// The third alone to ding, the first to another receiver.
	if err := st.RecordDelivered(ctx, []store.DeliveryRef{ref(ids[2], "ding")}, t0.Add(3*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := st.RecordFailure(ctx, []store.DeliveryRef{ref(ids[0], "hook")}, t0, "HTTP 500"); err != nil {
		t.Fatal(err)
	}
	// A repeat delivery (a redelivered message sent again) keeps the first
	// delivered_at.
	if err := st.RecordDelivered(ctx, []store.DeliveryRef{ref(ids[0], "ding")}, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}

	got, err = st.Delivered(ctx, ids, "ding")
	if err != nil || len(got) != 3 {
		t.Errorf("Delivered to ding = %v, %v; want all three", got, err)
	}
	if got, err := st.Delivered(ctx, ids, "hook"); err != nil || len(got) != 0 {
		t.Errorf("Delivered to hook = %v, %v; want none", got, err)
	}

	ds, err := st.JobDeliveries(ctx, "job 1", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 4 {
		t.Fatalf("JobDeliveries = %+v, want 4 rows", ds)
	}
	d0 := ds[0]
	if d0.EventID != ids[0] || d0.Receiver != "ding" || d0.Attempts != 4 || !strings.HasPrefix(d0.LastError, "éé") || d0.DigestSize != 2 ||
		!d0.DeliveredAt.Equal(t0.Add(2*time.Minute)) || !d0.FirstAttemptAt.Equal(t0) || !d0.LastAttemptAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("first row = %+v", d0)
	}
	if h := ds[1]; h.Receiver != "hook" || !h.DeliveredAt.IsZero() || h.Attempts != 1 || h.LastError != "HTTP 500" {
		t.Errorf("hook row = %+v", h)
	}
	if d := ds[3]; d.EventID != ids[2] || d.DigestSize != 1 || d.Attempts != 1 {
		t.Errorf("third row = %+v", d)
	}
	if ds, err := st.JobDeliveries(ctx, "job 1", "other"); err != nil || len(ds) != 0 {
		t.Errorf("JobDeliveries in another target = %+v, %v", ds, err)
	}
	rows, err := st.ReceiverDeliveries(ctx, "hook")
	if err != nil || len(rows) != 1 {
		t.Errorf("ReceiverDeliveries(hook) = %+v, %v", rows, err)
	}

	// last_error is cut at 1000 bytes, on a rune boundary.
	if err := st.RecordFailure(ctx, []store.DeliveryRef{ref(ids[1], "hook")}, t0, strings.Repeat("é", 800)); err != nil {
		t.Fatal(err)
	}
	if n := count(t, st, `SELECT octet_length(last_error) FROM notify_deliveries WHERE receiver = 'hook' AND event_id = $1`, ids[1]); n != 1000 {
		t.Errorf("last_error of %d bytes, want 1000", n)
	}
}

// TestPruneDeliveries: delivered rows older than the cutoff go, in batches;
// pending rows stay however old.
func TestPruneDeliveries(t *testing.T) {
	t.Parallel()
	st := storetest.NewStore(t)
	now := dbNow(t, st)
	exec(t, st, `
		INSERT INTO notify_deliveries (event_id, receiver, route, target, job_id, attempts, first_attempt_at, last_attempt_at, delivered_at)
		SELECT gen_random_uuid(), 'r', 'route', 'hz', 'job', 1, $1::timestamptz, $1::timestamptz, $1::timestamptz FROM generate_series(1, 5)`, now.Add(-old))
	exec(t, st, `
		INSERT INTO notify_deliveries (event_id, receiver, route, target, job_id, attempts, first_attempt_at, last_attempt_at, delivered_at)
		SELECT gen_random_uuid(), 'r', 'route', 'hz', 'job', 1, $1::timestamptz, $1::timestamptz, $1::timestamptz FROM generate_series(1, 2)`, now.Add(-recent))
	exec(t, st, `
		INSERT INTO notify_deliveries (event_id, receiver, route, target, job_id, attempts, last_error, first_attempt_at, last_attempt_at)
		VALUES (gen_random_uuid(), 'r', 'route', 'hz', 'job', 9, 'HTTP 500', $1, $1)`, now.Add(-old))

	var batches int
	pruned, locked, err := st.Prune(t.Context(), store.PruneConfig{Deliveries: retention, BatchSize: 2, Pause: time.Millisecond,
		OnBatch: func(store.PruneKind, int64) { batches++ }})
	if err != nil || !locked {
		t.Fatalf("Prune = %v, %v, %v", pruned, locked, err)
	}
	if pruned[store.PruneDeliveries] != 5 || pruned.Total() != 5 || batches != 3 {
		t.Errorf("pruned %v in %d batches, want 5 deliveries in 3", pruned, batches)
	}
	if n := count(t, st, `SELECT count(*) FROM notify_deliveries`); n != 3 {
		t.Errorf("%d rows left, want the 2 recent and the pending one", n)
	}
	// Zero keeps them.
	if pruned, _, err := st.Prune(t.Context(), store.PruneConfig{Progress: retention}); err != nil || pruned.Total() != 0 {
		t.Errorf("Prune without a deliveries retention = %v, %v", pruned, err)
	}
}

// TestDeliveredKeysByTheIDsAsAsked: an event id in upper case (a uuid's
// text in any case is the same uuid) is a key of Delivered's answer as
// asked, not only in PostgreSQL's lower-case form.
func TestDeliveredKeysByTheIDsAsAsked(t *testing.T) {
	t.Parallel()
	st := storetest.NewStore(t)
	upper := "018F0000-0000-7000-8000-0000000000AB"
	lower := strings.ToLower(upper)
	other := "018f0000-0000-7000-8000-0000000000cd"
	if err := st.RecordDelivered(t.Context(), []store.DeliveryRef{{EventID: upper, Receiver: "r", Route: "x", Target: "hz", JobID: "j"}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	got, err := st.Delivered(t.Context(), []string{upper, lower, other}, "r")
	if err != nil {
		t.Fatal(err)
	}
	if !got[upper] || !got[lower] || got[other] || len(got) != 2 {
		t.Errorf("Delivered = %v, want %s and %s", got, upper, lower)
	}
}

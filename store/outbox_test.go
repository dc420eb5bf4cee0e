package store_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"
	"testing"
	"time"

	jobevent "github.com/ossjobwatch/ossjobwatch/event"
	"github.com/ossjobwatch/ossjobwatch/store"
	"github.com/ossjobwatch/ossjobwatch/store/storetest"
)

var outboxObserved = time.Date(2026, 11, 24, 9, 30, 0, 0, time.UTC)

// insertJobs writes jobs × perJob events of target, a job's events spread
// over the insert order: job-0 #1, job-1 #1, …, job-0 #2, …
func insertJobs(t *testing.T, st *store.Store, target string, jobs, perJob int) []jobevent.Event {
	t.Helper()
	var evs []jobevent.Event
	for seq := 1; seq <= perJob; seq++ {
		for j := range jobs {
			evs = append(evs, storetest.NewEvent(t, target, fmt.Sprintf("job-%d", j), int64(seq), outboxObserved.Add(time.Duration(seq)*time.Minute)))
		}
	}
	storetest.InsertEvents(t, st, target, evs...)
	return evs
}

func ids(evs []jobevent.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.ID
	}
	return out
}

func outboxIDs(batch []store.OutboxEvent) []string {
	out := make([]string, len(batch))
	for i, ev := range batch {
		out[i] = ev.ID
	}
	return out
}

func pendingCount(t *testing.T, st *store.Store) int64 {
	t.Helper()
	n, _, err := st.OutboxStats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// ackAll is a publish function that acknowledges every event and records
// the batches it saw.
func ackAll(batches *[][]store.OutboxEvent) store.PublishFunc {
	return func(_ context.Context, events iter.Seq[store.OutboxEvent], ack func(string, time.Time)) error {
		batch := slices.Collect(events)
		*batches = append(*batches, batch)
		for _, ev := range batch {
			ack(ev.ID, time.Now())
		}
		return nil
	}
}

func TestRelayRoundPublishesInInsertOrderAndMarks(t *testing.T) {
	t.Parallel()
	st := storetest.NewStore(t)
	evs := insertJobs(t, st, "t1", 3, 2)

	var batches [][]store.OutboxEvent
	n, locked, err := st.RelayRound(t.Context(), 4, ackAll(&batches))
	if err != nil || !locked || n != 4 {
		t.Fatalf("RelayRound = %d, %v, %v; want 4, true, nil", n, locked, err)
	}
	got := batches[0]
	if want := ids(evs[:4]); !slices.Equal(outboxIDs(got), want) {
		t.Errorf("batch = %v, want the first 4 in insert order %v", outboxIDs(got), want)
	}
	first := got[0]
	if first.Target != "t1" || first.JobID != evs[0].JobID || first.Subject != evs[0].Subject ||
		first.Sequence != 1 || string(first.Payload) != string(evs[0].Payload) || !first.ObservedAt.Equal(evs[0].ObservedAt) {
		t.Errorf("first event = %+v, want %+v", first, evs[0])
	}
	if !slices.IsSorted(slices.Collect(func(yield func(int64) bool) {
		for _, ev := range got {
			yield(ev.Pos)
		}
	})) {
		t.Error("batch not in pos order")
	}
	if p := pendingCount(t, st); p != 2 {
		t.Errorf("pending after the round = %d, want 2", p)
	}

	batches = nil
	if n, _, err := st.RelayRound(t.Context(), 10, ackAll(&batches)); err != nil || n != 2 {
		t.Fatalf("second RelayRound = %d, %v; want 2, nil", n, err)
	}
	batches = nil
	if n, locked, err := st.RelayRound(t.Context(), 10, ackAll(&batches)); err != nil || n != 0 || !locked || len(batches) != 0 {
		t.Fatalf("RelayRound on an empty outbox = %d, %v, %v, %d batches; want 0, true, nil and no publish call", n, locked, err, len(batches))
	}
}

func TestRelayRoundMarksWhatWasAckedOnFailure(t *testing.T) {
	t.Parallel()
	st := storetest.NewStore(t)
	insertJobs(t, st, "t1", 4, 1)
	boom := errors.New("boom")

	n, _, err := st.RelayRound(t.Context(), 10, func(_ context.Context, events iter.Seq[store.OutboxEvent], ack func(string, time.Time)) error {
		batch := slices.Collect(events)
		ack(batch[0].ID, time.Now())
		ack(batch[1].ID, time.Now())
		return boom
	})
	if !errors.Is(err, boom) || n != 2 {
		t.Fatalf("RelayRound = %d, %v; want 2 and the publish error", n, err)
	}
	if p := pendingCount(t, st); p != 2 {
		t.Errorf("pending = %d, want the 2 not acknowledged", p)
	}
}

func TestRelayRoundMarksAfterCancel(t *testing.T) {
	t.Parallel()
	st := storetest.NewStore(t)
	insertJobs(t, st, "t1", 3, 1)
	ctx, cancel := context.WithCancel(t.Context())

	n, _, err := st.RelayRound(ctx, 10, func(ctx context.Context, events iter.Seq[store.OutboxEvent], ack func(string, time.Time)) error {
		batch := slices.Collect(events)
		cancel() // a shutdown while the acknowledgements came in
		for _, ev := range batch {
			ack(ev.ID, time.Now())
		}
		return ctx.Err()
	})
	if !errors.Is(err, context.Canceled) || n != 3 {
		t.Fatalf("RelayRound = %d, %v; want 3 marked and context.Canceled", n, err)
	}
	if p := pendingCount(t, st); p != 0 {
		t.Errorf("pending = %d, want 0: acknowledged events are marked despite the cancellation", p)
	}
}

func TestRelayRoundStopsPublishingWhenMarkingFails(t *testing.T) {
	t.Parallel()
	st := storetest.NewStore(t)
	insertJobs(t, st, "t1", 3, 1)

	var publishCtxErr error
	_, _, err := st.RelayRound(t.Context(), 10, func(ctx context.Context, events iter.Seq[store.OutboxEvent], ack func(string, time.Time)) error {
		batch := slices.Collect(events)
		ack(batch[0].ID, time.Now())
		var killed int
		if err := st.Pool().QueryRow(t.Context(), `
			SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid() AND xact_start IS NOT NULL`).Scan(&killed); err != nil || killed != 1 {
			t.Errorf("terminated %d relay connections (%v), want 1", killed, err)
		}
		ack(batch[1].ID, time.Now())
		select {
		case <-ctx.Done():
			publishCtxErr = ctx.Err()
		case <-time.After(10 * time.Second):
		}
		return publishCtxErr
	})
	if err == nil || !strings.Contains(err.Error(), "mark") {
		t.Fatalf("RelayRound = %v, want an error marking", err)
	}
	if publishCtxErr == nil {
		t.Error("publish went on after the transaction was lost")
	}
	if p := pendingCount(t, st); p != 3 {
		t.Errorf("pending = %d, want all 3: the marks were rolled back", p)
	}
}

func TestRelayRoundOneRelayAtATime(t *testing.T) {
	t.Parallel()
	st := storetest.NewStore(t)
	insertJobs(t, st, "t1", 2, 1)

	var inner [][]store.OutboxEvent
	var outer [][]store.OutboxEvent
	_, _, err := st.RelayRound(t.Context(), 10, func(ctx context.Context, events iter.Seq[store.OutboxEvent], ack func(string, time.Time)) error {
		batch := slices.Collect(events)
		n, locked, err := st.RelayRound(ctx, 10, ackAll(&inner))
		if n != 0 || locked || err != nil {
			t.Errorf("concurrent RelayRound = %d, %v, %v; want 0, false, nil", n, locked, err)
		}
		return ackAll(&outer)(ctx, slices.Values(batch), ack)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(inner) != 0 {
		t.Errorf("concurrent round published %d batches, want none", len(inner))
	}
}

func TestRelayRoundRejectsBadLimit(t *testing.T) {
	t.Parallel()
	st := storetest.NewStore(t)
	if _, _, err := st.RelayRound(t.Context(), 0, nil); err == nil {
		t.Error("RelayRound with limit 0 succeeded")
	}
}

func TestOutboxStats(t *testing.T) {
	t.Parallel()
	st := storetest.NewStore(t)
	if n, oldest, err := st.OutboxStats(t.Context()); err != nil || n != 0 || !oldest.IsZero() {
		t.Fatalf("OutboxStats on an empty outbox = %d, %v, %v; want 0, zero, nil", n, oldest, err)
	}
	insertJobs(t, st, "t1", 2, 3)
	n, oldest, err := st.OutboxStats(t.Context())
	if err != nil || n != 6 || !oldest.Equal(outboxObserved.Add(time.Minute)) {
		t.Fatalf("OutboxStats = %d, %v, %v; want 6, %v, nil", n, oldest, err, outboxObserved.Add(time.Minute))
	}
}

func TestEventsSince(t *testing.T) {
	t.Parallel()
	st := storetest.NewStore(t)
	a := insertJobs(t, st, "a", 2, 3) // observed at +1m, +2m, +3m
	b := insertJobs(t, st, "b", 1, 1)
	// Published or not makes no difference to a replay.
	var batches [][]store.OutboxEvent
	if _, _, err := st.RelayRound(t.Context(), 2, ackAll(&batches)); err != nil {
		t.Fatal(err)
	}

	owed := map[string]bool{}
	collect := func(since time.Time, target, jobID string) []string {
		var out []string
		for ev, err := range st.EventsSince(t.Context(), since, target, jobID) {
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, ev.ID)
			owed[ev.ID] = ev.Owed
		}
		return out
	}
	tests := []struct {
		name          string
		since         time.Time
		target, jobID string
		want          []string
	}{
		{"all", outboxObserved, "", "", append(ids(a), ids(b)...)},
		{"since", outboxObserved.Add(2 * time.Minute), "", "", ids(a[2:])},
		{"target", outboxObserved, "b", "", ids(b)},
		{"job", outboxObserved, "", "job-0", []string{a[0].ID, a[2].ID, a[4].ID, b[0].ID}},
		{"target and job", outboxObserved, "a", "job-1", []string{a[1].ID, a[3].ID, a[5].ID}},
		{"none", outboxObserved.Add(time.Hour), "", "", nil},
	}
	for _, tt := range tests {
		if got := collect(tt.since, tt.target, tt.jobID); !slices.Equal(got, tt.want) {
			t.Errorf("%s: EventsSince = %v, want %v", tt.name, got, tt.want)
		}
	}
	// The round published each job of a its first event; the rest is owed.
	for _, ev := range append(a, b...) {
		if want := ev.ID != a[0].ID && ev.ID != a[1].ID; owed[ev.ID] != want {
			t.Errorf("event %s #%d: Owed = %v, want %v", ev.JobID, ev.Sequence, owed[ev.ID], want)
		}
	}

	// Stopping early releases the connection.
	for range st.EventsSince(t.Context(), outboxObserved, "", "") {
		break
	}
	if got := collect(outboxObserved, "b", ""); !slices.Equal(got, ids(b)) {
		t.Errorf("EventsSince after an early stop = %v", got)
	}
}

func TestListenOutbox(t *testing.T) {
	t.Parallel()
	st := storetest.NewStore(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	errs := make(chan error, 10)
	ch := st.ListenOutbox(ctx, func(err error) { errs <- err })

	waitSignal := func(what string) {
		t.Helper()
		select {
		case _, ok := <-ch:
			if !ok {
				t.Fatalf("%s: channel closed", what)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no signal", what)
		}
	}
	waitSignal("on connecting")
	notify := func() {
		t.Helper()
		if _, err := st.Pool().Exec(t.Context(), `SELECT pg_notify($1, 't1')`, store.OutboxChannel); err != nil {
			t.Fatal(err)
		}
	}
	notify()
	waitSignal("on a notification")

	// Many notifications, one pending signal.
	for range 5 {
		notify()
	}
	waitSignal("on notifications")

	// The database drops the connection: the listener reports it,
	// reconnects and signals.
	var killed int
	if err := st.Pool().QueryRow(t.Context(), `
		SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid() AND query LIKE 'LISTEN %'`).Scan(&killed); err != nil || killed != 1 {
		t.Fatalf("terminated %d LISTEN connections (%v), want 1", killed, err)
	}
	select {
	case err := <-errs:
		t.Logf("reported: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("lost connection not reported")
	}
	// The reconnected listener signals, unless a signal from the
	// notifications above is still pending: wait until it is back.
	listening := func() bool {
		var n int
		err := st.Pool().QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND state = 'idle' AND query LIKE 'LISTEN %'`).Scan(&n)
		return err == nil && n == 1
	}
	for {
		waitSignal("after reconnecting")
		if listening() {
			break
		}
	}
	notify()
	waitSignal("on a notification after reconnecting")

	cancel()
	for range ch { // closed once the connection is
	}
}

// TestRelayRoundCommitsAcksWhenTheReadBreaks cuts the connection that streams
// a round's events while they are being published: the events acknowledged
// before the cut must still be marked, and the round must fail.
func TestRelayRoundCommitsAcksWhenTheReadBreaks(t *testing.T) {
	t.Parallel()
	st := storetest.NewStore(t)
	// Enough events that the server cannot have sent them all before the cut.
	insertJobs(t, st, "t1", 40000, 1)

	var acked []string
	n, _, err := st.RelayRound(t.Context(), 40000, func(ctx context.Context, events iter.Seq[store.OutboxEvent], ack func(string, time.Time)) error {
		i := 0
		for ev := range events {
			if i < 10 {
				ack(ev.ID, time.Now())
				acked = append(acked, ev.ID)
			}
			if i == 10 {
				var killed int
				if err := st.Pool().QueryRow(ctx, `
					SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
					WHERE datname = current_database() AND pid <> pg_backend_pid() AND query LIKE '%CROSS JOIN LATERAL%'`).Scan(&killed); err != nil {
					return err
				}
				if killed != 1 {
					t.Errorf("cut %d reading connections, want 1", killed)
				}
			}
			i++
		}
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "read outbox") {
		t.Fatalf("RelayRound err = %v, want the broken read", err)
	}
	if n != 10 {
		t.Errorf("marked %d, want the 10 acknowledged", n)
	}
	var marked int
	if err := st.Pool().QueryRow(t.Context(), `SELECT count(*) FROM job_events WHERE published_at IS NOT NULL AND id = ANY($1::uuid[])`, acked).Scan(&marked); err != nil {
		t.Fatal(err)
	}
	if marked != 10 {
		t.Errorf("%d of the 10 acknowledged events are marked published", marked)
	}
}

// TestRelayRoundRecordsAcknowledgementTimes checks that published_at is when
// each event was acknowledged, late in a round included, and never before
// the event was observed (the poller's clock may run ahead of the
// database's).
func TestRelayRoundRecordsAcknowledgementTimes(t *testing.T) {
	t.Parallel()
	st := storetest.NewStore(t)
	ahead := storetest.NewEvent(t, "t1", "ahead", 1, time.Now().Add(time.Hour))
	late := storetest.NewEvent(t, "t1", "late", 1, outboxObserved)
	storetest.InsertEvents(t, st, "t1", ahead, late)

	var lateAck time.Time
	n, _, err := st.RelayRound(t.Context(), 10, func(_ context.Context, events iter.Seq[store.OutboxEvent], ack func(string, time.Time)) error {
		batch := slices.Collect(events)
		ack(batch[0].ID, time.Now())
		// The second acknowledgement comes late in the round: after the
		// transaction began and after the first was marked.
		lateAck = time.Now()
		ack(batch[1].ID, lateAck)
		return nil
	})
	if err != nil || n != 2 {
		t.Fatalf("RelayRound = %d, %v; want 2, nil", n, err)
	}
	publishedAt := func(id string) (published, observed time.Time) {
		t.Helper()
		if err := st.Pool().QueryRow(t.Context(), `SELECT published_at, observed_at FROM job_events WHERE id = $1`, id).Scan(&published, &observed); err != nil {
			t.Fatal(err)
		}
		return published, observed
	}
	if p, o := publishedAt(ahead.ID); p.Before(o) {
		t.Errorf("event observed ahead of the clock: published_at %v before observed_at %v", p, o)
	}
	if p, _ := publishedAt(late.ID); p.Before(lateAck.Truncate(time.Microsecond)) {
		t.Errorf("event acknowledged late: published_at %v before its acknowledgement at %v", p, lateAck)
	}
}

// TestRelayRoundIdleTimeoutReleasesTheLock stalls a round, as a relay that
// vanished mid-round would: the server must end its session after
// IdleTimeout, releasing the relay lock, and the stalled round must not
// commit.
func TestRelayRoundIdleTimeoutReleasesTheLock(t *testing.T) {
	t.Parallel()
	st := storetest.NewStore(t)
	insertJobs(t, st, "t1", 3, 1)

	cfg := store.RelayRoundConfig{Limit: 10, IdleTimeout: 200 * time.Millisecond}
	var otherGotLock bool
	_, _, err := st.RelayRoundWith(t.Context(), cfg, func(ctx context.Context, events iter.Seq[store.OutboxEvent], ack func(string, time.Time)) error {
		batch := slices.Collect(events)
		// Stall, acknowledging nothing, until another round gets the lock.
		deadline := time.After(15 * time.Second)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			var batches [][]store.OutboxEvent
			n, locked, err := st.RelayRound(ctx, 10, ackAll(&batches))
			if err != nil {
				return err
			}
			if locked {
				otherGotLock = n == len(batch)
				break
			}
			select {
			case <-tick.C:
			case <-deadline:
				t.Error("the stalled round's lock was never released")
				return errors.New("stalled")
			}
		}
		ack(batch[0].ID, time.Now())
		return nil
	})
	if err == nil {
		t.Fatal("a round whose session the server ended succeeded")
	}
	t.Logf("stalled round: %v", err)
	if !otherGotLock {
		t.Error("the other round did not publish the events")
	}
	if p := pendingCount(t, st); p != 0 {
		t.Errorf("pending = %d, want 0", p)
	}
}

func TestRelayRoundRejectsBadConfig(t *testing.T) {
	t.Parallel()
	st := storetest.NewStore(t)
	if _, _, err := st.RelayRoundWith(t.Context(), store.RelayRoundConfig{Limit: 1, IdleTimeout: -time.Second}, nil); err == nil {
		t.Error("RelayRoundWith with a negative timeout succeeded")
	}
}

// TestLockRelay checks that a held relay lock stops relay rounds until it is
// released, and that releasing it wakes the listeners.
func TestLockRelay(t *testing.T) {
	t.Parallel()
	st := storetest.NewStore(t)
	insertJobs(t, st, "t1", 2, 1)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	wake := st.ListenOutbox(ctx, nil)
	<-wake // on connecting

	unlock, err := st.LockRelay(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var batches [][]store.OutboxEvent
	if n, locked, err := st.RelayRound(t.Context(), 10, ackAll(&batches)); n != 0 || locked || err != nil {
		t.Fatalf("RelayRound under LockRelay = %d, %v, %v; want 0, false, nil", n, locked, err)
	}
	unlock()
	unlock() // a second call does nothing
	select {
	case <-wake:
	case <-time.After(10 * time.Second):
		t.Fatal("unlock sent no notification")
	}
	if n, locked, err := st.RelayRound(t.Context(), 10, ackAll(&batches)); n != 2 || !locked || err != nil {
		t.Fatalf("RelayRound after unlock = %d, %v, %v; want 2, true, nil", n, locked, err)
	}

	// A relay round in progress makes LockRelay wait for it.
	insertJobs(t, st, "t2", 1, 1)
	locked := make(chan struct{})
	_, _, err = st.RelayRound(t.Context(), 10, func(ctx context.Context, events iter.Seq[store.OutboxEvent], ack func(string, time.Time)) error {
		go func() {
			unlock, err := st.LockRelay(t.Context())
			if err != nil {
				t.Error(err)
				return
			}
			unlock()
			close(locked)
		}()
		select {
		case <-locked:
			t.Error("LockRelay did not wait for the round")
		default:
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-locked:
	case <-time.After(10 * time.Second):
		t.Fatal("LockRelay did not get the lock after the round")
	}
}

// TestRelayRoundMarksEachEventAtItsOwnAcknowledgement acknowledges a round's
// events at distinct times, in orders and with gaps that take both ways of
// marking (by a range of positions, and event by event): every event must
// get its own time, and an event not acknowledged must stay pending,
// however close its neighbours.
func TestRelayRoundMarksEachEventAtItsOwnAcknowledgement(t *testing.T) {
	t.Parallel()
	reversed := func(b []store.OutboxEvent) []store.OutboxEvent {
		r := slices.Clone(b)
		slices.Reverse(r)
		return r
	}
	for _, tc := range []struct {
		name string
		// acked picks the events acknowledged, in the order they are.
		acked func(batch []store.OutboxEvent) []store.OutboxEvent
	}{
		{"all in order", func(b []store.OutboxEvent) []store.OutboxEvent { return b }},
		{"all reversed", reversed},
		{"all but one in the middle", func(b []store.OutboxEvent) []store.OutboxEvent {
			return slices.Concat(b[:len(b)/2], b[len(b)/2+1:])
		}},
		{"all but the last", func(b []store.OutboxEvent) []store.OutboxEvent { return b[:len(b)-1] }},
		{"every other one", func(b []store.OutboxEvent) []store.OutboxEvent {
			var odd []store.OutboxEvent
			for i := 1; i < len(b); i += 2 {
				odd = append(odd, b[i])
			}
			return odd
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := storetest.NewStore(t)
			insertJobs(t, st, "t1", 300, 1)
			// Distinct times, a millisecond apart, all after the events'
			// observed_at, in the order of acknowledgement.
			base := outboxObserved.Add(24 * time.Hour)
			want := map[string]time.Time{}
			var pending []string
			n, _, err := st.RelayRound(t.Context(), 1000, func(_ context.Context, events iter.Seq[store.OutboxEvent], ack func(string, time.Time)) error {
				batch := slices.Collect(events)
				acked := tc.acked(batch)
				for i, ev := range acked {
					at := base.Add(time.Duration(i) * time.Millisecond)
					want[ev.ID] = at
					ack(ev.ID, at)
				}
				for _, ev := range batch {
					if _, ok := want[ev.ID]; !ok {
						pending = append(pending, ev.ID)
					}
				}
				return nil
			})
			if err != nil || n != len(want) {
				t.Fatalf("RelayRound = %d, %v; want %d, nil", n, err, len(want))
			}
			rows, err := st.Pool().Query(t.Context(), `SELECT id::text, published_at, pos IN (SELECT pos FROM outbox) FROM job_events`)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			wrong := 0
			for rows.Next() {
				var id string
				var published *time.Time
				var queued bool
				if err := rows.Scan(&id, &published, &queued); err != nil {
					t.Fatal(err)
				}
				at, acked := want[id]
				switch {
				case acked && (published == nil || !published.Equal(at) || queued):
					wrong++
					if wrong <= 3 {
						t.Errorf("event %s acknowledged at %v: published_at %v, still in the outbox %v", id, at, published, queued)
					}
				case !acked && (published != nil || !queued):
					wrong++
					if wrong <= 3 {
						t.Errorf("event %s never acknowledged: published_at %v, in the outbox %v; want null and queued", id, published, queued)
					}
				}
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			if wrong > 3 {
				t.Errorf("... %d events wrong in all", wrong)
			}
			if p := pendingCount(t, st); p != int64(len(pending)) {
				t.Errorf("pending = %d, want the %d not acknowledged", p, len(pending))
			}
		})
	}
}

package poller_test

import (
	"sync"
	"testing"
	"time"

	"github.com/ossjobwatch/ossjobwatch/job"
	"github.com/ossjobwatch/ossjobwatch/oss/osssim"
	"github.com/ossjobwatch/ossjobwatch/poller"
)

// kindEvents returns the events of one type, in stored order.
func kindEvents(t *testing.T, b *bundle, typ string) []storedEvent {
	t.Helper()
	var out []storedEvent
	for _, e := range events(t, b.store) {
		if e.Type == "ossjobwatch.job."+typ {
			out = append(out, e)
		}
	}
	return out
}

// age moves a job's clocks back, as if the sweeps so far had happened that
// much earlier: the sweeps' clock is the database's, which a test cannot
// wind forward. The poller forgets what it held, as if restarted.
func age(t *testing.T, b *bundle, id, column string, by time.Duration) time.Time {
	t.Helper()
	var at time.Time
	err := b.store.Pool().QueryRow(t.Context(),
		`UPDATE jobs SET `+column+` = `+column+` - make_interval(secs => $2) WHERE job_id = $1 RETURNING `+column,
		id, by.Seconds()).Scan(&at)
	if err != nil {
		t.Fatal(err)
	}
	b.poller.Forget(b.target.Name) // read the rows again
	return at.UTC()
}

func mustTime(t *testing.T, v any) time.Time {
	t.Helper()
	s, _ := v.(string)
	at, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("not a time: %v", v)
	}
	return at
}

// A job whose status and counters stop moving for StallAfter is announced
// once per episode: across full and hot sweeps, a restart and two replicas
// at once. Jobs that keep moving, freeze for less, or wait in Suspended are
// not.
func TestStallIsAnnouncedOncePerEpisode(t *testing.T) {
	t.Parallel()
	b := setup(t, osssim.Config{EmptyWorld: true})
	b.target.StallAfter = time.Hour
	b.sim.Put(activeJob("frozen", 10))
	b.sim.Put(activeJob("moving", 10))
	suspended := activeJob("waiting", 0)
	suspended.Status = job.StatusSuspended
	b.sim.Put(suspended)
	sweep(t, b)

	round := int64(10)
	move := func() { round++; b.sim.Put(activeJob("moving", round)) }
	move()
	sweep(t, b)
	if n := len(kindEvents(t, b, "stalled")); n != 0 {
		t.Fatalf("%d stalled events after a freeze shorter than StallAfter", n)
	}

	// Two hours pass with nothing moving but "moving".
	since := age(t, b, "frozen", "activity_at", 2*time.Hour)
	age(t, b, "moving", "activity_at", 2*time.Hour)
	age(t, b, "waiting", "activity_at", 2*time.Hour)
	move()
	sweep(t, b)
	stalled := kindEvents(t, b, "stalled")
	if len(stalled) != 1 || stalled[0].JobID != "frozen" || !mustTime(t, stalled[0].Data["stalledSince"]).Equal(since) {
		t.Fatalf("stalled events %+v, want one for frozen with stalledSince %s", stalled, since)
	}
	if e := stalled[0]; e.Subject != "ossjobs.test-target.stalled" || e.Sequence != 2 || e.Data["baseline"] != false {
		t.Errorf("stalled event %+v", e)
	}

	// The episode goes on: hot and full sweeps, a restarted process, two
	// replicas at once: nobody announces it again.
	move()
	hotSweep(t, b.poller, b.target)
	move()
	sweep(t, b)
	restarted := newPoller(t, b.store)
	move()
	if _, err := restarted.Sweep(t.Context(), b.target, poller.Hot); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, p := range []*poller.Poller{newPoller(t, b.store), newPoller(t, b.store)} {
		wg.Go(func() {
			if _, err := p.SweepOnce(t.Context(), b.target); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := len(kindEvents(t, b, "stalled")); n != 1 {
		t.Fatalf("%d stalled events, want the episode announced once", n)
	}

	// It moves: the episode ends. It freezes again: a new episode.
	b.sim.Put(activeJob("frozen", 11))
	sweep(t, b)
	age(t, b, "frozen", "activity_at", 2*time.Hour)
	sweep(t, b)
	sweep(t, b)
	if stalled := kindEvents(t, b, "stalled"); len(stalled) != 2 || stalled[1].JobID != "frozen" {
		t.Fatalf("stalled events %v, want a second episode for frozen", stalled)
	}
}

// A job waiting in Suspended gets one confirmation_due per reminder, with
// when it was suspended and when OSS fails it; none once it leaves
// Suspended.
func TestConfirmationRemindersOnceEach(t *testing.T) {
	t.Parallel()
	b := setup(t, osssim.Config{EmptyWorld: true})
	p, err := poller.New(poller.Config{Store: b.store, Reminders: []time.Duration{312 * time.Hour, 24 * time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	b.poller = p
	created := time.Now().Add(-30 * time.Hour).Truncate(time.Second).UTC()
	waiting := activeJob("waiting", 0)
	waiting.Status, waiting.CreationTime, waiting.ConfirmationRequired = job.StatusSuspended, created, true
	b.sim.Put(waiting)
	b.sim.Put(activeJob("later", 5))
	sweep(t, b)

	// Discovered already Suspended: its suspension runs from its creation,
	// so the first reminder is due at once (the baseline's included).
	due := kindEvents(t, b, "confirmation_due")
	if len(due) != 1 || due[0].JobID != "waiting" || due[0].Data["baseline"] != false || due[0].Subject != "ossjobs.test-target.confirmation_due" {
		t.Fatalf("confirmation_due events %+v, want one for waiting", due)
	}
	if since, fails := mustTime(t, due[0].Data["suspendedSince"]), mustTime(t, due[0].Data["failsAt"]); !since.Equal(created) || !fails.Equal(created.Add(14*24*time.Hour)) {
		t.Errorf("suspendedSince %s, failsAt %s; want %s and 14 days later", since, fails, created)
	}
	sweep(t, b)
	if n := len(kindEvents(t, b, "confirmation_due")); n != 1 {
		t.Fatalf("%d confirmation_due events after a second sweep, want 1", n)
	}

	// 12 days later: the last reminder, once.
	since := age(t, b, "waiting", "suspended_since", 300*time.Hour)
	sweep(t, b)
	sweep(t, b)
	due = kindEvents(t, b, "confirmation_due")
	if len(due) != 2 || !mustTime(t, due[1].Data["suspendedSince"]).Equal(since) || !mustTime(t, due[1].Data["failsAt"]).Equal(since.Add(14*24*time.Hour)) {
		t.Fatalf("confirmation_due events %+v, want a second with suspendedSince %s", due, since)
	}

	// A job suspended under our eyes: its status event says until when.
	later := activeJob("later", 5)
	later.Status = job.StatusSuspended
	b.sim.Put(later)
	sweep(t, b)
	evs := events(t, b.store)
	last := evs[len(evs)-1]
	if last.JobID != "later" || last.To != "Suspended" {
		t.Fatalf("last event %s, want later's status change", last.key())
	}
	if since, fails := mustTime(t, last.Data["suspendedSince"]), mustTime(t, last.Data["failsAt"]); !since.Equal(mustTime(t, last.Data["observedAt"])) || !fails.Equal(since.Add(14*24*time.Hour)) {
		t.Errorf("status event into Suspended: suspendedSince %s failsAt %s", since, fails)
	}

	// Confirmed: no reminder any more, however long it was suspended.
	waiting.Status = job.StatusReady
	b.sim.Put(waiting)
	sweep(t, b)
	age(t, b, "later", "suspended_since", 0) // no-op, "later" stays
	sweep(t, b)
	if n := len(kindEvents(t, b, "confirmation_due")); n != 2 {
		t.Errorf("%d confirmation_due events after waiting left Suspended, want 2", n)
	}
	if n := count(t, b.store, `SELECT count(*) FROM jobs WHERE job_id = 'waiting' AND suspended_since IS NULL AND reminders_sent = 0`); n != 1 {
		t.Error("the suspension of a confirmed job is still recorded")
	}
}

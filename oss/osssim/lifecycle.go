package osssim

import (
	"time"

	"github.com/ossjobwatch/ossjobwatch/job"
)

// The lifecycle follows OSS's documented paths:
//
//	New → Preparing → (Suspended →) Ready → Active → Completing → Complete
//	Active ⇄ Pausing → Paused → Active (OSS resumes paused jobs by itself)
//	any non-terminal → Cancelling → Cancelled
//	any non-terminal → Failing → Failed
//
// A job may take more than one step in a tick, so a poller sees samples such
// as New → Ready or Active → Complete, as it does against OSS. Terminal jobs
// and jobs in a status outside the documented set never change.

// evolve moves one job for one tick.
func (w *world) evolve(e *entry, now time.Time) {
	if e.d.Status.Terminal() || !e.d.Status.Known() {
		return
	}
	if e.stallTick > 0 {
		w.stall(e)
		return
	}
	if e.d.Status == job.StatusActive {
		w.progress(e)
	}
	for range 3 {
		if !w.advance(e, now) || e.d.Status.Terminal() || w.rng.Float64() >= w.chain {
			return
		}
	}
}

// stall moves a job of Config.NeedsAttention: an active one progresses by 1%
// of its tasks a tick until its stallTick, and from then on only its active
// time grows; its status never changes. No random draws, so that the rest
// of the world evolves as it would without it.
func (w *world) stall(e *entry) {
	if e.d.Status != job.StatusActive {
		return
	}
	e.d.ElapsedActiveSeconds += w.activeStep
	if w.tick < e.stallTick {
		t := &e.d.Tasks
		t.Succeeded = min(t.Total-t.Failed, t.Succeeded+max(1, t.Total/100))
	}
}

// progress runs an active job's tasks for one tick. Counters only grow and
// their sum never passes the total.
func (w *world) progress(e *entry) {
	t := &e.d.Tasks
	e.d.ElapsedActiveSeconds += w.activeStep
	left := t.Total - t.Succeeded - t.Failed
	if left <= 0 {
		return
	}
	n := min(left, max(1, int64(float64(t.Total)*(0.03+0.2*w.rng.Float64())*w.pace)))
	var failed int64
	if w.rng.Float64() < 0.15 {
		failed = int64(float64(n) * 0.1 * w.rng.Float64())
	}
	t.Failed += failed
	t.Succeeded += n - failed
}

// advance makes at most one transition and reports whether it made one.
func (w *world) advance(e *entry, now time.Time) bool {
	d := &e.d
	p := w.pace
	r := w.rng.Float64()
	// Cancellation and system failure can strike any non-terminal job that
	// is not already on its way out.
	if d.Status != job.StatusCancelling && d.Status != job.StatusFailing && d.Status != job.StatusCompleting {
		switch {
		case r < 0.004*p:
			w.set(e, job.StatusCancelling, now)
			d.ConfirmationRequired = false
			d.StatusUpdateReason = "Cancelled by user request."
			return true
		case r < 0.006*p:
			w.fail(e, failures[w.rng.IntN(len(failures))], now)
			return true
		}
		r = w.rng.Float64()
	}
	switch d.Status {
	case job.StatusNew:
		return r < 0.5*p && w.set(e, job.StatusPreparing, now)
	case job.StatusPreparing:
		switch {
		case r < 0.1*p:
			d.ConfirmationRequired = true
			return w.set(e, job.StatusSuspended, now)
		case r < 0.5*p:
			return w.set(e, job.StatusReady, now)
		}
	case job.StatusSuspended:
		switch {
		case w.tick-e.suspendedTick >= w.suspendLimit:
			w.fail(e, confirmationTimeout, now)
			return true
		case r < 0.15*p:
			d.ConfirmationRequired = false
			d.StatusUpdateReason = "Confirmed by user."
			return w.set(e, job.StatusReady, now)
		}
	case job.StatusReady:
		return r < 0.5*p && w.set(e, job.StatusActive, now)
	case job.StatusActive:
		switch {
		case d.Tasks.Succeeded+d.Tasks.Failed >= d.Tasks.Total:
			return w.set(e, job.StatusCompleting, now)
		case r < 0.03*p:
			return w.set(e, job.StatusPausing, now)
		}
	case job.StatusPausing:
		return r < 0.6*p && w.set(e, job.StatusPaused, now)
	case job.StatusPaused:
		return r < 0.3*p && w.set(e, job.StatusActive, now)
	case job.StatusCompleting:
		return r < 0.6*p && w.set(e, job.StatusComplete, now)
	case job.StatusCancelling:
		return r < 0.6*p && w.set(e, job.StatusCancelled, now)
	case job.StatusFailing:
		return r < 0.6*p && w.set(e, job.StatusFailed, now)
	}
	return false
}

// fail sends a job to Failing with a reason.
func (w *world) fail(e *entry, f job.FailureReason, now time.Time) {
	e.d.ConfirmationRequired = false
	e.d.FailureReasons = append(e.d.FailureReasons, f)
	e.d.StatusUpdateReason = f.Reason
	w.set(e, job.StatusFailing, now)
}

// set records a transition; it returns true so callers can chain it.
func (w *world) set(e *entry, s job.Status, now time.Time) bool {
	e.d.Status = s
	switch {
	case s == job.StatusSuspended:
		e.suspendedTick = w.tick
	case s.Terminal():
		e.terminalTick = w.tick
		e.d.TerminationTime = now.Truncate(time.Second)
	}
	return true
}

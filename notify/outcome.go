package notify

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sethvargo/go-retry"

	"github.com/ossjobwatch/ossjobwatch/store"
)

// The outcome of a worker's request: recorded, then the events completed
// (their messages acknowledged once every receiver has them), retried
// after a wait, set aside (a refused content), or handed back.

// send makes one request with batch and records its outcome.
func (w *worker) send(ctx context.Context, batch []*pending, m Message, refs []store.DeliveryRef) {
	sctx, cancel := context.WithTimeout(ctx, w.s.cfg.SendTimeout)
	_, err := w.rc.Sender.Send(sctx, m)
	cancel()
	at := w.s.cfg.NowFunc()
	if err != nil {
		if ctx.Err() != nil {
			return // stopping: the message is handed back
		}
		w.failed(batch, refs, err)
		return
	}
	// Recorded before the ack, whatever happens to ctx meanwhile: a
	// redelivery must find it.
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer rcancel()
	rb := retry.WithMaxDuration(10*time.Second, retry.WithCappedDuration(2*time.Second, retry.NewExponential(50*time.Millisecond)))
	if err := retry.Do(rctx, rb, func(ctx context.Context) error {
		return retry.RetryableError(w.s.cfg.Store.RecordDelivered(ctx, refs, at))
	}); err != nil {
		// Not acknowledged: the messages come again after AckWait and this
		// receiver gets them again (at least once).
		w.log.Error("notify: delivered but not recorded; the events will be sent again", "events", len(refs), "err", err)
		w.drop(batch)
		return
	}
	w.mu.Lock()
	w.backoff = w.newBackoff()
	w.notBefore = time.Time{}
	w.mu.Unlock()
	if len(batch) > 1 {
		w.s.metrics.digests.WithLabelValues(w.rc.Name).Inc()
	}
	w.complete(batch)
}

// failed records a failed request with batch (nil: the database
// failed) and sets the wait before the next one. A refusal of the
// content (SendError.Content) does not hold the receiver: a single event
// is parked for SlowRetry while the others go on, and the events of a
// refused digest go one by one to find the one refused.
func (w *worker) failed(batch []*pending, refs []store.DeliveryRef, err error) {
	reason := "error"
	var se *SendError
	isSend := errors.As(err, &se)
	content := isSend && se.Content && len(batch) > 0
	var wait time.Duration
	if !content {
		// A refused content says nothing about the receiver: its backoff
		// is left as it is.
		w.mu.Lock()
		wait, _ = w.backoff.Next()
		w.mu.Unlock()
	}
	if isSend {
		reason = se.Reason
		if se.Slow || content {
			wait = w.s.cfg.SlowRetry
		}
		wait = max(wait, min(se.RetryAfter, w.s.cfg.MaxRetryAfter))
	} else if batch == nil {
		reason = "database"
	}
	msg := w.scrub(err.Error())
	w.s.metrics.failures.WithLabelValues(w.rc.Name, reason).Inc()
	switch {
	case content && len(batch) == 1:
		w.log.Warn("notify: the receiver refused an event's content; it waits aside while the others go on",
			"event", batch[0].ev.ID, "reason", reason, "retry_in", wait.Round(time.Millisecond), "err", msg)
	case content:
		w.log.Warn("notify: the receiver refused a digest's content; its events go one by one",
			"events", len(refs), "reason", reason, "err", msg)
	default:
		w.log.Warn("notify: delivery failed; retrying", "events", len(refs), "reason", reason, "retry_in", wait.Round(time.Millisecond), "err", msg)
	}
	if refs != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := w.s.cfg.Store.RecordFailure(ctx, refs, w.s.cfg.NowFunc(), msg); err != nil {
			w.log.Warn("notify: cannot record the failed attempt", "err", err)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case content && len(batch) == 1:
		batch[0].parkedUntil = time.Now().Add(wait)
		batch[0].alone = true
	case content:
		for _, p := range batch {
			p.alone = true
		}
	default:
		w.notBefore = time.Now().Add(wait)
	}
}

// complete removes batch from the queue and tells each message's tracker
// this receiver has it.
func (w *worker) complete(batch []*pending) {
	var waiters []*tracker
	w.mu.Lock()
	for _, p := range batch {
		w.remove(p)
		waiters = append(waiters, p.waiters...)
		routes := map[string]bool{}
		for _, t := range p.waiters {
			if !routes[t.r.Name] {
				routes[t.r.Name] = true
				w.s.metrics.deliveries.WithLabelValues(w.rc.Name, t.r.Name).Inc()
			}
		}
	}
	w.mu.Unlock()
	for _, t := range waiters {
		t.done()
	}
}

// drop removes batch from the queue without telling the trackers and
// hands their messages back (Nak) to come again after the backoff's wait
// rather than a whole AckWait; the worker waits as long before its next
// request, to give the database time.
func (w *worker) drop(batch []*pending) {
	var msgs []jetstream.Msg
	w.mu.Lock()
	wait, _ := w.backoff.Next()
	w.notBefore = time.Now().Add(wait)
	for _, p := range batch {
		w.remove(p)
		for _, t := range p.waiters {
			if t.r.untrack(t) {
				msgs = append(msgs, t.msg)
			}
		}
	}
	w.mu.Unlock()
	for _, m := range msgs {
		_ = m.NakWithDelay(wait) // a lost one comes again after AckWait
	}
}

// remove takes p out of the queue; w.mu is held.
func (w *worker) remove(p *pending) {
	if w.byID[p.key] != p {
		return
	}
	delete(w.byID, p.key)
	for i, q := range w.queue {
		if q == p {
			w.queue = append(w.queue[:i], w.queue[i+1:]...)
			break
		}
	}
}

package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sethvargo/go-retry"
)

// route is one route's consumer: it hands each message to the workers of
// the route's receivers and acknowledges it once they are all done.
type route struct {
	Route
	s        *Service
	consumer jetstream.Consumer
	workers  []*worker
	// downSince is when the route stopped consuming (Unix ns), 0 while
	// it consumes.
	downSince atomic.Int64

	mu       sync.Mutex
	inFlight map[*tracker]struct{}
}

// tracker follows one message until every receiver of its route is done
// with it.
type tracker struct {
	r       *route
	msg     jetstream.Msg
	pending atomic.Int32
}

// done is called once per receiver of the route when that receiver has
// the event; the last call acknowledges the message.
func (t *tracker) done() {
	if t.pending.Add(-1) != 0 {
		return
	}
	if !t.r.untrack(t) {
		return // handed back at Stop
	}
	if err := t.msg.Ack(); err != nil {
		// Redelivered after AckWait; every receiver is skipped then.
		t.r.s.log.Warn("notify: ack failed; the message will come again and be skipped", "route", t.r.Name, "err", err)
	}
}

func (r *route) track(t *tracker) {
	r.mu.Lock()
	r.inFlight[t] = struct{}{}
	r.mu.Unlock()
}

// untrack reports whether t was still tracked.
func (r *route) untrack(t *tracker) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.inFlight[t]
	delete(r.inFlight, t)
	return ok
}

// consume hands each message to the route's workers until ctx is done.
// When the consumer stops (deleted by an operator or a re-created
// stream, or its iterator failing for good), it is created again with
// the route's configuration and consuming resumes, with backoff between
// attempts. A consumer created anew starts at new messages (DeliverNew):
// events published while it was missing are not sent.
func (r *route) consume(ctx context.Context) {
	log := r.s.log.With("route", r.Name, "consumer", r.s.ConsumerName(r.Name))
	b := newRouteBackoff()
	for {
		began := time.Now()
		err := r.consumeOnce(ctx, log)
		r.setUp(false)
		if ctx.Err() != nil {
			return
		}
		if time.Since(began) > routeBackoffReset {
			b = newRouteBackoff()
		}
		for {
			wait, _ := b.Next()
			log.Error("notify: route not consuming; creating its consumer again", "err", err, "retry_in", wait.Round(time.Millisecond))
			if !sleep(ctx, wait) {
				return
			}
			if err = r.bind(ctx, log); err == nil {
				break
			}
		}
	}
}

// routeBackoffReset is how long a consumer must have run for the next
// failure to start the backoff afresh.
const routeBackoffReset = time.Minute

func newRouteBackoff() retry.Backoff {
	return retry.WithJitterPercent(20, retry.WithCappedDuration(time.Minute, retry.NewExponential(time.Second)))
}

// bind creates or updates the route's consumer.
func (r *route) bind(ctx context.Context, log *slog.Logger) error {
	cctx, cancel := context.WithTimeout(ctx, consumerTimeout)
	defer cancel()
	_, lookup := r.s.cfg.JetStream.Consumer(cctx, r.s.cfg.Stream, r.s.ConsumerName(r.Name))
	cons, err := r.s.cfg.JetStream.CreateOrUpdateConsumer(cctx, r.s.cfg.Stream, r.s.ConsumerConfig(r.RouteConfig))
	if err != nil {
		return fmt.Errorf("consumer %s on stream %s: %w", r.s.ConsumerName(r.Name), r.s.cfg.Stream, err)
	}
	if errors.Is(lookup, jetstream.ErrConsumerNotFound) {
		log.Warn("notify: the route's consumer was missing and is created anew; events published meanwhile are not sent")
	} else {
		log.Info("notify: the route's consumer is bound again")
	}
	r.consumer = cons
	return nil
}

// consumeOnce consumes with r.consumer until its iterator fails for good
// (the error says why) or ctx is done; messages still buffered then are
// handed back.
func (r *route) consumeOnce(ctx context.Context, log *slog.Logger) error {
	it, err := r.consumer.Messages(jetstream.PullMaxMessages(min(r.s.cfg.MaxAckPending, 500)),
		jetstream.WithMessagesErrOnMissingHeartbeat(true))
	if err != nil {
		return fmt.Errorf("consume: %w", err)
	}
	defer it.Stop()
	r.setUp(true)
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if ctx.Err() != nil {
			if err == nil {
				_ = msg.Nak()
			}
			handBack(it)
			return ctx.Err()
		}
		switch {
		case err == nil:
			r.dispatch(msg)
			continue
		case errors.Is(err, jetstream.ErrMsgIteratorClosed), errors.Is(err, jetstream.ErrConsumerDeleted), errors.Is(err, jetstream.ErrBadRequest):
			return err
		case errors.Is(err, jetstream.ErrNoHeartbeat):
			// The server stopped answering the pulls: the consumer may be
			// gone (deleted while the connection was down).
			ictx, cancel := context.WithTimeout(ctx, 10*time.Second)
			_, ierr := r.consumer.Info(ictx)
			cancel()
			if errors.Is(ierr, jetstream.ErrConsumerNotFound) {
				return fmt.Errorf("%w: %w", err, ierr)
			}
		}
		// The iterator recovers on its own (a missed heartbeat, a
		// reconnect); a pause keeps a lasting fault from spinning.
		log.Warn("notify: consumer", "err", err)
		if !sleep(ctx, time.Second) {
			return ctx.Err()
		}
	}
}

// handBack drains it and hands back (Nak) the messages it had buffered,
// for redelivery at once rather than after AckWait; it gives up after a
// couple of seconds (those left come again after AckWait).
func handBack(it jetstream.MessagesContext) {
	it.Drain()
	deadline := time.Now().Add(2 * time.Second)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return
		}
		msg, err := it.Next(jetstream.NextMaxWait(left))
		if err != nil {
			return
		}
		_ = msg.Nak()
	}
}

// setUp records whether the route is consuming, for the
// ossjobwatch_notify_route_up gauge and Service.RoutesDown.
func (r *route) setUp(up bool) {
	if up {
		r.downSince.Store(0)
		r.s.metrics.routeUp.WithLabelValues(r.Name).Set(1)
		return
	}
	r.downSince.CompareAndSwap(0, time.Now().UnixNano())
	r.s.metrics.routeUp.WithLabelValues(r.Name).Set(0)
}

// dispatch hands msg to every receiver of the route, or terminates it if
// it is not an event.
func (r *route) dispatch(msg jetstream.Msg) {
	ev, err := ParseEvent(msg.Subject(), msg.Data())
	if err == nil && !uuidPattern.MatchString(ev.ID) {
		err = errors.New("id " + quoteShort(ev.ID) + " is not an ossjobwatch event id")
	}
	if err != nil {
		r.s.metrics.malformed.WithLabelValues(r.Name).Inc()
		r.s.log.Error("notify: message is not an ossjobwatch event; terminated (it can never be delivered)",
			"route", r.Name, "subject", msg.Subject(), "bytes", len(msg.Data()), "err", err)
		if err := msg.Term(); err != nil {
			r.s.log.Warn("notify: term failed", "route", r.Name, "err", err)
		}
		return
	}
	since := r.s.cfg.NowFunc()
	if md, err := msg.Metadata(); err == nil && !md.Timestamp.IsZero() {
		since = md.Timestamp
	}
	t := &tracker{r: r, msg: msg}
	t.pending.Store(int32(len(r.workers)))
	r.track(t)
	for _, w := range r.workers {
		w.enqueue(ev, since, t)
	}
}

// heartbeat tells JetStream, every third of AckWait, that the messages in
// hand are being worked on, so none is redelivered while it waits for a
// receiver's rate or retries.
func (r *route) heartbeat(ctx context.Context) {
	tick := time.NewTicker(r.s.cfg.AckWait / 3)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		r.mu.Lock()
		msgs := make([]jetstream.Msg, 0, len(r.inFlight))
		for t := range r.inFlight {
			msgs = append(msgs, t.msg)
		}
		r.mu.Unlock()
		for _, m := range msgs {
			_ = m.InProgress() // a lost one: redelivered later, and skipped
		}
	}
}

// nakAll hands back the messages still in hand, for redelivery at once.
func (r *route) nakAll() {
	r.mu.Lock()
	msgs := make([]jetstream.Msg, 0, len(r.inFlight))
	for t := range r.inFlight {
		msgs = append(msgs, t.msg)
	}
	clear(r.inFlight)
	r.mu.Unlock()
	for _, m := range msgs {
		_ = m.Nak()
	}
}

func quoteShort(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return "\"" + s + "\""
}

package notify

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// route is one route's consumer: it hands each message to the workers of
// the route's receivers and acknowledges it once they are all done.
type route struct {
	Route
	s        *Service
	consumer jetstream.Consumer
	workers  []*worker

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
func (r *route) consume(ctx context.Context) {
	log := r.s.log.With("route", r.Name)
	it, err := r.consumer.Messages(jetstream.PullMaxMessages(min(r.s.cfg.MaxAckPending, 500)))
	if err != nil {
		log.Error("notify: cannot consume", "consumer", r.s.ConsumerName(r.Name), "err", err)
		return
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	defer it.Stop()
	for {
		msg, err := it.Next()
		switch {
		case errors.Is(err, jetstream.ErrMsgIteratorClosed):
			return
		case err != nil:
			if ctx.Err() != nil {
				return
			}
			// The iterator recovers on its own (a missed heartbeat, a
			// reconnect); a pause keeps a lasting fault (the consumer
			// deleted) from spinning.
			log.Warn("notify: consumer", "consumer", r.s.ConsumerName(r.Name), "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		r.dispatch(msg)
	}
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

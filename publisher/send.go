package publisher

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ossjobwatch/ossjobwatch/event"
	"github.com/ossjobwatch/ossjobwatch/store"
)

// maxDeferredPerInFlight bounds, as a multiple of the in-flight window, the
// events held back because their job has one in flight. Only a replay, which
// streams, can reach it: a relay round holds at most a batch.
const maxDeferredPerInFlight = 4

// sender publishes events asynchronously through a bounded window, never
// with two events of one job in flight.
type sender struct {
	js          jetstream.JetStream
	stream      string // acks from another stream are errors; "" accepts any
	maxInFlight int
	timeout     time.Duration
}

// jobKey identifies a job: job ids are unique within a target only.
type jobKey struct{ target, jobID string }

type flight struct {
	ev       store.OutboxEvent
	fut      jetstream.PubAckFuture
	deadline time.Time
}

// send publishes the events next yields, in order but for this: an event
// whose job has an event in flight is held back until that one is
// acknowledged, while the events after it go on. A job's events thus reach
// the stream in order, and one busy job does not stall the others.
//
// onAck is called, on send's goroutine, for each acknowledged event,
// duplicates included. At the first failure send stops publishing, waits
// for the events in flight (each within the timeout) and returns the error.
// If ctx is done it returns at once: the events in flight may or may not be
// stored, as after any failure.
func (s *sender) send(ctx context.Context, next func() (store.OutboxEvent, bool, error), onAck func(store.OutboxEvent, *jetstream.PubAck)) error {
	var (
		inFlight []flight // in publishing order
		// busy holds a job while it has an event in flight or in ready; its
		// value is the job's events held back, in order.
		busy      = map[jobKey][]store.OutboxEvent{}
		ready     []store.OutboxEvent // held back, now free to go, before new ones
		deferred  int                 // events held in busy
		exhausted bool
		failure   error
	)
	maxDeferred := maxDeferredPerInFlight * s.maxInFlight
	timer := time.NewTimer(s.timeout)
	defer timer.Stop()

	for {
		if failure == nil && ctx.Err() != nil {
			failure = context.Cause(ctx)
		}
		for failure == nil && len(inFlight) < s.maxInFlight {
			var ev store.OutboxEvent
			if len(ready) > 0 {
				ev, ready = ready[0], ready[1:]
			} else {
				if exhausted || deferred >= maxDeferred {
					break
				}
				var ok bool
				var err error
				if ev, ok, err = next(); err != nil {
					failure = err
					break
				} else if !ok {
					exhausted = true
					break
				}
				k := jobKey{ev.Target, ev.JobID}
				if held, isBusy := busy[k]; isBusy {
					busy[k] = append(held, ev)
					deferred++
					continue
				}
				busy[k] = nil
			}
			fut, err := s.js.PublishMsgAsync(message(ev))
			if err != nil {
				failure = fmt.Errorf("publish %s: %w", describe(ev), err)
				break
			}
			inFlight = append(inFlight, flight{ev: ev, fut: fut, deadline: time.Now().Add(s.timeout)})
		}
		if len(inFlight) == 0 {
			// Nothing in flight means nothing is held back either: a held
			// event's job has one in flight or ready.
			return failure
		}

		// Acknowledgements of one stream come in publishing order: waiting
		// for the oldest first costs nothing.
		f := inFlight[0]
		inFlight = inFlight[1:]
		ack, err := s.wait(ctx, f, timer)
		switch {
		case err != nil && ctx.Err() != nil:
			return cmpFailure(failure, err)
		case err != nil:
			failure = cmpFailure(failure, err)
		case s.stream != "" && ack.Stream != s.stream:
			failure = cmpFailure(failure, fmt.Errorf("publish %s: stored in stream %s, not %s: another stream captures the subject", describe(f.ev), ack.Stream, s.stream))
		default:
			onAck(f.ev, ack)
			k := jobKey{f.ev.Target, f.ev.JobID}
			if held := busy[k]; len(held) > 0 {
				ready = append(ready, held[0])
				busy[k] = held[1:]
				deferred--
			} else {
				delete(busy, k)
			}
		}
	}
}

// wait waits for f's acknowledgement until its deadline or ctx is done.
func (s *sender) wait(ctx context.Context, f flight, timer *time.Timer) (*jetstream.PubAck, error) {
	okCh, errCh := f.fut.Ok(), f.fut.Err()
	// An outcome already there wins over a deadline already past.
	select {
	case ack := <-okCh:
		return ack, nil
	case err := <-errCh:
		return nil, fmt.Errorf("publish %s: %w", describe(f.ev), err)
	default:
	}
	timer.Reset(time.Until(f.deadline))
	select {
	case ack := <-okCh:
		return ack, nil
	case err := <-errCh:
		return nil, fmt.Errorf("publish %s: %w", describe(f.ev), err)
	case <-timer.C:
		return nil, fmt.Errorf("publish %s: no acknowledgement within %s", describe(f.ev), s.timeout)
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// cmpFailure keeps the first failure: the later ones are its consequences.
func cmpFailure(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// message is an event as published: structured-mode CloudEvents, with the
// id as Nats-Msg-Id for JetStream's deduplication.
func message(ev store.OutboxEvent) *nats.Msg {
	return &nats.Msg{
		Subject: ev.Subject,
		Data:    ev.Payload,
		Header: nats.Header{
			jetstream.MsgIDHeader: []string{ev.ID},
			"Content-Type":        []string{event.ContentType},
		},
	}
}

func describe(ev store.OutboxEvent) string {
	return fmt.Sprintf("event %s (job %s #%d) to %s", ev.ID, ev.JobID, ev.Sequence, ev.Subject)
}

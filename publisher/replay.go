package publisher

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"iter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ossjobwatch/ossjobwatch/store"
)

// ReplayOptions selects the events to replay.
type ReplayOptions struct {
	// Since: events observed at or after it. Required.
	Since time.Time
	// Target and JobID narrow the events down; "" means any.
	Target, JobID string
	// Stream, if set, is the stream the events must land in, as
	// Config.Stream.
	Stream string
	// MaxInFlight and PublishTimeout are as in Config, with the same
	// defaults.
	MaxInFlight    int
	PublishTimeout time.Duration
}

// Replay publishes the stored events again, with their original ids,
// headers and subjects, in insert order and one job's events in sequence
// order, as the relay does. It leaves the outbox alone.
//
// Events the relay has not published yet are left to it: for each job,
// Replay stops at its first event still in the outbox. owed counts the
// events so left out. Replay holds the relay lock (store.LockRelay) from
// before it reads the events until it has published them, so no relay
// publishes meanwhile (a started relay logs a wait longer than its
// Config.LockWaitWarning); the relay then publishes what it owes, after the
// replay. From where the replay begins, the stream thus holds each replayed
// job's events in sequence order, then the job's newer events, in order.
//
// JetStream drops an event still within the stream's duplicate window: it
// acknowledges it as a duplicate and stores nothing. published counts the
// events JetStream acknowledged, duplicates those of them it dropped so. At
// the first failure Replay stops and returns the counts so far.
func Replay(ctx context.Context, st *store.Store, js jetstream.JetStream, opts ReplayOptions) (published, duplicates, owed int, err error) {
	switch {
	case st == nil:
		return 0, 0, 0, errors.New("replay: no store")
	case js == nil:
		return 0, 0, 0, errors.New("replay: no JetStream")
	case opts.Since.IsZero():
		return 0, 0, 0, errors.New("replay: ReplayOptions.Since is required")
	case opts.MaxInFlight < 0 || opts.PublishTimeout < 0:
		return 0, 0, 0, errors.New("replay: ReplayOptions.MaxInFlight and PublishTimeout must not be negative")
	}
	s := sender{
		js:          js,
		stream:      opts.Stream,
		maxInFlight: cmp.Or(opts.MaxInFlight, DefaultMaxInFlight),
		timeout:     cmp.Or(opts.PublishTimeout, DefaultPublishTimeout),
	}
	unlock, err := st.LockRelay(ctx)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("replay: %w", err)
	}
	defer unlock()
	next, stop := iter.Pull2(st.EventsSince(ctx, opts.Since, opts.Target, opts.JobID))
	defer stop()
	err = s.send(ctx, func() (store.OutboxEvent, bool, error) {
		for {
			ev, err, ok := next()
			if ok && err == nil && ev.Owed {
				owed++
				continue
			}
			return ev, ok, err
		}
	}, func(_ store.OutboxEvent, ack *jetstream.PubAck) {
		published++
		if ack.Duplicate {
			duplicates++
		}
	})
	if err != nil {
		return published, duplicates, owed, fmt.Errorf("replay: %w", err)
	}
	return published, duplicates, owed, nil
}

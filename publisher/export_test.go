package publisher

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ossjobwatch/ossjobwatch/store"
)

// Publish publishes a batch the way a relay round does, for tests that
// drive store.RelayRound themselves to break a round between ack and mark.
func (r *Relay) Publish(ctx context.Context, batch []store.OutboxEvent, onAck func(store.OutboxEvent, *jetstream.PubAck)) error {
	i := 0
	next := func() (store.OutboxEvent, bool, error) {
		if i == len(batch) {
			return store.OutboxEvent{}, false, nil
		}
		i++
		return batch[i-1], true, nil
	}
	return r.sender.send(ctx, next, onAck)
}

var Covers = covers

package publisher

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ossjobwatch/ossjobwatch/store"
)

// Publish exposes the relay's publishing of a batch, for tests that drive
// store.RelayRound themselves to break a round between ack and mark.
func (r *Relay) Publish(ctx context.Context, batch []store.OutboxEvent, onAck func(store.OutboxEvent, *jetstream.PubAck)) error {
	return r.publish(ctx, batch, onAck)
}

var Covers = covers

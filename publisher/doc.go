// Package publisher relays ossjobwatch's outbox to NATS JetStream: the
// events a sweep wrote to the job_events table, published to the stream in
// the order they were written.
//
// # Delivery guarantees
//
// At least once, never lost. A sweep writes its events in the transaction
// that updates the snapshots, so no change is published that was not
// stored, and none is stored that will not be published. The Relay marks an
// event published only after JetStream acknowledged it; an event it could
// not publish, or published but could not mark (a crash, a lost database
// connection), stays in the outbox and is published again.
//
// A second publication of an event carries the same Nats-Msg-Id, the event's
// id, so within the stream's duplicate window (at least 30 minutes, see
// EnsureStream) JetStream acknowledges it as a duplicate and stores nothing.
// Consumers that must not see an event twice, e.g. after a replay outside the
// window, deduplicate on the event id or on (jobId, sequence).
//
// Events of one job reach the stream in sequence order. One relay publishes
// at a time, whatever the number of replicas, under a PostgreSQL advisory
// lock; it publishes in insert order, and never has two events of one job in
// flight: a publish that timed out may still be stored later, so a job's
// next event waits for the previous one's acknowledgement. Events of
// different jobs are pipelined, up to Config.MaxInFlight at a time. The
// connection Connect makes does not buffer publishes while disconnected: a
// publish then fails at once and its event stays in the outbox, instead of
// being sent on reconnecting, perhaps after the duplicate window.
//
// Replay holds the same lock while it runs and republishes, per job, only
// the events up to the first one the relay has not published yet; the relay
// publishes the rest after it. From where a replay begins, the stream thus
// holds each replayed job's events in sequence order, then its newer ones.
// Taking each event id's first message, a job's events are always in
// sequence order.
//
// A relay round is one transaction with bounded waits (see
// store.RelayRoundConfig): a relay that vanishes mid-round loses the lock
// within about a minute. A relay whose rounds find the lock taken for
// longer than Config.LockWaitWarning logs it once; Relay.LockWait and
// Config.OnLockWait expose the wait. An event's published_at is when
// JetStream acknowledged it, on the relay's clock.
//
// # Messages
//
// Each event is one message, in CloudEvents structured mode: the body is the
// stored JSON byte for byte, on the stored subject, with the headers
// Nats-Msg-Id (the event id) and Content-Type (application/cloudevents+json)
// and no ce-* headers.
package publisher

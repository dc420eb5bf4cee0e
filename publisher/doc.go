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
// flight: a publish that failed or timed out may still be stored later (the
// client's reconnect buffer flushes it), so a job's next event waits for the
// previous one's acknowledgement. Events of different jobs are pipelined,
// up to Config.MaxInFlight at a time.
//
// # Messages
//
// Each event is one message, in CloudEvents structured mode: the body is the
// stored JSON byte for byte, on the stored subject, with the headers
// Nats-Msg-Id (the event id) and Content-Type (application/cloudevents+json)
// and no ce-* headers.
package publisher

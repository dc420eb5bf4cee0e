package store

import (
	"context"
	"fmt"
	"time"
	"unicode/utf8"
)

// What notify told whom: one notify_deliveries row per (event, receiver).
// A row with delivered_at set is never sent again: a message redelivered
// by JetStream (after a crash, or when its ack was lost) skips the
// receivers that already have it.

// DeliveryRef names one event for one receiver, with what a row copies
// from the event.
type DeliveryRef struct {
	EventID  string
	Receiver string
	Route    string
	Target   string
	JobID    string
}

// Delivery is one row of notify_deliveries.
type Delivery struct {
	DeliveryRef
	Attempts       int
	LastError      string
	FirstAttemptAt time.Time
	LastAttemptAt  time.Time
	DeliveredAt    time.Time // zero while pending
	DigestSize     int
}

// maxDeliveryError bounds the last_error kept, in bytes.
const maxDeliveryError = 1000

// Delivered returns which of eventIDs receiver has already accepted,
// keyed by the ids as given (a uuid's text in any case).
func (s *Store) Delivered(ctx context.Context, eventIDs []string, receiver string) (map[string]bool, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT a.id FROM unnest($1::text[]) AS a(id)
		JOIN notify_deliveries d ON d.event_id = a.id::uuid
		WHERE d.receiver = $2 AND d.delivered_at IS NOT NULL`, eventIDs, receiver)
	if err != nil {
		return nil, fmt.Errorf("read deliveries to %s: %w", receiver, err)
	}
	defer rows.Close()
	out := make(map[string]bool)
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("read deliveries to %s: %w", receiver, err)
		}
		out[id] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read deliveries to %s: %w", receiver, err)
	}
	return out, nil
}

// columns splits refs into the arrays the statements unnest.
func deliveryColumns(refs []DeliveryRef) (ids, receivers, routes, targets, jobs []string) {
	for _, r := range refs {
		ids = append(ids, r.EventID)
		receivers = append(receivers, r.Receiver)
		routes = append(routes, r.Route)
		targets = append(targets, r.Target)
		jobs = append(jobs, r.JobID)
	}
	return
}

// RecordFailure records a refused or failed request carrying refs: each
// row's attempts go up by one and last_error becomes errMsg (which the
// caller has stripped of secrets; it is cut to 1000 bytes). A row already
// delivered keeps its delivered_at.
func (s *Store) RecordFailure(ctx context.Context, refs []DeliveryRef, at time.Time, errMsg string) error {
	if len(refs) == 0 {
		return nil
	}
	if len(errMsg) > maxDeliveryError {
		errMsg = errMsg[:maxDeliveryError]
		for !utf8.ValidString(errMsg) {
			errMsg = errMsg[:len(errMsg)-1]
		}
	}
	ids, receivers, routes, targets, jobs := deliveryColumns(refs)
	_, err := s.pool.Exec(ctx, `
		INSERT INTO notify_deliveries AS d (event_id, receiver, route, target, job_id, attempts, last_error, first_attempt_at, last_attempt_at)
		SELECT u.event_id, u.receiver, u.route, u.target, u.job_id, 1, $6, $7, $7
		FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[]) AS u(event_id, receiver, route, target, job_id)
		ON CONFLICT (event_id, receiver) DO UPDATE
		SET attempts = d.attempts + 1, last_error = excluded.last_error, last_attempt_at = excluded.last_attempt_at`,
		ids, receivers, routes, targets, jobs, errMsg, at)
	if err != nil {
		return fmt.Errorf("record failed delivery of %d events: %w", len(refs), err)
	}
	return nil
}

// RecordDelivered records, in one statement, that a receiver accepted one
// request carrying refs: digest_size is len(refs), attempts go up by one.
// last_error keeps the last refusal, if any, for history. A row delivered
// before keeps its first delivered_at.
func (s *Store) RecordDelivered(ctx context.Context, refs []DeliveryRef, at time.Time) error {
	if len(refs) == 0 {
		return nil
	}
	ids, receivers, routes, targets, jobs := deliveryColumns(refs)
	_, err := s.pool.Exec(ctx, `
		INSERT INTO notify_deliveries AS d (event_id, receiver, route, target, job_id, attempts, first_attempt_at, last_attempt_at, delivered_at, digest_size)
		SELECT u.event_id, u.receiver, u.route, u.target, u.job_id, 1, $6, $6, $6, $7
		FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[]) AS u(event_id, receiver, route, target, job_id)
		ON CONFLICT (event_id, receiver) DO UPDATE
		SET attempts = d.attempts + 1, last_attempt_at = excluded.last_attempt_at,
		    delivered_at = coalesce(d.delivered_at, excluded.delivered_at),
		    digest_size = CASE WHEN d.delivered_at IS NULL THEN excluded.digest_size ELSE d.digest_size END`,
		ids, receivers, routes, targets, jobs, at, len(refs))
	if err != nil {
		return fmt.Errorf("record delivery of %d events: %w", len(refs), err)
	}
	return nil
}

// deliveryColumnsSQL are the columns queryDeliveries scans.
const deliveryColumnsSQL = `event_id::text, receiver, route, target, job_id, attempts, coalesce(last_error, ''),
	first_attempt_at, last_attempt_at, delivered_at, digest_size`

// JobDeliveries returns a job's notifications, in every target or in one,
// by event and receiver.
func (s *Store) JobDeliveries(ctx context.Context, jobID, target string) ([]Delivery, error) {
	out, err := s.queryDeliveries(ctx, `SELECT `+deliveryColumnsSQL+` FROM notify_deliveries
		WHERE job_id = $1 AND ($2 = '' OR target = $2) ORDER BY event_id, receiver`, jobID, target)
	if err != nil {
		return nil, fmt.Errorf("read deliveries of job %s: %w", jobID, err)
	}
	return out, nil
}

// ReceiverDeliveries returns every row of receiver, by event: the events
// it accepted and those still pending.
func (s *Store) ReceiverDeliveries(ctx context.Context, receiver string) ([]Delivery, error) {
	out, err := s.queryDeliveries(ctx, `SELECT `+deliveryColumnsSQL+` FROM notify_deliveries
		WHERE receiver = $1 ORDER BY event_id`, receiver)
	if err != nil {
		return nil, fmt.Errorf("read deliveries to %s: %w", receiver, err)
	}
	return out, nil
}

func (s *Store) queryDeliveries(ctx context.Context, sql string, args ...any) ([]Delivery, error) {
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		var d Delivery
		var first, last, delivered *time.Time
		if err := rows.Scan(&d.EventID, &d.Receiver, &d.Route, &d.Target, &d.JobID, &d.Attempts, &d.LastError,
			&first, &last, &delivered, &d.DigestSize); err != nil {
			return nil, err
		}
		for _, p := range []struct{ src, dst *time.Time }{{first, &d.FirstAttemptAt}, {last, &d.LastAttemptAt}, {delivered, &d.DeliveredAt}} {
			if p.src != nil {
				*p.dst = *p.src
			}
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

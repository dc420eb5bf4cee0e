package store

import (
	"context"
	"fmt"
	"time"
)

// HistoryEvent is one row of a job's history.
type HistoryEvent struct {
	// ID is the event's id (the CloudEvent id).
	ID          string
	Target      string
	JobID       string
	Sequence    int64
	Type        string
	Subject     string
	FromStatus  string
	ToStatus    string
	ObservedAt  time.Time
	PublishedAt time.Time // zero while pending
	// Payload is the event exactly as published.
	Payload []byte
}

// History returns a job's events in order, in every target or in one.
func (s *Store) History(ctx context.Context, jobID, target string) ([]HistoryEvent, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT id::text, target, job_id, sequence, type, subject, coalesce(from_status, ''), coalesce(to_status, ''),
		       observed_at, published_at, payload
		FROM job_events
		WHERE job_id = $1 AND ($2 = '' OR target = $2)
		ORDER BY target, sequence`, jobID, target)
	if err != nil {
		return nil, fmt.Errorf("read history of job %s: %w", jobID, err)
	}
	defer rows.Close()
	var out []HistoryEvent
	for rows.Next() {
		var e HistoryEvent
		var published *time.Time
		if err := rows.Scan(&e.ID, &e.Target, &e.JobID, &e.Sequence, &e.Type, &e.Subject, &e.FromStatus, &e.ToStatus,
			&e.ObservedAt, &published, &e.Payload); err != nil {
			return nil, fmt.Errorf("read history of job %s: %w", jobID, err)
		}
		if published != nil {
			e.PublishedAt = *published
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read history of job %s: %w", jobID, err)
	}
	return out, nil
}

package store

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// The console's live view.

// LiveEvent is an event as the console's live view shows it.
type LiveEvent struct {
	Pos      int64
	ID       string
	Target   string
	JobID    string
	Sequence int64
	Type     string
	From, To string
	// Status, Operation and Description are the job's at the event
	// (data.status, data.operation, data.description).
	Status      string
	Operation   string
	Description string
	ObservedAt  time.Time
	Payload     []byte
	// Matches is whether the EventFilter EventsAfter was given keeps the
	// event: PostgreSQL decides, as for RecentEvents, so that the live
	// page and its stream filter alike.
	Matches bool
}

// EventFilter narrows the live view; empty fields narrow nothing.
type EventFilter struct {
	Target string
	// Status is the job's status at the event (data.status).
	Status string
	// Type is the event's kind, such as status_changed, without the
	// ossjobwatch.job. prefix.
	Type string
	// Text must occur in the job id or description, ignoring case.
	Text string
}

// PosRange is a range of job_events positions, both ends included.
type PosRange struct{ From, To int64 }

const (
	liveEventColumns = `pos, id, target, job_id, sequence, type, coalesce(from_status, ''), coalesce(to_status, ''),
		coalesce(payload->'data'->>'status', ''), coalesce(payload->'data'->>'operation', ''),
		coalesce(payload->'data'->>'description', ''), observed_at, payload::text`

	// liveMatch is an EventFilter ($2 target, $3 status, $4 type, $5
	// text) as SQL, the text lowered by PostgreSQL on both sides: the
	// same folding whatever the database's locale.
	liveMatch = `($2 = '' OR target = $2)
		  AND ($3 = '' OR payload->'data'->>'status' = $3)
		  AND ($4 = '' OR type = 'ossjobwatch.job.' || $4)
		  AND ($5 = '' OR strpos(lower(job_id), lower($5)) > 0 OR strpos(lower(coalesce(payload->'data'->>'description', '')), lower($5)) > 0)`

	consoleRecentEventsSQL = `
		SELECT ` + liveEventColumns + `
		FROM job_events
		WHERE pos > $1 AND ` + liveMatch + `
		ORDER BY pos DESC
		LIMIT $6`
	consoleTopSQL = `SELECT coalesce(max(pos), 0) FROM job_events`
	// consoleMissingSQL lists the positions in ($1, $2] no row has, as
	// ranges: the positions ($2 + 1 closes the last range) whose rows
	// are not committed yet, or never will be.
	consoleMissingSQL = `
		SELECT prev + 1, pos - 1
		FROM (SELECT pos, lag(pos, 1, $1::int8) OVER (ORDER BY pos) AS prev
		      FROM (SELECT pos FROM job_events WHERE pos > $1 AND pos <= $2 UNION ALL SELECT $2::int8 + 1) AS p) AS g
		WHERE pos > prev + 1
		ORDER BY pos`
	consoleHolesSQL    = `SELECT ` + liveEventColumns + `, ` + liveMatch + ` FROM job_events JOIN unnest($1::int8[], $6::int8[]) AS h(lo, hi) ON pos BETWEEN h.lo AND h.hi ORDER BY pos`
	consoleEventsAfter = `SELECT ` + liveEventColumns + `, ` + liveMatch + ` FROM job_events WHERE pos > $1 ORDER BY pos LIMIT $6`
)

// RecentEventsWindow is how many of the latest events RecentEvents looks
// through, whatever the filter: a filter nothing matches reads that many
// rows, not the whole history.
const RecentEventsWindow = 20000

// MissingWindow is how many positions below the one a live view starts
// after are checked for rows not committed yet: rows a transaction took
// those positions for may commit after the view was read.
const MissingWindow = 2000

// RecentEvents returns the newest events f matches among the latest
// RecentEventsWindow, newest first, at most limit, the position of the
// latest event, and, as ranges, the positions among the MissingWindow up
// to it that no row has: rows that may yet commit.
func (r *Reader) RecentEvents(ctx context.Context, f EventFilter, limit int) (events []LiveEvent, top int64, missing []PosRange, err error) {
	err = r.WithTx(ctx, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, consoleTopSQL).Scan(&top); err != nil {
			return err
		}
		if missing, err = missingBelow(ctx, tx, top); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, consoleRecentEventsSQL, top-RecentEventsWindow, f.Target, f.Status, f.Type, f.Text, limit)
		if err != nil {
			return err
		}
		events, err = pgx.CollectRows(rows, scanLiveEventRow)
		for i := range events {
			events[i].Matches = true
		}
		return err
	})
	if err != nil {
		return nil, 0, nil, fmt.Errorf("read recent events: %w", err)
	}
	return events, top, missing, nil
}

// MissingBelow returns, as ranges, the positions among the MissingWindow
// up to pos that no row has.
func (r *Reader) MissingBelow(ctx context.Context, pos int64) ([]PosRange, error) {
	var out []PosRange
	err := r.WithTx(ctx, func(tx pgx.Tx) (err error) {
		out, err = missingBelow(ctx, tx, pos)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read missing events below %d: %w", pos, err)
	}
	return out, nil
}

func missingBelow(ctx context.Context, tx pgx.Tx, pos int64) ([]PosRange, error) {
	rows, err := tx.Query(ctx, consoleMissingSQL, max(0, pos-MissingWindow), pos)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[PosRange])
}

// EventsAfter reads, from one snapshot, the events in holes (positions
// below the caller's high-water mark that it has not seen: a transaction
// that took them had not committed yet) and up to limit events after
// after, all in position order. latest is the position of the newest event
// when the limit was reached, so that a caller may skip ahead; 0 otherwise.
func (r *Reader) EventsAfter(ctx context.Context, f EventFilter, after int64, holes []PosRange, limit int) (inHoles, next []LiveEvent, latest int64, err error) {
	err = r.WithTx(ctx, func(tx pgx.Tx) error {
		if len(holes) > 0 {
			lo, hi := make([]int64, len(holes)), make([]int64, len(holes))
			for i, h := range holes {
				lo[i], hi[i] = h.From, h.To
			}
			rows, err := tx.Query(ctx, consoleHolesSQL, lo, f.Target, f.Status, f.Type, f.Text, hi)
			if err != nil {
				return err
			}
			if inHoles, err = pgx.CollectRows(rows, scanMatchedLiveEventRow); err != nil {
				return err
			}
		}
		rows, err := tx.Query(ctx, consoleEventsAfter, after, f.Target, f.Status, f.Type, f.Text, limit)
		if err != nil {
			return err
		}
		if next, err = pgx.CollectRows(rows, scanMatchedLiveEventRow); err != nil {
			return err
		}
		if len(next) == limit {
			return tx.QueryRow(ctx, consoleTopSQL).Scan(&latest)
		}
		return nil
	})
	if err != nil {
		return nil, nil, 0, fmt.Errorf("read events after %d: %w", after, err)
	}
	return inHoles, next, latest, nil
}

func scanLiveEventRow(row pgx.CollectableRow) (LiveEvent, error) {
	var e LiveEvent
	var id uuid.UUID
	var payload string
	err := row.Scan(&e.Pos, &id, &e.Target, &e.JobID, &e.Sequence, &e.Type, &e.From, &e.To,
		&e.Status, &e.Operation, &e.Description, &e.ObservedAt, &payload)
	e.ID, e.Payload = id.String(), []byte(payload)
	return e, err
}

func scanMatchedLiveEventRow(row pgx.CollectableRow) (LiveEvent, error) {
	var e LiveEvent
	var id uuid.UUID
	var payload string
	err := row.Scan(&e.Pos, &id, &e.Target, &e.JobID, &e.Sequence, &e.Type, &e.From, &e.To,
		&e.Status, &e.Operation, &e.Description, &e.ObservedAt, &payload, &e.Matches)
	e.ID, e.Payload = id.String(), []byte(payload)
	return e, err
}

package store

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// The web console's queries. The console reads through a Reader, whose
// every method runs in a read-only transaction (WithReadTx): it cannot
// write, whatever a request asks, and it cannot be made to by a bug of its
// own, as PostgreSQL refuses a write in a READ ONLY transaction.

// consoleStatementTimeout bounds each statement of a console page: a page
// that would take longer answers with an error rather than hold a
// connection a sweep needs.
const consoleStatementTimeout = 10 * time.Second

// WithReadTx runs fn in a READ ONLY, REPEATABLE READ transaction: every
// query of fn sees one snapshot of the database, and any write fails with
// SQLSTATE 25006 (read_only_sql_transaction). Each statement is bounded by a
// statement timeout of 10 seconds. The transaction is committed, which for
// a read-only one only ends it, or rolled back as WithTx does.
func (s *Store) WithReadTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return s.withTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT set_config('statement_timeout', $1, true)`, millis(consoleStatementTimeout)); err != nil {
			return fmt.Errorf("bound read-only transaction: %w", err)
		}
		return fn(tx)
	})
}

// Reader is the store as the web console sees it: named queries that only
// read, each in a read-only transaction.
type Reader struct {
	s *Store
}

// Reader returns the store's read-only view.
func (s *Store) Reader() *Reader { return &Reader{s: s} }

// WithTx runs fn in a read-only transaction: see Store.WithReadTx. Every
// method of Reader uses it.
func (r *Reader) WithTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return r.s.WithReadTx(ctx, fn)
}

// consoleJobColumns are the columns scanJobRow reads.
const consoleJobColumns = `target, job_id, status, coalesce(operation, ''), coalesce(description, ''), coalesce(priority, 0),
	creation_time, termination_time,
	coalesce(tasks_total, 0), coalesce(tasks_succeeded, 0), coalesce(tasks_failed, 0),
	coalesce(elapsed_active_seconds, 0), first_seen_at, last_seen_at,
	status_since, activity_at, stalled_at, suspended_since, reminders_sent`

// StatusCount is how many live jobs of a target are in a status.
type StatusCount struct {
	Target string
	Status string
	Jobs   int
}

// LastSweep is a target's latest sweep record.
type LastSweep struct {
	Target     string
	ID         string
	Mode       string // full or hot
	StartedAt  time.Time
	FinishedAt time.Time // zero while it runs, or if its process died
	Pages      int
	JobsListed int
	Events     int
	Complete   bool
	Error      string
	// LastCompleteAt is when the target's latest complete sweep started;
	// zero if none is recorded.
	LastCompleteAt time.Time
}

// Overview is what the console's first page shows.
type Overview struct {
	// Now is the database's clock when the page was read.
	Now time.Time
	// Targets are the targets swept or being swept, in name order.
	Targets []string
	// Attention lists the jobs that need a human: those awaiting
	// confirmation (Suspended), soonest to fail first, then the stalled
	// ones, longest stalled first; at most AttentionLimit of them.
	Attention []JobRow
	// AttentionMore is true when more jobs than AttentionLimit need
	// attention: Attention shows the first of them.
	AttentionMore bool
	// Sweeps holds each target's latest sweep, in target order.
	Sweeps []LastSweep
	// OutboxPending counts the events not yet published to NATS;
	// OutboxOldest is when the oldest of them was observed (zero if none).
	OutboxPending int64
	OutboxOldest  time.Time
}

// AttentionLimit caps Overview.Attention.
const AttentionLimit = 100

const (
	// consoleCountsSQL is an index-only scan of jobs_console_idx.
	consoleCountsSQL = `SELECT target, status, count(*) FROM jobs WHERE removed_at IS NULL GROUP BY target, status ORDER BY target, status`

	// consoleTargetsSQL reads the targets applied at least once and those
	// only ever swept unsuccessfully, skipping through the sweeps index
	// from one target to the next rather than reading every sweep.
	consoleTargetsSQL = `
		WITH RECURSIVE swept AS (
			(SELECT target FROM sweeps ORDER BY target LIMIT 1)
			UNION ALL
			SELECT (SELECT s.target FROM sweeps s WHERE s.target > swept.target ORDER BY s.target LIMIT 1)
			FROM swept WHERE swept.target IS NOT NULL
		)
		SELECT target FROM swept WHERE target IS NOT NULL
		UNION
		SELECT target FROM targets
		ORDER BY 1`

	consoleLastSweepSQL = `
		SELECT t.target, s.id, s.mode, s.started_at, s.finished_at, s.pages, s.jobs_listed, s.events, s.complete,
		       coalesce(s.error, ''),
		       (SELECT c.started_at FROM sweeps c WHERE c.target = t.target AND c.complete ORDER BY c.started_at DESC LIMIT 1)
		FROM unnest($1::text[]) AS t(target)
		CROSS JOIN LATERAL (SELECT * FROM sweeps WHERE target = t.target ORDER BY started_at DESC LIMIT 1) AS s
		ORDER BY t.target`

	// consoleAttentionSQL reads jobs_attention_idx's jobs.
	consoleAttentionSQL = `
		SELECT ` + consoleJobColumns + `
		FROM jobs
		WHERE removed_at IS NULL AND ` + unfinishedCondition + `
		  AND (stalled_at IS NOT NULL OR status = 'Suspended')
		ORDER BY status = 'Suspended' DESC, suspended_since NULLS LAST, activity_at NULLS LAST, target, job_id
		LIMIT $1`

	consoleOutboxSQL = `
		SELECT (SELECT count(*) FROM outbox),
		       (SELECT e.observed_at FROM job_events e WHERE e.pos = (SELECT min(pos) FROM outbox))`
)

// JobCounts counts the live jobs by target and status, with an index-only
// scan of jobs_console_idx: tens of milliseconds at 100,000 jobs, which is
// why the console keeps the answer for a few seconds.
func (r *Reader) JobCounts(ctx context.Context) ([]StatusCount, error) {
	var out []StatusCount
	err := r.WithTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, consoleCountsSQL)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, pgx.RowToStructByPos[StatusCount])
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("count jobs: %w", err)
	}
	return out, nil
}

// Overview reads the console's overview, but for the counts (JobCounts),
// from one snapshot.
func (r *Reader) Overview(ctx context.Context) (Overview, error) {
	var o Overview
	err := r.WithTx(ctx, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT now()`).Scan(&o.Now); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, consoleTargetsSQL)
		if err != nil {
			return err
		}
		if o.Targets, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return fmt.Errorf("list targets: %w", err)
		}
		rows, err = tx.Query(ctx, consoleLastSweepSQL, o.Targets)
		if err != nil {
			return err
		}
		if o.Sweeps, err = pgx.CollectRows(rows, scanLastSweep); err != nil {
			return fmt.Errorf("read last sweeps: %w", err)
		}
		// One more than shown tells AttentionLimit jobs from more.
		rows, err = tx.Query(ctx, consoleAttentionSQL, AttentionLimit+1)
		if err != nil {
			return err
		}
		if o.Attention, err = pgx.CollectRows(rows, scanJobRow); err != nil {
			return fmt.Errorf("read jobs needing attention: %w", err)
		}
		if len(o.Attention) > AttentionLimit {
			o.Attention, o.AttentionMore = o.Attention[:AttentionLimit], true
		}
		var oldest *time.Time
		if err := tx.QueryRow(ctx, consoleOutboxSQL).Scan(&o.OutboxPending, &oldest); err != nil {
			return fmt.Errorf("read outbox: %w", err)
		}
		o.OutboxOldest = utcOrZero(oldest)
		return nil
	})
	if err != nil {
		return Overview{}, fmt.Errorf("console overview: %w", err)
	}
	return o, nil
}

func scanLastSweep(row pgx.CollectableRow) (LastSweep, error) {
	var s LastSweep
	var id uuid.UUID
	var finished, complete *time.Time
	err := row.Scan(&s.Target, &id, &s.Mode, &s.StartedAt, &finished, &s.Pages, &s.JobsListed, &s.Events, &s.Complete, &s.Error, &complete)
	s.ID, s.FinishedAt, s.LastCompleteAt = id.String(), utcOrZero(finished), utcOrZero(complete)
	return s, err
}

// Targets lists the targets swept or being swept, in name order.
func (r *Reader) Targets(ctx context.Context) ([]string, error) {
	var out []string
	err := r.WithTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, consoleTargetsSQL)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list targets: %w", err)
	}
	return out, nil
}

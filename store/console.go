package store

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
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
		rows, err = tx.Query(ctx, consoleAttentionSQL, AttentionLimit)
		if err != nil {
			return err
		}
		if o.Attention, err = pgx.CollectRows(rows, scanJobRow); err != nil {
			return fmt.Errorf("read jobs needing attention: %w", err)
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

// JobCursor is a position in the jobs list, which is ordered newest first
// by creation time (jobs without one last), then by target and job id,
// both descending.
type JobCursor struct {
	// Created is the job's creation time; zero for a job without one.
	Created time.Time
	Target  string
	JobID   string
}

func cursorOf(j JobRow) *JobCursor {
	return &JobCursor{Created: j.CreationTime, Target: j.Target, JobID: j.JobID}
}

// JobsPageQuery selects a page of live jobs. The zero value selects the
// newest jobs of every target.
type JobsPageQuery struct {
	Target    string
	Statuses  []string
	Operation string
	// Text keeps the jobs whose id or description contains it, ignoring
	// case.
	Text string
	// CreatedFrom and CreatedTo keep the jobs created at or after From and
	// before To; zero bounds nothing.
	CreatedFrom, CreatedTo time.Time
	// After asks for the page of jobs older than the cursor, Before for
	// the page newer than it; at most one may be set. Neither: the newest.
	After, Before *JobCursor
	// Limit is the page size. Defaults to 50; at most 500.
	Limit int
}

// JobsPage is a page of jobs, newest first.
type JobsPage struct {
	Jobs []JobRow
	// Older is the cursor of the next page of older jobs, nil if there is
	// none; Newer that of the page of newer ones, nil if this page is the
	// first.
	Older, Newer *JobCursor
}

// consoleJobKey is the leading column of jobs_console_idx.
const consoleJobKey = `coalesce(creation_time, '-infinity'::timestamptz)`

// where returns q's conditions but the text filter's, the text filter's
// condition ("" for none), and the arguments of both, values only ever as
// arguments.
func (q JobsPageQuery) where() (base, text string, args []any) {
	conds := []string{"removed_at IS NULL"}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if q.Target != "" {
		conds = append(conds, "target = "+arg(q.Target))
	}
	if len(q.Statuses) > 0 {
		conds = append(conds, "status = ANY("+arg(q.Statuses)+"::text[])")
	}
	if q.Operation != "" {
		conds = append(conds, "operation = "+arg(q.Operation))
	}
	if q.Text != "" {
		t := arg(strings.ToLower(q.Text))
		text = "(strpos(lower(job_id), " + t + ") > 0 OR strpos(lower(coalesce(description, '')), " + t + ") > 0)"
	}
	if !q.CreatedFrom.IsZero() {
		conds = append(conds, consoleJobKey+" >= "+arg(q.CreatedFrom))
	}
	if !q.CreatedTo.IsZero() {
		conds = append(conds, consoleJobKey+" < "+arg(q.CreatedTo))
	}
	cursor := func(c *JobCursor, op string) {
		conds = append(conds, fmt.Sprintf("(%s, target, job_id) %s (coalesce(%s::timestamptz, '-infinity'::timestamptz), %s, %s)",
			consoleJobKey, op, arg(timeOrNull(c.Created)), arg(c.Target), arg(c.JobID)))
	}
	if q.After != nil {
		cursor(q.After, "<")
	}
	if q.Before != nil {
		cursor(q.Before, ">")
	}
	return strings.Join(conds, " AND "), text, args
}

// textWindow is how many of the jobs in order a text filter is first
// tried on.
const textWindow = 2000

// JobsPage reads a page of live jobs, walking jobs_console_idx in order:
// keyset pagination, as fast on the last page as on the first.
func (r *Reader) JobsPage(ctx context.Context, q JobsPageQuery) (JobsPage, error) {
	if q.After != nil && q.Before != nil {
		return JobsPage{}, fmt.Errorf("list jobs: a page is after a cursor or before one, not both")
	}
	if q.Limit <= 0 {
		q.Limit = 50
	}
	q.Limit = min(q.Limit, 500)
	where, text, args := q.where()
	order := consoleJobKey + " DESC, target DESC, job_id DESC"
	if q.Before != nil {
		order = consoleJobKey + ", target, job_id"
	}
	limit := strconv.Itoa(q.Limit + 1)
	queries := []string{`SELECT ` + consoleJobColumns + ` FROM jobs WHERE ` + where + ` ORDER BY ` + order + ` LIMIT ` + limit}
	if text != "" {
		// A text filter needs no index and can match anything from every
		// job to one in 100,000. First the newest textWindow jobs, in
		// index order: a page of matches among them is the page. Else the
		// whole table, read in order rather than at random through the
		// index (the MATERIALIZED CTE keeps the planner off the index
		// order): the keys of the matches are sorted and one page of rows
		// fetched.
		queries = []string{
			`SELECT ` + consoleJobColumns + `
			 FROM (SELECT * FROM jobs WHERE ` + where + ` ORDER BY ` + order + ` LIMIT ` + strconv.Itoa(textWindow) + `) AS jobs
			 WHERE ` + text + ` ORDER BY ` + order + ` LIMIT ` + limit,
			`WITH matches AS MATERIALIZED (
				SELECT ` + consoleJobKey + ` AS k, target, job_id FROM jobs WHERE ` + where + ` AND ` + text + `),
			      page AS (SELECT * FROM matches ORDER BY ` + strings.ReplaceAll(order, consoleJobKey, "k") + ` LIMIT ` + limit + `)
			 SELECT ` + consoleJobColumns + `
			 FROM page JOIN jobs USING (target, job_id)
			 ORDER BY ` + strings.ReplaceAll(order, consoleJobKey, "page.k"),
		}
	}
	var page JobsPage
	err := r.WithTx(ctx, func(tx pgx.Tx) error {
		for _, sql := range queries {
			rows, err := tx.Query(ctx, sql, args...)
			if err != nil {
				return err
			}
			if page.Jobs, err = pgx.CollectRows(rows, scanJobRow); err != nil {
				return err
			}
			if len(page.Jobs) > q.Limit {
				break // a whole page, and more
			}
		}
		return nil
	})
	if err != nil {
		return JobsPage{}, fmt.Errorf("list jobs: %w", err)
	}
	more := len(page.Jobs) > q.Limit
	page.Jobs = page.Jobs[:min(len(page.Jobs), q.Limit)]
	if q.Before != nil {
		slices.Reverse(page.Jobs)
	}
	if len(page.Jobs) == 0 {
		return page, nil
	}
	first, last := page.Jobs[0], page.Jobs[len(page.Jobs)-1]
	switch {
	case q.Before != nil:
		page.Older = cursorOf(last) // we came from there
		if more {
			page.Newer = cursorOf(first)
		}
	default:
		if more {
			page.Older = cursorOf(last)
		}
		if q.After != nil {
			page.Newer = cursorOf(first)
		}
	}
	return page, nil
}

// JobDetail is one job as the console's job page shows it.
type JobDetail struct {
	JobRow
	// RemovedAt is when a complete listing first lacked the job; zero
	// while it is listed.
	RemovedAt    time.Time
	LastSequence int64
	// Descriptor is the job's descriptor as last listed (JSON).
	Descriptor []byte
	// Statuses are the statuses the job was seen in, oldest first.
	Statuses []StatusSpan
	// Events are the job's newest events, newest first, at most
	// JobEventsLimit; EventsTotal counts them all.
	Events      []JobEvent
	EventsTotal int
	// Deliveries are the notifications sent about the job's events.
	Deliveries []Delivery
}

// JobEventsLimit caps JobDetail.Events.
const JobEventsLimit = 500

// StatusSpan is one row of job_status_history.
type StatusSpan struct {
	Status    string
	Sequence  int64
	EnteredAt time.Time
	LeftAt    time.Time // zero for the current status
}

// JobEvent is one event of a job.
type JobEvent struct {
	Pos         int64
	ID          string
	Sequence    int64
	Type        string
	Subject     string
	From, To    string
	ObservedAt  time.Time
	PublishedAt time.Time // zero while in the outbox
	Payload     []byte
}

// Delivery is one notify_deliveries row.
type Delivery struct {
	EventID        string
	EventType      string // "" when retention deleted the event
	EventSequence  int64
	Receiver       string
	Route          string
	Attempts       int
	LastError      string
	FirstAttemptAt time.Time
	LastAttemptAt  time.Time
	DeliveredAt    time.Time // zero until accepted
	DigestSize     int
}

const (
	consoleJobSQL = `
		SELECT ` + consoleJobColumns + `, removed_at, last_sequence, descriptor::text
		FROM jobs WHERE target = $1 AND job_id = $2`
	consoleJobStatusesSQL = `
		SELECT status, sequence, entered_at, left_at
		FROM job_status_history WHERE target = $1 AND job_id = $2
		ORDER BY sequence`
	consoleJobEventsSQL = `
		SELECT pos, id, sequence, type, subject, coalesce(from_status, ''), coalesce(to_status, ''),
		       observed_at, published_at, payload::text, count(*) OVER ()
		FROM job_events WHERE job_id = $2 AND target = $1
		ORDER BY sequence DESC
		LIMIT $3`
	consoleJobDeliveriesSQL = `
		SELECT d.event_id, coalesce(e.type, ''), coalesce(e.sequence, 0), d.receiver, d.route, d.attempts,
		       coalesce(d.last_error, ''), d.first_attempt_at, d.last_attempt_at, d.delivered_at, d.digest_size
		FROM notify_deliveries d
		LEFT JOIN job_events e ON e.id = d.event_id
		WHERE d.job_id = $2 AND d.target = $1
		ORDER BY coalesce(d.delivered_at, d.last_attempt_at, d.first_attempt_at) DESC NULLS LAST, d.receiver`
)

// Job reads one job, its status history, its newest events and the
// notifications sent about it; ErrNotFound if the target has no such job.
func (r *Reader) Job(ctx context.Context, target, jobID string) (JobDetail, error) {
	var d JobDetail
	err := r.WithTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, consoleJobSQL, target, jobID)
		if err != nil {
			return err
		}
		d, err = pgx.CollectExactlyOneRow(rows, func(row pgx.CollectableRow) (JobDetail, error) {
			var d JobDetail
			var created, terminated, statusSince, activity, stalled, suspended, removed *time.Time
			var descriptor string
			err := row.Scan(&d.Target, &d.JobID, &d.Status, &d.Operation, &d.Description, &d.Priority,
				&created, &terminated, &d.Tasks.Total, &d.Tasks.Succeeded, &d.Tasks.Failed,
				&d.ElapsedActiveSeconds, &d.FirstSeenAt, &d.LastSeenAt,
				&statusSince, &activity, &stalled, &suspended, &d.RemindersSent,
				&removed, &d.LastSequence, &descriptor)
			d.CreationTime, d.TerminationTime, d.StatusSince = utcOrZero(created), utcOrZero(terminated), utcOrZero(statusSince)
			d.ActivityAt, d.StalledAt, d.SuspendedSince, d.RemovedAt = utcOrZero(activity), utcOrZero(stalled), utcOrZero(suspended), utcOrZero(removed)
			d.Descriptor = []byte(descriptor)
			return d, err
		})
		if err != nil {
			return interpretError(err)
		}
		rows, err = tx.Query(ctx, consoleJobStatusesSQL, target, jobID)
		if err != nil {
			return err
		}
		if d.Statuses, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (StatusSpan, error) {
			var s StatusSpan
			var left *time.Time
			err := row.Scan(&s.Status, &s.Sequence, &s.EnteredAt, &left)
			s.LeftAt = utcOrZero(left)
			return s, err
		}); err != nil {
			return fmt.Errorf("read status history: %w", err)
		}
		rows, err = tx.Query(ctx, consoleJobEventsSQL, target, jobID, JobEventsLimit)
		if err != nil {
			return err
		}
		if d.Events, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (JobEvent, error) {
			var e JobEvent
			var id uuid.UUID
			var published *time.Time
			var payload string
			err := row.Scan(&e.Pos, &id, &e.Sequence, &e.Type, &e.Subject, &e.From, &e.To, &e.ObservedAt, &published, &payload, &d.EventsTotal)
			e.ID, e.PublishedAt, e.Payload = id.String(), utcOrZero(published), []byte(payload)
			return e, err
		}); err != nil {
			return fmt.Errorf("read events: %w", err)
		}
		rows, err = tx.Query(ctx, consoleJobDeliveriesSQL, target, jobID)
		if err != nil {
			return err
		}
		if d.Deliveries, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (Delivery, error) {
			var v Delivery
			var id uuid.UUID
			var first, last, delivered *time.Time
			err := row.Scan(&id, &v.EventType, &v.EventSequence, &v.Receiver, &v.Route, &v.Attempts, &v.LastError,
				&first, &last, &delivered, &v.DigestSize)
			v.EventID, v.FirstAttemptAt, v.LastAttemptAt, v.DeliveredAt = id.String(), utcOrZero(first), utcOrZero(last), utcOrZero(delivered)
			return v, err
		}); err != nil {
			return fmt.Errorf("read notifications: %w", err)
		}
		return nil
	})
	if err != nil {
		return JobDetail{}, fmt.Errorf("read job %q of target %s: %w", jobID, target, err)
	}
	return d, nil
}

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

// Match reports whether e passes f, as RecentEvents' SQL decides it.
func (f EventFilter) Match(e LiveEvent) bool {
	text := strings.ToLower(f.Text)
	return (f.Target == "" || e.Target == f.Target) &&
		(f.Status == "" || e.Status == f.Status) &&
		(f.Type == "" || e.Type == "ossjobwatch.job."+f.Type) &&
		(text == "" || strings.Contains(strings.ToLower(e.JobID), text) || strings.Contains(strings.ToLower(e.Description), text))
}

// PosRange is a range of job_events positions, both ends included.
type PosRange struct{ From, To int64 }

const (
	liveEventColumns = `pos, id, target, job_id, sequence, type, coalesce(from_status, ''), coalesce(to_status, ''),
		coalesce(payload->'data'->>'status', ''), coalesce(payload->'data'->>'operation', ''),
		coalesce(payload->'data'->>'description', ''), observed_at, payload::text`

	consoleRecentEventsSQL = `
		SELECT ` + liveEventColumns + `
		FROM job_events
		WHERE pos > $1
		  AND ($2 = '' OR target = $2)
		  AND ($3 = '' OR payload->'data'->>'status' = $3)
		  AND ($4 = '' OR type = 'ossjobwatch.job.' || $4)
		  AND ($5 = '' OR strpos(lower(job_id), $5) > 0 OR strpos(lower(coalesce(payload->'data'->>'description', '')), $5) > 0)
		ORDER BY pos DESC
		LIMIT $6`
	consoleTopSQL      = `SELECT coalesce(max(pos), 0) FROM job_events`
	consoleHolesSQL    = `SELECT ` + liveEventColumns + ` FROM job_events JOIN unnest($1::int8[], $2::int8[]) AS h(lo, hi) ON pos BETWEEN h.lo AND h.hi ORDER BY pos`
	consoleEventsAfter = `SELECT ` + liveEventColumns + ` FROM job_events WHERE pos > $1 ORDER BY pos LIMIT $2`
)

// RecentEventsWindow is how many of the latest events RecentEvents looks
// through, whatever the filter: a filter nothing matches reads that many
// rows, not the whole history.
const RecentEventsWindow = 20000

// RecentEvents returns the newest events f matches among the latest
// RecentEventsWindow, newest first, at most limit, and the position of the
// latest event.
func (r *Reader) RecentEvents(ctx context.Context, f EventFilter, limit int) (events []LiveEvent, top int64, err error) {
	err = r.WithTx(ctx, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, consoleTopSQL).Scan(&top); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, consoleRecentEventsSQL, top-RecentEventsWindow, f.Target, f.Status, f.Type, strings.ToLower(f.Text), limit)
		if err != nil {
			return err
		}
		events, err = pgx.CollectRows(rows, scanLiveEventRow)
		return err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("read recent events: %w", err)
	}
	return events, top, nil
}

// EventsAfter reads, from one snapshot, the events in holes (positions
// below the caller's high-water mark that it has not seen: a transaction
// that took them had not committed yet) and up to limit events after
// after, all in position order. latest is the position of the newest event
// when the limit was reached, so that a caller may skip ahead; 0 otherwise.
func (r *Reader) EventsAfter(ctx context.Context, after int64, holes []PosRange, limit int) (inHoles, next []LiveEvent, latest int64, err error) {
	err = r.WithTx(ctx, func(tx pgx.Tx) error {
		if len(holes) > 0 {
			lo, hi := make([]int64, len(holes)), make([]int64, len(holes))
			for i, h := range holes {
				lo[i], hi[i] = h.From, h.To
			}
			rows, err := tx.Query(ctx, consoleHolesSQL, lo, hi)
			if err != nil {
				return err
			}
			if inHoles, err = pgx.CollectRows(rows, scanLiveEventRow); err != nil {
				return err
			}
		}
		rows, err := tx.Query(ctx, consoleEventsAfter, after, limit)
		if err != nil {
			return err
		}
		if next, err = pgx.CollectRows(rows, scanLiveEventRow); err != nil {
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

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

// The console's jobs list and job page.

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
	// case (as the database's lower() folds it). On the first page, a job
	// whose id is Text exactly is also in JobsPage.Exact.
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
	// Exact, on the first page of a text filter, holds the jobs of the
	// other filters whose id is the text exactly (one per target): found
	// through the primary key, shown first. They are in Jobs too, where
	// they fall.
	Exact []JobRow
	Jobs  []JobRow
	// Older is the cursor of the next page of older jobs, nil if there is
	// none; Newer that of the page of newer ones, nil if this page is the
	// first.
	Older, Newer *JobCursor
}

// consoleJobKey is the leading column of jobs_console_idx.
const consoleJobKey = `coalesce(creation_time, '-infinity'::timestamptz)`

// where returns q's conditions but the text filter's, the text filter's
// condition ("" for none) and the text's placeholder, and the arguments of
// both, values only ever as arguments.
func (q JobsPageQuery) where() (base, text, textParam string, args []any) {
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
		// Lowered by PostgreSQL, as jobs.search is: the same folding
		// whatever the database's locale (a C locale folds ASCII only).
		textParam = arg(q.Text) + "::text"
		text = "strpos(search, lower(" + textParam + ")) > 0"
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
	return strings.Join(conds, " AND "), text, textParam, args
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
	where, text, textParam, args := q.where()
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
		if text != "" && q.After == nil && q.Before == nil {
			rows, err := tx.Query(ctx, `SELECT `+consoleJobColumns+` FROM jobs
				WHERE target IN (`+consoleTargetsSQL+`) AND job_id = `+textParam+` AND `+where+`
				ORDER BY target`, args...)
			if err != nil {
				return err
			}
			if page.Exact, err = pgx.CollectRows(rows, scanJobRow); err != nil {
				return fmt.Errorf("read the job whose id is the text: %w", err)
			}
		}
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
	Deliveries []EventDelivery
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

// EventDelivery is one notify_deliveries row with what its event says.
type EventDelivery struct {
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
		if d.Deliveries, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (EventDelivery, error) {
			var v EventDelivery
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

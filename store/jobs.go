package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ossjobwatch/ossjobwatch/job"
)

// JobsQuery selects the jobs Jobs returns. The zero value selects every
// live (not removed) unfinished job of every target. Removed jobs are never
// returned.
type JobsQuery struct {
	// Target keeps one target's jobs; "" keeps every target's.
	Target string

	// Statuses keeps the jobs in one of these statuses; empty keeps any.
	// A finished status here still needs Finished.
	Statuses []string

	// Finished includes finished jobs (Complete, Cancelled, Failed).
	Finished bool

	// Stalled keeps the jobs whose current stall episode was announced
	// (stalled_at set).
	Stalled bool

	// Suspended keeps the jobs in Suspended, awaiting confirmation.
	Suspended bool

	// Limit caps the jobs returned, newest first; 0 returns all. The counts
	// of JobList cover every job selected, whatever the limit.
	Limit int
}

// JobRow is one job as its row in jobs holds it now.
type JobRow struct {
	Target               string
	JobID                string
	Status               string
	Operation            string
	Description          string
	Priority             int64
	CreationTime         time.Time // zero when OSS gave none
	TerminationTime      time.Time // zero while it runs
	Tasks                job.Tasks
	ElapsedActiveSeconds int64
	FirstSeenAt          time.Time
	LastSeenAt           time.Time
	// StatusSince is when the job was first seen in its status; zero for a
	// row no sweep has written it to yet.
	StatusSince time.Time
	// ActivityAt is when a sweep last saw its status or a counter change.
	ActivityAt time.Time
	// StalledAt is when the current stall episode was announced; zero
	// when the job is not (known to be) stalled.
	StalledAt time.Time
	// SuspendedSince is when the job was first seen Suspended, or its
	// creation time if it was discovered Suspended; zero when it is not
	// Suspended.
	SuspendedSince time.Time
	RemindersSent  int
}

// StalledSince is when the job stopped moving, for a job whose stall was
// announced; zero otherwise.
func (r JobRow) StalledSince() time.Time {
	if r.StalledAt.IsZero() {
		return time.Time{}
	}
	return r.ActivityAt
}

// FailsAt is when OSS fails the job if nobody confirms it: SuspendedSince
// plus job.SuspensionLimit (14 days); zero for a job not Suspended.
func (r JobRow) FailsAt() time.Time {
	if r.SuspendedSince.IsZero() || r.Status != string(job.StatusSuspended) {
		return time.Time{}
	}
	return r.SuspendedSince.Add(job.SuspensionLimit)
}

// JobList is what Jobs returns: the jobs up to the limit, newest first, and
// how many jobs the query selected in all and by status.
type JobList struct {
	Jobs     []JobRow
	Total    int
	ByStatus map[string]int
}

// unfinishedCondition is the predicate of jobs_attention_idx, written out
// as the index has it so that the planner can use the index.
const unfinishedCondition = `status NOT IN ('Complete', 'Cancelled', 'Failed')`

// where returns q's WHERE clause and its arguments. The clause is built
// from fixed fragments; values only ever travel as arguments.
func (q JobsQuery) where() (string, []any) {
	conds := []string{"removed_at IS NULL"}
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if !q.Finished {
		conds = append(conds, unfinishedCondition)
	}
	if q.Target != "" {
		conds = append(conds, "target = "+arg(q.Target))
	}
	if len(q.Statuses) > 0 {
		conds = append(conds, "status = ANY("+arg(q.Statuses)+"::text[])")
	}
	if q.Stalled {
		conds = append(conds, "stalled_at IS NOT NULL")
	}
	if q.Suspended {
		conds = append(conds, "status = 'Suspended'")
	}
	return strings.Join(conds, " AND "), args
}

// Jobs returns the jobs q selects, newest first (by creation time, then job
// id and target), and their counts by status, read from one snapshot of the
// database.
func (s *Store) Jobs(ctx context.Context, q JobsQuery) (JobList, error) {
	if q.Limit < 0 {
		return JobList{}, fmt.Errorf("list jobs: limit %d is negative", q.Limit)
	}
	where, args := q.where()
	list := JobList{ByStatus: map[string]int{}}
	err := s.WithTx(ctx, func(tx pgx.Tx) error {
		// One snapshot for both queries, so the counts add up to the list.
		if _, err := tx.Exec(ctx, `SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY`); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT status, count(*) FROM jobs WHERE `+where+` GROUP BY status`, args...)
		if err != nil {
			return err
		}
		var status string
		var n int
		if _, err := pgx.ForEachRow(rows, []any{&status, &n}, func() error {
			list.ByStatus[status] = n
			list.Total += n
			return nil
		}); err != nil {
			return err
		}
		limit := ""
		if q.Limit > 0 {
			limit = " LIMIT " + strconv.Itoa(q.Limit)
		}
		rows, err = tx.Query(ctx, `
			SELECT target, job_id, status, coalesce(operation, ''), coalesce(description, ''), coalesce(priority, 0),
			       creation_time, termination_time,
			       coalesce(tasks_total, 0), coalesce(tasks_succeeded, 0), coalesce(tasks_failed, 0),
			       coalesce(elapsed_active_seconds, 0), first_seen_at, last_seen_at,
			       status_since, activity_at, stalled_at, suspended_since, reminders_sent
			FROM jobs
			WHERE `+where+`
			ORDER BY creation_time DESC NULLS LAST, job_id, target`+limit, args...)
		if err != nil {
			return err
		}
		list.Jobs, err = pgx.CollectRows(rows, scanJobRow)
		return err
	})
	if err != nil {
		if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok && pgErr.Code == "42703" { // undefined_column
			return JobList{}, fmt.Errorf("list jobs: the database schema is older than this ossjobwatch (run ossjobwatch migrate): %w", err)
		}
		return JobList{}, fmt.Errorf("list jobs: %w", err)
	}
	return list, nil
}

func scanJobRow(row pgx.CollectableRow) (JobRow, error) {
	var r JobRow
	var created, terminated, statusSince, activity, stalled, suspended *time.Time
	err := row.Scan(&r.Target, &r.JobID, &r.Status, &r.Operation, &r.Description, &r.Priority,
		&created, &terminated, &r.Tasks.Total, &r.Tasks.Succeeded, &r.Tasks.Failed,
		&r.ElapsedActiveSeconds, &r.FirstSeenAt, &r.LastSeenAt,
		&statusSince, &activity, &stalled, &suspended, &r.RemindersSent)
	for _, p := range []struct {
		from *time.Time
		to   *time.Time
	}{
		{created, &r.CreationTime}, {terminated, &r.TerminationTime}, {statusSince, &r.StatusSince},
		{activity, &r.ActivityAt}, {stalled, &r.StalledAt}, {suspended, &r.SuspendedSince},
	} {
		if p.from != nil {
			*p.to = *p.from
		}
	}
	return r, err
}

// AttentionStats is, for one target, what needs a human now.
type AttentionStats struct {
	Target string
	// Stalled counts the live unfinished jobs whose stall was announced.
	Stalled int
	// AwaitingConfirmation counts the live jobs in Suspended.
	AwaitingConfirmation int
	// SoonestFailsAt is the earliest FailsAt of those; zero when none is
	// known.
	SoonestFailsAt time.Time
}

// attentionSQL counts per target. The ON clause restricts jobs with
// jobs_attention_idx's predicate, so the index serves it.
const attentionSQL = `
	SELECT t.target,
	       count(j.job_id) FILTER (WHERE j.stalled_at IS NOT NULL),
	       count(j.job_id) FILTER (WHERE j.status = 'Suspended'),
	       min(j.suspended_since) FILTER (WHERE j.status = 'Suspended')
	FROM targets t
	LEFT JOIN jobs j ON j.target = t.target AND j.removed_at IS NULL
	                AND j.` + unfinishedCondition + `
	GROUP BY t.target
	ORDER BY t.target`

// Attention returns AttentionStats for every target in the targets table,
// in target order, with zero counts for a target with nothing to show. It
// reads the live unfinished jobs only, through jobs_attention_idx, for
// metrics at scrape time.
func (s *Store) Attention(ctx context.Context) ([]AttentionStats, error) {
	rows, err := s.pool.Query(ctx, attentionSQL)
	if err != nil {
		return nil, fmt.Errorf("read jobs needing attention: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (AttentionStats, error) {
		var a AttentionStats
		var soonest *time.Time
		err := row.Scan(&a.Target, &a.Stalled, &a.AwaitingConfirmation, &soonest)
		if soonest != nil {
			a.SoonestFailsAt = soonest.Add(job.SuspensionLimit)
		}
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("read jobs needing attention: %w", err)
	}
	return out, nil
}

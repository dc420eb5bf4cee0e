package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/ossjobwatch/ossjobwatch/event"
	"github.com/ossjobwatch/ossjobwatch/job"
)

// OutboxChannel is the LISTEN/NOTIFY channel a sweep notifies when it has
// written events; the payload is the target's name.
const OutboxChannel = "ossjobwatch_outbox"

var (
	// ErrStale: a listing that ended after this one began was applied
	// already; this one may hold older pages, and applying it could move
	// the snapshots back in time.
	ErrStale = errors.New("a listing of the target that ended after this one began was applied already")
	// ErrConflict: the target's snapshots changed between being read and
	// being written; read them again and recompute.
	ErrConflict = errors.New("the target's snapshots changed since they were read")
)

// TargetState is what the store knows of a target's applied sweeps.
type TargetState struct {
	// Baselined is false until a sweep of the target was applied whole:
	// the next one is then its baseline.
	Baselined bool
	// LastSweepID is the sweep applied last, whole or in part.
	LastSweepID string
	// Parts is how many parts of LastSweepID have committed while it is
	// written in parts (or since it failed part way); 0 once a sweep was
	// applied whole.
	Parts int
	// LastListedAt is when that sweep's listing began.
	LastListedAt time.Time
	// LastListingEndedAt is when that sweep's listing ended: a listing that
	// began before it may hold older pages, and is refused.
	LastListingEndedAt time.Time
	// Held describes the removals a full listing would have made but that
	// wait for a second listing to agree; zero when none are held.
	Held HeldRemovals
	// LastFullListedAt is when the listing of the last applied full sweep
	// began; zero if none was applied.
	LastFullListedAt time.Time
}

// HeldRemovals are the removals of a listing that lacked most of a
// target's live jobs, held until a later listing agrees.
type HeldRemovals struct {
	// Since is when a listing first lacked those jobs (its listing time).
	Since time.Time
	// Digest identifies the set of job ids whose removal is held.
	Digest string
	// Count is how many removals are held.
	Count int
}

// Version identifies the snapshots: LastSweepID, and while a sweep is
// written in parts, how many have committed ("id#2").
func (st TargetState) Version() string {
	if st.Parts == 0 {
		return st.LastSweepID
	}
	return partsVersion(st.LastSweepID, st.Parts)
}

// IsZero reports whether no removals are held.
func (h HeldRemovals) IsZero() bool { return h.Since.IsZero() }

// Stale reports whether a listing that began at listedAt must be refused
// because it may be older than the listing applied last: it began before
// that one ended (or, for state written before listing ends were kept, not
// after it began). A listing applied in part (the first parts of a sweep
// written in parts) counts as applied.
func (st TargetState) Stale(listedAt time.Time) bool {
	return !st.LastListedAt.IsZero() && (!listedAt.After(st.LastListedAt) || listedAt.Before(st.LastListingEndedAt))
}

// TargetState reads a target's state; a target never swept has the zero
// state.
func (s *Store) TargetState(ctx context.Context, target string) (TargetState, error) {
	return targetState(ctx, s.pool, target, false)
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func targetState(ctx context.Context, q querier, target string, forUpdate bool) (TargetState, error) {
	sql := `SELECT baseline_done, coalesce(last_sweep_id::text, ''), coalesce(applied_parts, 0), last_listed_at, last_listing_ended_at,
	               removals_held_since, coalesce(removals_held_digest, ''), coalesce(removals_held_count, 0),
	               last_full_listed_at
	        FROM targets WHERE target = $1`
	if forUpdate {
		sql += ` FOR UPDATE`
	}
	var st TargetState
	var listed, ended, held, full *time.Time
	err := q.QueryRow(ctx, sql, target).Scan(&st.Baselined, &st.LastSweepID, &st.Parts, &listed, &ended,
		&held, &st.Held.Digest, &st.Held.Count, &full)
	if errors.Is(interpretError(err), ErrNotFound) {
		return TargetState{}, nil
	}
	if err != nil {
		return TargetState{}, fmt.Errorf("read state of target %s: %w", target, err)
	}
	st.LastListedAt, st.LastListingEndedAt, st.Held.Since = utcOrZero(listed), utcOrZero(ended), utcOrZero(held)
	st.LastFullListedAt = utcOrZero(full)
	return st, nil
}

// Snapshots reads the live snapshots of a target (tombstones of removed
// jobs are left out: Tombstones reads those a listing names again), sorted
// by job id in byte order (as Go compares strings, whatever the database's
// collation), with the state they belong to. The state is read first:
// should a sweep be applied between the two reads, ApplySweep sees a newer
// version than the one returned and refuses with ErrConflict, so mixed data
// is never written.
//
// sizeHint, if not 0, is about how many there are (a sweep knows its
// listing's length): they are then read into one slice of that size.
// Without it they are read in chunks and joined, which holds them twice
// for a moment.
func (s *Store) Snapshots(ctx context.Context, target string, sizeHint int) (TargetState, []job.Snapshot, error) {
	st, err := s.TargetState(ctx, target)
	if err != nil {
		return st, nil, err
	}
	snaps, err := s.readSnapshots(ctx, sizeHint, target, `removed_at IS NULL`)
	return st, snaps, err
}

// Tombstones reads the snapshots of the removed jobs of target among ids,
// sorted by job id: a sweep needs them only for jobs that its listing names
// and that have no live snapshot, to continue their sequences.
func (s *Store) Tombstones(ctx context.Context, target string, ids []string) ([]job.Snapshot, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	return s.readSnapshots(ctx, 0, target, `removed_at IS NOT NULL AND job_id = ANY($2)`, ids)
}

// snapshotReadChunk is the most snapshots readSnapshots reads into one
// slice before starting another (the first slices are smaller: Tombstones
// reads a handful).
const snapshotReadChunk = 4096

func (s *Store) readSnapshots(ctx context.Context, sizeHint int, target, where string, args ...any) ([]job.Snapshot, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT job_id, status, coalesce(operation, ''), coalesce(description, ''), coalesce(priority, 0),
		       creation_time, termination_time,
		       coalesce(tasks_total, 0), coalesce(tasks_succeeded, 0), coalesce(tasks_failed, 0),
		       coalesce(elapsed_active_seconds, 0), last_sequence, removed_at IS NOT NULL,
		       descriptor->'anomalies', status_since, activity_at, stalled_at, suspended_since, reminders_sent, reminded_up_to_seconds
		FROM jobs WHERE target = $1 AND `+where, append([]any{target}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("read snapshots of target %s: %w", target, err)
	}
	defer rows.Close()
	// With a size hint, into one slice with some headroom (a few more than
	// that start a chunk); without, in chunks joined once: appending to one
	// slice copied 100,000 snapshots, and faulted in fresh memory, a dozen
	// times over.
	var chunks [][]job.Snapshot
	var snaps []job.Snapshot
	for rows.Next() {
		switch {
		case snaps == nil && sizeHint > 0:
			// At the first row: a target's first sweep reads none.
			snaps = make([]job.Snapshot, 0, sizeHint+sizeHint/50+16)
		case len(snaps) == cap(snaps):
			if snaps != nil {
				chunks = append(chunks, snaps)
			}
			snaps = make([]job.Snapshot, 0, min(max(64, 2*cap(snaps)), snapshotReadChunk))
		}
		var sn job.Snapshot
		j := &sn.Job
		var status string
		var created, terminated *time.Time
		var anomalies []byte
		var statusSince, activity, stalled, suspended *time.Time
		var remindedUpTo int64
		if err := rows.Scan(&j.ID, &status, &j.Operation, &j.Description, &j.Priority,
			&created, &terminated, &j.Tasks.Total, &j.Tasks.Succeeded, &j.Tasks.Failed,
			&j.ElapsedActiveSeconds, &sn.Sequence, &sn.Removed, &anomalies,
			&statusSince, &activity, &stalled, &suspended, &sn.RemindersSent, &remindedUpTo); err != nil {
			return nil, fmt.Errorf("read snapshots of target %s: %w", target, err)
		}
		// The descriptor's anomalies are part of the snapshot: without them
		// every job holding one would look changed on every sweep.
		if anomalies != nil {
			if err := json.Unmarshal(anomalies, &j.Anomalies); err != nil {
				return nil, fmt.Errorf("read snapshots of target %s: anomalies of job %q: %w", target, j.ID, err)
			}
		}
		j.Status = job.Status(status)
		j.CreationTime, j.TerminationTime = utcOrZero(created), utcOrZero(terminated)
		sn.StatusSince, sn.ActivityAt = utcOrZero(statusSince), utcOrZero(activity)
		sn.StalledAt, sn.SuspendedSince = utcOrZero(stalled), utcOrZero(suspended)
		sn.RemindedUpTo = time.Duration(remindedUpTo) * time.Second
		snaps = append(snaps, sn)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read snapshots of target %s: %w", target, err)
	}
	if len(chunks) > 0 {
		snaps = slices.Concat(append(chunks, snaps)...)
	}
	slices.SortFunc(snaps, func(a, b job.Snapshot) int { return strings.Compare(a.Job.ID, b.Job.ID) })
	return snaps, nil
}

// StartSweep records that a sweep began, so that a sweep whose process dies
// still leaves a row (with no finished_at), and returns the database's
// clock at that moment: the sweep's listing time. Every replica reads the
// one clock, so the fence against stale listings does not depend on the
// replicas' clocks agreeing.
func (s *Store) StartSweep(ctx context.Context, id, target string) (time.Time, error) {
	var started time.Time
	err := s.pool.QueryRow(ctx, `INSERT INTO sweeps (id, target, started_at) VALUES ($1, $2, clock_timestamp()) RETURNING started_at`,
		id, target).Scan(&started)
	if err != nil {
		return time.Time{}, fmt.Errorf("record start of sweep %s: %w", id, err)
	}
	return started.UTC(), nil
}

// EndListing records that the sweep's listing has read its last page and
// returns the database's clock at that moment: no page of the listing is
// newer. Listings are applied only in an order their [start, end] intervals
// agree with (see Apply.ListedAt).
func (s *Store) EndListing(ctx context.Context, id string) (time.Time, error) {
	var ended time.Time
	err := s.pool.QueryRow(ctx, `UPDATE sweeps SET listing_ended_at = clock_timestamp() WHERE id = $1 RETURNING listing_ended_at`,
		id).Scan(&ended)
	if err != nil {
		return time.Time{}, fmt.Errorf("record end of listing of sweep %s: %w", id, interpretError(err))
	}
	return ended.UTC(), nil
}

// SweepRecord is how a sweep ended.
type SweepRecord struct {
	ID string
	// Hot is true for a hot sweep (only the unfinished jobs listed).
	Hot        bool
	Pages      int
	JobsListed int
	// Events are added to the events the record counts already: those a
	// sweep written in parts wrote before its last part.
	Events   int
	Complete bool
	// Err is why the sweep failed; empty on success.
	Err string
}

// FinishSweep records the end of a sweep that applied nothing (a failed
// listing, a stale one). ApplySweep records successful ones itself.
//
// A sweep's record is written once: if the sweep has a record already (its
// apply committed, though its client saw an error, as when the connection
// broke during COMMIT), FinishSweep leaves that record as it is and returns
// ErrRecorded, so that what happened is what the record says.
func (s *Store) FinishSweep(ctx context.Context, rec SweepRecord) error {
	return finishSweep(ctx, s.pool, rec)
}

// ErrRecorded: the sweep's end was recorded already, by the apply that
// committed.
var ErrRecorded = errors.New("the sweep's end is recorded already")

type execer interface {
	querier
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

func finishSweep(ctx context.Context, db execer, rec SweepRecord) error {
	var errText *string
	if rec.Err != "" {
		errText = &rec.Err
	}
	tag, err := db.Exec(ctx, `
		UPDATE sweeps SET finished_at = clock_timestamp(), pages = $2, jobs_listed = $3, events = events + $4, complete = $5, error = $6,
		                  mode = CASE WHEN $7 THEN 'hot' ELSE 'full' END
		WHERE id = $1 AND finished_at IS NULL`, rec.ID, rec.Pages, rec.JobsListed, rec.Events, rec.Complete, errText, rec.Hot)
	if err != nil {
		return fmt.Errorf("record end of sweep %s: %w", rec.ID, err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var found bool
	if err := db.QueryRow(ctx, `SELECT true FROM sweeps WHERE id = $1`, rec.ID).Scan(&found); err != nil {
		return fmt.Errorf("record end of sweep %s: %w", rec.ID, interpretError(err))
	}
	return fmt.Errorf("record end of sweep %s: %w", rec.ID, ErrRecorded)
}

// Apply is one sweep's result, to be written atomically.
type Apply struct {
	Target  string
	SweepID string
	// ListedAt is when the sweep's listing began (Store.StartSweep) and
	// ListingEndedAt when it ended (Store.EndListing). A listing that began
	// before the end of the listing applied last is refused with ErrStale:
	// of two listings read over overlapping intervals, the first applied
	// wins, so snapshots never move back in time.
	ListedAt, ListingEndedAt time.Time
	// Expect is the TargetState.Version the snapshots were read at; if
	// the target moved on since, ApplySweep returns ErrConflict.
	Expect string
	// Snapshots are the changed snapshots to write (diff.Result.Snapshots).
	Snapshots []job.Snapshot
	// Events are the events to append to the outbox, in order.
	Events iter.Seq2[event.Event, error]
	// Record is the sweep's row (Pages, JobsListed, and Err when the
	// listing was applied only in part); ID, Events and Complete are filled
	// in by ApplySweep. A record with Err is not complete.
	Record SweepRecord
	// Held is what the target holds after this sweep: the removals that
	// wait for a second listing to agree, or zero for none.
	Held HeldRemovals
}

// ApplySweep writes a sweep's snapshots, events and record, fenced per
// target: a transaction-scoped advisory lock orders concurrent applies of
// one target, the stored listing time refuses stale listings, and the
// stored version refuses snapshots read before another apply. It returns
// how many events it wrote.
//
// A sweep is one transaction, except the first sweep of a target with more
// than firstSweepPart jobs: its jobs are written in parts of that many, in
// job id order, each part with its events in a transaction of its own (see
// firstSweepPart). On an error after a part committed, ApplySweep returns
// the events the committed parts wrote, with the error.
func (s *Store) ApplySweep(ctx context.Context, a Apply) (int, error) {
	var events eventSource
	if a.Events != nil {
		next, stop := iter.Pull2(a.Events)
		defer stop()
		events.next = next
	}
	p := &applyPart{Apply: a, events: &events}
	written := 0
	for ; ; p.n++ {
		n, err := s.applyPart(ctx, p)
		written += n
		if err != nil {
			return written, s.describeTimeout(err)
		}
		if p.last {
			return written, nil
		}
		if s.afterPart != nil {
			if err := s.afterPart(ctx, p.n); err != nil {
				return written, err
			}
		}
	}
}

// firstSweepPart is how many jobs one transaction of a large first sweep
// writes. Such a sweep has a snapshot and a discovered event for every job,
// and applied in one transaction it kept one database backend busy for
// seconds with nothing to publish until the commit (at 100,000 jobs, 3.5-4.8
// s of writing, then 2.3-2.7 s of publishing). In parts, the relay publishes
// each part while the next is written. Each part holds its jobs' snapshots
// with their events, so the promise that an event commits with the snapshot
// that caused it holds, and each part moves the target's version on (the
// sweep's id and how many of its parts have committed: TargetState.Version)
// and its listing times, which fence stale listings. A sweep applied between
// two parts makes this one's next part fail with ErrConflict rather than
// write over it; snapshots read between two parts are refused with
// ErrConflict once another part has committed. The target is baselined by
// the last part only: should a part fail, the next sweep diffs against the
// parts that committed, and its events for the jobs left are baseline
// discoveries, as the whole first sweep's would have been.
const firstSweepPart = 10000

// applyPart is one transaction of ApplySweep.
type applyPart struct {
	Apply
	events *eventSource
	// n counts the parts from 0; done is how many snapshots the parts
	// before wrote.
	n, done int
	// split: the target had no rows and the sweep more than
	// firstSweepPart snapshots, so it is written in parts. Decided by part
	// 0.
	split bool
	// last: this part is the sweep's last (set by applyPart).
	last bool
}

// applyPart writes the next part of p's sweep in a transaction and returns
// how many events it wrote.
func (s *Store) applyPart(ctx context.Context, p *applyPart) (int, error) {
	var written int
	err := s.WithTx(ctx, func(tx pgx.Tx) error {
		if err := s.boundTx(ctx, tx); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('ossjobwatch.target:' || $1, 0))`, p.Target); err != nil {
			return fmt.Errorf("lock target %s: %w", p.Target, err)
		}
		st, err := targetState(ctx, tx, p.Target, true)
		if err != nil {
			return err
		}
		fresh := p.n > 0 // a later part's jobs are new: the first found none
		switch {
		case p.n > 0:
			if st.Version() != partsVersion(p.SweepID, p.n) {
				// Another sweep was applied after this one's last part.
				return ErrConflict
			}
		case st.Stale(p.ListedAt):
			return ErrStale
		case st.Version() != p.Expect:
			return ErrConflict
		case len(p.Snapshots) > snapshotChunk:
			if err := tx.QueryRow(ctx, `SELECT NOT EXISTS (SELECT 1 FROM jobs WHERE target = $1)`, p.Target).Scan(&fresh); err != nil {
				return fmt.Errorf("write %d snapshots of target %s: %w", len(p.Snapshots), p.Target, err)
			}
			p.split = fresh && len(p.Snapshots) > firstSweepPart
		}
		snaps, through := p.Snapshots[p.done:], ""
		if p.split && len(snaps) > firstSweepPart {
			snaps = snaps[:firstSweepPart]
			through = snaps[len(snaps)-1].Job.ID
		}
		last := through == ""
		if err := writeSnapshots(ctx, tx, p.Apply, snaps, fresh); err != nil {
			return err
		}
		if written, err = insertEvents(ctx, tx, p.Apply, p.events.through(through, p.split)); err != nil {
			return err
		}
		if last {
			if err := finishApply(ctx, tx, p.Apply, written); err != nil {
				return err
			}
		} else if err := advanceApply(ctx, tx, p.Apply, p.n, written); err != nil {
			return err
		}
		if written > 0 {
			if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, OutboxChannel, p.Target); err != nil {
				return fmt.Errorf("notify the relay: %w", err)
			}
		}
		p.done += len(snaps)
		p.last = last
		return nil
	})
	if err != nil {
		return 0, err
	}
	return written, nil
}

// finishApply records the target's state after the sweep's last part, and
// the sweep's end; written is how many events the part wrote.
func finishApply(ctx context.Context, tx pgx.Tx, a Apply, written int) error {
	var heldSince, heldDigest, heldCount any
	if !a.Held.IsZero() {
		heldSince, heldDigest, heldCount = a.Held.Since, a.Held.Digest, a.Held.Count
	}
	var fullAt any
	if !a.Record.Hot {
		fullAt = a.ListedAt
	}
	if _, err := tx.Exec(ctx, `
		INSERT INTO targets (target, baseline_done, last_listed_at, last_listing_ended_at, last_sweep_id,
		                     removals_held_since, removals_held_digest, removals_held_count, last_full_listed_at)
		VALUES ($1, true, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (target) DO UPDATE SET baseline_done = true, last_listed_at = $2, last_listing_ended_at = $3,
			last_sweep_id = $4, applied_parts = NULL, removals_held_since = $5, removals_held_digest = $6,
			removals_held_count = $7, last_full_listed_at = coalesce($8, targets.last_full_listed_at)`,
		a.Target, a.ListedAt, timeOrNull(a.ListingEndedAt), a.SweepID, heldSince, heldDigest, heldCount, fullAt); err != nil {
		return fmt.Errorf("record state of target %s: %w", a.Target, err)
	}
	rec := a.Record
	rec.ID, rec.Events, rec.Complete = a.SweepID, written, rec.Err == ""
	return finishSweep(ctx, tx, rec)
}

// advanceApply records part n (from 0), not the last, of a sweep written in
// parts: the target's version (the sweep, and how many of its parts have
// committed) and listing times move on (a first sweep holds no removals,
// and the target is baselined by the last part), and the sweep's record
// counts the part's events.
func advanceApply(ctx context.Context, tx pgx.Tx, a Apply, n, written int) error {
	if _, err := tx.Exec(ctx, `
		INSERT INTO targets (target, last_listed_at, last_listing_ended_at, last_sweep_id, applied_parts)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (target) DO UPDATE SET last_listed_at = $2, last_listing_ended_at = $3, last_sweep_id = $4,
			applied_parts = $5`,
		a.Target, a.ListedAt, timeOrNull(a.ListingEndedAt), a.SweepID, n+1); err != nil {
		return fmt.Errorf("record state of target %s: %w", a.Target, err)
	}
	if _, err := tx.Exec(ctx, `UPDATE sweeps SET events = events + $2 WHERE id = $1`, a.SweepID, written); err != nil {
		return fmt.Errorf("record events of sweep %s: %w", a.SweepID, err)
	}
	return nil
}

// partsVersion is the TargetState.Version of a target once n parts of
// sweep id have committed, and the rest not.
func partsVersion(id string, n int) string { return id + "#" + strconv.Itoa(n) }

// eventSource hands out a sweep's events part by part.
type eventSource struct {
	next func() (event.Event, error, bool) // nil: no events
	// held is an event pulled for a part that was not its job's: the
	// next part's first, if holding.
	held    event.Event
	holding bool
	lastJob string
}

// through returns the COPY source of the events of jobs up to and including
// the job id through, in byte order; of every event left if through is
// empty. With inOrder, an event of a job before the last one handed out is
// an error: a sweep written in parts relies on its events coming in job id
// order, as its snapshots do.
func (e *eventSource) through(through string, inOrder bool) func() (event.Event, error, bool) {
	return func() (event.Event, error, bool) {
		if e.next == nil {
			return event.Event{}, nil, false
		}
		var ev event.Event
		if e.holding {
			ev, e.holding = e.held, false
		} else {
			var err error
			var ok bool
			if ev, err, ok = e.next(); !ok || err != nil {
				return ev, err, ok
			}
		}
		if inOrder && ev.JobID < e.lastJob {
			return event.Event{}, fmt.Errorf("event of job %s after one of job %s: a sweep written in parts needs its events in job id order", ev.JobID, e.lastJob), true
		}
		if through != "" && ev.JobID > through {
			e.held, e.holding = ev, true
			return event.Event{}, nil, false
		}
		e.lastJob = ev.JobID
		return ev, nil, true
	}
}

// snapshotChunk is how many snapshots one statement writes over unnest'ed
// arrays. Large enough that a 1% change of 100,000 jobs is one round trip;
// more than this many snapshots go by COPY instead (see copySnapshots).
const snapshotChunk = 5000

// writeSnapshots writes the changed snapshots: by COPY straight into jobs
// when fresh (none of these jobs has a row: a first sweep, or a later part
// of one), else a few thousand over unnest'ed arrays, in one statement, and
// more by COPY into a temporary table merged into jobs by one INSERT … ON
// CONFLICT. Encoding a large batch as parameter arrays cost the sweep
// hundreds of megabytes of allocations at 100,000 jobs, and pgx kept the
// last statement's buffer (10 MB) on the connection; COPY streams the rows.
// Small batches, a steady state's, keep the single statement: a temporary
// table per sweep would churn the system catalogs at every hot sweep of
// every target.
func writeSnapshots(ctx context.Context, tx pgx.Tx, a Apply, snaps []job.Snapshot, fresh bool) error {
	switch {
	case fresh:
		// The advisory lock held by ApplySweep keeps the target's rows ours
		// until the commit: with none of these jobs there, every snapshot
		// is an insert.
		return copySnapshots(ctx, tx, a, snaps)
	case len(snaps) <= snapshotChunk:
		return upsertUnnest(ctx, tx, a, snaps)
	}
	return upsertCopy(ctx, tx, a, snaps)
}

// upsertColumns name a snapshot's values, as unnest and the temporary
// table of upsertCopy hold them; snapshotRows gives them in this order.
var upsertColumns = []string{"job_id", "status", "operation", "description", "priority", "creation_time", "termination_time",
	"tasks_total", "tasks_succeeded", "tasks_failed", "elapsed", "descriptor", "seq", "removed",
	"status_since", "activity_at", "stalled_at", "suspended_since", "reminders_sent", "reminded_up_to"}

// upsertSQL merges snapshots from a source of upsertColumns named u into
// jobs; $1 is the target, $2 the listing time, $3 the sweep id.
func upsertSQL(source string) string {
	return `
		INSERT INTO jobs AS j (target, job_id, status, operation, description, priority, creation_time, termination_time,
		                       tasks_total, tasks_succeeded, tasks_failed, elapsed_active_seconds, descriptor,
		                       first_seen_at, last_seen_at, last_changed_at, removed_at, last_sequence, last_sweep_id, listed_at,
		                       status_since, activity_at, stalled_at, suspended_since, reminders_sent, reminded_up_to_seconds)
		SELECT $1, u.job_id, u.status, u.operation, u.description, u.priority, u.creation_time, u.termination_time,
		       u.tasks_total, u.tasks_succeeded, u.tasks_failed, u.elapsed, u.descriptor::json,
		       $2, $2, $2, CASE WHEN u.removed THEN $2::timestamptz END, u.seq, $3, $2,
		       u.status_since, u.activity_at, u.stalled_at, u.suspended_since, u.reminders_sent, u.reminded_up_to
		FROM ` + source + `
		ON CONFLICT (target, job_id) DO UPDATE SET
			status = EXCLUDED.status, operation = EXCLUDED.operation, description = EXCLUDED.description,
			priority = EXCLUDED.priority, creation_time = EXCLUDED.creation_time, termination_time = EXCLUDED.termination_time,
			tasks_total = EXCLUDED.tasks_total, tasks_succeeded = EXCLUDED.tasks_succeeded, tasks_failed = EXCLUDED.tasks_failed,
			elapsed_active_seconds = EXCLUDED.elapsed_active_seconds, descriptor = EXCLUDED.descriptor,
			last_seen_at = CASE WHEN EXCLUDED.removed_at IS NULL THEN EXCLUDED.last_seen_at ELSE j.last_seen_at END,
			last_changed_at = CASE WHEN EXCLUDED.last_sequence > j.last_sequence THEN EXCLUDED.last_changed_at ELSE j.last_changed_at END,
			removed_at = EXCLUDED.removed_at, last_sequence = EXCLUDED.last_sequence,
			last_sweep_id = EXCLUDED.last_sweep_id, listed_at = EXCLUDED.listed_at,
			status_since = EXCLUDED.status_since, activity_at = EXCLUDED.activity_at, stalled_at = EXCLUDED.stalled_at,
			suspended_since = EXCLUDED.suspended_since, reminders_sent = EXCLUDED.reminders_sent,
			reminded_up_to_seconds = EXCLUDED.reminded_up_to_seconds`
}

// upsertUnnest writes snapshots in one statement over unnest'ed arrays.
func upsertUnnest(ctx context.Context, tx pgx.Tx, a Apply, snaps []job.Snapshot) error {
	if len(snaps) == 0 {
		return nil
	}
	n := len(snaps)
	var (
		ids, statuses, ops, descs, descriptors     = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		prios, totals, succs, fails, elapsed, seqs = make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
		created, terminated                        = make([]*time.Time, n), make([]*time.Time, n)
		removed                                    = make([]bool, n)
		statusSince, activity, stalled, suspended  = make([]*time.Time, n), make([]*time.Time, n), make([]*time.Time, n), make([]*time.Time, n)
		reminders, remindedUpTo                    = make([]int64, n), make([]int64, n)
	)
	for i, sn := range snaps {
		j := sn.Job
		d, err := json.Marshal(j)
		if err != nil {
			return fmt.Errorf("encode descriptor of job %s: %w", j.ID, err)
		}
		ids[i], statuses[i], ops[i], descs[i], descriptors[i] = j.ID, string(j.Status), j.Operation, j.Description, string(d)
		prios[i], totals[i], succs[i], fails[i], elapsed[i], seqs[i] = j.Priority, j.Tasks.Total, j.Tasks.Succeeded, j.Tasks.Failed, j.ElapsedActiveSeconds, sn.Sequence
		created[i], terminated[i] = timeOrNull(j.CreationTime), timeOrNull(j.TerminationTime)
		removed[i] = sn.Removed
		statusSince[i], activity[i] = timeOrNull(sn.StatusSince), timeOrNull(sn.ActivityAt)
		stalled[i], suspended[i], reminders[i] = timeOrNull(sn.StalledAt), timeOrNull(sn.SuspendedSince), int64(sn.RemindersSent)
		remindedUpTo[i] = int64(sn.RemindedUpTo / time.Second)
	}
	_, err := tx.Exec(ctx, upsertSQL(`
		unnest($4::text[], $5::text[], $6::text[], $7::text[], $8::int8[], $9::timestamptz[], $10::timestamptz[],
		       $11::int8[], $12::int8[], $13::int8[], $14::int8[], $15::text[], $16::int8[], $17::bool[],
		       $18::timestamptz[], $19::timestamptz[], $20::timestamptz[], $21::timestamptz[], $22::int8[], $23::int8[])
		AS u(`+strings.Join(upsertColumns, ", ")+`)`),
		a.Target, a.ListedAt, a.SweepID,
		ids, statuses, ops, descs, prios, created, terminated, totals, succs, fails, elapsed, descriptors, seqs, removed,
		statusSince, activity, stalled, suspended, reminders, remindedUpTo)
	if err != nil {
		return fmt.Errorf("write %d snapshots of target %s: %w", n, a.Target, err)
	}
	return nil
}

// upsertCopy writes snapshots by COPY into a temporary table, dropped at
// the commit, merged into jobs by one statement.
func upsertCopy(ctx context.Context, tx pgx.Tx, a Apply, snaps []job.Snapshot) error {
	fail := func(err error) error {
		return fmt.Errorf("write %d snapshots of target %s: %w", len(snaps), a.Target, err)
	}
	if _, err := tx.Exec(ctx, `
		CREATE TEMPORARY TABLE ossjobwatch_snapshots_in (
			job_id text, status text, operation text, description text, priority bigint,
			creation_time timestamptz, termination_time timestamptz,
			tasks_total bigint, tasks_succeeded bigint, tasks_failed bigint, elapsed bigint, descriptor json,
			seq bigint, removed boolean, status_since timestamptz, activity_at timestamptz, stalled_at timestamptz,
			suspended_since timestamptz, reminders_sent bigint, reminded_up_to bigint
		) ON COMMIT DROP`); err != nil {
		return fail(err)
	}
	rows := snapshotRows(snaps, func(row []any, _ *job.Snapshot) []any { return row })
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"ossjobwatch_snapshots_in"}, upsertColumns, rows); err != nil {
		return fail(err)
	}
	if _, err := tx.Exec(ctx, upsertSQL(`ossjobwatch_snapshots_in AS u`), a.Target, a.ListedAt, a.SweepID); err != nil {
		return fail(err)
	}
	return nil
}

// copySnapshots writes snapshots of jobs the target has no rows of
// straight into jobs, by COPY, as upsertSQL would have inserted them.
func copySnapshots(ctx context.Context, tx pgx.Tx, a Apply, snaps []job.Snapshot) error {
	cols := []string{"job_id", "status", "operation", "description", "priority", "creation_time", "termination_time",
		"tasks_total", "tasks_succeeded", "tasks_failed", "elapsed_active_seconds", "descriptor", "last_sequence", "removed_at",
		"status_since", "activity_at", "stalled_at", "suspended_since", "reminders_sent", "reminded_up_to_seconds",
		"target", "first_seen_at", "last_seen_at", "last_changed_at", "last_sweep_id", "listed_at"}
	sweepUUID, err := copyUUID(a.SweepID)
	if err != nil {
		return fmt.Errorf("write %d snapshots of target %s: sweep id: %w", len(snaps), a.Target, err)
	}
	var target, listedAt, sweepID any = a.Target, a.ListedAt, sweepUUID
	rows := snapshotRows(snaps, func(row []any, sn *job.Snapshot) []any {
		// removed_at in place of removed: a first sweep has no tombstones,
		// but the rule is upsertSQL's all the same.
		row[13] = nil
		if sn.Removed {
			row[13] = listedAt
		}
		return append(row, target, listedAt, listedAt, listedAt, sweepID, listedAt)
	})
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"jobs"}, cols, rows); err != nil {
		return fmt.Errorf("write %d snapshots of target %s: %w", len(snaps), a.Target, err)
	}
	return nil
}

// snapshotRows is a COPY source of snapshots, each row its upsertColumns
// then what extend appends (or changes). The row's slice and the
// descriptor's buffer are reused: pgx encodes a row before it asks for the
// next.
func snapshotRows(snaps []job.Snapshot, extend func(row []any, sn *job.Snapshot) []any) pgx.CopyFromSource {
	row := make([]any, 0, 32)
	var descriptor bytes.Buffer
	enc := json.NewEncoder(&descriptor)
	i := 0
	return pgx.CopyFromFunc(func() ([]any, error) {
		if i == len(snaps) {
			return nil, nil
		}
		sn := &snaps[i]
		i++
		j := &sn.Job
		descriptor.Reset()
		if err := enc.Encode(j); err != nil {
			return nil, fmt.Errorf("encode descriptor of job %s: %w", j.ID, err)
		}
		// Encode ends the value with a newline, which a json column keeps.
		descriptor.Truncate(descriptor.Len() - 1)
		row = append(row[:0], j.ID, string(j.Status), j.Operation, j.Description, j.Priority,
			timeOrNull(j.CreationTime), timeOrNull(j.TerminationTime),
			j.Tasks.Total, j.Tasks.Succeeded, j.Tasks.Failed, j.ElapsedActiveSeconds, descriptor.Bytes(), sn.Sequence, sn.Removed,
			timeOrNull(sn.StatusSince), timeOrNull(sn.ActivityAt), timeOrNull(sn.StalledAt), timeOrNull(sn.SuspendedSince),
			int64(sn.RemindersSent), int64(sn.RemindedUpTo/time.Second))
		return extend(row, sn), nil
	})
}

// insertEvents streams the events next gives into job_events with COPY,
// encoding each as COPY asks for it so that a baseline of 100,000 events is
// never held in memory at once. With no events it runs no statement.
func insertEvents(ctx context.Context, tx pgx.Tx, a Apply, next func() (event.Event, error, bool)) (int, error) {
	first, err, ok := next()
	if err != nil {
		return 0, fmt.Errorf("append events of target %s: %w", a.Target, err)
	}
	if !ok {
		return 0, nil
	}
	pending := true
	sweepID, err := copyUUID(a.SweepID)
	if err != nil {
		return 0, fmt.Errorf("append events of target %s: sweep id: %w", a.Target, err)
	}
	src := pgx.CopyFromFunc(func() ([]any, error) {
		ev, err, ok := first, error(nil), true
		if pending {
			pending = false
		} else {
			ev, err, ok = next()
		}
		if !ok {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		var from any
		if ev.From != "" {
			from = string(ev.From)
		}
		id, err := copyUUID(ev.ID)
		if err != nil {
			return nil, fmt.Errorf("event of job %s: id: %w", ev.JobID, err)
		}
		return []any{id, a.Target, ev.JobID, ev.Sequence, ev.Type, ev.Subject, from, string(ev.To), ev.Payload, ev.ObservedAt, sweepID}, nil
	})
	n, err := tx.CopyFrom(ctx, pgx.Identifier{"job_events"},
		[]string{"id", "target", "job_id", "sequence", "type", "subject", "from_status", "to_status", "payload", "observed_at", "sweep_id"}, src)
	if err != nil {
		return 0, fmt.Errorf("append events of target %s: %w", a.Target, err)
	}
	return int(n), nil
}

// copyUUID is id as COPY takes a uuid column's value without a detour: a
// string makes pgx fail to encode it, build an error, and then parse it,
// for every row.
func copyUUID(id string) (pgtype.UUID, error) {
	u, err := uuid.Parse(id)
	if err != nil {
		return pgtype.UUID{}, err
	}
	return pgtype.UUID{Bytes: u, Valid: true}, nil
}

func timeOrNull(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func utcOrZero(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// Retention deletes what nothing needs any more, in the manner of River's
// job cleaner: oldest first, in batches of at most MaxPruneBatch rows, each
// one statement under a statement timeout, with a short random pause
// between batches so that a large backlog is worked off without holding
// locks or starving the sweeps. It never deletes an unpublished event (one
// with no published_at, or still listed in the outbox) nor a jobs row: a
// job's next event takes jobs.last_sequence + 1 whatever was deleted.

const (
	// pruneLockName names the session advisory lock a pruning pass holds,
	// so that one process prunes at a time. It is an efficiency device:
	// two passes at once would only delete the same rows twice over.
	pruneLockName = "ossjobwatch.prune"

	// MaxPruneBatch is the most rows one DELETE statement removes.
	MaxPruneBatch = 1000

	// Defaults of PruneConfig: see there.
	DefaultPruneStatementTimeout = 30 * time.Second
	DefaultPruneLockTimeout      = 5 * time.Second
	DefaultPrunePause            = 100 * time.Millisecond

	progressType = "ossjobwatch.job.progress"
)

// PruneKind names what a prune deletes, in the order it does it; it is the
// kind label of the metric ossjobwatch_pruned_rows_total.
type PruneKind string

// The kinds of rows pruned.
const (
	PruneProgress PruneKind = "progress" // published progress events
	PruneEvents   PruneKind = "events"   // every other published event
	// PruneDeliveries: notify_deliveries rows delivered long ago.
	PruneDeliveries PruneKind = "deliveries"
	PruneSweeps     PruneKind = "sweeps"   // sweep records
	PruneReplicas   PruneKind = "replicas" // rows of replicas long gone
	PruneLeases     PruneKind = "leases"   // target leases long expired
)

// PruneKinds are the kinds in the order Prune works on them.
var PruneKinds = []PruneKind{PruneProgress, PruneEvents, PruneDeliveries, PruneSweeps, PruneReplicas, PruneLeases}

// PruneConfig says what Prune deletes and how fast. An age of zero keeps
// those rows. Ages are measured back from the database's clock when the
// pass starts, the one clock every replica shares (observed_at and the
// lease times come from it too).
type PruneConfig struct {
	// Progress: published progress events observed longer ago than this
	// are deleted.
	Progress time.Duration
	// Events: the same for every other published event.
	Events time.Duration
	// Deliveries: notify_deliveries rows delivered longer ago than this
	// are deleted. Rows not yet delivered are kept: their message is
	// still being worked on.
	Deliveries time.Duration
	// Sweeps: sweep records started longer ago than this are deleted, all
	// but each target's last applied sweep (targets.last_sweep_id).
	Sweeps time.Duration
	// DeadAfter: replicas whose last heartbeat is older than this, and
	// target leases expired longer ago than this, are deleted. It should
	// be many lease time-to-lives: a replica that misses a few heartbeats
	// and comes back re-registers and retakes leases on its own, but a
	// lease row deleted under a live holder is retaken with a sweep at once.
	DeadAfter time.Duration

	// BatchSize is the most rows one statement deletes. Defaults to, and
	// may not exceed, MaxPruneBatch.
	BatchSize int
	// StatementTimeout bounds each batch. Defaults to 30 seconds.
	StatementTimeout time.Duration
	// LockTimeout bounds a batch's wait for a row lock. Defaults to 5
	// seconds.
	LockTimeout time.Duration
	// Pause is the mean pause after a full batch, drawn at random between
	// half and one and a half times it. Defaults to 100ms.
	Pause time.Duration

	// OnBatch, if set, is called after each batch that deleted rows.
	OnBatch func(kind PruneKind, deleted int64)
}

func (c PruneConfig) withDefaults() PruneConfig {
	c.BatchSize = cmp.Or(c.BatchSize, MaxPruneBatch)
	c.StatementTimeout = cmp.Or(c.StatementTimeout, DefaultPruneStatementTimeout)
	c.LockTimeout = cmp.Or(c.LockTimeout, DefaultPruneLockTimeout)
	c.Pause = cmp.Or(c.Pause, DefaultPrunePause)
	return c
}

func (c PruneConfig) validate() error {
	if c.BatchSize < 1 || c.BatchSize > MaxPruneBatch {
		return fmt.Errorf("BatchSize: %d must be from 1 to %d", c.BatchSize, MaxPruneBatch)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"Progress", c.Progress}, {"Events", c.Events}, {"Deliveries", c.Deliveries}, {"Sweeps", c.Sweeps}, {"DeadAfter", c.DeadAfter},
		{"StatementTimeout", c.StatementTimeout}, {"LockTimeout", c.LockTimeout}, {"Pause", c.Pause}} {
		if d.v < 0 {
			return fmt.Errorf("%s: must not be negative, got %s", d.name, d.v)
		}
	}
	return nil
}

// Pruned counts the rows a prune deleted, by kind.
type Pruned map[PruneKind]int64

// Total is the number of rows deleted.
func (p Pruned) Total() int64 {
	var n int64
	for _, v := range p {
		n += v
	}
	return n
}

// The pruning queries. Each takes $1, the cursor (the time of the last row
// of the previous batch: rows before it are done, and an unpublished event
// there is not read again), $2, the cutoff, and $3, the batch size; it
// returns how many rows it chose, how many it deleted (fewer if another
// pass deleted some first) and the new cursor. Rows are chosen in the order
// of an index, oldest first.
const (
	// pruneEventsSQL takes the events' type as $4: the index on (type,
	// observed_at) then yields them oldest first. Over all types but one
	// ("type <> $4"), the planner would rightly judge the observed_at
	// index no better than reading the whole table, when progress events
	// are most of it.
	pruneEventsSQL = `
		WITH doomed AS (
			SELECT pos, observed_at FROM job_events e
			WHERE type = $4 AND observed_at >= $1 AND observed_at < $2
			  AND published_at IS NOT NULL
			  AND NOT EXISTS (SELECT FROM outbox o WHERE o.pos = e.pos)
			ORDER BY observed_at LIMIT $3
		), gone AS (
			DELETE FROM job_events WHERE pos IN (SELECT pos FROM doomed) AND published_at IS NOT NULL
			RETURNING 1
		)
		SELECT (SELECT count(*) FROM doomed), (SELECT count(*) FROM gone), (SELECT max(observed_at) FROM doomed)`

	// eventTypesSQL lists the event types stored, skipping from one to the
	// next along the index on (type, observed_at): a few index probes, not
	// a scan, however many events there are.
	eventTypesSQL = `
		WITH RECURSIVE types AS (
			(SELECT type FROM job_events ORDER BY type LIMIT 1)
			UNION ALL
			SELECT (SELECT e.type FROM job_events e WHERE e.type > t.type ORDER BY e.type LIMIT 1)
			FROM types t WHERE t.type IS NOT NULL
		)
		SELECT type FROM types WHERE type IS NOT NULL`

	pruneDeliveriesSQL = `
		WITH doomed AS (
			SELECT event_id, receiver, delivered_at FROM notify_deliveries
			WHERE delivered_at >= $1 AND delivered_at < $2
			ORDER BY delivered_at LIMIT $3
		), gone AS (
			DELETE FROM notify_deliveries d USING doomed
			WHERE d.event_id = doomed.event_id AND d.receiver = doomed.receiver
			RETURNING 1
		)
		SELECT (SELECT count(*) FROM doomed), (SELECT count(*) FROM gone), (SELECT max(delivered_at) FROM doomed)`

	pruneSweepsSQL = `
		WITH doomed AS (
			SELECT id, started_at FROM sweeps s
			WHERE started_at >= $1 AND started_at < $2
			  AND NOT EXISTS (SELECT FROM targets t WHERE t.last_sweep_id = s.id)
			ORDER BY started_at LIMIT $3
		), gone AS (
			DELETE FROM sweeps WHERE id IN (SELECT id FROM doomed) RETURNING 1
		)
		SELECT (SELECT count(*) FROM doomed), (SELECT count(*) FROM gone), (SELECT max(started_at) FROM doomed)`

	pruneReplicasSQL = `
		WITH doomed AS (
			SELECT id, heartbeat_at FROM replicas
			WHERE heartbeat_at >= $1 AND heartbeat_at < $2
			ORDER BY heartbeat_at LIMIT $3
		), gone AS (
			DELETE FROM replicas WHERE id IN (SELECT id FROM doomed) AND heartbeat_at < $2 RETURNING 1
		)
		SELECT (SELECT count(*) FROM doomed), (SELECT count(*) FROM gone), (SELECT max(heartbeat_at) FROM doomed)`

	pruneLeasesSQL = `
		WITH doomed AS (
			SELECT target, expires_at FROM target_leases
			WHERE expires_at >= $1 AND expires_at < $2
			ORDER BY expires_at LIMIT $3
		), gone AS (
			DELETE FROM target_leases WHERE target IN (SELECT target FROM doomed) AND expires_at < $2 RETURNING 1
		)
		SELECT (SELECT count(*) FROM doomed), (SELECT count(*) FROM gone), (SELECT max(expires_at) FROM doomed)`
)

// Prune deletes what cfg lets go, if no other process is pruning: it
// returns locked false, having deleted nothing, when one is. It goes kind
// by kind (PruneKinds), batch by batch, until nothing is left to delete or
// ctx is done; what it deleted before an error or a cancellation is
// counted in pruned.
//
// The pass holds a session advisory lock on a connection of its own,
// outside the pool, and runs its batches on that connection: the lock is
// released with the session if the process dies, and a pooled connection
// would carry the lock (and the session's timeouts) to other users.
func (s *Store) Prune(ctx context.Context, cfg PruneConfig) (pruned Pruned, locked bool, err error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, false, fmt.Errorf("prune: %w", err)
	}
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig)
	if err != nil {
		return nil, false, fmt.Errorf("prune: connect: %w", err)
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
		defer cancel()
		if locked && !conn.IsClosed() {
			// Unlocked before closing: the server ends a closed session,
			// and releases its locks, only some time after.
			_, _ = conn.Exec(closeCtx, `SELECT pg_advisory_unlock(hashtextextended($1, 0))`, pruneLockName)
		}
		_ = conn.Close(closeCtx)
	}()

	var now time.Time
	if err := conn.QueryRow(ctx, `
		SELECT set_config('statement_timeout', $2, false), set_config('lock_timeout', $3, false),
			pg_try_advisory_lock(hashtextextended($1, 0)), now()`,
		pruneLockName, pgMillis(cfg.StatementTimeout), pgMillis(cfg.LockTimeout),
	).Scan(nil, nil, &locked, &now); err != nil {
		return nil, false, fmt.Errorf("prune: take lock: %w", err)
	}
	if !locked {
		return nil, false, nil
	}

	pruned = Pruned{}
	var queries []pruneQuery
	if cfg.Progress > 0 {
		queries = append(queries, pruneQuery{PruneProgress, now.Add(-cfg.Progress), pruneEventsSQL, []any{progressType}})
	}
	if cfg.Events > 0 {
		rows, err := conn.Query(ctx, eventTypesSQL)
		if err != nil {
			return pruned, true, fmt.Errorf("prune events: list types: %w", err)
		}
		types, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return pruned, true, fmt.Errorf("prune events: list types: %w", err)
		}
		for _, t := range types {
			if t != progressType {
				queries = append(queries, pruneQuery{PruneEvents, now.Add(-cfg.Events), pruneEventsSQL, []any{t}})
			}
		}
	}
	if cfg.Deliveries > 0 {
		queries = append(queries, pruneQuery{PruneDeliveries, now.Add(-cfg.Deliveries), pruneDeliveriesSQL, nil})
	}
	if cfg.Sweeps > 0 {
		queries = append(queries, pruneQuery{PruneSweeps, now.Add(-cfg.Sweeps), pruneSweepsSQL, nil})
	}
	if cfg.DeadAfter > 0 {
		queries = append(queries,
			pruneQuery{PruneReplicas, now.Add(-cfg.DeadAfter), pruneReplicasSQL, nil},
			pruneQuery{PruneLeases, now.Add(-cfg.DeadAfter), pruneLeasesSQL, nil})
	}
	for _, q := range queries {
		if err := s.pruneAll(ctx, conn, cfg, q, pruned); err != nil {
			return pruned, true, err
		}
	}
	return pruned, true, nil
}

// pruneQuery is one query of a pass: rows of kind older than cutoff, args
// the query's arguments after the first three.
type pruneQuery struct {
	kind   PruneKind
	cutoff time.Time
	sql    string
	args   []any
}

// pruneAll runs q, batch after batch, until a batch finds fewer rows than
// it may take.
func (s *Store) pruneAll(ctx context.Context, conn *pgx.Conn, cfg PruneConfig, q pruneQuery, pruned Pruned) error {
	kind := q.kind
	cursor := pgtype.Timestamptz{InfinityModifier: pgtype.NegativeInfinity, Valid: true}
	for {
		var chosen, deleted int64
		var last *time.Time
		args := append([]any{cursor, q.cutoff, cfg.BatchSize}, q.args...)
		if err := conn.QueryRow(ctx, q.sql, args...).Scan(&chosen, &deleted, &last); err != nil {
			return fmt.Errorf("prune %s older than %s: %w", kind, q.cutoff.UTC().Format(time.RFC3339), describePruneError(err, cfg))
		}
		pruned[kind] += deleted
		if deleted > 0 && cfg.OnBatch != nil {
			cfg.OnBatch(kind, deleted)
		}
		if chosen < int64(cfg.BatchSize) || last == nil {
			return nil
		}
		cursor = pgtype.Timestamptz{Time: *last, Valid: true}
		pause := cfg.Pause/2 + rand.N(cfg.Pause+1)
		select {
		case <-ctx.Done():
			return fmt.Errorf("prune %s: %w", kind, ctx.Err())
		case <-time.After(pause):
		}
	}
}

// describePruneError names the bound a batch ran into.
func describePruneError(err error, cfg PruneConfig) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "55P03": // lock_not_available
			return fmt.Errorf("waited longer than the lock timeout (%s) for a row another process holds: %w", cfg.LockTimeout, err)
		case "57014": // query_canceled
			return fmt.Errorf("batch ran longer than the statement timeout (%s) or was cancelled: %w", cfg.StatementTimeout, err)
		}
	}
	return err
}

package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"iter"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// The job_events table is also the outbox: a row with no published_at waits
// to be published, and its position is then listed in the outbox table (see
// migrations/003_outbox_queue.sql). These are the relay's queries.

const (
	// relayLockName names the transaction-scoped advisory lock a relay round
	// holds, so that one relay publishes at a time (one process or many).
	// Parallel relays would have to split the rows (SKIP LOCKED), which
	// breaks per-job order.
	relayLockName = "ossjobwatch.relay"

	// markTimeout bounds each statement marking acknowledged events
	// published, and the commit, which go on after the caller's context is
	// cancelled: the events are in the stream, and not marking them means
	// publishing them again.
	markTimeout = 5 * time.Second

	// Defaults of RelayRoundConfig: see there.
	DefaultRelayIdleTimeout      = time.Minute
	DefaultRelayStatementTimeout = 30 * time.Second
	DefaultRelayLockTimeout      = 10 * time.Second

	// The LISTEN connection reconnects after min, doubling up to max.
	listenMinBackoff = 100 * time.Millisecond
	listenMaxBackoff = 10 * time.Second
	// A relay round marks acknowledged events once markBatch of them are
	// waiting, or the first of them has waited markDelay, or publishing has
	// ended. Marking each handful as it came cost hundreds of statements a
	// round, whose overhead, on a small machine, slowed publishing by half.
	markBatch = 1000
	markDelay = 50 * time.Millisecond

	// listenPingInterval is how long the LISTEN connection waits for a
	// notification before it checks, with a ping, that it is still alive: a
	// peer that vanished without closing the socket sends no error.
	listenPingInterval = time.Minute
	listenPingTimeout  = 5 * time.Second
)

// OutboxEvent is an event of the outbox as the relay publishes it.
type OutboxEvent struct {
	// Pos is the insert order, the order of publishing.
	Pos int64
	// ID is the CloudEvents id, sent as Nats-Msg-Id.
	ID     string
	Target string
	JobID  string
	// Subject is the NATS subject to publish on.
	Subject  string
	Sequence int64
	// Payload is the exact message body.
	Payload    []byte
	ObservedAt time.Time
	// Owed is set by EventsSince on an event not yet published, or one
	// after such an event of its job: the relay owes them.
	Owed bool
}

// PublishFunc publishes a round's events in order. events yields them as
// they are read from the database (it blocks while the next is read, and
// ends early if ctx is done); ack takes the id of each event JetStream
// acknowledged and when it was acknowledged, as the acknowledgements come
// (from one goroutine at a time). It returns an error if it could not
// publish them all.
type PublishFunc func(ctx context.Context, events iter.Seq[OutboxEvent], ack func(id string, at time.Time)) error

// RelayRoundConfig configures a relay round.
type RelayRoundConfig struct {
	// Limit is the most events the round publishes. Required: positive.
	Limit int

	// IdleTimeout is the round transaction's
	// idle_in_transaction_session_timeout. The transaction is idle while
	// the round waits for acknowledgements; if the relay vanishes (a power
	// loss, a partition), the server ends its session after this long and
	// so releases the relay lock, which it would otherwise hold until TCP
	// keepalive noticed, two hours by default. It must exceed the longest
	// wait for an acknowledgement. Defaults to 1 minute.
	IdleTimeout time.Duration

	// StatementTimeout bounds each statement of the round's transaction
	// (statement_timeout), LockTimeout each of its waits for a lock
	// (lock_timeout): marking needs row locks that a stuck session could
	// hold. Default to 30 and 10 seconds.
	StatementTimeout time.Duration
	LockTimeout      time.Duration
}

func (c RelayRoundConfig) withDefaults() RelayRoundConfig {
	c.IdleTimeout = cmp.Or(c.IdleTimeout, DefaultRelayIdleTimeout)
	c.StatementTimeout = cmp.Or(c.StatementTimeout, DefaultRelayStatementTimeout)
	c.LockTimeout = cmp.Or(c.LockTimeout, DefaultRelayLockTimeout)
	return c
}

func (c RelayRoundConfig) validate() error {
	switch {
	case c.Limit < 1:
		return fmt.Errorf("limit must be positive, got %d", c.Limit)
	case c.IdleTimeout < 0 || c.StatementTimeout < 0 || c.LockTimeout < 0:
		return errors.New("timeouts must not be negative")
	}
	return nil
}

// RelayRound is RelayRoundWith with the default timeouts.
func (s *Store) RelayRound(ctx context.Context, limit int, publish PublishFunc) (published int, locked bool, err error) {
	return s.RelayRoundWith(ctx, RelayRoundConfig{Limit: limit}, publish)
}

// RelayRoundWith publishes up to cfg.Limit unpublished events, in insert
// order, with publish, and marks published those publish reports
// acknowledged, each with the time of its acknowledgement (or its
// observed_at, if that is later: clocks differ).
//
// It runs in one transaction holding a transaction-scoped advisory lock, the
// relay lock, bounded by cfg's timeouts. If another relay (or a replay, see
// LockRelay) holds it, RelayRoundWith publishes nothing and returns locked
// false. A relay that dies between the acknowledgement and the commit leaves
// its events unpublished, to be published again and dropped by JetStream as
// duplicates.
//
// Marking goes on while publish runs, on the acknowledgements so far, so
// that the database's work overlaps the publishing instead of following it.
// The acknowledged events are marked even if publish fails or ctx is
// cancelled while it runs (within a short timeout): they are in the stream.
// publish's error is returned after the commit, joined with any error
// marking or committing.
func (s *Store) RelayRoundWith(ctx context.Context, cfg RelayRoundConfig, publish PublishFunc) (published int, locked bool, err error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return 0, false, fmt.Errorf("relay round: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return 0, false, err
	}
	// The transaction runs on a context of its own so that marking and
	// committing survive ctx's cancellation; the lock and the select use ctx.
	txCtx, cancelTx := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelTx()
	var commitDeadline *time.Timer
	defer func() {
		if commitDeadline != nil {
			commitDeadline.Stop()
		}
	}()

	var pubErr error
	err = s.WithTx(txCtx, func(tx pgx.Tx) error {
		// The commit need not wait for its WAL to reach the disk: if the
		// database loses it in a crash, the events are published again and
		// dropped as duplicates, and each round is spared a flush. The
		// timeouts are set first: they bound the rest.
		if err := tx.QueryRow(ctx, `
			SELECT set_config('idle_in_transaction_session_timeout', $2, true),
				set_config('statement_timeout', $3, true),
				set_config('lock_timeout', $4, true),
				set_config('synchronous_commit', 'off', true),
				pg_try_advisory_xact_lock(hashtextextended($1, 0))`,
			relayLockName, pgMillis(cfg.IdleTimeout), pgMillis(cfg.StatementTimeout), pgMillis(cfg.LockTimeout),
		).Scan(nil, nil, nil, nil, &locked); err != nil {
			return fmt.Errorf("take relay lock: %w", err)
		}
		if !locked {
			return nil
		}
		published, pubErr, err = s.publishAndMark(ctx, txCtx, tx, cfg.Limit, publish)
		commitDeadline = time.AfterFunc(markTimeout, cancelTx)
		return err
	})
	if err != nil {
		return 0, locked, errors.Join(pubErr, err)
	}
	return published, locked, pubErr
}

// pgMillis formats d for set_config: whole milliseconds, at least 1 (0
// would mean no limit).
func pgMillis(d time.Duration) string {
	return strconv.FormatInt(max(d.Milliseconds(), 1), 10) + "ms"
}

// ack is one acknowledgement.
type ack struct {
	id string
	at time.Time
}

// acks hands acknowledgements from the publishing goroutine to the marking
// one.
type acks struct {
	mu    sync.Mutex
	acks  []ack
	first time.Time     // when the first of acks was added
	more  chan struct{} // holds a signal when acks has markBatch, or its first
}

func (a *acks) add(id string, at time.Time) {
	a.mu.Lock()
	if len(a.acks) == 0 {
		a.first = time.Now()
	}
	a.acks = append(a.acks, ack{id, at})
	signal := len(a.acks) == 1 || len(a.acks) == markBatch
	a.mu.Unlock()
	if signal {
		select {
		case a.more <- struct{}{}:
		default:
		}
	}
}

// take returns the acknowledgements waiting, if all is set or they are due
// (see markBatch); otherwise none, and how long until they are due.
func (a *acks) take(all bool) ([]ack, time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.acks) == 0 {
		return nil, 0
	}
	if wait := markDelay - time.Since(a.first); !all && len(a.acks) < markBatch && wait > 0 {
		return nil, wait
	}
	acks := a.acks
	a.acks = nil
	return acks, 0
}

// publishAndMark hands the round's events to publish, running on a
// goroutine of its own, and marks the events it acknowledges, each statement
// taking all acknowledged since the last.
//
// The events are read on a second connection, streamed row by row as the
// sender's window takes them, while the round's transaction marks: reading
// and marking then run on two database backends at once instead of taking
// turns on one, and publishing overlaps both. Reading outside the round's
// transaction is safe: only the relay holding the lock reads or marks the
// outbox, and an event committed after the read waits for the next round.
// It returns how many it marked, publish's error and the reading's or
// marking's. publish is not called when nothing is pending.
func (s *Store) publishAndMark(ctx, txCtx context.Context, tx pgx.Tx, limit int, publish PublishFunc) (marked int, pubErr, err error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return 0, nil, fmt.Errorf("read outbox: %w", err)
	}
	defer conn.Release()
	// An index probe of job_events per queued event. The planner flattens
	// the LATERAL into a plain join, so on a small, analyzed job_events it
	// may hash-join over a scan instead, which there costs as little.
	rows, err := conn.Query(ctx, `
		SELECT e.pos, e.id, e.target, e.job_id, e.subject, e.sequence, e.payload, e.observed_at
		FROM (SELECT pos FROM outbox ORDER BY pos LIMIT $1) o
		CROSS JOIN LATERAL (SELECT * FROM job_events WHERE job_events.pos = o.pos) e
		ORDER BY o.pos`, limit)
	if err != nil {
		return 0, nil, fmt.Errorf("read outbox: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return 0, nil, fmt.Errorf("read outbox: %w", err)
		}
		return 0, nil, nil
	}

	pubCtx, cancelPub := context.WithCancel(ctx)
	defer cancelPub()
	// Acknowledgements name events by id; marking goes by pos, a bigint the
	// primary key of outbox and a unique index of job_events.
	var posMu sync.Mutex
	posOf := make(map[string]int64, min(limit, 4096))
	readErr := make(chan error, 1)
	events := func(yield func(OutboxEvent) bool) {
		var err error
		defer func() {
			if err == nil && rows.Err() != nil {
				err = fmt.Errorf("read outbox: %w", rows.Err())
			}
			readErr <- err
		}()
		for {
			var ev OutboxEvent
			if ev, err = scanOutboxEvent(rows); err != nil {
				err = fmt.Errorf("read outbox: %w", err)
				return
			}
			posMu.Lock()
			posOf[ev.ID] = ev.Pos
			posMu.Unlock()
			if pubCtx.Err() != nil || !yield(ev) || !rows.Next() {
				return
			}
		}
	}
	a := &acks{more: make(chan struct{}, 1)}
	done := make(chan error, 1)
	go func() { done <- publish(pubCtx, events, a.add) }()

	finished := false
	var due <-chan time.Time // when the acknowledgements waiting are due
	for {
		if !finished {
			select {
			case <-a.more:
			case <-due:
			case pubErr = <-done:
				finished = true
			}
		}
		taken, wait := a.take(finished)
		due = nil
		if wait > 0 {
			due = time.After(wait)
		}
		if len(taken) == 0 {
			if finished {
				// A read that broke off is publish's failure, not the
				// round's: what was acknowledged is in the stream and is
				// committed as published.
				return marked, errors.Join(pubErr, readError(readErr)), nil
			}
			continue
		}
		positions := make([]int64, 0, len(taken))
		times := make([]time.Time, 0, len(taken))
		posMu.Lock()
		for _, a := range taken {
			if pos, ok := posOf[a.id]; ok {
				positions = append(positions, pos)
				times = append(times, a.at)
				delete(posOf, a.id)
			}
		}
		posMu.Unlock()
		markCtx, cancel := context.WithTimeout(txCtx, markTimeout)
		n, err := markPublished(markCtx, tx, positions, times)
		cancel()
		if err != nil {
			if !finished {
				// The transaction is lost: publishing more is pointless.
				cancelPub()
				pubErr = <-done
			}
			return marked, pubErr, fmt.Errorf("mark %d events published: %w", len(taken), err)
		}
		marked += n
	}
}

// markPublished marks the events at positions published, each at its time
// (when JetStream acknowledged it, never before it was observed), and takes
// them out of the outbox. It returns how many it marked: an event marked
// already is left as it is.
//
// Positions that are every integer of a range, as a round's are when
// nothing else was written between its events (a sweep's burst, say), are
// marked by that range: one scan of the pos index instead of a probe per
// event, a quarter cheaper at a thousand events. No other event can lie in
// such a range, pos being unique, so the range names these events and no
// others, whatever was committed since the round read them.
func markPublished(ctx context.Context, tx pgx.Tx, positions []int64, times []time.Time) (int, error) {
	if lo, ok := consecutive(positions); ok {
		// times in pos order: $3[pos - lo + 1] is the time of pos.
		byPos := make([]time.Time, len(positions))
		for i, pos := range positions {
			byPos[pos-lo] = times[i]
		}
		var n int
		err := tx.QueryRow(ctx, `
			WITH marked AS (
				UPDATE job_events e SET published_at = greatest(($3::timestamptz[])[e.pos - $1 + 1], e.observed_at)
				WHERE e.pos BETWEEN $1 AND $2 AND e.published_at IS NULL
				RETURNING 1
			), unqueued AS (
				DELETE FROM outbox WHERE pos BETWEEN $1 AND $2
			)
			SELECT count(*) FROM marked`, lo, lo+int64(len(positions))-1, byPos).Scan(&n)
		return n, err
	}
	tag, err := tx.Exec(ctx, `
		WITH marked AS (
			UPDATE job_events e SET published_at = greatest(a.at, e.observed_at)
			FROM unnest($1::bigint[], $2::timestamptz[]) a(pos, at)
			WHERE e.pos = a.pos AND e.published_at IS NULL
			RETURNING e.pos
		)
		DELETE FROM outbox WHERE pos IN (SELECT pos FROM marked)`, positions, times)
	return int(tag.RowsAffected()), err
}

// consecutive reports whether positions are every integer from their least
// to their greatest, each once, in any order, and returns the least. A
// repeated position fails it: [1 1 3] spans three integers but lacks 2, and
// marking 1 to 3 would mark an event nobody acknowledged.
func consecutive(positions []int64) (lo int64, ok bool) {
	if len(positions) == 0 {
		return 0, false
	}
	lo, hi := positions[0], positions[0]
	for _, pos := range positions[1:] {
		lo, hi = min(lo, pos), max(hi, pos)
	}
	if hi-lo != int64(len(positions))-1 {
		return lo, false
	}
	seen := make([]bool, len(positions))
	for _, pos := range positions {
		if seen[pos-lo] {
			return lo, false
		}
		seen[pos-lo] = true
	}
	return lo, true
}

// readError returns the reading's error, if the events were read at all.
func readError(ch <-chan error) error {
	select {
	case err := <-ch:
		return err
	default:
		return nil
	}
}

// scanOutboxEvent reads the id as 16 bytes, not as text: formatting it here
// is cheaper than in the database, at 10,000 events a round.
func scanOutboxEvent(row pgx.CollectableRow) (OutboxEvent, error) {
	var ev OutboxEvent
	var id uuid.UUID
	err := row.Scan(&ev.Pos, &id, &ev.Target, &ev.JobID, &ev.Subject, &ev.Sequence, &ev.Payload, &ev.ObservedAt)
	ev.ID = id.String()
	return ev, err
}

// OutboxStats returns how many events wait to be published and when the
// oldest of them was observed (zero if none), for metrics.
func (s *Store) OutboxStats(ctx context.Context) (pending int64, oldest time.Time, err error) {
	var first *time.Time
	err = s.pool.QueryRow(ctx, `SELECT count(*), min(e.observed_at) FROM outbox o JOIN job_events e ON e.pos = o.pos`).Scan(&pending, &first)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("read outbox statistics: %w", err)
	}
	if first != nil {
		oldest = *first
	}
	return pending, oldest, nil
}

// EventsSince returns the events observed at or after since, published or
// not, in insert order, for replay. target and jobID narrow them down; ""
// means any.
//
// A job's events from its first unpublished one on come with Owed set: the
// relay owes them, and a replay that published them, or anything after them,
// would put them in the stream out of order. A replay holds the relay lock
// (LockRelay) while it iterates, so that no relay publishes meanwhile.
//
// Rows are streamed as they are read: the iteration holds a connection until
// it ends. The first error ends it.
func (s *Store) EventsSince(ctx context.Context, since time.Time, target, jobID string) iter.Seq2[OutboxEvent, error] {
	return func(yield func(OutboxEvent, error) bool) {
		fail := func(err error) {
			yield(OutboxEvent{}, fmt.Errorf("read events since %s: %w", since.Format(time.RFC3339), err))
		}
		rows, err := s.pool.Query(ctx, `
			SELECT pos, id, target, job_id, subject, sequence, payload, observed_at, published_at IS NULL
			FROM job_events
			WHERE observed_at >= $1 AND ($2 = '' OR target = $2) AND ($3 = '' OR job_id = $3)
			ORDER BY pos`, since, target, jobID)
		if err != nil {
			fail(err)
			return
		}
		defer rows.Close()
		// A job's events are inserted, and published, in sequence order:
		// once one is pending, so are the rest.
		owed := map[[2]string]bool{}
		for rows.Next() {
			var ev OutboxEvent
			var id uuid.UUID
			var pending bool
			if err := rows.Scan(&ev.Pos, &id, &ev.Target, &ev.JobID, &ev.Subject, &ev.Sequence, &ev.Payload, &ev.ObservedAt, &pending); err != nil {
				fail(err)
				return
			}
			ev.ID = id.String()
			key := [2]string{ev.Target, ev.JobID}
			if pending || owed[key] {
				owed[key], ev.Owed = true, true
			}
			if !yield(ev, nil) {
				return
			}
		}
		if err := rows.Err(); err != nil {
			fail(err)
		}
	}
}

// LockRelay waits until it holds the relay lock, the one each relay round
// takes, and holds it until unlock is called: no relay publishes meanwhile.
// Replay holds it so that a job's events reach the stream in order. Relays
// find the lock taken and wait; unlock wakes them with an outbox
// notification.
//
// The lock is held by a connection of its own, outside the pool, which
// unlock closes: if the process dies, the server releases the lock with the
// session.
func (s *Store) LockRelay(ctx context.Context) (unlock func(), err error) {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig)
	if err != nil {
		return nil, fmt.Errorf("take relay lock: connect: %w", err)
	}
	closeConn := func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
		defer cancel()
		_ = conn.Close(closeCtx) // the session, and its lock, end with it
	}
	// Relay rounds are short: wait for the one in progress however long the
	// session's defaults would allow, as ctx decides.
	if _, err := conn.Exec(ctx, `
		SELECT set_config('lock_timeout', '0', false), set_config('statement_timeout', '0', false),
			pg_advisory_lock(hashtextextended($1, 0))`, relayLockName); err != nil {
		closeConn()
		return nil, fmt.Errorf("take relay lock: %w", err)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			// Unlocked before closing: the server ends a closed session,
			// and releases its locks, only some time after.
			unlockCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
			defer cancel()
			_, _ = conn.Exec(unlockCtx, `SELECT pg_advisory_unlock(hashtextextended($1, 0))`, relayLockName)
			closeConn()
			_, _ = s.pool.Exec(unlockCtx, `SELECT pg_notify($1, '')`, OutboxChannel)
		})
	}, nil
}

// ListenOutbox listens for OutboxChannel notifications, which sweeps send
// when they write events, and signals each on the returned channel.
//
// Signals are coalesced: the channel holds one, and a signal not yet
// received stands for any number of notifications. One is also sent each
// time the listener (re)connects, the first time included, since events may
// have been written while it was not listening.
//
// It listens on a connection of its own, outside the pool: LISTEN is session
// state, and a pooled connection would carry it to other users or lose it.
// If the connection fails it reconnects, backing off from 100ms to 10s, and
// reports the error to onError (if not nil). The channel is closed once ctx
// is done and the connection closed.
func (s *Store) ListenOutbox(ctx context.Context, onError func(error)) <-chan struct{} {
	ch := make(chan struct{}, 1)
	go func() {
		defer close(ch)
		backoff := listenMinBackoff
		for {
			connected, err := s.listenOnce(ctx, ch)
			if ctx.Err() != nil {
				return
			}
			if connected {
				backoff = listenMinBackoff
			}
			if onError != nil {
				onError(err)
			}
			// Jitter, so that replicas do not reconnect in step.
			wait := backoff/2 + rand.N(backoff/2+1)
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			backoff = min(2*backoff, listenMaxBackoff)
		}
	}()
	return ch
}

// listenOnce connects, listens and signals until the connection fails or
// ctx is done. connected reports whether it got as far as listening.
func (s *Store) listenOnce(ctx context.Context, ch chan<- struct{}) (connected bool, err error) {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig)
	if err != nil {
		return false, fmt.Errorf("listen for outbox notifications: connect: %w", err)
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
		defer cancel()
		_ = conn.Close(closeCtx) // the session, and its LISTEN, end with it
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{OutboxChannel}.Sanitize()); err != nil {
		return false, fmt.Errorf("listen for outbox notifications: %w", err)
	}
	for {
		select {
		case ch <- struct{}{}:
		default: // a signal is pending already
		}
		if err := waitForNotification(ctx, conn); err != nil {
			return true, fmt.Errorf("listen for outbox notifications: %w", err)
		}
	}
}

// waitForNotification waits for a notification, pinging the server after
// each quiet listenPingInterval.
func waitForNotification(ctx context.Context, conn *pgx.Conn) error {
	for {
		waitCtx, cancel := context.WithTimeout(ctx, listenPingInterval)
		_, err := conn.WaitForNotification(waitCtx)
		cancel()
		if err == nil || ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		// A timed-out wait leaves the connection usable.
		pingCtx, cancel := context.WithTimeout(ctx, listenPingTimeout)
		err = conn.Ping(pingCtx)
		cancel()
		if err != nil {
			return fmt.Errorf("ping: %w", err)
		}
	}
}

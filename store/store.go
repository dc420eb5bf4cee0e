// Package store holds all of ossjobwatch's SQL: the PostgreSQL connection
// pool, the schema migrations, and (as the poller and the relay need them)
// the named queries over the jobs snapshots and the job_events outbox.
//
// Library errors are translated once, here: a query that finds no row
// returns ErrNotFound, never pgx.ErrNoRows. Errors never carry the database
// password; RedactURL makes a DSN safe to log.
package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrNotFound is returned when a lookup finds no row.
var ErrNotFound = errors.New("not found")

const (
	defaultMaxConns        = 8
	minConns               = 2
	defaultConnectTimeout  = 10 * time.Second
	defaultApplicationName = "ossjobwatch"

	defaultLockTimeout      = 30 * time.Second
	defaultStatementTimeout = 2 * time.Minute
	defaultIdleInTxTimeout  = 2 * time.Minute
	keepaliveIdle           = 30 * time.Second
	keepaliveInterval       = 10 * time.Second
	keepaliveCount          = 3

	// rollbackTimeout bounds the rollback of a failed or cancelled
	// transaction, which runs on a context detached from the caller's.
	rollbackTimeout = 5 * time.Second
)

// Config tunes the connection pool. The zero value is ready to use; settings
// left zero fall back to the database URL's own parameters (pool_max_conns,
// connect_timeout, application_name), then to the defaults below.
type Config struct {
	// MaxConns is the most connections the pool opens. A sweep holds one for
	// its transaction and the relay one more, and LISTEN needs its own.
	// Defaults to pool_max_conns from the URL (at least 2: a relay round
	// uses two), or else the number of CPUs and at least 8. A pool given
	// its size here may be smaller, for a purpose that needs one connection.
	MaxConns int32

	// ConnectTimeout bounds opening each connection, and the ping in Open.
	// Defaults to connect_timeout from the URL, or else 10 seconds.
	ConnectTimeout time.Duration

	// ApplicationName is shown in pg_stat_activity. Defaults to
	// application_name from the URL, or else "ossjobwatch".
	ApplicationName string

	// LockTimeout bounds how long a sweep's apply waits for its target's
	// lock (held by another replica's apply) or a row lock. Defaults to 30
	// seconds.
	LockTimeout time.Duration

	// StatementTimeout bounds each statement of a sweep's apply. Defaults
	// to 2 minutes: a first sweep of 100,000 jobs writes in seconds.
	StatementTimeout time.Duration

	// IdleInTransactionTimeout is the server's idle_in_transaction_session_timeout
	// for every connection (unless the URL sets it): a replica that dies or
	// hangs inside a transaction loses it, and the locks it held, after this
	// long. Defaults to 2 minutes. Every connection also asks the server for
	// TCP keepalives (30 s idle, 10 s apart, 3 probes) and uses them itself,
	// so a peer that lost power is noticed in about a minute, not two hours.
	IdleInTransactionTimeout time.Duration
}

func (c Config) validate() error {
	if c.MaxConns < 0 {
		return fmt.Errorf("MaxConns: must not be negative, got %d", c.MaxConns)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"ConnectTimeout", c.ConnectTimeout}, {"LockTimeout", c.LockTimeout}, {"StatementTimeout", c.StatementTimeout}, {"IdleInTransactionTimeout", c.IdleInTransactionTimeout}} {
		if d.v < 0 {
			return fmt.Errorf("%s: must not be negative, got %s", d.name, d.v)
		}
	}
	return nil
}

// Store is ossjobwatch's PostgreSQL database. It is safe for concurrent use.
type Store struct {
	pool             *pgxpool.Pool
	lockTimeout      time.Duration
	statementTimeout time.Duration
	// afterPart, if set (by tests), runs between the parts of a sweep
	// written in parts, after part n committed; an error ends the apply.
	afterPart func(ctx context.Context, n int) error
}

// Open connects to the database at databaseURL (a postgres:// URL or a
// key=value DSN) and pings it within cfg.ConnectTimeout. It does not migrate:
// call Migrate. Errors name the database with its password redacted.
func Open(ctx context.Context, databaseURL string, cfg Config) (*Store, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("store config: %w", err)
	}
	poolCfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, redactError(fmt.Errorf("parse database URL: %w", err), databaseURL)
	}
	switch {
	case cfg.MaxConns > 0:
		poolCfg.MaxConns = cfg.MaxConns
	case !strings.Contains(databaseURL, "pool_max_conns"):
		// pgxpool's own default, max(4, number of CPUs), is too few on a
		// small machine for sweeps, the relay and a LISTEN connection.
		poolCfg.MaxConns = max(defaultMaxConns, poolCfg.MaxConns)
	}
	if cfg.MaxConns == 0 && poolCfg.MaxConns < minConns {
		// A relay round holds one connection for its transaction and reads
		// the outbox on a second: with one, it would wait for itself. (A
		// caller that sets Config.MaxConns opens a pool for a purpose of its
		// own, such as the leases' single connection.)
		return nil, fmt.Errorf("pool_max_conns %d: at least %d connections are needed (a relay round uses two)", poolCfg.MaxConns, minConns)
	}
	if cfg.ConnectTimeout > 0 || poolCfg.ConnConfig.ConnectTimeout == 0 {
		poolCfg.ConnConfig.ConnectTimeout = cmp.Or(cfg.ConnectTimeout, defaultConnectTimeout)
	}
	if cfg.ApplicationName != "" || poolCfg.ConnConfig.RuntimeParams["application_name"] == "" {
		poolCfg.ConnConfig.RuntimeParams["application_name"] = cmp.Or(cfg.ApplicationName, defaultApplicationName)
	}
	bound(poolCfg.ConnConfig, cfg)

	pool, err := pgxpool.NewWithConfig(ctx, poolCfg)
	if err != nil {
		return nil, redactError(fmt.Errorf("create pool for %s: %w", RedactURL(databaseURL), err), databaseURL)
	}
	pingCtx, cancel := context.WithTimeout(ctx, poolCfg.ConnConfig.ConnectTimeout)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, redactError(fmt.Errorf("ping %s: %w", RedactURL(databaseURL), err), databaseURL)
	}
	return &Store{
		pool:             pool,
		lockTimeout:      cmp.Or(cfg.LockTimeout, defaultLockTimeout),
		statementTimeout: cmp.Or(cfg.StatementTimeout, defaultStatementTimeout),
	}, nil
}

// bound makes a connection that outlives its peer, or a transaction left
// open, end on its own: the server ends a session idle in a transaction for
// too long (releasing its advisory locks), and both ends send TCP
// keepalives. Settings the URL gives are kept.
func bound(cc *pgx.ConnConfig, cfg Config) {
	params := map[string]string{
		"idle_in_transaction_session_timeout": millis(cmp.Or(cfg.IdleInTransactionTimeout, defaultIdleInTxTimeout)),
		"tcp_keepalives_idle":                 strconv.Itoa(int(keepaliveIdle / time.Second)),
		"tcp_keepalives_interval":             strconv.Itoa(int(keepaliveInterval / time.Second)),
		"tcp_keepalives_count":                strconv.Itoa(keepaliveCount),
	}
	for k, v := range params {
		if _, set := cc.RuntimeParams[k]; !set {
			cc.RuntimeParams[k] = v
		}
	}
	dialer := &net.Dialer{KeepAliveConfig: net.KeepAliveConfig{
		Enable: true, Idle: keepaliveIdle, Interval: keepaliveInterval, Count: keepaliveCount,
	}}
	cc.DialFunc = dialer.DialContext
}

// millis renders d as PostgreSQL reads a duration setting in milliseconds.
func millis(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }

// boundTx bounds the waits of a sweep's transaction: for locks, and for
// each statement.
func (s *Store) boundTx(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `SELECT set_config('lock_timeout', $1, true), set_config('statement_timeout', $2, true)`,
		millis(s.lockTimeout), millis(s.statementTimeout)); err != nil {
		return fmt.Errorf("bound transaction: %w", err)
	}
	return nil
}

// describeTimeout names the bound a statement ran into, for errors a user
// can act on.
func (s *Store) describeTimeout(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "55P03": // lock_not_available
			return fmt.Errorf("waited longer than the lock timeout (%s): another process holds the lock: %w", s.lockTimeout, err)
		case "57014": // query_canceled
			return fmt.Errorf("ran longer than the statement timeout (%s) or was cancelled: %w", s.statementTimeout, err)
		}
	}
	return err
}

// Close closes the pool's connections, waiting for acquired ones to be
// released.
func (s *Store) Close() {
	s.pool.Close()
}

// Pool returns the underlying pool, for what the store does not wrap:
// health checks, pool statistics for metrics, a dedicated LISTEN connection.
func (s *Store) Pool() *pgxpool.Pool {
	return s.pool
}

// WithTx runs fn in a transaction and commits it if fn returns nil. It and
// WithReadTx are the project's only Begin.
//
// If fn returns an error or panics, or ctx is cancelled, the transaction is
// rolled back, on a context detached from ctx with a short timeout, so that a
// cancelled sweep still releases its locks and connection at once. fn's error
// is returned as is; a failed rollback is joined to it.
func (s *Store) WithTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return s.withTx(ctx, pgx.TxOptions{}, fn)
}

// withTx is WithTx with the transaction's options: the one Begin, which
// WithTx and WithReadTx share.
func (s *Store) withTx(ctx context.Context, opts pgx.TxOptions, fn func(pgx.Tx) error) (err error) {
	tx, err := s.pool.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer func() {
		// After a successful Commit, Rollback is a no-op returning
		// ErrTxClosed. On a panic it runs too, and the panic goes on.
		rbCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
		defer cancel()
		if rbErr := tx.Rollback(rbCtx); rbErr != nil && !errors.Is(rbErr, pgx.ErrTxClosed) {
			err = errors.Join(err, fmt.Errorf("roll back transaction: %w", rbErr))
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	if err = tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit transaction: %w", err)
	}
	return nil
}

// interpretError translates pgx errors into the store's: pgx.ErrNoRows
// becomes ErrNotFound. Queries pass their errors through it once.
func interpretError(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

// Package storetest gives each test a fresh PostgreSQL database on a real
// server, in the manner of River's riverdbtest. Tests never skip for want of
// a database:
//
//   - If OSSJOBWATCH_TEST_DATABASE_URL is set, its server is used. The role
//     needs CREATEDB; the helper creates and drops databases named
//     ossjobwatch_test_* and keeps one template database per version of the
//     migrations, ossjobwatch_tmpl_<hash>.
//   - Otherwise the first test that asks starts one throwaway server for the
//     whole test binary, from the local PostgreSQL binaries (initdb and
//     postgres on PATH, or else the newest /usr/lib/postgresql/*/bin; see
//     .ci/install-postgres.sh). It runs in a private directory on
//     /dev/shm if that is a tmpfs with a GiB free (creating a database there
//     takes milliseconds, on disk a few hundred), else under os.TempDir().
//     It listens on a free port of 127.0.0.1 only, trades durability for
//     speed (fsync=off), and is stopped by Main.
//
// A package using it calls Main from its TestMain:
//
//	func TestMain(m *testing.M) { storetest.Main(m) }
//
// # Leaks
//
// Main stops the server and removes its directory after the tests. If the
// test binary dies instead (a panic in a goroutine, a timeout, SIGKILL), the
// kernel sends the postmaster SIGQUIT, PostgreSQL's immediate shutdown: on
// Linux it is started with a parent-death signal, from a goroutine locked to
// its OS thread so the signal cannot fire early. The next test binary to
// start a server removes directories left by processes that are gone.
//
// # Running as root
//
// PostgreSQL refuses to run as root. When the tests do (containers, CI), the
// helper runs initdb and postgres as the "postgres" user, or else "nobody",
// through exec's SysProcAttr.Credential, in a directory it chowns to that
// user. .ci/install-postgres.sh makes sure such a user exists.
package storetest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ossjobwatch/ossjobwatch/internal/pgtemp"
	"github.com/ossjobwatch/ossjobwatch/migrations"
	"github.com/ossjobwatch/ossjobwatch/store"
)

// EnvDatabaseURL names the environment variable of an existing server's URL.
// Its database is only used to create and drop others.
const EnvDatabaseURL = "OSSJOBWATCH_TEST_DATABASE_URL"

const (
	testDatabasePrefix     = "ossjobwatch_test_"
	templateDatabasePrefix = "ossjobwatch_tmpl_"

	// templateLockID serialises building the template across test binaries
	// that share a server ("ossjobt" in ASCII; unlike store's migration lock).
	templateLockID int64 = 0x6f73736a6f6274

	// opTimeout bounds each administrative step: creating, migrating or
	// dropping a database.
	opTimeout = time.Minute
)

// The state of one test binary: one server, one admin pool, one template.
// Package-level because the server outlives any single test.
var (
	mainCalled atomic.Bool

	envOnce sync.Once
	env     *testEnv
	envErr  error

	templateOnce sync.Once
	templateName string
	templateErr  error
)

// testEnv is the server the tests of this binary use.
type testEnv struct {
	url    string         // the server's admin database, as given or started
	server *pgtemp.Server // nil when EnvDatabaseURL was given
	admin  *pgxpool.Pool  // on url: CREATE and DROP DATABASE
}

// Main runs the tests of a package that uses storetest, then stops the
// throwaway server, if one was started, and removes its directory. Call it
// from TestMain. It does not return.
func Main(m *testing.M) {
	mainCalled.Store(true)
	code := m.Run()
	if env != nil {
		env.admin.Close()
		if env.server != nil {
			if err := env.server.Stop(); err != nil {
				fmt.Fprintf(os.Stderr, "storetest: %v\n", err)
				code = max(code, 1)
			}
		}
	}
	os.Exit(code)
}

// DatabaseURL returns the URL of the test server's administrative database:
// OSSJOBWATCH_TEST_DATABASE_URL, or else the throwaway server's "postgres"
// database, starting the server on first use. Tests should not write to it;
// NewStore and NewDatabaseURL give each test a database of its own.
func DatabaseURL(tb testing.TB) string {
	tb.Helper()
	return getEnv(tb).url
}

// NewDatabaseURL creates an empty database, not migrated, for tests of
// migrations, and returns its URL. The database is dropped when the test ends.
func NewDatabaseURL(tb testing.TB) string {
	tb.Helper()
	return newDatabase(tb, "template0")
}

// NewStore returns a store on a fresh, migrated database of its own, closed
// and dropped when the test ends. The database is a copy of a template
// migrated once per test binary, which is much faster than migrating each.
func NewStore(tb testing.TB) *store.Store {
	tb.Helper()
	getEnv(tb)
	templateOnce.Do(func() { templateName, templateErr = buildTemplate(env) })
	if templateErr != nil {
		tb.Fatalf("storetest: build template database: %v", templateErr)
	}
	databaseURL := newDatabase(tb, templateName)

	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	s, err := store.Open(ctx, databaseURL, store.Config{})
	if err != nil {
		tb.Fatalf("storetest: %v", err)
	}
	tb.Cleanup(s.Close) // cleanups run last first: before newDatabase's drop
	return s
}

// ServerPID returns the process id of the throwaway PostgreSQL server (its
// postmaster, every backend's parent), for benchmarks that read its CPU
// time with proctest.TreeCPU; 0 if the tests use a server of
// OSSJOBWATCH_TEST_DATABASE_URL instead.
func ServerPID(tb testing.TB) int {
	tb.Helper()
	if e := getEnv(tb); e.server != nil {
		return e.server.PID()
	}
	return 0
}

func getEnv(tb testing.TB) *testEnv {
	tb.Helper()
	envOnce.Do(func() {
		start := time.Now()
		env, envErr = setup()
		if envErr == nil && env.server != nil {
			tb.Logf("storetest: started a throwaway PostgreSQL server in %s: %s", time.Since(start).Round(time.Millisecond), env.url)
		}
	})
	if envErr != nil {
		tb.Fatalf("storetest: %v", envErr)
	}
	return env
}

func setup() (*testEnv, error) {
	e := &testEnv{url: os.Getenv(EnvDatabaseURL)}
	if e.url == "" {
		if !mainCalled.Load() {
			return nil, errors.New("the package's TestMain must call storetest.Main(m), which stops the throwaway PostgreSQL server after the tests (or set " + EnvDatabaseURL + ")")
		}
		srv, err := pgtemp.Start()
		if err != nil {
			return nil, fmt.Errorf("start throwaway PostgreSQL server (or set %s): %w", EnvDatabaseURL, err)
		}
		e.server, e.url = srv, srv.URL()
	}
	var err error
	if e.admin, err = newAdmin(e.url); err != nil {
		if e.server != nil {
			err = errors.Join(err, e.server.Stop())
		}
		return nil, err
	}
	return e, nil
}

// newAdmin opens the pool that creates and drops databases.
func newAdmin(databaseURL string) (*pgxpool.Pool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	admin, err := pgxpool.New(ctx, databaseURL)
	if err == nil {
		if err = admin.Ping(ctx); err != nil {
			admin.Close()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", store.RedactURL(databaseURL), err)
	}
	return admin, nil
}

// newDatabase creates a database copied from template and returns its URL;
// the database is dropped, whoever is still connected, when the test ends.
func newDatabase(tb testing.TB, template string) string {
	tb.Helper()
	e := getEnv(tb)
	name := testDatabasePrefix + strings.ToLower(rand.Text()[:16])
	databaseURL, err := withDatabase(e.url, name)
	if err != nil {
		tb.Fatalf("storetest: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if _, err := e.admin.Exec(ctx, "CREATE DATABASE "+ident(name)+" TEMPLATE "+ident(template)); err != nil {
		tb.Fatalf("storetest: create database %s from %s: %v", name, template, err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		if _, err := e.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+ident(name)+" WITH (FORCE)"); err != nil {
			tb.Errorf("storetest: drop database %s: %v", name, err)
		}
	})
	return databaseURL
}

// buildTemplate returns the name of a template database holding the current
// migrations, building it unless a test binary sharing the server did.
//
// The name carries a hash of the migration files, so an edited migration
// gets a new template. It is built under an advisory lock, migrated by
// store.Migrate itself, and only then marked as a template that accepts no
// connections: a half-built one (its builder died) is not marked and is
// rebuilt.
func buildTemplate(e *testEnv) (string, error) {
	name, err := templateDatabaseName()
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()

	// A connection of its own: closing it releases the session lock.
	conn, err := pgx.Connect(ctx, e.url)
	if err != nil {
		return "", fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", templateLockID); err != nil {
		return "", fmt.Errorf("lock: %w", err)
	}

	var ready bool
	err = conn.QueryRow(ctx, "SELECT datistemplate AND NOT datallowconn FROM pg_database WHERE datname = $1", name).Scan(&ready)
	switch {
	case err == nil && ready:
		return name, nil
	case err == nil:
		if _, err := conn.Exec(ctx, "DROP DATABASE "+ident(name)+" WITH (FORCE)"); err != nil {
			return "", fmt.Errorf("drop half-built %s: %w", name, err)
		}
	case !errors.Is(err, pgx.ErrNoRows):
		return "", fmt.Errorf("look for %s: %w", name, err)
	}

	if _, err := conn.Exec(ctx, "CREATE DATABASE "+ident(name)+" TEMPLATE template0"); err != nil {
		return "", fmt.Errorf("create %s: %w", name, err)
	}
	databaseURL, err := withDatabase(e.url, name)
	if err != nil {
		return "", err
	}
	s, err := store.Open(ctx, databaseURL, store.Config{MaxConns: 2})
	if err != nil {
		return "", err
	}
	_, err = s.Migrate(ctx)
	s.Close()
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+ident(name)+" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"); err != nil {
		return "", fmt.Errorf("mark %s as a template: %w", name, err)
	}
	return name, nil
}

// templateDatabaseName names the template after a hash of the migrations.
func templateDatabaseName() (string, error) {
	h := sha256.New()
	err := fs.WalkDir(migrations.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(migrations.FS, path)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", path, len(b))
		h.Write(b)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("hash migrations: %w", err)
	}
	return templateDatabasePrefix + hex.EncodeToString(h.Sum(nil))[:16], nil
}

// withDatabase returns dsn pointing at database name instead.
func withDatabase(dsn, name string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("parse %s: invalid URL", store.RedactURL(dsn))
		}
		u.Path, u.RawPath = "/"+name, ""
		return u.String(), nil
	}
	// key=value: a later key overrides an earlier one.
	return dsn + " dbname=" + name, nil
}

func ident(name string) string {
	return pgx.Identifier{name}.Sanitize()
}

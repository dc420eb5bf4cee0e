package store_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/ossjobwatch/ossjobwatch/store"
	"github.com/ossjobwatch/ossjobwatch/store/storetest"
)

func TestOpenDefaults(t *testing.T) {
	t.Parallel()
	s := storetest.NewStore(t)

	if got := s.Pool().Config().MaxConns; got < 8 {
		t.Errorf("MaxConns = %d, want at least 8", got)
	}
	var appName string
	if err := s.Pool().QueryRow(t.Context(), "SELECT current_setting('application_name')").Scan(&appName); err != nil {
		t.Fatal(err)
	}
	if appName != "ossjobwatch" {
		t.Errorf("application_name = %q, want ossjobwatch", appName)
	}
}

func TestOpenSettings(t *testing.T) {
	t.Parallel()
	databaseURL := storetest.NewDatabaseURL(t) + "&pool_max_conns=3&application_name=from-url"

	tests := []struct {
		name         string
		cfg          store.Config
		wantMaxConns int32
		wantAppName  string
	}{
		{"URL", store.Config{}, 3, "from-url"},
		{"Config over URL", store.Config{MaxConns: 5, ApplicationName: "from-config"}, 5, "from-config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := store.Open(t.Context(), databaseURL, tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if got := s.Pool().Config().MaxConns; got != tt.wantMaxConns {
				t.Errorf("MaxConns = %d, want %d", got, tt.wantMaxConns)
			}
			var appName string
			if err := s.Pool().QueryRow(t.Context(), "SELECT current_setting('application_name')").Scan(&appName); err != nil {
				t.Fatal(err)
			}
			if appName != tt.wantAppName {
				t.Errorf("application_name = %q, want %q", appName, tt.wantAppName)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	closedPort := func() int {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	}()

	tests := []struct {
		name     string
		url      string
		cfg      store.Config
		wantText string
		secrets  []string
	}{
		{
			name:     "bad config",
			url:      "postgres://u:s3cr3t-pw@127.0.0.1/db",
			cfg:      store.Config{MaxConns: -1},
			wantText: "MaxConns",
		},
		{
			name:     "a pool too small for the relay",
			url:      "postgres://u:s3cr3t-pw@127.0.0.1/db?pool_max_conns=1",
			wantText: "pool_max_conns 1: at least 2",
			secrets:  []string{"s3cr3t-pw"},
		},
		{
			name:     "URL that does not parse",
			url:      "postgres://u:s3cr3t-pw@h:bad/db",
			wantText: "parse database URL",
			secrets:  []string{"s3cr3t-pw"},
		},
		{
			name:     "DSN that does not parse",
			url:      "host=h password='s3cr3t pw' sslmode=bogus",
			wantText: "parse database URL",
			secrets:  []string{"s3cr3t"},
		},
		{
			name:     "URL of no server",
			url:      fmt.Sprintf("postgres://u:p%%40ss-w0rd@127.0.0.1:%d/db?sslmode=disable", closedPort),
			wantText: "ping postgres://u:xxxxx@127.0.0.1",
			secrets:  []string{"p@ss-w0rd", "p%40ss-w0rd"},
		},
		{
			name:     "DSN of no server",
			url:      fmt.Sprintf("host=127.0.0.1 port=%d user=u password=s3cr3t-pw sslmode=disable", closedPort),
			wantText: "ping host=127.0.0.1",
			secrets:  []string{"s3cr3t-pw"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := store.Open(t.Context(), tt.url, tt.cfg)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("error %q does not contain %q", err, tt.wantText)
			}
			for _, secret := range tt.secrets {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q reveals the password %q", err, secret)
				}
			}
		})
	}
}

func TestWithTx(t *testing.T) {
	t.Parallel()
	errBoom := errors.New("boom")

	tests := []struct {
		name       string
		fn         func(ctx context.Context, cancel context.CancelFunc, tx pgx.Tx) error
		wantErr    error
		wantPanic  bool
		wantStored int
	}{
		{
			name:       "commits",
			fn:         func(ctx context.Context, _ context.CancelFunc, tx pgx.Tx) error { return insert(ctx, tx) },
			wantStored: 1,
		},
		{
			name: "rolls back on error",
			fn: func(ctx context.Context, _ context.CancelFunc, tx pgx.Tx) error {
				if err := insert(ctx, tx); err != nil {
					return err
				}
				return errBoom
			},
			wantErr: errBoom,
		},
		{
			name: "rolls back when cancelled after the work",
			fn: func(ctx context.Context, cancel context.CancelFunc, tx pgx.Tx) error {
				err := insert(ctx, tx)
				cancel()
				return err
			},
			wantErr: context.Canceled,
		},
		{
			name: "rolls back when cancelled during the work",
			fn: func(ctx context.Context, cancel context.CancelFunc, tx pgx.Tx) error {
				if err := insert(ctx, tx); err != nil {
					return err
				}
				cancel()
				return insert(ctx, tx)
			},
			wantErr: context.Canceled,
		},
		{
			name: "rolls back on panic",
			fn: func(ctx context.Context, _ context.CancelFunc, tx pgx.Tx) error {
				if err := insert(ctx, tx); err != nil {
					return err
				}
				panic(errBoom)
			},
			wantPanic: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := storetest.NewStore(t)
			if _, err := s.Pool().Exec(t.Context(), "CREATE TABLE tx_test (v int)"); err != nil {
				t.Fatal(err)
			}

			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			var err error
			panicked := func() (panicked bool) {
				defer func() { panicked = recover() != nil }()
				err = s.WithTx(ctx, func(tx pgx.Tx) error { return tt.fn(ctx, cancel, tx) })
				return false
			}()

			if panicked != tt.wantPanic {
				t.Errorf("panicked = %t, want %t", panicked, tt.wantPanic)
			}
			if tt.wantErr == nil && err != nil || !errors.Is(err, tt.wantErr) {
				t.Errorf("WithTx error = %v, want %v", err, tt.wantErr)
			}
			var stored int
			if err := s.Pool().QueryRow(t.Context(), "SELECT count(*) FROM tx_test").Scan(&stored); err != nil {
				t.Fatal(err)
			}
			if stored != tt.wantStored {
				t.Errorf("rows stored = %d, want %d", stored, tt.wantStored)
			}
			if acquired := s.Pool().Stat().AcquiredConns(); acquired != 0 {
				t.Errorf("connections still acquired = %d, want 0", acquired)
			}
		})
	}
}

func insert(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, "INSERT INTO tx_test (v) VALUES (1)")
	return err
}

func TestInterpretError(t *testing.T) {
	t.Parallel()
	other := errors.New("other")
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"nil", nil, nil},
		{"no rows", pgx.ErrNoRows, store.ErrNotFound},
		{"wrapped no rows", fmt.Errorf("get job: %w", pgx.ErrNoRows), store.ErrNotFound},
		{"other", other, other},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := store.InterpretError(tt.err); got != tt.want {
				t.Errorf("interpretError(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}

	t.Run("query", func(t *testing.T) {
		t.Parallel()
		s := storetest.NewStore(t)
		var id string
		err := s.Pool().QueryRow(t.Context(), "SELECT job_id FROM jobs WHERE target = $1", "none").Scan(&id)
		if err = store.InterpretError(err); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("error = %v, want ErrNotFound", err)
		}
	})
}

// A pool sized by its caller may have one connection (the leases' own).
func TestOpenSinglePurposePool(t *testing.T) {
	t.Parallel()
	s, err := store.Open(t.Context(), storetest.NewDatabaseURL(t), store.Config{MaxConns: 1})
	if err != nil {
		t.Fatalf("Open with MaxConns 1: %v", err)
	}
	defer s.Close()
	if got := s.Pool().Config().MaxConns; got != 1 {
		t.Errorf("MaxConns = %d, want 1", got)
	}
}

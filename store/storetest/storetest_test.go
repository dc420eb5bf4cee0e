package storetest

import (
	"github.com/ossjobwatch/ossjobwatch/internal/pgtemp"
	"github.com/ossjobwatch/ossjobwatch/internal/proctest"

	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { Main(m) }

func TestNewStore(t *testing.T) {
	t.Parallel()
	a, b := NewStore(t), NewStore(t)

	var nameA, nameB string
	var migrated bool
	if err := a.Pool().QueryRow(t.Context(), "SELECT current_database(), to_regclass('job_events') IS NOT NULL").Scan(&nameA, &migrated); err != nil {
		t.Fatal(err)
	}
	if !migrated {
		t.Error("NewStore's database is not migrated")
	}
	if err := b.Pool().QueryRow(t.Context(), "SELECT current_database()").Scan(&nameB); err != nil {
		t.Fatal(err)
	}
	if nameA == nameB {
		t.Errorf("two NewStore calls share database %s", nameA)
	}
	// Migrated from the template: nothing left to do.
	if applied, err := a.Migrate(t.Context()); err != nil || applied != 0 {
		t.Errorf("Migrate on a NewStore database = %d, %v; want 0, nil", applied, err)
	}
}

func TestNewDatabaseURL(t *testing.T) {
	t.Parallel()
	var name string
	var conn *pgx.Conn
	t.Run("use", func(t *testing.T) {
		var err error
		if conn, err = pgx.Connect(context.Background(), NewDatabaseURL(t)); err != nil {
			t.Fatal(err)
		}
		var migrated bool
		if err := conn.QueryRow(t.Context(), "SELECT current_database(), to_regclass('job_events') IS NOT NULL").Scan(&name, &migrated); err != nil {
			t.Fatal(err)
		}
		if migrated {
			t.Error("NewDatabaseURL's database is migrated, want it empty")
		}
	})
	// Still connected when the subtest's cleanup dropped the database: the
	// drop does not wait for connections, it ends them.
	if conn != nil {
		defer conn.Close(context.Background())
	}

	admin := connect(t, DatabaseURL(t))
	var exists bool
	if err := admin.QueryRow(t.Context(), "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Errorf("database %s still exists after its test ended", name)
	}
}

func TestWithDatabase(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"postgres://u:p@h:5432/postgres?sslmode=disable", "postgres://u:p@h:5432/x?sslmode=disable"},
		{"postgresql://h", "postgresql://h/x"},
		{"host=h dbname=postgres", "host=h dbname=postgres dbname=x"},
	}
	for _, tt := range tests {
		got, err := withDatabase(tt.in, "x")
		if err != nil || got != tt.want {
			t.Errorf("withDatabase(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// TestServerPIDIsTheBackendsParent: ServerPID names the postmaster, whose
// process tree holds every backend.
func TestServerPIDIsTheBackendsParent(t *testing.T) {
	t.Parallel()
	pid := ServerPID(t)
	if pid == 0 {
		t.Skipf("%s names the server: it is not ours", EnvDatabaseURL)
	}
	var backend int
	if err := NewStore(t).Pool().QueryRow(t.Context(), `SELECT pg_backend_pid()`).Scan(&backend); err != nil {
		t.Fatal(err)
	}
	st, err := proctest.Read(backend)
	if err != nil {
		t.Fatal(err)
	}
	if st.PPID != pid {
		t.Errorf("backend %d's parent is %d, ServerPID says %d", backend, st.PPID, pid)
	}
}

// TestServerDiesWithTestBinary kills a test binary that started a server, as
// a timeout or a crash would, and checks that the server goes too and that
// the next server start removes the directory left behind.
func TestServerDiesWithTestBinary(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the parent-death signal is Linux only")
	}
	if os.Getenv("STORETEST_HELPER") == "1" {
		DatabaseURL(t)
		fmt.Printf("server %d %s\n", env.server.PID(), env.server.Dir())
		select {} // until killed
	}
	t.Parallel()
	if err := pgtemp.Available(); err != nil && os.Getenv(EnvDatabaseURL) != "" {
		t.Skipf("%s is set and there is no local server to test: %v", EnvDatabaseURL, err)
	}

	cmd := exec.Command(os.Args[0], "-test.run=^TestServerDiesWithTestBinary$")
	cmd.Env = append(os.Environ(), "STORETEST_HELPER=1", EnvDatabaseURL+"=")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	var pid int
	var dir string
	if _, scanErr := fmt.Sscanf(line, "server %d %s", &pid, &dir); err != nil || scanErr != nil {
		t.Fatalf("helper said %q (%v, %v)", line, err, scanErr)
	}
	if !strings.HasPrefix(filepath.Base(dir), pgtemp.DirPrefix) {
		t.Fatalf("helper's server directory %s is not named %s*", dir, pgtemp.DirPrefix)
	}

	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	// No event tells us the postmaster is gone: poll, with a deadline.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for running(pid) {
		select {
		case <-ctx.Done():
			t.Fatalf("postmaster %d still running after its test binary was killed", pid)
		case <-time.After(10 * time.Millisecond):
		}
	}

	pgtemp.RemoveStaleDirs()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("stale directory %s not removed: %v", dir, err)
	}
}

// running reports whether pid is a live process (not a zombie waiting for a
// parent that does not reap).
func running(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return syscall.Kill(pid, 0) == nil
	}
	// pid (comm) state ...; comm may contain spaces and parentheses.
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z" && fields[0] != "X"
}

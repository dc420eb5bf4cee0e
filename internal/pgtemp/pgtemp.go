// Package pgtemp starts a throwaway PostgreSQL server from the local
// binaries (initdb, postgres): in a private directory, on a free loopback
// port, tuned for speed over durability, as an unprivileged user when this
// process is root (PostgreSQL refuses to run as root). The test helper
// store/storetest and the demo use it.
package pgtemp

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

const (
	// DirPrefix names the server directories (see baseDirs), so that stale
	// ones can be found.
	DirPrefix = "ossjobwatch-pgtest-"

	// startTimeout bounds the wait for a started server to accept
	// connections; it usually takes well under a second.
	startTimeout = 30 * time.Second
	stopTimeout  = 10 * time.Second

	// portAttempts: a free port found by listening on :0 can be taken by
	// another process (another test binary) before postgres binds it.
	portAttempts = 5
)

// serverSettings trade durability for speed: a crash loses the test data,
// which is thrown away anyway.
var serverSettings = []string{
	"fsync=off",
	"synchronous_commit=off",
	"full_page_writes=off",
	"max_connections=200",
	// Bounds the WAL kept between checkpoints, which on a tmpfs is memory;
	// each database created writes about 8 MB of it.
	"max_wal_size=256MB",
	// Parallel query needs /dev/shm, which containers keep small, and
	// gains nothing on test-sized tables.
	"max_parallel_workers_per_gather=0",
}

// errPortTaken reports that postgres could not bind its port.
var errPortTaken = errors.New("port taken")

// Server is a throwaway PostgreSQL server: one postmaster in its own
// directory (data/, the Unix socket, postgres.log).
type Server struct {
	dir    string
	url    string
	cmd    *exec.Cmd
	exited chan struct{} // closed when the postmaster has exited
}

// Start initialises a cluster in a new directory and starts a postmaster
// on it. Stop it with Stop; should this process die first, the postmaster
// follows it (on Linux), and the next Start removes the directory.
func Start() (_ *Server, err error) {
	binDir, err := findBinDir()
	if err != nil {
		return nil, err
	}
	cred, userName, err := unprivilegedCredential()
	if err != nil {
		return nil, err
	}
	if cred != nil {
		defer func() {
			if err != nil {
				err = fmt.Errorf("as user %s, since this process is root: %w", userName, err)
			}
		}()
	}
	RemoveStaleDirs()

	dir, err := os.MkdirTemp(baseDirs()[0], DirPrefix+"*")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(dir)
		}
	}()
	if err := os.WriteFile(filepath.Join(dir, "owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return nil, err
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, err
		}
		if err := checkTraversable(dir, cred); err != nil {
			return nil, err
		}
	}

	dataDir := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(binDir, "initdb"),
		"--pgdata", dataDir, "--username", "postgres", "--auth", "trust",
		"--encoding", "UTF8", "--locale", "C", "--no-sync")
	initdb.Dir = dir // the user may not be able to reach ours
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%s: %w\n%s", initdb, err, out)
	}

	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s, err := launch(binDir, dir, port, cred)
		if err == nil || !errors.Is(err, errPortTaken) || attempt == portAttempts {
			return s, err
		}
	}
}

// launch starts the postmaster on port and waits until it accepts
// connections.
func launch(binDir, dir string, port int, cred *syscall.Credential) (*Server, error) {
	logPath := filepath.Join(dir, "postgres.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child has its own copy

	args := []string{"-D", filepath.Join(dir, "data"), "-p", strconv.Itoa(port), "-k", dir, "-h", "127.0.0.1"}
	for _, setting := range serverSettings {
		args = append(args, "-c", setting)
	}
	s := &Server{
		dir:    dir,
		url:    fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port),
		cmd:    exec.Command(filepath.Join(binDir, "postgres"), args...),
		exited: make(chan struct{}),
	}
	s.cmd.Dir = dir
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	s.cmd.SysProcAttr = sysProcAttr(cred)

	started := make(chan error, 1)
	go func() {
		// The parent-death signal fires when the thread that started the
		// child exits, not the process: keep this goroutine on its thread
		// until postgres is gone. It exits locked, which ends the thread.
		runtime.LockOSThread()
		if err := s.cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = s.cmd.Wait() // postgres exits non-zero on an immediate shutdown
		close(s.exited)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start %s: %w", s.cmd, err)
	}

	deadline := time.Now().Add(startTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, err := pgconn.Connect(ctx, s.url)
		cancel()
		if err == nil {
			_ = conn.Close(context.Background())
			return s, nil
		}
		select {
		case <-s.exited:
			log, _ := os.ReadFile(logPath)
			if bytes.Contains(log, []byte("could not bind IPv4 address")) {
				return nil, fmt.Errorf("%w: %d", errPortTaken, port)
			}
			return nil, fmt.Errorf("%s exited at start: %s\n%s", s.cmd, s.cmd.ProcessState, log)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = s.Stop()
			log, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("%s not accepting connections after %s: %w\n%s", s.cmd, startTimeout, err, log)
		}
	}
}

// stop shuts the server down at once (the equivalent of pg_ctl stop -m
// immediate: its data is disposable) and removes its directory.
// URL is the server's "postgres" database, as the superuser.
func (s *Server) URL() string { return s.url }

// Dir is the server's directory.
func (s *Server) Dir() string { return s.dir }

// PID is the postmaster's process id.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// Stop shuts the server down at once and removes its directory.
func (s *Server) Stop() error {
	if err := s.cmd.Process.Signal(syscall.SIGQUIT); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stop PostgreSQL server: %w", err)
	}
	select {
	case <-s.exited:
	case <-time.After(stopTimeout):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	if err := os.RemoveAll(s.dir); err != nil {
		return fmt.Errorf("remove PostgreSQL server directory: %w", err)
	}
	return nil
}

// findBinDir returns the directory holding initdb and postgres: initdb's on
// PATH, or else the newest /usr/lib/postgresql/<version>/bin (Debian's
// layout, which is not on PATH).
func findBinDir() (string, error) {
	hasBoth := func(dir string) bool {
		for _, name := range []string{"initdb", "postgres"} {
			if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
				return false
			}
		}
		return true
	}
	if initdb, err := exec.LookPath("initdb"); err == nil && hasBoth(filepath.Dir(initdb)) {
		return filepath.Dir(initdb), nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	version := func(dir string) float64 {
		v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(dir)), 64) // "15", "9.6"
		return v
	}
	slices.SortFunc(dirs, func(a, b string) int { return cmp.Compare(version(b), version(a)) })
	for _, dir := range dirs {
		if hasBoth(dir) {
			return dir, nil
		}
	}
	return "", errors.New("no PostgreSQL server binaries (initdb and postgres) on PATH or in /usr/lib/postgresql/*/bin: run .ci/install-postgres.sh or install the postgresql package")
}

// unprivilegedCredential returns the user to run PostgreSQL as when this
// process is root, which PostgreSQL refuses to run as; nil otherwise.
func unprivilegedCredential() (_ *syscall.Credential, userName string, _ error) {
	if os.Geteuid() != 0 {
		return nil, "", nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil || uid == 0 {
			continue
		}
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, name, nil
	}
	return nil, "", errors.New(`running as root, and PostgreSQL refuses to: no "postgres" or "nobody" user to run it as (.ci/install-postgres.sh creates one)`)
}

// checkTraversable checks that the user of cred can reach dir: every parent
// must let it search.
func checkTraversable(dir string, cred *syscall.Credential) error {
	for d := filepath.Dir(dir); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		perm := fi.Mode().Perm()
		searchable := perm&0o001 != 0 ||
			ok && st.Uid == cred.Uid && perm&0o100 != 0 ||
			ok && st.Gid == cred.Gid && perm&0o010 != 0
		if !searchable {
			return fmt.Errorf("PostgreSQL runs as uid %d (not root), which cannot reach %s through %s (mode %s): set TMPDIR to a directory it can, such as /tmp", cred.Uid, dir, d, perm)
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

// freePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// RemoveStaleDirs removes the server directories of test binaries that are
// gone, when their postmaster is gone too. Best effort.
func RemoveStaleDirs() {
	var dirs []string
	for _, base := range baseDirs() {
		found, _ := filepath.Glob(filepath.Join(base, DirPrefix+"*"))
		dirs = append(dirs, found...)
	}
	for _, dir := range dirs {
		owner, err := readPID(filepath.Join(dir, "owner.pid"))
		if err != nil {
			// Not written yet, or never: only clearly abandoned ones.
			if fi, err := os.Stat(dir); err != nil || time.Since(fi.ModTime()) < time.Hour {
				continue
			}
		} else if alive(owner) {
			continue
		}
		if postmaster, err := readPID(filepath.Join(dir, "data", "postmaster.pid")); err == nil && alive(postmaster) {
			continue
		}
		_ = os.RemoveAll(dir)
	}
}

// readPID reads the process id on the first line of a pid file.
func readPID(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	first, _, _ := strings.Cut(string(b), "\n")
	return strconv.Atoi(strings.TrimSpace(first))
}

func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// Available reports, as an error, why no server could be started here: no
// initdb and postgres on PATH nor under /usr/lib/postgresql.
func Available() error {
	_, err := findBinDir()
	return err
}

// Package natstest runs an embedded NATS server with JetStream for tests.
//
// The server listens on a free port of 127.0.0.1 rather than in-process
// (DontListen): clients then reach it over TCP, so Shutdown and Restart look
// to them like a real outage and a real recovery, reconnect included. Its
// JetStream store lives in the test's temporary directory and survives a
// Restart, as a real server's would.
//
// It is for _test.go files only.
package natstest

import (
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// readyTimeout bounds a server's start.
const readyTimeout = 10 * time.Second

// Server is an embedded nats-server with JetStream. Its methods are safe
// for concurrent use.
type Server struct {
	opts server.Options // the first start's, with the port it got

	mu  sync.Mutex
	srv *server.Server // nil while shut down
}

// Start starts a server with JetStream on a free loopback port, storing in
// tb.TempDir(), and shuts it down when the test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s := &Server{opts: server.Options{
		Host:      "127.0.0.1",
		Port:      server.RANDOM_PORT,
		JetStream: true,
		StoreDir:  tb.TempDir(),
		NoLog:     true,
		NoSigs:    true,
	}}
	srv := s.start(tb)
	// Restart must come back on the same port, where the clients reconnect.
	s.opts.Port = srv.Addr().(*net.TCPAddr).Port
	tb.Cleanup(s.Shutdown)
	return s
}

func (s *Server) start(tb testing.TB) *server.Server {
	tb.Helper()
	opts := s.opts // NewServer keeps and changes what it is given
	srv, err := server.NewServer(&opts)
	if err != nil {
		tb.Fatalf("natstest: new server: %v", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(readyTimeout) {
		srv.Shutdown()
		tb.Fatalf("natstest: server not ready for connections within %s", readyTimeout)
	}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	return srv
}

// URL is the server's client URL, e.g. nats://127.0.0.1:41234. It stays the
// same across Restart.
func (s *Server) URL() string {
	return "nats://" + net.JoinHostPort(s.opts.Host, strconv.Itoa(s.opts.Port))
}

// Connect connects a client to the server and closes it when the test ends.
// The client reconnects forever and quickly (every 20ms), so a test of an
// outage does not wait on nats.go's 2-second default; opts come after
// those defaults and can override them.
func (s *Server) Connect(tb testing.TB, opts ...nats.Option) *nats.Conn {
	tb.Helper()
	return connect(tb, s.URL(), opts)
}

func connect(tb testing.TB, url string, opts []nats.Option) *nats.Conn {
	tb.Helper()
	all := append([]nats.Option{
		nats.Name(tb.Name()),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(20 * time.Millisecond),
		nats.ReconnectJitter(0, 0),
	}, opts...)
	nc, err := nats.Connect(url, all...)
	if err != nil {
		tb.Fatalf("natstest: connect to %s: %v", url, err)
	}
	tb.Cleanup(nc.Close)
	return nc
}

// Shutdown stops the server and waits until it is down. Clients see their
// connection drop and start reconnecting. Shutting down a stopped server
// does nothing.
func (s *Server) Shutdown() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
}

// Restart shuts the server down if it is running and starts it again on the
// same port with the same JetStream store: streams and their messages are
// still there, and clients reconnect.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.Shutdown()
	s.start(tb)
}

// WaitStatus waits until ch, fed by nats.Conn.StatusChanged, reports want.
func WaitStatus(tb testing.TB, ch <-chan nats.Status, want nats.Status) {
	tb.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case got := <-ch:
			if got == want {
				return
			}
		case <-timeout:
			tb.Fatalf("natstest: connection did not become %v within 15s", want)
		}
	}
}

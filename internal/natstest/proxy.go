package natstest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"

	"github.com/nats-io/nats.go"
)

// msgIDHeader is JetStream's deduplication header, nats.MsgIdHdr.
const msgIDHeader = "Nats-Msg-Id"

// Proxy is a TCP proxy between NATS clients and a server that reads the
// client protocol: it counts the messages published with each Nats-Msg-Id
// and can drop chosen ones, so that a test can lose one publish while later
// ones go through. Its methods are safe for concurrent use.
type Proxy struct {
	ln     net.Listener
	target string

	mu        sync.Mutex
	published map[string]int // passed on to the server, by Nats-Msg-Id
	drop      map[string]int // how many more publishes of the id to drop
	dropped   chan string    // each dropped id, if there is room
	conns     map[net.Conn]struct{}
	wg        sync.WaitGroup
}

// NewProxy listens on a free loopback port and forwards each connection to
// the server s, until the test ends.
func NewProxy(tb testing.TB, s *Server) *Proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("natstest: proxy: %v", err)
	}
	p := &Proxy{
		ln:        ln,
		target:    net.JoinHostPort(s.opts.Host, strconv.Itoa(s.opts.Port)),
		published: map[string]int{},
		drop:      map[string]int{},
		dropped:   make(chan string, 100),
		conns:     map[net.Conn]struct{}{},
	}
	p.wg.Go(p.accept)
	tb.Cleanup(p.close)
	return p
}

// URL is the proxy's client URL.
func (p *Proxy) URL() string {
	return "nats://" + p.ln.Addr().String()
}

// Connect connects a client to the server through the proxy, as
// Server.Connect does, and closes it when the test ends.
func (p *Proxy) Connect(tb testing.TB, opts ...nats.Option) *nats.Conn {
	tb.Helper()
	return connect(tb, p.URL(), opts)
}

// Drop makes the proxy drop the next n messages published with Nats-Msg-Id
// id, instead of passing them to the server: to the client, the publish is
// lost on the way. Each dropped id is then sent on Dropped.
func (p *Proxy) Drop(id string, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.drop[id] += n
}

// Dropped receives the id of each message dropped (up to 100 not received).
func (p *Proxy) Dropped() <-chan string {
	return p.dropped
}

// Published returns how many messages with each Nats-Msg-Id the proxy
// passed on to the server: the publishes on the wire, duplicates included.
func (p *Proxy) Published() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int, len(p.published))
	for id, n := range p.published {
		out[id] = n
	}
	return out
}

func (p *Proxy) accept() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue // the client sees its connection drop, as if the server were down
		}
		p.mu.Lock()
		p.conns[client], p.conns[server] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.wg.Go(func() {
			_ = p.forward(bufio.NewReader(client), server)
			p.hangUp(client, server)
		})
		p.wg.Go(func() {
			_, _ = io.Copy(client, server)
			p.hangUp(client, server)
		})
	}
}

func (p *Proxy) hangUp(conns ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range conns {
		c.Close()
		delete(p.conns, c)
	}
}

func (p *Proxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// forward copies the client's protocol to the server one operation at a
// time, dropping the publishes Drop asked for.
func (p *Proxy) forward(r *bufio.Reader, w io.Writer) error {
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return err
		}
		op, args, _ := bytes.Cut(bytes.TrimSpace(line), []byte(" "))
		var size int
		switch string(bytes.ToUpper(op)) {
		case "PUB", "HPUB":
			// PUB <subject> [reply] <size>; HPUB <subject> [reply] <header size> <total size>.
			fields := bytes.Fields(args)
			if len(fields) < 2 {
				return fmt.Errorf("natstest: proxy: bad %s", line)
			}
			if size, err = strconv.Atoi(string(fields[len(fields)-1])); err != nil {
				return fmt.Errorf("natstest: proxy: bad %s", line)
			}
		default:
			if _, err := w.Write(line); err != nil {
				return err
			}
			continue
		}
		body := make([]byte, size+2) // and its CRLF
		if _, err := io.ReadFull(r, body); err != nil {
			return err
		}
		id := ""
		if bytes.EqualFold(op, []byte("HPUB")) {
			id = headerValue(body, msgIDHeader)
		}
		if id != "" && p.dropNow(id) {
			continue
		}
		if _, err := w.Write(append(line, body...)); err != nil {
			return err
		}
	}
}

// dropNow reports whether this publish of id is to be dropped, and if not
// counts it as passed on.
func (p *Proxy) dropNow(id string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drop[id] > 0 {
		p.drop[id]--
		select {
		case p.dropped <- id:
		default:
		}
		return true
	}
	p.published[id]++
	return false
}

// headerValue returns the value of header key in a message's NATS/1.0
// header block, or "".
func headerValue(msg []byte, key string) string {
	hdr, _, ok := bytes.Cut(msg, []byte("\r\n\r\n"))
	if !ok {
		return ""
	}
	for _, l := range bytes.Split(hdr, []byte("\r\n"))[1:] {
		k, v, ok := bytes.Cut(l, []byte(":"))
		if ok && bytes.EqualFold(bytes.TrimSpace(k), []byte(key)) {
			return string(bytes.TrimSpace(v))
		}
	}
	return ""
}

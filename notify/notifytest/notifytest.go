// Package notifytest has local fakes of the platforms notify posts to:
// DingTalk and Feishu robots, a WeCom group robot, a Slack incoming
// webhook and a Standard Webhooks receiver. Each is an httptest.Server
// that checks requests the way its platform documents (signatures and
// their time windows, keywords, size limits), answers in the platform's
// words (DingTalk's errcode 310000 for a bad sign, Feishu's code 19021,
// …), records what it accepted, and can be told to throttle, fail or
// answer slowly.
//
// Counting events: a webhook request is one CloudEvent, so a webhook fake
// knows every event id it got. A chat message is for people: a fake
// reads the event id from the footer of a single-event message ("· event
// <id>") and, for a digest, only how many events it lists (its title says
// "N events for …"). Tests that must prove every event reached every chat
// receiver count deliveries in the engine's deliveries table, or route
// the same events to a webhook fake too.
//
// The signature checks here are written from the platforms' documents, not
// by calling notify's signers, so a test of one against the other checks
// both.
package notifytest

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ossjobwatch/ossjobwatch/notify"
)

// Message is one request a fake accepted.
type Message struct {
	Header http.Header
	Body   []byte
	// Title is DingTalk's markdown title, Feishu's card header, Slack's
	// header block; empty for WeCom and webhooks.
	Title string
	// Text is what people read: DingTalk's markdown text, WeCom's
	// content, Feishu's card markdown (elements joined by newlines),
	// Slack's text; a webhook's body.
	Text string
	// EventIDs are the ids of the events the message carries, where the
	// fake can tell (see the package doc): a webhook's event, a
	// single-event chat message's footer; empty for a digest.
	EventIDs []string
	// Events is how many events the message carries: 1, or a digest's N.
	Events int
	// Digest reports whether the message is a digest.
	Digest bool
	At     time.Time
}

// FaultKind is what a fault does to a request.
type FaultKind int

const (
	// Throttle answers as the platform does when its rate is exceeded:
	// DingTalk errcode 130101 and WeCom errcode 45009 with HTTP 200,
	// Feishu code 11232 with HTTP 200, Slack and webhooks HTTP 429 with
	// Retry-After.
	Throttle FaultKind = iota + 1
	// Fail answers HTTP 500.
	Fail
	// Slow waits Fault.Delay, then answers normally (if the client still
	// waits: a request whose client gave up is not recorded).
	Slow
)

// Fault changes how a fake answers requests.
type Fault struct {
	Kind FaultKind
	// Count is how many requests the fault takes, the next ones in order.
	// 0 with Fraction 0 means every request until Clear.
	Count int
	// Fraction, when set, makes each request suffer the fault with this
	// probability (drawn from a generator seeded with Seed), Count bounding
	// how many do (0: no bound).
	Fraction float64
	Seed     uint64
	// Delay is how long Slow waits; default 2s.
	Delay time.Duration
	// RetryAfter is the Retry-After of a throttled Slack or webhook
	// answer; default 1s. 0 after setting NoRetryAfter omits it.
	RetryAfter   time.Duration
	NoRetryAfter bool
}

type fault struct {
	Fault
	left int // remaining, -1 unbounded
	rng  *rand.Rand
}

// Server is one fake receiver. Its exported fields say what it was started
// with, for tests to read: the fake keeps its own copies, so changing them
// changes nothing (and races with nothing). Its methods are safe for
// concurrent use.
type Server struct {
	// Type is the notify receiver type it fakes.
	Type string
	// URL is the webhook URL to configure, token included.
	URL string
	// Secret is the signing secret it checks; empty checks none.
	Secret string
	// Token is the credential in URL (access_token, key, hook path).
	Token string

	// What the handlers and Receiver use: set before newServer returns,
	// never changed.
	typ, url, secret, token string

	srv    *httptest.Server
	handle handlerFunc

	mu       sync.Mutex
	now      func() time.Time
	messages []Message
	requests int
	refused  int
	faults   []*fault
	keywords []string
	limit    *notify.Rate
	window   []time.Time
	changed  chan struct{}
}

// handlerFunc judges one request after the faults: the message to record
// and true, or false once it has written a refusal.
type handlerFunc = func(http.ResponseWriter, *http.Request, []byte) (*Message, bool)

// newServer starts a fake whose handler is handle; path is appended to
// the server's address to make URL.
func newServer(t testing.TB, typ, secret, token string, handle func(*Server) handlerFunc, path string) *Server {
	t.Helper()
	s := &Server{Type: typ, Secret: secret, Token: token, typ: typ, secret: secret, token: token, now: time.Now, changed: make(chan struct{})}
	s.handle = handle(s)
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL + path
	s.url = s.URL
	t.Cleanup(s.srv.Close)
	return s
}

// Receiver is a notify receiver config this fake accepts.
func (s *Server) Receiver(name string) notify.ReceiverConfig {
	return notify.ReceiverConfig{Name: name, Type: s.typ, URL: s.url, Secret: s.secret}
}

// Client returns an HTTP client with a connection pool of its own, closed
// when tb ends, for tests that pass their own client to notify.NewSender.
// On http.DefaultTransport, another parallel test's httptest.Server.Close,
// which closes that transport's idle connections, can break a request whose
// reply has no body (a 204, a redirect), and a POST is not retried.
func Client(tb testing.TB) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tb.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// Close shuts the server down (tests' cleanup does it too).
func (s *Server) Close() { s.srv.Close() }

// SetNow sets the clock signatures are checked against.
func (s *Server) SetNow(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// RequireKeywords makes the fake refuse a message holding none of kw, as
// a DingTalk or Feishu robot with custom keywords does (DingTalk errcode
// 310000 "keywords not in content", Feishu code 19024).
func (s *Server) RequireKeywords(kw ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keywords = kw
}

// Limit makes the fake throttle (as Throttle does) a request that would be
// more than r.Count accepted in any window of r.Per, as the platforms do.
func (s *Server) Limit(r notify.Rate) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limit = &r
	s.window = nil
}

// Inject adds a fault; faults apply in the order added.
func (s *Server) Inject(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ff := &fault{Fault: f, left: f.Count}
	if f.Count == 0 {
		ff.left = -1
	}
	if f.Fraction > 0 {
		ff.rng = rand.New(rand.NewPCG(f.Seed, f.Seed^0x9e3779b97f4a7c15))
	}
	s.faults = append(s.faults, ff)
}

// Clear removes every fault and the limit.
func (s *Server) Clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults, s.limit, s.window = nil, nil, nil
}

// Messages returns the accepted messages, in order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// Requests is how many requests came, accepted or not.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// Refused is how many requests were answered with a failure (faults, bad
// signatures, throttling, …).
func (s *Server) Refused() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused
}

// EventIDs are the ids of the events accepted, in order, repeats included
// (see Message.EventIDs for what a fake can tell).
func (s *Server) EventIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for _, m := range s.messages {
		ids = append(ids, m.EventIDs...)
	}
	return ids
}

// Events is how many events the accepted messages carry, digests counted
// by their size.
func (s *Server) Events() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, m := range s.messages {
		n += m.Events
	}
	return n
}

// Wait blocks until cond holds for the accepted messages, or ctx ends.
// cond runs under the fake's lock: it must not call the fake.
func (s *Server) Wait(ctx context.Context, cond func([]Message) bool) error {
	for {
		s.mu.Lock()
		ok := cond(s.messages)
		ch := s.changed
		n := len(s.messages)
		s.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("%s fake: waited for a condition with %d messages received: %w", s.typ, n, ctx.Err())
		}
	}
}

// WaitMessages blocks until at least n messages were accepted.
func (s *Server) WaitMessages(ctx context.Context, n int) error {
	return s.Wait(ctx, func(ms []Message) bool { return len(ms) >= n })
}

// WaitEvents blocks until the accepted messages carry at least n events.
func (s *Server) WaitEvents(ctx context.Context, n int) error {
	return s.Wait(ctx, func(ms []Message) bool {
		c := 0
		for _, m := range ms {
			c += m.Events
		}
		return c >= n
	})
}

// WaitEventIDs blocks until every id was accepted at least once.
func (s *Server) WaitEventIDs(ctx context.Context, ids ...string) error {
	return s.Wait(ctx, func(ms []Message) bool {
		seen := map[string]bool{}
		for _, m := range ms {
			for _, id := range m.EventIDs {
				seen[id] = true
			}
		}
		for _, id := range ids {
			if !seen[id] {
				return false
			}
		}
		return true
	})
}

// maxBody bounds what a fake reads of a request.
const maxBody = 1 << 20

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.requests++
	f := s.takeFault()
	throttled := false
	if f == nil && s.limit != nil {
		now := s.now()
		keep := s.window[:0]
		for _, t := range s.window {
			if now.Sub(t) < s.limit.Per {
				keep = append(keep, t)
			}
		}
		s.window = keep
		throttled = len(s.window) >= s.limit.Count
	}
	s.mu.Unlock()
	if f != nil {
		switch f.Kind {
		case Slow:
			d := f.Delay
			if d == 0 {
				d = 2 * time.Second
			}
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				s.countRefused()
				return
			}
		case Fail:
			s.countRefused()
			http.Error(w, "internal error (fault injected by notifytest)", http.StatusInternalServerError)
			return
		case Throttle:
			s.countRefused()
			s.throttle(w, f.Fault)
			return
		}
	}
	if throttled {
		s.countRefused()
		s.throttle(w, Fault{})
		return
	}
	if r.Method != http.MethodPost {
		s.countRefused()
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	m, ok := s.handle(w, r, body)
	if !ok || r.Context().Err() != nil {
		s.countRefused()
		return
	}
	m.Header = r.Header.Clone()
	m.Body = body
	s.mu.Lock()
	m.At = s.now()
	if s.limit != nil {
		s.window = append(s.window, m.At)
	}
	s.messages = append(s.messages, *m)
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

func (s *Server) countRefused() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refused++
	close(s.changed)
	s.changed = make(chan struct{})
}

// takeFault returns the fault this request suffers, if any. Callers hold
// s.mu.
func (s *Server) takeFault() *fault {
	for _, f := range s.faults {
		if f.left == 0 {
			continue
		}
		if f.rng != nil && f.rng.Float64() >= f.Fraction {
			continue
		}
		if f.left > 0 {
			f.left--
		}
		return f
	}
	return nil
}

// throttle answers as the platform does when over its rate.
func (s *Server) throttle(w http.ResponseWriter, f Fault) {
	switch s.typ {
	case notify.TypeDingTalk:
		writeJSON(w, http.StatusOK, `{"errcode":130101,"errmsg":"send too fast, exceed 20 times per minute"}`)
	case notify.TypeWeCom:
		writeJSON(w, http.StatusOK, `{"errcode":45009,"errmsg":"api freq out of limit"}`)
	case notify.TypeFeishu:
		writeJSON(w, http.StatusOK, `{"code":11232,"data":{},"msg":"frequency limited psm[lark.oapi.app_platform_runtime]appID[0]"}`)
	default:
		ra := f.RetryAfter
		if ra == 0 {
			ra = time.Second
		}
		if !f.NoRetryAfter {
			w.Header().Set("Retry-After", strconv.Itoa(int((ra+time.Second-1)/time.Second)))
		}
		http.Error(w, "rate_limited", http.StatusTooManyRequests)
	}
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// hasKeyword reports whether text holds one of the required keywords (or
// none are required). Callers must not hold s.mu.
func (s *Server) hasKeyword(text string) bool {
	s.mu.Lock()
	kw := s.keywords
	s.mu.Unlock()
	if len(kw) == 0 {
		return true
	}
	for _, k := range kw {
		if strings.Contains(text, k) {
			return true
		}
	}
	return false
}

func (s *Server) clock() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now()
}

// hmacB64 is base64(HMAC-SHA256(key, msg)).
func hmacB64(key, msg []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

var (
	footerID  = regexp.MustCompile(`· event ((?:\\.|[^\s<\\])+)`)
	digestN   = regexp.MustCompile(`(\d+) events for`)
	unescaper = strings.NewReplacer(`\`, "", "&#95;", "_", "&#42;", "*", "&amp;", "&")
)

// count fills Events, Digest and EventIDs of a chat message from its
// title and text.
func count(m *Message) {
	if sm := digestN.FindStringSubmatch(m.Title); sm != nil {
		n, _ := strconv.Atoi(sm[1])
		m.Events, m.Digest = n, true
		return
	}
	m.Events = 1
	if sm := footerID.FindStringSubmatch(m.Text); sm != nil {
		m.EventIDs = []string{unescaper.Replace(sm[1])}
	}
}

var errTooOld = errors.New("timestamp is not within one hour")

// checkWindow checks a signature timestamp against the platforms' one-hour
// window.
func checkWindow(ts, now time.Time) error {
	if d := now.Sub(ts); d > time.Hour || d < -time.Hour {
		return errTooOld
	}
	return nil
}

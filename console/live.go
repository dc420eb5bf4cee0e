package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ossjobwatch/ossjobwatch/job"
	"github.com/ossjobwatch/ossjobwatch/store"
)

// The live view polls job_events by position (pos) every PollInterval and
// streams what is new with Server-Sent Events.
//
// Why polling, not LISTEN on the outbox channel: the events are in the
// table already, totally ordered by pos, so a poll needs no connection of
// its own (LISTEN holds one per process outside the pool), misses nothing
// while a stream reconnects (it resumes from a position, sent as the SSE
// id), and costs one indexed range read per viewer per second. A
// notification would only save that second of latency.
//
// Positions are taken when rows are inserted, not when they commit: a
// sweep of one target may commit after another target's later positions
// were read. So the stream remembers the positions it skipped (holes) and
// reads them again at each poll, until they show up or holeTTL passes (a
// rolled-back transaction leaves holes for good). See cursor.

const (
	// liveBatch is the most events one poll reads after the high-water
	// mark; skipAhead is how far behind the newest event a stream may fall
	// before it jumps ahead, telling the browser how many it skipped (a
	// first sweep of 100,000 jobs writes 100,000 events at once).
	liveBatch = 500
	skipAhead = 5 * liveBatch
	// holeTTL is how long a hole is read again. Longer than any sweep's
	// transaction: each statement of one is bounded at 2 minutes.
	holeTTL = 10 * time.Minute
	// maxHoles bounds the holes a stream remembers; the oldest go first.
	maxHoles = 256
	// recentEvents is how many events the live page shows when it opens.
	recentEvents = 50
	// keepAlive is how often an idle stream sends a comment, so that
	// proxies do not close it.
	keepAlive = 15 * time.Second
)

// livePage is the live view's content.
type livePage struct {
	Filter   store.EventFilter
	Targets  []string
	Statuses []string
	Types    []string
	Events   []liveView
	// Stream is the EventSource URL, with the filters and the position to
	// start after.
	Stream string
}

// liveView is an event as the live view shows it, and as the stream sends
// it (JSON): the browser fills a row with textContent, never HTML.
type liveView struct {
	ID          string `json:"id"`
	Target      string `json:"target"`
	JobID       string `json:"jobId"`
	JobURL      string `json:"jobUrl"`
	Sequence    int64  `json:"sequence"`
	Kind        string `json:"kind"`
	Status      string `json:"status"`
	StatusClass string `json:"statusClass"`
	Summary     string `json:"summary"`
	Description string `json:"description"`
	Observed    string `json:"observed"`
	ObservedAbs string `json:"observedAbs"`
}

func (c *Console) liveView(e store.LiveEvent) liveView {
	w := c.when(e.ObservedAt)
	return liveView{ID: e.ID, Target: e.Target, JobID: e.JobID, JobURL: jobURL(e.Target, e.JobID), Sequence: e.Sequence,
		Kind: kind(e.Type), Status: e.Status, StatusClass: statusClass(e.Status),
		Summary: summary(e.Type, e.From, e.To, decodeEventData(e.Payload)), Description: e.Description,
		Observed: w.Rel, ObservedAbs: w.Abs}
}

// eventKinds are the event types the type filter offers.
var eventKinds = []string{"discovered", "status_changed", "tasks_failed", "progress", "stalled", "confirmation_due", "removed"}

func eventFilter(q url.Values) store.EventFilter {
	return store.EventFilter{Target: q.Get("target"), Status: q.Get("status"), Type: q.Get("type"), Text: q.Get("q")}
}

func (c *Console) live(w http.ResponseWriter, r *http.Request) {
	f := eventFilter(r.URL.Query())
	targets, err := c.cfg.Reader.Targets(r.Context())
	if err != nil {
		c.fail(w, r, http.StatusInternalServerError, "The targets could not be read from the database.", err)
		return
	}
	events, top, missing, err := c.cfg.Reader.RecentEvents(r.Context(), f, recentEvents)
	if err != nil {
		c.fail(w, r, http.StatusInternalServerError, "The events could not be read from the database.", err)
		return
	}
	p := livePage{Filter: f, Targets: targets, Types: eventKinds}
	for _, s := range job.Statuses {
		p.Statuses = append(p.Statuses, string(s))
	}
	for _, e := range events {
		p.Events = append(p.Events, c.liveView(e))
	}
	q := url.Values{}
	for k, v := range map[string]string{"target": f.Target, "status": f.Status, "type": f.Type, "q": f.Text} {
		if v != "" {
			q.Set(k, v)
		}
	}
	q.Set("after", strconv.FormatInt(top, 10))
	// The positions below top no row had when the page was read are the
	// stream's first holes: rows still to commit there are streamed.
	if len(missing) > maxHoles {
		missing = missing[len(missing)-maxHoles:]
	}
	if len(missing) > 0 {
		q.Set("holes", encodeHoles(missing))
	}
	p.Stream = Prefix + "live/events?" + q.Encode()
	pg := c.page(r, "live", "Live", p)
	pg.Script = true
	c.render(w, r, http.StatusOK, "live", pg)
}

// stream serves the live view's Server-Sent Events: "job" events carrying
// a liveView, "skipped" events carrying how many events were skipped. Each
// carries the position to resume after as its id; a browser reconnecting
// sends it back as Last-Event-ID, and may then see an event twice (it
// keeps the ids it showed).
func (c *Console) stream(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	after, err := strconv.ParseInt(q.Get("after"), 10, 64)
	if last := r.Header.Get("Last-Event-ID"); last != "" {
		after, err = strconv.ParseInt(last, 10, 64)
	}
	if err != nil || after < 0 {
		http.Error(w, "400 bad request: after must be an event position", http.StatusBadRequest)
		return
	}
	// The positions below after that no row had yet are holes to read
	// again: those the live page saw, or, on a reconnect, those missing
	// now (the stream before gave them up, or had too many).
	var holes []store.PosRange
	if r.Header.Get("Last-Event-ID") != "" {
		if holes, err = c.cfg.Reader.MissingBelow(r.Context(), after); err != nil {
			c.log.Warn("console: live view: read missing events", "err", err)
		}
	} else if holes, err = decodeHoles(q.Get("holes"), after); err != nil {
		http.Error(w, "400 bad request: holes: "+err.Error(), http.StatusBadRequest)
		return
	}
	select {
	case c.streams <- struct{}{}:
		defer func() { <-c.streams }()
	default:
		http.Error(w, "503 service unavailable: too many live views are open", http.StatusServiceUnavailable)
		return
	}
	f := eventFilter(q)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	// The stream ends when the client goes, when Close is called, or when
	// a write fails: one that a client reading nothing left blocked
	// until the write deadline, or one Close cut short.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer context.AfterFunc(c.stopCtx, cancel)()
	out := &sseWriter{w: w, rc: http.NewResponseController(w), timeout: c.cfg.WriteTimeout}
	defer context.AfterFunc(ctx, out.abort)()
	fmt.Fprint(out, "retry: 2000\n\n")
	if err := out.flush(); err != nil {
		out.logEnd(c, err)
		return
	}

	cur := newCursor(after)
	cur.expect(holes, time.Now())
	ticker := time.NewTicker(c.cfg.PollInterval)
	defer ticker.Stop()
	lastWrite := time.Now()
	for {
		inHoles, next, latest, err := c.cfg.Reader.EventsAfter(ctx, f, cur.hwm, cur.holeRanges(), liveBatch)
		if err != nil {
			if ctx.Err() == nil {
				c.log.Warn("console: live view: read events", "err", err)
			}
		} else {
			now := time.Now()
			fresh := cur.add(inHoles, next, now)
			if latest-cur.hwm > skipAhead {
				skipped := cur.skipTo(latest - liveBatch)
				fmt.Fprintf(out, "event: skipped\nid: %d\ndata: %d\n\n", cur.after(), skipped)
			}
			for _, e := range fresh {
				if !e.Matches {
					continue
				}
				b, _ := json.Marshal(c.liveView(e))
				fmt.Fprintf(out, "event: job\nid: %d\ndata: %s\n\n", cur.after(), b)
				lastWrite = now
			}
			if now.Sub(lastWrite) >= keepAlive {
				fmt.Fprintf(out, ": keep-alive\nid: %d\n\n", cur.after())
				lastWrite = now
			}
			if err := out.flush(); err != nil {
				out.logEnd(c, err)
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// sseWriter gathers what a stream sends in a poll and writes it at once,
// under a write deadline, so that a client that reads nothing cannot hold
// a stream (and its slot of MaxStreams) for ever.
type sseWriter struct {
	w       io.Writer
	rc      *http.ResponseController
	timeout time.Duration
	buf     bytes.Buffer

	mu      sync.Mutex
	aborted bool
}

var errStreamEnded = errors.New("the stream was ended")

func (s *sseWriter) Write(p []byte) (int, error) { return s.buf.Write(p) }

// flush writes and flushes what was gathered, within the write timeout.
func (s *sseWriter) flush() error {
	s.mu.Lock()
	if s.aborted {
		s.mu.Unlock()
		return errStreamEnded
	}
	// Without deadlines (a ResponseWriter that cannot set them), writes
	// are as bounded as the writer makes them.
	if err := s.rc.SetWriteDeadline(time.Now().Add(s.timeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		s.mu.Unlock()
		return err
	}
	s.mu.Unlock()
	if s.buf.Len() > 0 {
		_, err := s.w.Write(s.buf.Bytes())
		s.buf.Reset()
		if err != nil {
			return err
		}
	}
	return s.rc.Flush()
}

// abort ends a write in progress now and fails the ones after.
func (s *sseWriter) abort() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.aborted = true
	_ = s.rc.SetWriteDeadline(time.Now())
}

// logEnd logs why a stream ended on a failed write, unless it was ended
// (the client went, or Close).
func (s *sseWriter) logEnd(c *Console, err error) {
	s.mu.Lock()
	aborted := s.aborted
	s.mu.Unlock()
	switch {
	case aborted:
	case errors.Is(err, http.ErrNotSupported):
		c.log.Error("console: live view: the response cannot be flushed; streaming is impossible", "err", err)
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.log.Info("console: live view: dropped a client that read nothing within the write timeout", "timeout", s.timeout)
	default:
		c.log.Debug("console: live view: write failed; the client went", "err", err)
	}
}

// cursor follows job_events positions for a stream. Every position up to
// after() has been delivered or given up on; hwm is the highest position
// seen; holes are the positions between them not seen yet, each with when
// it was first noticed.
type cursor struct {
	hwm   int64
	holes []hole
}

type hole struct {
	from, to int64
	since    time.Time
}

func newCursor(after int64) *cursor { return &cursor{hwm: after} }

// after is the position everything up to which is settled: the SSE id to
// resume from.
func (c *cursor) after() int64 {
	if len(c.holes) > 0 {
		return c.holes[0].from - 1
	}
	return c.hwm
}

// expect adds holes below after: positions to read again until holeTTL.
// The newest maxHoles are kept.
func (c *cursor) expect(holes []store.PosRange, now time.Time) {
	var add []hole
	for _, h := range holes {
		add = append(add, hole{from: h.From, to: h.To, since: now})
	}
	c.holes = append(add, c.holes...)
	if n := len(c.holes) - maxHoles; n > 0 {
		c.holes = c.holes[n:]
	}
}

// holeRanges are the holes to read again.
func (c *cursor) holeRanges() []store.PosRange {
	out := make([]store.PosRange, len(c.holes))
	for i, h := range c.holes {
		out[i] = store.PosRange{From: h.from, To: h.to}
	}
	return out
}

// add takes a poll's events, those found in holes and those after hwm (in
// position order), and returns the ones not delivered before, in position
// order: the late ones first. It expires holes older than holeTTL.
func (c *cursor) add(inHoles, next []store.LiveEvent, now time.Time) []store.LiveEvent {
	var fresh []store.LiveEvent
	for _, e := range inHoles {
		if c.fill(e.Pos) {
			fresh = append(fresh, e)
		}
	}
	for _, e := range next {
		if e.Pos <= c.hwm {
			continue
		}
		if e.Pos > c.hwm+1 {
			c.holes = append(c.holes, hole{from: c.hwm + 1, to: e.Pos - 1, since: now})
		}
		c.hwm = e.Pos
		fresh = append(fresh, e)
	}
	kept := c.holes[:0]
	for _, h := range c.holes {
		if now.Sub(h.since) < holeTTL {
			kept = append(kept, h)
		}
	}
	c.holes = kept
	if n := len(c.holes) - maxHoles; n > 0 {
		c.holes = c.holes[n:]
	}
	return fresh
}

// fill removes pos from the holes; it reports whether pos was in one.
func (c *cursor) fill(pos int64) bool {
	for i, h := range c.holes {
		if pos < h.from || pos > h.to {
			continue
		}
		var repl []hole
		if pos > h.from {
			repl = append(repl, hole{from: h.from, to: pos - 1, since: h.since})
		}
		if pos < h.to {
			repl = append(repl, hole{from: pos + 1, to: h.to, since: h.since})
		}
		c.holes = append(c.holes[:i], append(repl, c.holes[i+1:]...)...)
		return true
	}
	return false
}

// skipTo moves the high-water mark to pos, forgetting the holes, and
// returns how many positions were skipped.
func (c *cursor) skipTo(pos int64) int64 {
	if pos <= c.hwm {
		return 0
	}
	skipped := pos - c.hwm
	c.hwm, c.holes = pos, nil
	return skipped
}

// encodeHoles writes position ranges as the stream's holes parameter:
// "from-to" (or "pos"), comma-separated.
func encodeHoles(holes []store.PosRange) string {
	var b strings.Builder
	for i, h := range holes {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(h.From, 10))
		if h.To != h.From {
			b.WriteByte('-')
			b.WriteString(strconv.FormatInt(h.To, 10))
		}
	}
	return b.String()
}

// decodeHoles reads the holes parameter: at most maxHoles ranges in
// order, within the store.MissingWindow up to after.
func decodeHoles(s string, after int64) ([]store.PosRange, error) {
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	if len(parts) > maxHoles {
		return nil, fmt.Errorf("more than %d ranges", maxHoles)
	}
	var out []store.PosRange
	low := after - store.MissingWindow
	for _, p := range parts {
		from, to, ok := strings.Cut(p, "-")
		if !ok {
			to = from
		}
		a, err1 := strconv.ParseInt(from, 10, 64)
		b, err2 := strconv.ParseInt(to, 10, 64)
		if err1 != nil || err2 != nil || a > b || a <= low || b > after {
			return nil, fmt.Errorf("%q is not a range of positions within %d below after", p, store.MissingWindow)
		}
		if n := len(out); n > 0 && a <= out[n-1].To {
			return nil, errors.New("the ranges are not in order")
		}
		out = append(out, store.PosRange{From: a, To: b})
	}
	return out, nil
}

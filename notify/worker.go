package notify

import (
	"cmp"
	"context"
	"log/slog"
	"math"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sethvargo/go-retry"
	"golang.org/x/time/rate"

	"github.com/ossjobwatch/ossjobwatch/store"
)

// worker sends one receiver's events, one request at a time: it waits for
// the receiver's rate, folds everything that waited into one digest (when
// the type allows), records the outcome, and retries with backoff.
type worker struct {
	s        *Service
	rc       Receiver
	log      *slog.Logger
	limiters []*rate.Limiter
	secrets  []string

	mu    sync.Mutex
	queue []*pending          // oldest first
	byID  map[string]*pending // by key
	wake  chan struct{}

	// notBefore is when the next request may go after a failure.
	notBefore time.Time
	backoff   retry.Backoff
}

// pending is one event waiting for this receiver, and the messages (one
// per route, or more if JetStream redelivered it) that wait on it.
type pending struct {
	ev Event
	// key is the event id in lower case, the form notify_deliveries
	// answers in (a uuid column): the bookkeeping key. ev.ID stays as
	// published (a webhook's webhook-id).
	key     string
	since   time.Time
	waiters []*tracker
	// checked is true once the deliveries table said the receiver did not
	// have it yet.
	checked bool
	// parkedUntil is set when the receiver refused this event for its
	// content (SendError.Content): until then the other events go around
	// it. It is retried after, never dropped, and its message is not
	// acknowledged until it is delivered.
	parkedUntil time.Time
	// alone keeps it out of digests: it was in a request refused for its
	// content, and only a request of its own tells whether it is the
	// event the platform refuses.
	alone bool
}

func newWorker(s *Service, rc Receiver) *worker {
	w := &worker{s: s, rc: rc, log: s.log.With("receiver", rc.Name), byID: map[string]*pending{}, wake: make(chan struct{}, 1)}
	for _, r := range rc.Rates {
		w.limiters = append(w.limiters, newLimiter(r))
	}
	w.secrets = secretsOf(rc.Secrets)
	return w
}

// newLimiter turns "at most Count in any window of Per" into a token
// bucket that keeps it: a burst of a third of Count, the rest spread
// evenly, so a window of Per sees at most burst + (Count-burst) requests.
func newLimiter(r Rate) *rate.Limiter {
	burst := max(1, r.Count/3)
	if r.Count == 1 {
		return rate.NewLimiter(rate.Every(r.Per), 1)
	}
	return rate.NewLimiter(rate.Every(r.Per/time.Duration(r.Count-burst)), burst)
}

// secretsOf expands what must be scrubbed from errors: each secret, and
// for a URL its query values and long path segments (tokens).
func secretsOf(secrets []string) []string {
	var out []string
	for _, s := range secrets {
		if s == "" {
			continue
		}
		out = append(out, s)
		u, err := url.Parse(s)
		if err != nil || u.Host == "" {
			continue
		}
		for _, vs := range u.Query() {
			for _, v := range vs {
				if len(v) >= 6 {
					out = append(out, v, url.QueryEscape(v))
				}
			}
		}
		for seg := range strings.SplitSeq(u.Path, "/") {
			if len(seg) >= 16 {
				out = append(out, seg)
			}
		}
		if p, ok := u.User.Password(); ok && p != "" {
			out = append(out, p)
		}
	}
	return out
}

// scrub removes the receiver's secrets from s.
func (w *worker) scrub(s string) string {
	for _, sec := range w.secrets {
		s = strings.ReplaceAll(s, sec, "redacted")
	}
	return s
}

// newBackoff is the wait after each failed request: exponential from
// MinBackoff, capped at MaxBackoff, then jittered (±20%), so that the
// capped waits of receivers failing together do not fall in step.
func (w *worker) newBackoff() retry.Backoff {
	b := retry.NewExponential(w.s.cfg.MinBackoff)
	b = retry.WithCappedDuration(w.s.cfg.MaxBackoff, b)
	return retry.WithJitterPercent(20, b)
}

// enqueue adds ev for this receiver on behalf of t. An event already
// waiting (the same event by another route, or redelivered) is sent once
// for all of them.
func (w *worker) enqueue(ev Event, since time.Time, t *tracker) {
	key := eventKey(ev.ID)
	w.mu.Lock()
	if p, ok := w.byID[key]; ok {
		p.waiters = append(p.waiters, t)
	} else {
		p := &pending{ev: ev, key: key, since: since, waiters: []*tracker{t}}
		w.queue = append(w.queue, p)
		w.byID[key] = p
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// eventKey is the bookkeeping key of an event id: uuidPattern takes
// upper-case hex, and PostgreSQL prints a uuid in lower case.
func eventKey(id string) string { return strings.ToLower(id) }

// queueAge is the age of the oldest waiting event, 0 when none waits.
func (w *worker) queueAge() float64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.queue) == 0 {
		return 0
	}
	return max(0, w.s.cfg.NowFunc().Sub(w.queue[0].since).Seconds())
}

func (w *worker) empty() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.queue) == 0
}

// idle reports whether there is nothing to do now: no event waits but
// parked ones. unpark is then the wait until the first is due again, 0
// when none is parked.
func (w *worker) idle() (idle bool, unpark time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	var next time.Time
	for _, p := range w.queue {
		if !p.checked || !p.parkedUntil.After(now) {
			return false, 0
		}
		if next.IsZero() || p.parkedUntil.Before(next) {
			next = p.parkedUntil
		}
	}
	if next.IsZero() {
		return true, 0
	}
	return true, next.Sub(now)
}

// waitWork waits until an event comes, a parked one is due (unpark > 0)
// or ctx is done; it reports false when ctx is.
func (w *worker) waitWork(ctx context.Context, unpark time.Duration) bool {
	var due <-chan time.Time
	if unpark > 0 {
		t := time.NewTimer(unpark)
		defer t.Stop()
		due = t.C
	}
	select {
	case <-ctx.Done():
		return false
	case <-w.wake:
	case <-due:
	}
	return true
}

// sleep waits d or until ctx is done; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// run is the worker's loop, until ctx is done.
func (w *worker) run(ctx context.Context) {
	w.backoff = w.newBackoff()
	for {
		if idle, unpark := w.idle(); idle {
			if !w.waitWork(ctx, unpark) {
				return
			}
			continue
		}
		w.mu.Lock()
		wait := time.Until(w.notBefore)
		w.mu.Unlock()
		if !sleep(ctx, wait) {
			return
		}
		if !w.skipDelivered(ctx) {
			continue
		}
		if idle, _ := w.idle(); idle {
			continue
		}
		// Wait for the rate; what arrives meanwhile joins the digest.
		now := time.Now()
		var delay time.Duration
		for _, l := range w.limiters {
			delay = max(delay, l.ReserveN(now, 1).DelayFrom(now))
		}
		if !sleep(ctx, delay) {
			return
		}
		if !w.skipDelivered(ctx) {
			continue
		}
		if batch, m, refs := w.take(); len(batch) > 0 {
			w.send(ctx, batch, m, refs)
		}
	}
}

// skipDelivered asks the deliveries table about the events not checked
// yet and completes those the receiver already has (a redelivered
// message). It reports false when the database could not answer; the
// worker then waits as after a failed request.
func (w *worker) skipDelivered(ctx context.Context) bool {
	w.mu.Lock()
	var ids []string
	for _, p := range w.queue {
		if !p.checked {
			ids = append(ids, p.key)
		}
	}
	w.mu.Unlock()
	if len(ids) == 0 {
		return true
	}
	had, err := w.s.cfg.Store.Delivered(ctx, ids, w.rc.Name)
	if err != nil {
		if ctx.Err() == nil {
			w.log.Warn("notify: cannot read the deliveries; retrying", "err", err)
			w.failed(nil, nil, err)
		}
		return false
	}
	var done []*pending
	w.mu.Lock()
	for _, id := range ids {
		p := w.byID[id]
		if p == nil {
			continue
		}
		if had[id] {
			done = append(done, p)
		} else {
			p.checked = true
		}
	}
	w.mu.Unlock()
	if len(done) > 0 {
		w.log.Debug("notify: skipping events the receiver already has", "events", len(done))
		w.complete(done)
	}
	return true
}

// take chooses the next request's events. While the receiver's rate has
// budget for every waiting event, the oldest goes alone; when more wait
// than the budget allows, a type that takes digests gets them all in one
// (up to MaxDigest, and as many as the platform's size limit shows in
// full), oldest first. Parked events wait aside, and an event that must
// go alone (see pending.alone) does. Only events checked against the
// deliveries table are taken: one that arrived during the last check may
// be one the receiver already has. It returns the message and the
// deliveries it would make.
func (w *worker) take() ([]*pending, Message, []store.DeliveryRef) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	var ready []*pending
	for _, p := range w.queue {
		if p.checked && !p.parkedUntil.After(now) {
			ready = append(ready, p)
		}
	}
	if len(ready) == 0 {
		return nil, Message{}, nil
	}
	batch := ready[:1]
	if w.rc.Digest && !ready[0].alone && len(ready) > 1+w.budget() {
		batch = nil
		for _, p := range ready {
			if !p.alone {
				batch = append(batch, p)
			}
			if len(batch) == w.s.cfg.MaxDigest {
				break
			}
		}
	}
	batch = slices.Clone(batch)
	if len(batch) > 1 {
		// What the platform's size limit would leave as "… N more
		// events" waits for the next message instead.
		evs := make([]Event, len(batch))
		for i, p := range batch {
			evs[i] = p.ev
		}
		batch = batch[:digestFit(w.rc.Type, evs)]
	}
	m := Message{Events: make([]Event, len(batch))}
	refs := make([]store.DeliveryRef, len(batch))
	for i, p := range batch {
		m.Events[i] = p.ev
		refs[i] = store.DeliveryRef{EventID: p.key, Receiver: w.rc.Name, Route: p.waiters[0].r.Name,
			Target: p.ev.Data.Target, JobID: cmp.Or(p.ev.Data.JobID, p.ev.Subject)}
	}
	if len(batch) == 1 {
		// An event that matches two routes naming this receiver is sent
		// once, in the template of the first route that handed it over.
		m.Template = batch[0].waiters[0].r.Template
	}
	return batch, m, refs
}

// budget is how many more requests the rates allow right now, besides
// the one reserved.
func (w *worker) budget() int {
	b := math.MaxInt
	now := time.Now()
	for _, l := range w.limiters {
		b = min(b, max(0, int(l.TokensAt(now))))
	}
	return b
}

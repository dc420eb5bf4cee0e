package oss

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"golang.org/x/time/rate"
)

// DefaultRate is Config.Rate's default: OSS requests per second per
// target, the contract's OSSJOBWATCH_OSS_RATE default.
const DefaultRate = 20

// ErrRateLimitWait marks a request that was never sent: its call's context
// ended, or would have ended, while it waited for its turn under
// Config.Rate. Such an error also matches context.Canceled or
// context.DeadlineExceeded.
var ErrRateLimitWait = errors.New("waiting for the OSS rate limit")

// rateWaitError is ErrRateLimitWait with the rate and the context's reason.
type rateWaitError struct {
	rate rate.Limit
	err  error
}

func (e *rateWaitError) Error() string {
	return fmt.Sprintf("%v (%s requests/s): %v", ErrRateLimitWait, strconv.FormatFloat(float64(e.rate), 'g', 4, 64), e.err)
}

func (e *rateWaitError) Unwrap() []error { return []error{ErrRateLimitWait, e.err} }

// rateDefaults applies Rate's and Burst's defaults and checks them.
func rateDefaults(cfg *Config) error {
	switch {
	case math.IsNaN(cfg.Rate) || cfg.Rate < 0:
		return fmt.Errorf("oss: rate %v: must be positive requests per second (or +Inf for no limit)", cfg.Rate)
	case cfg.Burst < 0:
		return fmt.Errorf("oss: burst %d: must not be negative", cfg.Burst)
	}
	if cfg.Rate == 0 {
		cfg.Rate = DefaultRate
	}
	if cfg.Burst == 0 {
		cfg.Burst = 5
		if cfg.Rate < 5 {
			cfg.Burst = max(1, int(cfg.Rate))
		}
	}
	return nil
}

// opKey carries the operation's name to the transport, for OnRateWait.
type opKey struct{}

// limitedTransport makes every HTTP attempt, first tries and retries alike,
// wait for a slot of the client's limiter. It sits in the transport because
// that is the one place every attempt the SDK makes passes through. The
// request is signed before it waits: a wait is bounded by CallTimeout,
// far less than the 15 minutes of clock skew OSS tolerates.
type limitedTransport struct {
	next   http.RoundTripper
	lim    *rate.Limiter
	onWait func(op string, wait time.Duration)
}

func (t *limitedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := t.wait(req.Context()); err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	return t.next.RoundTrip(req)
}

// wait takes a slot, sleeping until it comes. It gives the slot back when
// the context ends first, and does not wait at all for a slot past the
// context's deadline.
func (t *limitedTransport) wait(ctx context.Context) error {
	r := t.lim.Reserve()
	if !r.OK() { // only with a zero burst, which rateDefaults prevents
		return &rateWaitError{rate: t.lim.Limit(), err: errors.New("burst is zero")}
	}
	d := r.Delay()
	if d == 0 {
		return nil
	}
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < d {
		r.Cancel()
		return &rateWaitError{rate: t.lim.Limit(), err: fmt.Errorf("next slot in %s, after the call's deadline: %w", d.Round(time.Millisecond), context.DeadlineExceeded)}
	}
	if t.onWait != nil {
		op, _ := ctx.Value(opKey{}).(string)
		t.onWait(op, d)
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		r.Cancel()
		return &rateWaitError{rate: t.lim.Limit(), err: ctx.Err()}
	}
}

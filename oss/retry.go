package oss

import (
	"errors"
	"math/rand/v2"
	"time"

	sdk "github.com/aliyun/alibabacloud-oss-go-sdk-v2/oss"
	"github.com/aliyun/alibabacloud-oss-go-sdk-v2/oss/retry"
)

// retryer is the SDK retry policy for one call. It differs from the SDK's
// standard one in three ways: it never retries authentication failures
// (401/403 do not heal by themselves), it honours a throttling answer's
// Retry-After, and it reports every failed attempt to Config.OnAttempt.
type retryer struct {
	c  *Client
	op string
}

var _ retry.Retryer = (*retryer)(nil)

// connectionErrors is the SDK's own judgement of transport failures.
var connectionErrors = &retry.ConnectionErrorRetryable{}

func (r *retryer) MaxAttempts() int { return r.c.cfg.MaxAttempts }

func (r *retryer) IsErrorRetryable(err error) bool {
	if errors.Is(err, ErrRateLimitWait) {
		return false // no request went out, and the deadline is too near
	}
	var se *sdk.ServiceError
	if errors.As(err, &se) {
		r.c.observe(r.op, se.StatusCode, se.Code)
		apiErr := asAPIError(r.op, se).(*APIError)
		return apiErr.Retryable()
	}
	r.c.observe(r.op, 0, "")
	var bre *bodyReadError
	if errors.As(err, &bre) {
		return bre.retryable()
	}
	if errors.Is(err, ErrResponseTooLarge) {
		return false
	}
	return connectionErrors.IsErrorRetryable(err)
}

// RetryDelay is full jitter, min(MaxBackoff, BaseDelay·2^attempt)·rand, or
// the server's Retry-After when it asks for longer (capped at MaxBackoff).
func (r *retryer) RetryDelay(attempt int, err error) (time.Duration, error) {
	cfg := r.c.cfg
	ceiling := cfg.BaseDelay << min(attempt, 30)
	if ceiling <= 0 || ceiling > cfg.MaxBackoff {
		ceiling = cfg.MaxBackoff
	}
	delay := time.Duration(rand.Int64N(int64(ceiling) + 1))
	var se *sdk.ServiceError
	if errors.As(err, &se) {
		if ra := min(retryAfter(se.Headers), cfg.MaxBackoff); ra > delay {
			delay = ra
		}
	}
	r.c.logger.Debug("oss call retrying", "op", r.op, "attempt", attempt, "delay", delay, "error", errSummary(r.op, err))
	return delay, nil
}

// errSummary is a one-line description of an attempt's failure for logs.
func errSummary(op string, err error) string {
	if apiErr, ok := asAPIError(op, err).(*APIError); ok {
		return apiErr.Error()
	}
	return unwrapSDK(err).Error()
}

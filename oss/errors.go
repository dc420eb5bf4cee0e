package oss

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	sdk "github.com/aliyun/alibabacloud-oss-go-sdk-v2/oss"
)

// APIError is an error answer from OSS: an HTTP status and the fields of its
// <Error> body. It never holds credentials or signatures.
type APIError struct {
	// Op is the operation that failed: "ListJobs" or "DescribeJob".
	Op         string
	StatusCode int
	Code       string
	Message    string
	RequestID  string
	// EC is OSS's detailed error code, e.g. "0017-00001002" for an unknown job.
	EC string
	// RetryAfter is the server's Retry-After hint, zero when it gave none.
	RetryAfter time.Duration
}

// ECNoSuchJob is the EC that DescribeJob returns for an unknown job id.
const ECNoSuchJob = "0017-00001002"

// throttlingCodes are the 503 codes OSS answers when an account or
// operation is over its request quota.
var throttlingCodes = map[string]bool{
	"MetaOperationQpsLimitExceeded": true,
	"ServiceUnavailable":            true,
	"TotalQpsLimitExceeded":         true,
	"ActiveRequestLimitExceeded":    true,
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "oss %s: HTTP %d", e.Op, e.StatusCode)
	if e.Code != "" {
		fmt.Fprintf(&b, " %s", e.Code)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " (request id %s", e.RequestID)
		if e.EC != "" {
			fmt.Fprintf(&b, ", EC %s", e.EC)
		}
		b.WriteString(")")
	} else if e.EC != "" {
		fmt.Fprintf(&b, " (EC %s)", e.EC)
	}
	return b.String()
}

// Throttled reports whether OSS refused the call for exceeding a quota.
func (e *APIError) Throttled() bool {
	return e.StatusCode == http.StatusTooManyRequests ||
		(e.StatusCode == http.StatusServiceUnavailable && throttlingCodes[e.Code])
}

// Retryable reports whether the same call may succeed later: throttling and
// server-side errors are, authentication and bad requests are not.
func (e *APIError) Retryable() bool {
	return e.Throttled() || e.StatusCode >= 500 || e.Code == "RequestTimeTooSkewed"
}

// NotFound reports whether the error says the job does not exist.
func (e *APIError) NotFound() bool {
	return e.EC == ECNoSuchJob || e.Code == "NoSuchJob"
}

// asAPIError translates the SDK's service error into an *APIError; other
// errors are returned as they are.
func asAPIError(op string, err error) error {
	var se *sdk.ServiceError
	if !errors.As(err, &se) {
		return err
	}
	return &APIError{
		Op:         op,
		StatusCode: se.StatusCode,
		Code:       se.Code,
		Message:    se.Message,
		RequestID:  se.RequestID,
		EC:         se.EC,
		RetryAfter: retryAfter(se.Headers),
	}
}

// retryAfter reads a Retry-After header given in seconds or as an HTTP date.
func retryAfter(h http.Header) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}

// ErrResponseTooLarge is returned when a response body exceeds
// Config.MaxResponseBytes.
var ErrResponseTooLarge = errors.New("response body too large")

// DecodeError says a response body could not be read as the reference
// describes it. The page it belongs to is rejected whole.
type DecodeError struct {
	Op        string
	RequestID string
	Err       error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("oss %s: malformed response (request id %s): %v", e.Op, e.RequestID, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// bodyReadError marks a 2xx body that broke off while being read: the
// transport failed, not the server's answer, so the call is retried.
type bodyReadError struct{ err error }

func (e *bodyReadError) Error() string { return fmt.Sprintf("read response body: %v", e.err) }

func (e *bodyReadError) Unwrap() error { return e.err }

func (e *bodyReadError) retryable() bool {
	return !errors.Is(e.err, ErrResponseTooLarge) &&
		(errors.Is(e.err, io.ErrUnexpectedEOF) || errors.Is(e.err, io.EOF) ||
			strings.Contains(e.err.Error(), "connection reset"))
}

// errInvalidRequest marks a call refused before any request was sent,
// because its own arguments were wrong.
var errInvalidRequest = errors.New("invalid request")

type invalidRequestError struct{ err error }

func (e *invalidRequestError) Error() string { return e.err.Error() }

func (e *invalidRequestError) Unwrap() []error { return []error{e.err, errInvalidRequest} }

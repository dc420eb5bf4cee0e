// Package oss is the ossjobwatch client for OSS Batch Operations: ListJobs
// and DescribeJob over the Alibaba Cloud OSS Go SDK v2. The SDK has no
// batch-job calls yet, so every call goes through Client.InvokeOperation,
// which signs (V4 by default), resolves endpoints and returns service
// errors; this package adds what a poller needs on top: strict decoding,
// pagination with completeness, typed errors, throttling-aware retries,
// timeouts and a cap on response sizes.
package oss

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"time"

	sdk "github.com/aliyun/alibabacloud-oss-go-sdk-v2/oss"
	"github.com/aliyun/alibabacloud-oss-go-sdk-v2/oss/signer"
	"github.com/aliyun/alibabacloud-oss-go-sdk-v2/oss/transport"
	"golang.org/x/time/rate"
)

// SignatureVersion selects how requests are signed.
type SignatureVersion string

// The signature versions OSS accepts. V4 is the default and the one
// Alibaba Cloud recommends; V1 exists for old deployments and proxies.
const (
	SignatureV4 SignatureVersion = "v4"
	SignatureV1 SignatureVersion = "v1"
)

// V1SubResources are the query parameters a V1 signature covers for the
// batch-job calls, besides those the SDK always signs (continuation-token).
var V1SubResources = []string{"batchJob", "batchJobId", "batchJobStatuses"}

// Config configures a Client. Only Region is required.
type Config struct {
	// Region is the OSS region id, e.g. "cn-hangzhou". V4 signing needs it
	// even when Endpoint is set.
	Region string
	// Endpoint overrides the endpoint derived from Region, e.g.
	// "http://127.0.0.1:9000". Defaults to the region's public endpoint.
	Endpoint string
	// Internal selects the region's internal (VPC) endpoint when Endpoint
	// is empty.
	Internal bool
	// Credentials signs requests. Defaults to DefaultCredentials(), the
	// credentials-go default chain.
	Credentials CredentialsProvider
	// SignatureVersion defaults to SignatureV4.
	SignatureVersion SignatureVersion
	// CallTimeout bounds one call including its retries. Defaults to 60s.
	CallTimeout time.Duration
	// ConnectTimeout defaults to 5s; ReadWriteTimeout, the longest a
	// connection may stall, defaults to 30s.
	ConnectTimeout   time.Duration
	ReadWriteTimeout time.Duration
	// MaxAttempts is how often a retryable call is tried. Defaults to 5.
	MaxAttempts int
	// BaseDelay and MaxBackoff shape the full-jitter backoff between
	// attempts. They default to 200ms and 10s. A Retry-After hint longer
	// than MaxBackoff is cut to MaxBackoff.
	BaseDelay  time.Duration
	MaxBackoff time.Duration
	// MaxResponseBytes caps a response body so that a runaway answer
	// cannot exhaust memory. Defaults to 64 MiB.
	MaxResponseBytes int64
	// MaxPages stops a listing that never ends. Defaults to 10,000 pages
	// (ten million jobs at 1000 a page).
	MaxPages int
	// HTTPClient replaces the SDK's HTTP client (its transport is still
	// wrapped with the response cap). Mostly for tests.
	HTTPClient *http.Client
	// Logger receives retries at debug level. Defaults to discarding.
	Logger *slog.Logger
	// OnAttempt, if set, is called after every HTTP attempt with the
	// operation, the HTTP status (0 when none came back) and the OSS error
	// code, if any. Metrics hang off it.
	OnAttempt func(op string, status int, code string)
	// Rate is how many HTTP requests per second the client sends at most,
	// ListJobs and DescribeJob together, retries included. Make one Client
	// per target and it is the target's OSS request rate. Defaults to
	// DefaultRate (20); math.Inf(1) means no limit; a negative or NaN rate
	// is an error. A call whose context ends while it waits fails with an
	// error matching ErrRateLimitWait, and so does one whose next slot
	// lies past its deadline (at once, without waiting).
	Rate float64
	// Burst is how many requests may go at once after a quiet spell.
	// Defaults to 5, or to Rate rounded down (at least 1) when Rate is
	// below 5.
	Burst int
	// OnRateWait, if set, is called before a request waits for the rate
	// limit, with the operation and how long it will wait. Metrics hang
	// off it.
	OnRateWait func(op string, wait time.Duration)
}

// Client calls ListJobs and DescribeJob. It is safe for concurrent use.
type Client struct {
	sdk      *sdk.Client
	cfg      Config
	logger   *slog.Logger
	endpoint string
}

// NewClient validates cfg and returns a client. It does no I/O.
func NewClient(cfg Config) (*Client, error) {
	if cfg.Region == "" {
		return nil, errors.New("oss: region is required")
	}
	cfg.SignatureVersion = cmp.Or(cfg.SignatureVersion, SignatureV4)
	if cfg.SignatureVersion != SignatureV4 && cfg.SignatureVersion != SignatureV1 {
		return nil, fmt.Errorf("oss: signature version %q: must be %q or %q", cfg.SignatureVersion, SignatureV4, SignatureV1)
	}
	cfg.CallTimeout = cmp.Or(cfg.CallTimeout, 60*time.Second)
	cfg.ConnectTimeout = cmp.Or(cfg.ConnectTimeout, 5*time.Second)
	cfg.ReadWriteTimeout = cmp.Or(cfg.ReadWriteTimeout, 30*time.Second)
	cfg.MaxAttempts = cmp.Or(cfg.MaxAttempts, 5)
	cfg.BaseDelay = cmp.Or(cfg.BaseDelay, 200*time.Millisecond)
	cfg.MaxBackoff = cmp.Or(cfg.MaxBackoff, 10*time.Second)
	cfg.MaxResponseBytes = cmp.Or(cfg.MaxResponseBytes, 64<<20)
	cfg.MaxPages = cmp.Or(cfg.MaxPages, 10_000)
	if err := rateDefaults(&cfg); err != nil {
		return nil, err
	}
	switch {
	case cfg.MaxAttempts < 1:
		return nil, fmt.Errorf("oss: max attempts %d: must be at least 1", cfg.MaxAttempts)
	case cfg.MaxPages < 1:
		return nil, fmt.Errorf("oss: max pages %d: must be at least 1", cfg.MaxPages)
	case cfg.MaxResponseBytes < 1:
		return nil, fmt.Errorf("oss: max response bytes %d: must be positive", cfg.MaxResponseBytes)
	case cfg.CallTimeout < 0 || cfg.ConnectTimeout < 0 || cfg.ReadWriteTimeout < 0 || cfg.BaseDelay < 0 || cfg.MaxBackoff < 0:
		return nil, errors.New("oss: timeouts and delays must not be negative")
	}
	if cfg.Credentials == nil {
		cfg.Credentials = DefaultCredentials()
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}

	httpClient := cfg.HTTPClient
	if httpClient == nil {
		httpClient = transport.NewHttpClient(&transport.Config{
			ConnectTimeout:   &cfg.ConnectTimeout,
			ReadWriteTimeout: &cfg.ReadWriteTimeout,
		}, transport.ProxyFromEnvironment())
	} else {
		c := *httpClient
		httpClient = &c
	}
	httpClient.Transport = &cappedTransport{next: cmp.Or[http.RoundTripper](httpClient.Transport, http.DefaultTransport), max: cfg.MaxResponseBytes}
	if !math.IsInf(cfg.Rate, 1) {
		lim := rate.NewLimiter(rate.Limit(cfg.Rate), cfg.Burst)
		httpClient.Transport = &limitedTransport{next: httpClient.Transport, lim: lim, onWait: cfg.OnRateWait}
	}

	sc := sdk.LoadDefaultConfig().
		WithRegion(cfg.Region).
		WithCredentialsProvider(cfg.Credentials).
		WithHttpClient(httpClient)
	if cfg.Endpoint != "" {
		sc = sc.WithEndpoint(cfg.Endpoint)
	} else if cfg.Internal {
		sc = sc.WithUseInternalEndpoint(true)
	}
	if cfg.SignatureVersion == SignatureV1 {
		sc = sc.WithSignatureVersion(sdk.SignatureVersionV1)
	}
	return &Client{sdk: sdk.NewClient(sc), cfg: cfg, logger: logger, endpoint: endpointOf(cfg)}, nil
}

// Endpoint is the endpoint the client calls, for logs and errors.
func (c *Client) Endpoint() string { return c.endpoint }

func endpointOf(cfg Config) string {
	switch {
	case cfg.Endpoint != "":
		return cfg.Endpoint
	case cfg.Internal:
		return "https://oss-" + cfg.Region + "-internal.aliyuncs.com"
	}
	return "https://oss-" + cfg.Region + ".aliyuncs.com"
}

// invoke performs one signed GET of the regional endpoint and returns its
// body, read in full and capped. Service errors come back as *APIError.
func (c *Client) invoke(ctx context.Context, op string, params map[string]string) ([]byte, string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
	defer cancel()
	ctx = context.WithValue(ctx, opKey{}, op)

	var body []byte
	input := &sdk.OperationInput{OpName: op, Method: http.MethodGet, Parameters: params}
	input.OpMetadata.Set(signer.SubResource, V1SubResources)
	out, err := c.sdk.InvokeOperation(ctx, input, func(o *sdk.Options) {
		o.Retryer = &retryer{c: c, op: op}
		// Reading the body inside the SDK's attempt lets a body that breaks
		// off be retried like any other transport failure.
		o.ResponseHandlers = append(o.ResponseHandlers, func(resp *http.Response) error {
			c.observe(op, resp.StatusCode, "")
			b, err := readBody(resp)
			resp.Body.Close()
			if err != nil {
				return &bodyReadError{err: err}
			}
			body = b
			resp.Body = io.NopCloser(bytes.NewReader(b))
			return nil
		})
	})
	if err != nil {
		var waitErr *rateWaitError
		if errors.As(err, &waitErr) {
			// The SDK wraps it in a URL error that repeats the query.
			return nil, "", fmt.Errorf("oss %s: %w", op, waitErr)
		}
		err = asAPIError(op, err)
		var apiErr *APIError
		if errors.As(err, &apiErr) {
			return nil, "", apiErr
		}
		if errors.Is(err, ErrResponseTooLarge) {
			return nil, "", fmt.Errorf("oss %s: %w (limit %d bytes)", op, ErrResponseTooLarge, c.cfg.MaxResponseBytes)
		}
		return nil, "", fmt.Errorf("oss %s %s: %w", op, c.endpoint, unwrapSDK(err))
	}
	out.Body.Close()
	return body, out.Headers.Get("x-oss-request-id"), nil
}

// preallocMax is the most readBody allocates on a Content-Length's word:
// a ListJobs page of 1,000 jobs is about 1.4 MB, and a response that
// claims more than it sends (it then fails as truncated, and is retried)
// costs no more than this per attempt.
const preallocMax = 4 << 20

// readBody reads a response's body in full. OSS says how long it is, and a
// buffer of that size takes it in one allocation: io.ReadAll's doubling
// allocated twice a ListJobs page (1.4 MB at 1,000 jobs) and copied it a
// dozen times. A Content-Length that is wrong either way still reads the
// body as sent (cappedTransport has bounded it), and a length above
// preallocMax is not taken at its word up front.
func readBody(resp *http.Response) ([]byte, error) {
	if resp.ContentLength <= 0 {
		return io.ReadAll(resp.Body)
	}
	// bytes.Buffer reads into what is left of its capacity, and grows only
	// when less than bytes.MinRead is: the extra room lets it see EOF
	// without growing.
	buf := bytes.NewBuffer(make([]byte, 0, min(resp.ContentLength, preallocMax)+bytes.MinRead))
	_, err := buf.ReadFrom(resp.Body)
	return buf.Bytes(), err
}

// unwrapSDK drops the SDK's "operation error X:" wrapper, which repeats
// what our own message already says.
func unwrapSDK(err error) error {
	var opErr *sdk.OperationError
	if errors.As(err, &opErr) && opErr.Unwrap() != nil {
		return opErr.Unwrap()
	}
	return err
}

func (c *Client) observe(op string, status int, code string) {
	if c.cfg.OnAttempt != nil {
		c.cfg.OnAttempt(op, status, code)
	}
}

// cappedTransport limits every response body to max bytes.
type cappedTransport struct {
	next http.RoundTripper
	max  int64
}

func (t *cappedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	if resp.ContentLength > t.max {
		resp.Body.Close()
		return nil, fmt.Errorf("%w: Content-Length %d", ErrResponseTooLarge, resp.ContentLength)
	}
	resp.Body = &cappedBody{rc: resp.Body, left: t.max}
	return resp, nil
}

type cappedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// One byte more than allowed tells a body at the cap from one past it.
		var one [1]byte
		n, err := b.rc.Read(one[:])
		if n > 0 {
			return 0, ErrResponseTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *cappedBody) Close() error { return b.rc.Close() }

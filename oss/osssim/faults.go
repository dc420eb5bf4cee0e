package osssim

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Faults are per-request fault probabilities, each in 0..1, drawn from a
// stream seeded by Config.Seed. Throttle503, Error500, TooMany429, Truncate
// and Malformed exclude one another (their sum must not exceed 1); Slow
// combines with any of them. Faults strike only authenticated requests.
type Faults struct {
	// Throttle503 answers 503 with a throttling code, rotating through
	// MetaOperationQpsLimitExceeded, ServiceUnavailable,
	// TotalQpsLimitExceeded and ActiveRequestLimitExceeded.
	Throttle503 float64
	// Error500 answers 500 InternalError.
	Error500 float64
	// TooMany429 answers 429 TooManyRequests with Retry-After.
	TooMany429 float64
	// RetryAfter is the 429's Retry-After, written in whole seconds, at
	// least 1. Defaults to 1s.
	RetryAfter time.Duration
	// Slow delays the answer by SlowDelay, or until the client goes away.
	Slow      float64
	SlowDelay time.Duration
	// Truncate announces the full Content-Length of a 200, writes about half
	// the body and aborts the connection: the client reads an unexpected EOF.
	Truncate float64
	// Malformed answers a 200 whose body is not well-formed XML.
	Malformed float64
}

func (f Faults) validate(prefix string) error {
	rates := []struct {
		name string
		v    float64
	}{
		{"Throttle503", f.Throttle503}, {"Error500", f.Error500}, {"TooMany429", f.TooMany429},
		{"Truncate", f.Truncate}, {"Malformed", f.Malformed}, {"Slow", f.Slow},
	}
	sum := 0.0
	for _, r := range rates {
		if !(r.v >= 0 && r.v <= 1) { // also refuses NaN
			return fmt.Errorf("%s.%s: %v is outside 0..1", prefix, r.name, r.v)
		}
		if r.name != "Slow" {
			sum += r.v
		}
	}
	if sum > 1+1e-9 {
		return fmt.Errorf("%s: Throttle503+Error500+TooMany429+Truncate+Malformed is %v, more than 1", prefix, sum)
	}
	if f.RetryAfter < 0 {
		return fmt.Errorf("%s.RetryAfter: must not be negative, got %s", prefix, f.RetryAfter)
	}
	if f.SlowDelay < 0 {
		return fmt.Errorf("%s.SlowDelay: must not be negative, got %s", prefix, f.SlowDelay)
	}
	return nil
}

// Failure is a scripted fault for FailNext. An error answer is sent when
// Status or Code is set; Truncate and Malformed spoil a 200 answer instead;
// Delay holds any answer back first. The zero Failure lets the request
// through untouched, so a script can skip requests:
//
//	sim.FailNext(1, osssim.Failure{})                 // first page passes
//	sim.FailNext(1, osssim.Failure{Malformed: true})  // second is spoiled
type Failure struct {
	Status  int    // HTTP status; defaults from Code, else 500
	Code    string // OSS error code; defaults from Status
	Message string // defaults to a generic message for Code
	EC      string // optional EC, also sent as x-oss-ec
	// RetryAfter, when positive, is sent as Retry-After in whole seconds (at
	// least 1).
	RetryAfter time.Duration
	Delay      time.Duration
	Truncate   bool
	Malformed  bool
	// RepeatToken answers a ListJobs page normally but hands back the
	// request's own continuation token as NextToken: a server-side loop
	// that a client must detect rather than follow forever.
	RepeatToken bool
}

// plan is what happens to one request.
type plan struct {
	delay     time.Duration
	err       *apiError
	truncate  bool
	malformed bool
	repeat    bool
	injected  bool
}

type scripted struct {
	f Failure
	n int
}

type faultState struct {
	mu       sync.Mutex
	rng      *rand.Rand
	faults   Faults
	script   []scripted
	throttle int
}

func newFaultState(seed int64, f Faults) faultState {
	return faultState{rng: rand.New(rand.NewPCG(uint64(seed), 0x6661756c7473)), faults: f}
}

// SetFaults replaces the random fault probabilities. It refuses invalid ones
// and keeps the old.
func (s *Simulator) SetFaults(f Faults) error {
	if err := f.validate("osssim: Faults"); err != nil {
		return err
	}
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	s.faults.faults = f
	return nil
}

// FailNext makes the next n authenticated requests fail with f, before any
// random fault. Calls queue up in order.
func (s *Simulator) FailNext(n int, f Failure) {
	if n <= 0 {
		return
	}
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	s.faults.script = append(s.faults.script, scripted{f: f, n: n})
}

var throttleCodes = []struct{ code, msg string }{
	{"MetaOperationQpsLimitExceeded", "Qps of meta operations exceeded the limit. Please reduce your request rate."},
	{"ServiceUnavailable", "Please reduce your request rate."},
	{"TotalQpsLimitExceeded", "The total QPS of the account exceeded the limit. Please reduce your request rate."},
	{"ActiveRequestLimitExceeded", "The number of active requests exceeded the limit. Please reduce your request rate."},
}

// nextPlan pops a scripted failure or draws a random one.
func (s *Simulator) nextPlan() plan {
	fs := &s.faults
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if len(fs.script) > 0 {
		sc := &fs.script[0]
		f := sc.f
		if sc.n--; sc.n == 0 {
			fs.script = fs.script[1:]
		}
		return f.plan()
	}
	f := fs.faults
	var p plan
	if f.Slow > 0 && fs.rng.Float64() < f.Slow {
		p.delay, p.injected = f.SlowDelay, true
	}
	if f.Throttle503+f.Error500+f.TooMany429+f.Truncate+f.Malformed == 0 {
		return p
	}
	x := fs.rng.Float64()
	switch {
	case x < f.Throttle503:
		t := throttleCodes[fs.throttle%len(throttleCodes)]
		fs.throttle++
		p.err = &apiError{status: http.StatusServiceUnavailable, code: t.code, message: t.msg}
	case x < f.Throttle503+f.Error500:
		p.err = internalError()
	case x < f.Throttle503+f.Error500+f.TooMany429:
		p.err = &apiError{status: http.StatusTooManyRequests, code: "TooManyRequests",
			message: "Please reduce your request rate.", retryAfter: cmp.Or(f.RetryAfter, time.Second)}
	case x < f.Throttle503+f.Error500+f.TooMany429+f.Truncate:
		p.truncate = true
	case x < f.Throttle503+f.Error500+f.TooMany429+f.Truncate+f.Malformed:
		p.malformed = true
	default:
		return p
	}
	p.injected = true
	return p
}

func (f Failure) plan() plan {
	p := plan{delay: f.Delay, truncate: f.Truncate, malformed: f.Malformed, repeat: f.RepeatToken}
	p.injected = f != Failure{}
	if f.Status == 0 && f.Code == "" {
		return p
	}
	status, code := f.Status, f.Code
	if status == 0 {
		status = statusOfCode[code]
		if status == 0 {
			status = http.StatusInternalServerError
		}
	}
	if code == "" {
		code = cmp.Or(codeOfStatus[status], strings.Join(strings.Fields(http.StatusText(status)), ""), "UnknownError")
	}
	msg := f.Message
	if msg == "" {
		msg = "Injected failure: " + code + "."
	}
	p.err = &apiError{status: status, code: code, message: msg, ec: f.EC, retryAfter: f.RetryAfter}
	return p
}

var statusOfCode = map[string]int{
	"InternalError": 500, "ServiceUnavailable": 503, "MetaOperationQpsLimitExceeded": 503,
	"TotalQpsLimitExceeded": 503, "ActiveRequestLimitExceeded": 503, "TooManyRequests": 429,
	"AccessDenied": 403, "InvalidAccessKeyId": 403, "SignatureDoesNotMatch": 403,
	"RequestTimeTooSkewed": 403, "InvalidSecurityToken": 403, "InvalidArgument": 400, "NoSuchJob": 404,
}

var codeOfStatus = map[int]string{
	500: "InternalError", 503: "ServiceUnavailable", 429: "TooManyRequests", 403: "AccessDenied",
	400: "InvalidArgument", 404: "NoSuchJob", 408: "RequestTimeout",
}

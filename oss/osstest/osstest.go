// Package osstest starts the OSS simulator for tests and returns a client
// configuration pointing at it. Import it from _test.go files only.
package osstest

import (
	"math"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ossjobwatch/ossjobwatch/oss"
	"github.com/ossjobwatch/ossjobwatch/oss/osssim"
)

// Start serves a new simulator on a loopback port for the life of the test
// and returns it with a client configuration signed by its default key.
// Retries wait milliseconds, not seconds, and there is no rate limit
// (Rate is +Inf), so fault tests and listings of thousands of pages stay
// fast; a test of the rate limit sets Rate itself.
func Start(tb testing.TB, cfg osssim.Config) (*osssim.Simulator, oss.Config) {
	tb.Helper()
	sim, err := osssim.New(cfg)
	if err != nil {
		tb.Fatalf("osssim.New: %v", err)
	}
	srv := httptest.NewServer(sim)
	tb.Cleanup(srv.Close)
	key := osssim.DefaultCredential
	if len(cfg.Credentials) > 0 {
		key = cfg.Credentials[0]
	}
	return sim, oss.Config{
		Region:      sim.Region(),
		Endpoint:    srv.URL,
		Credentials: oss.StaticCredentials(key.AccessKeyID, key.AccessKeySecret, key.SecurityToken),
		BaseDelay:   time.Millisecond,
		MaxBackoff:  20 * time.Millisecond,
		CallTimeout: 30 * time.Second,
		Rate:        math.Inf(1),
	}
}

// NewClient is oss.NewClient that fails the test on error.
func NewClient(tb testing.TB, cfg oss.Config) *oss.Client {
	tb.Helper()
	c, err := oss.NewClient(cfg)
	if err != nil {
		tb.Fatalf("oss.NewClient: %v", err)
	}
	return c
}

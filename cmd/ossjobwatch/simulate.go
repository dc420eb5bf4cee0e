package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/ossjobwatch/ossjobwatch/oss/osssim"
)

func init() {
	verbs["simulate"] = verb{
		summary: "serve a simulated OSS Batch Operations endpoint for tests and demos",
		run:     runSimulate,
	}
}

// simulateFlags are the simulate verb's options.
type simulateFlags struct {
	listen, region, accessKeyID, accessKeySecret, logLevel string
	jobs                                                   int
	seed                                                   int64
	tick                                                   time.Duration
	lively                                                 bool
	faults                                                 osssim.Faults
}

func runSimulate(ctx context.Context, c cli) int {
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	var o simulateFlags
	fs.StringVar(&o.listen, "listen", "127.0.0.1:9000", "`address` to listen on; port 0 picks a free port")
	fs.IntVar(&o.jobs, "jobs", 1000, "initial number of jobs; 0 starts an empty world without arrivals")
	fs.Int64Var(&o.seed, "seed", 1, "seed of the world and of the random faults")
	fs.DurationVar(&o.tick, "tick", 5*time.Second, "how often the world evolves; 0 freezes it")
	fs.BoolVar(&o.lively, "lively", false, "more churn per tick and unknown XML elements, for demos")
	fs.StringVar(&o.region, "region", "cn-hangzhou", "`region` the endpoint serves (V4 signatures must be scoped to it)")
	fs.StringVar(&o.accessKeyID, "access-key-id", osssim.DefaultCredential.AccessKeyID, "access key id the simulator accepts")
	fs.StringVar(&o.accessKeySecret, "access-key-secret", osssim.DefaultCredential.AccessKeySecret, "access key secret the simulator accepts")
	fs.StringVar(&o.logLevel, "log-level", "debug", "`level` of the request log on stderr: debug, info, warn or error")
	fs.Float64Var(&o.faults.Throttle503, "throttle-rate", 0, "share of requests answered 503 with a throttling code")
	fs.Float64Var(&o.faults.Error500, "error-rate", 0, "share of requests answered 500 InternalError")
	fs.Float64Var(&o.faults.TooMany429, "429-rate", 0, "share of requests answered 429 with Retry-After")
	fs.DurationVar(&o.faults.RetryAfter, "retry-after", time.Second, "Retry-After of 429 answers (whole seconds, at least 1)")
	fs.Float64Var(&o.faults.Slow, "slow-rate", 0, "share of requests delayed by --slow-delay")
	fs.DurationVar(&o.faults.SlowDelay, "slow-delay", 2*time.Second, "delay of slow requests")
	fs.Float64Var(&o.faults.Truncate, "truncate-rate", 0, "share of 200 answers cut off mid-body")
	fs.Float64Var(&o.faults.Malformed, "malformed-rate", 0, "share of 200 answers with broken XML")
	if code, ok := parseFlags(fs, c); !ok {
		return code
	}
	level, err := o.validate(fs.Args())
	if err != nil {
		fmt.Fprintf(c.stderr, "ossjobwatch simulate: %v\n", err)
		return exitUsage
	}
	cfg := osssim.Config{
		Region:      o.region,
		Credentials: []osssim.Credential{{AccessKeyID: o.accessKeyID, AccessKeySecret: o.accessKeySecret}},
		Jobs:        o.jobs,
		EmptyWorld:  o.jobs == 0,
		Seed:        o.seed,
		Tick:        o.tick,
		Faults:      o.faults,
		Lively:      o.lively,
		Logger:      slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: level})),
	}
	sim, err := osssim.New(cfg)
	if err != nil {
		fmt.Fprintf(c.stderr, "ossjobwatch simulate: %v\n", err)
		return exitUsage
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		fmt.Fprintf(c.stderr, "ossjobwatch simulate: %v\n", err)
		return exitFailure
	}
	endpoint := endpointURL(ln.Addr())
	fmt.Fprintf(c.stdout, "OSS simulator listening on %s (region %s, %d jobs, seed %d, tick %s)\n",
		endpoint, o.region, o.jobs, o.seed, o.tick)
	fmt.Fprintf(c.stdout, "export OSSJOBWATCH_ENDPOINT=%s\n", endpoint)
	fmt.Fprintf(c.stdout, "export OSSJOBWATCH_REGION=%s\n", o.region)
	// The keys are the simulator's own, valid nowhere else: printing them is
	// what lets a user paste these lines.
	fmt.Fprintf(c.stdout, "export ALIBABA_CLOUD_ACCESS_KEY_ID=%s\n", o.accessKeyID)
	fmt.Fprintf(c.stdout, "export ALIBABA_CLOUD_ACCESS_KEY_SECRET=%s\n", o.accessKeySecret)
	fmt.Fprintln(c.stdout, "export ALIBABA_CLOUD_ECS_METADATA_DISABLED=true")

	sim.Start(ctx)
	if err := sim.Serve(ctx, ln); err != nil {
		fmt.Fprintf(c.stderr, "ossjobwatch simulate: %v\n", err)
		return exitFailure
	}
	return exitOK
}

// validate checks the flags and returns the log level; errors name the flag.
func (o *simulateFlags) validate(args []string) (slog.Level, error) {
	var level slog.Level
	if len(args) > 0 {
		return level, fmt.Errorf("unexpected argument %q", args[0])
	}
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return level, fmt.Errorf("--log-level: %q is not one of debug, info, warn, error", o.logLevel)
	}
	var errs []error
	check := func(ok bool, format string, a ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, a...))
		}
	}
	check(o.listen != "", "--listen: must not be empty")
	check(o.jobs >= 0 && o.jobs <= 1_000_000, "--jobs: %d is outside 0..1000000", o.jobs)
	check(o.tick >= 0, "--tick: must not be negative, got %s", o.tick)
	check(validRegionFlag(o.region), "--region: %q is not a region id (lowercase letters, digits and '-')", o.region)
	check(o.accessKeyID != "", "--access-key-id: must not be empty")
	check(o.accessKeySecret != "", "--access-key-secret: must not be empty")
	f := o.faults
	rates := []struct {
		flag string
		v    float64
	}{
		{"--throttle-rate", f.Throttle503}, {"--error-rate", f.Error500}, {"--429-rate", f.TooMany429},
		{"--truncate-rate", f.Truncate}, {"--malformed-rate", f.Malformed}, {"--slow-rate", f.Slow},
	}
	for _, r := range rates {
		check(r.v >= 0 && r.v <= 1, "%s: %v is outside 0..1", r.flag, r.v)
	}
	sum := f.Throttle503 + f.Error500 + f.TooMany429 + f.Truncate + f.Malformed
	check(sum <= 1, "--throttle-rate + --error-rate + --429-rate + --truncate-rate + --malformed-rate: %v is more than 1", sum)
	check(f.RetryAfter >= 0, "--retry-after: must not be negative, got %s", f.RetryAfter)
	check(f.SlowDelay >= 0, "--slow-delay: must not be negative, got %s", f.SlowDelay)
	return level, errors.Join(errs...)
}

func validRegionFlag(s string) bool {
	return s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == ""
}

// endpointURL turns a listener's address into a URL a client can dial: an
// unspecified host (":9000", "[::]:9000") becomes the loopback address.
func endpointURL(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return "http://" + a.String()
	}
	host := tcp.IP.String()
	if tcp.IP == nil || tcp.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(tcp.Port))
}

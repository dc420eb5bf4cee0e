package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ossjobwatch/ossjobwatch/config"
	"github.com/ossjobwatch/ossjobwatch/internal/natstest"
	"github.com/ossjobwatch/ossjobwatch/oss"
	"github.com/ossjobwatch/ossjobwatch/oss/osssim"
	"github.com/ossjobwatch/ossjobwatch/oss/osstest"
	"github.com/ossjobwatch/ossjobwatch/store"
	"github.com/ossjobwatch/ossjobwatch/store/storetest"
)

// scaleConfig is a fleet: targets of jobs each, every one an account of its
// own (a simulator whose world changes every period), swept "@every
// period" by replicas in this process on one database and one NATS server.
type scaleConfig struct {
	targets, jobs, replicas int
	period                  time.Duration
	// observe is how many sweeps of every target are watched once the
	// leases are balanced and every holder has swept its targets.
	observe int
	// ttl is the lease TTL; the heartbeat is a third of it.
	ttl time.Duration
	// maxConns caps each replica's pool; 0 keeps the default.
	maxConns int
}

func (c scaleConfig) String() string {
	return fmt.Sprintf("%d targets × %d jobs, %d replicas, @every %s, lease TTL %s, observe %d sweeps each, pool %d",
		c.targets, c.jobs, c.replicas, c.period, c.ttl, c.observe, c.maxConns)
}

// parseScale reads "targets=200,jobs=500,…" over c (OSSJOBWATCH_SCALE).
func parseScale(tb testing.TB, s string, c scaleConfig) scaleConfig {
	tb.Helper()
	for kv := range strings.SplitSeq(s, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		var err error
		switch k {
		case "":
		case "targets":
			c.targets, err = strconv.Atoi(v)
		case "jobs":
			c.jobs, err = strconv.Atoi(v)
		case "replicas":
			c.replicas, err = strconv.Atoi(v)
		case "observe":
			c.observe, err = strconv.Atoi(v)
		case "pool":
			c.maxConns, err = strconv.Atoi(v)
		case "period":
			c.period, err = time.ParseDuration(v)
		case "ttl":
			c.ttl, err = time.ParseDuration(v)
		default:
			err = fmt.Errorf("unknown key %q", k)
		}
		if err != nil {
			tb.Fatalf("OSSJOBWATCH_SCALE %q: %v", s, err)
		}
	}
	return c
}

// scaleReport is what runScale measured in its observation window.
type scaleReport struct {
	window          time.Duration
	sweeps          int     // started in the window
	sweepsPerSecond float64 // sweeps / window
	maxGap          time.Duration
	meanSweep       time.Duration
	maxSweep        time.Duration
	warmUp          time.Duration
	leases          map[string]int
	conns           connPeaks
	cpu             cpuUse
	events          int    // in job_events (and the stream) at the end
	load            string // /proc/loadavg at the end of the window: others share the machine
}

func (r scaleReport) log(tb testing.TB) {
	tb.Helper()
	tb.Logf("warm-up %s; window %s: %d sweeps, %.1f sweeps/s; sweep mean %s, max %s; longest gap between sweeps of a target %s",
		r.warmUp.Round(time.Millisecond), r.window.Round(time.Millisecond), r.sweeps, r.sweepsPerSecond,
		r.meanSweep.Round(time.Millisecond), r.maxSweep.Round(time.Millisecond), r.maxGap.Round(time.Millisecond))
	tb.Logf("leases %v; database connections: peak %d open (%v per replica), peak %d busy", r.leases, r.conns.open, r.conns.perApp, r.conns.busy)
	if r.conns.samples > 0 {
		var ws []string
		for w, n := range r.conns.waits {
			ws = append(ws, fmt.Sprintf("%s %.1f", w, float64(n)/float64(r.conns.samples)))
		}
		slices.Sort(ws)
		tb.Logf("busy connections on average, by state/wait: %s", strings.Join(ws, ", "))
	}
	tb.Logf("CPU in the window: this process (replicas, simulators, NATS) %.2f cores, PostgreSQL %s, of %d; machine load %s; %d events delivered",
		r.cpu.process.Seconds()/r.window.Seconds(), r.cpu.pgCores(r.window), runtime.NumCPU(), r.load, r.events)
}

// runScale runs the fleet c describes until every target has been swept
// c.observe times by its holder after the leases settled, stops it, and
// checks what the issue asks: every target swept every period, leases
// balanced, no target swept by two replicas at once, every event delivered
// once, in order, with gap-free sequences.
func runScale(tb testing.TB, c scaleConfig) scaleReport {
	tb.Helper()
	ctx := tb.Context()
	ns := natstest.Start(tb)
	dbURL := storetest.NewDatabaseURL(tb)
	env := map[string]string{"OSSJOBWATCH_DATABASE_URL": dbURL, "OSSJOBWATCH_NATS_URL": ns.URL()}
	cfg, err := config.Load(func(k string) string { return env[k] }, config.Flags{}, config.Needs{Database: true, NATS: true})
	if err != nil {
		tb.Fatal(err)
	}
	cfg.HTTP.Listen = "off"
	var creds oss.CredentialsProvider
	for i := range c.targets {
		// Each target is an account of its own: a world of its own, on an
		// endpoint of its own, changing every period.
		sim, oc := osstest.Start(tb, osssim.Config{Jobs: c.jobs, Seed: int64(1000 + i), Lively: true, Tick: c.period})
		sim.Start(ctx)
		creds = oc.Credentials
		cfg.Targets = append(cfg.Targets, config.Target{
			Name: fmt.Sprintf("t%03d", i), Region: sim.Region(), Endpoint: oc.Endpoint,
			Schedule: "@every " + c.period.String(), Enabled: true, Credentials: config.Credentials{Source: "default"},
		})
	}
	open := func(app string) *App {
		rc := cfg
		rc.DatabaseURL = withParams(dbURL, map[string]string{"application_name": app, "pool_max_conns": poolMax(c.maxConns)})
		var logger *slog.Logger
		if f := os.Getenv("OSSJOBWATCH_SCALE_LOG"); f != "" {
			w, err := os.OpenFile(f, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
			if err != nil {
				tb.Fatal(err)
			}
			tb.Cleanup(func() { _ = w.Close() })
			logger = slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo})).With("app", app)
		}
		a, err := Open(ctx, rc, Options{Logger: logger, Credentials: creds, OSS: oss.Config{BaseDelay: time.Millisecond, MaxBackoff: 20 * time.Millisecond}})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(a.Close)
		return a
	}
	st, err := store.Open(ctx, withParams(dbURL, map[string]string{"application_name": "scale-test"}), store.Config{MaxConns: 2})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(st.Close)
	mon := startConnMonitor(tb, st)

	log := &sweepLog{signal: make(chan struct{}, 1)}
	begun := time.Now()
	var stops []func()
	for i := range c.replicas {
		id := fmt.Sprintf("replica-%d", i)
		a := open(id)
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			done <- a.Run(runCtx, RunOptions{ReplicaID: id, LeaseTTL: c.ttl, ShutdownTimeout: 60 * time.Second, OnSweep: log.hook(id)})
		}()
		stops = append(stops, func() {
			cancel()
			if err := <-done; err != nil {
				tb.Errorf("replica %s: %v", id, err)
			}
		})
	}
	stopAll := sync.OnceFunc(func() {
		var wg sync.WaitGroup
		for _, stop := range stops {
			wg.Go(stop)
		}
		wg.Wait()
	})
	tb.Cleanup(stopAll)

	// Warm-up: the leases settle, balanced, and every holder sweeps each of
	// its targets once with them as they are.
	var settled time.Time
	var held map[string]string // target → holder
	generous := 3*time.Minute + time.Duration(c.targets*c.replicas)*c.period/20
	var lastLog time.Time
	log.waitFor(tb, "the leases to settle, balanced, and every target to be swept by its holder", generous, func(recs []sweepRecord) bool {
		now, cur := time.Now(), leaseHolders(tb, st)
		if now.Sub(lastLog) > 15*time.Second {
			lastLog = now
			logProgress(tb, recs, now.Add(-15*time.Second), cur, settled, held, mon)
		}
		if !balanced(cur, c.targets, c.replicas) {
			settled = time.Time{}
			return false
		}
		if settled.IsZero() || !mapsEqual(cur, held) {
			settled, held = now, cur
			return false
		}
		return len(sweptBy(recs, settled, held)) == c.targets
	})
	report := scaleReport{warmUp: time.Since(begun)}

	// Observation: every target swept c.observe more times by its holder.
	from := time.Now()
	pgPID := storetest.ServerPID(tb)
	cpu0 := readCPU(tb, pgPID)
	mon.reset()
	var until time.Time
	log.waitFor(tb, fmt.Sprintf("%d sweeps of every target", c.observe), generous+time.Duration(c.observe)*c.period*4, func(recs []sweepRecord) bool {
		n := map[string]int{}
		for _, r := range recs {
			if !r.start.Before(from) {
				n[r.target]++
			}
		}
		for _, t := range cfg.Targets {
			if n[t.Name] < c.observe {
				return false
			}
		}
		until = time.Now()
		return true
	})
	report.cpu = readCPU(tb, pgPID).since(cpu0)
	report.conns = mon.peaks()
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		report.load = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	report.window = until.Sub(from)
	after := leaseHolders(tb, st)
	report.leases = countHolders(after)

	log.mu.Lock()
	recs := slices.Clone(log.sweeps)
	log.mu.Unlock()
	checkWindow(tb, c, recs, from, until, held, after, &report)

	stopAll()
	mon.stop()
	checkNoOverlap(tb, recs)
	checkNoOverlapInDatabase(tb, st)
	report.events = checkDeliveredAtScale(tb, open("drain"), ns, st)
	return report
}

// logProgress says how the warm-up goes: the leases, the sweeps of the
// last while, the connections.
func logProgress(tb testing.TB, recs []sweepRecord, since time.Time, cur map[string]string, settled time.Time, held map[string]string, mon *connMonitor) {
	tb.Helper()
	var n, failed, stale int
	var longest time.Duration
	for _, r := range recs {
		if r.start.Before(since) {
			continue
		}
		n++
		longest = max(longest, r.end.Sub(r.start))
		if r.err != "" {
			failed++
		}
		if r.stale {
			stale++
		}
	}
	state := "not settled"
	if !settled.IsZero() {
		state = fmt.Sprintf("settled %s ago, %d targets swept by their holder since", time.Since(settled).Round(time.Second), len(sweptBy(recs, settled, held)))
	}
	p := mon.peaks()
	tb.Logf("warm-up: leases %v (%s); since %s: %d sweeps (%d failed, %d stale), longest %s; connections peak %d, busy %d; waits %v",
		countHolders(cur), state, since.Format(time.TimeOnly), n, failed, stale, longest.Round(time.Millisecond), p.open, p.busy, p.waits)
}

// checkWindow checks the observation window: no lease moved, they are
// balanced, every sweep succeeded and was its target's holder's, and no
// target waited more than a period and a half (plus the sweep's own time,
// as "@every" counts from the end of the last sweep) for its next sweep.
func checkWindow(tb testing.TB, c scaleConfig, recs []sweepRecord, from, until time.Time, before, after map[string]string, r *scaleReport) {
	tb.Helper()
	if !mapsEqual(before, after) {
		tb.Errorf("leases moved during the window: %v before, %v after", countHolders(before), countHolders(after))
	}
	if !balanced(after, c.targets, c.replicas) {
		tb.Errorf("leases unbalanced: %v", countHolders(after))
	}
	last := map[string]sweepRecord{}
	var total time.Duration
	for _, s := range recs {
		if s.start.Before(from) || s.start.After(until) {
			continue
		}
		r.sweeps++
		total += s.end.Sub(s.start)
		r.maxSweep = max(r.maxSweep, s.end.Sub(s.start))
		if s.err != "" {
			tb.Errorf("sweep of %s by %s failed: %s", s.target, s.replica, s.err)
		}
		if s.stale {
			tb.Errorf("sweep of %s by %s was stale: another replica applied a listing first", s.target, s.replica)
		}
		if h := before[s.target]; h != s.replica {
			tb.Errorf("%s swept by %s, but %s holds its lease", s.target, s.replica, h)
		}
		prevStart := from
		if p, ok := last[s.target]; ok {
			prevStart = p.start
		}
		gap := s.start.Sub(prevStart)
		r.maxGap = max(r.maxGap, gap)
		if p, ok := last[s.target]; ok && s.start.Sub(p.end) > c.period*3/2 {
			tb.Errorf("%s waited %s after its last sweep ended for the next (schedule @every %s)", s.target, s.start.Sub(p.end), c.period)
		}
		last[s.target] = s
	}
	r.sweepsPerSecond = float64(r.sweeps) / r.window.Seconds()
	if r.sweeps > 0 {
		r.meanSweep = total / time.Duration(r.sweeps)
	}
	// A target whose first sweep in the window came late would show here.
	if r.maxGap > 2*c.period+r.maxSweep {
		tb.Errorf("a target went %s without a sweep starting (schedule @every %s, longest sweep %s)", r.maxGap, c.period, r.maxSweep)
	}
}

// sweptBy returns the targets swept, since since, by the replica holding
// their lease.
func sweptBy(recs []sweepRecord, since time.Time, holders map[string]string) map[string]bool {
	out := map[string]bool{}
	for _, r := range recs {
		if !r.start.Before(since) && holders[r.target] == r.replica && r.err == "" && !r.stale {
			out[r.target] = true
		}
	}
	return out
}

func leaseHolders(tb testing.TB, st *store.Store) map[string]string {
	tb.Helper()
	rows, err := st.Pool().Query(tb.Context(), `SELECT target, holder FROM target_leases WHERE expires_at > now()`)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var t, h string
		if err := rows.Scan(&t, &h); err != nil {
			tb.Fatal(err)
		}
		out[t] = h
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

func countHolders(holders map[string]string) map[string]int {
	n := map[string]int{}
	for _, h := range holders {
		n[h]++
	}
	return n
}

// balanced reports whether every target is held and every replica holds
// its share: none more than one target above another.
func balanced(holders map[string]string, targets, replicas int) bool {
	n := countHolders(holders)
	if len(holders) != targets || len(n) != replicas {
		return false
	}
	lo, hi := targets, 0
	for _, k := range n {
		lo, hi = min(lo, k), max(hi, k)
	}
	return hi-lo <= 1
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// checkNoOverlap checks, from the sweeps the replicas reported, that no
// target was swept by two replicas at once.
func checkNoOverlap(tb testing.TB, recs []sweepRecord) {
	tb.Helper()
	by := map[string][]sweepRecord{}
	for _, r := range recs {
		by[r.target] = append(by[r.target], r)
	}
	for _, rs := range by {
		slices.SortFunc(rs, func(x, y sweepRecord) int { return x.start.Compare(y.start) })
		for i := 1; i < len(rs); i++ {
			x, y := rs[i-1], rs[i]
			if x.replica != y.replica && y.start.Before(x.end) {
				tb.Errorf("%s swept by %s and %s at once: %s–%s and %s–%s", x.target, x.replica, y.replica,
					x.start.Format(time.StampMicro), x.end.Format(time.StampMicro), y.start.Format(time.StampMicro), y.end.Format(time.StampMicro))
			}
		}
	}
}

// checkNoOverlapInDatabase checks the same from the sweeps table, on the
// database's clock: a replica runs one sweep of a target at a time, so two
// sweeps of a target running at once are two replicas'.
func checkNoOverlapInDatabase(tb testing.TB, st *store.Store) {
	tb.Helper()
	rows, err := st.Pool().Query(tb.Context(), `
		SELECT a.target, a.started_at, a.finished_at, b.started_at, b.finished_at
		FROM sweeps a JOIN sweeps b ON a.target = b.target AND a.id < b.id
		WHERE a.started_at < coalesce(b.finished_at, 'infinity') AND b.started_at < coalesce(a.finished_at, 'infinity')
		LIMIT 10`)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var target string
		var as, bs time.Time
		var af, bf *time.Time
		if err := rows.Scan(&target, &as, &af, &bs, &bf); err != nil {
			tb.Fatal(err)
		}
		tb.Errorf("sweeps table: two sweeps of %s at once: %s–%v and %s–%v", target, as, af, bs, bf)
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
}

func poolMax(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

// withParams sets connection parameters (those with a value) on a
// postgres:// URL or a key=value DSN.
func withParams(dsn string, params map[string]string) string {
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range params {
			if !yield(k) {
				return
			}
		}
	})
	for _, k := range keys {
		v := params[k]
		if v == "" {
			continue
		}
		if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
			sep := "?"
			if strings.Contains(dsn, "?") {
				sep = "&"
			}
			dsn += sep + k + "=" + v
		} else {
			dsn += " " + k + "=" + v
		}
	}
	return dsn
}

// scaleFromEnv is c, overridden by OSSJOBWATCH_SCALE if set.
func scaleFromEnv(tb testing.TB, c scaleConfig) scaleConfig {
	if s := os.Getenv("OSSJOBWATCH_SCALE"); s != "" {
		c = parseScale(tb, s, c)
	}
	return c
}

// TestManyTargetsManyReplicas is the fleet test at a size the race
// detector on two cores runs in about half a minute. The size (200
// targets of 500 jobs on 3 replicas) is BenchmarkManyTargetsManyReplicas,
// `make bench-scale`. OSSJOBWATCH_SCALE overrides either, e.g.
// "targets=100,period=3s".
func TestManyTargetsManyReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("a fleet of replicas runs for half a minute")
	}
	t.Parallel()
	c := scaleFromEnv(t, scaleConfig{targets: 30, jobs: 100, replicas: 3, period: 2 * time.Second, observe: 4, ttl: 6 * time.Second})
	t.Log(c)
	runScale(t, c).log(t)
}

// BenchmarkManyTargetsManyReplicas runs the fleet once and reports
// what it sustained: sweeps per second, peak database connections of the
// replicas together, and CPU.
func BenchmarkManyTargetsManyReplicas(b *testing.B) {
	c := scaleFromEnv(b, scaleConfig{targets: 200, jobs: 500, replicas: 3, period: 5 * time.Second, observe: 6, ttl: 15 * time.Second})
	b.Log(c)
	var r scaleReport
	for range b.N {
		r = runScale(b, c)
	}
	r.log(b)
	b.ReportMetric(r.sweepsPerSecond, "sweeps/s")
	b.ReportMetric(float64(r.conns.open), "peak-db-conns")
	b.ReportMetric(r.cpu.process.Seconds()/r.window.Seconds(), "go-cores")
	b.ReportMetric(r.meanSweep.Seconds()*1000, "ms/sweep")
	b.ReportMetric(0, "ns/op")
}

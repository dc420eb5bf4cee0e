package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdk "github.com/aliyun/alibabacloud-oss-go-sdk-v2/oss"
	"github.com/aliyun/alibabacloud-oss-go-sdk-v2/oss/credentials"
	"github.com/aliyun/alibabacloud-oss-go-sdk-v2/oss/signer"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ossjobwatch/ossjobwatch/diff"
	"github.com/ossjobwatch/ossjobwatch/event"
	"github.com/ossjobwatch/ossjobwatch/internal/natstest"
	"github.com/ossjobwatch/ossjobwatch/internal/proctest"
	"github.com/ossjobwatch/ossjobwatch/oss"
	"github.com/ossjobwatch/ossjobwatch/oss/osssim"
	"github.com/ossjobwatch/ossjobwatch/oss/osstest"
	"github.com/ossjobwatch/ossjobwatch/publisher"
	"github.com/ossjobwatch/ossjobwatch/store/storetest"
)

// The sweep benchmarks measure `ossjobwatch sweep` on a 100,000-job target
// against floors measured in the same run, on the same simulator, database
// server and NATS server:
//
//   - list: the same 100 pages of 1,000 jobs listed with the OSS SDK and
//     decoded with plain encoding/xml;
//   - copy: a plain pgx COPY of 100,000 event-shaped rows (job_events'
//     columns, the sweep's payloads) into a fresh table;
//   - publish: jetstream PublishAsync of 100,000 messages of the events'
//     subjects, headers and payloads, waiting for every ack.
//
// Each round (-benchtime Nx runs N) measures every floor and both sweeps
// back to back, and the ratios are taken round by round: a 2-core machine
// shared with other work runs a quarter faster or slower from one minute
// to the next, and floors measured a minute before the sweeps would
// compare against another machine.
//
// The sweeps run as the built binary, in a process of its own, so that
// their time includes everything the verb does (start, migrations check,
// listing, apply, publishing and waiting for every ack) and their peak RSS
// is the sweep's alone. The simulator runs in another process (the test
// binary, re-executed), NATS and the floors in this one.
//
//	go test -run '^$' -bench SweepFloors -benchtime 3x ./cmd/ossjobwatch
//
// BenchmarkSweepInProcess runs the same sweeps in this process, for pprof
// (-cpuprofile, -memprofile).

const benchJobs = osstest.RemoteJobs

// benchEnv is what every figure of one run shares.
type benchEnv struct {
	sim    *osstest.Remote
	nats   *natstest.Server
	bin    string
	events []event.Event // event-shaped rows: a first sweep's events (see floorEvents)

	pgPID int // the PostgreSQL server's postmaster, whose process tree is PostgreSQL's CPU (0: not local)

	mu      sync.Mutex
	figures map[string][]time.Duration
	cpu     map[string][]cpuSpent
	rss     map[string]int64 // peak RSS in bytes, the largest seen
	// ratios of the first sweep to the sum of the floors, and of the 1%
	// sweep to the listing floor, one per round.
	firstRatios, oneRatios, firstRatiosHere []float64
	// the first sweep's CPU to the sum of the floors', one per round.
	cpuRatios []float64
}

// newBenchEnv starts the simulator and NATS and builds the binary, for the
// life of b: its sub-benchmarks and the report share them.
func newBenchEnv(b *testing.B) *benchEnv {
	e := &benchEnv{figures: map[string][]time.Duration{}, cpu: map[string][]cpuSpent{}, rss: map[string]int64{}}
	e.sim = osstest.StartRemote(b)
	e.nats = natstest.Start(b)
	if e.pgPID = storetest.ServerPID(b); e.pgPID == 0 {
		b.Logf("PostgreSQL's CPU is not measured: its server is not a process of this machine")
	}
	e.bin = filepath.Join(b.TempDir(), "ossjobwatch")
	build := exec.Command("go", "build", "-o", e.bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	return e
}

// firstSweepEvents lists the simulator once and encodes what a first sweep
// would: one discovered event per job.
func firstSweepEvents(b *testing.B, endpoint string) []event.Event {
	key := osssim.DefaultCredential
	c, err := oss.NewClient(oss.Config{Region: "cn-hangzhou", Endpoint: endpoint,
		Credentials: oss.StaticCredentials(key.AccessKeyID, key.AccessKeySecret, "")})
	if err != nil {
		b.Fatal(err)
	}
	sweepID, _ := event.NewID()
	meta := event.Meta{Target: "bench", Region: "cn-hangzhou", SubjectPrefix: event.DefaultSubjectPrefix,
		SweepID: sweepID, ObservedAt: time.Now()}
	evs := make([]event.Event, 0, benchJobs)
	for page, err := range c.Pager(oss.ListJobsOptions{}).All(context.Background()) {
		if err != nil {
			b.Fatal(err)
		}
		for i := range page.Jobs {
			id, _ := event.NewID()
			ev, err := event.Encode(id, diff.Change{Kind: diff.Discovered, Job: &page.Jobs[i], Sequence: 1, Baseline: true}, event.Enrichment{}, meta)
			if err != nil {
				b.Fatal(err)
			}
			evs = append(evs, ev)
		}
	}
	if len(evs) != benchJobs {
		b.Fatalf("listed %d jobs, want %d", len(evs), benchJobs)
	}
	return evs
}

// floorEvents returns the events of a first sweep, encoding them on first
// use.
func (e *benchEnv) floorEvents(b *testing.B) []event.Event {
	if e.events == nil {
		e.events = firstSweepEvents(b, e.sim.Endpoint)
	}
	return e.events
}

// migratedDatabaseURL returns the URL of a fresh database, migrated as
// `ossjobwatch migrate` would leave it, dropped when b ends.
func migratedDatabaseURL(b *testing.B) string {
	st := storetest.NewStore(b)
	url := st.Pool().Config().ConnString()
	st.Close()
	return url
}

func (e *benchEnv) record(name string, d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.figures[name] = append(e.figures[name], d)
}

func (e *benchEnv) recordRSS(name string, bytes int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.rss[name] = max(e.rss[name], bytes)
}

// cpuMark is the CPU time used so far by the processes a figure keeps
// busy besides its own: PostgreSQL (the server and every backend, ended or
// not), this process (the NATS server, floor c's client) and the
// simulator's.
type cpuMark struct{ pg, here, sim time.Duration }

// cpuSpent is a figure's CPU time: what it ran in a process of its own
// (the sweep, floor a) and the cpuMarks' differences.
type cpuSpent struct{ own, pg, here, sim time.Duration }

func (c cpuSpent) total() time.Duration { return c.own + c.pg + c.here + c.sim }

func (e *benchEnv) cpuMark(b *testing.B) cpuMark {
	var m cpuMark
	var err error
	if e.pgPID != 0 {
		if m.pg, err = proctest.TreeCPU(e.pgPID); err != nil {
			b.Fatalf("PostgreSQL's CPU: %v", err)
		}
	}
	if m.here, err = proctest.Self(); err != nil {
		b.Fatal(err)
	}
	sim, err := proctest.Read(e.sim.PID)
	if err != nil {
		b.Fatalf("the simulator's CPU: %v", err)
	}
	m.sim = sim.CPU()
	return m
}

// recordCPU records the CPU a figure used since from, own being what its
// own process used.
func (e *benchEnv) recordCPU(b *testing.B, name string, from cpuMark, own time.Duration) cpuSpent {
	to := e.cpuMark(b)
	c := cpuSpent{own: own, pg: to.pg - from.pg, here: to.here - from.here, sim: to.sim - from.sim}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cpu[name] = append(e.cpu[name], c)
	return c
}

// medianCPU is each part's median over a figure's runs.
func (e *benchEnv) medianCPU(name string) cpuSpent {
	e.mu.Lock()
	defer e.mu.Unlock()
	runs := e.cpu[name]
	if len(runs) == 0 {
		return cpuSpent{}
	}
	part := func(f func(cpuSpent) time.Duration) time.Duration {
		d := make([]time.Duration, len(runs))
		for i, c := range runs {
			d[i] = f(c)
		}
		return medianOf(d)
	}
	return cpuSpent{
		own:  part(func(c cpuSpent) time.Duration { return c.own }),
		pg:   part(func(c cpuSpent) time.Duration { return c.pg }),
		here: part(func(c cpuSpent) time.Duration { return c.here }),
		sim:  part(func(c cpuSpent) time.Duration { return c.sim }),
	}
}

// median of a figure's runs; zero if it was not measured.
func (e *benchEnv) median(name string) time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.figures[name]) == 0 {
		return 0
	}
	return medianOf(e.figures[name])
}

// BenchmarkSweepFloors measures, round after round, the floors, the first
// sweep and a sweep with 1% of the jobs changed, and prints each figure
// (medians of the rounds) and the ratios (each round's, and their median).
func BenchmarkSweepFloors(b *testing.B) {
	e := newBenchEnv(b)
	floors := e.newFloors(b)
	first := e.newSweeper(b, false, e.processSweep)
	one := e.newSweeper(b, true, e.processSweep)
	for b.Loop() {
		floors.settle(b)
		list := e.floorList(b)
		cp := floors.copy(b, "bare")
		floors.settle(b)
		pub := floors.publish(b)
		floors.copy(b, "like")
		floors.settle(b)
		f := first.sweep(b)
		floors.settle(b)
		o := one.sweep(b)
		here := e.floorListHere(b)
		e.ratios(f, list+cp+pub, o, list, here+cp+pub)
		e.cpuRatio()
	}
	b.StopTimer()
	e.report(b)
}

// BenchmarkSweepInProcess runs the sweep verb in this process, for
// profiles: go test -run '^$' -bench 'SweepInProcess/first' -benchtime 1x
// -cpuprofile cpu.out ./cmd/ossjobwatch.
func BenchmarkSweepInProcess(b *testing.B) {
	e := newBenchEnv(b)
	b.Run("first", func(b *testing.B) {
		s := e.newSweeper(b, false, e.inProcessSweep)
		for b.Loop() {
			s.sweep(b)
		}
	})
	b.Run("one-percent", func(b *testing.B) {
		s := e.newSweeper(b, true, e.inProcessSweep)
		for b.Loop() {
			s.sweep(b)
		}
	})
}

// ratios records one round's ratios.
// floorsHere has floor a measured in this process instead.
func (e *benchEnv) ratios(first, floors, one, list, floorsHere time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.firstRatios = append(e.firstRatios, float64(first)/float64(floors))
	e.oneRatios = append(e.oneRatios, float64(one)/float64(list))
	e.firstRatiosHere = append(e.firstRatiosHere, float64(first)/float64(floorsHere))
}

// cpuRatio records the last round's ratio of the first sweep's CPU to the
// floors'.
func (e *benchEnv) cpuRatio() {
	e.mu.Lock()
	defer e.mu.Unlock()
	last := func(name string) time.Duration {
		r := e.cpu[name]
		return r[len(r)-1].total()
	}
	floors := last("floor-list") + last("floor-copy") + last("floor-publish")
	e.cpuRatios = append(e.cpuRatios, float64(last("first-sweep"))/float64(floors))
}

func (e *benchEnv) report(b *testing.B) {
	list, cp, pub := e.median("floor-list"), e.median("floor-copy"), e.median("floor-publish")
	first, one := e.median("first-sweep"), e.median("one-percent-sweep")
	ms := func(d time.Duration) string { return fmt.Sprintf("%d ms", d.Milliseconds()) }
	rounds := func(r []float64) string {
		each := make([]string, len(r))
		for i, x := range r {
			each[i] = fmt.Sprintf("%.2fx", x)
		}
		return fmt.Sprintf("%.2fx (rounds: %s)", medianOf(r), strings.Join(each, " "))
	}
	var w strings.Builder
	fmt.Fprintf(&w, "\nossjobwatch sweep of %d jobs, %d rounds, medians (%d CPUs):\n", benchJobs, len(e.firstRatios), runtime.GOMAXPROCS(0))
	fmt.Fprintf(&w, "  floor a: list+decode (SDK, encoding/xml)  %9s  (in this process, which holds NATS and the events: %s)\n", ms(list), ms(e.median("floor-list-here")))
	fmt.Fprintf(&w, "  floor b: COPY %d rows, fresh table       %9s  (into a table LIKE job_events: %s)\n", benchJobs, ms(cp), ms(e.median("copy-like-job_events")))
	fmt.Fprintf(&w, "  floor c: PublishAsync %d, all acked      %9s\n", benchJobs, ms(pub))
	fmt.Fprintf(&w, "  first sweep, end to end                    %9s  vs a+b+c %s\n", ms(first), ms(list+cp+pub))
	fmt.Fprintf(&w, "    ratio, round by round: %s (target <= 1.50x)\n", rounds(e.firstRatios))
	fmt.Fprintf(&w, "    with floor a taken in this process: %s\n", rounds(e.firstRatiosHere))
	fmt.Fprintf(&w, "  1%%-changed sweep, end to end               %9s  vs a %s\n", ms(one), ms(list))
	fmt.Fprintf(&w, "    ratio, round by round: %s (target <= 1.30x)\n", rounds(e.oneRatios))
	cpuLine := func(label, name string) {
		c := e.medianCPU(name)
		sec := func(d time.Duration) string { return fmt.Sprintf("%.2f", d.Seconds()) }
		fmt.Fprintf(&w, "    %-24s %5s %5s %5s %5s = %5s\n", label, sec(c.own), sec(c.pg), sec(c.here), sec(c.sim), sec(c.total()))
	}
	fmt.Fprintf(&w, "  CPU seconds, medians:       own    pg  here   sim   total  (own: the figure's process; pg: PostgreSQL; here: this process, NATS; sim: the simulator)\n")
	cpuLine("floor a", "floor-list")
	cpuLine("floor b", "floor-copy")
	cpuLine("floor c", "floor-publish")
	cpuLine("first sweep", "first-sweep")
	cpuLine("1%-changed sweep", "one-percent-sweep")
	fmt.Fprintf(&w, "    first sweep's CPU / floors' CPU, round by round: %s\n", rounds(e.cpuRatios))
	fmt.Fprintf(&w, "  peak RSS, first sweep                      %6.1f MB  (target <= 150 MB)\n", float64(e.rss["first-sweep"])/1e6)
	fmt.Fprintf(&w, "  peak RSS, 1%%-changed sweep                 %6.1f MB\n", float64(e.rss["one-percent-sweep"])/1e6)
	fmt.Print(w.String())
	if len(e.firstRatios) > 0 {
		b.ReportMetric(medianOf(e.firstRatios), "first/floors")
		b.ReportMetric(medianOf(e.oneRatios), "one%/list")
	}
}

// medianOf returns the median of r (the upper one of an even count).
func medianOf[T cmp.Ordered](r []T) T {
	r = slices.Clone(r)
	slices.Sort(r)
	return r[len(r)/2]
}

// floorListResult is the ListJobs document as plain encoding/xml reads it.
type floorListResult struct {
	NextToken string `xml:"NextToken"`
	Jobs      []struct {
		CreationTime    string `xml:"CreationTime"`
		Description     string `xml:"Description"`
		JobID           string `xml:"JobId"`
		Operation       string `xml:"Operation"`
		Priority        string `xml:"Priority"`
		ProgressSummary struct {
			Total     string `xml:"TotalNumberOfTasks"`
			Succeeded string `xml:"NumberOfTasksSucceeded"`
			Failed    string `xml:"NumberOfTasksFailed"`
			Timers    struct {
				Elapsed string `xml:"ElapsedTimeInActiveSeconds"`
			} `xml:"Timers"`
		} `xml:"ProgressSummary"`
		Status          string `xml:"Status"`
		TerminationDate string `xml:"TerminationDate"`
	} `xml:"Jobs>JobListDescriptor"`
}

// floorListEnv, when set to a simulator's endpoint, makes the test binary
// list it as floor a does, print "listed N jobs in NS ns" and exit (see
// TestMain).
const floorListEnv = "OSSJOBWATCH_BENCH_FLOOR_LIST"

// floorList: the listing with the SDK (V4 signing) and encoding/xml, in a
// process of its own, as the sweep runs: in this one, which holds NATS and
// 100,000 encoded events, the collector ran a fraction as often and the
// same listing took 2.2 s instead of 3.8.
func (e *benchEnv) floorList(b *testing.B) time.Duration {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(childEnv(), floorListEnv+"="+e.sim.Endpoint)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	from := e.cpuMark(b)
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("list floor: %v\n%s%s", err, out, stderr.Bytes())
	}
	e.recordCPU(b, "floor-list", from, cmd.ProcessState.UserTime()+cmd.ProcessState.SystemTime())
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var jobs int
	var ns int64
	if _, err := fmt.Sscanf(lines[len(lines)-1], "listed %d jobs in %d ns", &jobs, &ns); err != nil {
		b.Fatalf("list floor: %v in %q", err, out)
	}
	if jobs != benchJobs {
		b.Fatalf("listed %d jobs, want %d", jobs, benchJobs)
	}
	elapsed := time.Duration(ns)
	e.record("floor-list", elapsed)
	return elapsed
}

// listFloor lists endpoint as floor a does and prints how many jobs it
// listed and in how long; it is floor a's process.
func listFloor(endpoint string) {
	jobs, elapsed, err := listPlain(endpoint)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Printf("listed %d jobs in %d ns\n", jobs, elapsed.Nanoseconds())
	os.Exit(0)
}

// floorListHere is floor a in this process, which holds NATS and 100,000
// encoded events: reported beside the floor of its own process, not used in
// the ratios.
func (e *benchEnv) floorListHere(b *testing.B) time.Duration {
	jobs, elapsed, err := listPlain(e.sim.Endpoint)
	if err != nil {
		b.Fatalf("list floor in process: %v", err)
	}
	if jobs != benchJobs {
		b.Fatalf("listed %d jobs, want %d", jobs, benchJobs)
	}
	e.record("floor-list-here", elapsed)
	return elapsed
}

// listPlain lists every job of endpoint with the SDK (V4 signing) and
// encoding/xml, and says how many and how long it took.
func listPlain(endpoint string) (int, time.Duration, error) {
	key := osssim.DefaultCredential
	c := sdk.NewClient(sdk.LoadDefaultConfig().WithRegion("cn-hangzhou").WithEndpoint(endpoint).
		WithCredentialsProvider(credentials.NewStaticCredentialsProvider(key.AccessKeyID, key.AccessKeySecret)))
	ctx := context.Background()
	start := time.Now()
	jobs, token := 0, ""
	for {
		params := map[string]string{"batchJob": "", "max-keys": "1000"}
		if token != "" {
			params["continuation-token"] = token
		}
		in := &sdk.OperationInput{OpName: "ListJobs", Method: http.MethodGet, Parameters: params}
		in.OpMetadata.Set(signer.SubResource, oss.V1SubResources)
		out, err := c.InvokeOperation(ctx, in)
		if err != nil {
			return jobs, 0, err
		}
		body, err := io.ReadAll(out.Body)
		out.Body.Close()
		if err != nil {
			return jobs, 0, err
		}
		var r floorListResult
		if err := xml.Unmarshal(body, &r); err != nil {
			return jobs, 0, err
		}
		jobs += len(r.Jobs)
		if token = r.NextToken; token == "" {
			return jobs, time.Since(start), nil
		}
	}
}

// floors holds what the COPY and publish floors reuse from round to round:
// a connection to a migrated database, and one to NATS.
type floors struct {
	e      *benchEnv
	events []event.Event
	conn   *pgx.Conn
	js     jetstream.JetStream
	failed atomic.Int64 // async publishes that failed
}

func (e *benchEnv) newFloors(b *testing.B) *floors {
	f := &floors{e: e, events: e.floorEvents(b)}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, migratedDatabaseURL(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close(ctx) })
	f.conn = conn
	nc, err := nats.Connect(e.nats.URL())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	f.js, err = jetstream.New(nc,
		jetstream.WithPublishAsyncErrHandler(func(jetstream.JetStream, *nats.Msg, error) { f.failed.Add(1) }),
		jetstream.WithPublishAsyncMaxPending(publisher.DefaultMaxInFlight))
	if err != nil {
		b.Fatal(err)
	}
	return f
}

// settle checkpoints the database server, outside the timer, so that the
// next figure does not pay for writing out what the last one dirtied: a
// COPY floor left 250 MB of WAL and dirty pages, and the sweep after it
// took half as long again in the checkpoint it brought on.
func (f *floors) settle(b *testing.B) {
	b.StopTimer()
	defer b.StartTimer()
	if _, err := f.conn.Exec(context.Background(), `CHECKPOINT`); err != nil {
		b.Fatal(err)
	}
}

// copy: COPY of the events' rows into a fresh table: "bare" has
// job_events' columns and nothing else; "like" is LIKE job_events
// INCLUDING ALL (its indexes and constraints), for comparison.
func (f *floors) copy(b *testing.B, kind string) time.Duration {
	ctx := context.Background()
	ddl := `CREATE TABLE floor_events (id uuid, pos bigint GENERATED ALWAYS AS IDENTITY, target text, job_id text,
		sequence bigint, type text, subject text, from_status text, to_status text, payload bytea,
		observed_at timestamptz, sweep_id uuid, published_at timestamptz)`
	name := "floor-copy"
	if kind == "like" {
		ddl, name = `CREATE TABLE floor_events (LIKE job_events INCLUDING ALL)`, "copy-like-job_events"
	}
	cols := []string{"id", "target", "job_id", "sequence", "type", "subject", "from_status", "to_status", "payload", "observed_at", "sweep_id"}
	events := f.events
	sweepID := events[0].ID
	b.StopTimer()
	if _, err := f.conn.Exec(ctx, `DROP TABLE IF EXISTS floor_events`); err != nil {
		b.Fatal(err)
	}
	if _, err := f.conn.Exec(ctx, ddl); err != nil {
		b.Fatal(err)
	}
	b.StartTimer()
	from := f.e.cpuMark(b)
	start := time.Now()
	n, err := f.conn.CopyFrom(ctx, pgx.Identifier{"floor_events"}, cols, pgx.CopyFromSlice(len(events), func(i int) ([]any, error) {
		ev := &events[i]
		return []any{ev.ID, "bench", ev.JobID, ev.Sequence, ev.Type, ev.Subject, nil, string(ev.To), ev.Payload, ev.ObservedAt, sweepID}, nil
	}))
	elapsed := time.Since(start)
	if err != nil || n != benchJobs {
		b.Fatalf("copy: %d rows, %v", n, err)
	}
	f.e.recordCPU(b, name, from, 0)
	f.e.record(name, elapsed)
	return elapsed
}

// publish: PublishAsync of the events to a fresh stream, as the sweep
// provisions it, through the relay's default window (nats.go's own, 4,000,
// stalls and fails under load), waiting for every ack.
func (f *floors) publish(b *testing.B) time.Duration {
	b.StopTimer()
	freshStream(b, f.js)
	b.StartTimer()
	from := f.e.cpuMark(b)
	start := time.Now()
	for i := range f.events {
		ev := &f.events[i]
		msg := &nats.Msg{Subject: ev.Subject, Data: ev.Payload, Header: nats.Header{
			jetstream.MsgIDHeader: []string{ev.ID},
			"Content-Type":        []string{event.ContentType},
		}}
		// Waits while the window is full, as the relay does.
		if _, err := f.js.PublishMsgAsync(msg, jetstream.WithStallWait(time.Minute)); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-f.js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("acks did not arrive within a minute")
	}
	elapsed := time.Since(start)
	f.e.recordCPU(b, "floor-publish", from, 0)
	f.e.record("floor-publish", elapsed)
	if n := f.failed.Load(); n > 0 {
		b.Fatalf("%d publishes failed", n)
	}
	return elapsed
}

func freshStream(b *testing.B, js jetstream.JetStream) {
	ctx := context.Background()
	if err := js.DeleteStream(ctx, publisher.DefaultStream); err != nil && err != jetstream.ErrStreamNotFound {
		b.Fatal(err)
	}
	if _, err := publisher.EnsureStream(ctx, js, publisher.StreamConfig{Managed: true}); err != nil {
		b.Fatal(err)
	}
}

// sweepFunc runs `ossjobwatch sweep` with env and returns its stdout, its
// peak RSS in bytes (0 if unknown) and the CPU time of its process (0 if
// it ran in this one).
type sweepFunc func(b *testing.B, env map[string]string) (string, int64, time.Duration)

// sweeper times first sweeps (each of a fresh database and stream) or
// sweeps after 1% of the jobs changed (of one database, swept once first).
type sweeper struct {
	e          *benchEnv
	onePercent bool
	run        sweepFunc
	js         jetstream.JetStream
	env        map[string]string
	name, want string
}

func (e *benchEnv) newSweeper(b *testing.B, onePercent bool, run sweepFunc) *sweeper {
	nc, err := nats.Connect(e.nats.URL())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	key := osssim.DefaultCredential
	s := &sweeper{e: e, onePercent: onePercent, run: run, js: js, env: map[string]string{
		"OSSJOBWATCH_NATS_URL": e.nats.URL(),
		"OSSJOBWATCH_REGION":   "cn-hangzhou",
		"OSSJOBWATCH_ENDPOINT": e.sim.Endpoint,
		"OSSJOBWATCH_TARGET":   "bench",
		"OSSJOBWATCH_OSS_RATE": "100000", // the floor has no limit either
		// One event per job, as the floors have: no reminders for the
		// simulated world's long-suspended jobs, no stalls.
		"OSSJOBWATCH_SUSPENDED_REMINDERS":     "none",
		"OSSJOBWATCH_STALL_AFTER":             "0",
		"OSSJOBWATCH_LOG_LEVEL":               "warn",
		"ALIBABA_CLOUD_ACCESS_KEY_ID":         key.AccessKeyID,
		"ALIBABA_CLOUD_ACCESS_KEY_SECRET":     key.AccessKeySecret,
		"ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",
	}}
	s.name, s.want = "first-sweep", fmt.Sprintf("%d jobs, %d events", benchJobs, benchJobs)
	if onePercent {
		s.name, s.want = "one-percent-sweep", fmt.Sprintf("%d jobs, %d events", benchJobs, benchJobs/100)
		s.env["OSSJOBWATCH_DATABASE_URL"] = migratedDatabaseURL(b) + os.Getenv("BENCH_DB_SUFFIX")
		freshStream(b, js)
		if out, _, _ := run(b, s.env); !strings.Contains(out, fmt.Sprintf("%d events", benchJobs)) {
			b.Fatalf("first sweep: %s", out)
		}
	}
	return s
}

// sweep times one sweep.
func (s *sweeper) sweep(b *testing.B) time.Duration {
	b.StopTimer()
	if s.onePercent {
		s.e.sim.Change(b)
	} else {
		s.env["OSSJOBWATCH_DATABASE_URL"] = migratedDatabaseURL(b) + os.Getenv("BENCH_DB_SUFFIX")
		freshStream(b, s.js)
	}
	b.StartTimer()
	stopProfile := startCPUProfile(b, s.name)
	from := s.e.cpuMark(b)
	start := time.Now()
	out, rss, own := s.run(b, s.env)
	elapsed := time.Since(start)
	s.e.recordCPU(b, s.name, from, own)
	stopProfile()
	if !strings.Contains(out, s.want) || !strings.Contains(out, "; 0 pending in the outbox") {
		b.Fatalf("sweep: want %q published, got:\n%s", s.want, out)
	}
	b.Logf("%s in %s:\n%s", s.name, elapsed.Round(time.Millisecond), strings.TrimSpace(out))
	s.e.record(s.name, elapsed)
	s.e.recordRSS(s.name, rss)
	return elapsed
}

// startCPUProfile profiles the sweep alone into $BENCH_PROFILE_DIR/cpu-name.out
// if that is set (go test's -cpuprofile also takes in the setup), and its
// allocations into allocs-name.out, against allocs-name-base.out.
func startCPUProfile(b *testing.B, name string) (stop func()) {
	dir := os.Getenv("BENCH_PROFILE_DIR")
	if dir == "" {
		return func() {}
	}
	writeAllocs := func(suffix string) {
		f, err := os.Create(filepath.Join(dir, "allocs-"+name+suffix+".out"))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		runtime.GC()
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			b.Fatal(err)
		}
	}
	writeAllocs("-base") // go tool pprof -diff_base allocs-x-base.out allocs-x.out
	f, err := os.Create(filepath.Join(dir, "cpu-"+name+".out"))
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
		writeAllocs("")
	}
}

// childEnv is the environment of the processes the benchmark times, the
// sweeps and the list floor alike, so that neither runs under settings the
// other lacks: PATH, HOME, the runtime's GOMAXPROCS, GOMEMLIMIT and GODEBUG
// if set, and BENCH_CHILD_X=v as X=v (BENCH_CHILD_GOGC=50 sets GOGC=50 for
// the children alone; a GOGC of the benchmark's own is not passed on, since
// the sweep verb chooses its own unless GOGC is set).
func childEnv() []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for _, k := range []string{"GOMAXPROCS", "GOMEMLIMIT", "GODEBUG"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	for _, kv := range os.Environ() {
		if k, ok := strings.CutPrefix(kv, "BENCH_CHILD_"); ok {
			env = append(env, k)
		}
	}
	return env
}

// processSweep runs the built binary and returns its peak RSS: its
// VmHWM, read from /proc every few milliseconds while it runs (VmHWM only
// grows, so the last reading is the peak but for the last milliseconds).
// getrusage's maxrss of a child will not do: Linux hands a child started
// with vfork, as Go starts them, the parent's high-water mark at exec, and
// this process holds a NATS server and 100,000 events.
func (e *benchEnv) processSweep(b *testing.B, env map[string]string) (string, int64, time.Duration) {
	cmd := exec.Command(e.bin, "sweep")
	cmd.Env = childEnv()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	var peak atomic.Int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		status := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
		for {
			if kb := vmHWM(status); kb > 0 {
				peak.Store(kb * 1024)
			}
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	})
	err := cmd.Wait()
	close(done)
	wg.Wait()
	if err != nil {
		b.Fatalf("ossjobwatch sweep: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	if os.Getenv("BENCH_SHOW_STDERR") != "" {
		b.Logf("stderr:\n%s", stderr.String())
	}
	return stdout.String(), peak.Load(), cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
}

// vmHWM reads the VmHWM line of a /proc status file, in kB; 0 if the
// process is gone.
func vmHWM(path string) int64 {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%d kB", &kb); err == nil {
				return kb
			}
		}
	}
	return 0
}

// inProcessSweep runs the verb in this process.
func (e *benchEnv) inProcessSweep(b *testing.B, env map[string]string) (string, int64, time.Duration) {
	for k, v := range env {
		if strings.HasPrefix(k, "ALIBABA_") {
			b.Setenv(k, v)
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"sweep"}, func(k string) string { return env[k] }, &stdout, &stderr); code != exitOK {
		b.Fatalf("ossjobwatch sweep: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	return stdout.String(), 0, 0
}

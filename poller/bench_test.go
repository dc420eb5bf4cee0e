package poller_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ossjobwatch/ossjobwatch/oss"
	"github.com/ossjobwatch/ossjobwatch/oss/osssim"
	"github.com/ossjobwatch/ossjobwatch/poller"
	"github.com/ossjobwatch/ossjobwatch/store/storetest"
)

const benchJobs = 100_000

// heapPeak samples the live heap every few milliseconds while a benchmark
// runs; runtime/metrics reads it without stopping the world.
type heapPeak struct {
	stop chan struct{}
	done sync.WaitGroup
	peak uint64
}

// startHeapPeak starts sampling after a GC.
func startHeapPeak() *heapPeak {
	runtime.GC()
	h := &heapPeak{stop: make(chan struct{})}
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	h.done.Go(func() {
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(sample)
			h.peak = max(h.peak, sample[0].Value.Uint64())
			select {
			case <-h.stop:
				return
			case <-t.C:
			}
		}
	})
	return h
}

// report stops sampling and reports the peak heap of the whole process
// and the peak above the baseline, which is what the sweep itself added.
func (h *heapPeak) report(b *testing.B) {
	close(h.stop)
	h.done.Wait()
	b.ReportMetric(float64(h.peak)/(1<<20), "peak-heap-MB")
}

// simHelperEnv makes the test binary serve a 100,000-job simulator instead
// of running tests: the benchmarks list it from another process, so that
// the heap they measure is the sweep's alone.
const simHelperEnv = "OSSJOBWATCH_BENCH_SIMULATOR"

// runSimHelper serves the simulator, prints its address, then changes 1%
// of the jobs for every "change N" line on stdin, answering "ok".
func runSimHelper() {
	sim, err := osssim.New(osssim.Config{Jobs: benchJobs, Seed: 1})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	go func() { _ = sim.Serve(context.Background(), ln) }()
	fmt.Println(ln.Addr().String())
	ids := make([]string, 0, benchJobs)
	for _, d := range sim.Jobs() {
		ids = append(ids, d.ID)
	}
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		var round int
		if _, err := fmt.Sscanf(in.Text(), "change %d", &round); err != nil {
			continue
		}
		for i := round % 100; i < len(ids); i += 100 {
			d, _ := sim.Job(ids[i])
			d.Tasks.Total++
			d.Description = fmt.Sprintf("changed in round %d", round)
			sim.Put(d)
		}
		fmt.Println("ok")
	}
}

// remoteSim is the simulator helper process, seen from the benchmark.
type remoteSim struct {
	in  io.Writer
	out *bufio.Reader
}

func startRemoteSim(b *testing.B) (*remoteSim, oss.Config) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), simHelperEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { stdin.Close(); _ = cmd.Wait() })
	r := &remoteSim{in: stdin, out: bufio.NewReader(stdout)}
	addr, err := r.out.ReadString('\n')
	if err != nil || strings.HasPrefix(addr, "error") {
		b.Fatalf("simulator helper: %q, %v", addr, err)
	}
	key := osssim.DefaultCredential
	return r, oss.Config{
		Region:      "cn-hangzhou",
		Endpoint:    "http://" + strings.TrimSpace(addr),
		Credentials: oss.StaticCredentials(key.AccessKeyID, key.AccessKeySecret, ""),
	}
}

// change makes the helper change 1% of its jobs, and waits until it has.
func (r *remoteSim) change(b *testing.B, round int) {
	if _, err := fmt.Fprintf(r.in, "change %d\n", round); err != nil {
		b.Fatal(err)
	}
	if line, err := r.out.ReadString('\n'); err != nil || line != "ok\n" {
		b.Fatalf("simulator helper: %q, %v", line, err)
	}
}

// BenchmarkSweep100k measures SweepOnce on 100,000 jobs: the first sweep
// (every job discovered), a sweep in which 1% of the jobs changed, and, as
// the yardstick, listing and decoding the same pages with no database. The
// simulator runs in a process of its own, so the peak heap is the sweep's.
func BenchmarkSweep100k(b *testing.B) {
	sim, cfg := startRemoteSim(b)
	client, err := oss.NewClient(cfg)
	if err != nil {
		b.Fatal(err)
	}
	target := poller.Target{Name: "bench", Region: cfg.Region, Client: client}

	b.Run("list-only", func(b *testing.B) {
		h := startHeapPeak()
		for b.Loop() {
			p := client.Pager(oss.ListJobsOptions{MaxKeys: 1000})
			for _, err := range p.All(context.Background()) {
				if err != nil {
					b.Fatal(err)
				}
			}
		}
		h.report(b)
	})

	b.Run("first", func(b *testing.B) {
		h := startHeapPeak()
		var rows int
		for b.Loop() {
			b.StopTimer()
			runtime.GC() // the last iteration's poller and its cache are garbage now
			st := storetest.NewStore(b)
			p, err := poller.New(poller.Config{Store: st})
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			res, err := p.SweepOnce(context.Background(), target)
			if err != nil {
				b.Fatal(err)
			}
			if res.Events != benchJobs {
				b.Fatalf("%d events, want %d", res.Events, benchJobs)
			}
			rows = res.Events + res.Snapshots + 2
		}
		b.ReportMetric(float64(rows), "rows")
		h.report(b)
	})

	b.Run("one-percent-changed", func(b *testing.B) {
		st := storetest.NewStore(b)
		p, err := poller.New(poller.Config{Store: st})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := p.SweepOnce(context.Background(), target); err != nil {
			b.Fatal(err)
		}
		h := startHeapPeak()
		var rows, round int
		for b.Loop() {
			b.StopTimer()
			runtime.GC()
			round++
			sim.change(b, round)
			b.StartTimer()
			res, err := p.SweepOnce(context.Background(), target)
			if err != nil {
				b.Fatal(err)
			}
			if res.Snapshots != benchJobs/100 {
				b.Fatalf("%d snapshots written, want %d", res.Snapshots, benchJobs/100)
			}
			rows = res.Events + res.Snapshots + 2
		}
		b.ReportMetric(float64(rows), "rows")
		h.report(b)
	})
}

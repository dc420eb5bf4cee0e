package poller_test

import (
	"context"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/ossjobwatch/ossjobwatch/oss"
	"github.com/ossjobwatch/ossjobwatch/oss/osstest"
	"github.com/ossjobwatch/ossjobwatch/poller"
	"github.com/ossjobwatch/ossjobwatch/store/storetest"
)

const benchJobs = osstest.RemoteJobs

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

// BenchmarkSweep100k measures SweepOnce on 100,000 jobs: the first sweep
// (every job discovered), a sweep in which 1% of the jobs changed, and, as
// the yardstick, listing and decoding the same pages with no database. The
// simulator runs in a process of its own, so the peak heap is the sweep's.
func BenchmarkSweep100k(b *testing.B) {
	sim := osstest.StartRemote(b)
	cfg := sim.Config()
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
		var rows int
		for b.Loop() {
			b.StopTimer()
			runtime.GC()
			sim.Change(b)
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

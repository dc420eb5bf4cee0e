package poller_test

import (
	"context"
	"fmt"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/ossjobwatch/ossjobwatch/oss"
	"github.com/ossjobwatch/ossjobwatch/oss/osssim"
	"github.com/ossjobwatch/ossjobwatch/oss/osstest"
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
func (h *heapPeak) report(b *testing.B, simWorld uint64) {
	close(h.stop)
	h.done.Wait()
	b.ReportMetric(float64(h.peak)/(1<<20), "peak-heap-MB")
	b.ReportMetric(float64(h.peak-min(h.peak, simWorld))/(1<<20), "peak-without-sim-MB")
}

// liveHeap is the heap in use after a collection.
func liveHeap() uint64 {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(sample)
	return sample[0].Value.Uint64()
}

// BenchmarkSweep100k measures SweepOnce on 100,000 jobs: the first sweep
// (every job discovered), a sweep in which 1% of the jobs changed, and, as
// the yardstick, listing and decoding the same pages with no database.
func BenchmarkSweep100k(b *testing.B) {
	// The simulator shares the process: weigh its world, so that the
	// sweep's own peak can be told apart from the stand-in's.
	simWorld := liveHeap()
	sim, cfg := osstest.Start(b, osssim.Config{Jobs: benchJobs, Seed: 1})
	simWorld = liveHeap() - simWorld
	client, err := oss.NewClient(cfg)
	if err != nil {
		b.Fatal(err)
	}
	target := poller.Target{Name: "bench", Region: sim.Region(), Client: client}

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
		h.report(b, simWorld)
	})

	b.Run("first", func(b *testing.B) {
		h := startHeapPeak()
		var rows int
		for b.Loop() {
			b.StopTimer()
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
		h.report(b, simWorld)
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
		// Keep only the ids: a copy of the whole world would weigh on the
		// heap being measured.
		var ids []string
		for _, d := range sim.Jobs() {
			ids = append(ids, d.ID)
		}
		h := startHeapPeak()
		var rows, round int
		for b.Loop() {
			b.StopTimer()
			round++
			for i := round % 100; i < len(ids); i += 100 { // 1% of the jobs
				d, _ := sim.Job(ids[i])
				d.Tasks.Total++
				d.Description = fmt.Sprintf("changed in round %d", round)
				sim.Put(d)
			}
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
		h.report(b, simWorld)
	})
}

package poller_test

import (
	"context"
	"fmt"
	"math"
	"testing"

	"github.com/ossjobwatch/ossjobwatch/job"
	"github.com/ossjobwatch/ossjobwatch/oss/osssim"
	"github.com/ossjobwatch/ossjobwatch/oss/osstest"
	"github.com/ossjobwatch/ossjobwatch/poller"
	"github.com/ossjobwatch/ossjobwatch/store/storetest"
)

// BenchmarkHotSweep100k compares a hot sweep with a full one on a
// 100,000-job target whose jobs are 1% unfinished, the shape of an
// account that has run jobs for months. Between two sweeps, 4 jobs finish,
// 4 new ones start and 10 make progress. Each sub-benchmark reports its OSS
// requests per sweep; the targets are a hot sweep at most 5% of a
// full sweep's requests and 10% of its time.
func BenchmarkHotSweep100k(b *testing.B) {
	const total, unfinished = 100_000, 1_000
	sim, cfg := osstest.Start(b, osssim.Config{EmptyWorld: true})
	cfg.Rate = math.Inf(1)
	target := poller.Target{Name: "bench", Region: cfg.Region, Client: osstest.NewClient(b, cfg)}
	for i := range total - unfinished {
		d := activeJob(fmt.Sprintf("done-%06d", i), 100)
		d.Status = job.StatusComplete
		sim.Put(d)
	}
	next := 0 // the next running job to finish
	for i := range unfinished {
		sim.Put(activeJob(fmt.Sprintf("run-%06d", i), 10))
	}
	st := storetest.NewStore(b)
	p, err := poller.New(poller.Config{Store: st})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := p.SweepOnce(context.Background(), target); err != nil {
		b.Fatal(err)
	}
	started := unfinished
	churn := func(round int) {
		for range 4 {
			d := activeJob(fmt.Sprintf("run-%06d", next), 100)
			d.Status = job.StatusComplete
			sim.Put(d)
			next++
			sim.Put(activeJob(fmt.Sprintf("run-%06d", started), 0))
			started++
		}
		for i := range 10 {
			sim.Put(activeJob(fmt.Sprintf("run-%06d", next+i), int64(10+round)))
		}
	}

	round := 0
	for _, mode := range []poller.Mode{poller.Full, poller.Hot} {
		b.Run(mode.String(), func(b *testing.B) {
			var requests int64
			for b.Loop() {
				b.StopTimer()
				round++
				churn(round)
				before := sim.Stats().Requests
				b.StartTimer()
				res, err := p.Sweep(context.Background(), target, mode)
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				requests += sim.Stats().Requests - before
				if res.Hot != (mode == poller.Hot) || res.Events < 18 {
					b.Fatalf("%s sweep = hot %v, %d events; want 18 or more", mode, res.Hot, res.Events)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(requests)/float64(b.N), "requests/op")
		})
	}
}

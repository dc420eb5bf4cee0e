package poller_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/ossjobwatch/ossjobwatch/job"
	"github.com/ossjobwatch/ossjobwatch/oss/osssim"
	"github.com/ossjobwatch/ossjobwatch/oss/osstest"
	"github.com/ossjobwatch/ossjobwatch/poller"
	"github.com/ossjobwatch/ossjobwatch/store/storetest"
)

// BenchmarkEnrichBurst3000 is a sweep in which 3,000 jobs change into
// statuses DescribeJob explains, every one enriched, against its floor:
// the same 3,000 DescribeJob calls, as many at once, with nothing else.
// The OSS request rate is lifted here to measure ossjobwatch's own cost;
// at the default 20 requests a second the calls alone take 150 s.
func BenchmarkEnrichBurst3000(b *testing.B) {
	const n = 3000
	sim, cfg := osstest.Start(b, osssim.Config{EmptyWorld: true})
	cfg.Rate = 1e9
	client := osstest.NewClient(b, cfg)
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("job-%05d", i)
		sim.Put(activeJob(ids[i], 10))
	}

	b.Run("describe-floor", func(b *testing.B) {
		for b.Loop() {
			var wg sync.WaitGroup
			sem := make(chan struct{}, 4)
			for _, id := range ids {
				sem <- struct{}{}
				wg.Go(func() {
					defer func() { <-sem }()
					if _, err := client.DescribeJob(context.Background(), id); err != nil {
						b.Error(err)
					}
				})
			}
			wg.Wait()
		}
	})

	b.Run("sweep", func(b *testing.B) {
		st := storetest.NewStore(b)
		p, err := poller.New(poller.Config{Store: st})
		if err != nil {
			b.Fatal(err)
		}
		target := poller.Target{Name: "bench", Region: cfg.Region, Client: client}
		if _, err := p.SweepOnce(context.Background(), target); err != nil {
			b.Fatal(err)
		}
		round := 0
		for b.Loop() {
			b.StopTimer()
			round++
			status := []job.Status{job.StatusCancelled, job.StatusFailed}[round%2]
			for _, id := range ids {
				d := activeJob(id, 10)
				d.Status, d.StatusUpdateReason = status, "burst"
				sim.Put(d)
			}
			b.StartTimer()
			res, err := p.SweepOnce(context.Background(), target)
			if err != nil {
				b.Fatal(err)
			}
			if res.Events != n || res.DescribeFailures != 0 {
				b.Fatalf("sweep = %d events, %d describe failures; want %d and 0", res.Events, res.DescribeFailures, n)
			}
		}
	})
}

package oss_test

import (
	"testing"

	"github.com/ossjobwatch/ossjobwatch/oss"
	"github.com/ossjobwatch/ossjobwatch/oss/osssim"
	"github.com/ossjobwatch/ossjobwatch/oss/osstest"
)

// BenchmarkList100k lists 100,000 jobs at max-keys 1000 from the simulator
// over loopback HTTP, signing and decoding every page.
func BenchmarkList100k(b *testing.B) {
	_, cfg := osstest.Start(b, osssim.Config{Jobs: 100_000, Seed: 1})
	c := osstest.NewClient(b, cfg)
	b.ReportAllocs()
	for b.Loop() {
		p := c.Pager(oss.ListJobsOptions{MaxKeys: 1000})
		for _, err := range p.All(b.Context()) {
			if err != nil {
				b.Fatal(err)
			}
		}
		if !p.Complete() || p.Jobs() != 100_000 {
			b.Fatalf("listed %d jobs, complete %v", p.Jobs(), p.Complete())
		}
	}
	b.ReportMetric(float64(100_000*b.N)/b.Elapsed().Seconds(), "jobs/s")
}

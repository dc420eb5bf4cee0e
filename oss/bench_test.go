package oss_test

import (
	"io"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/ossjobwatch/ossjobwatch/oss"
	"github.com/ossjobwatch/ossjobwatch/oss/osssim"
	"github.com/ossjobwatch/ossjobwatch/oss/osstest"
)

// countingTransport counts the response bytes the client reads, for MB/s.
type countingTransport struct{ n atomic.Int64 }

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil {
		resp.Body = &countingBody{ReadCloser: resp.Body, n: &c.n}
	}
	return resp, err
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// BenchmarkList100k lists 100,000 jobs at max-keys 1000 from the simulator
// over loopback HTTP, signing every request and decoding every page.
func BenchmarkList100k(b *testing.B) {
	_, cfg := osstest.Start(b, osssim.Config{Jobs: 100_000, Seed: 1})
	counter := &countingTransport{}
	cfg.HTTPClient = &http.Client{Transport: counter}
	c := osstest.NewClient(b, cfg)
	list := func() {
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
	list() // once to size the listing in bytes
	b.SetBytes(counter.n.Load())
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		list()
	}
	b.ReportMetric(float64(100_000*b.N)/b.Elapsed().Seconds(), "jobs/s")
}

package poller

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/ossjobwatch/ossjobwatch/diff"
	"github.com/ossjobwatch/ossjobwatch/event"
	"github.com/ossjobwatch/ossjobwatch/job"
	"github.com/ossjobwatch/ossjobwatch/oss"
)

// enrich calls DescribeJob for every job whose status changed into one that
// only DescribeJob explains (Failing, Failed, Cancelling, Cancelled,
// Suspended), however many, DescribeConcurrency at a time; the target's
// client paces the calls at its OSS request rate, shared with the listing.
// A call that fails after its retries gives that event enrichmentError
// (logged and counted) and never fails the sweep. If ctx ends, the calls
// not made yet are not made, and the sweep fails on ctx in its apply.
//
// known holds DescribeJob answers the sweep has already (a hot sweep's, for
// jobs that left the unfinished set): those jobs are not asked again.
func (p *Poller) enrich(ctx context.Context, t Target, changes []diff.Change, known map[string]*job.Detail, res *Result, log *slog.Logger) map[string]event.Enrichment {
	out := make(map[string]event.Enrichment)
	var ids []string
	for _, c := range changes {
		if c.Kind == diff.StatusChanged && c.Job.Status.NeedsDetail() {
			if d, ok := known[c.Job.ID]; ok {
				out[c.Job.ID] = event.Enrichment{Detail: d}
				continue
			}
			ids = append(ids, c.Job.ID)
		}
	}
	p.describeEach(ctx, t, ids, func(id string, d *job.Detail, err error) {
		if err != nil {
			res.DescribeFailures++
			log.Warn("DescribeJob failed; the status event carries enrichmentError", "job", id, "error", err)
			if p.cfg.OnDescribeError != nil {
				p.cfg.OnDescribeError(t.Name, err)
			}
			out[id] = event.Enrichment{Err: enrichmentError(err)}
			return
		}
		out[id] = event.Enrichment{Detail: d}
	})
	return out
}

// describeEach calls DescribeJob for every id, DescribeConcurrency at a
// time (the target's client paces them at its OSS request rate), and hands
// each answer to fn, one call of fn at a time. If ctx ends, the calls not
// made yet are not made.
func (p *Poller) describeEach(ctx context.Context, t Target, ids []string, fn func(id string, d *job.Detail, err error)) {
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		sem = make(chan struct{}, p.cfg.DescribeConcurrency)
	)
	for _, id := range ids {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			d, err := t.Client.DescribeJob(ctx, id)
			mu.Lock()
			defer mu.Unlock()
			fn(id, d, err)
		})
	}
	wg.Wait()
}

// enrichmentError is the short reason an event gives for a failed
// DescribeJob: the OSS error code, or what went wrong on the way.
func enrichmentError(err error) string {
	var apiErr *oss.APIError
	switch {
	case errors.As(err, &apiErr) && apiErr.Code != "":
		return apiErr.Code
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	default:
		return "request failed"
	}
}

package poller

import (
	"context"
	"log/slog"
	"sync"

	"github.com/ossjobwatch/ossjobwatch/diff"
	"github.com/ossjobwatch/ossjobwatch/job"
)

// enrich calls DescribeJob for the jobs whose status changed into one that
// only DescribeJob explains (Failing, Failed, Cancelling, Cancelled,
// Suspended), at most MaxDescribes of them, DescribeConcurrency at a time.
// It is best effort: a failed call leaves that event unenriched, logged and
// counted, and never fails the sweep.
func (p *Poller) enrich(ctx context.Context, t Target, changes []diff.Change, res *Result, log *slog.Logger) map[string]*job.Detail {
	var ids []string
	for _, c := range changes {
		if c.Kind == diff.StatusChanged && c.Job.Status.NeedsDetail() {
			ids = append(ids, c.Job.ID)
		}
	}
	if len(ids) > p.cfg.MaxDescribes {
		log.Warn("too many status events to enrich; the rest go out without DescribeJob's fields",
			"wanted", len(ids), "limit", p.cfg.MaxDescribes)
		ids = ids[:p.cfg.MaxDescribes]
	}
	details := make(map[string]*job.Detail, len(ids))
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		sem = make(chan struct{}, p.cfg.DescribeConcurrency)
	)
	for _, id := range ids {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			d, err := t.Client.DescribeJob(ctx, id)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.DescribeFailures++
				log.Warn("DescribeJob failed; the status event goes out without enrichment", "job", id, "error", err)
				if p.cfg.OnDescribeError != nil {
					p.cfg.OnDescribeError(t.Name, err)
				}
				return
			}
			details[id] = d
		})
	}
	wg.Wait()
	return details
}

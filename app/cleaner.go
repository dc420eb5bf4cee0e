package app

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"time"

	"github.com/ossjobwatch/ossjobwatch/config"
	"github.com/ossjobwatch/ossjobwatch/store"
)

const (
	// DefaultPruneInterval is how often run prunes, give or take a tenth.
	DefaultPruneInterval = 10 * time.Minute

	// firstPruneWithin bounds the wait for run's first pass: soon after
	// start, but not in step with the other replicas starting with it.
	firstPruneWithin = time.Minute

	// minDeadAfter is the least time a replica's row, or a lease, stays
	// after its last heartbeat or expiry; see PruneConfig.
	minDeadAfter = time.Hour
)

// PruneResult is one pass of the cleaner.
type PruneResult struct {
	Pruned store.Pruned
	// Locked is false when another process was pruning: this one did
	// nothing.
	Locked bool
	Err    error
}

// PruneConfig maps the configuration onto the store's: the retention
// settings, and the rows of replicas and leases gone for
// max(1h, 10 × the lease TTL). A replica that has not beaten for that long
// is not coming back with its old row in mind: a live one re-registers on
// its next heartbeat, and its leases are retaken by whoever beats next.
func PruneConfig(cfg config.Config) store.PruneConfig {
	return store.PruneConfig{
		Progress: cfg.Retention.Progress,
		Events:   cfg.Retention.Events,
		// A delivery is kept as long as its event: replay re-publishes
		// stored events under their ids, and the row is what keeps notify
		// from telling the receivers again.
		Deliveries: cfg.Retention.Events,
		Sweeps:     cfg.Retention.Sweeps,
		DeadAfter:  max(minDeadAfter, 10*cfg.LeaseTTL),
	}
}

// Prune deletes once what the retention settings let go, unless another
// process is pruning (Locked false), counting the rows in
// ossjobwatch_pruned_rows_total.
func (a *App) Prune(ctx context.Context) PruneResult {
	pc := PruneConfig(a.cfg)
	pc.OnBatch = func(kind store.PruneKind, n int64) {
		a.metrics.pruned.WithLabelValues(string(kind)).Add(float64(n))
	}
	pruned, locked, err := a.store.Prune(ctx, pc)
	return PruneResult{Pruned: pruned, Locked: locked, Err: err}
}

// cleanLoop prunes soon after start and then every ro.PruneInterval, each
// wait drawn a tenth either side so that replicas do not contend for the
// lock in step. One replica prunes at a time (the store's lock); the
// others find it taken and wait for their next turn. A pass stops with
// ctx, between batches or within one (the statement is cancelled).
func (a *App) cleanLoop(ctx context.Context, ro RunOptions, log *slog.Logger) {
	wait := rand.N(min(ro.PruneInterval, firstPruneWithin))
	for {
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		r := a.pruneOnce(ctx, log)
		if ro.OnPrune != nil {
			ro.OnPrune(r)
		}
		wait = ro.PruneInterval - ro.PruneInterval/10 + rand.N(ro.PruneInterval/5+1)
	}
}

// pruneOnce is one pass, its panic recovered and its outcome logged.
func (a *App) pruneOnce(ctx context.Context, log *slog.Logger) (r PruneResult) {
	start := time.Now()
	defer func() {
		if p := recover(); p != nil {
			a.metrics.panics.WithLabelValues("cleaner").Inc()
			log.Error("prune panicked", "panic", p, "stack", string(debug.Stack()))
			r.Err = fmt.Errorf("prune: panic: %v", p)
		}
		switch {
		case r.Err != nil && ctx.Err() != nil:
			log.Info("prune stopped", "deleted", r.Pruned.Total())
		case r.Err != nil:
			log.Warn("prune failed; the next pass goes on", "err", r.Err, "deleted", r.Pruned.Total())
		case !r.Locked:
			log.Debug("not pruning: another process is")
		case r.Pruned.Total() > 0:
			args := []any{"took", time.Since(start).Round(time.Millisecond)}
			for _, k := range store.PruneKinds {
				args = append(args, string(k), r.Pruned[k])
			}
			log.Info("pruned", args...)
		}
	}()
	return a.Prune(ctx)
}

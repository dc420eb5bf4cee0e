package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/ossjobwatch/ossjobwatch/app"
	"github.com/ossjobwatch/ossjobwatch/config"
	"github.com/ossjobwatch/ossjobwatch/store"
)

func init() {
	verbs["prune"] = verb{summary: "delete what the retention settings let go, once (run prunes on its own)", run: runPrune}
}

// runPrune prunes once and says what it deleted, by kind. If another
// process (a run replica) is pruning at that moment, it deletes nothing and
// says so, with exit 0: the database is being pruned.
func runPrune(ctx context.Context, c cli) int {
	fs := flag.NewFlagSet("prune", flag.ContinueOnError)
	f := commonFlags(fs)
	if code, ok := parseFlags(fs, c); !ok {
		return code
	}
	cfg, ok := loadConfig(c, *f, config.Needs{Database: true})
	if !ok {
		return exitUsage
	}
	st, ok := openStore(ctx, c, "prune", cfg)
	if !ok {
		return exitFailure
	}
	defer st.Close()
	if _, err := st.Migrate(ctx); err != nil {
		fmt.Fprintf(c.stderr, "ossjobwatch prune: %v\n", err)
		return exitFailure
	}
	pc := app.PruneConfig(cfg)
	start := time.Now()
	pruned, locked, err := st.Prune(ctx, pc)
	took := time.Since(start).Round(time.Millisecond)
	if !locked && err == nil {
		fmt.Fprintln(c.stdout, "another process is pruning the database now (a run replica); nothing deleted")
		return exitOK
	}
	if err == nil {
		fmt.Fprintf(c.stdout, "deleted %d rows in %s\n", pruned.Total(), took)
	} else {
		fmt.Fprintf(c.stdout, "deleted %d rows in %s before an error\n", pruned.Total(), took)
	}
	for _, k := range store.PruneKinds {
		fmt.Fprintf(c.stdout, "  %-9s %8d  %s\n", k, pruned[k], pruneRule(k, pc))
	}
	if err != nil {
		fmt.Fprintf(c.stderr, "ossjobwatch prune: %v\n", err)
		return exitFailure
	}
	return exitOK
}

// pruneRule says what a kind's rows are deleted after, or that they are
// kept.
func pruneRule(k store.PruneKind, pc store.PruneConfig) string {
	kept := func(d time.Duration, setting string) (string, bool) {
		if d == 0 {
			return "kept (" + setting + " is 0)", true
		}
		return "", false
	}
	switch k {
	case store.PruneProgress:
		if s, ok := kept(pc.Progress, "OSSJOBWATCH_RETENTION_PROGRESS"); ok {
			return s
		}
		return "published progress events observed over " + pc.Progress.String() + " ago"
	case store.PruneEvents:
		if s, ok := kept(pc.Events, "OSSJOBWATCH_RETENTION_EVENTS"); ok {
			return s
		}
		return "other published events observed over " + pc.Events.String() + " ago"
	case store.PruneDeliveries:
		if s, ok := kept(pc.Deliveries, "OSSJOBWATCH_RETENTION_EVENTS"); ok {
			return s
		}
		return "notifications delivered over " + pc.Deliveries.String() + " ago (as events)"
	case store.PruneSweeps:
		if s, ok := kept(pc.Sweeps, "OSSJOBWATCH_RETENTION_SWEEPS"); ok {
			return s
		}
		return "sweep records started over " + pc.Sweeps.String() + " ago"
	case store.PruneReplicas:
		return "replicas silent for over " + pc.DeadAfter.String()
	case store.PruneLeases:
		return "target leases expired over " + pc.DeadAfter.String() + " ago"
	}
	return ""
}

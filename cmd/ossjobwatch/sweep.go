package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/ossjobwatch/ossjobwatch/app"
	"github.com/ossjobwatch/ossjobwatch/config"
	"github.com/ossjobwatch/ossjobwatch/poller"
)

func init() {
	verbs["sweep"] = verb{summary: "sweep every target once, publish the events and wait for their acks", run: runSweep}
}

// The sweep verb's GOGC when the environment sets none: sweepGCPercent
// while it sweeps, publishGCPercent while it publishes.
const (
	sweepGCPercent   = 50
	publishGCPercent = 400
)

func runSweep(ctx context.Context, c cli) int {
	fs := flag.NewFlagSet("sweep", flag.ContinueOnError)
	f := commonFlags(fs)
	targetFlags(fs, f)
	publishTimeout := fs.Duration("publish-timeout", time.Minute, "how long to wait for JetStream to acknowledge the events")
	hot := fs.Bool("hot", false, "list only the unfinished jobs (and describe those that left the set), unless the target's last full sweep is older than its reconcile interval")
	if code, ok := parseFlags(fs, c); !ok {
		return code
	}
	cfg, ok := loadConfig(c, *f, config.Needs{Database: true, NATS: true, Targets: true})
	if !ok {
		return exitUsage
	}
	log := newLogger(c.stderr, cfg.Log)
	// A sweep is a one-shot batch: it holds a target's snapshots and, on a
	// full sweep, its listing (some 55 MB live at 100,000 jobs), and with
	// Go's default GOGC of 100 the heap may grow to twice that before a
	// collection. A container's memory limit minds the peak more than a few
	// percent of CPU, so the sweep collects at 50% growth (peak RSS at
	// 100,000 jobs: 120-130 MB; 139 MB with GOGC=100, which saved no
	// measurable CPU), unless GOGC says otherwise.
	// An empty GOGC sets nothing (the runtime ignores it): it counts as unset.
	gogcSet := os.Getenv("GOGC") != ""
	if !gogcSet {
		defer debug.SetGCPercent(debug.SetGCPercent(sweepGCPercent))
	}
	a, err := app.Open(ctx, cfg, app.Options{Logger: log})
	if err != nil {
		fmt.Fprintf(c.stderr, "ossjobwatch sweep: %v\n", err)
		return exitFailure
	}
	defer a.Close()

	code := exitOK
	mode := poller.Full
	if *hot {
		mode = poller.Hot
	}
	early := publishWhileSweeping(ctx, a, log)
	results, _ := a.SweepAllMode(ctx, mode)
	// --publish-timeout bounds the publishing left once the sweeps end:
	// the drain under way, then the one below.
	pctx, cancel := context.WithTimeout(ctx, *publishTimeout)
	defer cancel()
	published := early.stop(pctx)
	for _, r := range results {
		if r.Err != nil {
			fmt.Fprintf(c.stderr, "ossjobwatch sweep: %v\n", r.Err)
			code = exitFailure
			continue
		}
		note := ""
		switch {
		case r.Stale && r.Events > 0:
			note = " (listing refused part way: another process applied a listing that ended after this one began; the parts written before stand)"
		case r.Stale:
			note = " (listing refused: another process applied a listing that ended after this one began; nothing written)"
		case r.HeldRemovals > 0:
			note = fmt.Sprintf(" (%d removals held: the listing lacks most jobs; a listing a minute or more later must agree)", r.HeldRemovals)
		}
		kind := "full"
		if r.Hot {
			kind = fmt.Sprintf("hot, %d described", r.Described)
		}
		fmt.Fprintf(c.stdout, "swept %s (%s): %d pages, %d jobs, %d events in %s%s\n",
			r.Target, kind, r.Pages, r.Jobs, r.Events, r.Duration.Round(time.Millisecond), note)
	}

	// Publishing holds little: a round's positions, the messages in
	// flight. But it allocates a few kilobytes per event, and at GOGC=50
	// over a heap of a megabyte or two the collector ran every 2 MB of
	// them, dozens of times a second (at 100,000 events, 0.6 s more CPU
	// and 0.6 s longer). So the sweeps' snapshots go, one collection
	// marks what is left, and publishing collects at 400% of that: a
	// heap goal of some 16 MB, far below the sweeps' peak.
	a.ForgetSnapshots()
	if !gogcSet {
		runtime.GC()
		debug.SetGCPercent(publishGCPercent)
	}

	// Publish whatever is pending, this sweep's events and any an earlier
	// run left behind.
	relay, err := a.ConnectNATS(pctx)
	if err != nil {
		fmt.Fprintf(c.stderr, "ossjobwatch sweep: %v\nthe events stay in the outbox; the next sweep or run publishes them\n", err)
		return exitFailure
	}
	n, err := relay.Drain(pctx)
	n += published
	if err != nil {
		fmt.Fprintf(c.stderr, "ossjobwatch sweep: published %d events, then: %v\nthe rest stay in the outbox; the next sweep or run publishes them\n", n, err)
		return exitFailure
	}
	// Another relay (a running daemon) may have published some first.
	pending, _, err := a.Store().OutboxStats(pctx)
	if err != nil {
		fmt.Fprintf(c.stderr, "ossjobwatch sweep: %v\n", err)
		return exitFailure
	}
	fmt.Fprintf(c.stdout, "published %d events to stream %s; %d pending in the outbox\n", n, cfg.Stream.Name, pending)
	return code
}

// earlyPublisher publishes events while the sweeps still write them.
type earlyPublisher struct {
	cancel    context.CancelFunc // stops publishing at once
	done      chan struct{}      // closed when the sweeps have ended
	finished  chan struct{}      // closed when the publisher has stopped
	published int
}

// publishWhileSweeping starts publishing the outbox while the sweeps run: a
// large first sweep commits its jobs in parts (see store.Store.ApplySweep),
// and each part's events go to JetStream while the next part is written,
// instead of all of them after the last. It connects to NATS on the first
// notification (the listener sends one when it connects), so the connection
// is made while the sweeps list. It gives up quietly on any error, and
// stands aside when another relay is at work: the publishing after the
// sweeps, which waits for its turn, reports what is left.
func publishWhileSweeping(ctx context.Context, a *app.App, log *slog.Logger) *earlyPublisher {
	e := &earlyPublisher{done: make(chan struct{}), finished: make(chan struct{})}
	ctx, e.cancel = context.WithCancel(ctx)
	wake := a.Store().ListenOutbox(ctx, nil)
	go func() {
		defer close(e.finished)
		defer func() {
			e.cancel()
			for range wake { // until the listener has closed its connection
			}
		}()
		for {
			select {
			case <-e.done:
				return
			case _, ok := <-wake:
				if !ok {
					return
				}
			}
			relay, err := a.ConnectNATS(ctx)
			if err != nil {
				log.Info("cannot publish while sweeping; trying again after the sweeps", "err", err)
				return
			}
			n, busy, err := relay.DrainUnlessBusy(ctx)
			e.published += n
			switch {
			case err != nil:
				log.Info("publishing while sweeping failed; trying again after the sweeps", "err", err, "published", n)
				return
			case busy:
				return // another relay publishes them
			}
		}
	}()
	return e
}

// stop stops publishing once the drain in progress has ended, or when ctx
// is done, and returns how many events it published. A drain stopped by ctx
// marks what was acknowledged; the rest stays in the outbox.
func (e *earlyPublisher) stop(ctx context.Context) int {
	stopLater := context.AfterFunc(ctx, e.cancel)
	defer stopLater()
	close(e.done)
	<-e.finished
	return e.published
}

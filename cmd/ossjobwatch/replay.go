package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/ossjobwatch/ossjobwatch/app"
	"github.com/ossjobwatch/ossjobwatch/config"
	"github.com/ossjobwatch/ossjobwatch/publisher"
)

func init() {
	verbs["replay"] = verb{summary: "re-publish stored events, with their original ids", run: runReplay}
}

func runReplay(ctx context.Context, c cli) int {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	f := commonFlags(fs)
	fs.StringVar(&f.NATSURL, "nats-url", "", "NATS URL (env OSSJOBWATCH_NATS_URL, default "+config.DefaultNATSURL+")")
	fs.StringVar(&f.Stream, "stream", "", "JetStream stream (env OSSJOBWATCH_STREAM, default OSSJOBS)")
	since := fs.String("since", "", "replay events observed since TIME: RFC 3339 (2026-11-24T09:00:00Z) or a duration ago (90m, 24h); required")
	target := fs.String("target", "", "only this target's events")
	jobID := fs.String("job", "", "only this job's events")
	if code, ok := parseFlags(fs, c); !ok {
		return code
	}
	from, err := parseSince(*since, time.Now())
	if err != nil {
		fmt.Fprintf(c.stderr, "ossjobwatch replay: --since: %v\n", err)
		return exitUsage
	}
	cfg, ok := loadConfig(c, *f, config.Needs{Database: true, NATS: true})
	if !ok {
		return exitUsage
	}
	st, ok := openStore(ctx, c, "replay", cfg)
	if !ok {
		return exitFailure
	}
	defer st.Close()
	log := newLogger(c.stderr, cfg.Log)
	nc, err := publisher.Connect(cfg.NATSURL, "ossjobwatch-replay", log, app.NATSOptions(cfg)...)
	if err != nil {
		fmt.Fprintf(c.stderr, "ossjobwatch replay: %v\n", err)
		return exitFailure
	}
	defer nc.Close()
	js, err := publisher.NewJetStream(nc)
	if err != nil {
		fmt.Fprintf(c.stderr, "ossjobwatch replay: %v\n", err)
		return exitFailure
	}
	published, dups, owed, err := publisher.Replay(ctx, st, js, publisher.ReplayOptions{Since: from, Target: *target, JobID: *jobID, Stream: cfg.Stream.Name})
	fmt.Fprintf(c.stdout, "replayed %d events since %s: %d stored anew, %d dropped by JetStream as duplicates (within the stream's duplicate window)\n",
		published, from.UTC().Format(time.RFC3339), published-dups, dups)
	if owed > 0 {
		fmt.Fprintf(c.stdout, "left %d events to the relay: not yet published, or after one that is not; it publishes them after the replay, in order\n", owed)
	}
	if err != nil {
		fmt.Fprintf(c.stderr, "ossjobwatch replay: %v\n", err)
		return exitFailure
	}
	return exitOK
}

func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, fmt.Errorf("required, e.g. --since 24h or --since 2026-11-24T09:00:00Z")
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a positive duration", s)
	}
	return now.Add(-d), nil
}

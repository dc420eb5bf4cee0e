package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/ossjobwatch/ossjobwatch/app"
	"github.com/ossjobwatch/ossjobwatch/config"
	"github.com/ossjobwatch/ossjobwatch/publisher"
	"github.com/ossjobwatch/ossjobwatch/store"
)

func init() {
	verbs["run"] = verb{summary: "the daemon: scheduled sweeps, the relay to NATS, /metrics, /healthz, /readyz", run: runRun}
}

func runRun(ctx context.Context, c cli) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	f := commonFlags(fs)
	targetFlags(fs, f)
	fs.StringVar(&f.Schedule, "schedule", "", "cron spec of the single target (env OSSJOBWATCH_SCHEDULE, default @every 1m)")
	fs.StringVar(&f.HTTPListen, "http-listen", "", "address of /metrics, /healthz and /readyz, or off (env OSSJOBWATCH_HTTP_LISTEN, default :9090)")
	check := fs.Bool("check-config", false, "validate the configuration, print it and exit")
	if code, ok := parseFlags(fs, c); !ok {
		return code
	}
	cfg, ok := loadConfig(c, *f, config.Needs{Database: true, NATS: true, Targets: true})
	if !ok {
		return exitUsage
	}
	if *check {
		printConfig(c, cfg)
		return exitOK
	}
	log := newLogger(c.stderr, cfg.Log)
	a, err := app.Open(ctx, cfg, app.Options{Logger: log})
	if err != nil {
		fmt.Fprintf(c.stderr, "ossjobwatch run: %v\n", err)
		return exitFailure
	}
	defer a.Close()
	if err := a.Run(ctx, app.RunOptions{}); err != nil {
		fmt.Fprintf(c.stderr, "ossjobwatch run: %v\n", err)
		return exitFailure
	}
	return exitOK
}

// printConfig shows what --check-config validated, secrets left out.
func printConfig(c cli, cfg config.Config) {
	w := c.stdout
	fmt.Fprintln(w, "configuration is valid")
	fmt.Fprintf(w, "  database:  %s\n", store.RedactURL(cfg.DatabaseURL))
	fmt.Fprintf(w, "  nats:      %s (stream %s, subjects %s.>, managed %v, duplicate window %s)\n",
		publisher.RedactURL(cfg.NATSURL), cfg.Stream.Name, cfg.SubjectPrefix, cfg.Stream.Manage, cfg.Stream.DuplicateWindow)
	fmt.Fprintf(w, "  http:      %s\n", cfg.HTTP.Listen)
	switch {
	case !cfg.UI.Enabled || cfg.HTTP.Listen == "off":
		fmt.Fprintln(w, "  console:   off")
	case cfg.UI.Auth.IsZero():
		fmt.Fprintln(w, "  console:   /ui/ (no basic auth: anyone who reaches the listener can read it)")
	default:
		fmt.Fprintf(w, "  console:   /ui/ (basic auth, user %s)\n", cfg.UI.Auth.User)
	}
	for _, t := range cfg.Targets {
		state := "enabled"
		if !t.Enabled {
			state = "disabled"
		}
		endpoint := t.Endpoint
		if endpoint == "" {
			endpoint = "(from the region)"
		}
		fmt.Fprintf(w, "  target %s: region %s, endpoint %s, schedule %q, credentials %s, %s\n",
			t.Name, t.Region, endpoint, t.Schedule, t.Credentials.Source, state)
	}
	if n := cfg.Notify; n != nil {
		for _, r := range n.Receivers {
			signed, rates := "unsigned", "the type's default rate"
			if r.Secret != "" {
				signed = "signed"
			}
			if len(r.Rates) > 0 {
				var rs []string
				for _, rt := range r.Rates {
					rs = append(rs, fmt.Sprintf("%d per %s", rt.Count, rt.Per))
				}
				rates = strings.Join(rs, ", ")
			}
			// The URL is not shown: it holds a token.
			fmt.Fprintf(w, "  notify receiver %s: %s, %s, %s\n", r.Name, r.Type, signed, rates)
		}
		for _, r := range n.Routes {
			fmt.Fprintf(w, "  notify route %s: %s → %s\n", r.Name, strings.Join(r.Subjects, " "), strings.Join(r.Receivers, ", "))
		}
	}
}

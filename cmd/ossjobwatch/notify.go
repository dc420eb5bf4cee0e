package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/ossjobwatch/ossjobwatch/app"
	"github.com/ossjobwatch/ossjobwatch/config"
)

func init() {
	verbs["notify"] = verb{summary: "deliver chosen events to chat robots and webhooks (the config's notify section)", run: runNotify}
}

func runNotify(ctx context.Context, c cli) int {
	fs := flag.NewFlagSet("notify", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(c.stderr, "Usage: ossjobwatch notify [flags]")
		fmt.Fprintln(c.stderr, "       ossjobwatch notify --test RECEIVER")
		fs.PrintDefaults()
	}
	f := commonFlags(fs)
	fs.StringVar(&f.NATSURL, "nats-url", "", "NATS URL (env OSSJOBWATCH_NATS_URL, default "+config.DefaultNATSURL+")")
	fs.StringVar(&f.SubjectPrefix, "subject-prefix", "", "subject prefix (env OSSJOBWATCH_SUBJECT_PREFIX, default ossjobs)")
	fs.StringVar(&f.Stream, "stream", "", "JetStream stream (env OSSJOBWATCH_STREAM, default OSSJOBS)")
	fs.StringVar(&f.HTTPListen, "http-listen", "", "address of /metrics, /healthz and /readyz, or off (env OSSJOBWATCH_HTTP_LISTEN, default :9090)")
	test := fs.String("test", "", "send a sample event to this receiver, print the answer and exit")
	if code, ok := parseFlags(fs, c); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return exitUsage
	}
	if *test != "" {
		cfg, ok := loadConfig(c, *f, config.Needs{Notify: true})
		if !ok {
			return exitUsage
		}
		return notifyTest(ctx, c, cfg, *test)
	}
	cfg, ok := loadConfig(c, *f, config.Needs{Database: true, NATS: true, Notify: true})
	if !ok {
		return exitUsage
	}
	log := newLogger(c.stderr, cfg.Log)
	a, err := app.Open(ctx, cfg, app.Options{Logger: log})
	if err != nil {
		fmt.Fprintf(c.stderr, "ossjobwatch notify: %v\n", err)
		return exitFailure
	}
	defer a.Close()
	if err := a.RunNotify(ctx, app.RunOptions{}); err != nil {
		fmt.Fprintf(c.stderr, "ossjobwatch notify: %v\n", err)
		return exitFailure
	}
	return exitOK
}

// notifyTest sends the sample event to one receiver and prints the
// platform's answer.
func notifyTest(ctx context.Context, c cli, cfg config.Config, receiver string) int {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	reply, err := app.TestReceiver(ctx, cfg, receiver, nil)
	if err != nil {
		fmt.Fprintf(c.stderr, "ossjobwatch notify --test %s: refused: %v\n", receiver, err)
		return exitFailure
	}
	body := strings.TrimSpace(reply.Body)
	if len(body) > 200 {
		body = body[:200] + "…"
	}
	fmt.Fprintf(c.stdout, "%s accepted the sample event: HTTP %d %s\n", receiver, reply.Status, body)
	return exitOK
}

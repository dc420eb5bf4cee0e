package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/ossjobwatch/ossjobwatch/config"
	"github.com/ossjobwatch/ossjobwatch/store"
)

// commonFlags are the flags every verb that reads the configuration has.
func commonFlags(fs *flag.FlagSet) *config.Flags {
	f := &config.Flags{}
	fs.StringVar(&f.ConfigFile, "config", "", "YAML config file (env OSSJOBWATCH_CONFIG)")
	fs.StringVar(&f.DatabaseURL, "database-url", "", "PostgreSQL URL (env OSSJOBWATCH_DATABASE_URL)")
	return f
}

// targetFlags adds the flags of the single-target configuration.
func targetFlags(fs *flag.FlagSet, f *config.Flags) {
	fs.StringVar(&f.NATSURL, "nats-url", "", "NATS URL (env OSSJOBWATCH_NATS_URL, default "+config.DefaultNATSURL+")")
	fs.StringVar(&f.Region, "region", "", "OSS region id, e.g. cn-hangzhou (env OSSJOBWATCH_REGION)")
	fs.StringVar(&f.Endpoint, "endpoint", "", "OSS endpoint override (env OSSJOBWATCH_ENDPOINT)")
	fs.StringVar(&f.Target, "target", "", "target name (env OSSJOBWATCH_TARGET, default the region)")
	fs.StringVar(&f.SubjectPrefix, "subject-prefix", "", "subject prefix (env OSSJOBWATCH_SUBJECT_PREFIX, default ossjobs)")
	fs.StringVar(&f.Stream, "stream", "", "JetStream stream (env OSSJOBWATCH_STREAM, default OSSJOBS)")
}

// loadConfig loads the configuration, printing the error for the user.
func loadConfig(c cli, f config.Flags, needs config.Needs) (config.Config, bool) {
	cfg, err := config.Load(c.getenv, f, needs)
	if err != nil {
		fmt.Fprintf(c.stderr, "ossjobwatch: configuration:\n  %s\n", indent(err.Error()))
		return cfg, false
	}
	return cfg, true
}

func indent(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		out = append(out, s[i])
		if s[i] == '\n' {
			out = append(out, ' ', ' ')
		}
	}
	return string(out)
}

func newLogger(w io.Writer, l config.Log) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(l.Level))
	opts := &slog.HandlerOptions{Level: level}
	if l.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// openStore connects to the database, printing the error for the user.
// verb names the command in the message.
func openStore(ctx context.Context, c cli, verb string, cfg config.Config) (*store.Store, bool) {
	st, err := store.Open(ctx, cfg.DatabaseURL, store.Config{})
	if err != nil {
		fmt.Fprintf(c.stderr, "ossjobwatch %s: database: %v\n", verb, err)
		return nil, false
	}
	return st, true
}

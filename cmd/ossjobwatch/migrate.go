package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/ossjobwatch/ossjobwatch/config"
	"github.com/ossjobwatch/ossjobwatch/store"
)

func init() {
	verbs["migrate"] = verb{summary: "apply the embedded SQL migrations", run: runMigrate}
}

func runMigrate(ctx context.Context, c cli) int {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	f := commonFlags(fs)
	if code, ok := parseFlags(fs, c); !ok {
		return code
	}
	cfg, ok := loadConfig(c, *f, config.Needs{Database: true})
	if !ok {
		return exitUsage
	}
	st, ok := openStore(ctx, c, "migrate", cfg)
	if !ok {
		return exitFailure
	}
	defer st.Close()
	n, err := st.Migrate(ctx)
	if err != nil {
		fmt.Fprintf(c.stderr, "ossjobwatch: migrate: %v\n", err)
		return exitFailure
	}
	fmt.Fprintf(c.stdout, "migrations applied: %d (database %s is up to date)\n", n, store.RedactURL(cfg.DatabaseURL))
	return exitOK
}

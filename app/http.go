package app

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ossjobwatch/ossjobwatch/config"
	"github.com/ossjobwatch/ossjobwatch/console"
	"github.com/ossjobwatch/ossjobwatch/store"
)

// handler is what run and demo serve: opsHandler's paths and, unless it
// is turned off, the console under /ui/. Whoever serves it calls
// a.console.Close when the server shuts down, so that the live views'
// streams end.
func (a *App) handler() http.Handler {
	mux := a.opsHandler()
	if a.console != nil {
		mux.Handle(console.Prefix, a.console)
	}
	return mux
}

// opsHandler serves /metrics, /healthz (the process answers) and /readyz
// (the database answers, NATS is connected, the stream exists and, with
// notify, no route has gone without consuming for over RouteGrace): what
// notify serves, without the console.
func (a *App) opsHandler() *http.ServeMux {
	mux := http.NewServeMux()
	// A collector's error leaves its series out of the scrape instead of
	// failing it whole: the outbox collector does so itself when the
	// database is down; this covers any other.
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.opts.Registry, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
		ErrorLog:      slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		problems := a.readiness(r.Context())
		if len(problems) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "not ready:\n- "+strings.Join(problems, "\n- "))
			return
		}
		fmt.Fprintln(w, "ready")
	})
	return mux
}

func (a *App) readiness(ctx context.Context) []string {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var problems []string
	if err := a.store.Pool().Ping(ctx); err != nil {
		problems = append(problems, "database: "+store.RedactError(err, a.cfg.DatabaseURL).Error())
	}
	a.mu.Lock()
	nc, js, ns := a.nc, a.js, a.notify
	a.mu.Unlock()
	switch {
	case nc == nil:
		problems = append(problems, "NATS: not connected yet")
	case nc.Status() != nats.CONNECTED:
		problems = append(problems, "NATS: "+nc.Status().String())
	default:
		if _, err := js.Stream(ctx, a.cfg.Stream.Name); err != nil {
			problems = append(problems, fmt.Sprintf("stream %s: %v", a.cfg.Stream.Name, err))
		}
	}
	if ns != nil {
		grace := cmp.Or(a.opts.Notify.RouteGrace, DefaultRouteGrace)
		for _, r := range ns.RoutesDown(grace) {
			problems = append(problems, fmt.Sprintf("notify route %s: not consuming for over %s", r, grace))
		}
	}
	return problems
}

// newConsole builds the console the configuration asks for, nil if it is
// turned off.
func newConsole(cfg config.Config, st *store.Store, opts Options) (*console.Console, error) {
	if !cfg.UI.Enabled {
		return nil, nil
	}
	c, err := console.New(console.Config{
		Reader:   st.Reader(),
		User:     cfg.UI.Auth.User,
		Password: cfg.UI.Auth.Password,
		Logger:   opts.Logger,
		NowFunc:  opts.NowFunc,
	})
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	return c, nil
}

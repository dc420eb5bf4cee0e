package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ossjobwatch/ossjobwatch/config"
	"github.com/ossjobwatch/ossjobwatch/notify"
)

// NotifyOptions tune notify; the zero value is ready to use.
type NotifyOptions struct {
	// HTTPClient posts to the receivers. Defaults to a client with
	// notify's request timeout.
	HTTPClient *http.Client
	// Tune, if set, adjusts the service's configuration before it starts
	// (tests shorten the backoff).
	Tune func(*notify.Config)
	// RouteGrace is how long a route may go without consuming (starting,
	// or its consumer being created again) before /readyz reports it.
	// Defaults to a minute.
	RouteGrace time.Duration
}

// DefaultRouteGrace is NotifyOptions.RouteGrace's default.
const DefaultRouteGrace = time.Minute

// NotifyReceivers builds the receivers of the notify section: a Sender for
// each, its rates (the type's defaults unless the config sets some), and
// whether it takes digests.
func NotifyReceivers(n *config.Notify, hc *http.Client, now func() time.Time) ([]notify.Receiver, error) {
	var out []notify.Receiver
	var errs []error
	for i, r := range n.Receivers {
		rc := notify.ReceiverConfig{Name: r.Name, Type: r.Type, URL: r.URL.Value(), Secret: r.Secret.Value()}
		for _, rt := range r.Rates {
			rc.Rates = append(rc.Rates, notify.Rate{Count: rt.Count, Per: rt.Per})
		}
		if len(rc.Rates) == 0 {
			rc.Rates = notify.DefaultRates(r.Type)
		}
		s, err := notify.NewSender(rc, hc, now)
		if err != nil {
			errs = append(errs, fmt.Errorf("notify.receivers[%d]: %w", i, err))
			continue
		}
		out = append(out, notify.Receiver{Name: r.Name, Type: r.Type, Sender: s, Rates: rc.Rates,
			Digest: notify.Digestible(r.Type), Secrets: notify.Secrets(rc)})
	}
	return out, errors.Join(errs...)
}

// NotifyRoutes builds the routes of the notify section, their templates
// parsed with notify's functions and tried on a sample event, so that a
// template naming a field events do not have fails now rather than at the
// first event.
func NotifyRoutes(n *config.Notify) ([]notify.Route, error) {
	var out []notify.Route
	var errs []error
	for i, r := range n.Routes {
		route := notify.Route{RouteConfig: notify.RouteConfig{Name: r.Name, Subjects: r.Subjects, Receivers: r.Receivers, Template: r.Template}}
		if r.Template != "" {
			t, err := notify.ParseTemplate(r.Name, r.Template)
			if err != nil {
				errs = append(errs, fmt.Errorf("notify.routes[%d].template: %w", i, err))
				continue
			}
			route.Template = t
		}
		out = append(out, route)
	}
	return out, errors.Join(errs...)
}

// newNotify builds the notify service on js.
func (a *App) newNotify(js jetstream.JetStream, log *slog.Logger) (*notify.Service, error) {
	n := a.cfg.Notify
	if n == nil {
		return nil, errors.New("notify: the config file has no notify section")
	}
	receivers, err := NotifyReceivers(n, a.opts.Notify.HTTPClient, a.opts.NowFunc)
	if err != nil {
		return nil, err
	}
	routes, err := NotifyRoutes(n)
	if err != nil {
		return nil, err
	}
	nc := notify.Config{
		JetStream:  js,
		Stream:     a.cfg.Stream.Name,
		Routes:     routes,
		Receivers:  receivers,
		Store:      a.store,
		Logger:     log,
		Registerer: a.opts.Registry,
		NowFunc:    a.opts.NowFunc,
	}
	if a.opts.Notify.Tune != nil {
		a.opts.Notify.Tune(&nc)
	}
	return notify.New(nc)
}

// notifyWhenConnected runs notify once NATS is connected and the stream is
// in place, until ctx is done, then stops it within stopTimeout. A
// consumer that cannot be created (the broker away, the stream missing)
// is tried again every retry.
func (a *App) notifyWhenConnected(ctx context.Context, retry, stopTimeout time.Duration, log *slog.Logger) error {
	select {
	case <-ctx.Done():
		return nil
	case <-a.connected:
	}
	a.mu.Lock()
	js := a.js
	a.mu.Unlock()
	svc, err := a.newNotify(js, log)
	if err != nil {
		log.Error("notify: not started", "err", err)
		return err
	}
	a.mu.Lock()
	a.notify = svc
	a.mu.Unlock()
	for {
		err := svc.Start(ctx)
		if err == nil {
			break
		}
		log.Warn("notify: cannot bind the consumers yet", "err", err, "retry_in", retry)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(retry):
		}
	}
	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
	defer cancel()
	if err := svc.Stop(stopCtx); err != nil {
		log.Warn("notify: did not stop in time", "err", err)
	}
	return nil
}

// RunNotify is `ossjobwatch notify`: it delivers the routes' events to
// their receivers and serves /metrics, /healthz and /readyz, until ctx is
// done; then it stops within ro.ShutdownTimeout.
func (a *App) RunNotify(ctx context.Context, ro RunOptions) error {
	ro = ro.withDefaults()
	if a.cfg.Notify == nil {
		return errors.New("notify: the config file has no notify section")
	}
	// Built once up front, so that a receiver the config cannot make
	// (a bad secret) fails the command at once.
	if _, err := NotifyReceivers(a.cfg.Notify, a.opts.Notify.HTTPClient, a.opts.NowFunc); err != nil {
		return err
	}
	if _, err := NotifyRoutes(a.cfg.Notify); err != nil {
		return err
	}
	log := a.log.With("replica", ro.ReplicaID)
	ln, err := a.listen(ro)
	if err != nil {
		return err
	}
	var srv *http.Server
	srvErr := make(chan error, 1)
	if ln != nil {
		// No console here: run and demo serve it.
		srv = &http.Server{Handler: a.opsHandler(), ReadHeaderTimeout: 10 * time.Second}
		go func() { srvErr <- srv.Serve(ln) }()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.notifyWhenConnected(ctx, ro.NATSRetry, ro.ShutdownTimeout/2, log) }()
	go a.connectLoop(ctx, ro, log)

	var errs []error
	select {
	case <-ctx.Done():
	case err := <-srvErr:
		errs = append(errs, fmt.Errorf("http server: %w", err))
		srv = nil
	case err := <-done:
		if err != nil {
			errs = append(errs, err)
		}
		done = nil
	}
	cancel()
	if done != nil {
		errs = append(errs, <-done)
	}
	if srv != nil {
		sctx, scancel := context.WithTimeout(context.Background(), cmp.Or(ro.ShutdownTimeout/4, time.Second))
		defer scancel()
		_ = srv.Shutdown(sctx)
	}
	return errors.Join(errs...)
}

// connectLoop connects to NATS (and checks or provisions the stream),
// retrying while the broker is away.
func (a *App) connectLoop(ctx context.Context, ro RunOptions, log *slog.Logger) {
	for {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err := a.ConnectNATS(cctx)
		cancel()
		if err == nil || ctx.Err() != nil {
			return
		}
		log.Warn("NATS not ready; notify waits", "err", err, "retry_in", ro.NATSRetry)
		select {
		case <-ctx.Done():
			return
		case <-time.After(ro.NATSRetry):
		}
	}
}

// TestReceiver sends notify's sample event to the receiver named name and
// returns what the platform answered: `ossjobwatch notify --test`.
func TestReceiver(ctx context.Context, cfg config.Config, name string, hc *http.Client) (notify.Reply, error) {
	if cfg.Notify == nil {
		return notify.Reply{}, errors.New("the config file has no notify section")
	}
	for i, r := range cfg.Notify.Receivers {
		if r.Name != name {
			continue
		}
		one := &config.Notify{Receivers: cfg.Notify.Receivers[i : i+1]}
		receivers, err := NotifyReceivers(one, hc, time.Now)
		if err != nil {
			return notify.Reply{}, err
		}
		return receivers[0].Sender.Send(ctx, notify.Message{Events: []notify.Event{notify.SampleEvent(time.Now())}})
	}
	return notify.Reply{}, fmt.Errorf("no receiver named %q in the notify section", name)
}

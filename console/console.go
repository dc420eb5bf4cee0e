// Package console is ossjobwatch's read-only web console, served under /ui/
// by the HTTP listener of run and demo: an overview of each target (jobs by
// status, the jobs that need a human, the last sweep, the outbox), a
// filterable list of the jobs, one job's timeline, events and
// notifications, and a live view of the events as sweeps write them.
//
// It reads the database through a store.Reader, whose every query runs in a
// READ ONLY transaction: nothing a request asks, and no bug here, can write.
// Pages are html/template pages with one stylesheet and one script, all
// embedded; nothing is fetched from elsewhere, and the Content-Security-Policy
// says so (no inline script or style). Every page but the live view works
// without JavaScript; the live view streams with Server-Sent Events.
//
// Basic auth is optional (Config.Auth). Without it, anyone who can reach the
// listener can read job ids and descriptions: bind the listener to a private
// address, or set OSSJOBWATCH_UI_AUTH.
package console

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/ossjobwatch/ossjobwatch/store"
)

// Prefix is where the console is mounted.
const Prefix = "/ui/"

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Defaults of Config.
const (
	DefaultPollInterval = time.Second
	DefaultMaxStreams   = 16
	DefaultWriteTimeout = 30 * time.Second
	DefaultCountsTTL    = 5 * time.Second
)

// Config configures the console.
type Config struct {
	// Reader reads the database. Required.
	Reader *store.Reader
	// User and Password, if User is set, are asked of every request with
	// HTTP basic auth, compared in constant time.
	User, Password string
	// Logger defaults to discarding. Credentials are never logged.
	Logger *slog.Logger
	// NowFunc is the clock relative times are shown against. Defaults to
	// time.Now.
	NowFunc func() time.Time
	// PollInterval is how often the live view reads new events. Defaults
	// to a second.
	PollInterval time.Duration
	// MaxStreams bounds the live views open at once, each polling the
	// database; more are refused with 503. Defaults to 16.
	MaxStreams int
	// WriteTimeout bounds each write of a live view's stream: a client
	// that reads nothing for that long is dropped and its stream's slot
	// freed. Defaults to 30 seconds.
	WriteTimeout time.Duration
	// CountsTTL is how long the overview's job counts are reused before
	// they are counted again. Defaults to 5 seconds; negative counts on
	// every request.
	CountsTTL time.Duration
}

// Console serves the pages. It is an http.Handler for the paths under
// Prefix.
type Console struct {
	cfg     Config
	log     *slog.Logger
	mux     *http.ServeMux
	pages   map[string]*template.Template
	streams chan struct{}
	// userHash and passwordHash are SHA-256 digests, compared in constant
	// time whatever the lengths.
	userHash, passwordHash [32]byte

	// counts caches the overview's job counts for CountsTTL.
	countsMu sync.Mutex
	counts   []store.StatusCount
	countsAt time.Time

	// stop ends the live streams (Close), so a server's graceful shutdown
	// does not wait for them.
	stopCtx context.Context
	stop    context.CancelFunc
	once    sync.Once
}

// New builds the console.
func New(cfg Config) (*Console, error) {
	if cfg.Reader == nil {
		return nil, errors.New("console: Config.Reader is required")
	}
	if cfg.User != "" && cfg.Password == "" {
		return nil, errors.New("console: Config.Password is required with a User")
	}
	cfg.Logger = cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler))
	if cfg.NowFunc == nil {
		cfg.NowFunc = time.Now
	}
	cfg.PollInterval = cmp.Or(cfg.PollInterval, DefaultPollInterval)
	cfg.MaxStreams = cmp.Or(cfg.MaxStreams, DefaultMaxStreams)
	cfg.WriteTimeout = cmp.Or(cfg.WriteTimeout, DefaultWriteTimeout)
	cfg.CountsTTL = cmp.Or(cfg.CountsTTL, DefaultCountsTTL)
	c := &Console{cfg: cfg, log: cfg.Logger, streams: make(chan struct{}, cfg.MaxStreams)}
	c.stopCtx, c.stop = context.WithCancel(context.Background())
	if cfg.User != "" {
		c.userHash, c.passwordHash = sha256.Sum256([]byte(cfg.User)), sha256.Sum256([]byte(cfg.Password))
	}
	var err error
	if c.pages, err = parsePages(); err != nil {
		return nil, err
	}
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ui/{$}", c.overview)
	mux.HandleFunc("GET /ui/jobs", c.jobs)
	mux.HandleFunc("GET /ui/job", c.job)
	mux.HandleFunc("GET /ui/live", c.live)
	mux.HandleFunc("GET /ui/live/events", c.stream)
	mux.Handle("GET /ui/static/", http.StripPrefix("/ui/static/", cacheStatic(http.FileServerFS(static))))
	mux.HandleFunc("/ui/", func(w http.ResponseWriter, r *http.Request) {
		c.fail(w, r, http.StatusNotFound, "No such page.", nil)
	})
	c.mux = mux
	return c, nil
}

// Close ends the live streams, a write blocked on a client that reads
// nothing included; pages keep working. A server calls it when it shuts
// down (http.Server.RegisterOnShutdown).
func (c *Console) Close() { c.once.Do(c.stop) }

// contentSecurityPolicy allows the console's own files and nothing else:
// no inline script or style, no frames, no other origin.
const contentSecurityPolicy = "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'"

// ServeHTTP serves the console's pages, after the security headers and,
// when configured, basic auth.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	if !c.authorized(r) {
		h.Set("WWW-Authenticate", `Basic realm="ossjobwatch console", charset="UTF-8"`)
		http.Error(w, "401 unauthorized: the console asks for the user and password of OSSJOBWATCH_UI_AUTH", http.StatusUnauthorized)
		return
	}
	if err := checkQuery(r.URL.Query()); err != nil {
		c.fail(w, r, http.StatusBadRequest, err.Error(), nil)
		return
	}
	c.mux.ServeHTTP(w, r)
}

// checkQuery checks every parameter of a request for text the database
// can hold, so that a NUL or bytes that are not UTF-8, which PostgreSQL
// text refuses, are the client's error (400) rather than a failed query
// (500). Every page's parameters pass through it.
func checkQuery(q url.Values) error {
	for name, values := range q {
		if !validText(name) {
			return errors.New("a parameter's name is not UTF-8 text, or holds a NUL")
		}
		for _, v := range values {
			if !validText(v) {
				return fmt.Errorf("parameter %s: not UTF-8 text, or holds a NUL", name)
			}
		}
	}
	return nil
}

// validText reports whether s is text PostgreSQL can hold: UTF-8 without
// NUL.
func validText(s string) bool {
	return utf8.ValidString(s) && !strings.Contains(s, "\x00")
}

// authorized checks basic auth, when configured, in constant time: the
// digests of what was sent and of what is expected are compared whole, so
// neither the lengths nor a common prefix show in the timing.
func (c *Console) authorized(r *http.Request) bool {
	if c.cfg.User == "" {
		return true
	}
	user, password, _ := r.BasicAuth()
	u, p := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(password))
	userOK := subtle.ConstantTimeCompare(u[:], c.userHash[:])
	passwordOK := subtle.ConstantTimeCompare(p[:], c.passwordHash[:])
	return userOK&passwordOK == 1
}

func cacheStatic(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		h.ServeHTTP(w, r)
	})
}

// render writes a page; an error executing the template is logged (the
// status line has gone already when a template fails midway, so the
// page is buffered first).
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	t := c.pages[name]
	var b bytes.Buffer
	if err := t.ExecuteTemplate(&b, "layout", data); err != nil {
		c.log.Error("console: render page", "page", name, "err", err)
		http.Error(w, "500 internal error: the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

// fail renders the error page; err, if any, is logged, not shown, as it
// may name the database.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, status int, message string, err error) {
	if err != nil {
		if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
			return // the client went away
		}
		c.log.Error("console: "+message, "path", r.URL.Path, "err", err)
	}
	c.render(w, r, status, "error", c.page(r, "", fmt.Sprintf("%d %s", status, http.StatusText(status)), errorPage{Status: status, Message: message}))
}

type errorPage struct {
	Status  int
	Message string
}

// jobCounts returns the job counts, counted at most CountsTTL ago. Counting
// reads an index of every live job: a page refreshed by many people, or
// often, should not count each time.
func (c *Console) jobCounts(ctx context.Context) ([]store.StatusCount, error) {
	c.countsMu.Lock()
	defer c.countsMu.Unlock()
	now := time.Now()
	if c.counts != nil && now.Sub(c.countsAt) < c.cfg.CountsTTL {
		return c.counts, nil
	}
	counts, err := c.cfg.Reader.JobCounts(ctx)
	if err != nil {
		return nil, err
	}
	if counts == nil {
		counts = []store.StatusCount{}
	}
	c.counts, c.countsAt = counts, now
	return counts, nil
}

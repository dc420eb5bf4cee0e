package app

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/ossjobwatch/ossjobwatch/store"
)

// metrics are the daemon's Prometheus metrics, named
// ossjobwatch_<subsystem>_<name>_<unit>. They live in a registry of their
// own, injected, never the global one.
type metrics struct {
	sweepDuration  *prometheus.HistogramVec
	lastSuccess    *prometheus.GaugeVec
	jobs           *prometheus.GaugeVec
	events         *prometheus.CounterVec
	ossRequests    *prometheus.CounterVec
	describeErrors *prometheus.CounterVec
	publishLag     prometheus.Histogram
	published      prometheus.Counter
	panics         *prometheus.CounterVec
	leaseHeld      *prometheus.GaugeVec
	removalsHeld   *prometheus.GaugeVec
	leftOut        *prometheus.CounterVec
	anomalies      *prometheus.CounterVec
	relayLockWait  prometheus.Gauge
	found          *prometheus.CounterVec
	pruned         *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, st *store.Store, log *slog.Logger) *metrics {
	m := &metrics{
		sweepDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ossjobwatch_sweep_duration_seconds",
			Help:    "How long sweeps took, by target, outcome (success, failure, stale) and mode (full, hot).",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 12),
		}, []string{"target", "outcome", "mode"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ossjobwatch_last_successful_sweep_timestamp_seconds",
			Help: "When the target's last successful sweep ended (Unix seconds).",
		}, []string{"target"}),
		jobs: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ossjobwatch_jobs",
			Help: "Jobs in the target's last full listing, by status.",
		}, []string{"target", "status"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ossjobwatch_events_total",
			Help: "Events written to the outbox, by target and type.",
		}, []string{"target", "type"}),
		ossRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ossjobwatch_oss_requests_total",
			Help: "OSS HTTP attempts, by target, operation, outcome (ok, error) and code (OSS error code, HTTP status, or empty when ok).",
		}, []string{"target", "operation", "outcome", "code"}),
		describeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ossjobwatch_describe_errors_total",
			Help: "DescribeJob calls that failed after their retries; their status events carry enrichmentError.",
		}, []string{"target"}),
		publishLag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ossjobwatch_publish_lag_seconds",
			Help:    "Per relay round, time from the oldest event's observation to its JetStream acknowledgement.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 14),
		}),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ossjobwatch_published_events_total",
			Help: "Events JetStream acknowledged and the relay marked published.",
		}),
		panics: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ossjobwatch_panics_total",
			Help: "Panics recovered, by component.",
		}, []string{"component"}),
		leaseHeld: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ossjobwatch_target_lease_held",
			Help: "1 when this replica holds the target's lease and sweeps it.",
		}, []string{"target"}),
		removalsHeld: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ossjobwatch_removals_held",
			Help: "Removals the target's last full listing would have made but that wait for a second listing to agree (it lacked more than half of the live jobs, and more than 10).",
		}, []string{"target"}),
		leftOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ossjobwatch_listing_entries_left_out_total",
			Help: "Listed entries a sweep could not use (an empty or repeated JobId); the sweep failed naming them.",
		}, []string{"target"}),
		found: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ossjobwatch_full_sweep_found_total",
			Help: "What full sweeps found that the hot sweeps before them could not see, by kind: finished_unseen (jobs created and finished between sweeps, expected) and terminal_changed (finished jobs whose status changed: a bug to look at).",
		}, []string{"target", "kind"}),
		relayLockWait: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ossjobwatch_relay_lock_wait_seconds",
			Help: "How long this replica's relay has found the relay lock held by another process (a relay or a replay); 0 once it gets it.",
		}),
		anomalies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ossjobwatch_job_anomalies_total",
			Help: "Listed jobs with a value out of range (stored as null, the raw value kept in the descriptor), counted per sweep.",
		}, []string{"target"}),
		pruned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ossjobwatch_pruned_rows_total",
			Help: "Rows retention deleted, by kind: progress and events (published events), sweeps, replicas, leases.",
		}, []string{"kind"}),
	}
	reg.MustRegister(m.sweepDuration, m.lastSuccess, m.jobs, m.events, m.ossRequests, m.describeErrors,
		m.publishLag, m.published, m.panics, m.leaseHeld, m.removalsHeld, m.leftOut, m.anomalies, m.relayLockWait, m.found, m.pruned, &outboxCollector{store: st, log: log}, &attentionCollector{store: st, log: log},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, k := range store.PruneKinds {
		m.pruned.WithLabelValues(string(k)) // every kind shown from the start, at 0
	}
	return m
}

// observeAttempt is the OSS client's OnAttempt hook.
func (m *metrics) observeAttempt(target string) func(op string, status int, code string) {
	return func(op string, status int, code string) {
		outcome := "ok"
		if status < 200 || status > 299 {
			outcome = "error"
			if code == "" {
				code = strconv.Itoa(status) // 0: no answer at all
			}
		}
		m.ossRequests.WithLabelValues(target, op, outcome, code).Inc()
	}
}

var (
	outboxPendingDesc = prometheus.NewDesc("ossjobwatch_outbox_pending_events",
		"Events written but not yet acknowledged by JetStream; absent while the database does not answer.", nil, nil)
	outboxAgeDesc = prometheus.NewDesc("ossjobwatch_outbox_oldest_pending_age_seconds",
		"Age of the oldest pending event; 0 when none is pending; absent while the database does not answer.", nil, nil)
	databaseUpDesc = prometheus.NewDesc("ossjobwatch_database_up",
		"1 if the database answered this scrape's outbox query within its timeout, else 0.", nil, nil)
)

// outboxQueryTimeout bounds the scrape's one query: a hung database must not
// hang /metrics, which Prometheus would time out as a whole.
const outboxQueryTimeout = 2 * time.Second

// outboxCollector reads the outbox at scrape time, under a short timeout:
// a gauge refreshed by a loop would be stale exactly when it matters.
// When the database does not answer, the outbox series are left out of that
// scrape and ossjobwatch_database_up is 0: every other series is still
// served, so that an outage does not blank the dashboards and alerts that
// would explain it.
type outboxCollector struct {
	store *store.Store
	log   *slog.Logger
}

func (c *outboxCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- outboxPendingDesc
	ch <- outboxAgeDesc
	ch <- databaseUpDesc
}

func (c *outboxCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), outboxQueryTimeout)
	defer cancel()
	pending, oldest, err := c.store.OutboxStats(ctx)
	if err != nil {
		c.log.Debug("metrics: the database did not answer; outbox series left out of this scrape", "err", err)
		ch <- prometheus.MustNewConstMetric(databaseUpDesc, prometheus.GaugeValue, 0)
		return
	}
	age := 0.0
	if !oldest.IsZero() {
		age = time.Since(oldest).Seconds()
	}
	ch <- prometheus.MustNewConstMetric(databaseUpDesc, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(outboxPendingDesc, prometheus.GaugeValue, float64(pending))
	ch <- prometheus.MustNewConstMetric(outboxAgeDesc, prometheus.GaugeValue, age)
}

var (
	jobsStalledDesc = prometheus.NewDesc("ossjobwatch_jobs_stalled",
		"Live unfinished jobs whose stall was announced (a stalled event, no change of status or counters since), by target; absent while the database does not answer.",
		[]string{"target"}, nil)
	awaitingConfirmationDesc = prometheus.NewDesc("ossjobwatch_jobs_awaiting_confirmation",
		"Live jobs in Suspended, waiting for a confirmation OSS needs within 14 days, by target; absent while the database does not answer.",
		[]string{"target"}, nil)
	confirmationFailsAtDesc = prometheus.NewDesc("ossjobwatch_confirmation_fails_at_timestamp_seconds",
		"When OSS fails the target's soonest unconfirmed Suspended job (suspendedSince + 14 days, Unix seconds); absent when none waits, or while the database does not answer.",
		[]string{"target"}, nil)
)

// attentionCollector reads, at scrape time and under the same short timeout
// as the outbox's, what needs a human per target: stalled jobs and jobs
// awaiting confirmation. Like the outbox series, these are left out of a
// scrape the database does not answer in time (ossjobwatch_database_up
// tells why), rather than served stale. The query reads the shared
// database, so every replica exports the same values.
type attentionCollector struct {
	store *store.Store
	log   *slog.Logger
}

func (c *attentionCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- jobsStalledDesc
	ch <- awaitingConfirmationDesc
	ch <- confirmationFailsAtDesc
}

func (c *attentionCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), outboxQueryTimeout)
	defer cancel()
	stats, err := c.store.Attention(ctx)
	if err != nil {
		c.log.Debug("metrics: the database did not answer; attention series left out of this scrape", "err", err)
		return
	}
	for _, a := range stats {
		ch <- prometheus.MustNewConstMetric(jobsStalledDesc, prometheus.GaugeValue, float64(a.Stalled), a.Target)
		ch <- prometheus.MustNewConstMetric(awaitingConfirmationDesc, prometheus.GaugeValue, float64(a.AwaitingConfirmation), a.Target)
		if !a.SoonestFailsAt.IsZero() {
			ch <- prometheus.MustNewConstMetric(confirmationFailsAtDesc, prometheus.GaugeValue,
				float64(a.SoonestFailsAt.UnixMilli())/1000, a.Target)
		}
	}
}

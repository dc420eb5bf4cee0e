package notify

import "github.com/prometheus/client_golang/prometheus"

// metrics are the service's Prometheus series.
type metrics struct {
	deliveries *prometheus.CounterVec
	failures   *prometheus.CounterVec
	digests    *prometheus.CounterVec
	malformed  *prometheus.CounterVec
	routeUp    *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ossjobwatch_notify_deliveries_total",
			Help: "Events a receiver accepted, by receiver and route (an event in a digest counts once).",
		}, []string{"receiver", "route"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ossjobwatch_notify_failures_total",
			Help: "Requests a receiver refused or that failed, by receiver and reason (throttled, http_5xx, timeout, …); each is retried.",
		}, []string{"receiver", "reason"}),
		digests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ossjobwatch_notify_digests_total",
			Help: "Accepted requests that carried more than one event: events folded while the receiver's rate was spent.",
		}, []string{"receiver"}),
		malformed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ossjobwatch_notify_malformed_messages_total",
			Help: "Messages on a route's subjects that were not ossjobwatch events; terminated, never delivered.",
		}, []string{"route"}),
		routeUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ossjobwatch_notify_route_up",
			Help: "1 while the route consumes its durable consumer, 0 while it does not (starting, or its consumer being created again).",
		}, []string{"route"}),
	}
	for _, c := range []prometheus.Collector{m.deliveries, m.failures, m.digests, m.malformed, m.routeUp} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// addQueueAge registers the queue age gauge of one receiver.
func (m *metrics) addQueueAge(reg prometheus.Registerer, receiver string, age func() float64) error {
	return reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "ossjobwatch_notify_queue_age_seconds",
		Help:        "Age of the oldest event waiting for the receiver (since JetStream stored it); 0 when none waits.",
		ConstLabels: prometheus.Labels{"receiver": receiver},
	}, age))
}

package httpapi

import (
	"context"
	"strconv"
	"time"

	"github.com/sot-dev/sot"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the API's Prometheus metrics, in a registry of its own.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	auth     *prometheus.CounterVec

	// The series of an allowed check, resolved once: finding a series by
	// its label values hashes them under a lock, which costs more than the
	// rest of the check.
	checkAllowed prometheus.Counter
	checkLatency prometheus.Observer
	authOK       prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sot_http_requests_total",
			Help: "HTTP requests by route pattern and status code.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sot_http_request_duration_seconds",
			Help:    "HTTP request latency by route pattern.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
		auth: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sot_authentications_total",
			Help: "Token authentications by outcome.",
		}, []string{"outcome"}),
	}
	m.reg.MustRegister(m.requests, m.latency, m.auth,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.checkAllowed = m.requests.WithLabelValues(checkRoute, statusLabel(204))
	m.checkLatency = m.latency.WithLabelValues(checkRoute)
	m.authOK = m.auth.WithLabelValues("ok")
	return m
}

func (m *metrics) observe(route string, status int, d time.Duration) {
	if route == checkRoute && status == 204 {
		m.checkAllowed.Inc()
		m.checkLatency.Observe(d.Seconds())
		return
	}
	m.requests.WithLabelValues(route, statusLabel(status)).Inc()
	m.latency.WithLabelValues(route).Observe(d.Seconds())
}

func (m *metrics) authOutcome(reason string) {
	if reason == "ok" {
		m.authOK.Inc()
		return
	}
	m.auth.WithLabelValues(reason).Inc()
}

// statusLabel returns the status as a label value, without allocating for
// the statuses the API sends.
func statusLabel(status int) string {
	switch status {
	case 200:
		return "200"
	case 201:
		return "201"
	case 204:
		return "204"
	case 400:
		return "400"
	case 401:
		return "401"
	case 403:
		return "403"
	case 404:
		return "404"
	case 409:
		return "409"
	case 413:
		return "413"
	case 429:
		return "429"
	case 500:
		return "500"
	}
	return strconv.Itoa(status)
}

// expiringWithin is the horizon of the expiring-tokens gauge.
const expiringWithin = 7 * sot.Day

// expiringCollector reports, on each scrape, the live organization tokens
// per organization that expire within seven days: what an alert on
// "pipelines about to break" needs.
type expiringCollector struct {
	svc  sot.LifecycleService
	now  func() time.Time
	desc *prometheus.Desc
}

func newExpiringCollector(svc sot.LifecycleService, now func() time.Time) *expiringCollector {
	return &expiringCollector{svc: svc, now: now, desc: prometheus.NewDesc("sot_tokens_expiring_7d",
		"Live organization tokens that expire within 7 days, by organization.", []string{"org"}, nil)}
}

func (c *expiringCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *expiringCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts, err := c.svc.CountExpiring(ctx, c.now(), expiringWithin)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	for org, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), org)
	}
}

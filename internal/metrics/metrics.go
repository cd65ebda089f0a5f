// Package metrics holds the server's Prometheus metrics: API requests by
// method, route template and status code, their latency, and the agents'
// status reports. Every metric lives in a registry the server owns (never
// Prometheus's global one), so several servers in one process (tests)
// keep their counts apart.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/neutrino-net/neutrino/internal/service"
)

// Server is one server's metrics.
type Server struct {
	reg        *prometheus.Registry
	requests   *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	reports    *prometheus.CounterVec
	vpnReports *prometheus.CounterVec
}

// LatencyBuckets are the API latency histogram's upper bounds in seconds,
// dense around the 50 ms p99 target.
var LatencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}

// New returns a server's metrics in a fresh registry, with the Go runtime
// and process collectors.
func New() *Server {
	m := &Server{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "neutrino", Subsystem: "api", Name: "requests_total",
			Help: "Networking API requests by method, route template and status code.",
		}, []string{"method", "route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "neutrino", Subsystem: "api", Name: "request_duration_seconds",
			Help:    "Networking API request latency by method, route template and status code.",
			Buckets: LatencyBuckets,
		}, []string{"method", "route", "code"}),
		reports: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "neutrino", Subsystem: "agent", Name: "status_reports_total",
			Help: "Agents' status reports by result (applied, failed).",
		}, []string{"result"}),
		vpnReports: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "neutrino", Subsystem: "agent", Name: "vpn_service_reports_total",
			Help: "VPN service states in agents' status reports by result: applied, or ignored (unknown service, or its router not hosted by the reporting host).",
		}, []string{"result"}),
	}
	m.reg.MustRegister(m.requests, m.latency, m.reports, m.vpnReports,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Results are known in advance: show them at zero from the start.
	for _, r := range []string{"applied", "failed"} {
		m.reports.WithLabelValues(r)
	}
	for _, r := range []string{"applied", "ignored"} {
		m.vpnReports.WithLabelValues(r)
	}
	return m
}

// Registry returns the registry, for other collectors.
func (m *Server) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus text format.
func (m *Server) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// methods bounds the method label; anything else is "OTHER".
var methods = map[string]string{
	http.MethodGet: http.MethodGet, http.MethodHead: http.MethodHead, http.MethodPost: http.MethodPost,
	http.MethodPut: http.MethodPut, http.MethodPatch: http.MethodPatch, http.MethodDelete: http.MethodDelete,
	http.MethodOptions: http.MethodOptions,
}

// ObserveRequest counts one API request (httpapi.Options.Observe). route
// is a route template (e.g. /v2.0/ports/{id}), never a raw path.
func (m *Server) ObserveRequest(method, route string, status int, d time.Duration) {
	meth, ok := methods[method]
	if !ok {
		meth = "OTHER"
	}
	code := strconv.Itoa(status)
	m.requests.WithLabelValues(meth, route, code).Inc()
	m.latency.WithLabelValues(meth, route, code).Observe(d.Seconds())
}

// ObserveReport counts one agent status report
// (service.Options.ObserveReport).
func (m *Server) ObserveReport(o service.ReportOutcome) {
	result := "applied"
	if o.Err != nil {
		result = "failed"
	}
	m.reports.WithLabelValues(result).Inc()
	m.vpnReports.WithLabelValues("applied").Add(float64(o.VPNApplied))
	m.vpnReports.WithLabelValues("ignored").Add(float64(o.VPNIgnored))
}

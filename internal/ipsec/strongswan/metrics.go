package strongswan

import (
	"context"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// driverMetrics counts what happens to SAs, from VICI events.
type driverMetrics struct {
	mu       sync.Mutex
	events   map[[4]string]uint64 // router, connection, sa (ike|child), up|down
	rekeys   map[[3]string]uint64 // router, connection, sa
	restarts map[string]uint64    // router
}

func newDriverMetrics() *driverMetrics {
	return &driverMetrics{events: map[[4]string]uint64{}, rekeys: map[[3]string]uint64{}, restarts: map[string]uint64{}}
}

func (m *driverMetrics) event(router, conn, sa string, up bool) {
	dir := "down"
	if up {
		dir = "up"
	}
	m.mu.Lock()
	m.events[[4]string{router, conn, sa, dir}]++
	m.mu.Unlock()
}

func (m *driverMetrics) rekey(router, conn, sa string) {
	m.mu.Lock()
	m.rekeys[[3]string{router, conn, sa}]++
	m.mu.Unlock()
}

func (m *driverMetrics) restart(router string) {
	m.mu.Lock()
	m.restarts[router]++
	m.mu.Unlock()
}

var (
	descUp = prometheus.NewDesc("neutrino_vpn_connection_up",
		"1 when the IPsec site connection's CHILD_SA is installed, else 0.",
		[]string{"router", "vpnservice", "connection"}, nil)
	descBytes = prometheus.NewDesc("neutrino_vpn_connection_bytes_total",
		"Bytes through the connection's current CHILD_SAs (restarts from 0 when they are rekeyed).",
		[]string{"router", "vpnservice", "connection", "direction"}, nil)
	descPackets = prometheus.NewDesc("neutrino_vpn_connection_packets_total",
		"Packets through the connection's current CHILD_SAs (restarts from 0 when they are rekeyed).",
		[]string{"router", "vpnservice", "connection", "direction"}, nil)
	descEvents = prometheus.NewDesc("neutrino_vpn_sa_events_total",
		"IKE_SA and CHILD_SA up and down events seen from the router's charon.",
		[]string{"router", "connection", "sa", "event"}, nil)
	descRekeys = prometheus.NewDesc("neutrino_vpn_rekeys_total",
		"IKE_SA and CHILD_SA rekeys seen from the router's charon.",
		[]string{"router", "connection", "sa"}, nil)
	descRestarts = prometheus.NewDesc("neutrino_vpn_daemon_restarts_total",
		"Times the router's charon was found dead and restarted.",
		[]string{"router"}, nil)
	descDaemons = prometheus.NewDesc("neutrino_vpn_daemons",
		"IKE daemons (charon) this agent runs.", nil, nil)
)

// Describe implements prometheus.Collector.
func (d *Driver) Describe(ch chan<- *prometheus.Desc) {
	for _, desc := range []*prometheus.Desc{descUp, descBytes, descPackets, descEvents, descRekeys, descRestarts, descDaemons} {
		ch <- desc
	}
}

// Collect implements prometheus.Collector: per-connection state and
// traffic straight from each charon's list-sas, and the event counters.
func (d *Driver) Collect(ch chan<- prometheus.Metric) {
	d.mu.Lock()
	routers := make([]*routerVPN, 0, len(d.routers))
	for _, r := range d.routers {
		routers = append(routers, r)
	}
	d.mu.Unlock()
	daemons := 0
	for _, r := range routers {
		dm := r.currentDaemon()
		var sas map[string]saInfo
		if dm != nil && dm.Alive() {
			daemons++
			if sess := dm.Client(); sess != nil {
				sas, _ = listSAs(context.Background(), sess)
			}
		}
		r.smu.Lock()
		services := r.services
		r.smu.Unlock()
		for _, s := range services {
			for _, c := range s.Connections {
				sa := sas[c.ID]
				up := 0.0
				if sa.installed {
					up = 1
				}
				ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, up, r.id, s.ID, c.ID)
				t := sa.traffic
				ch <- prometheus.MustNewConstMetric(descBytes, prometheus.CounterValue, float64(t.bytesIn), r.id, s.ID, c.ID, "in")
				ch <- prometheus.MustNewConstMetric(descBytes, prometheus.CounterValue, float64(t.bytesOut), r.id, s.ID, c.ID, "out")
				ch <- prometheus.MustNewConstMetric(descPackets, prometheus.CounterValue, float64(t.packetsIn), r.id, s.ID, c.ID, "in")
				ch <- prometheus.MustNewConstMetric(descPackets, prometheus.CounterValue, float64(t.packetsOut), r.id, s.ID, c.ID, "out")
			}
		}
	}
	ch <- prometheus.MustNewConstMetric(descDaemons, prometheus.GaugeValue, float64(daemons))
	m := d.metrics
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, v := range m.events {
		ch <- prometheus.MustNewConstMetric(descEvents, prometheus.CounterValue, float64(v), k[0], k[1], k[2], k[3])
	}
	for k, v := range m.rekeys {
		ch <- prometheus.MustNewConstMetric(descRekeys, prometheus.CounterValue, float64(v), k[0], k[1], k[2])
	}
	for k, v := range m.restarts {
		ch <- prometheus.MustNewConstMetric(descRestarts, prometheus.CounterValue, float64(v), k)
	}
}

package strongswan

import (
	"sync"
	"time"

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

// scrapeTimeout is how long one Collect waits for the charons, and
// scrapeParallel how many it asks at once.
var (
	scrapeTimeout  = 3 * time.Second
	scrapeParallel = 8
)

// Collect implements prometheus.Collector: per-connection state and
// traffic straight from each charon's list-sas, and the event counters.
// The charons are asked in parallel and Collect waits scrapeTimeout at
// most; a router whose charon has not answered by then has no connection
// metrics in this scrape (absent rather than a false drop to zero of its
// counters). Its call goes on under the usual callTimeout rather than
// being cut mid-stream, which would leave the rest of a reply for the
// session's next command, and the next scrape skips a router whose call
// is still running.
func (d *Driver) Collect(ch chan<- prometheus.Metric) {
	d.mu.Lock()
	routers := make([]*routerVPN, 0, len(d.routers))
	for _, r := range d.routers {
		routers = append(routers, r)
	}
	d.mu.Unlock()
	var mu sync.Mutex // guards sas and answered against late calls
	sas := make([]map[string]saInfo, len(routers))
	answered := make([]bool, len(routers))
	daemons := 0
	var wg sync.WaitGroup
	sem := make(chan struct{}, scrapeParallel)
	for i, r := range routers {
		dm := r.currentDaemon()
		if dm == nil || !dm.Alive() {
			answered[i] = true // no charon: every connection is down
			continue
		}
		daemons++
		sess := dm.Client()
		if sess == nil || !r.scraping.CompareAndSwap(false, true) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer r.scraping.Store(false)
			sem <- struct{}{}
			defer func() { <-sem }()
			got, err := listSAs(d.base, sess)
			mu.Lock()
			sas[i], answered[i] = got, err == nil
			mu.Unlock()
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(scrapeTimeout):
	}
	mu.Lock()
	defer mu.Unlock()
	for i, r := range routers {
		if !answered[i] {
			continue
		}
		r.smu.Lock()
		services := r.services
		r.smu.Unlock()
		for _, s := range services {
			for _, c := range s.Connections {
				sa := sas[i][c.ID]
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

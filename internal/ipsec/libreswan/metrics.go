package libreswan

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// driverMetrics counts what happens to SAs, from pluto's log.
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

// The per-connection families are the strongSwan driver's, name, help
// and labels alike, so that one query covers both drivers (the
// conformance suite gathers both into one registry, which fails on any
// difference). The daemon families are Libreswan's own: a router may run
// a charon and a pluto.
var (
	descUp = prometheus.NewDesc("neutrino_vpn_connection_up",
		"1 when the IPsec site connection's CHILD_SA is installed, else 0.",
		[]string{"router", "vpnservice", "connection"}, nil)
	descBytes = prometheus.NewDesc("neutrino_vpn_connection_bytes_total",
		"Bytes through the connection's current CHILD_SAs (restarts from 0 when they are rekeyed).",
		[]string{"router", "vpnservice", "connection", "direction"}, nil)
	descEvents = prometheus.NewDesc("neutrino_vpn_sa_events_total",
		"IKE_SA and CHILD_SA up and down events seen from the router's charon.",
		[]string{"router", "connection", "sa", "event"}, nil)
	descRekeys = prometheus.NewDesc("neutrino_vpn_rekeys_total",
		"IKE_SA and CHILD_SA rekeys seen from the router's charon.",
		[]string{"router", "connection", "sa"}, nil)
	descRestarts = prometheus.NewDesc("neutrino_vpn_pluto_restarts_total",
		"Times the router's pluto was found dead and restarted.",
		[]string{"router"}, nil)
	descDaemons = prometheus.NewDesc("neutrino_vpn_plutos",
		"IKE daemons (Libreswan's pluto) this agent runs.", nil, nil)
)

// Describe implements prometheus.Collector. It describes nothing: the
// driver is an unchecked collector, because its per-connection families
// are shared with the strongSwan driver's, which a registry would refuse
// as duplicate descriptors.
func (d *Driver) Describe(chan<- *prometheus.Desc) {}

var scrapeTimeout = 3 * time.Second

// Collect implements prometheus.Collector: per-connection state and
// traffic from each pluto's whack --trafficstatus/--showstates (asked in
// parallel, scrapeTimeout at most; a router that has not answered has no
// connection metrics in this scrape), and the event counters.
func (d *Driver) Collect(ch chan<- prometheus.Metric) {
	d.mu.Lock()
	routers := make([]*router, 0, len(d.routers))
	for _, r := range d.routers {
		routers = append(routers, r)
	}
	d.mu.Unlock()
	var mu sync.Mutex
	snaps := make([]snapshot, len(routers))
	answered := make([]bool, len(routers))
	daemons := 0
	var wg sync.WaitGroup
	for i, r := range routers {
		p := r.current()
		if p == nil || !p.Alive() {
			answered[i] = true
			continue
		}
		daemons++
		if !r.scraping.CompareAndSwap(false, true) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer r.scraping.Store(false)
			s := r.read(d.base)
			mu.Lock()
			snaps[i], answered[i] = s, s.alive
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
		up := map[string]bool{}
		in, out := map[string]uint64{}, map[string]uint64{}
		for _, s := range snaps[i].states {
			if s.Child && s.Established {
				up[s.Conn] = true
			}
		}
		for _, t := range snaps[i].traffic {
			up[t.Conn] = true
			in[t.Conn] += t.InBytes
			out[t.Conn] += t.OutBytes
		}
		r.smu.Lock()
		services := r.services
		r.smu.Unlock()
		for _, s := range services {
			for _, c := range s.Connections {
				v := 0.0
				if up[c.ID] {
					v = 1
				}
				ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, v, r.id, s.ID, c.ID)
				ch <- prometheus.MustNewConstMetric(descBytes, prometheus.CounterValue, float64(in[c.ID]), r.id, s.ID, c.ID, "in")
				ch <- prometheus.MustNewConstMetric(descBytes, prometheus.CounterValue, float64(out[c.ID]), r.id, s.ID, c.ID, "out")
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

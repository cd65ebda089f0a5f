package e2e_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/neutrino-net/neutrino/internal/ipsec/libreswan"
	"github.com/neutrino-net/neutrino/internal/ipsec/strongswan"
	"github.com/neutrino-net/neutrino/internal/testenv"
	"github.com/neutrino-net/neutrino/internal/vmlab"
)

// The Libreswan device driver end to end (issue 14). pluto needs the
// kernel's ESP: these run in TestLabKernel only.

// lswReady ends the test unless Libreswan can run here: pluto installed
// and the kernel's ESP (the agent then runs the Libreswan driver).
func lswReady(t testing.TB) string {
	t.Helper()
	root := testenv.RequireLibreswan(t)
	if dataPlane != strongswan.DataPlaneXFRM {
		testenv.Missing(t, "Libreswan needs the kernel's ESP (data plane %s: %s); run it in the lab (TestLabKernel)", dataPlane, dataPlaneWhy)
	}
	return root
}

// flavor returns the flavor id that selects a VPN service provider.
func (e *env) flavor(name string) string {
	e.t.Helper()
	for _, f := range e.call("GET", "/v2.0/flavors", nil, 200)["flavors"].([]any) {
		if m := f.(map[string]any); m["name"] == name {
			return m["id"].(string)
		}
	}
	e.t.Fatalf("no flavor for provider %s", name)
	return ""
}

// lswService creates a VPN service of the libreswan provider.
func (e *env) lswService(s *site, name string) string {
	e.t.Helper()
	v := e.create("vpnservice", object{"name": name, "router_id": s.router, "subnet_id": s.subnet, "flavor_id": e.flavor("libreswan")})
	s.ext4, _ = v["external_v4_ip"].(string)
	if s.ext4 == "" {
		e.t.Fatalf("vpnservice %s has no external_v4_ip: %v", name, v)
	}
	return v["id"].(string)
}

// plutoOf is a router's pluto as the agent runs it: pid and IPsec/IKE
// state serials per connection, read with whack from its own socket.
type plutoOf struct {
	pid    int
	states map[string][]int
}

func (h *host) pluto(t *testing.T, root, router string) plutoOf {
	t.Helper()
	dir := filepath.Join(h.state, "libreswan", router)
	b, err := os.ReadFile(filepath.Join(dir, libreswan.PidFile))
	if err != nil {
		return plutoOf{}
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	out, err := exec.Command(libreswan.Program(root, "whack"), "--ctlsocket", filepath.Join(dir, libreswan.CtlSocket), "--showstates").CombinedOutput()
	if err != nil {
		t.Fatalf("router %s: whack --showstates: %v: %s", router[:8], err, out)
	}
	p := plutoOf{pid: pid, states: map[string][]int{}}
	for _, s := range libreswan.ParseShowStates(string(out)) {
		p.states[s.Conn] = append(p.states[s.Conn], s.Serial)
	}
	for _, v := range p.states {
		slices.Sort(v)
	}
	return p
}

// plutoSettled returns the router's pluto once its states stopped
// changing (IKEv1: both sides initiate; the duplicate goes a little
// after ACTIVE).
func (h *host) plutoSettled(t *testing.T, root, router string) plutoOf {
	t.Helper()
	last := h.pluto(t, root, router)
	for deadline := time.Now().Add(labSlack(8 * time.Second)); time.Now().Before(deadline); {
		time.Sleep(500 * time.Millisecond)
		now := h.pluto(t, root, router)
		if fmt.Sprint(now) == fmt.Sprint(last) {
			return now
		}
		last = now
	}
	return last
}

// plutoLogs logs the routers' pluto logs when the test failed.
func (h *host) plutoLogs(t *testing.T) {
	t.Cleanup(func() {
		if !t.Failed() && os.Getenv("NEUTRINO_E2E_LOGS") == "" {
			return
		}
		logs, _ := filepath.Glob(filepath.Join(h.state, "libreswan", "*", libreswan.LogFile))
		for _, l := range logs {
			data, _ := os.ReadFile(l)
			t.Logf("%s:\n%s", l, data)
		}
	})
}

// vpnLibreswanMoonSun is TestVPNMoonSun with both routers on the
// libreswan provider, for IKEv2 and IKEv1: one pluto per router, ping
// through, ACTIVE in the API, a wrong PSK DOWN with a reason, a live
// change that touches neither another router's pluto nor its SAs, and
// delete stops traffic.
func vpnLibreswanMoonSun(t *testing.T) {
	root := lswReady(t)
	e, h := oneNode(t)
	h.plutoLogs(t)
	ext := e.network("public", true)
	e.subnet(ext, "172.24.4.0/24", nil)
	moon, sun := e.newSite(h, "moon", ext, 1), e.newSite(h, "sun", ext, 2)
	// A bystander pair no change to moon or sun may touch.
	planet, comet := e.newSite(h, "planet", ext, 5), e.newSite(h, "comet", ext, 6)
	e.plugAll(h, []port{moon.vmPort, sun.vmPort}, []*vmNS{moon.vm, sun.vm})
	ping := newPinger(t, moon.vm, moon.vmPort.ip, sun.vmPort.ip)
	if !ping.Silent(20*time.Millisecond, 500*time.Millisecond) {
		t.Fatal("moon's VM reaches sun's VM before any VPN")
	}
	esp := e.create("ipsecpolicy", object{"name": "esp", "auth_algorithm": "sha256"})["id"].(string)
	ike2 := e.create("ikepolicy", object{"name": "ike-bystanders", "ike_version": "v2", "auth_algorithm": "sha256"})["id"].(string)
	pSvc, cSvc := e.lswService(planet, "planet-vpn"), e.lswService(comet, "comet-vpn")
	pConn := e.connection("planet-to-comet", pSvc, ike2, esp, comet.ext4, "k", object{"peer_cidrs": []any{comet.cidr}})
	cConn := e.connection("comet-to-planet", cSvc, ike2, esp, planet.ext4, "k", object{"peer_cidrs": []any{planet.cidr}})
	moonSvc, sunSvc := e.lswService(moon, "moon-vpn"), e.lswService(sun, "sun-vpn")
	e.waitConn(pConn, "ACTIVE", vpnTimeout)
	e.waitConn(cConn, "ACTIVE", vpnTimeout)
	bystanders := map[string]plutoOf{planet.router: h.plutoSettled(t, root, planet.router), comet.router: h.plutoSettled(t, root, comet.router)}
	untouched := func(t *testing.T) {
		t.Helper()
		for r, b := range bystanders {
			if now := h.pluto(t, root, r); fmt.Sprint(now) != fmt.Sprint(b) {
				t.Errorf("bystander %s: pluto %+v, was %+v", r[:8], now, b)
			}
		}
	}
	// One site pair for both versions: each round's connections go
	// before the next (moon's and sun's plutos stop and start again).
	for _, version := range []string{"v2", "v1"} {
		t.Run("IKE"+version, func(t *testing.T) {
			ike := e.create("ikepolicy", object{"name": "ike-" + version, "ike_version": version, "auth_algorithm": "sha256"})["id"].(string)
			lswMoonSun(t, e, h, root, version, ike, esp, moon, sun, moonSvc, sunSvc, ping, untouched)
		})
	}
}

func lswMoonSun(t *testing.T, e *env, h *host, root, version, ike, esp string, moon, sun *site, moonSvc, sunSvc string,
	ping *pinger, untouched func(*testing.T)) {
	moonConn := e.connection("moon-to-sun", moonSvc, ike, esp, sun.ext4, "s3cret-"+version, object{"peer_cidrs": []any{sun.cidr}})
	start := time.Now()
	sunConn := e.connection("sun-to-moon", sunSvc, ike, esp, moon.ext4, "s3cret-"+version, object{"peer_cidrs": []any{moon.cidr}})
	e.waitConn(sunConn, "ACTIVE", vpnTimeout)
	sunActive := time.Now()
	e.waitConn(moonConn, "ACTIVE", vpnTimeout)
	t.Logf("IKE%s: POST of the second connection -> both ACTIVE in GET: %s", version, time.Since(start).Round(time.Millisecond))
	// The status comes from pluto's own reports: ACTIVE in the API within
	// a second (the lab's slow CPU: three) of pluto's log line for the
	// IPsec SA.
	if sa := h.ipsecSAAt(sun.router); sa.IsZero() {
		t.Errorf("sun's pluto.log has no established IPsec SA")
	} else if d := sunActive.Sub(sa); d > labSlack(time.Second) {
		t.Errorf("IKE%s: sun ACTIVE in the API %s after pluto logged the IPsec SA, want within %s", version, d.Round(time.Millisecond), labSlack(time.Second))
	} else {
		t.Logf("IKE%s: sun's IPsec SA in pluto's log -> ACTIVE in GET: %s", version, d.Round(time.Millisecond))
	}
	at, ok := ping.Reach(20*time.Millisecond, reachTimeout)
	if !ok {
		t.Fatal("moon's VM cannot ping sun's VM through the Libreswan tunnel")
	}
	t.Logf("IKE%s: first ping through %s after the second POST", version, at.Sub(start).Round(time.Millisecond))
	for _, id := range []string{moonSvc, sunSvc} {
		if v := e.get("vpnservice", id); v["status"] != "ACTIVE" {
			t.Errorf("vpnservice %s: status %v, want ACTIVE", id, v["status"])
		}
	}
	pm, ps := h.pluto(t, root, moon.router), h.pluto(t, root, sun.router)
	if pm.pid == 0 || ps.pid == 0 || pm.pid == ps.pid {
		t.Fatalf("pluto pids: moon %d, sun %d; want two distinct daemons", pm.pid, ps.pid)
	}
	if charon := filepath.Join(h.state, "ipsec", moon.router); fileExists(charon) {
		t.Errorf("a Libreswan router has strongSwan state: %s", charon)
	}

	t.Run("WrongPSK", func(t *testing.T) {
		e.update("ipsec_site_connection", sunConn, object{"psk": "not-the-same"})
		e.waitConn(sunConn, "DOWN", vpnTimeout)
		reason := failureReason(e, sunConn, wantReason(version))
		if reason == "" || strings.HasPrefix(reason, "negotiating") || !strings.Contains(reason, wantReason(version)) {
			t.Errorf("wrong PSK: status_reason %q, want a failure reason", reason)
		}
		t.Logf("IKE%s wrong PSK: DOWN with %q", version, reason)
		if _, ok := stops(ping, reachTimeout); !ok {
			t.Error("traffic passes with different PSKs")
		}
		e.update("ipsec_site_connection", sunConn, object{"psk": "s3cret-" + version})
		e.waitConn(sunConn, "ACTIVE", vpnTimeout)
		e.waitConn(moonConn, "ACTIVE", vpnTimeout)
		if _, ok := ping.Reach(20*time.Millisecond, reachTimeout); !ok {
			t.Fatal("no traffic after the PSK was fixed")
		}
		if p := h.pluto(t, root, moon.router); p.pid != pm.pid {
			t.Errorf("moon's pluto changed (%d -> %d) for a change on sun", pm.pid, p.pid)
		}
		untouched(t)
	})

	t.Run("AgentRestart", func(t *testing.T) {
		before := map[string]plutoOf{moon.router: h.plutoSettled(t, root, moon.router), sun.router: h.plutoSettled(t, root, sun.router)}
		h.stopAgent()
		h.startAgent()
		h.waitRegistered()
		// The new agent adopts both plutos and re-adds nothing: same
		// pids, and every SA of before is still there while it resyncs
		// (re-adding a connection deletes its SAs; pluto may add a
		// state of its own, e.g. the peer's late initiation).
		for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(500 * time.Millisecond) {
			for r, b := range before {
				now := h.pluto(t, root, r)
				kept := now.pid == b.pid
				for c, serials := range b.states {
					for _, n := range serials {
						kept = kept && slices.Contains(now.states[c], n)
					}
				}
				if !kept {
					t.Fatalf("router %s after the agent restart: pluto %+v, was %+v", r[:8], now, b)
				}
			}
		}
		if _, ok := ping.Reach(20*time.Millisecond, reachTimeout); !ok {
			t.Fatal("no traffic after the agent restart")
		}
		e.waitConn(moonConn, "ACTIVE", vpnTimeout)
		untouched(t)
	})

	t.Run("LiveChange", func(t *testing.T) {
		before := h.plutoSettled(t, root, moon.router).states[moonConn]
		start := time.Now()
		e.update("ipsec_site_connection", moonConn, object{"peer_cidrs": []any{sun.cidr, "10.9.0.0/24"}, "mtu": 1400})
		// The change reached moon's pluto: the connection was replaced,
		// so its SAs are new ones.
		for deadline := time.Now().Add(vpnTimeout); ; time.Sleep(50 * time.Millisecond) {
			if now := h.pluto(t, root, moon.router).states[moonConn]; len(now) > 0 && !slices.ContainsFunc(now, func(n int) bool { return slices.Contains(before, n) }) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("moon's pluto still has the SAs %v of before the change", before)
			}
		}
		e.waitConn(moonConn, "ACTIVE", vpnTimeout)
		if _, ok := ping.Reach(20*time.Millisecond, reachTimeout); !ok {
			t.Fatal("no traffic after the peer CIDR change")
		}
		t.Logf("IKE%s: peer CIDRs changed: new SAs, ACTIVE and traffic again %s after the PUT", version, time.Since(start).Round(time.Millisecond))
		if p := h.pluto(t, root, moon.router); p.pid != pm.pid {
			t.Errorf("moon's pluto restarted (%d -> %d) for a connection change", pm.pid, p.pid)
		}
		untouched(t)
	})

	t.Run("DeleteStopsTraffic", func(t *testing.T) {
		e.deleteConn(moonConn)
		if _, ok := stops(ping, reachTimeout); !ok {
			t.Fatal("traffic still flows after moon's connection was deleted")
		}
		if version == "v2" {
			// IKEv2's Delete reaches sun at once; IKEv1's sun goes DOWN
			// only when DPD gives up, which this test does not wait for.
			c := e.waitConn(sunConn, "DOWN", vpnTimeout)
			t.Logf("IKE%s: sun after moon's delete: DOWN %q", version, c["status_reason"])
		}
		untouched(t)
	})
	e.deleteConn(sunConn)
	for deadline := time.Now().Add(vpnTimeout); h.plutoPid(moon.router) != 0 || h.plutoPid(sun.router) != 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("plutos still run without connections: moon %d, sun %d", h.plutoPid(moon.router), h.plutoPid(sun.router))
		}
	}
}

// BenchmarkLabLibreswan: two Libreswan routers (moon and sun) in the
// lab, each round a fresh connection pair (IKEv2) whose plutos start with
// it, as a router's first tunnel does: from the POST of the second
// connection to both ACTIVE in the API (post-active), and from sun's
// pluto logging its established IPsec SA to sun's connection ACTIVE in the
// API (sa-active: the driver follows pluto's log every 200 ms, reads
// whack's reports and the agent reports at once). Run in the lab (pluto
// needs the kernel's ESP), e.g.
//
//	go test -run '^$' -bench '^BenchmarkLabLibreswan$' -benchtime 10x -timeout 20m ./test/e2e/
func BenchmarkLabLibreswan(b *testing.B) {
	if !vmlab.RunInLab(b) {
		return
	}
	lswReady(b)
	e, h := oneNode(b)
	ext := e.network("public", true)
	e.subnet(ext, "172.24.4.0/24", nil)
	moon, sun := e.newSite(h, "moon", ext, 1), e.newSite(h, "sun", ext, 2)
	esp := e.create("ipsecpolicy", object{"name": "esp", "auth_algorithm": "sha256"})["id"].(string)
	ike := e.create("ikepolicy", object{"name": "ike", "ike_version": "v2", "auth_algorithm": "sha256"})["id"].(string)
	moonSvc, sunSvc := e.lswService(moon, "moon-vpn"), e.lswService(sun, "sun-vpn")
	var postActive, saActive []time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		mc := e.connection("moon-to-sun", moonSvc, ike, esp, sun.ext4, "s3cret", object{"peer_cidrs": []any{sun.cidr}})
		b.StartTimer()
		start := time.Now()
		sc := e.connection("sun-to-moon", sunSvc, ike, esp, moon.ext4, "s3cret", object{"peer_cidrs": []any{moon.cidr}})
		e.waitConn(sc, "ACTIVE", vpnTimeout)
		sunActive := time.Now()
		e.waitConn(mc, "ACTIVE", vpnTimeout)
		postActive = append(postActive, time.Since(start))
		b.StopTimer()
		sa := h.ipsecSAAt(sun.router)
		if sa.IsZero() {
			b.Fatal("sun's pluto.log has no established IPsec SA")
		}
		saActive = append(saActive, sunActive.Sub(sa))
		e.deleteConn(mc)
		e.deleteConn(sc)
		for deadline := time.Now().Add(vpnTimeout); h.plutoPid(moon.router) != 0 || h.plutoPid(sun.router) != 0; time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				b.Fatal("plutos still run without connections")
			}
		}
		b.StartTimer()
	}
	reportLatencies(b, latencies{"post-active-", postActive}, latencies{"sa-active-", saActive})
}

// failureReason waits (vpnTimeout) for the connection's status_reason to
// name a negotiation failure rather than "negotiating ..." and returns
// the last reason seen.
func failureReason(e *env, conn, want string) string {
	var reason string
	for deadline := time.Now().Add(vpnTimeout); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		reason, _ = e.get("ipsec_site_connection", conn)["status_reason"].(string)
		if reason != "" && !strings.HasPrefix(reason, "negotiating") && strings.Contains(reason, want) {
			break
		}
	}
	return reason
}

// wantReason is what a wrong PSK must show: IKEv2 says so; IKEv1's
// mismatch shows as some failure.
func wantReason(version string) string {
	if version == "v2" {
		return "authentication"
	}
	return ""
}

// plutoLog logs a router's pluto log now (before a delete removes it).
func (h *host) plutoLog(t *testing.T, router string) {
	data, _ := os.ReadFile(filepath.Join(h.state, "libreswan", router, libreswan.LogFile))
	t.Logf("pluto.log of %s:\n%s", router[:8], data)
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// vpnLibreswanStrongswan: a Libreswan router against a strongSwan router
// of the same Neutrino, IKEv2 and IKEv1.
func vpnLibreswanStrongswan(t *testing.T) {
	root := lswReady(t)
	testenv.RequireCharon(t)
	e, h := oneNode(t)
	h.plutoLogs(t)
	ext := e.network("public", true)
	e.subnet(ext, "172.24.4.0/24", nil)
	moon, sun := e.newSite(h, "moon", ext, 1), e.newSite(h, "sun", ext, 2)
	e.plugAll(h, []port{moon.vmPort, sun.vmPort}, []*vmNS{moon.vm, sun.vm})
	ping := newPinger(t, moon.vm, moon.vmPort.ip, sun.vmPort.ip)
	esp := e.create("ipsecpolicy", object{"name": "esp", "auth_algorithm": "sha256"})["id"].(string)
	moonSvc := e.lswService(moon, "moon-lsw")
	sunSvc := e.vpnService(sun, "sun-charon", sun.subnet) // the default provider: strongSwan
	for _, version := range []string{"v2", "v1"} {
		ike := e.create("ikepolicy", object{"name": "ike-" + version, "ike_version": version, "auth_algorithm": "sha256"})["id"].(string)
		start := time.Now()
		mc := e.connection("moon-"+version, moonSvc, ike, esp, sun.ext4, "mixed-"+version, object{"peer_cidrs": []any{sun.cidr}})
		sc := e.connection("sun-"+version, sunSvc, ike, esp, moon.ext4, "mixed-"+version, object{"peer_cidrs": []any{moon.cidr}})
		e.waitConn(mc, "ACTIVE", vpnTimeout)
		e.waitConn(sc, "ACTIVE", vpnTimeout)
		if _, ok := ping.Reach(20*time.Millisecond, reachTimeout); !ok {
			t.Fatalf("IKE%s: no traffic between the Libreswan and the strongSwan router", version)
		}
		t.Logf("IKE%s: Libreswan <-> strongSwan: ACTIVE and ping %s after the POSTs", version, time.Since(start).Round(time.Millisecond))
		if p := h.pluto(t, root, moon.router); p.pid == 0 || len(p.states[mc]) == 0 {
			t.Errorf("IKE%s: moon's pluto %+v has no states for %s", version, p, mc)
		}
		if h.vpn.Pid(sun.router) == 0 || h.vpn.Pid(moon.router) != 0 {
			t.Errorf("charons: sun %d, moon %d; want one on sun only", h.vpn.Pid(sun.router), h.vpn.Pid(moon.router))
		}
		// A PSK mismatch with IKEv2; IKEv1's is MoonSun's (charon drops
		// its IKEv1 SAs without a Delete pluto acts on, so the Libreswan
		// side stays truthfully ACTIVE until DPD gives up on the peer).
		if version == "v2" {
			e.update("ipsec_site_connection", sc, object{"psk": "other"})
			e.waitConn(sc, "DOWN", vpnTimeout)
			e.waitConn(mc, "DOWN", vpnTimeout)
			reason := failureReason(e, mc, wantReason(version))
			if reason == "" || strings.HasPrefix(reason, "negotiating") || !strings.Contains(reason, wantReason(version)) {
				t.Errorf("IKE%s: strongSwan side's PSK changed: Libreswan side DOWN with %q, want a failure reason", version, reason)
				h.plutoLog(t, moon.router)
			}
			t.Logf("IKE%s: strongSwan side's PSK changed: Libreswan side DOWN %q", version, reason)
		}
		e.deleteConn(mc)
		e.deleteConn(sc)
		if _, ok := stops(ping, reachTimeout); !ok {
			t.Fatalf("IKE%s: traffic still flows after the delete", version)
		}
	}
}

// vpnLibreswanMoves is TestVPNRouterMoves with Libreswan routers: the
// moved router's pluto starts on the new host with its connection, and
// nothing of it is left on the old one.
func vpnLibreswanMoves(t *testing.T) {
	lswReady(t)
	routerMoves(t, routerVPN{driver: "pluto", dir: "libreswan", ike: object{"name": "ike", "ike_version": "v2"},
		service: func(e *env, s *site, name string) string { return e.lswService(s, name) },
		pid:     func(h *host, router string) int { return h.plutoPid(router) }})
}

// ipsecSAAt is when the router's pluto logged its first established
// IPsec SA, zero if it did not (pluto's logtime: local time, no year).
func (h *host) ipsecSAAt(router string) time.Time {
	data, _ := os.ReadFile(filepath.Join(h.state, "libreswan", router, libreswan.LogFile))
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.Contains(line, "established Child SA") && !strings.Contains(line, "IPsec SA established") {
			continue
		}
		stamp, _, _ := strings.Cut(line, ": ")
		at, err := time.ParseInLocation("Jan _2 15:04:05.000000", stamp, time.Local)
		if err != nil {
			continue
		}
		return at.AddDate(time.Now().Year(), 0, 0)
	}
	return time.Time{}
}

// plutoPid is the pid of the router's running pluto on h, 0 if none.
func (h *host) plutoPid(router string) int {
	b, err := os.ReadFile(filepath.Join(h.state, "libreswan", router, libreswan.PidFile))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return 0
	}
	return pid
}

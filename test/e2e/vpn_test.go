package e2e_test

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/neutrino-net/neutrino/internal/testenv"
)

// vpnTimeout bounds a wait for a connection's status in the API.
var vpnTimeout = labSlack(20 * time.Second)

// site is one side of the moon/sun topology: a router with a gateway on
// the shared external network, a tenant network behind it and a VM.
type site struct {
	name      string
	router    string
	ext4      string // external_v4_ip of its VPN service
	ext6      string
	subnet    string // IPv4 tenant subnet
	subnet6   string // IPv6 tenant subnet
	cidr      string
	cidr6     string
	vm        *vmNS
	vmPort    port
	vmIP6     string
	services  []string
	lastAdded string
}

// newSite builds router, tenant network (IPv4 and IPv6) and VM.
func (e *env) newSite(h *host, name, ext string, n int) *site {
	e.t.Helper()
	s := &site{name: name, cidr: "10." + itoa(n) + ".0.0/24", cidr6: "2001:db8:" + itoa(n) + "::/64"}
	net := e.network(name+"-net", false)
	s.subnet = e.subnet(net, s.cidr, nil)
	s.subnet6 = e.subnet(net, s.cidr6, object{"ip_version": 6})
	s.router = e.router(name, ext)
	e.addInterface(s.router, s.subnet)
	e.addInterface(s.router, s.subnet6)
	s.vmPort = e.port(net, object{"name": name + "-vm"})
	got := e.get("port", s.vmPort.id)
	for _, ip := range got["fixed_ips"].([]any) {
		if a := ip.(map[string]any)["ip_address"].(string); strings.Contains(a, ":") {
			s.vmIP6 = a
		}
	}
	s.vm = h.vm(name + "-vm")
	return s
}

func itoa(n int) string { return string(rune('0' + n)) }

// vpnService creates a VPN service on the site's router (legacy mode when
// subnet is set) and returns its id, remembering its external IPs.
func (e *env) vpnService(s *site, name, subnet string) string {
	e.t.Helper()
	attrs := object{"name": name, "router_id": s.router}
	if subnet != "" {
		attrs["subnet_id"] = subnet
	}
	v := e.create("vpnservice", attrs)
	s.ext4, _ = v["external_v4_ip"].(string)
	s.ext6, _ = v["external_v6_ip"].(string)
	if s.ext4 == "" {
		e.t.Fatalf("vpnservice %s has no external_v4_ip: %v", name, v)
	}
	return v["id"].(string)
}

// connection creates an IPsec site connection and returns its id.
func (e *env) connection(name, service, ike, ipsec, peer, psk string, extra object) string {
	e.t.Helper()
	attrs := object{"name": name, "vpnservice_id": service, "ikepolicy_id": ike, "ipsecpolicy_id": ipsec,
		"peer_address": peer, "peer_id": peer, "psk": psk}
	for k, v := range extra {
		attrs[k] = v
	}
	return e.create("ipsec_site_connection", attrs)["id"].(string)
}

// waitConn polls GET until the connection has the status; it returns the
// connection as last seen.
func (e *env) waitConn(id, status string, within time.Duration) object {
	e.t.Helper()
	deadline := time.Now().Add(within)
	for {
		c := e.get("ipsec_site_connection", id)
		if c["status"] == status {
			return c
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("connection %s: status %v (status_reason %q), want %s after %s", id, c["status"], c["status_reason"], status, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// deleteConn deletes a connection now (its undo step becomes harmless).
func (e *env) deleteConn(id string) {
	e.t.Helper()
	code, body, err := e.do("DELETE", "/v2.0/vpn/ipsec-site-connections/"+id, nil)
	if err != nil || code != http.StatusNoContent {
		e.t.Fatalf("DELETE connection %s: %d %s %v", id, code, body, err)
	}
}

// vpnSnapshot is the charon pid and IKE_SA ids of some routers.
type vpnSnapshot map[string]struct {
	pid int
	sas map[string][]string
}

func (h *host) snapshot(t *testing.T, routers ...string) vpnSnapshot {
	t.Helper()
	out := vpnSnapshot{}
	for _, r := range routers {
		sas, err := h.vpn.IKESAs(t.Context(), r)
		if err != nil {
			t.Fatalf("router %s: list SAs: %v", r, err)
		}
		out[r] = struct {
			pid int
			sas map[string][]string
		}{h.vpn.Pid(r), sas}
	}
	return out
}

// settled returns the routers' snapshot once it stopped changing (both
// sides may have initiated at once; the second IKE_SA lands a little
// after the first is ACTIVE).
func (h *host) settled(t *testing.T, routers ...string) vpnSnapshot {
	t.Helper()
	last := h.snapshot(t, routers...)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		time.Sleep(250 * time.Millisecond)
		now := h.snapshot(t, routers...)
		if fmt.Sprint(now) == fmt.Sprint(last) {
			return now
		}
		last = now
	}
	return last
}

// untouched checks that the routers still run the same charon with the
// same IKE_SAs.
func (h *host) untouched(t *testing.T, before vpnSnapshot) {
	t.Helper()
	for r, b := range before {
		now := h.snapshot(t, r)[r]
		if now.pid != b.pid || fmt.Sprint(now.sas) != fmt.Sprint(b.sas) {
			t.Errorf("router %s: charon %d with IKE_SAs %v, was %d with %v", r[:8], now.pid, now.sas, b.pid, b.sas)
		}
	}
}

// stops waits until the pinger's requests go unanswered for 300ms; it
// returns how long that took to begin.
func stops(p *pinger, within time.Duration) (time.Duration, bool) {
	start := time.Now()
	for time.Since(start) < within {
		at := time.Since(start)
		if p.Silent(20*time.Millisecond, 300*time.Millisecond) {
			return at, true
		}
	}
	return within, false
}

// TestVPNMoonSun is seed 000's experiment through the API: two routers on
// one external network, a VM behind each, a VPN service and a connection
// on each side, each using the other's external_v4_ip from the POST.
func TestVPNMoonSun(t *testing.T) {
	testenv.RequireCharon(t)
	e, h := oneNode(t)
	t.Logf("IPsec data plane: %s (%s)", dataPlane, dataPlaneWhy)
	agents := e.call("GET", "/v2.0/agents?host="+h.name+"&agent_type="+url.QueryEscape(agentv1.AgentTypeL3), nil, http.StatusOK)["agents"].([]any)
	if conf, _ := agents[0].(map[string]any)["configurations"].(map[string]any); conf["ipsec_data_plane"] != dataPlane {
		t.Errorf("/v2.0/agents configurations %v, want ipsec_data_plane %q", conf, dataPlane)
	}

	ext := e.network("public", true)
	e.subnet(ext, "172.24.4.0/24", nil)
	e.subnet(ext, "2001:db8:ff::/64", object{"ip_version": 6})
	moon, sun := e.newSite(h, "moon", ext, 1), e.newSite(h, "sun", ext, 2)
	e.plugAll(h, []port{moon.vmPort, sun.vmPort}, []*vmNS{moon.vm, sun.vm})
	moon.vm.waitUp(t, moon.vmPort.id)

	ping := newPinger(t, moon.vm, moon.vmPort.ip, sun.vmPort.ip)
	if !ping.Silent(20*time.Millisecond, 500*time.Millisecond) {
		t.Fatal("moon's VM reaches sun's VM before any VPN")
	}

	ike := e.create("ikepolicy", object{"name": "ike", "ike_version": "v2", "auth_algorithm": "sha256"})["id"].(string)
	ipsec := e.create("ipsecpolicy", object{"name": "esp", "auth_algorithm": "sha256"})["id"].(string)
	moonSvc := e.vpnService(moon, "moon-vpn", moon.subnet)
	sunSvc := e.vpnService(sun, "sun-vpn", sun.subnet)
	if v := e.get("vpnservice", moonSvc); v["status"] != "PENDING_CREATE" && v["status"] != "DOWN" {
		t.Errorf("service without connections: status %v", v["status"])
	}

	moonConn := e.connection("moon-to-sun", moonSvc, ike, ipsec, sun.ext4, "s3cret", object{"peer_cidrs": []any{sun.cidr}})
	start := time.Now()
	sunConn := e.connection("sun-to-moon", sunSvc, ike, ipsec, moon.ext4, "s3cret", object{"peer_cidrs": []any{moon.cidr}})
	e.waitConn(sunConn, "ACTIVE", vpnTimeout)
	e.waitConn(moonConn, "ACTIVE", vpnTimeout)
	t.Logf("POST of the second connection -> both ACTIVE in GET: %s", time.Since(start).Round(time.Millisecond))
	for _, id := range []string{moonSvc, sunSvc} {
		if v := e.get("vpnservice", id); v["status"] != "ACTIVE" {
			t.Errorf("vpnservice %s: status %v, want ACTIVE", id, v["status"])
		}
	}
	at, ok := ping.Reach(20*time.Millisecond, reachTimeout)
	if !ok {
		t.Fatalf("moon's VM cannot ping sun's VM through the tunnel")
	}
	t.Logf("first ping through the tunnel %s after the second POST", at.Sub(start).Round(time.Millisecond))
	moonPid := h.vpn.Pid(moon.router)
	if moonPid == 0 || h.vpn.Pid(sun.router) == 0 || moonPid == h.vpn.Pid(sun.router) {
		t.Fatalf("charon pids: moon %d, sun %d; want two distinct daemons", moonPid, h.vpn.Pid(sun.router))
	}

	t.Run("DataPlane", func(t *testing.T) { checkDataPlane(t, e, h, ext, moon, sun, ping) })

	// A bystander pair whose daemons no change to moon or sun may touch.
	planet, comet := e.newSite(h, "planet", ext, 5), e.newSite(h, "comet", ext, 6)
	pSvc, cSvc := e.vpnService(planet, "planet-vpn", planet.subnet), e.vpnService(comet, "comet-vpn", comet.subnet)
	pConn := e.connection("planet-to-comet", pSvc, ike, ipsec, comet.ext4, "k", object{"peer_cidrs": []any{comet.cidr}})
	cConn := e.connection("comet-to-planet", cSvc, ike, ipsec, planet.ext4, "k", object{"peer_cidrs": []any{planet.cidr}})
	e.waitConn(pConn, "ACTIVE", vpnTimeout)
	e.waitConn(cConn, "ACTIVE", vpnTimeout)
	bystanders := h.settled(t, planet.router, comet.router)

	t.Run("WrongPSK", func(t *testing.T) {
		e.update("ipsec_site_connection", sunConn, object{"psk": "not-the-same"})
		c := e.waitConn(sunConn, "DOWN", vpnTimeout)
		e.waitConn(moonConn, "DOWN", vpnTimeout)
		reason, _ := c["status_reason"].(string)
		for deadline := time.Now().Add(vpnTimeout); !strings.Contains(reason, "authentication") && time.Now().Before(deadline); {
			time.Sleep(50 * time.Millisecond)
			reason, _ = e.get("ipsec_site_connection", sunConn)["status_reason"].(string)
		}
		if !strings.Contains(reason, "authentication") {
			t.Errorf("wrong PSK: status_reason %q, want an authentication failure", reason)
		}
		t.Logf("wrong PSK: DOWN with reason %q", reason)
		if !ping.Silent(20*time.Millisecond, 300*time.Millisecond) {
			t.Error("traffic passes with different PSKs")
		}
		e.update("ipsec_site_connection", sunConn, object{"psk": "s3cret"})
		e.waitConn(sunConn, "ACTIVE", vpnTimeout)
		e.waitConn(moonConn, "ACTIVE", vpnTimeout)
		if c := e.get("ipsec_site_connection", sunConn); c["status_reason"] != nil && c["status_reason"] != "" {
			t.Errorf("ACTIVE connection keeps status_reason %q", c["status_reason"])
		}
		if _, ok := ping.Reach(20*time.Millisecond, reachTimeout); !ok {
			t.Fatal("no traffic after the PSK was fixed")
		}
		if p := h.vpn.Pid(moon.router); p != moonPid {
			t.Errorf("moon's charon changed (%d -> %d) for a change on sun", moonPid, p)
		}
		h.untouched(t, bystanders)
	})

	t.Run("LiveChanges", func(t *testing.T) {
		// MTU: strongSwan has no per-connection MTU; nothing renegotiates.
		before := h.settled(t, moon.router)
		e.update("ipsec_site_connection", moonConn, object{"mtu": 1400})
		time.Sleep(300 * time.Millisecond)
		h.untouched(t, before)

		// Peer CIDRs and DPD reach moon's running charon: same pid,
		// the connection comes back ACTIVE.
		start := time.Now()
		e.update("ipsec_site_connection", moonConn, object{"peer_cidrs": []any{sun.cidr, "10.9.0.0/24"}})
		e.update("ipsec_site_connection", moonConn, object{"dpd": object{"action": "restart", "interval": 10, "timeout": 40}})
		e.waitConn(moonConn, "ACTIVE", vpnTimeout)
		if _, ok := ping.Reach(20*time.Millisecond, reachTimeout); !ok {
			t.Fatal("no traffic after the peer CIDR and DPD changes")
		}
		t.Logf("peer CIDRs + DPD changed: traffic again %s after the first PUT", time.Since(start).Round(time.Millisecond))

		// admin_state_up down on a connection, or on the service of the
		// other side, takes that connection DOWN and stops traffic; up
		// restores both sides.
		adminDown := func(kind, id, conn, what string) {
			t.Helper()
			e.update(kind, id, object{"admin_state_up": false})
			e.waitConn(conn, "DOWN", vpnTimeout)
			if _, ok := stops(ping, 5*time.Second); !ok {
				t.Errorf("traffic passes with %s admin down", what)
			}
			e.update(kind, id, object{"admin_state_up": true})
			e.waitConn(moonConn, "ACTIVE", vpnTimeout)
			e.waitConn(sunConn, "ACTIVE", vpnTimeout)
		}
		adminDown("ipsec_site_connection", moonConn, moonConn, "the connection")
		adminDown("vpnservice", sunSvc, sunConn, "sun's service")
		if _, ok := ping.Reach(20*time.Millisecond, reachTimeout); !ok {
			t.Fatal("no traffic after the admin state changes")
		}
		if p := h.vpn.Pid(moon.router); p == 0 {
			t.Error("moon has no charon after its connection came back up")
		}
		h.untouched(t, bystanders)
	})

	t.Run("AgentRestartKeepsTunnels", func(t *testing.T) {
		before := h.settled(t, moon.router, sun.router, planet.router, comet.router)
		probe := newPinger(t, moon.vm, moon.vmPort.ip, sun.vmPort.ip)
		if _, ok := probe.Reach(10*time.Millisecond, reachTimeout); !ok {
			t.Fatal("no traffic before the restart")
		}
		first := probe.Send()
		stopProbe := make(chan struct{})
		probed := make(chan uint16)
		go func() {
			last := first
			for {
				select {
				case <-stopProbe:
					probed <- last
					return
				case <-time.After(10 * time.Millisecond):
					last = probe.Send()
				}
			}
		}()
		h.stopAgent()
		h.startAgent()
		// Resynced: the connections stay ACTIVE and a status report from
		// the new agent arrived (its VPN state is known again).
		for deadline := time.Now().Add(vpnTimeout); h.vpn.Status(moon.router)[moonSvc].Status != "ACTIVE"; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("restarted agent does not see moon's VPN ACTIVE")
			}
		}
		time.Sleep(300 * time.Millisecond)
		close(stopProbe)
		last := <-probed
		time.Sleep(200 * time.Millisecond)
		if lost := probe.Lost(first, last); len(lost) > 0 {
			t.Errorf("%d of %d probes lost across the agent restart", len(lost), last-first+1)
		} else {
			t.Logf("agent restart: %d probes every 10ms, none lost", last-first+1)
		}
		h.untouched(t, before)
		e.waitConn(moonConn, "ACTIVE", time.Second)
	})

	t.Run("DeleteStopsTraffic", func(t *testing.T) {
		e.deleteConn(moonConn)
		e.deleteConn(sunConn)
		if d, ok := stops(ping, 5*time.Second); !ok {
			t.Error("traffic still passes 5s after both connections were deleted")
		} else {
			t.Logf("traffic stopped within %s of the DELETEs", d.Round(time.Millisecond))
		}
		for _, id := range []string{moonSvc, sunSvc} {
			for deadline := time.Now().Add(vpnTimeout); ; time.Sleep(20 * time.Millisecond) {
				if v := e.get("vpnservice", id); v["status"] == "DOWN" {
					break
				} else if time.Now().After(deadline) {
					t.Fatalf("vpnservice %s without connections: status %v, want DOWN", id, v["status"])
				}
			}
		}
		for deadline := time.Now().Add(vpnTimeout); h.vpn.Pid(moon.router) != 0; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("moon's charon still runs without connections")
			}
		}
		checkXFRMGone(t, h, moon.router, sun.router)
	})

	t.Run("NoPSKInLogs", func(t *testing.T) {
		logs := e.logs.String()
		files, _ := filepath.Glob(filepath.Join(h.state, "ipsec", "*", "*"))
		for _, f := range files {
			data, _ := os.ReadFile(f)
			if strings.HasSuffix(f, ".log") {
				logs += string(data)
			}
		}
		for _, psk := range []string{"s3cret", "not-the-same"} {
			if strings.Contains(logs, psk) {
				t.Errorf("PSK %q appears in the server, agent or charon logs", psk)
			}
		}
	})

	// Endpoint-group mode: moon protects two subnets, and IPv6 rides in
	// the same IPv4 tunnel's IKE_SA peer as a second connection.
	t.Run("EndpointGroupsAndIPv6", func(t *testing.T) {
		net2 := e.network("moon-net-2", false)
		cidr2 := "10.3.0.0/24"
		sub2 := e.subnet(net2, cidr2, nil)
		e.addInterface(moon.router, sub2)
		p2 := e.port(net2, object{"name": "moon-vm-2"})
		vm2 := h.vm("moon-vm-2")
		e.plugAll(h, []port{p2}, []*vmNS{vm2})

		group := func(name, typ string, eps ...string) string {
			l := make([]any, len(eps))
			for i, x := range eps {
				l[i] = x
			}
			return e.create("endpoint_group", object{"name": name, "type": typ, "endpoints": l})["id"].(string)
		}
		moonLocal := group("moon-local", "subnet", moon.subnet, sub2)
		moonLocal1 := group("moon-local-1", "subnet", moon.subnet) // for the change below
		moonPeer := group("moon-peer", "cidr", sun.cidr)
		sunLocal := group("sun-local", "subnet", sun.subnet)
		sunPeer := group("sun-peer", "cidr", moon.cidr, cidr2)
		moonLocal6 := group("moon-local6", "subnet", moon.subnet6)
		moonPeer6 := group("moon-peer6", "cidr", sun.cidr6)
		sunLocal6 := group("sun-local6", "subnet", sun.subnet6)
		sunPeer6 := group("sun-peer6", "cidr", moon.cidr6)

		moonSvc2 := e.vpnService(moon, "moon-epg", "")
		sunSvc2 := e.vpnService(sun, "sun-epg", "")
		start := time.Now()
		m4 := e.connection("moon-epg-v4", moonSvc2, ike, ipsec, sun.ext4, "k4",
			object{"local_ep_group_id": moonLocal, "peer_ep_group_id": moonPeer})
		s4 := e.connection("sun-epg-v4", sunSvc2, ike, ipsec, moon.ext4, "k4",
			object{"local_ep_group_id": sunLocal, "peer_ep_group_id": sunPeer})
		m6 := e.connection("moon-v6-in-v4", moonSvc2, ike, ipsec, sun.ext4, "k6",
			object{"local_ep_group_id": moonLocal6, "peer_ep_group_id": moonPeer6, "peer_id": "sun-v6", "local_id": "moon-v6"})
		s6 := e.connection("sun-v6-in-v4", sunSvc2, ike, ipsec, moon.ext4, "k6",
			object{"local_ep_group_id": sunLocal6, "peer_ep_group_id": sunPeer6, "peer_id": "moon-v6", "local_id": "sun-v6"})
		for _, id := range []string{m4, s4, m6, s6} {
			e.waitConn(id, "ACTIVE", vpnTimeout)
		}
		t.Logf("four connections ACTIVE %s after the first POST", time.Since(start).Round(time.Millisecond))
		if _, ok := ping.Reach(20*time.Millisecond, reachTimeout); !ok {
			t.Error("first local subnet: no traffic through the endpoint-group tunnel")
		}
		ping2 := newPinger(t, vm2, p2.ip, sun.vmPort.ip)
		if _, ok := ping2.Reach(20*time.Millisecond, reachTimeout); !ok {
			t.Error("second local subnet: no traffic through the endpoint-group tunnel")
		}
		ping6 := newPinger(t, moon.vm, moon.vmIP6, sun.vmIP6)
		if _, ok := ping6.Reach(20*time.Millisecond, reachTimeout); !ok {
			t.Error("IPv6 in IPv4: no traffic")
		}

		// An endpoint-group change reaches the running charon: moon
		// protects only its first subnet now.
		e.update("ipsec_site_connection", m4, object{"local_ep_group_id": moonLocal1})
		if _, ok := stops(ping2, 5*time.Second); !ok {
			t.Error("the second subnet still reaches sun after leaving the local endpoint group")
			logXFRM(t, h, moon.router)
			logXFRM(t, h, sun.router)
		}
		e.waitConn(m4, "ACTIVE", vpnTimeout)
		if _, ok := ping.Reach(20*time.Millisecond, reachTimeout); !ok {
			t.Error("the first subnet lost the tunnel after the endpoint-group change")
		}

		// IPv6 in IPv6: the same inner networks over the external IPv6
		// addresses.
		e.deleteConn(m6)
		e.deleteConn(s6)
		if _, ok := stops(ping6, 5*time.Second); !ok {
			t.Error("IPv6 still passes 5s after its connections were deleted")
		}
		if _, ok := ping.Reach(20*time.Millisecond, time.Second); !ok {
			t.Error("deleting the IPv6 connections broke the IPv4 ones")
		}
		if moon.ext6 == "" || sun.ext6 == "" {
			t.Fatalf("no external_v6_ip: moon %q sun %q", moon.ext6, sun.ext6)
		}
		m66 := e.connection("moon-v6-in-v6", moonSvc2, ike, ipsec, sun.ext6, "k66",
			object{"local_ep_group_id": moonLocal6, "peer_ep_group_id": moonPeer6})
		s66 := e.connection("sun-v6-in-v6", sunSvc2, ike, ipsec, moon.ext6, "k66",
			object{"local_ep_group_id": sunLocal6, "peer_ep_group_id": sunPeer6})
		e.waitConn(m66, "ACTIVE", vpnTimeout)
		e.waitConn(s66, "ACTIVE", vpnTimeout)
		if _, ok := ping6.Reach(20*time.Millisecond, reachTimeout); !ok {
			t.Error("IPv6 in IPv6: no traffic")
		}
	})
}

// underlay joins two hosts with a veth carrying their underlay addresses.
func underlay(t *testing.T, a, b *host) {
	t.Helper()
	if err := a.nl.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "ul0"}, PeerName: "ul0",
		PeerNamespace: netlink.NsFd(b.ns)}); err != nil {
		t.Fatalf("underlay veth: %v", err)
	}
	for _, h := range []*host{a, b} {
		ul, err := h.nl.LinkByName("ul0")
		if err == nil {
			err = h.nl.AddrAdd(ul, &netlink.Addr{IPNet: &net.IPNet{IP: h.underlay.AsSlice(), Mask: net.CIDRMask(24, 32)}})
		}
		if err == nil {
			err = h.nl.LinkSetUp(ul)
		}
		if err != nil {
			t.Fatalf("%s: underlay: %v", h.name, err)
		}
	}
}

// agentID returns the id of a host's L3 agent.
func (e *env) agentID(h *host) string {
	e.t.Helper()
	agents := e.call("GET", "/v2.0/agents?host="+h.name+"&agent_type="+url.QueryEscape(agentv1.AgentTypeL3), nil, http.StatusOK)["agents"].([]any)
	if len(agents) != 1 {
		e.t.Fatalf("host %s: %d agents", h.name, len(agents))
	}
	return agents[0].(map[string]any)["id"].(string)
}

// TestVPNRouterMoves: a router that moves to another agent takes its VPN
// with it: its charon stops on the old host and starts on the new one,
// and the tunnel comes back.
func TestVPNRouterMoves(t *testing.T) {
	testenv.RequireCharon(t)
	routerMoves(t, routerVPN{driver: "strongSwan", dir: "ipsec", ike: object{"name": "ike"},
		service: func(e *env, s *site, name string) string { return e.vpnService(s, name, s.subnet) },
		pid:     func(h *host, router string) int { return h.vpn.Pid(router) }})
}

// routerVPN is how a test makes a router's VPN service of one device
// driver and finds that router's IKE daemon.
type routerVPN struct {
	driver, dir string // the daemon's name in messages; its state directory under the agent's
	ike         object
	service     func(e *env, s *site, name string) string
	pid         func(h *host, router string) int // 0: no daemon for the router on h
}

// routerMoves: a router with an ACTIVE tunnel moves to another agent
// (DELETE and POST l3-routers) and takes its VPN along: its IKE daemon
// starts there, the tunnel is ACTIVE and carries traffic again, and
// nothing of it is left on the first host.
func routerMoves(t *testing.T, d routerVPN) {
	e := newEnv(t)
	h1, h2 := e.newHost("node-1", netip.MustParseAddr("192.0.2.1")), e.newHost("node-2", netip.MustParseAddr("192.0.2.2"))
	underlay(t, h1, h2)
	h1.startAgent()
	h1.waitRegistered()
	ext := e.network("public", true)
	e.subnet(ext, "172.24.4.0/24", nil)
	moon, sun := e.newSite(h1, "moon", ext, 1), e.newSite(h1, "sun", ext, 2)
	e.plugAll(h1, []port{moon.vmPort, sun.vmPort}, []*vmNS{moon.vm, sun.vm})
	h2.startAgent() // after the routers were scheduled: both are on node-1
	h2.waitRegistered()

	ike := e.create("ikepolicy", d.ike)["id"].(string)
	ipsec := e.create("ipsecpolicy", object{"name": "esp"})["id"].(string)
	moonSvc, sunSvc := d.service(e, moon, "moon-vpn"), d.service(e, sun, "sun-vpn")
	moonConn := e.connection("m", moonSvc, ike, ipsec, sun.ext4, "k", object{"peer_cidrs": []any{sun.cidr}})
	sunConn := e.connection("s", sunSvc, ike, ipsec, moon.ext4, "k", object{"peer_cidrs": []any{moon.cidr}})
	e.waitConn(moonConn, "ACTIVE", vpnTimeout)
	e.waitConn(sunConn, "ACTIVE", vpnTimeout)
	ping := newPinger(t, moon.vm, moon.vmPort.ip, sun.vmPort.ip)
	if _, ok := ping.Reach(20*time.Millisecond, reachTimeout); !ok {
		t.Fatal("no traffic through the tunnel before the move")
	}
	if d.pid(h1, moon.router) == 0 {
		t.Fatalf("moon's %s is not on node-1", d.driver)
	}

	start := time.Now()
	e.call("DELETE", "/v2.0/agents/"+e.agentID(h1)+"/l3-routers/"+moon.router, nil, http.StatusNoContent)
	e.call("POST", "/v2.0/agents/"+e.agentID(h2)+"/l3-routers", object{"router_id": moon.router}, http.StatusCreated)
	for deadline := time.Now().Add(vpnTimeout); d.pid(h2, moon.router) == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("moon's %s did not start on node-2", d.driver)
		}
	}
	e.waitConn(moonConn, "ACTIVE", vpnTimeout)
	if _, ok := ping.Reach(20*time.Millisecond, reachTimeout); !ok {
		t.Fatal("no traffic through the tunnel after the move")
	}
	t.Logf("router moved to node-2: tunnel carries traffic again %s after the move", time.Since(start).Round(time.Millisecond))
	if p := d.pid(h1, moon.router); p != 0 {
		t.Errorf("moon's %s %d still runs on node-1", d.driver, p)
	}
	if _, err := os.Stat(filepath.Join(h1.state, d.dir, moon.router)); !os.IsNotExist(err) {
		t.Errorf("moon's IKE state is still on node-1: %v", err)
	}
}

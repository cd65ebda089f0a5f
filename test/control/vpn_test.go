package control_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/neutrino-net/neutrino/internal/httpapi"
	"github.com/neutrino-net/neutrino/internal/metrics"
	"github.com/neutrino-net/neutrino/internal/service"
	"github.com/neutrino-net/neutrino/internal/store/sqlstore/sqltest"
)

// drainHints forgets the hints received so far.
func (a *fakeAgent) drainHints() {
	for {
		select {
		case <-a.hints:
		default:
			return
		}
	}
}

// routerHint waits (briefly: hints are the fast path) for a hint that
// names router; a full resync hint does not count.
func (a *fakeAgent) routerHint(router string) {
	a.t.Helper()
	timeout := time.After(2 * time.Second)
	for {
		select {
		case h := <-a.hints:
			if slices.Contains(h.RouterIDs, router) {
				return
			}
		case <-timeout:
			a.t.Fatalf("%s: no hint naming router %s", a.host, router)
		}
	}
}

// noRouterHint fails if a hint naming router arrived.
func (a *fakeAgent) noRouterHint(router string) {
	a.t.Helper()
	for {
		select {
		case h := <-a.hints:
			if slices.Contains(h.RouterIDs, router) {
				a.t.Fatalf("%s got a hint for router %s that it does not host", a.host, router)
			}
		default:
			return
		}
	}
}

// rawState asks for the host state and returns the bus message as is.
func (a *fakeAgent) rawState() []byte {
	a.t.Helper()
	data, _ := json.Marshal(agentv1.SyncRequest{Host: a.host})
	m, err := a.nc.Request(agentv1.SyncSubject(a.host), data, 5*time.Second)
	if err != nil {
		a.t.Fatal(err)
	}
	return m.Data
}

func routerOf(t *testing.T, st agentv1.HostState, id string) agentv1.Router {
	t.Helper()
	for _, r := range st.Routers {
		if r.ID == id {
			return r
		}
	}
	t.Fatalf("router %s not in %s's state", id, st.Host)
	return agentv1.Router{}
}

// TestVPNDeviceDriverProtocol drives the server side of the VPN device
// driver protocol over the real bus: the VPN part of a host's desired
// state (legacy and endpoint-group mode, IPv4, IPv6 and FQDN peers, PSKs
// through the bus encoding), hints on VPN changes, and status reports
// that only the router's host may make.
func TestVPNDeviceDriverProtocol(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, dialect string) {
		m := metrics.New()
		outcomes := make(chan service.ReportOutcome, 64)
		e := newEnv(t, dialect, withService(func(o *service.Options) {
			o.Resolve = func(_ context.Context, host string) ([]netip.Addr, error) {
				if host == "peer6.example.org" {
					return []netip.Addr{netip.MustParseAddr("2001:db8:ffff::7")}, nil
				}
				return nil, errors.New("no such host")
			}
			o.ObserveReport = func(r service.ReportOutcome) {
				m.ObserveReport(r)
				outcomes <- r
			}
		}), withAPI(func(a *httpapi.Options) { a.Observe, a.Metrics = m.ObserveRequest, m.Handler() }))
		post := func(path, key string, body map[string]any) string {
			t.Helper()
			return e.id("POST", path, map[string]any{key: body}, key)
		}

		// host-1 registers first and gets the router; host-2 hosts nothing.
		h1 := e.agent("host-1", "192.0.2.1")
		var list agentList
		eventually(t, "host-1 registered", func() bool {
			e.call("GET", "/v2.0/agents", nil, 200, &list)
			return len(list.Agents) == 1 && list.Agents[0].Alive
		})
		ext := post("/v2.0/networks", "network", map[string]any{"name": "public", "router:external": true})
		post("/v2.0/subnets", "subnet", map[string]any{"network_id": ext, "ip_version": 4, "cidr": "203.0.113.0/24"})
		post("/v2.0/subnets", "subnet", map[string]any{"network_id": ext, "ip_version": 6, "cidr": "2001:db8:e::/64"})
		net := post("/v2.0/networks", "network", map[string]any{"name": "a"})
		sub4 := post("/v2.0/subnets", "subnet", map[string]any{"network_id": net, "ip_version": 4, "cidr": "10.0.0.0/24"})
		net6 := post("/v2.0/networks", "network", map[string]any{"name": "b"})
		sub6 := post("/v2.0/subnets", "subnet", map[string]any{"network_id": net6, "ip_version": 6, "cidr": "fd00:1::/64"})
		var rt struct {
			Router struct {
				ID string
				Gw struct {
					ExternalFixedIPs []struct {
						IPAddress string `json:"ip_address"`
					} `json:"external_fixed_ips"`
				} `json:"external_gateway_info"`
			}
		}
		e.call("POST", "/v2.0/routers", map[string]any{"router": map[string]any{"name": "r",
			"external_gateway_info": map[string]any{"network_id": ext}}}, 201, &rt)
		router := rt.Router.ID
		var gw4, gw6 string
		for _, ip := range rt.Router.Gw.ExternalFixedIPs {
			if strings.Contains(ip.IPAddress, ":") {
				gw6 = ip.IPAddress
			} else {
				gw4 = ip.IPAddress
			}
		}
		if gw4 == "" || gw6 == "" {
			t.Fatalf("gateway addresses %+v", rt.Router.Gw)
		}
		h1.routerHint(router)
		e.call("PUT", "/v2.0/routers/"+router+"/add_router_interface", map[string]any{"subnet_id": sub4}, 200, nil)
		e.call("PUT", "/v2.0/routers/"+router+"/add_router_interface", map[string]any{"subnet_id": sub6}, 200, nil)
		h1.beat("192.0.2.1")
		h2 := e.agent("host-2", "192.0.2.2")
		eventually(t, "host-2 registered", func() bool {
			e.call("GET", "/v2.0/agents", nil, 200, &list)
			return len(list.Agents) == 2
		})
		var l3 agentList
		e.call("GET", "/v2.0/routers/"+router+"/l3-agents", nil, 200, &l3)
		if len(l3.Agents) != 1 || l3.Agents[0].Host != "host-1" {
			t.Fatalf("router's agents = %+v", l3)
		}

		ike := post("/v2.0/vpn/ikepolicies", "ikepolicy", map[string]any{"name": "ike", "auth_algorithm": "sha256",
			"encryption_algorithm": "aes-256", "ike_version": "v2", "pfs": "group14", "phase1_negotiation_mode": "main",
			"lifetime": map[string]any{"units": "seconds", "value": 7200}})
		ipsec := post("/v2.0/vpn/ipsecpolicies", "ipsecpolicy", map[string]any{"name": "ipsec", "auth_algorithm": "sha512",
			"encryption_algorithm": "aes-128-gcm-16", "pfs": "group19", "encapsulation_mode": "tunnel", "transform_protocol": "esp",
			"lifetime": map[string]any{"units": "seconds", "value": 1800}})
		var flavors struct{ Flavors []struct{ ID, Name string } }
		e.call("GET", "/v2.0/flavors", nil, 200, &flavors)
		var libreswan string
		for _, f := range flavors.Flavors {
			if f.Name == "libreswan" {
				libreswan = f.ID
			}
		}

		// VPN service create: a hint to the router's host, none to others.
		h1.drainHints()
		h2.drainHints()
		// All of the router's services use the libreswan provider: a
		// router's services share one device driver (the API refuses a
		// mix), and the state must carry the provider and driver.
		legacy := post("/v2.0/vpn/vpnservices", "vpnservice", map[string]any{"name": "legacy", "router_id": router, "subnet_id": sub4, "flavor_id": libreswan})
		h1.routerHint(router)
		idle := post("/v2.0/vpn/vpnservices", "vpnservice", map[string]any{"name": "idle", "router_id": router, "subnet_id": sub4, "flavor_id": libreswan})
		h1.routerHint(router)
		groups := post("/v2.0/vpn/vpnservices", "vpnservice", map[string]any{"name": "groups", "router_id": router, "flavor_id": libreswan})
		h1.routerHint(router)
		local := post("/v2.0/vpn/endpoint-groups", "endpoint_group", map[string]any{"type": "subnet", "endpoints": []string{sub6}})
		peer := post("/v2.0/vpn/endpoint-groups", "endpoint_group", map[string]any{"type": "cidr", "endpoints": []string{"fd00:99::/64", "fd00:98::/64"}})

		// Connection create: hinted.
		h1.drainHints()
		c1 := post("/v2.0/vpn/ipsec-site-connections", "ipsec_site_connection", map[string]any{"vpnservice_id": legacy,
			"ikepolicy_id": ike, "ipsecpolicy_id": ipsec, "peer_address": "192.0.2.10", "peer_id": "right@example.org",
			"local_id": "left@example.org", "psk": `s3cr3t "psk" ü`, "peer_cidrs": []string{"192.168.10.0/24", "192.168.11.0/24"},
			"dpd": map[string]any{"action": "restart", "interval": 10, "timeout": 40}, "initiator": "response-only", "mtu": 1400})
		h1.routerHint(router)
		c2 := post("/v2.0/vpn/ipsec-site-connections", "ipsec_site_connection", map[string]any{"vpnservice_id": groups,
			"ikepolicy_id": ike, "ipsecpolicy_id": ipsec, "peer_address": "peer6.example.org", "peer_id": "peer6.example.org",
			"psk": "psk-two", "local_ep_group_id": local, "peer_ep_group_id": peer})
		h1.routerHint(router)
		c3 := post("/v2.0/vpn/ipsec-site-connections", "ipsec_site_connection", map[string]any{"vpnservice_id": groups,
			"ikepolicy_id": ike, "ipsecpolicy_id": ipsec, "peer_address": "2001:db8:ffff::8", "peer_id": "2001:db8:ffff::8",
			"psk": "psk-three", "local_ep_group_id": local, "peer_ep_group_id": peer, "admin_state_up": false})
		h1.routerHint(router)
		time.Sleep(50 * time.Millisecond)
		h2.noRouterHint(router)

		// The state, through the bus encoding: PSKs travel in the secrets
		// map only, once each.
		raw := h1.rawState()
		if !strings.Contains(string(raw), `"secrets"`) || strings.Count(string(raw), "psk-two") != 1 || strings.Contains(string(raw), `"psk"`) {
			t.Fatalf("bus encoding of the state: %s", raw)
		}
		var st agentv1.HostState
		if err := json.Unmarshal(raw, &st); err != nil {
			t.Fatal(err)
		}
		ikeWant := agentv1.IKEPolicy{AuthAlgorithm: "sha256", EncryptionAlgorithm: "aes-256", Phase1NegotiationMode: "main",
			IKEVersion: "v2", PFS: "group14", LifetimeSeconds: 7200}
		ipsecWant := agentv1.IPsecPolicy{TransformProtocol: "esp", AuthAlgorithm: "sha512", EncryptionAlgorithm: "aes-128-gcm-16",
			EncapsulationMode: "tunnel", PFS: "group19", LifetimeSeconds: 1800}
		egConns := []agentv1.IPsecConnection{
			{ID: c2, LocalAddress: gw6, PeerAddress: "2001:db8:ffff::7", PeerID: "peer6.example.org", PSK: "psk-two",
				LocalCIDRs: []string{"fd00:1::/64"}, PeerCIDRs: []string{"fd00:99::/64", "fd00:98::/64"}, IKE: ikeWant, IPsec: ipsecWant,
				DPD: agentv1.DPD{Action: "hold", Interval: 30, Timeout: 120}, Initiator: "bi-directional", AdminStateUp: true, MTU: 1500},
			{ID: c3, LocalAddress: gw6, PeerAddress: "2001:db8:ffff::8", PeerID: "2001:db8:ffff::8", PSK: "psk-three",
				LocalCIDRs: []string{"fd00:1::/64"}, PeerCIDRs: []string{"fd00:99::/64", "fd00:98::/64"}, IKE: ikeWant, IPsec: ipsecWant,
				DPD: agentv1.DPD{Action: "hold", Interval: 30, Timeout: 120}, Initiator: "bi-directional", AdminStateUp: false, MTU: 1500},
		}
		slices.SortFunc(egConns, func(a, b agentv1.IPsecConnection) int { return strings.Compare(a.ID, b.ID) })
		want := []agentv1.VPNService{
			{ID: legacy, Provider: "libreswan", Driver: "libreswan", AdminStateUp: true, ExternalV4IP: gw4, ExternalV6IP: gw6,
				Connections: []agentv1.IPsecConnection{{ID: c1, LocalAddress: gw4, PeerAddress: "192.0.2.10",
					LocalID: "left@example.org", PeerID: "right@example.org", PSK: `s3cr3t "psk" ü`,
					LocalCIDRs: []string{"10.0.0.0/24"}, PeerCIDRs: []string{"192.168.10.0/24", "192.168.11.0/24"},
					IKE: ikeWant, IPsec: ipsecWant, DPD: agentv1.DPD{Action: "restart", Interval: 10, Timeout: 40},
					Initiator: "response-only", AdminStateUp: true, MTU: 1400}}},
			{ID: groups, Provider: "libreswan", Driver: "libreswan", AdminStateUp: true, ExternalV4IP: gw4, ExternalV6IP: gw6,
				Connections: egConns},
		}
		slices.SortFunc(want, func(a, b agentv1.VPNService) int { return strings.Compare(a.ID, b.ID) })
		got := routerOf(t, st, router).VPNServices
		if d := cmp.Diff(want, got); d != "" {
			t.Fatalf("VPN services in host-1's state (-want +got):\n%s", d)
		}
		for _, v := range got {
			if v.ID == idle {
				t.Fatalf("service %s without connections is in the state", idle)
			}
		}
		if len(h2.state().Routers) != 0 {
			t.Fatal("host-2 got routers")
		}

		// Status reports. host-2 does not host the router: its report
		// changes nothing.
		type conn struct {
			IPsecSiteConnection map[string]any `json:"ipsec_site_connection"`
		}
		type svc struct{ Vpnservice map[string]any }
		getConn := func(id string) map[string]any {
			var c conn
			e.call("GET", "/v2.0/vpn/ipsec-site-connections/"+id, nil, 200, &c)
			return c.IPsecSiteConnection
		}
		getSvc := func(id string) map[string]any {
			var s svc
			e.call("GET", "/v2.0/vpn/vpnservices/"+id, nil, 200, &s)
			return s.Vpnservice
		}
		waitOutcome := func() service.ReportOutcome {
			t.Helper()
			select {
			case o := <-outcomes:
				return o
			case <-time.After(5 * time.Second):
				t.Fatal("no status report applied")
				return service.ReportOutcome{}
			}
		}
		h2.publish(agentv1.StatusSubject("host-2"), agentv1.StatusReport{VPNServices: map[string]agentv1.VPNStatus{
			legacy: {Status: "ACTIVE", Connections: map[string]agentv1.ConnectionStatus{c1: {Status: "ACTIVE"}}}}})
		if o := waitOutcome(); o.Err != nil || o.VPNApplied != 0 || o.VPNIgnored != 1 {
			t.Fatalf("host-2's report: %+v", o)
		}
		if c := getConn(c1); c["status"] != "PENDING_CREATE" {
			t.Fatalf("host-2 changed %s: %v", c1, c)
		}
		var gwPort struct{ Ports []map[string]any }
		e.call("GET", "/v2.0/ports?device_id="+router+"&device_owner=network:router_gateway", nil, 200, &gwPort)
		if len(gwPort.Ports) != 1 {
			t.Fatalf("gateway ports = %v", gwPort.Ports)
		}
		portBefore := gwPort.Ports[0]

		// host-1's report: ACTIVE in GET quickly, the reason where DOWN.
		start := time.Now()
		h1.publish(agentv1.StatusSubject("host-1"), agentv1.StatusReport{VPNServices: map[string]agentv1.VPNStatus{
			legacy: {Status: "ACTIVE", Connections: map[string]agentv1.ConnectionStatus{c1: {Status: "ACTIVE", Reason: "ignored when ACTIVE"}}},
			groups: {Status: "ACTIVE", Connections: map[string]agentv1.ConnectionStatus{
				c2: {Status: "ACTIVE"}, c3: {Status: "DOWN", Reason: "AUTHENTICATION_FAILED"}}},
		}})
		eventually(t, "connection ACTIVE", func() bool { return getConn(c1)["status"] == "ACTIVE" })
		if d := time.Since(start); d > time.Second {
			t.Errorf("report to ACTIVE in GET took %v", d)
		}
		if o := waitOutcome(); o.Err != nil || o.VPNApplied != 2 || o.VPNIgnored != 0 {
			t.Fatalf("host-1's report: %+v", o)
		}
		if c := getConn(c1); c["status_reason"] != nil {
			t.Errorf("ACTIVE connection's status_reason = %v, want null", c["status_reason"])
		}
		for id, want := range map[string]string{legacy: "ACTIVE", groups: "ACTIVE", idle: "DOWN"} {
			if s := getSvc(id); s["status"] != want {
				t.Errorf("service %s status = %v, want %s", id, s["status"], want)
			}
		}
		if c := getConn(c2); c["status"] != "ACTIVE" {
			t.Errorf("%s = %v", c2, c)
		}
		if c := getConn(c3); c["status"] != "DOWN" || c["status_reason"] != "AUTHENTICATION_FAILED" {
			t.Errorf("%s = %v", c3, c)
		}
		// A VPN-only report leaves the router's ports alone.
		e.call("GET", "/v2.0/ports?device_id="+router+"&device_owner=network:router_gateway", nil, 200, &gwPort)
		if after := gwPort.Ports[0]; after["status"] != portBefore["status"] || after["binding:host_id"] != portBefore["binding:host_id"] ||
			after["revision_number"] != portBefore["revision_number"] {
			t.Errorf("gateway port changed by a VPN report: %v -> %v", portBefore, after)
		}

		// The tunnel fails: DOWN with the driver's reason, filterable.
		h1.publish(agentv1.StatusSubject("host-1"), agentv1.StatusReport{VPNServices: map[string]agentv1.VPNStatus{
			legacy: {Status: "DOWN", Connections: map[string]agentv1.ConnectionStatus{c1: {Status: "DOWN", Reason: "NO_PROPOSAL_CHOSEN"}}}}})
		eventually(t, "connection DOWN", func() bool { return getConn(c1)["status"] == "DOWN" })
		if c := getConn(c1); c["status_reason"] != "NO_PROPOSAL_CHOSEN" {
			t.Errorf("status_reason = %v", c["status_reason"])
		}
		if s := getSvc(legacy); s["status"] != "DOWN" {
			t.Errorf("service = %v", s)
		}
		var byReason struct {
			Conns []map[string]any `json:"ipsec_site_connections"`
		}
		e.call("GET", "/v2.0/vpn/ipsec-site-connections?status_reason=NO_PROPOSAL_CHOSEN", nil, 200, &byReason)
		if len(byReason.Conns) != 1 || byReason.Conns[0]["id"] != c1 {
			t.Errorf("filter by status_reason = %v", byReason.Conns)
		}

		// Connection update and delete, service update and delete: hinted,
		// and the state follows.
		h1.drainHints()
		e.call("PUT", "/v2.0/vpn/ipsec-site-connections/"+c1, map[string]any{"ipsec_site_connection": map[string]any{
			"psk": "n3w-psk", "peer_cidrs": []string{"192.168.12.0/24"}}}, 200, nil)
		h1.routerHint(router)
		c1State := routerOf(t, h1.state(), router).VPNServices
		if i := slices.IndexFunc(c1State, func(v agentv1.VPNService) bool { return v.ID == legacy }); i < 0 ||
			c1State[i].Connections[0].PSK != "n3w-psk" || !slices.Equal(c1State[i].Connections[0].PeerCIDRs, []string{"192.168.12.0/24"}) {
			t.Fatalf("state after the update: %+v", c1State)
		}
		e.call("DELETE", "/v2.0/vpn/ipsec-site-connections/"+c3, nil, 204, nil)
		h1.routerHint(router)
		e.call("PUT", "/v2.0/vpn/vpnservices/"+legacy, map[string]any{"vpnservice": map[string]any{"admin_state_up": false}}, 200, nil)
		h1.routerHint(router)
		e.call("DELETE", "/v2.0/vpn/vpnservices/"+idle, nil, 204, nil)
		h1.routerHint(router)
		got = routerOf(t, h1.state(), router).VPNServices
		if len(got) != 2 {
			t.Fatalf("services after the changes: %+v", got)
		}
		for _, v := range got {
			switch v.ID {
			case legacy:
				if v.AdminStateUp {
					t.Errorf("legacy service still admin up")
				}
			case groups:
				if len(v.Connections) != 1 || v.Connections[0].ID != c2 {
					t.Errorf("groups service connections = %+v", v.Connections)
				}
			}
		}
		e.call("DELETE", "/v2.0/vpn/ipsec-site-connections/"+c1, nil, 204, nil)
		h1.routerHint(router)
		got = routerOf(t, h1.state(), router).VPNServices
		if len(got) != 1 || got[0].ID != groups {
			t.Fatalf("a service whose last connection went is still in the state: %+v", got)
		}
		time.Sleep(50 * time.Millisecond)
		h2.noRouterHint(router)

		// The reports show in the server's metrics.
		resp, err := http.Get(e.api + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, line := range []string{
			`neutrino_agent_status_reports_total{result="applied"} 3`,
			`neutrino_agent_vpn_service_reports_total{result="applied"} 3`,
			`neutrino_agent_vpn_service_reports_total{result="ignored"} 1`,
		} {
			if !strings.Contains(string(body), line+"\n") {
				t.Errorf("metrics lack %q", line)
			}
		}
		if t.Failed() {
			t.Logf("metrics:\n%s", body)
		}
	})
}

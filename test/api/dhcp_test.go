package api_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/neutrino-net/neutrino/internal/service"
	"github.com/neutrino-net/neutrino/internal/store/sqlstore/sqltest"
)

// TestDHCPAgentScheduler drives the DHCP ports and the dhcp_agent_scheduler
// extension: a network with a DHCP subnet is scheduled to the least loaded
// alive DHCP agent, which gets the reference's DHCP port with an address on
// each DHCP subnet; the admin API lists, adds and removes with the
// reference's faults and admin-only policy; the ports go with DHCP.
func TestDHCPAgentScheduler(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, dialect string) {
		var clockMu sync.Mutex
		now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		hints := &hintLog{}
		e := newEnv(t, dialect, func(o *service.Options) {
			o.Now = func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return now }
			o.Hint = hints.record
		})
		ctx := context.Background()
		agentID := func(host, typ string) string {
			t.Helper()
			r := e.do("GET", "/v2.0/agents?host="+host, "", nil)
			for _, a := range r.body["agents"].([]any) {
				if m := a.(map[string]any); m["agent_type"] == typ {
					return m["id"].(string)
				}
			}
			t.Fatalf("no %s on %s: %s", typ, host, r.raw)
			return ""
		}
		beat := func(host, typ string) string {
			t.Helper()
			if _, err := e.svc.Heartbeat(ctx, agentv1.Heartbeat{Host: host, AgentType: typ}); err != nil {
				t.Fatal(err)
			}
			return agentID(host, typ)
		}
		post := func(path string, body any, want int) map[string]any {
			t.Helper()
			r := e.do("POST", path, "", body)
			if r.status != want {
				t.Fatalf("POST %s = %d %s, want %d", path, r.status, r.raw, want)
			}
			return r.body
		}
		dhcpPorts := func(network string) []map[string]any {
			t.Helper()
			r := e.do("GET", "/v2.0/ports?device_owner=network:dhcp&network_id="+network, "", nil)
			var out []map[string]any
			for _, p := range r.body["ports"].([]any) {
				out = append(out, p.(map[string]any))
			}
			return out
		}
		hostsOf := func(network string) []string {
			t.Helper()
			r := e.do("GET", "/v2.0/networks/"+network+"/dhcp-agents", "", nil)
			if r.status != 200 {
				t.Fatalf("dhcp-agents = %d %s", r.status, r.raw)
			}
			var out []string
			for _, a := range r.body["agents"].([]any) {
				out = append(out, a.(map[string]any)["host"].(string))
			}
			slices.Sort(out)
			return out
		}
		networksOn := func(agent string) []string {
			t.Helper()
			r := e.do("GET", "/v2.0/agents/"+agent+"/dhcp-networks", "", nil)
			if r.status != 200 {
				t.Fatalf("dhcp-networks = %d %s", r.status, r.raw)
			}
			out := []string{}
			for _, n := range r.body["networks"].([]any) {
				out = append(out, n.(map[string]any)["id"].(string))
			}
			return out
		}

		a := beat("host-a", agentv1.AgentTypeDHCP)
		b := beat("host-b", agentv1.AgentTypeDHCP)
		l3 := beat("host-a", agentv1.AgentTypeL3)
		if r := e.do("GET", "/v2.0/agents/"+a, "", nil); r.body["agent"].(map[string]any)["topic"] != "dhcp_agent" {
			t.Errorf("DHCP agent topic: %s", r.raw)
		}

		// A network without subnets, then with a DHCP-less subnet: nothing.
		n1 := post("/v2.0/networks", map[string]any{"network": map[string]any{"name": "n1"}}, 201)["network"].(map[string]any)["id"].(string)
		post("/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": n1, "cidr": "10.1.0.0/24", "ip_version": 4,
			"enable_dhcp": false}}, 201)
		if got := dhcpPorts(n1); len(got) != 0 || len(hostsOf(n1)) != 0 {
			t.Fatalf("DHCP-less network has DHCP ports %v, agents %v", got, hostsOf(n1))
		}
		// A DHCP subnet: scheduled to one agent (the oldest of the equally
		// loaded), whose DHCP port has an address on the DHCP subnets only.
		hints.take()
		s2 := post("/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": n1, "cidr": "10.2.0.0/24", "ip_version": 4}}, 201)["subnet"].(map[string]any)["id"].(string)
		if got := hostsOf(n1); !slices.Equal(got, []string{"host-a"}) {
			t.Fatalf("n1 served by %v, want host-a", got)
		}
		if got := hints.take(); !slices.Contains(got, "host-a: full") {
			t.Errorf("hints after the DHCP subnet: %v, want host-a told", got)
		}
		ports := dhcpPorts(n1)
		if len(ports) != 1 {
			t.Fatalf("DHCP ports %v", ports)
		}
		p := ports[0]
		wantDev := service.DHCPDeviceID("host-a", n1)
		if p["device_id"] != wantDev || p["binding:host_id"] != "host-a" || p["device_owner"] != "network:dhcp" {
			t.Errorf("DHCP port device_id %v host %v owner %v, want %s host-a network:dhcp", p["device_id"], p["binding:host_id"], p["device_owner"], wantDev)
		}
		if ips := p["fixed_ips"].([]any); len(ips) != 1 || ips[0].(map[string]any)["subnet_id"] != s2 {
			t.Errorf("DHCP port fixed_ips %v, want one on %s", ips, s2)
		}
		// The next network goes to the less loaded agent.
		n2 := post("/v2.0/networks", map[string]any{"network": map[string]any{"name": "n2"}}, 201)["network"].(map[string]any)["id"].(string)
		post("/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": n2, "cidr": "10.3.0.0/24", "ip_version": 4}}, 201)
		if got := hostsOf(n2); !slices.Equal(got, []string{"host-b"}) {
			t.Fatalf("n2 served by %v, want host-b", got)
		}
		if got := networksOn(a); !slices.Equal(got, []string{n1}) {
			t.Fatalf("host-a networks %v", got)
		}

		// Admin API: add n1 to host-b too (beyond dhcp_agents_per_network).
		if r := e.do("POST", "/v2.0/agents/"+b+"/dhcp-networks", "", map[string]any{"network_id": n1}); r.status != 201 || strings.TrimSpace(r.raw) != "null" {
			t.Fatalf("POST dhcp-networks = %d %q", r.status, r.raw)
		}
		if got := hostsOf(n1); !slices.Equal(got, []string{"host-a", "host-b"}) || len(dhcpPorts(n1)) != 2 {
			t.Fatalf("n1 on %v with %d DHCP ports after add", got, len(dhcpPorts(n1)))
		}
		fault := func(method, path string, body any, status int, typ, msg string) {
			t.Helper()
			r := e.do(method, path, "", body)
			gotTyp, gotMsg := r.fault()
			if r.status != status || gotTyp != typ || gotMsg != msg {
				t.Errorf("%s %s = %d %s %q, want %d %s %q", method, path, r.status, gotTyp, gotMsg, status, typ, msg)
			}
		}
		fault("POST", "/v2.0/agents/"+b+"/dhcp-networks", map[string]any{"network_id": n1}, 409, "NetworkHostedByDHCPAgent",
			fmt.Sprintf("The network %s has been already hosted by the DHCP Agent %s.", n1, b))
		fault("POST", "/v2.0/agents/"+l3+"/dhcp-networks", map[string]any{"network_id": n1}, 404, "InvalidDHCPAgent",
			fmt.Sprintf("Agent %s is not a valid DHCP Agent or has been disabled", l3))
		missing := "00000000-0000-0000-0000-000000000000"
		fault("POST", "/v2.0/agents/"+b+"/dhcp-networks", map[string]any{"network_id": missing}, 404, "NetworkNotFound",
			fmt.Sprintf("Network %s could not be found.", missing))
		fault("POST", "/v2.0/agents/"+missing+"/dhcp-networks", map[string]any{"network_id": n1}, 404, "AgentNotFound",
			fmt.Sprintf("Agent %s could not be found.", missing))
		if r := e.do("POST", "/v2.0/agents/"+b+"/dhcp-networks", "", map[string]any{}); r.status != 400 {
			t.Errorf("POST without network_id = %d %s", r.status, r.raw)
		}

		// Remove: the agent's DHCP port goes; not hosted: conflict.
		if r := e.do("DELETE", "/v2.0/agents/"+a+"/dhcp-networks/"+n1, "", nil); r.status != 204 {
			t.Fatalf("DELETE = %d %s", r.status, r.raw)
		}
		if got := hostsOf(n1); !slices.Equal(got, []string{"host-b"}) {
			t.Fatalf("n1 on %v after remove", got)
		}
		if ps := dhcpPorts(n1); len(ps) != 1 || ps[0]["binding:host_id"] != "host-b" {
			t.Fatalf("DHCP ports after remove: %v", ps)
		}
		fault("DELETE", "/v2.0/agents/"+a+"/dhcp-networks/"+n1, nil, 409, "NetworkNotHostedByDhcpAgent",
			fmt.Sprintf("The network %s is not hosted by the DHCP agent %s.", n1, a))

		// Admin only: a member sees no agent, and no DHCP agents of its network.
		if r := e.do("GET", "/v2.0/agents/"+b+"/dhcp-networks", projectA, nil); r.status != 404 {
			t.Errorf("member GET dhcp-networks = %d %s", r.status, r.raw)
		}
		if r := e.do("POST", "/v2.0/agents/"+b+"/dhcp-networks", projectA, map[string]any{"network_id": n1}); r.status != 404 {
			t.Errorf("member POST dhcp-networks = %d %s", r.status, r.raw)
		}
		if r := e.do("DELETE", "/v2.0/agents/"+b+"/dhcp-networks/"+n1, projectA, nil); r.status != 404 {
			t.Errorf("member DELETE dhcp-networks = %d %s", r.status, r.raw)
		}

		// Deleting the DHCP subnet frees the DHCP port's address and the port.
		if r := e.do("DELETE", "/v2.0/subnets/"+s2, "", nil); r.status != 204 {
			t.Fatalf("DELETE subnet = %d %s", r.status, r.raw)
		}
		if ps := dhcpPorts(n1); len(ps) != 0 {
			t.Fatalf("DHCP ports after the DHCP subnet went: %v", ps)
		}
		// Deleting the network takes its DHCP port with it.
		if r := e.do("DELETE", "/v2.0/networks/"+n2, "", nil); r.status != 204 {
			t.Fatalf("DELETE network with only its DHCP port = %d %s", r.status, r.raw)
		}
		if got := networksOn(b); !slices.Equal(got, []string{n1}) {
			t.Fatalf("host-b networks after deleting n2: %v", got)
		}

		// A DHCP agent registering later gets the networks no alive agent serves.
		n3 := post("/v2.0/networks", map[string]any{"network": map[string]any{"name": "n3"}}, 201)["network"].(map[string]any)["id"].(string)
		clockMu.Lock()
		now = now.Add(time.Hour) // a and b are dead
		clockMu.Unlock()
		post("/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": n3, "cidr": "10.4.0.0/24", "ip_version": 4}}, 201)
		if got := hostsOf(n3); len(got) != 0 {
			t.Fatalf("n3 scheduled to dead agents %v", got)
		}
		beat("host-c", agentv1.AgentTypeDHCP)
		if got := hostsOf(n3); !slices.Equal(got, []string{"host-c"}) || len(dhcpPorts(n3)) != 1 {
			t.Fatalf("n3 on %v (%d DHCP ports) after host-c registered", got, len(dhcpPorts(n3)))
		}
	})
}

// TestExtraDHCPOpts: the extra_dhcp_opt extension's attribute on ports,
// stored, merged on update by name and IP version, and validated as the
// reference does.
func TestExtraDHCPOpts(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		n := e.do("POST", "/v2.0/networks", projectA, map[string]any{"network": map[string]any{"name": "n"}}).body["network"].(map[string]any)["id"].(string)
		r := e.do("POST", "/v2.0/ports", projectA, map[string]any{"port": map[string]any{"network_id": n, "extra_dhcp_opts": []any{
			map[string]any{"opt_name": "tftp-server", "opt_value": "192.0.2.9"},
			map[string]any{"opt_name": "bootfile-name", "opt_value": "pxelinux.0", "ip_version": 4},
			map[string]any{"opt_name": "dns-server", "opt_value": "[2001:db8::53]", "ip_version": 6},
		}}})
		if r.status != 201 {
			t.Fatalf("create = %d %s", r.status, r.raw)
		}
		id := r.body["port"].(map[string]any)["id"].(string)
		opts := func() []string {
			r := e.do("GET", "/v2.0/ports/"+id, projectA, nil)
			var out []string
			for _, o := range r.body["port"].(map[string]any)["extra_dhcp_opts"].([]any) {
				m := o.(map[string]any)
				out = append(out, fmt.Sprintf("%v=%v/%v", m["opt_name"], m["opt_value"], m["ip_version"]))
			}
			slices.Sort(out)
			return out
		}
		want := []string{"bootfile-name=pxelinux.0/4", "dns-server=[2001:db8::53]/6", "tftp-server=192.0.2.9/4"}
		if got := opts(); !slices.Equal(got, want) {
			t.Fatalf("opts = %v, want %v", got, want)
		}
		// Update: replace one, remove one (null value), add one, keep the rest.
		r = e.do("PUT", "/v2.0/ports/"+id, projectA, map[string]any{"port": map[string]any{"extra_dhcp_opts": []any{
			map[string]any{"opt_name": "tftp-server", "opt_value": "192.0.2.10"},
			map[string]any{"opt_name": "bootfile-name", "opt_value": nil},
			map[string]any{"opt_name": "router", "opt_value": ""},
		}}})
		if r.status != 200 {
			t.Fatalf("update = %d %s", r.status, r.raw)
		}
		want = []string{"dns-server=[2001:db8::53]/6", "router=/4", "tftp-server=192.0.2.10/4"}
		if got := opts(); !slices.Equal(got, want) {
			t.Fatalf("opts after update = %v, want %v", got, want)
		}
		bad := []struct {
			opt  any
			frag string
		}{
			{map[string]any{"opt_value": "x"}, "Validation of dictionary's keys failed"},
			{map[string]any{"opt_name": "tftp-server"}, "Validation of dictionary's keys failed"},
			{map[string]any{"opt_name": "", "opt_value": "x"}, "Blank strings are not permitted"},
			{map[string]any{"opt_name": "tftp-server", "opt_value": ""}, "Blank strings are not permitted"},
			{map[string]any{"opt_name": strings.Repeat("a", 65), "opt_value": "x"}, "exceeds maximum length of 64"},
			{map[string]any{"opt_name": "a", "opt_value": strings.Repeat("v", 256)}, "exceeds maximum length of 255"},
			{map[string]any{"opt_name": "a", "opt_value": "x", "ip_version": 5}, "5 is not in [4, 6]"},
			{map[string]any{"opt_name": "a", "opt_value": "x", "ip_version": "four"}, "is not an integer"},
			{map[string]any{"opt_name": "a", "opt_value": "x", "bogus": 1}, "Unexpected keys supplied: bogus"},
			{"tftp-server", "is not a dictionary"},
		}
		for _, c := range bad {
			r := e.do("PUT", "/v2.0/ports/"+id, projectA, map[string]any{"port": map[string]any{"extra_dhcp_opts": []any{c.opt}}})
			typ, msg := r.fault()
			if r.status != 400 || typ != "HTTPBadRequest" || !strings.Contains(msg, "Invalid input for extra_dhcp_opts") || !strings.Contains(msg, c.frag) {
				t.Errorf("%v: %d %s %q, want 400 with %q", c.opt, r.status, typ, msg, c.frag)
			}
		}
		if got := opts(); !slices.Equal(got, want) {
			t.Fatalf("opts after refused updates = %v, want %v", got, want)
		}
		if r := e.do("GET", "/v2.0/extensions/extra_dhcp_opt", "", nil); r.status != 200 {
			t.Errorf("extension extra_dhcp_opt = %d", r.status)
		}
		if r := e.do("GET", "/v2.0/extensions/dhcp_agent_scheduler", "", nil); r.status != 200 ||
			r.body["extension"].(map[string]any)["name"] != "DHCP Agent Scheduler" {
			t.Errorf("extension dhcp_agent_scheduler = %d %s", r.status, r.raw)
		}
	})
}

package api_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/neutrino-net/neutrino/internal/store/sqlstore/sqltest"
)

// create POSTs one resource as project ("" is the noauth admin) and
// returns its id, failing the test unless it is created.
func (e *env) create(project, coll string, attrs map[string]any) string {
	e.t.Helper()
	return e.createAs(project, coll, strings.TrimSuffix(coll, "s"), attrs)
}

// createAs is create for a collection path whose body key is noun.
func (e *env) createAs(project, coll, noun string, attrs map[string]any) string {
	e.t.Helper()
	r := e.do("POST", "/v2.0/"+coll, project, map[string]any{noun: attrs})
	if r.status != 201 {
		e.t.Fatalf("create %s %v as %q: %d %s", noun, attrs, project, r.status, r.raw)
	}
	return r.body[noun].(map[string]any)["id"].(string)
}

// want checks a reply's status and NeutronError type.
func (e *env) want(what string, r reply, status int, typ string) {
	e.t.Helper()
	if got, _ := r.fault(); r.status != status || got != typ {
		e.t.Fatalf("%s: got %d %s, want %d %s", what, r.status, r.raw, status, typ)
	}
}

// interfaces returns the networks of router's interfaces in host's
// desired state, as the agent would get them.
func (e *env) interfaces(host, router string) []string {
	e.t.Helper()
	st, err := e.svc.HostState(ctx, host)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, r := range st.Routers {
		if r.ID != router {
			continue
		}
		for _, in := range r.Interfaces {
			out = append(out, in.NetworkID)
		}
	}
	return out
}

// TestRouterPortsStayInTheirProject: another project cannot wire its
// network into a router by naming the router in a port's device_id, with
// any device_owner, on create or update; only interfaces made through the
// router API reach the agent, and nothing forged keeps the owner from
// deleting its router.
func TestRouterPortsStayInTheirProject(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, dialect string) {
		e := newEnv(t, dialect)
		const host = "host-1"
		if _, err := e.svc.Heartbeat(ctx, agentv1.Heartbeat{Host: host, AgentType: agentv1.AgentTypeL3}); err != nil {
			t.Fatal(err)
		}
		netA := e.create(projectA, "networks", map[string]any{"name": "a"})
		subA := e.create(projectA, "subnets", map[string]any{"network_id": netA, "ip_version": 4, "cidr": "10.1.0.0/24"})
		rA := e.create(projectA, "routers", map[string]any{"name": "ra"})
		if r := e.do("PUT", "/v2.0/routers/"+rA+"/add_router_interface", projectA, map[string]any{"subnet_id": subA}); r.status != 200 {
			t.Fatalf("add interface: %d %s", r.status, r.raw)
		}
		netB := e.create(projectB, "networks", map[string]any{"name": "b"})
		e.create(projectB, "subnets", map[string]any{"network_id": netB, "ip_version": 4, "cidr": "10.2.0.0/24"})
		pB := e.create(projectB, "ports", map[string]any{"network_id": netB, "name": "plain"})
		rB := e.create(projectB, "routers", map[string]any{"name": "rb"})
		// A network A owns and shares (sharing is the admin's to set).
		shared := e.create("", "networks", map[string]any{"name": "shared", "shared": true, "project_id": projectA})
		sharedSub := e.create(projectA, "subnets", map[string]any{"network_id": shared, "ip_version": 4, "cidr": "10.3.0.0/24"})

		port := func(attrs map[string]any) map[string]any {
			attrs["network_id"] = netB
			return map[string]any{"port": attrs}
		}
		before := snapshot(e)
		for _, tc := range []struct {
			name, method, path string
			body               any
			status             int
			typ                string
		}{
			{"interface owner", "POST", "/v2.0/ports", port(map[string]any{"device_id": rA, "device_owner": "network:router_interface"}), 403, "DeviceIDNotOwnedByTenant"},
			{"interface owner on B's gateway address", "POST", "/v2.0/ports", port(map[string]any{"device_id": rA, "device_owner": "network:router_interface",
				"fixed_ips": []any{map[string]any{"ip_address": "10.2.0.1"}}}), 403, "DeviceIDNotOwnedByTenant"},
			{"gateway owner", "POST", "/v2.0/ports", port(map[string]any{"device_id": rA, "device_owner": "network:router_gateway"}), 403, "DeviceIDNotOwnedByTenant"},
			{"compute owner", "POST", "/v2.0/ports", port(map[string]any{"device_id": rA, "device_owner": "compute:nova"}), 403, "DeviceIDNotOwnedByTenant"},
			{"no owner", "POST", "/v2.0/ports", port(map[string]any{"device_id": rA}), 403, "DeviceIDNotOwnedByTenant"},
			{"update to interface", "PUT", "/v2.0/ports/" + pB, map[string]any{"port": map[string]any{"device_id": rA, "device_owner": "network:router_interface"}}, 403, "DeviceIDNotOwnedByTenant"},
			{"update device_id", "PUT", "/v2.0/ports/" + pB, map[string]any{"port": map[string]any{"device_id": rA}}, 403, "DeviceIDNotOwnedByTenant"},
			{"mac is the admin's", "PUT", "/v2.0/ports/" + pB, map[string]any{"port": map[string]any{"mac_address": "fa:16:3e:00:00:42"}}, 403, "PolicyNotAuthorized"},
			{"network owner on a shared network", "POST", "/v2.0/ports", map[string]any{"port": map[string]any{"network_id": shared, "device_owner": "network:dhcp"}}, 403, "PolicyNotAuthorized"},
			{"A's shared subnet into B's router", "PUT", "/v2.0/routers/" + rB + "/add_router_interface", map[string]any{"subnet_id": sharedSub}, 400, "BadRequest"},
		} {
			e.want(tc.name, e.do(tc.method, tc.path, projectB, tc.body), tc.status, tc.typ)
		}
		if after := snapshot(e); after != before {
			t.Fatalf("refused requests changed the store:\nbefore %s\nafter  %s", before, after)
		}
		// B may still name its own router, and own-network owners are fine.
		e.create(projectB, "ports", map[string]any{"network_id": netB, "device_id": rB, "device_owner": "compute:nova"})
		e.create(projectB, "ports", map[string]any{"network_id": netB, "device_owner": "network:dhcp"})

		// An admin may write any device_id, but a port made through the
		// port API is not the router's: the agent never sees it and the
		// router's owner can still delete the router.
		forged := e.create("", "ports", map[string]any{"network_id": netB, "project_id": projectB,
			"device_id": rA, "device_owner": "network:router_interface"})
		if got := e.interfaces(host, rA); len(got) != 1 || got[0] != netA {
			t.Fatalf("desired interfaces of A's router are on networks %v, want only [%s]", got, netA)
		}

		// A's own interface port changes hands only through the router API.
		ifaces := e.do("GET", "/v2.0/ports?device_id="+rA+"&network_id="+netA, projectA, nil)
		ifacePort := ifaces.body["ports"].([]any)[0].(map[string]any)["id"].(string)
		e.want("member edits interface owner", e.do("PUT", "/v2.0/ports/"+ifacePort, projectA,
			map[string]any{"port": map[string]any{"device_owner": "compute:nova"}}), 403, "PolicyNotAuthorized")
		e.want("member deletes interface port", e.do("DELETE", "/v2.0/ports/"+ifacePort, projectA, nil), 409, "L3PortInUse")
		if r := e.do("PUT", "/v2.0/ports/"+ifacePort, "", map[string]any{"port": map[string]any{"mac_address": "fa:16:3e:00:00:43"}}); r.status != 200 {
			t.Fatalf("admin mac update: %d %s", r.status, r.raw)
		}

		if r := e.do("PUT", "/v2.0/routers/"+rA+"/remove_router_interface", projectA, map[string]any{"subnet_id": subA}); r.status != 200 {
			t.Fatalf("remove interface: %d %s", r.status, r.raw)
		}
		if r := e.do("DELETE", "/v2.0/routers/"+rA, projectA, nil); r.status != 204 {
			t.Fatalf("A deletes its router despite B's forged port: %d %s", r.status, r.raw)
		}
		// Ports that name a router that is gone can be deleted.
		if r := e.do("DELETE", "/v2.0/ports/"+forged, projectB, nil); r.status != 204 {
			t.Fatalf("delete forged port: %d %s", r.status, r.raw)
		}
		gw := e.create("", "ports", map[string]any{"network_id": netB, "device_id": rA, "device_owner": "network:router_gateway"})
		if r := e.do("DELETE", "/v2.0/ports/"+gw, "", nil); r.status != 204 {
			t.Fatalf("delete a gateway port whose router is gone: %d %s", r.status, r.raw)
		}
	})
}

// TestLegacyVPNSubnetHeld: a subnet that a legacy VPN service names cannot
// be deleted once its interface is gone by a way other than the router
// API (a 409, never the foreign key's 500), and a member cannot detach
// the interface by editing the port.
func TestLegacyVPNSubnetHeld(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, dialect string) {
		e := newEnv(t, dialect)
		ext := e.create("", "networks", map[string]any{"name": "public", "router:external": true})
		e.create("", "subnets", map[string]any{"network_id": ext, "ip_version": 4, "cidr": "203.0.113.0/24"})
		net := e.create(projectA, "networks", map[string]any{"name": "a"})
		sub := e.create(projectA, "subnets", map[string]any{"network_id": net, "ip_version": 4, "cidr": "10.1.0.0/24"})
		rtr := e.create(projectA, "routers", map[string]any{"name": "r", "external_gateway_info": map[string]any{"network_id": ext}})
		info := e.do("PUT", "/v2.0/routers/"+rtr+"/add_router_interface", projectA, map[string]any{"subnet_id": sub})
		if info.status != 200 {
			t.Fatalf("add interface: %d %s", info.status, info.raw)
		}
		iface := info.body["port_id"].(string)
		r := e.do("POST", "/v2.0/vpn/vpnservices", projectA, map[string]any{"vpnservice": map[string]any{"router_id": rtr, "subnet_id": sub}})
		if r.status != 201 {
			t.Fatalf("vpn service: %d %s", r.status, r.raw)
		}
		e.want("member detaches interface", e.do("PUT", "/v2.0/ports/"+iface, projectA,
			map[string]any{"port": map[string]any{"device_owner": "compute:nova", "device_id": ""}}), 403, "PolicyNotAuthorized")
		// An admin can; the service still names the subnet.
		if r := e.do("PUT", "/v2.0/ports/"+iface, "", map[string]any{"port": map[string]any{"device_owner": "compute:nova", "device_id": ""}}); r.status != 200 {
			t.Fatalf("admin detaches interface: %d %s", r.status, r.raw)
		}
		if r := e.do("DELETE", "/v2.0/ports/"+iface, "", nil); r.status != 204 {
			t.Fatalf("delete detached port: %d %s", r.status, r.raw)
		}
		e.want("delete subnet", e.do("DELETE", "/v2.0/subnets/"+sub, projectA, nil), 409, "SubnetInUseByVPNService")
		e.want("delete network", e.do("DELETE", "/v2.0/networks/"+net, projectA, nil), 409, "SubnetInUseByVPNService")
		if r := e.do("GET", "/v2.0/subnets/"+sub, projectA, nil); r.status != 200 {
			t.Fatalf("the subnet is gone: %d %s", r.status, r.raw)
		}
	})
}

// TestDeleteRaces: creating a port or a router interface while its subnet
// or network is deleted ends, every round, in one of the two orders: never
// a 5xx and never a half-done pair.
func TestDeleteRaces(t *testing.T) {
	const rounds = 10
	sqltest.Run(t, func(t *testing.T, dialect string) {
		e := newEnv(t, dialect)
		race := func(what string, round int, first, second func() reply, ok ...[2]int) {
			t.Helper()
			var a, b reply
			var wg sync.WaitGroup
			wg.Add(2)
			go func() { defer wg.Done(); a = first() }()
			go func() { defer wg.Done(); b = second() }()
			wg.Wait()
			for _, pair := range ok {
				if a.status == pair[0] && b.status == pair[1] {
					return
				}
			}
			t.Fatalf("%s, round %d: got %d (%s) and %d (%s), want one of %v", what, round, a.status, a.raw, b.status, b.raw, ok)
		}
		rtr := e.create(projectA, "routers", map[string]any{"name": "r"})
		for round := range rounds {
			net := e.create(projectA, "networks", map[string]any{"name": fmt.Sprint("n", round)})
			sub := e.create(projectA, "subnets", map[string]any{"network_id": net, "ip_version": 4, "cidr": "10.4.0.0/24"})
			race("port create vs subnet delete", round,
				func() reply {
					return e.do("POST", "/v2.0/ports", projectA, map[string]any{"port": map[string]any{"network_id": net,
						"fixed_ips": []any{map[string]any{"subnet_id": sub}}}})
				},
				func() reply { return e.do("DELETE", "/v2.0/subnets/"+sub, projectA, nil) },
				[2]int{201, 409}, [2]int{404, 204})
			sub2 := e.create(projectA, "subnets", map[string]any{"network_id": net, "ip_version": 4, "cidr": "10.5.0.0/24"})
			race("add_router_interface vs subnet delete", round,
				func() reply {
					return e.do("PUT", "/v2.0/routers/"+rtr+"/add_router_interface", projectA, map[string]any{"subnet_id": sub2})
				},
				func() reply { return e.do("DELETE", "/v2.0/subnets/"+sub2, projectA, nil) },
				[2]int{200, 409}, [2]int{404, 204})
			e.do("PUT", "/v2.0/routers/"+rtr+"/remove_router_interface", projectA, map[string]any{"subnet_id": sub2})
			e.do("DELETE", "/v2.0/subnets/"+sub2, projectA, nil)
			ports := e.do("GET", "/v2.0/ports?network_id="+net, projectA, nil)
			for _, p := range ports.body["ports"].([]any) {
				e.do("DELETE", "/v2.0/ports/"+p.(map[string]any)["id"].(string), projectA, nil)
			}
			e.do("DELETE", "/v2.0/subnets/"+sub, projectA, nil)

			sub3 := e.create(projectA, "subnets", map[string]any{"network_id": net, "ip_version": 4, "cidr": "10.6.0.0/24"})
			race("add_router_interface vs network delete", round,
				func() reply {
					return e.do("PUT", "/v2.0/routers/"+rtr+"/add_router_interface", projectA, map[string]any{"subnet_id": sub3})
				},
				func() reply { return e.do("DELETE", "/v2.0/networks/"+net, projectA, nil) },
				[2]int{200, 409}, [2]int{404, 204})
			e.do("PUT", "/v2.0/routers/"+rtr+"/remove_router_interface", projectA, map[string]any{"subnet_id": sub3})
			if r := e.do("DELETE", "/v2.0/networks/"+net, projectA, nil); r.status != 204 && r.status != 404 {
				t.Fatalf("round %d: clean-up delete network: %d %s", round, r.status, r.raw)
			}
		}
	})
}

package api_test

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/neutrino-net/neutrino/internal/store/sqlstore/sqltest"
)

// TestFloatingIPs: the floatingips resource as the reference has it:
// allocation on an external network, association with a port reached
// through a router, port_details, the reference's refusals (which change
// nothing), what ports, router interfaces and gateways may no longer do,
// visibility and quota.
func TestFloatingIPs(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, dialect string) {
		e := newEnv(t, dialect)
		ok := func(r reply, status int, what string) map[string]any {
			t.Helper()
			if r.status != status {
				t.Fatalf("%s: %d %s, want %d", what, r.status, r.raw, status)
			}
			if r.body == nil {
				return nil
			}
			for _, v := range r.body {
				if m, isMap := v.(map[string]any); isMap {
					return m
				}
			}
			return nil
		}
		id := func(m map[string]any) string { return m["id"].(string) }
		post := func(project, path, kind string, attrs map[string]any) map[string]any {
			t.Helper()
			return ok(e.do("POST", path, project, map[string]any{kind: attrs}), 201, "POST "+path)
		}
		fault := func(r reply, status int, typ, msg string) {
			t.Helper()
			gotTyp, gotMsg := r.fault()
			if r.status != status || gotTyp != typ || !strings.Contains(gotMsg, msg) {
				t.Errorf("got %d %s %q, want %d %s containing %q", r.status, gotTyp, gotMsg, status, typ, msg)
			}
		}
		ext := id(post("", "/v2.0/networks", "network", map[string]any{"name": "public", "router:external": true}))
		post("", "/v2.0/subnets", "subnet", map[string]any{"network_id": ext, "ip_version": 4, "cidr": "203.0.113.0/24"})
		v6only := id(post("", "/v2.0/networks", "network", map[string]any{"name": "public6", "router:external": true}))
		post("", "/v2.0/subnets", "subnet", map[string]any{"network_id": v6only, "ip_version": 6, "cidr": "2001:db8:9::/64"})
		net := id(post(projectA, "/v2.0/networks", "network", map[string]any{"name": "a"}))
		sub := id(post(projectA, "/v2.0/subnets", "subnet", map[string]any{"network_id": net, "ip_version": 4, "cidr": "10.0.0.0/24"}))
		lonely := id(post(projectA, "/v2.0/networks", "network", map[string]any{"name": "no-router"}))
		post(projectA, "/v2.0/subnets", "subnet", map[string]any{"network_id": lonely, "ip_version": 4, "cidr": "10.9.0.0/24"})
		r := id(post(projectA, "/v2.0/routers", "router", map[string]any{"name": "r", "external_gateway_info": map[string]any{"network_id": ext}}))
		ok(e.do("PUT", "/v2.0/routers/"+r+"/add_router_interface", projectA, map[string]any{"subnet_id": sub}), 200, "add interface")
		vm := post(projectA, "/v2.0/ports", "port", map[string]any{"network_id": net, "name": "vm"})
		vmIP := vm["fixed_ips"].([]any)[0].(map[string]any)["ip_address"].(string)
		vm2 := post(projectA, "/v2.0/ports", "port", map[string]any{"network_id": net, "name": "vm2",
			"fixed_ips": []any{map[string]any{"ip_address": "10.0.0.50"}, map[string]any{"ip_address": "10.0.0.51"}}})
		far := post(projectA, "/v2.0/ports", "port", map[string]any{"network_id": lonely})
		bPort := post(projectB, "/v2.0/ports", "port", map[string]any{"network_id": id(post(projectB, "/v2.0/networks", "network", map[string]any{"name": "b"}))})

		// Allocation.
		f := post(projectA, "/v2.0/floatingips", "floatingip", map[string]any{"floating_network_id": ext, "description": "web"})
		addr, err := netip.ParseAddr(f["floating_ip_address"].(string))
		if err != nil || !netip.MustParsePrefix("203.0.113.0/24").Contains(addr) {
			t.Fatalf("floating_ip_address %v", f["floating_ip_address"])
		}
		if f["status"] != "DOWN" || f["port_id"] != nil || f["router_id"] != nil || f["port_details"] != nil ||
			f["description"] != "web" || f["tenant_id"] != projectA {
			t.Errorf("new floating IP: %v", f)
		}
		fports := e.do("GET", "/v2.0/ports?device_owner=network:floatingip&device_id="+id(f), "", nil).body["ports"].([]any)
		if len(fports) != 1 || fports[0].(map[string]any)["fixed_ips"].([]any)[0].(map[string]any)["ip_address"] != addr.String() {
			t.Errorf("the floating IP's own port: %v", fports)
		}
		// Association.
		got := ok(e.do("PUT", "/v2.0/floatingips/"+id(f), projectA, map[string]any{"floatingip": map[string]any{"port_id": id(vm)}}), 200, "associate")
		pd, _ := got["port_details"].(map[string]any)
		if got["port_id"] != id(vm) || got["fixed_ip_address"] != vmIP || got["router_id"] != r || pd == nil ||
			pd["mac_address"] != vm["mac_address"] || pd["network_id"] != net || pd["name"] != "vm" {
			t.Errorf("associated floating IP: %v", got)
		}
		if l := e.do("GET", "/v2.0/floatingips?port_id="+id(vm), projectA, nil).body["floatingips"].([]any); len(l) != 1 {
			t.Errorf("filter by port_id: %d", len(l))
		}
		// Refusals, which change nothing.
		snap := func() string {
			var b strings.Builder
			for _, o := range e.do("GET", "/v2.0/floatingips?sort_key=floating_ip_address&sort_dir=asc", "", nil).body["floatingips"].([]any) {
				m := o.(map[string]any)
				fmt.Fprintf(&b, "%v>%v/%v ", m["floating_ip_address"], m["port_id"], m["fixed_ip_address"])
			}
			n := len(e.do("GET", "/v2.0/ports", "", nil).body["ports"].([]any))
			return fmt.Sprintf("%s ports=%d", b.String(), n)
		}
		before := snap()
		fipOn := func(attrs map[string]any) reply {
			attrs["floating_network_id"] = ext
			return e.do("POST", "/v2.0/floatingips", projectA, map[string]any{"floatingip": attrs})
		}
		fault(fipOn(map[string]any{"port_id": id(vm)}), 409, "FloatingIPPortAlreadyAssociated", "already has a floating IP on external network")
		fault(fipOn(map[string]any{"port_id": id(vm2)}), 400, "BadRequest", "has multiple fixed IPv4 addresses")
		fault(fipOn(map[string]any{"port_id": id(vm2), "fixed_ip_address": "10.0.0.99"}), 400, "BadRequest", "does not have fixed ip 10.0.0.99")
		fault(fipOn(map[string]any{"port_id": id(far)}), 404, "ExternalGatewayForFloatingIPNotFound", "is not reachable from subnet")
		fault(fipOn(map[string]any{"port_id": id(bPort)}), 404, "PortNotFound", id(bPort))
		fault(fipOn(map[string]any{"floating_ip_address": "203.0.113.77"}), 403, "PolicyNotAuthorized", "create_floatingip:floating_ip_address")
		fault(e.do("POST", "/v2.0/floatingips", projectA, map[string]any{"floatingip": map[string]any{"floating_network_id": net}}),
			400, "BadRequest", "is not a valid external network")
		fault(e.do("POST", "/v2.0/floatingips", projectA, map[string]any{"floatingip": map[string]any{"floating_network_id": v6only}}),
			400, "BadRequest", "does not contain any IPv4 subnet")
		fault(e.do("POST", "/v2.0/floatingips", projectA, map[string]any{"floatingip": map[string]any{}}), 400, "HTTPBadRequest", "floating_network_id")
		fault(e.do("PUT", "/v2.0/floatingips/"+id(f), projectA, map[string]any{"floatingip": map[string]any{"router_id": r}}), 400, "HTTPBadRequest", "router_id")
		fault(e.do("PUT", "/v2.0/routers/"+r+"/remove_router_interface", projectA, map[string]any{"subnet_id": sub}),
			409, "RouterInterfaceInUseByFloatingIP", "required by one or more floating IPs")
		fault(e.do("PUT", "/v2.0/routers/"+r, projectA, map[string]any{"router": map[string]any{"external_gateway_info": map[string]any{}}}),
			409, "RouterExternalGatewayInUseByFloatingIp", "required by one or more floating IPs")
		fault(e.do("DELETE", "/v2.0/ports/"+fports[0].(map[string]any)["id"].(string), "", nil), 409, "L3PortInUse", "network:floatingip")
		fault(e.do("GET", "/v2.0/floatingips/"+id(f), projectB, nil), 404, "FloatingIPNotFound", id(f))
		fault(e.do("PUT", "/v2.0/floatingips/"+id(f), projectB, map[string]any{"floatingip": map[string]any{"port_id": nil}}), 404, "FloatingIPNotFound", id(f))
		if after := snap(); after != before {
			t.Errorf("refused requests changed state:\nbefore %s\nafter  %s", before, after)
		}
		// An admin may choose the address; a second one for it is refused.
		chosen := post("", "/v2.0/floatingips", "floatingip", map[string]any{"floating_network_id": ext,
			"floating_ip_address": "203.0.113.77", "project_id": projectA})
		if chosen["floating_ip_address"] != "203.0.113.77" {
			t.Errorf("admin-chosen address: %v", chosen["floating_ip_address"])
		}
		if r := e.do("POST", "/v2.0/floatingips", "", map[string]any{"floatingip": map[string]any{"floating_network_id": ext,
			"floating_ip_address": "203.0.113.77"}}); r.status != 409 {
			t.Errorf("the same address again: %d %s", r.status, r.raw)
		}
		// A multi-address port with its fixed IP chosen.
		two := ok(e.do("PUT", "/v2.0/floatingips/"+id(chosen), projectA, map[string]any{"floatingip": map[string]any{
			"port_id": id(vm2), "fixed_ip_address": "10.0.0.51"}}), 200, "associate with a chosen fixed IP")
		if two["fixed_ip_address"] != "10.0.0.51" {
			t.Errorf("chosen fixed IP: %v", two["fixed_ip_address"])
		}
		// Deleting the port dissociates; null dissociates; delete frees the address.
		ok(e.do("DELETE", "/v2.0/ports/"+id(vm), projectA, nil), 204, "delete the associated port")
		left := ok(e.do("GET", "/v2.0/floatingips/"+id(f), projectA, nil), 200, "floating IP after its port went")
		if left["port_id"] != nil || left["fixed_ip_address"] != nil || left["router_id"] != nil || left["status"] != "DOWN" {
			t.Errorf("after the port's deletion: %v", left)
		}
		free := ok(e.do("PUT", "/v2.0/floatingips/"+id(chosen), projectA, map[string]any{"floatingip": map[string]any{"port_id": nil}}), 200, "dissociate")
		if free["port_id"] != nil || free["router_id"] != nil {
			t.Errorf("dissociated: %v", free)
		}
		ok(e.do("PUT", "/v2.0/routers/"+r+"/remove_router_interface", projectA, map[string]any{"subnet_id": sub}), 200, "interface free again")
		ok(e.do("DELETE", "/v2.0/floatingips/"+id(f), projectA, nil), 204, "delete floating IP")
		if n := len(e.do("GET", "/v2.0/ports?device_id="+id(f), "", nil).body["ports"].([]any)); n != 0 {
			t.Errorf("the deleted floating IP's port is still there")
		}
		// Quota.
		ok(e.do("PUT", "/v2.0/quotas/"+projectB, "", map[string]any{"quota": map[string]any{"floatingip": 1}}), 200, "quota")
		post(projectB, "/v2.0/floatingips", "floatingip", map[string]any{"floating_network_id": ext})
		fault(e.do("POST", "/v2.0/floatingips", projectB, map[string]any{"floatingip": map[string]any{"floating_network_id": ext}}),
			409, "OverQuota", "floatingip")
		if d := e.do("GET", "/v2.0/quotas/"+projectB+"/details", "", nil).body["quota"].(map[string]any)["floatingip"].(map[string]any); d["used"] != float64(1) {
			t.Errorf("quota details: %v", d)
		}
		if r := e.do("GET", "/v2.0/extensions/fip-port-details", "", nil); r.status != 200 {
			t.Errorf("fip-port-details extension: %d", r.status)
		}
	})
}

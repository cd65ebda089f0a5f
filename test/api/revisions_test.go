package api_test

import (
	"testing"
)

// TestRevisionBumps follows the reference's revision tests on both stores:
// every update of a standard resource bumps its revision_number, and so do
// changes the reference counts against a parent: a subnet created or
// updated bumps its network, a rule created or deleted bumps its group.
func TestRevisionBumps(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		rev := func(coll, key, id string) float64 {
			t.Helper()
			return item(t, e.do("GET", "/v2.0/"+coll+"/"+id, projectA, nil), 200, key)["revision_number"].(float64)
		}
		bumped := func(what, coll, key, id string, change func()) {
			t.Helper()
			before := rev(coll, key, id)
			change()
			if after := rev(coll, key, id); after <= before {
				t.Errorf("%s: %s revision %v → %v, want a bump", what, key, before, after)
			}
		}
		put := func(coll, key, id string, body map[string]any) func() {
			return func() {
				t.Helper()
				if r := e.do("PUT", "/v2.0/"+coll+"/"+id, projectA, map[string]any{key: body}); r.status != 200 {
					t.Fatalf("update %s: %d %s", key, r.status, r.raw)
				}
			}
		}
		ext := e.createAs("", "networks", "network", map[string]any{"name": "public", "router:external": true})
		e.createAs("", "subnets", "subnet", map[string]any{"network_id": ext, "ip_version": 4, "cidr": "203.0.113.0/24"})
		net := e.create(projectA, "networks", map[string]any{"name": "n"})
		var sub string
		bumped("subnet create", "networks", "network", net, func() {
			sub = e.create(projectA, "subnets", map[string]any{"network_id": net, "ip_version": 4, "cidr": "10.5.0.0/24"})
		})
		bumped("subnet update", "subnets", "subnet", sub, put("subnets", "subnet", sub, map[string]any{"name": "s2"}))
		bumped("subnet update", "networks", "network", net, put("subnets", "subnet", sub, map[string]any{"name": "s3"}))
		bumped("network update", "networks", "network", net, put("networks", "network", net, map[string]any{"name": "n2"}))
		bumped("external network update", "networks", "network", ext, func() {
			if r := e.do("PUT", "/v2.0/networks/"+ext, "", map[string]any{"network": map[string]any{"name": "public2"}}); r.status != 200 {
				t.Fatalf("update external: %d %s", r.status, r.raw)
			}
		})

		sg := e.createAs(projectA, "security-groups", "security_group", map[string]any{"name": "sg"})
		bumped("group update", "security-groups", "security_group", sg, put("security-groups", "security_group", sg, map[string]any{"name": "sg2"}))
		var rule string
		bumped("rule create", "security-groups", "security_group", sg, func() {
			rule = e.createAs(projectA, "security-group-rules", "security_group_rule", map[string]any{
				"security_group_id": sg, "direction": "ingress", "protocol": "tcp", "port_range_min": 22, "port_range_max": 22})
		})
		bumped("rule delete", "security-groups", "security_group", sg, func() {
			if r := e.do("DELETE", "/v2.0/security-group-rules/"+rule, projectA, nil); r.status != 204 {
				t.Fatalf("delete rule: %d %s", r.status, r.raw)
			}
		})

		port := e.create(projectA, "ports", map[string]any{"network_id": net})
		bumped("port group binding", "ports", "port", port, put("ports", "port", port, map[string]any{"security_groups": []any{sg}}))
		bumped("port pairs", "ports", "port", port, put("ports", "port", port, map[string]any{
			"allowed_address_pairs": []any{map[string]any{"ip_address": "10.5.0.200"}}}))
		bumped("extra DHCP options", "ports", "port", port, put("ports", "port", port, map[string]any{
			"extra_dhcp_opts": []any{map[string]any{"opt_name": "domain-search", "opt_value": "example.org"}}}))
		bumped("port security", "ports", "port", port, put("ports", "port", port, map[string]any{
			"port_security_enabled": false, "security_groups": []any{}, "allowed_address_pairs": []any{}}))
		bumped("binding", "ports", "port", port, func() {
			if r := e.do("PUT", "/v2.0/ports/"+port, "", map[string]any{"port": map[string]any{"binding:host_id": "node-1"}}); r.status != 200 {
				t.Fatalf("bind: %d %s", r.status, r.raw)
			}
		})

		router := e.create(projectA, "routers", map[string]any{"name": "r", "external_gateway_info": map[string]any{"network_id": ext}})
		bumped("router update", "routers", "router", router, put("routers", "router", router, map[string]any{"name": "r2"}))
		if r := e.do("PUT", "/v2.0/routers/"+router+"/add_router_interface", projectA, map[string]any{"subnet_id": sub}); r.status != 200 {
			t.Fatalf("add interface: %d %s", r.status, r.raw)
		}
		bumped("extra routes", "routers", "router", router, put("routers", "router", router, map[string]any{
			"routes": []any{map[string]any{"destination": "10.88.0.0/16", "nexthop": "10.5.0.9"}}}))

		fip := e.create(projectA, "floatingips", map[string]any{"floating_network_id": ext})
		bumped("floating IP update", "floatingips", "floatingip", fip, put("floatingips", "floatingip", fip, map[string]any{"description": "d"}))
	})
}

package api_test

import (
	"strings"
	"testing"
)

// TestPortConformance follows the reference's port tests on both stores:
// description on create and update, seen in lists; a port created while
// the subnet has DHCP off and another after turning it on; a second
// address on the same subnet added by update; an admin changing a port's
// MAC, kept by later updates; and the refusals: a name or description too
// long, another project's id, a missing network or security group, and an
// allowed address pair that is not an object.
func TestPortConformance(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		net := e.create(projectA, "networks", map[string]any{"name": "n"})
		sub := e.create(projectA, "subnets", map[string]any{"network_id": net, "ip_version": 4, "cidr": "10.31.0.0/24", "enable_dhcp": false})
		listed := func(id string) map[string]any {
			t.Helper()
			r := e.do("GET", "/v2.0/ports?id="+id, projectA, nil)
			l, _ := r.body["ports"].([]any)
			if r.status != 200 || len(l) != 1 {
				t.Fatalf("list port %s: %d %s", id, r.status, r.raw)
			}
			return l[0].(map[string]any)
		}

		// Description.
		p := item(t, e.do("POST", "/v2.0/ports", projectA, map[string]any{"port": map[string]any{"network_id": net, "description": "d1"}}), 201, "port")
		id := p["id"].(string)
		if p["description"] != "d1" || listed(id)["description"] != "d1" {
			t.Fatalf("description on create: %v / %v", p["description"], listed(id)["description"])
		}
		up := item(t, e.do("PUT", "/v2.0/ports/"+id, projectA, map[string]any{"port": map[string]any{"description": "d2"}}), 200, "port")
		if up["description"] != "d2" || listed(id)["description"] != "d2" {
			t.Fatalf("description on update: %v / %v", up["description"], listed(id)["description"])
		}

		// DHCP turned on between two port creates.
		if r := e.do("PUT", "/v2.0/subnets/"+sub, projectA, map[string]any{"subnet": map[string]any{"enable_dhcp": true}}); r.status != 200 {
			t.Fatalf("enable DHCP: %d %s", r.status, r.raw)
		}
		item(t, e.do("POST", "/v2.0/ports", projectA, map[string]any{"port": map[string]any{"network_id": net}}), 201, "port")

		// A second address on the same subnet.
		ips := append(p["fixed_ips"].([]any), map[string]any{"subnet_id": sub})
		up = item(t, e.do("PUT", "/v2.0/ports/"+id, projectA, map[string]any{"port": map[string]any{"fixed_ips": ips}}), 200, "port")
		got := up["fixed_ips"].([]any)
		if len(got) != 2 || got[0].(map[string]any)["subnet_id"] != sub || got[1].(map[string]any)["subnet_id"] != sub ||
			got[0].(map[string]any)["ip_address"] == got[1].(map[string]any)["ip_address"] {
			t.Fatalf("fixed_ips after adding one = %v", got)
		}

		// An admin changes the MAC; other updates keep it.
		up = item(t, e.do("PUT", "/v2.0/ports/"+id, "", map[string]any{"port": map[string]any{"mac_address": "12:34:56:78:be:6d"}}), 200, "port")
		if up["mac_address"] != "12:34:56:78:be:6d" {
			t.Fatalf("mac after update = %v", up["mac_address"])
		}
		up = item(t, e.do("PUT", "/v2.0/ports/"+id, "", map[string]any{"port": map[string]any{"description": "Port Description"}}), 200, "port")
		if up["mac_address"] != "12:34:56:78:be:6d" {
			t.Fatalf("mac after a description update = %v", up["mac_address"])
		}

		snapshot := func(e *env) string { return e.do("GET", "/v2.0/ports?sort_key=id", "", nil).raw }
		runFaultCases(t, e, []faultCase{
			{"name too long", "POST", "/v2.0/ports", map[string]any{"port": map[string]any{"network_id": net, "name": strings.Repeat("z", 256)}},
				400, "HTTPBadRequest", "exceeds maximum length of 255"},
			{"description too long", "POST", "/v2.0/ports", map[string]any{"port": map[string]any{"network_id": net, "description": strings.Repeat("z", 1025)}},
				400, "HTTPBadRequest", "exceeds maximum length of 255"},
			{"another project's id", "POST", "/v2.0/ports", map[string]any{"port": map[string]any{"network_id": net, "project_id": "4b6c3f2e0d9a4e1f8a7b6c5d4e3f2a1b"}},
				400, "HTTPBadRequest", "requires admin or advsvc privileges"},
			{"missing network", "POST", "/v2.0/ports", map[string]any{"port": map[string]any{"network_id": "7e1d8f0c-6b7a-4c5d-9e8f-0a1b2c3d4e5f"}},
				404, "NetworkNotFound", ""},
			{"missing security group", "POST", "/v2.0/ports", map[string]any{"port": map[string]any{"network_id": net, "security_groups": []any{"7e1d8f0c-6b7a-4c5d-9e8f-0a1b2c3d4e5f"}}},
				404, "SecurityGroupNotFound", ""},
			{"pair not an object", "POST", "/v2.0/ports", map[string]any{"port": map[string]any{"network_id": net, "allowed_address_pairs": []any{[]any{"ip_address: 12.12.12.a"}}}},
				400, "HTTPBadRequest", "is not a dictionary"},
		}, snapshot, "")
	})
}

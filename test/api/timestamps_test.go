package api_test

import (
	"testing"
	"time"
)

// TestTimestamps covers the reference's standard-attr-timestamp tests on
// both stores: every kind of resource has created_at and updated_at in
// the reference's format, equal on create and in show; an update keeps
// created_at and moves updated_at (a second later, the format's
// precision), and show agrees with the update's reply.
func TestTimestamps(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ext := e.createAs("", "networks", "network", map[string]any{"name": "public", "router:external": true})
		e.createAs("", "subnets", "subnet", map[string]any{"network_id": ext, "ip_version": 4, "cidr": "203.0.113.0/24"})
		net := e.create(projectA, "networks", map[string]any{"name": "n"})
		sub := e.create(projectA, "subnets", map[string]any{"network_id": net, "ip_version": 4, "cidr": "10.9.0.0/24"})
		router := e.create(projectA, "routers", map[string]any{"name": "r", "external_gateway_info": map[string]any{"network_id": ext}})
		if r := e.do("PUT", "/v2.0/routers/"+router+"/add_router_interface", projectA, map[string]any{"subnet_id": sub}); r.status != 200 {
			t.Fatalf("add interface: %d %s", r.status, r.raw)
		}
		sg := e.createAs(projectA, "security-groups", "security_group", map[string]any{"name": "sg"})
		type res struct{ coll, key, id, change string }
		all := []res{
			{"networks", "network", net, "name"},
			{"subnets", "subnet", sub, "name"},
			{"ports", "port", e.create(projectA, "ports", map[string]any{"network_id": net}), "name"},
			{"subnetpools", "subnetpool", e.create(projectA, "subnetpools", map[string]any{"name": "p", "prefixes": []any{"10.11.12.0/24"}, "min_prefixlen": 29}), "name"},
			{"routers", "router", router, "name"},
			{"floatingips", "floatingip", e.create(projectA, "floatingips", map[string]any{"floating_network_id": ext}), "description"},
			{"security-groups", "security_group", sg, "name"},
			// The rule goes in another group: creating it bumps its group.
			{"security-group-rules", "security_group_rule", e.createAs(projectA, "security-group-rules", "security_group_rule", map[string]any{
				"security_group_id": e.createAs(projectA, "security-groups", "security_group", map[string]any{"name": "rules"}), "direction": "ingress", "protocol": "tcp", "port_range_min": 77, "port_range_max": 77}), ""},
			{"address-scopes", "address_scope", e.createAs(projectA, "address-scopes", "address_scope", map[string]any{"name": "s", "ip_version": 4}), "name"},
		}
		const layout = "2006-01-02T15:04:05Z"
		first := map[string]map[string]any{}
		for _, r := range all {
			got := item(t, e.do("GET", "/v2.0/"+r.coll+"/"+r.id, projectA, nil), 200, r.key)
			c, cok := got["created_at"].(string)
			u, uok := got["updated_at"].(string)
			if !cok || !uok {
				t.Fatalf("%s: created_at %v, updated_at %v", r.coll, got["created_at"], got["updated_at"])
			}
			for _, ts := range []string{c, u} {
				if _, err := time.Parse(layout, ts); err != nil {
					t.Errorf("%s: timestamp %q is not in the reference's format: %v", r.coll, ts, err)
				}
			}
			// Routers' updated_at moves when an interface is added.
			if c != u && r.coll != "routers" {
				t.Errorf("%s: created_at %s, updated_at %s; want equal before any update", r.coll, c, u)
			}
			first[r.coll] = got
		}
		time.Sleep(1100 * time.Millisecond)
		for _, r := range all {
			if r.change == "" {
				continue // rules are not updatable
			}
			up := item(t, e.do("PUT", "/v2.0/"+r.coll+"/"+r.id, projectA, map[string]any{r.key: map[string]any{r.change: "changed"}}), 200, r.key)
			if up["created_at"] != first[r.coll]["created_at"] {
				t.Errorf("%s: update changed created_at %v to %v", r.coll, first[r.coll]["created_at"], up["created_at"])
			}
			before, _ := time.Parse(layout, first[r.coll]["updated_at"].(string))
			after, err := time.Parse(layout, up["updated_at"].(string))
			if err != nil || !after.After(before) {
				t.Errorf("%s: updated_at %v after the update, was %v", r.coll, up["updated_at"], first[r.coll]["updated_at"])
			}
			shown := item(t, e.do("GET", "/v2.0/"+r.coll+"/"+r.id, projectA, nil), 200, r.key)
			if shown["updated_at"] != up["updated_at"] || shown["created_at"] != up["created_at"] {
				t.Errorf("%s: show %v/%v, update replied %v/%v", r.coll, shown["created_at"], shown["updated_at"], up["created_at"], up["updated_at"])
			}
		}
	})
}

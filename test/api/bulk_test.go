package api_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/neutrino-net/neutrino/internal/service"
	"github.com/neutrino-net/neutrino/internal/store"
	"github.com/neutrino-net/neutrino/internal/store/sqlstore/sqltest"
)

// names returns the names of the items of a collection reply, in order.
func names(r reply, coll string) []string {
	var out []string
	l, _ := r.body[coll].([]any)
	for _, o := range l {
		n, _ := o.(map[string]any)["name"].(string)
		out = append(out, n)
	}
	return out
}

// TestBulkCreate creates networks, subnets, ports, security groups and
// rules, routers and floating IPs in bulk on both stores: the reply lists
// them in order, bare and enveloped items alike, and each one is stored.
func TestBulkCreate(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		r := e.do("POST", "/v2.0/networks", projectA, map[string]any{"networks": []any{
			map[string]any{"name": "n1"}, map[string]any{"network": map[string]any{"name": "n2"}}, map[string]any{"name": "n3", "mtu": 1400},
		}})
		if r.status != 201 || !slices.Equal(names(r, "networks"), []string{"n1", "n2", "n3"}) {
			t.Fatalf("bulk networks: %d %s", r.status, r.raw)
		}
		nets := r.body["networks"].([]any)
		n1 := nets[0].(map[string]any)["id"].(string)
		if got := item(t, e.do("GET", "/v2.0/networks/"+nets[2].(map[string]any)["id"].(string), projectA, nil), 200, "network"); got["mtu"] != float64(1400) {
			t.Fatalf("n3 stored as %v", got)
		}
		if got := names(e.do("GET", "/v2.0/networks?sort_key=name&sort_dir=asc", projectA, nil), "networks"); !slices.Equal(got, []string{"n1", "n2", "n3"}) {
			t.Fatalf("networks after bulk: %v", got)
		}

		r = e.do("POST", "/v2.0/subnets", projectA, map[string]any{"subnets": []any{
			map[string]any{"name": "s4", "network_id": n1, "ip_version": 4, "cidr": "10.5.0.0/29"},
			map[string]any{"name": "s6", "network_id": n1, "ip_version": 6, "cidr": "fd00:5::/64"},
		}})
		if r.status != 201 || !slices.Equal(names(r, "subnets"), []string{"s4", "s6"}) {
			t.Fatalf("bulk subnets: %d %s", r.status, r.raw)
		}
		s4 := r.body["subnets"].([]any)[0].(map[string]any)["id"].(string)

		// Ports in bulk get distinct addresses, allocated in order, and
		// their tags (tag-ports-during-bulk-creation).
		r = e.do("POST", "/v2.0/ports", projectA, map[string]any{"ports": []any{
			map[string]any{"name": "p1", "network_id": n1, "fixed_ips": []any{map[string]any{"subnet_id": s4}}, "tags": []string{"a"}},
			map[string]any{"name": "p2", "network_id": n1, "fixed_ips": []any{map[string]any{"subnet_id": s4}}},
			map[string]any{"name": "p3", "network_id": n1, "fixed_ips": []any{map[string]any{"subnet_id": s4}}, "tags": []string{"b", "c"}},
		}})
		if r.status != 201 || !slices.Equal(names(r, "ports"), []string{"p1", "p2", "p3"}) {
			t.Fatalf("bulk ports: %d %s", r.status, r.raw)
		}
		var ips []string
		for i, p := range r.body["ports"].([]any) {
			po := p.(map[string]any)
			ips = append(ips, po["fixed_ips"].([]any)[0].(map[string]any)["ip_address"].(string))
			if want := [][]string{{"a"}, {}, {"b", "c"}}[i]; !slices.Equal(strs(po["tags"]), want) {
				t.Errorf("port %d tags %v, want %v", i, po["tags"], want)
			}
		}
		if want := []string{"10.5.0.2", "10.5.0.3", "10.5.0.4"}; !slices.Equal(ips, want) {
			t.Fatalf("bulk port addresses %v, want %v", ips, want)
		}

		r = e.do("POST", "/v2.0/security-groups", projectA, map[string]any{"security_groups": []any{
			map[string]any{"name": "web"}, map[string]any{"name": "db"},
		}})
		if r.status != 201 || !slices.Equal(names(r, "security_groups"), []string{"web", "db"}) {
			t.Fatalf("bulk security groups: %d %s", r.status, r.raw)
		}
		web := r.body["security_groups"].([]any)[0].(map[string]any)["id"].(string)
		r = e.do("POST", "/v2.0/security-group-rules", projectA, map[string]any{"security_group_rules": []any{
			map[string]any{"security_group_id": web, "direction": "ingress", "protocol": "tcp", "port_range_min": 80, "port_range_max": 80},
			map[string]any{"security_group_id": web, "direction": "ingress", "protocol": "tcp", "port_range_min": 443, "port_range_max": 443},
		}})
		if l, _ := r.body["security_group_rules"].([]any); r.status != 201 || len(l) != 2 || l[1].(map[string]any)["port_range_min"] != float64(443) {
			t.Fatalf("bulk rules: %d %s", r.status, r.raw)
		}

		r = e.do("POST", "/v2.0/routers", projectA, map[string]any{"routers": []any{map[string]any{"name": "r1"}, map[string]any{"name": "r2"}}})
		if r.status != 201 || !slices.Equal(names(r, "routers"), []string{"r1", "r2"}) {
			t.Fatalf("bulk routers: %d %s", r.status, r.raw)
		}
	})
}

// TestBulkAllOrNothing makes one item of a bulk create fail, at the first,
// a middle or the last position and for reasons found before or during
// the writes (an attribute, a rule of the service, an exhausted pool, a
// duplicate rule, a quota counted over the whole batch): the reply is that
// item's error and nothing of the batch is left, on both stores.
func TestBulkAllOrNothing(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		net := e.create(projectA, "networks", map[string]any{"name": "base"})
		sub := e.create(projectA, "subnets", map[string]any{"network_id": net, "ip_version": 4, "cidr": "10.6.0.0/29"}) // .2-.6
		e.create(projectA, "ports", map[string]any{"network_id": net, "name": "first"})                                 // takes .2
		sg := e.createAs(projectA, "security-groups", "security_group", map[string]any{"name": "sg"})
		if r := e.do("PUT", "/v2.0/quotas/"+projectA, "", map[string]any{"quota": map[string]any{"router": 2}}); r.status != 200 {
			t.Fatalf("set quota: %d %s", r.status, r.raw)
		}
		port := func(name string) map[string]any {
			return map[string]any{"name": name, "network_id": net, "fixed_ips": []any{map[string]any{"subnet_id": sub}}}
		}
		rule := map[string]any{"security_group_id": sg, "direction": "ingress", "protocol": "udp", "port_range_min": 53, "port_range_max": 53}
		cases := []faultCase{
			{"network mtu in the middle (service rule)", "POST", "/v2.0/networks",
				map[string]any{"networks": []any{map[string]any{"name": "x1"}, map[string]any{"name": "x2", "mtu": 100000}, map[string]any{"name": "x3"}}},
				400, "InvalidInput", "Requested MTU is too big"},
			{"unknown attribute last (parse)", "POST", "/v2.0/networks",
				map[string]any{"networks": []any{map[string]any{"name": "x1"}, map[string]any{"name": "x2", "bogus": 1}}},
				400, "HTTPBadRequest", "Unrecognized attribute(s) 'bogus'"},
			{"overlapping subnet second", "POST", "/v2.0/subnets",
				map[string]any{"subnets": []any{
					map[string]any{"network_id": net, "ip_version": 4, "cidr": "10.7.0.0/24"},
					map[string]any{"network_id": net, "ip_version": 4, "cidr": "10.7.0.0/25"}}},
				400, "InvalidInput", "overlaps"},
			{"address pool exhausted by the batch", "POST", "/v2.0/ports",
				map[string]any{"ports": []any{port("y1"), port("y2"), port("y3"), port("y4"), port("y5")}},
				409, "IpAddressGenerationFailure", ""},
			{"requested address taken by an earlier item", "POST", "/v2.0/ports",
				map[string]any{"ports": []any{
					map[string]any{"network_id": net, "fixed_ips": []any{map[string]any{"ip_address": "10.6.0.5"}}},
					map[string]any{"network_id": net, "fixed_ips": []any{map[string]any{"ip_address": "10.6.0.5"}}}}},
				409, "IpAddressAlreadyAllocated", ""},
			{"duplicate rule within the batch", "POST", "/v2.0/security-group-rules",
				map[string]any{"security_group_rules": []any{rule, rule}},
				409, "SecurityGroupRuleExists", ""},
			{"quota counted over the batch", "POST", "/v2.0/routers",
				map[string]any{"routers": []any{map[string]any{"name": "q1"}, map[string]any{"name": "q2"}, map[string]any{"name": "q3"}}},
				409, "OverQuota", "router"},
			{"bad tags on a port first", "POST", "/v2.0/ports",
				map[string]any{"ports": []any{map[string]any{"network_id": net, "tags": []any{1}}, port("z")}},
				400, "HTTPBadRequest", "tags"},
			{"empty list", "POST", "/v2.0/networks", map[string]any{"networks": []any{}}, 400, "HTTPBadRequest", "Resources required"},
			{"not a list", "POST", "/v2.0/networks", map[string]any{"networks": map[string]any{"name": "x"}}, 400, "HTTPBadRequest", "Resources required"},
			{"VPN has no bulk", "POST", "/v2.0/vpn/ikepolicies", map[string]any{"ikepolicies": []any{map[string]any{"name": "i"}}},
				400, "HTTPBadRequest", "Bulk operation not supported"},
		}
		snap := func(e *env) string {
			var s string
			for _, c := range []string{"networks", "subnets", "ports", "security-group-rules", "routers", "vpn/ikepolicies"} {
				s += fmt.Sprintf("%s: %s\n", c, e.do("GET", "/v2.0/"+c+"?fields=id&fields=fixed_ips&fields=tags", "", nil).raw)
			}
			return s
		}
		runFaultCases(t, e, cases, snap, "")

		// The pool is intact: a batch that fits takes the next addresses.
		r := e.do("POST", "/v2.0/ports", projectA, map[string]any{"ports": []any{port("ok1"), port("ok2")}})
		if r.status != 201 {
			t.Fatalf("bulk after failures: %d %s", r.status, r.raw)
		}
		var ips []string
		for _, p := range r.body["ports"].([]any) {
			ips = append(ips, p.(map[string]any)["fixed_ips"].([]any)[0].(map[string]any)["ip_address"].(string))
		}
		if want := []string{"10.6.0.3", "10.6.0.4"}; !slices.Equal(ips, want) {
			t.Fatalf("addresses after rolled-back batches: %v, want %v", ips, want)
		}
		if r := e.do("POST", "/v2.0/routers", projectA, map[string]any{"routers": []any{map[string]any{"name": "q1"}, map[string]any{"name": "q2"}}}); r.status != 201 {
			t.Fatalf("two routers within the quota of 2: %d %s", r.status, r.raw)
		}
	})
}

// TestBulkHintsAfterCommit checks that the agents' hints of a bulk create
// go out only once the batch is committed (an agent that fetches its state
// on the hint sees every port of the batch), and not at all when it rolls
// back.
func TestBulkHintsAfterCommit(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, dialect string) {
		var mu sync.Mutex
		var seen []int // ports stored when each hint went out
		var e *env
		e = newEnv(t, dialect, func(o *service.Options) {
			o.Hint = func(ctx context.Context, host string, h agentv1.Hint) {
				var n int
				if err := e.svc.Store().Read(context.Background(), func(tx store.Tx) error {
					ps, err := tx.ListPorts(context.Background(), store.PortFilter{})
					n = len(ps)
					return err
				}); err != nil {
					t.Error(err)
				}
				mu.Lock()
				seen = append(seen, n)
				mu.Unlock()
			}
		})
		if _, err := e.svc.Heartbeat(ctx, agentv1.Heartbeat{Host: "host-a", AgentType: agentv1.AgentTypeDHCP}); err != nil {
			t.Fatal(err)
		}
		net := e.create(projectA, "networks", map[string]any{"name": "n"})
		e.create(projectA, "subnets", map[string]any{"network_id": net, "ip_version": 4, "cidr": "10.8.0.0/24"})
		take := func() []int {
			mu.Lock()
			defer mu.Unlock()
			out := seen
			seen = nil
			return out
		}
		take()
		stored, _ := e.do("GET", "/v2.0/ports", "", nil).body["ports"].([]any)
		base := len(stored) // the network's DHCP port
		bad := e.do("POST", "/v2.0/ports", projectA, map[string]any{"ports": []any{
			map[string]any{"network_id": net}, map[string]any{"network_id": net, "fixed_ips": []any{map[string]any{"ip_address": "10.9.9.9"}}},
		}})
		if bad.status < 400 || bad.status >= 500 {
			t.Fatalf("bulk with a bad address: %d %s", bad.status, bad.raw)
		}
		if got := take(); len(got) != 0 {
			t.Fatalf("a rolled-back batch sent hints: %v", got)
		}
		ok := e.do("POST", "/v2.0/ports", projectA, map[string]any{"ports": []any{
			map[string]any{"network_id": net}, map[string]any{"network_id": net}, map[string]any{"network_id": net},
		}})
		if ok.status != 201 {
			t.Fatalf("bulk ports: %d %s", ok.status, ok.raw)
		}
		got := take()
		if len(got) == 0 {
			t.Fatal("a committed batch sent no hint")
		}
		for _, n := range got {
			if n != base+3 {
				t.Fatalf("a hint went out with %d ports stored, want all %d: %v", n, base+3, got)
			}
		}
	})
}

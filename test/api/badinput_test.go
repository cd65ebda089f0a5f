package api_test

import (
	"fmt"
	"maps"
	"strings"
	"testing"

	"github.com/neutrino-net/neutrino/internal/store/sqlstore/sqltest"
)

const nul = "a\x00b"

// TestBadInputNoServerError sends NUL bytes in every string attribute of
// every resource (create and update), in path ids and in query values,
// and integers outside 32 bits in every integer attribute, on both
// stores: each is a 4xx NeutronError and nothing changes. Integers at the
// limit are stored and read back.
func TestBadInputNoServerError(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, dialect string) {
		e := newEnv(t, dialect)
		tp := newVPNTopo(t, e)
		ike := mkIKE(t, e.a, "ike")
		ipsec := mkIPsec(t, e.a, "ipsec", "esp")
		svc := mkService(t, e.a, "svc", tp.router, "").ID
		local := e.createAs(projectA, "vpn/endpoint-groups", "endpoint_group", map[string]any{"type": "subnet", "endpoints": []any{tp.sub}})
		peer := e.createAs(projectA, "vpn/endpoint-groups", "endpoint_group", map[string]any{"type": "cidr", "endpoints": []any{"192.168.9.0/24"}})
		conn := map[string]any{"vpnservice_id": svc, "ikepolicy_id": ike, "ipsecpolicy_id": ipsec,
			"peer_address": "198.51.100.9", "peer_id": "198.51.100.9", "psk": "secret",
			"local_ep_group_id": local, "peer_ep_group_id": peer}
		sg := e.createAs(projectA, "security-groups", "security_group", map[string]any{"name": "sg"})
		port := e.create(projectA, "ports", map[string]any{"network_id": tp.net})
		pool := e.createAs(projectA, "subnetpools", "subnetpool", map[string]any{"prefixes": []any{"10.200.0.0/16"}})

		type res struct {
			path, key string
			base      map[string]any // a valid create body
			strs      []string       // string attributes
			ints      []string       // integer attributes ("a.b": b in object a)
			id        string         // an existing one, for PUT
		}
		resources := []res{
			{path: "networks", key: "network", base: map[string]any{}, strs: []string{"name", "description"}, ints: []string{"mtu"}, id: tp.net},
			{path: "subnets", key: "subnet", base: map[string]any{"network_id": tp.net, "ip_version": 4, "cidr": "10.9.0.0/24"},
				strs: []string{"name", "description"}, ints: []string{"ip_version"}, id: tp.sub},
			{path: "ports", key: "port", base: map[string]any{"network_id": tp.net}, strs: []string{"name", "description", "device_id", "device_owner"}, id: port},
			{path: "subnetpools", key: "subnetpool", base: map[string]any{"prefixes": []any{"10.201.0.0/16"}}, strs: []string{"name", "description"},
				ints: []string{"default_prefixlen", "min_prefixlen", "max_prefixlen"}, id: pool},
			{path: "routers", key: "router", base: map[string]any{}, strs: []string{"name", "description"}, id: tp.router},
			{path: "security-groups", key: "security_group", base: map[string]any{}, strs: []string{"name", "description"}, id: sg},
			{path: "security-group-rules", key: "security_group_rule", base: map[string]any{"security_group_id": sg, "direction": "ingress",
				"protocol": "tcp"}, strs: []string{"description"}, ints: []string{"port_range_min", "port_range_max"}},
			{path: "vpn/ikepolicies", key: "ikepolicy", base: map[string]any{}, strs: []string{"name", "description"}, ints: []string{"lifetime.value"}, id: ike},
			{path: "vpn/ipsecpolicies", key: "ipsecpolicy", base: map[string]any{}, strs: []string{"name", "description"}, ints: []string{"lifetime.value"}, id: ipsec},
			{path: "vpn/vpnservices", key: "vpnservice", base: map[string]any{"router_id": tp.router}, strs: []string{"name", "description"}, id: svc},
			{path: "vpn/endpoint-groups", key: "endpoint_group", base: map[string]any{"type": "cidr", "endpoints": []any{"192.168.8.0/24"}},
				strs: []string{"name", "description", "endpoints"}, id: peer},
			{path: "vpn/ipsec-site-connections", key: "ipsec_site_connection", base: conn,
				strs: []string{"name", "description", "psk", "peer_id", "peer_address", "local_id"}, ints: []string{"mtu", "dpd.interval", "dpd.timeout"}},
		}
		with := func(base map[string]any, attr string, v any) map[string]any {
			out := maps.Clone(base)
			if obj, field, ok := strings.Cut(attr, "."); ok {
				out[obj] = map[string]any{field: v}
			} else if attr == "endpoints" {
				out[attr] = []any{v}
			} else {
				out[attr] = v
			}
			return out
		}
		type badCase struct {
			name, method, path string
			body               any
		}
		var cases []badCase
		for _, r := range resources {
			for _, a := range r.strs {
				cases = append(cases, badCase{r.key + " create " + a, "POST", "/v2.0/" + r.path, map[string]any{r.key: with(r.base, a, nul)}})
				if r.id != "" && a != "endpoints" {
					cases = append(cases, badCase{r.key + " update " + a, "PUT", "/v2.0/" + r.path + "/" + r.id, map[string]any{r.key: map[string]any{a: nul}}})
				}
			}
			for _, a := range r.ints {
				for _, n := range []any{int64(1) << 31, -(int64(1) << 31) - 1, "99999999999999999999"} {
					cases = append(cases, badCase{fmt.Sprintf("%s create %s=%v", r.key, a, n), "POST", "/v2.0/" + r.path, map[string]any{r.key: with(r.base, a, n)}})
				}
			}
			cases = append(cases,
				badCase{r.key + " key with NUL", "POST", "/v2.0/" + r.path, map[string]any{r.key: with(r.base, "x\x00y", 1)}},
				badCase{r.key + " show id with NUL", "GET", "/v2.0/" + r.path + "/" + "a%00b", nil},
				badCase{r.key + " update id with NUL", "PUT", "/v2.0/" + r.path + "/" + "a%00b", map[string]any{r.key: map[string]any{"name": "x"}}},
				badCase{r.key + " delete id with NUL", "DELETE", "/v2.0/" + r.path + "/" + "a%00b", nil},
				badCase{r.key + " filter with NUL", "GET", "/v2.0/" + r.path + "?name=a%00b", nil},
				badCase{r.key + " marker with NUL", "GET", "/v2.0/" + r.path + "?limit=1&sort_key=id&sort_dir=asc&marker=a%00b", nil},
			)
			if !strings.HasPrefix(r.path, "vpn/") { // the VPN resources show no revision_number
				cases = append(cases, badCase{r.key + " integer filter too big", "GET", "/v2.0/" + r.path + "?revision_number=99999999999", nil})
			}
		}
		cases = append(cases,
			badCase{"quota too big", "PUT", "/v2.0/quotas/" + projectB, map[string]any{"quota": map[string]any{"network": int64(1) << 32}}},
			badCase{"router interface with NUL", "PUT", "/v2.0/routers/" + tp.router + "/add_router_interface", map[string]any{"subnet_id": nul}},
			badCase{"NUL in an admin path", "GET", "/v2.0/agents/a%00b/l3-routers", nil},
		)
		fivexx := 0
		before := vpnSnapshot(e) + e.do("GET", "/v2.0/quotas/"+projectB, "", nil).raw
		for _, tc := range cases {
			project := projectA
			if strings.HasPrefix(tc.name, "quota") {
				project = "" // the admin
			}
			r := e.do(tc.method, tc.path, project, tc.body)
			typ, msg := r.fault()
			if r.status >= 500 {
				fivexx++
			}
			if r.status < 400 || r.status >= 500 || typ == "" || msg == "" {
				t.Errorf("%s: got %d %s, want a 4xx NeutronError", tc.name, r.status, r.raw)
			}
		}
		if after := vpnSnapshot(e) + e.do("GET", "/v2.0/quotas/"+projectB, "", nil).raw; after != before {
			t.Errorf("refused requests changed the store")
		}
		t.Logf("%d bad-input cases on %s, %d answered 5xx", len(cases), dialect, fivexx)

		// The largest values the API takes are stored and read back.
		max := int64(1)<<31 - 1
		id := e.createAs(projectA, "vpn/ikepolicies", "ikepolicy", map[string]any{"name": "long", "lifetime": map[string]any{"value": max}})
		got := e.do("GET", "/v2.0/vpn/ikepolicies/"+id, projectA, nil).body["ikepolicy"].(map[string]any)["lifetime"].(map[string]any)["value"]
		if got != float64(max) {
			t.Errorf("lifetime %d read back as %v", max, got)
		}
		c := maps.Clone(conn)
		c["dpd"] = map[string]any{"interval": max - 1, "timeout": max}
		c["mtu"] = max
		id = e.createAs(projectA, "vpn/ipsec-site-connections", "ipsec_site_connection", c)
		cb := e.do("GET", "/v2.0/vpn/ipsec-site-connections/"+id, projectA, nil).body["ipsec_site_connection"].(map[string]any)
		if cb["mtu"] != float64(max) || cb["dpd"].(map[string]any)["timeout"] != float64(max) {
			t.Errorf("connection limits read back as mtu %v, dpd %v", cb["mtu"], cb["dpd"])
		}
	})
}

package api_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/attributestags"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/subnetpools"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"
)

// TestSubnetPools drives subnet pools on both stores: CRUD with
// gophercloud, subnets allocated by prefix length (given or the pool's
// default), by CIDR within the pool, from the default pool, the
// reference's refusals (bounds, overlap, exhaustion, visibility, admin-only
// attributes, one default per IP version, shrinking prefixes, a pool in
// use, quota), and tags.
func TestSubnetPools(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		def := must[*subnetpools.SubnetPool](t)(subnetpools.Create(ctx, e.admin, subnetpools.CreateOpts{
			Name: "public", Prefixes: []string{"10.100.0.0/16"}, DefaultPrefixLen: 24, MaxPrefixLen: 28,
			Shared: true, IsDefault: true}).Extract())
		if def.IPversion != 4 || def.MinPrefixLen != 8 || def.DefaultPrefixLen != 24 || !def.IsDefault || !def.Shared {
			t.Fatalf("default pool = %+v", def)
		}
		mine := must[*subnetpools.SubnetPool](t)(subnetpools.Create(ctx, e.a, subnetpools.CreateOpts{
			Name: "mine", Prefixes: []string{"192.168.0.1/22"}, DefaultPrefixLen: 24}).Extract())
		if !slices.Equal(mine.Prefixes, []string{"192.168.0.0/22"}) || mine.MaxPrefixLen != 32 {
			t.Fatalf("pool prefixes not canonical or defaults wrong: %+v", mine)
		}
		net := e.create(projectA, "networks", map[string]any{"name": "n"})
		subnet := func(extra map[string]any) reply {
			body := map[string]any{"network_id": net, "ip_version": 4}
			for k, v := range extra {
				body[k] = v
			}
			return e.do("POST", "/v2.0/subnets", projectA, map[string]any{"subnet": body})
		}
		cidrOf := func(r reply) string {
			t.Helper()
			return item(t, r, 201, "subnet")["cidr"].(string)
		}
		if got := cidrOf(subnet(map[string]any{"subnetpool_id": mine.ID, "prefixlen": 24})); got != "192.168.0.0/24" {
			t.Fatalf("first /24 = %s", got)
		}
		r := subnet(map[string]any{"subnetpool_id": mine.ID})
		s2 := item(t, r, 201, "subnet")
		if s2["cidr"] != "192.168.1.0/24" || s2["subnetpool_id"] != mine.ID || s2["gateway_ip"] != "192.168.1.1" {
			t.Fatalf("default-length subnet = %v", s2)
		}
		if got := cidrOf(subnet(map[string]any{"subnetpool_id": mine.ID, "cidr": "192.168.3.0/24"})); got != "192.168.3.0/24" {
			t.Fatalf("requested cidr = %s", got)
		}
		sub := must[*subnets.Subnet](t)(subnets.Create(ctx, e.a, subnets.CreateOpts{NetworkID: net, IPVersion: 4,
			SubnetPoolID: mine.ID, Prefixlen: 25}).Extract())
		if sub.CIDR != "192.168.2.0/25" {
			t.Fatalf("gophercloud prefixlen 25 = %s", sub.CIDR)
		}
		other := e.create(projectA, "networks", map[string]any{"name": "other"})
		r = e.do("POST", "/v2.0/subnets", projectA, map[string]any{"subnet": map[string]any{"network_id": other, "ip_version": 4, "use_default_subnetpool": true}})
		if d := item(t, r, 201, "subnet"); d["cidr"] != "10.100.0.0/24" || d["subnetpool_id"] != def.ID {
			t.Fatalf("use_default_subnetpool = %v", d)
		}

		faults := []faultCase{
			{"shorter than min", "POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": net, "ip_version": 4, "subnetpool_id": mine.ID, "prefixlen": 7}}, 400, "IllegalSubnetPoolPrefixBounds", "prefixlen=7"},
			{"overlap in the pool", "POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": net, "ip_version": 4, "subnetpool_id": mine.ID, "cidr": "192.168.3.128/25"}}, 409, "SubnetAllocationError", ""},
			{"outside the pool", "POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": net, "ip_version": 4, "subnetpool_id": mine.ID, "cidr": "172.16.0.0/24"}}, 409, "SubnetAllocationError", ""},
			{"exhausted", "POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": net, "ip_version": 4, "subnetpool_id": mine.ID, "prefixlen": 24}}, 409, "SubnetAllocationError", "Insufficient prefix space to allocate subnet size /24"},
			{"version mismatch", "POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": net, "ip_version": 6, "subnetpool_id": mine.ID}}, 400, "InvalidInput", "IPv6"},
			{"no v6 default", "POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": net, "ip_version": 6, "use_default_subnetpool": true}}, 400, "BadRequest", "No default subnetpool found for IPv6"},
			{"no such pool", "POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": net, "ip_version": 4, "subnetpool_id": "0e0d5ab5-7f16-4e4b-9d43-8c1fcb0fd7a0"}}, 404, "SubnetPoolNotFound", ""},
			{"shared by member", "POST", "/v2.0/subnetpools", map[string]any{"subnetpool": map[string]any{"prefixes": []string{"172.20.0.0/16"}, "shared": true}}, 403, "PolicyNotAuthorized", "create_subnetpool:shared"},
			{"mixed versions", "POST", "/v2.0/subnetpools", map[string]any{"subnetpool": map[string]any{"prefixes": []string{"172.20.0.0/16", "fd00::/48"}}}, 400, "InvalidInput", "Cannot mix IPv4 and IPv6"},
			{"default below min", "POST", "/v2.0/subnetpools", map[string]any{"subnetpool": map[string]any{"prefixes": []string{"172.20.0.0/16"}, "min_prefixlen": 20, "default_prefixlen": 18}}, 400, "IllegalSubnetPoolPrefixBounds", ""},
			{"no prefixes", "POST", "/v2.0/subnetpools", map[string]any{"subnetpool": map[string]any{"name": "x"}}, 400, "HTTPBadRequest", "Required attribute 'prefixes'"},
			{"shrink prefixes", "PUT", "/v2.0/subnetpools/" + mine.ID, map[string]any{"subnetpool": map[string]any{"prefixes": []string{"192.168.0.0/23"}}}, 400, "IllegalSubnetPoolPrefixUpdate", ""},
			{"delete in use", "DELETE", "/v2.0/subnetpools/" + mine.ID, nil, 409, "SubnetPoolInUse", ""},
		}
		snap := func(e *env) string {
			return e.do("GET", "/v2.0/subnetpools", "", nil).raw + e.do("GET", "/v2.0/subnets?fields=cidr", "", nil).raw
		}
		runFaultCases(t, e, faults, snap, "")
		if r := e.do("POST", "/v2.0/subnetpools", "", map[string]any{"subnetpool": map[string]any{"prefixes": []string{"172.30.0.0/16"}, "is_default": true}}); r.status != 400 {
			t.Fatalf("second default v4 pool: %d %s", r.status, r.raw)
		}

		// Visibility: B sees the shared pool, not A's.
		if r := e.do("GET", "/v2.0/subnetpools/"+mine.ID, projectB, nil); r.status != 404 {
			t.Fatalf("B GET A's pool: %d", r.status)
		}
		if got := listIDs(t, e, "/v2.0/subnetpools", "subnetpools", projectB); !slices.Equal(got, []string{def.ID}) {
			t.Fatalf("B lists %v, want the shared pool", got)
		}

		// Growing the prefixes makes room again; tags work on pools.
		grown := must[*subnetpools.SubnetPool](t)(subnetpools.Update(ctx, e.a, mine.ID, subnetpools.UpdateOpts{
			Prefixes: []string{"192.168.0.0/21"}}).Extract())
		if !slices.Equal(grown.Prefixes, []string{"192.168.0.0/21"}) || grown.RevisionNumber != 1 {
			t.Fatalf("grown pool = %+v", grown)
		}
		if got := cidrOf(subnet(map[string]any{"subnetpool_id": mine.ID})); got != "192.168.4.0/24" {
			t.Fatalf("after growing = %s", got)
		}
		if got := must[[]string](t)(attributestags.ReplaceAll(ctx, e.a, "subnetpools", mine.ID, attributestags.ReplaceAllOpts{Tags: []string{"t"}}).Extract()); !slices.Equal(got, []string{"t"}) {
			t.Fatalf("pool tags = %v", got)
		}

		// Quota on pools.
		if r := e.do("PUT", "/v2.0/quotas/"+projectB, "", map[string]any{"quota": map[string]any{"subnetpool": 1}}); r.status != 200 {
			t.Fatalf("set quota: %d %s", r.status, r.raw)
		}
		e.createAs(projectB, "subnetpools", "subnetpool", map[string]any{"prefixes": []string{"172.21.0.0/16"}})
		e.want("second pool over quota", e.do("POST", "/v2.0/subnetpools", projectB, map[string]any{"subnetpool": map[string]any{"prefixes": []string{"172.22.0.0/16"}}}), 409, "OverQuota")

		// A pool without subnets is deleted.
		empty := e.createAs(projectA, "subnetpools", "subnetpool", map[string]any{"prefixes": []string{"172.23.0.0/16"}})
		if r := e.do("DELETE", "/v2.0/subnetpools/"+empty, projectA, nil); r.status != 204 {
			t.Fatalf("delete empty pool: %d %s", r.status, r.raw)
		}
	})
}

// TestSubnetPoolConcurrentAllocation creates subnets from one pool on
// different networks at the same time, on both stores: every one gets its
// own prefix, and the pool's last free prefix goes to exactly one.
func TestSubnetPoolConcurrentAllocation(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		pool := e.createAs(projectA, "subnetpools", "subnetpool", map[string]any{
			"prefixes": []any{"10.150.0.0/21"}, "default_prefixlen": 24}) // room for 8 /24s
		const n = 10
		nets := make([]string, n)
		for i := range nets {
			nets[i] = e.create(projectA, "networks", map[string]any{"name": fmt.Sprint("n", i)})
		}
		var wg sync.WaitGroup
		replies := make([]reply, n)
		for i := range n {
			wg.Go(func() {
				replies[i] = e.do("POST", "/v2.0/subnets", projectA, map[string]any{"subnet": map[string]any{
					"network_id": nets[i], "ip_version": 4, "subnetpool_id": pool}})
			})
		}
		wg.Wait()
		seen := map[string]bool{}
		refused := 0
		for _, r := range replies {
			switch r.status {
			case 201:
				cidr := r.body["subnet"].(map[string]any)["cidr"].(string)
				if seen[cidr] {
					t.Fatalf("prefix %s allocated twice", cidr)
				}
				seen[cidr] = true
			case 409:
				if typ, _ := r.fault(); typ != "SubnetAllocationError" {
					t.Fatalf("refusal %s", r.raw)
				}
				refused++
			default:
				t.Fatalf("unexpected reply %d %s", r.status, r.raw)
			}
		}
		if len(seen) != 8 || refused != n-8 {
			t.Fatalf("%d allocated, %d refused; want 8 and %d", len(seen), refused, n-8)
		}
	})
}

// TestSubnetPoolPrefixOps adds prefixes (merged with the pool's), removes
// some (split out of the pool's) and refuses to remove what a subnet uses,
// an empty result, another project's pool and a malformed body, on both
// stores.
func TestSubnetPoolPrefixOps(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		pool := e.createAs(projectA, "subnetpools", "subnetpool", map[string]any{"prefixes": []any{"10.70.0.0/24"}, "default_prefixlen": 26})
		path := "/v2.0/subnetpools/" + pool
		prefixes := func(r reply) []string {
			t.Helper()
			if r.status != 200 {
				t.Fatalf("%d %s", r.status, r.raw)
			}
			return strs(r.body["prefixes"])
		}
		if got := prefixes(e.do("PUT", path+"/add_prefixes", projectA, map[string]any{"prefixes": []any{"10.70.1.0/24", "10.80.0.0/24"}})); !slices.Equal(got, []string{"10.70.0.0/23", "10.80.0.0/24"}) {
			t.Fatalf("add_prefixes = %v", got)
		}
		net := e.create(projectA, "networks", map[string]any{"name": "n"})
		sub := item(t, e.do("POST", "/v2.0/subnets", projectA, map[string]any{"subnet": map[string]any{
			"network_id": net, "ip_version": 4, "subnetpool_id": pool}}), 201, "subnet")
		if sub["cidr"] != "10.70.0.0/26" {
			t.Fatalf("subnet = %v", sub["cidr"])
		}
		if got := prefixes(e.do("PUT", path+"/remove_prefixes", projectA, map[string]any{"prefixes": []any{"10.70.1.0/24", "10.70.0.128/25"}})); !slices.Equal(got, []string{"10.70.0.0/25", "10.80.0.0/24"}) {
			t.Fatalf("remove_prefixes = %v", got)
		}
		runFaultCases(t, e, []faultCase{
			{"remove what a subnet uses", "PUT", path + "/remove_prefixes", map[string]any{"prefixes": []any{"10.70.0.0/26"}}, 400, "IllegalSubnetPoolUpdate", "10.70.0.0/26"},
			{"remove everything", "PUT", path + "/remove_prefixes", map[string]any{"prefixes": []any{"0.0.0.0/0"}}, 400, "IllegalSubnetPoolUpdate", ""},
			{"add another version", "PUT", path + "/add_prefixes", map[string]any{"prefixes": []any{"fd00::/48"}}, 400, "InvalidInput", "Cannot mix"},
			{"bad prefix", "PUT", path + "/add_prefixes", map[string]any{"prefixes": []any{"10.0.0.0/33"}}, 400, "HTTPBadRequest", "is not a valid IP subnet"},
			{"no prefixes key", "PUT", path + "/add_prefixes", map[string]any{"prefix": []any{"10.1.0.0/24"}}, 400, "HTTPBadRequest", "prefixes"},
		}, func(e *env) string { return e.do("GET", path, "", nil).raw }, "")
		if r := e.do("PUT", path+"/add_prefixes", projectB, map[string]any{"prefixes": []any{"10.90.0.0/24"}}); r.status != 404 {
			t.Fatalf("B adds to A's pool: %d %s", r.status, r.raw)
		}
		got := item(t, e.do("GET", path, projectA, nil), 200, "subnetpool")
		if !slices.Equal(strs(got["prefixes"]), []string{"10.70.0.0/25", "10.80.0.0/24"}) || got["revision_number"] != float64(2) {
			t.Fatalf("pool after the operations = %v", got)
		}
	})
}

// TestSubnetPoolDefaultQuota checks default_quota on both stores: each
// project may take that many addresses (IPv4) or /64s (IPv6) from a
// shared pool, counted over its own subnets; the next allocation gets the
// reference's 409 and writes nothing; deleting a subnet gives its share
// back, and null or 0 lifts the limit.
func TestSubnetPoolDefaultQuota(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		quota := 512
		pool := must[*subnetpools.SubnetPool](t)(subnetpools.Create(ctx, e.admin, subnetpools.CreateOpts{
			Name: "q", Prefixes: []string{"10.60.0.0/16"}, DefaultPrefixLen: 24, Shared: true, DefaultQuota: quota}).Extract())
		if pool.DefaultQuota != quota {
			t.Fatalf("created pool default_quota = %d", pool.DefaultQuota)
		}
		if got := listIDs(t, e, "/v2.0/subnetpools?default_quota=512", "subnetpools", ""); !slices.Equal(got, []string{pool.ID}) {
			t.Fatalf("filter default_quota=512 = %v", got)
		}
		netA := e.create(projectA, "networks", map[string]any{"name": "a"})
		netB := e.createAs(projectB, "networks", "network", map[string]any{"name": "b"})
		alloc := func(project, net string, prefixlen int) reply {
			return e.do("POST", "/v2.0/subnets", project, map[string]any{"subnet": map[string]any{
				"network_id": net, "ip_version": 4, "subnetpool_id": pool.ID, "prefixlen": prefixlen}})
		}
		first := item(t, alloc(projectA, netA, 24), 201, "subnet")
		item(t, alloc(projectA, netA, 25), 201, "subnet") // 256 + 128 of 512
		countSubnets := func(e *env) string { return fmt.Sprint(len(listIDs(t, e, "/v2.0/subnets", "subnets", ""))) }
		runFaultCases(t, e, []faultCase{
			{"over the pool's quota", "POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{
				"network_id": netA, "ip_version": 4, "subnetpool_id": pool.ID, "prefixlen": 24}},
				409, "SubnetPoolQuotaExceeded", "Per-tenant subnet pool prefix quota exceeded"},
			{"over it by cidr", "POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{
				"network_id": netA, "ip_version": 4, "subnetpool_id": pool.ID, "cidr": "10.60.200.0/24"}},
				409, "SubnetPoolQuotaExceeded", ""},
			{"negative quota", "PUT", "/v2.0/subnetpools/" + pool.ID, map[string]any{"subnetpool": map[string]any{"default_quota": -1}},
				400, "HTTPBadRequest", "non-negative"},
			{"quota not a number", "PUT", "/v2.0/subnetpools/" + pool.ID, map[string]any{"subnetpool": map[string]any{"default_quota": "lots"}},
				400, "HTTPBadRequest", "is not an integer"},
		}, countSubnets, "")
		// The remaining 128 addresses still fit, and another project has
		// its own 512.
		item(t, alloc(projectA, netA, 25), 201, "subnet")
		item(t, alloc(projectB, netB, 24), 201, "subnet")
		item(t, alloc(projectB, netB, 24), 201, "subnet")
		e.want("B over its own quota", alloc(projectB, netB, 32), 409, "SubnetPoolQuotaExceeded")
		// Deleting a subnet gives its addresses back.
		if r := e.do("DELETE", "/v2.0/subnets/"+first["id"].(string), projectA, nil); r.status != 204 {
			t.Fatalf("delete subnet: %d %s", r.status, r.raw)
		}
		item(t, alloc(projectA, netA, 24), 201, "subnet")
		// null lifts the limit (0 too, as in the reference).
		for _, q := range []any{nil, 0} {
			r := e.do("PUT", "/v2.0/subnetpools/"+pool.ID, "", map[string]any{"subnetpool": map[string]any{"default_quota": q}})
			if got := item(t, r, 200, "subnetpool")["default_quota"]; fmt.Sprint(got) != fmt.Sprint(map[any]any{nil: nil, 0: float64(0)}[q]) {
				t.Fatalf("default_quota after setting %v = %v", q, got)
			}
		}
		item(t, alloc(projectA, netA, 22), 201, "subnet")

		// IPv6 counts /64s; a longer prefix costs a fraction of one.
		v6 := must[*subnetpools.SubnetPool](t)(subnetpools.Create(ctx, e.a, subnetpools.CreateOpts{
			Name: "v6", Prefixes: []string{"fd60::/48"}, DefaultPrefixLen: 64, DefaultQuota: 2}).Extract())
		alloc6 := func(prefixlen int) reply {
			return e.do("POST", "/v2.0/subnets", projectA, map[string]any{"subnet": map[string]any{
				"network_id": netA, "ip_version": 6, "subnetpool_id": v6.ID, "prefixlen": prefixlen}})
		}
		item(t, alloc6(64), 201, "subnet")
		item(t, alloc6(80), 201, "subnet")
		e.want("a second /64 after a /80", alloc6(64), 409, "SubnetPoolQuotaExceeded")
		item(t, alloc6(65), 201, "subnet")
	})
}

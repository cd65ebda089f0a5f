package api_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/attributestags"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/addressscopes"
)

// TestAddressScopes drives address scopes on both stores: CRUD with
// gophercloud, shared for admins only and never unshared, visibility,
// subnet pools joining a scope (the same IP version, prefixes that overlap
// no other pool of the scope, a scope the caller owns), networks showing
// the scopes of their subnets' pools, a scope in use, tags; refusals
// change nothing.
func TestAddressScopes(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		scope := must[*addressscopes.AddressScope](t)(addressscopes.Create(ctx, e.a, addressscopes.CreateOpts{
			Name: "s4", IPVersion: 4}).Extract())
		if scope.IPVersion != 4 || scope.Shared || scope.ProjectID != projectA {
			t.Fatalf("scope = %+v", scope)
		}
		s6 := e.createAs(projectA, "address-scopes", "address_scope", map[string]any{"name": "s6", "ip_version": 6})
		shared := must[*addressscopes.AddressScope](t)(addressscopes.Create(ctx, e.admin, addressscopes.CreateOpts{
			Name: "public", IPVersion: 4, Shared: true}).Extract())
		// Visibility: own and shared; another project's is a 404.
		if r := e.do("GET", "/v2.0/address-scopes/"+scope.ID, projectB, nil); r.status != 404 {
			t.Errorf("another project's scope: %d %s", r.status, r.raw)
		}
		l := e.do("GET", "/v2.0/address-scopes?sort_key=name&sort_dir=asc", projectB, nil)
		if items, _ := l.body["address_scopes"].([]any); len(items) != 1 || items[0].(map[string]any)["id"] != shared.ID {
			t.Errorf("project B lists %s", l.raw)
		}
		name := "renamed"
		got := must[*addressscopes.AddressScope](t)(addressscopes.Update(ctx, e.a, scope.ID, addressscopes.UpdateOpts{Name: &name}).Extract())
		if got.Name != name {
			t.Errorf("update: %+v", got)
		}

		pool := func(project string, attrs map[string]any) reply {
			return e.do("POST", "/v2.0/subnetpools", project, map[string]any{"subnetpool": attrs})
		}
		p1 := item(t, pool(projectA, map[string]any{"name": "p1", "prefixes": []string{"10.10.0.0/16"}, "address_scope_id": scope.ID}), 201, "subnetpool")
		if p1["address_scope_id"] != scope.ID {
			t.Fatalf("pool in scope: %v", p1)
		}
		p2 := item(t, pool(projectA, map[string]any{"name": "p2", "prefixes": []string{"10.20.0.0/16"}}), 201, "subnetpool")
		snapshot := func() string {
			return e.do("GET", "/v2.0/subnetpools?sort_key=name&sort_dir=asc&fields=name&fields=prefixes&fields=address_scope_id", "", nil).raw +
				e.do("GET", "/v2.0/address-scopes?sort_key=name&sort_dir=asc&fields=name&fields=shared", "", nil).raw
		}
		before := snapshot()
		if !strings.Contains(before, `"p1"`) {
			t.Fatalf("snapshot %s", before)
		}
		for _, tc := range []struct {
			what    string
			method  string
			path    string
			project string
			body    map[string]any
			status  int
			typ     string
		}{
			{"overlapping pool", "POST", "/v2.0/subnetpools", projectA, map[string]any{"subnetpool": map[string]any{
				"prefixes": []string{"10.10.128.0/20"}, "address_scope_id": scope.ID}}, 400, "AddressScopePrefixConflict"},
			{"pool joins with overlap", "PUT", "/v2.0/subnetpools/" + p2["id"].(string), projectA, map[string]any{"subnetpool": map[string]any{
				"prefixes": []string{"10.20.0.0/16", "10.10.7.0/24"}, "address_scope_id": scope.ID}}, 400, "AddressScopePrefixConflict"},
			{"pool grows, no overlap", "PUT", "/v2.0/subnetpools/" + p1["id"].(string) + "/add_prefixes", projectA,
				map[string]any{"prefixes": []string{"192.168.0.0/24"}}, 200, ""},
			{"wrong ip version", "POST", "/v2.0/subnetpools", projectA, map[string]any{"subnetpool": map[string]any{
				"prefixes": []string{"fd00::/48"}, "address_scope_id": scope.ID}}, 400, "IllegalSubnetPoolIpVersionAssociationToAddressScope"},
			{"another project's scope", "POST", "/v2.0/subnetpools", projectB, map[string]any{"subnetpool": map[string]any{
				"prefixes": []string{"10.30.0.0/16"}, "address_scope_id": scope.ID}}, 404, "AddressScopeNotFound"},
			{"a shared scope not owned", "POST", "/v2.0/subnetpools", projectB, map[string]any{"subnetpool": map[string]any{
				"prefixes": []string{"10.30.0.0/16"}, "address_scope_id": shared.ID}}, 400, "IllegalSubnetPoolAssociationToAddressScope"},
			{"no such scope", "POST", "/v2.0/subnetpools", projectA, map[string]any{"subnetpool": map[string]any{
				"prefixes": []string{"10.30.0.0/16"}, "address_scope_id": "6f1ad1f2-7e9e-4a33-9f0d-2a7c1a9f0c11"}}, 404, "AddressScopeNotFound"},
			{"shared by a member", "POST", "/v2.0/address-scopes", projectA, map[string]any{"address_scope": map[string]any{
				"ip_version": 4, "shared": true}}, 403, "PolicyNotAuthorized"},
			{"no ip_version", "POST", "/v2.0/address-scopes", projectA, map[string]any{"address_scope": map[string]any{
				"name": "x"}}, 400, "HTTPBadRequest"},
			{"ip_version 5", "POST", "/v2.0/address-scopes", projectA, map[string]any{"address_scope": map[string]any{
				"ip_version": 5}}, 400, "HTTPBadRequest"},
			{"unshare", "PUT", "/v2.0/address-scopes/" + shared.ID, "", map[string]any{"address_scope": map[string]any{
				"shared": false}}, 400, "AddressScopeUpdateError"},
			{"in use", "DELETE", "/v2.0/address-scopes/" + scope.ID, projectA, nil, 409, "AddressScopeInUse"},
		} {
			r := e.do(tc.method, tc.path, tc.project, tc.body)
			if tc.status == 200 {
				// Growing to a prefix no other pool of the scope has passes;
				// undo it so the snapshot holds.
				if r.status != 200 {
					t.Errorf("%s: %d %s", tc.what, r.status, r.raw)
				}
				e.do("PUT", "/v2.0/subnetpools/"+p1["id"].(string)+"/remove_prefixes", projectA, map[string]any{"prefixes": []string{"192.168.0.0/24"}})
				continue
			}
			if typ, _ := r.fault(); r.status != tc.status || typ != tc.typ {
				t.Errorf("%s: %d %s, want %d %s", tc.what, r.status, r.raw, tc.status, tc.typ)
			}
		}
		if after := snapshot(); after != before {
			t.Errorf("refused requests changed something:\nbefore %s\nafter  %s", before, after)
		}
		// p2 grows into the scope's space: refused once it is in the scope.
		item(t, e.do("PUT", "/v2.0/subnetpools/"+p2["id"].(string), projectA, map[string]any{"subnetpool": map[string]any{
			"address_scope_id": scope.ID}}), 200, "subnetpool")
		if r := e.do("PUT", "/v2.0/subnetpools/"+p2["id"].(string)+"/add_prefixes", projectA,
			map[string]any{"prefixes": []string{"10.10.5.0/24"}}); r.status != 400 {
			t.Errorf("add_prefixes overlapping the scope: %d %s", r.status, r.raw)
		}

		// Networks show the scopes of their subnets' pools.
		net := e.create(projectA, "networks", map[string]any{"name": "n"})
		n := item(t, e.do("GET", "/v2.0/networks/"+net, projectA, nil), 200, "network")
		if n["ipv4_address_scope"] != nil || n["ipv6_address_scope"] != nil {
			t.Errorf("network without subnets has scopes: %v", n)
		}
		e.create(projectA, "subnets", map[string]any{"network_id": net, "ip_version": 4, "subnetpool_id": p1["id"], "prefixlen": 24})
		p6 := item(t, pool(projectA, map[string]any{"name": "p6", "prefixes": []string{"fd00::/48"}, "address_scope_id": s6}), 201, "subnetpool")
		e.create(projectA, "subnets", map[string]any{"network_id": net, "ip_version": 6, "subnetpool_id": p6["id"]})
		n = item(t, e.do("GET", "/v2.0/networks/"+net, projectA, nil), 200, "network")
		if n["ipv4_address_scope"] != scope.ID || n["ipv6_address_scope"] != s6 {
			t.Errorf("network scopes %v %v, want %s %s", n["ipv4_address_scope"], n["ipv6_address_scope"], scope.ID, s6)
		}
		l = e.do("GET", "/v2.0/subnetpools?address_scope_id="+scope.ID+"&fields=name", projectA, nil)
		if !strings.Contains(l.raw, `"p1"`) || !strings.Contains(l.raw, `"p2"`) || strings.Contains(l.raw, `"p6"`) {
			t.Errorf("filter on address_scope_id: %s", l.raw)
		}

		// Tags.
		if err := attributestags.Add(ctx, e.a, "address-scopes", scope.ID, "blue").ExtractErr(); err != nil {
			t.Fatal(err)
		}
		if got := must[[]string](t)(attributestags.List(ctx, e.a, "address-scopes", scope.ID).Extract()); !slices.Equal(got, []string{"blue"}) {
			t.Errorf("tags %v", got)
		}
		l = e.do("GET", "/v2.0/address-scopes?tags=blue&fields=id", projectA, nil)
		if items, _ := l.body["address_scopes"].([]any); len(items) != 1 {
			t.Errorf("?tags=blue: %s", l.raw)
		}

		// Out of use, a scope can go; its tags go with it.
		for _, p := range []string{p1["id"].(string), p2["id"].(string)} {
			item(t, e.do("PUT", "/v2.0/subnetpools/"+p, projectA, map[string]any{"subnetpool": map[string]any{"address_scope_id": nil}}), 200, "subnetpool")
		}
		if r := e.do("DELETE", "/v2.0/address-scopes/"+scope.ID, projectA, nil); r.status != 204 {
			t.Fatalf("delete unused scope: %d %s", r.status, r.raw)
		}
		if r := e.do("GET", "/v2.0/address-scopes/"+scope.ID, projectA, nil); r.status != 404 {
			t.Errorf("deleted scope: %d", r.status)
		}
		n = item(t, e.do("GET", "/v2.0/networks/"+net, projectA, nil), 200, "network")
		if n["ipv4_address_scope"] != nil {
			t.Errorf("network keeps a deleted scope: %v", n["ipv4_address_scope"])
		}
	})
}

package api_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/attributestags"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
)

// TestTagsEveryResource drives the tags sub-resource with gophercloud's
// attributestags on every tagged collection, on both stores: replace all,
// add one, confirm, delete one, delete all, and the tags in the resource's
// own body (show and list).
func TestTagsEveryResource(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		tp := newVPNTopo(t, e)
		ike := mkIKE(t, e.a, "ike")
		ipsec := mkIPsec(t, e.a, "ipsec", "esp")
		svc := mkService(t, e.a, "svc", tp.router, "").ID
		local := mkGroup(t, e.a, "local", "subnet", tp.sub)
		peer := mkGroup(t, e.a, "peer", "cidr", "192.168.9.0/24")
		conn := e.createAs(projectA, "vpn/ipsec-site-connections", "ipsec_site_connection", map[string]any{
			"vpnservice_id": svc, "ikepolicy_id": ike, "ipsecpolicy_id": ipsec, "peer_address": "198.51.100.9",
			"peer_id": "198.51.100.9", "psk": "secret", "local_ep_group_id": local, "peer_ep_group_id": peer})
		fip := e.create(projectA, "floatingips", map[string]any{"floating_network_id": tp.ext})
		sg := e.createAs(projectA, "security-groups", "security_group", map[string]any{"name": "sg"})
		port := e.create(projectA, "ports", map[string]any{"network_id": tp.net})
		trunk := e.create(projectA, "trunks", map[string]any{
			"port_id": e.create(projectA, "ports", map[string]any{"network_id": tp.net})})
		for _, r := range []struct{ path, key, id string }{
			{"networks", "network", tp.net}, {"subnets", "subnet", tp.sub}, {"ports", "port", port},
			{"routers", "router", tp.router}, {"floatingips", "floatingip", fip},
			{"security-groups", "security_group", sg}, {"trunks", "trunk", trunk},
			{"vpn/ikepolicies", "ikepolicy", ike}, {"vpn/ipsecpolicies", "ipsecpolicy", ipsec},
			{"vpn/vpnservices", "vpnservice", svc}, {"vpn/endpoint-groups", "endpoint_group", peer},
			{"vpn/ipsec-site-connections", "ipsec_site_connection", conn},
		} {
			t.Run(r.key, func(t *testing.T) {
				// VPN resources' statuses settle in the background, which
				// may bump their revisions too: check only the others.
				exact := !strings.HasPrefix(r.path, "vpn/")
				rev := func() float64 {
					t.Helper()
					if !exact {
						return 0
					}
					v, _ := item(t, e.do("GET", "/v2.0/"+r.path+"/"+r.id, projectA, nil), 200, r.key)["revision_number"].(float64)
					return v
				}
				rev0 := rev()
				got := must[[]string](t)(attributestags.ReplaceAll(ctx, e.a, r.path, r.id,
					attributestags.ReplaceAllOpts{Tags: []string{"zeta", "alpha"}}).Extract())
				if want := []string{"alpha", "zeta"}; !slices.Equal(got, want) {
					t.Fatalf("ReplaceAll = %v, want %v", got, want)
				}
				if got := rev(); exact && got != rev0+1 {
					t.Fatalf("revision_number after ReplaceAll = %v, want %v", got, rev0+1)
				}
				if err := attributestags.Add(ctx, e.a, r.path, r.id, "beta").ExtractErr(); err != nil {
					t.Fatal(err)
				}
				if err := attributestags.Add(ctx, e.a, r.path, r.id, "beta").ExtractErr(); err != nil { // idempotent
					t.Fatal(err)
				}
				if got := rev(); exact && got != rev0+2 {
					t.Fatalf("revision_number after adding beta twice = %v, want %v (a no-op leaves it)", got, rev0+2)
				}
				if ok := must[bool](t)(attributestags.Confirm(ctx, e.a, r.path, r.id, "beta").Extract()); !ok {
					t.Fatal("Confirm(beta) = false after Add")
				}
				if ok, _ := attributestags.Confirm(ctx, e.a, r.path, r.id, "gamma").Extract(); ok {
					t.Fatal("Confirm(gamma) = true, never added")
				}
				if err := attributestags.Delete(ctx, e.a, r.path, r.id, "zeta").ExtractErr(); err != nil {
					t.Fatal(err)
				}
				want := []string{"alpha", "beta"}
				if got := must[[]string](t)(attributestags.List(ctx, e.a, r.path, r.id).Extract()); !slices.Equal(got, want) {
					t.Fatalf("List = %v, want %v", got, want)
				}
				show := item(t, e.do("GET", "/v2.0/"+r.path+"/"+r.id, projectA, nil), 200, r.key)
				if got := strs(show["tags"]); !slices.Equal(got, want) {
					t.Fatalf("GET %s shows tags %v, want %v", r.path, got, want)
				}
				coll := strings.ReplaceAll(r.path[strings.LastIndex(r.path, "/")+1:], "-", "_")
				l := e.do("GET", "/v2.0/"+r.path+"?tags=alpha,beta&fields=id&fields=tags", projectA, nil)
				items, _ := l.body[coll].([]any)
				if len(items) != 1 || items[0].(map[string]any)["id"] != r.id || !slices.Equal(strs(items[0].(map[string]any)["tags"]), want) {
					t.Fatalf("list ?tags=alpha,beta = %s", l.raw)
				}
				if err := attributestags.DeleteAll(ctx, e.a, r.path, r.id).ExtractErr(); err != nil {
					t.Fatal(err)
				}
				if got := must[[]string](t)(attributestags.List(ctx, e.a, r.path, r.id).Extract()); len(got) != 0 {
					t.Fatalf("List after DeleteAll = %v", got)
				}
				// tag-creation: POST adds several at once.
				p := e.do("POST", "/v2.0/"+r.path+"/"+r.id+"/tags", projectA, map[string]any{"tags": []string{"b", "a"}})
				if p.status != 201 || !slices.Equal(strs(p.body["tags"]), []string{"a", "b"}) {
					t.Fatalf("POST tags: %d %s", p.status, p.raw)
				}
			})
		}
		t.Run("rules-untagged", func(t *testing.T) {
			// The reference does not tag security group rules.
			r := e.do("GET", "/v2.0/security-group-rules/x/tags", projectA, nil)
			if r.status != 404 {
				t.Fatalf("GET rule tags: %d %s", r.status, r.raw)
			}
		})
	})
}

func strs(v any) []string {
	l, _ := v.([]any)
	out := []string{}
	for _, e := range l {
		s, _ := e.(string)
		out = append(out, s)
	}
	return out
}

// TestTagFilters checks tags, tags-any, not-tags and not-tags-any (all,
// any, not all, none; comma lists and repeated keys) through gophercloud's
// list options, with a limit so that a page is cut after filtering.
func TestTagFilters(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		mk := func(name string, tags ...string) string {
			n := must[*networks.Network](t)(networks.Create(ctx, e.a, networks.CreateOpts{Name: name}).Extract())
			if len(tags) > 0 {
				must[[]string](t)(attributestags.ReplaceAll(ctx, e.a, "networks", n.ID, attributestags.ReplaceAllOpts{Tags: tags}).Extract())
			}
			return name
		}
		mk("rb", "red", "blue")
		mk("r", "red")
		mk("g", "green")
		mk("none")
		list := func(o networks.ListOpts) []string {
			t.Helper()
			o.SortKey, o.SortDir = "name", "asc"
			all, err := networks.List(e.a, o).AllPages(ctx)
			if err != nil {
				t.Fatal(err)
			}
			nets := must[[]networks.Network](t)(networks.ExtractNetworks(all))
			var names []string
			for _, n := range nets {
				names = append(names, n.Name)
			}
			return names
		}
		for _, c := range []struct {
			opts networks.ListOpts
			want []string
		}{
			{networks.ListOpts{Tags: "red,blue"}, []string{"rb"}},
			{networks.ListOpts{Tags: "red"}, []string{"r", "rb"}},
			{networks.ListOpts{TagsAny: "blue,green"}, []string{"g", "rb"}},
			{networks.ListOpts{NotTags: "red,blue"}, []string{"g", "none", "r"}},
			{networks.ListOpts{NotTagsAny: "red,green"}, []string{"none"}},
			{networks.ListOpts{Tags: "red", NotTags: "blue"}, []string{"r"}},
			{networks.ListOpts{TagsAny: "red,green", Limit: 1}, []string{"g", "r", "rb"}}, // every page
			{networks.ListOpts{Tags: "nope"}, nil},
		} {
			if got := list(c.opts); !slices.Equal(got, c.want) {
				t.Errorf("%+v: got %v, want %v", c.opts, got, c.want)
			}
		}
		r := e.do("GET", "/v2.0/networks?tags=red&tags=blue&fields=name", projectA, nil)
		if got := r.body["networks"].([]any); len(got) != 1 || got[0].(map[string]any)["name"] != "rb" {
			t.Fatalf("?tags=red&tags=blue: %s", r.raw)
		}
	})
}

// TestTagFaults checks the reference's refusals, each changing nothing:
// a tag too long, duplicates, a malformed body, a tag not there, another
// project's resource (404), a shared network of another project and a
// reader (403), tags on POST where the reference allows them only on ports.
func TestTagFaults(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		net := must[*networks.Network](t)(networks.Create(ctx, e.a, networks.CreateOpts{Name: "n"}).Extract())
		shared := must[*networks.Network](t)(networks.Create(ctx, e.admin, networks.CreateOpts{Name: "s", Shared: ptr(true)}).Extract())
		must[[]string](t)(attributestags.ReplaceAll(ctx, e.a, "networks", net.ID, attributestags.ReplaceAllOpts{Tags: []string{"keep"}}).Extract())
		long := strings.Repeat("x", 256)
		base := "/v2.0/networks/" + net.ID + "/tags"
		cases := []faultCase{
			{"too long in body", "PUT", base, map[string]any{"tags": []string{long}}, 400, "InvalidInput", "exceeds maximum length of 255"},
			{"too long in path", "PUT", base + "/" + long, nil, 400, "InvalidInput", "exceeds maximum length of 255"},
			{"duplicate", "PUT", base, map[string]any{"tags": []string{"a", "a"}}, 400, "InvalidInput", "Duplicate items in the list: 'a'"},
			{"no tags key", "PUT", base, map[string]any{"tag": []string{"a"}}, 400, "InvalidInput", "Invalid tags body"},
			{"not a list", "PUT", base, map[string]any{"tags": "a"}, 400, "InvalidInput", "is not a list"},
			{"not strings", "POST", base, map[string]any{"tags": []any{1}}, 400, "InvalidInput", "is not a valid string"},
			{"tag not found", "DELETE", base + "/nope", nil, 404, "TagNotFound", "Tag nope could not be found."},
			{"confirm not found", "GET", base + "/nope", nil, 404, "TagNotFound", "Tag nope could not be found."},
			{"no such network", "PUT", "/v2.0/networks/0e0d5ab5-7f16-4e4b-9d43-8c1fcb0fd7a0/tags/a", nil, 404, "NetworkNotFound", ""},
			{"shared not owned", "PUT", "/v2.0/networks/" + shared.ID + "/tags/a", nil, 403, "PolicyNotAuthorized", "update_networks_tags"},
			{"shared not owned delete all", "DELETE", "/v2.0/networks/" + shared.ID + "/tags", nil, 403, "PolicyNotAuthorized", "delete_networks_tags"},
			{"tags on network POST", "POST", "/v2.0/networks", map[string]any{"network": map[string]any{"tags": []string{"a"}}}, 400, "HTTPBadRequest", "Attribute 'tags' not allowed in POST"},
			{"tags on network PUT", "PUT", "/v2.0/networks/" + net.ID, map[string]any{"network": map[string]any{"tags": []string{"a"}}}, 400, "HTTPBadRequest", "tags"},
			{"port POST duplicate tags", "POST", "/v2.0/ports", map[string]any{"port": map[string]any{"network_id": net.ID, "tags": []string{"a", "a"}}}, 400, "HTTPBadRequest", "Duplicate items"},
		}
		snap := func(e *env) string {
			return e.do("GET", "/v2.0/networks?fields=id&fields=tags", "", nil).raw + e.do("GET", "/v2.0/ports", "", nil).raw
		}
		runFaultCases(t, e, cases, snap, "")

		// Another project's resource is invisible: 404 for every verb.
		if _, err := attributestags.List(ctx, e.b, "networks", net.ID).Extract(); err == nil {
			t.Fatal("project B listed A's tags")
		} else {
			wantFault(t, err, 404, "NetworkNotFound")
		}
		wantFault(t, attributestags.Add(ctx, e.b, "networks", net.ID, "x").ExtractErr(), 404, "NetworkNotFound")
		// A reader sees tags but may not change them.
		if got := must[[]string](t)(attributestags.List(ctx, e.readerA, "networks", net.ID).Extract()); !slices.Equal(got, []string{"keep"}) {
			t.Fatalf("reader lists %v", got)
		}
		wantFault(t, attributestags.Add(ctx, e.readerA, "networks", net.ID, "x").ExtractErr(), 403, "PolicyNotAuthorized")
		// Anyone who sees a shared network sees its tags; admin tags it.
		if err := attributestags.Add(ctx, e.admin, "networks", shared.ID, "public").ExtractErr(); err != nil {
			t.Fatal(err)
		}
		if got := must[[]string](t)(attributestags.List(ctx, e.b, "networks", shared.ID).Extract()); !slices.Equal(got, []string{"public"}) {
			t.Fatalf("B lists the shared network's tags as %v", got)
		}
		if got := must[[]string](t)(attributestags.List(ctx, e.a, "networks", net.ID).Extract()); !slices.Equal(got, []string{"keep"}) {
			t.Fatalf("tags changed by refused requests: %v", got)
		}

		// Ports take tags on POST, as in the reference.
		p := must[*ports.Port](t)(ports.Create(ctx, e.a, tagOpts{ports.CreateOpts{NetworkID: net.ID}, []string{"web", "blue"}}).Extract())
		if !slices.Equal(p.Tags, []string{"blue", "web"}) {
			t.Fatalf("port created with tags shows %v", p.Tags)
		}
		if got := must[[]string](t)(attributestags.List(ctx, e.a, "ports", p.ID).Extract()); !slices.Equal(got, []string{"blue", "web"}) {
			t.Fatalf("port tags = %v", got)
		}
	})
}

// tagOpts adds tags to a port's create body.
type tagOpts struct {
	ports.CreateOpts
	tags []string
}

func (o tagOpts) ToPortCreateMap() (map[string]any, error) {
	m, err := o.CreateOpts.ToPortCreateMap()
	if err != nil {
		return nil, err
	}
	m["port"].(map[string]any)["tags"] = o.tags
	return m, nil
}

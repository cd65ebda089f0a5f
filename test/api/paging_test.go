package api_test

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// TestPagingEveryCollection is the reference's search-criteria tests
// (sorting and paging, run there for each resource) over every collection
// those tests cover and Neutrino has, on both stores: sorting by name both
// ways; walking pages with limit through the next links and back through
// the previous links; a page after a marker; page_reverse ascending and
// descending; limit=0 for everything without links.
func TestPagingEveryCollection(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ext := e.createAs("", "networks", "network", map[string]any{"name": "public", "router:external": true})
		e.createAs("", "subnets", "subnet", map[string]any{"network_id": ext, "ip_version": 4, "cidr": "203.0.113.0/24"})
		net := e.create(projectA, "networks", map[string]any{"name": "base"})
		names := []string{"delta", "alpha", "echo", "charlie", "bravo"}
		type coll struct {
			path, key string
			make      func(i int, name string) map[string]any
		}
		colls := []coll{
			{"networks", "network", func(i int, n string) map[string]any { return map[string]any{"name": "pg-" + n} }},
			{"subnets", "subnet", func(i int, n string) map[string]any {
				return map[string]any{"name": "pg-" + n, "network_id": net, "ip_version": 4, "cidr": fmt.Sprintf("10.%d.0.0/24", 40+i)}
			}},
			{"ports", "port", func(i int, n string) map[string]any { return map[string]any{"name": "pg-" + n, "network_id": net} }},
			{"routers", "router", func(i int, n string) map[string]any { return map[string]any{"name": "pg-" + n} }},
			{"security-groups", "security_group", func(i int, n string) map[string]any { return map[string]any{"name": "pg-" + n} }},
			{"subnetpools", "subnetpool", func(i int, n string) map[string]any {
				return map[string]any{"name": "pg-" + n, "prefixes": []any{fmt.Sprintf("10.%d.0.0/16", 140+i)}}
			}},
			{"address-scopes", "address_scope", func(i int, n string) map[string]any { return map[string]any{"name": "pg-" + n, "ip_version": 4} }},
			{"floatingips", "floatingip", func(i int, n string) map[string]any {
				return map[string]any{"floating_network_id": ext, "description": "pg-" + n}
			}},
			{"trunks", "trunk", func(i int, n string) map[string]any {
				return map[string]any{"name": "pg-" + n, "port_id": e.create(projectA, "ports", map[string]any{"network_id": net})}
			}},
		}
		for _, c := range colls {
			t.Run(c.path, func(t *testing.T) {
				byName := map[string]string{} // id → name
				sortKey := "name"
				if c.path == "floatingips" {
					sortKey = "description" // floating IPs have no name
				}
				for i, n := range names {
					byName[e.createAs(projectA, c.path, c.key, c.make(i, n))] = "pg-" + n
				}
				plural := strings.ReplaceAll(c.path, "-", "_")
				// ours keeps the listed resources this test made, in order.
				ours := func(r reply) []string {
					t.Helper()
					if r.status != 200 {
						t.Fatalf("list: %d %s", r.status, r.raw)
					}
					var out []string
					for _, id := range ids(r, plural) {
						if n, ok := byName[id]; ok {
							out = append(out, n)
						}
					}
					return out
				}
				asc := []string{"pg-alpha", "pg-bravo", "pg-charlie", "pg-delta", "pg-echo"}
				desc := slices.Clone(asc)
				slices.Reverse(desc)
				base := "/v2.0/" + c.path + "?project_id=" + projectA + "&" + sortKey + "=" + strings.Join(asc, "&"+sortKey+"=")
				sorted := func(dir string) string { return base + "&sort_key=" + sortKey + "&sort_dir=" + dir }

				if got := ours(e.do("GET", sorted("asc"), projectA, nil)); !slices.Equal(got, asc) {
					t.Errorf("sort asc = %v", got)
				}
				if got := ours(e.do("GET", sorted("desc"), projectA, nil)); !slices.Equal(got, desc) {
					t.Errorf("sort desc = %v", got)
				}
				links := func(r reply) map[string]string {
					out := map[string]string{}
					l, _ := r.body[plural+"_links"].([]any)
					for _, x := range l {
						m := x.(map[string]any)
						u, err := url.Parse(m["href"].(string))
						if err != nil {
							t.Fatalf("link %v: %v", m, err)
						}
						out[m["rel"].(string)] = u.RequestURI()
					}
					return out
				}
				// Forward through the next links, then back through the
				// previous ones, two at a time.
				var pages [][]string
				next := sorted("asc") + "&limit=2"
				for next != "" {
					if len(pages) > 4 {
						t.Fatal("paging does not end")
					}
					r := e.do("GET", next, projectA, nil)
					page := ours(r)
					pages = append(pages, page)
					next = links(r)["next"]
					if len(pages) > 1 && links(r)["previous"] == "" {
						t.Errorf("page %d has no previous link", len(pages))
					}
				}
				if got := slices.Concat(pages...); !slices.Equal(got, asc) {
					t.Fatalf("pages %v, want %v", pages, asc)
				}
				if len(pages) != 3 || len(pages[0]) != 2 || len(pages[2]) != 1 {
					t.Errorf("pages = %v, want 2+2+1", pages)
				}
				// Back from the last page.
				r := e.do("GET", sorted("asc")+"&limit=2&marker="+idOf(byName, "pg-echo"), projectA, nil)
				if got := ours(r); len(got) != 0 {
					t.Errorf("page after the last = %v", got)
				}
				prev := links(e.do("GET", sorted("asc")+"&limit=2&marker="+idOf(byName, "pg-delta"), projectA, nil))["previous"]
				if prev == "" {
					t.Fatal("no previous link on the last page")
				}
				if got := ours(e.do("GET", prev, projectA, nil)); !slices.Equal(got, asc[2:4]) {
					t.Errorf("previous page of the last = %v, want %v", got, asc[2:4])
				}
				// After a marker.
				if got := ours(e.do("GET", sorted("asc")+"&limit=2&marker="+idOf(byName, "pg-bravo"), projectA, nil)); !slices.Equal(got, asc[2:4]) {
					t.Errorf("page after bravo = %v", got)
				}
				// page_reverse: the last items of the order, still in order.
				if got := ours(e.do("GET", sorted("asc")+"&limit=2&page_reverse=true", projectA, nil)); !slices.Equal(got, asc[3:]) {
					t.Errorf("page_reverse asc = %v, want %v", got, asc[3:])
				}
				if got := ours(e.do("GET", sorted("desc")+"&limit=2&page_reverse=true", projectA, nil)); !slices.Equal(got, desc[3:]) {
					t.Errorf("page_reverse desc = %v, want %v", got, desc[3:])
				}
				if got := ours(e.do("GET", sorted("asc")+"&limit=2&page_reverse=true&marker="+idOf(byName, "pg-delta"), projectA, nil)); !slices.Equal(got, asc[1:3]) {
					t.Errorf("page_reverse before delta = %v, want %v", got, asc[1:3])
				}
				// limit=0: everything, no links.
				r = e.do("GET", sorted("asc")+"&limit=0", projectA, nil)
				if got := ours(r); !slices.Equal(got, asc) {
					t.Errorf("limit=0 = %v", got)
				}
				if l := links(r); len(l) != 0 {
					t.Errorf("limit=0 links = %v", l)
				}
			})
		}
	})
}

func idOf(byName map[string]string, name string) string {
	for id, n := range byName {
		if n == name {
			return id
		}
	}
	return ""
}

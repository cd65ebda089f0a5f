package api_test

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
)

func ids(r reply, coll string) []string {
	var out []string
	for _, o := range r.body[coll].([]any) {
		out = append(out, o.(map[string]any)["id"].(string))
	}
	return out
}

func TestListQueries(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		var created []string
		for i, name := range []string{"delta", "alpha", "echo", "charlie", "bravo"} {
			r := e.do("POST", "/v2.0/networks", projectA, map[string]any{"network": map[string]any{
				"name": name, "admin_state_up": i%2 == 0, "description": map[bool]string{true: "", false: "d"}[i < 3]}})
			created = append(created, r.body["network"].(map[string]any)["id"].(string))
		}
		// Sorting by name.
		r := e.do("GET", "/v2.0/networks?sort_key=name&sort_dir=desc&fields=name&fields=id", projectA, nil)
		var names []string
		for _, o := range r.body["networks"].([]any) {
			m := o.(map[string]any)
			if len(m) != 2 {
				t.Fatalf("fields not applied: %v", m)
			}
			names = append(names, m["name"].(string))
		}
		if !slices.Equal(names, []string{"echo", "delta", "charlie", "bravo", "alpha"}) {
			t.Fatalf("sorted names = %v", names)
		}
		// Filters: repeated keys are OR, different keys AND, booleans converted.
		r = e.do("GET", "/v2.0/networks?name=alpha&name=echo&admin_state_up=1", projectA, nil)
		if got := ids(r, "networks"); len(got) != 1 || got[0] != created[2] {
			t.Fatalf("filtered = %v", got)
		}
		r = e.do("GET", "/v2.0/networks?description=", projectA, nil)
		if got := ids(r, "networks"); len(got) != 3 {
			t.Fatalf("empty-string filter matched %d, want 3", len(got))
		}
		r = e.do("GET", "/v2.0/networks?id="+created[1]+"&unknown_key=x", projectA, nil)
		if got := ids(r, "networks"); len(got) != 1 || got[0] != created[1] {
			t.Fatalf("id filter = %v", got)
		}
		// Pagination walks forward then back with the reference's links.
		sorted := slices.Clone(created)
		slices.Sort(sorted)
		var walked []string
		next := "/v2.0/networks?limit=2&sort_key=id&sort_dir=asc"
		for pages := 0; next != ""; pages++ {
			if pages > 5 {
				t.Fatal("pagination does not end")
			}
			r = e.do("GET", next, projectA, nil)
			walked = append(walked, ids(r, "networks")...)
			next = ""
			for _, l := range r.body["networks_links"].([]any) {
				if l := l.(map[string]any); l["rel"] == "next" {
					u, _ := url.Parse(l["href"].(string))
					next = u.RequestURI()
				}
			}
		}
		if !slices.Equal(walked, sorted) {
			t.Fatalf("walked %v, want %v", walked, sorted)
		}
		r = e.do("GET", "/v2.0/networks?limit=2&sort_key=id&sort_dir=asc&page_reverse=true&marker="+sorted[4], projectA, nil)
		if got := ids(r, "networks"); !slices.Equal(got, sorted[2:4]) {
			t.Fatalf("reverse page = %v, want %v", got, sorted[2:4])
		}
		r = e.do("GET", "/v2.0/networks?limit=2&marker=00000000-0000-0000-0000-000000000000", projectA, nil)
		if got := ids(r, "networks"); len(got) != 0 {
			t.Fatalf("unknown marker page = %v", got)
		}
		if _, ok := e.do("GET", "/v2.0/networks", projectA, nil).body["networks_links"]; ok {
			t.Fatal("links without limit")
		}
		// Show honours fields too; tenant_id filter is project_id.
		r = e.do("GET", "/v2.0/networks/"+created[0]+"?fields=status", projectA, nil)
		if m := r.body["network"].(map[string]any); len(m) != 1 || m["status"] != "ACTIVE" {
			t.Fatalf("show fields = %v", m)
		}
		r = e.do("GET", "/v2.0/networks?tenant_id="+projectB, "", nil)
		if got := ids(r, "networks"); len(got) != 0 {
			t.Fatalf("tenant filter = %v", got)
		}
	})
}

func TestSharedNetworks(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		r := e.do("POST", "/v2.0/networks", "", map[string]any{"network": map[string]any{"name": "shared", "shared": true, "project_id": projectA}})
		if r.status != 201 {
			t.Fatalf("admin create for project A = %d %s", r.status, r.raw)
		}
		net := r.body["network"].(map[string]any)
		if net["project_id"] != projectA || net["shared"] != true {
			t.Fatalf("network = %v", net)
		}
		id := net["id"].(string)
		e.do("POST", "/v2.0/subnets", projectA, map[string]any{"subnet": map[string]any{"network_id": id, "ip_version": 4, "cidr": "10.50.0.0/24"}})
		// Project B sees it and may attach a port, but may not change it.
		if r := e.do("GET", "/v2.0/networks/"+id, projectB, nil); r.status != 200 {
			t.Fatalf("B get shared = %d", r.status)
		}
		if r := e.do("POST", "/v2.0/ports", projectB, map[string]any{"port": map[string]any{"network_id": id}}); r.status != 201 {
			t.Fatalf("B port on shared = %d %s", r.status, r.raw)
		}
		if r := e.do("PUT", "/v2.0/networks/"+id, projectB, map[string]any{"network": map[string]any{"name": "mine"}}); r.status != 403 {
			t.Fatalf("B update shared = %d", r.status)
		}
		// Unsharing while B uses it is refused.
		r = e.do("PUT", "/v2.0/networks/"+id, "", map[string]any{"network": map[string]any{"shared": false}})
		if typ, _ := r.fault(); r.status != 409 || typ != "InvalidSharedSetting" {
			t.Fatalf("unshare in use = %d %s", r.status, r.raw)
		}
	})
}

// TestConcurrentPorts creates ports in parallel on a subnet with five free
// addresses: exactly five succeed with distinct addresses, the rest get 409.
func TestConcurrentPorts(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		net := e.do("POST", "/v2.0/networks", projectA, map[string]any{"network": map[string]any{"name": "small"}})
		netID := net.body["network"].(map[string]any)["id"].(string)
		e.do("POST", "/v2.0/subnets", projectA, map[string]any{"subnet": map[string]any{"network_id": netID, "ip_version": 4, "cidr": "10.9.0.0/29"}})
		const workers = 16
		var wg sync.WaitGroup
		var mu sync.Mutex
		statuses := map[int]int{}
		var addrs, macs []string
		for i := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := e.do("POST", "/v2.0/ports", projectA, map[string]any{"port": map[string]any{"network_id": netID, "name": fmt.Sprint("p", i)}})
				mu.Lock()
				defer mu.Unlock()
				statuses[r.status]++
				if r.status == 201 {
					p := r.body["port"].(map[string]any)
					addrs = append(addrs, p["fixed_ips"].([]any)[0].(map[string]any)["ip_address"].(string))
					macs = append(macs, p["mac_address"].(string))
				} else if typ, _ := r.fault(); typ != "IpAddressGenerationFailure" {
					t.Errorf("unexpected failure %d %s", r.status, r.raw)
				}
			}()
		}
		wg.Wait()
		if statuses[201] != 5 || statuses[409] != workers-5 || len(statuses) != 2 {
			t.Fatalf("statuses = %v, want 5×201 and %d×409", statuses, workers-5)
		}
		slices.Sort(addrs)
		if want := []string{"10.9.0.2", "10.9.0.3", "10.9.0.4", "10.9.0.5", "10.9.0.6"}; !slices.Equal(addrs, want) {
			t.Fatalf("addresses = %v, want %v", addrs, want)
		}
		slices.Sort(macs)
		if len(slices.Compact(macs)) != 5 {
			t.Fatalf("duplicate MACs: %v", macs)
		}
		// Concurrent network delete versus port create never leaves an orphan.
		for round := range 5 {
			n := e.do("POST", "/v2.0/networks", projectA, map[string]any{"network": map[string]any{"name": fmt.Sprint("race", round)}})
			id := n.body["network"].(map[string]any)["id"].(string)
			var del, create reply
			wg.Add(2)
			go func() { defer wg.Done(); del = e.do("DELETE", "/v2.0/networks/"+id, projectA, nil) }()
			go func() {
				defer wg.Done()
				create = e.do("POST", "/v2.0/ports", projectA, map[string]any{"port": map[string]any{"network_id": id}})
			}()
			wg.Wait()
			switch {
			case del.status == 204 && create.status == 404:
			case del.status == 409 && create.status == 201:
			default:
				t.Fatalf("round %d: delete %d, create %d %s", round, del.status, create.status, create.raw)
			}
		}
		// Concurrent update and delete of one port: a 200 or a 404, never a 500.
		for round := range 5 {
			p := e.do("POST", "/v2.0/ports", projectA, map[string]any{"port": map[string]any{"network_id": netID, "fixed_ips": []any{}}})
			id := p.body["port"].(map[string]any)["id"].(string)
			var upd, del reply
			wg.Add(2)
			go func() {
				defer wg.Done()
				upd = e.do("PUT", "/v2.0/ports/"+id, projectA, map[string]any{"port": map[string]any{"name": "x"}})
			}()
			go func() { defer wg.Done(); del = e.do("DELETE", "/v2.0/ports/"+id, projectA, nil) }()
			wg.Wait()
			if del.status != 204 || (upd.status != 200 && upd.status != 404) {
				t.Fatalf("round %d: update %d %s, delete %d", round, upd.status, upd.raw, del.status)
			}
		}
	})
}

// TestLongListsStreamed: a whole list longer than the server's read chunk
// (500 rows) comes back whole, in creation order, without duplicates,
// while another client deletes rows from it; rows never deleted are all
// there, with filters and fields applied on every chunk.
func TestLongListsStreamed(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		const n = 1100
		var created []string
		for i := range n {
			r := e.do("POST", "/v2.0/vpn/ikepolicies", projectA, map[string]any{"ikepolicy": map[string]any{
				"name": fmt.Sprintf("p%04d", i), "description": map[bool]string{true: "even", false: "odd"}[i%2 == 0]}})
			if r.status != 201 {
				t.Fatalf("create %d: %d %s", i, r.status, r.raw)
			}
			created = append(created, r.body["ikepolicy"].(map[string]any)["id"].(string))
		}
		r := e.do("GET", "/v2.0/vpn/ikepolicies", projectA, nil)
		if got := ids(r, "ikepolicies"); !slices.Equal(got, created) {
			t.Fatalf("whole list: %d rows, want the %d created, in order", len(got), n)
		}
		r = e.do("GET", "/v2.0/vpn/ikepolicies?description=even&fields=id", projectA, nil)
		var even []string
		for i, id := range created {
			if i%2 == 0 {
				even = append(even, id)
			}
		}
		if got := ids(r, "ikepolicies"); !slices.Equal(got, even) {
			t.Fatalf("filtered list: %d rows, want %d", len(got), len(even))
		}
		for _, o := range r.body["ikepolicies"].([]any) {
			if len(o.(map[string]any)) != 1 {
				t.Fatalf("fields not applied: %v", o)
			}
		}
		// Delete every third row while listing; the rest is always whole.
		var doomed []string
		keep := map[string]bool{}
		for i, id := range created {
			if i%3 == 1 {
				doomed = append(doomed, id)
			} else {
				keep[id] = true
			}
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			for _, id := range doomed {
				req, _ := http.NewRequest("DELETE", e.url+"/v2.0/vpn/ikepolicies/"+id, nil)
				req.Header.Set("X-Project-Id", projectA)
				req.Header.Set("X-Roles", "member")
				if resp, err := http.DefaultClient.Do(req); err == nil {
					resp.Body.Close()
				}
			}
		}()
		for listing := true; listing; {
			select {
			case <-done:
				listing = false
			default:
			}
			r := e.do("GET", "/v2.0/vpn/ikepolicies", projectA, nil)
			got := ids(r, "ikepolicies")
			seen := map[string]bool{}
			for _, id := range got {
				if seen[id] {
					t.Fatalf("row %s listed twice", id)
				}
				seen[id] = true
			}
			for id := range keep {
				if !seen[id] {
					t.Fatalf("row %s missing from a list taken during deletes (%d rows)", id, len(got))
				}
			}
		}
	})
}

// TestConcurrentSubnetUpdates updates a subnet (its host routes, as
// Terraform's openstack_networking_subnet_route_v2 does) while ports are
// created on it, on both stores: every request succeeds. On PostgreSQL the
// subnet update once took the subnet's lock before the network's, the
// reverse of port creation, and one of the two died in a deadlock (500).
func TestConcurrentSubnetUpdates(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		net := e.create(projectA, "networks", map[string]any{"name": "busy"})
		sub := e.create(projectA, "subnets", map[string]any{"network_id": net, "ip_version": 4, "cidr": "10.77.0.0/24"})
		const rounds = 12
		var wg sync.WaitGroup
		var mu sync.Mutex
		var failures []string
		record := func(what string, r reply, want int) {
			if r.status != want {
				mu.Lock()
				failures = append(failures, fmt.Sprintf("%s: %d %s", what, r.status, r.raw))
				mu.Unlock()
			}
		}
		for i := range rounds {
			wg.Add(2)
			go func() {
				defer wg.Done()
				r := e.do("PUT", "/v2.0/subnets/"+sub, projectA, map[string]any{"subnet": map[string]any{
					"host_routes": []any{map[string]any{"destination": fmt.Sprintf("10.%d.0.0/16", 100+i), "nexthop": "10.77.0.5"}}}})
				record("update subnet", r, 200)
			}()
			go func() {
				defer wg.Done()
				r := e.do("POST", "/v2.0/ports", projectA, map[string]any{"port": map[string]any{
					"network_id": net, "fixed_ips": []any{map[string]any{"subnet_id": sub}}}})
				record("create port", r, 201)
			}()
		}
		wg.Wait()
		if len(failures) != 0 {
			t.Fatalf("%d of %d concurrent requests failed:\n%s", len(failures), 2*rounds, strings.Join(failures, "\n"))
		}
		if n := len(listIDs(t, e, "/v2.0/ports?device_owner=", "ports", projectA)); n != rounds {
			t.Fatalf("%d ports, want %d", n, rounds)
		}
	})
}

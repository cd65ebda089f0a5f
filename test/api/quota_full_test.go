package api_test

import (
	"fmt"
	"testing"
)

// TestQuotaFull mirrors the reference's quota-full tests on both stores:
// an admin creating for a project up to its quota succeeds, the next one
// is 409 OverQuota naming the resource, and nothing is created by the
// refusal. Security groups and rules count what the project already has
// (its default group and that group's rules, made on first use), as the
// reference's tests do by listing them first.
func TestQuotaFull(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ext := e.createAs("", "networks", "network", map[string]any{"name": "public", "router:external": true})
		e.createAs("", "subnets", "subnet", map[string]any{"network_id": ext, "ip_version": 4, "cidr": "203.0.113.0/24"})
		const project = "0fa11c0ffee0400000000000000000aa"
		setQuota := func(res string, n int) {
			t.Helper()
			if r := e.do("PUT", "/v2.0/quotas/"+project, "", map[string]any{"quota": map[string]any{res: n}}); r.status != 200 {
				t.Fatalf("set %s quota: %d %s", res, r.status, r.raw)
			}
		}
		count := func(coll string) int {
			t.Helper()
			return len(listIDs(t, e, "/v2.0/"+coll+"?project_id="+project, collKey(coll), ""))
		}
		post := func(coll, key string, body map[string]any) reply {
			body["project_id"] = project
			return e.do("POST", "/v2.0/"+coll, "", map[string]any{key: body})
		}
		full := func(coll, key, res string, body func(i int) map[string]any) {
			t.Helper()
			if r := post(coll, key, body(0)); r.status != 201 {
				t.Fatalf("%s within quota: %d %s", coll, r.status, r.raw)
			}
			before := count(coll)
			r := post(coll, key, body(1))
			e.want(coll+" over quota", r, 409, "OverQuota")
			if _, msg := r.fault(); msg != fmt.Sprintf("Quota exceeded for resources: ['%s'].", res) {
				t.Errorf("%s over quota: message %q", coll, msg)
			}
			if after := count(coll); after != before {
				t.Errorf("%s: refused create changed the count %d → %d", coll, before, after)
			}
		}

		setQuota("network", 1)
		full("networks", "network", "network", func(i int) map[string]any { return map[string]any{"name": fmt.Sprint("n", i)} })
		net := listIDs(t, e, "/v2.0/networks?project_id="+project, "networks", "")[0]

		setQuota("subnet", 1)
		full("subnets", "subnet", "subnet", func(i int) map[string]any {
			return map[string]any{"network_id": net, "ip_version": 4, "cidr": fmt.Sprintf("10.%d.0.0/24", i), "enable_dhcp": false}
		})

		setQuota("port", count("ports")+1)
		full("ports", "port", "port", func(int) map[string]any { return map[string]any{"network_id": net} })

		setQuota("router", 1)
		full("routers", "router", "router", func(i int) map[string]any { return map[string]any{"name": fmt.Sprint("r", i)} })

		setQuota("security_group", count("security-groups")+1)
		full("security-groups", "security_group", "security_group", func(i int) map[string]any { return map[string]any{"name": fmt.Sprint("sg", i)} })

		sg := post("security-groups", "security_group", map[string]any{"name": "rules"})
		if sg.status != 409 { // the group quota is full now; raise it for the rule test
			t.Fatalf("third group: %d %s", sg.status, sg.raw)
		}
		setQuota("security_group", count("security-groups")+1)
		sgID := item(t, post("security-groups", "security_group", map[string]any{"name": "rules"}), 201, "security_group")["id"].(string)
		setQuota("security_group_rule", count("security-group-rules")+1)
		dirs := []string{"ingress", "egress"}
		full("security-group-rules", "security_group_rule", "security_group_rule", func(i int) map[string]any {
			return map[string]any{"security_group_id": sgID, "direction": dirs[i], "protocol": "tcp", "port_range_min": 5000, "port_range_max": 5000}
		})

		setQuota("floatingip", 1)
		full("floatingips", "floatingip", "floatingip", func(int) map[string]any { return map[string]any{"floating_network_id": ext} })

		// A quota lowered below what the project has (with force, as the
		// reference requires) refuses only new ones.
		if r := e.do("PUT", "/v2.0/quotas/"+project, "", map[string]any{"quota": map[string]any{"network": 0, "force": true}}); r.status != 200 {
			t.Fatalf("force network quota 0: %d %s", r.status, r.raw)
		}
		e.want("network at quota 0", post("networks", "network", map[string]any{"name": "n2"}), 409, "OverQuota")
		if n := count("networks"); n != 1 {
			t.Errorf("lowering the quota removed networks: %d left", n)
		}
	})
}

// collKey is a collection path's key in list replies.
func collKey(coll string) string {
	out := []byte(coll)
	for i, c := range out {
		if c == '-' {
			out[i] = '_'
		}
	}
	return string(out)
}

package api_test

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The tests in this file follow the security group tests of the
// reference's conformance suite (neutron-tempest-plugin's
// api/test_security_groups.py, api/test_security_groups_negative.py and
// api/admin/test_security_groups.py): the same requests, expecting the
// same statuses and results, with the reference's fault types where its
// code fixes them. The comment of each test names the reference tests it
// stands for.

// adminProject is the project of the noauth admin that e.do uses for "".
const adminProject = "fake_project_id"

const (
	sgPath   = "/v2.0/security-groups"
	rulePath = "/v2.0/security-group-rules"
)

// modes are the reference's two variants of most group tests: the
// Stateful… classes and the Stateless… ones (stateful=false).
var modes = []struct {
	name     string
	stateful bool
}{{"stateful", true}, {"stateless", false}}

// sgBody is a security group create or update body; kv are extra
// attributes in pairs.
func sgBody(kv ...any) map[string]any {
	m := map[string]any{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return map[string]any{"security_group": m}
}

// ruleBody is a rule create body for group; kv are extra attributes.
func ruleBody(group string, kv ...any) map[string]any {
	m := map[string]any{"security_group_id": group}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return map[string]any{"security_group_rule": m}
}

// newGroup creates a group as project, stateless unless stateful, and
// returns its id.
func (e *env) newGroup(project, name string, stateful bool) string {
	e.t.Helper()
	attrs := map[string]any{"name": name}
	if !stateful {
		attrs["stateful"] = false
	}
	if project == "" {
		attrs["project_id"] = adminProject
	}
	return e.createAs(project, "security-groups", "security_group", attrs)
}

// unlimitedGroups lifts project's group and rule quotas: the reference
// runs each test class in a fresh project, these tests run on in one.
func (e *env) unlimitedGroups(project string) {
	e.t.Helper()
	r := e.do("PUT", "/v2.0/quotas/"+project, "", map[string]any{"quota": map[string]any{"security_group": -1, "security_group_rule": -1}})
	if r.status != 200 {
		e.t.Fatalf("quotas: %d %s", r.status, r.raw)
	}
}

// defaultGroup returns the id of project's default group, as the
// reference's tests find it: by listing with name=default.
func (e *env) defaultGroup(project string) string {
	e.t.Helper()
	r := e.do("GET", sgPath+"?name=default", project, nil)
	got := ids(r, "security_groups")
	if r.status != 200 || len(got) != 1 {
		e.t.Fatalf("default group of %s: %d %s", project, r.status, r.raw)
	}
	return got[0]
}

// TestSecurityGroupLifecycle stands for the reference's
// test_create_list_update_show_delete_security_group,
// test_show_security_group_contains_all_rules,
// test_list_security_group_rules_contains_all_rules,
// test_create_bulk_sec_groups and test_create_sec_groups_with_the_same_name,
// each for a stateful and a stateless group.
func TestSecurityGroupLifecycle(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		e.unlimitedGroups(projectA)
		for _, m := range modes {
			t.Run(m.name, func(t *testing.T) {
				id := e.newGroup(projectA, "lifecycle-"+m.name, m.stateful)
				if got := ids(e.do("GET", sgPath, projectA, nil), "security_groups"); !slices.Contains(got, id) {
					t.Fatalf("the list %v misses the new group %s", got, id)
				}
				up := item(t, e.do("PUT", sgPath+"/"+id, projectA, sgBody("name", "renamed-"+m.name, "description", "desc-"+m.name)), 200, "security_group")
				shown := item(t, e.do("GET", sgPath+"/"+id, projectA, nil), 200, "security_group")
				for _, g := range []map[string]any{up, shown} {
					if g["name"] != "renamed-"+m.name || g["description"] != "desc-"+m.name || g["stateful"] != m.stateful {
						t.Fatalf("updated group = %v", g)
					}
				}

				// An admin adds a rule, in its own project's name, to the
				// member's group: the member sees it in the group and in
				// its rule list, but not a rule of the admin's own group.
				rule := item(t, e.do("POST", rulePath, "", ruleBody(id, "project_id", adminProject,
					"protocol", "udp", "direction", "ingress", "ethertype", "IPv4", "remote_ip_prefix", "0.0.0.0/0")), 201, "security_group_rule")
				var inGroup []string
				for _, r := range item(t, e.do("GET", sgPath+"/"+id, projectA, nil), 200, "security_group")["security_group_rules"].([]any) {
					inGroup = append(inGroup, r.(map[string]any)["id"].(string))
				}
				if !slices.Contains(inGroup, rule["id"].(string)) {
					t.Fatalf("the group's rules %v miss the admin's rule %s", inGroup, rule["id"])
				}
				adminGroup := e.newGroup("", "admin-"+m.name, m.stateful)
				adminRule := item(t, e.do("POST", rulePath, "", ruleBody(adminGroup, "project_id", adminProject,
					"protocol", "udp", "direction", "ingress", "ethertype", "IPv4", "remote_ip_prefix", "0.0.0.0/0")), 201, "security_group_rule")
				listed := ids(e.do("GET", rulePath, projectA, nil), "security_group_rules")
				if !slices.Contains(listed, rule["id"].(string)) || slices.Contains(listed, adminRule["id"].(string)) {
					t.Fatalf("member's rule list %v: want %s, not %s", listed, rule["id"], adminRule["id"])
				}

				if r := e.do("DELETE", sgPath+"/"+id, projectA, nil); r.status != 204 {
					t.Fatalf("delete: %d %s", r.status, r.raw)
				}
				if got := ids(e.do("GET", sgPath, projectA, nil), "security_groups"); slices.Contains(got, id) {
					t.Fatalf("the deleted group is still listed: %v", got)
				}

				// Two groups in one request.
				bulk := []any{map[string]any{"name": "bulk1-" + m.name}, map[string]any{"name": "bulk2-" + m.name}}
				if !m.stateful {
					for _, b := range bulk {
						b.(map[string]any)["stateful"] = false
					}
				}
				r := e.do("POST", sgPath, projectA, map[string]any{"security_groups": bulk})
				if r.status != 201 || !slices.Equal(names(r, "security_groups"), []string{"bulk1-" + m.name, "bulk2-" + m.name}) {
					t.Fatalf("bulk create: %d %s", r.status, r.raw)
				}
				for _, g := range r.body["security_groups"].([]any) {
					if g := g.(map[string]any); g["id"] == "" || g["stateful"] != m.stateful {
						t.Fatalf("bulk-created group = %v", g)
					}
				}

				// Five groups of one name are five groups.
				same := "sg_same_" + m.name
				for range 5 {
					e.newGroup(projectA, same, m.stateful)
				}
				got := ids(e.do("GET", sgPath+"?name="+same, projectA, nil), "security_groups")
				slices.Sort(got)
				if len(slices.Compact(got)) != 5 {
					t.Fatalf("groups named %s: %v", same, got)
				}
			})
		}
	})
}

// TestSecurityGroupStatefulness stands for the reference's
// test_stateless_security_group_update and the five tests of
// NegativeStatelessSecGroupTest: a port may not mix stateful and stateless
// groups (409 SecurityGroupConflict), on create or update, and a group in
// use may not change statefulness (409 SecurityGroupInUse).
func TestSecurityGroupStatefulness(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		g := e.newGroup(projectA, "switch", true)
		r := e.do("GET", sgPath, projectA, nil)
		for _, x := range r.body["security_groups"].([]any) {
			if x := x.(map[string]any); x["id"] == g && x["stateful"] != true {
				t.Fatalf("listed group = %v", x)
			}
		}
		for _, want := range []bool{false, true} {
			up := item(t, e.do("PUT", sgPath+"/"+g, projectA, sgBody("stateful", want)), 200, "security_group")
			shown := item(t, e.do("GET", sgPath+"/"+g, projectA, nil), 200, "security_group")
			if up["stateful"] != want || shown["stateful"] != want {
				t.Fatalf("stateful=%v: update gave %v, show %v", want, up["stateful"], shown["stateful"])
			}
		}

		net := e.create(projectA, "networks", map[string]any{"name": "n"})
		stateless := e.newGroup(projectA, "stateless", false)
		stateful := e.newGroup(projectA, "stateful", true)
		onStateless := e.create(projectA, "ports", map[string]any{"network_id": net, "security_groups": []any{stateless}})
		onStateful := e.create(projectA, "ports", map[string]any{"network_id": net, "security_groups": []any{stateful}})
		const mixed = "Cannot apply both stateful and stateless security groups on the same port at the same time"
		portGroups := func(groups ...any) map[string]any {
			return map[string]any{"port": map[string]any{"security_groups": groups}}
		}
		runFaultCases(t, e, []faultCase{
			{"port created with both", "POST", "/v2.0/ports", map[string]any{"port": map[string]any{
				"network_id": net, "security_groups": []any{stateful, stateless}}}, 409, "SecurityGroupConflict", mixed},
			{"stateful added to a port with a stateless group", "PUT", "/v2.0/ports/" + onStateless, portGroups(stateless, stateful), 409, "SecurityGroupConflict", mixed},
			{"stateless added to a port with a stateful group", "PUT", "/v2.0/ports/" + onStateful, portGroups(stateful, stateless), 409, "SecurityGroupConflict", mixed},
			{"used stateless group made stateful", "PUT", sgPath + "/" + stateless, sgBody("stateful", true), 409, "SecurityGroupInUse", "Security Group " + stateless + " in use."},
			{"used stateful group made stateless", "PUT", sgPath + "/" + stateful, sgBody("stateful", false), 409, "SecurityGroupInUse", "Security Group " + stateful + " in use."},
		}, snapshot, "")
		// Setting a used group's statefulness to what it is already is no
		// change, and allowed.
		item(t, e.do("PUT", sgPath+"/"+stateful, projectA, sgBody("stateful", true)), 200, "security_group")
	})
}

// TestSecurityGroupQuotaConformance stands for the reference's
// SecGroupQuotaTest (5), SecGroupRulesQuotaTest (4), NegativeSecGroupQuotaTest
// (2) and NegativeSecGroupRulesQuotaTest (1). The reference sets every quota
// with "force": true, without which a limit below what is used is refused.
func TestSecurityGroupQuotaConformance(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		quota := func(res string) int {
			t.Helper()
			q := item(t, e.do("GET", "/v2.0/quotas/"+projectA, "", nil), 200, "quota")
			n, ok := q[res].(float64)
			if !ok {
				t.Fatalf("no %s in %v", res, q)
			}
			return int(n)
		}
		setQuota := func(res string, v any) {
			t.Helper()
			q := item(t, e.do("PUT", "/v2.0/quotas/"+projectA, "", map[string]any{"quota": map[string]any{res: v, "force": true}}), 200, "quota")
			if q[res] != float64(v.(int)) {
				t.Fatalf("set %s to %v: %v", res, v, q)
			}
		}
		count := func(coll string) int {
			t.Helper()
			r := e.do("GET", "/v2.0/"+coll+"?project_id="+projectA, projectA, nil)
			if r.status != 200 {
				t.Fatalf("list %s: %d %s", coll, r.status, r.raw)
			}
			return len(r.body[strings.ReplaceAll(coll, "-", "_")].([]any))
		}
		groups := 0
		newGroups := func(n int) {
			t.Helper()
			for range n {
				groups++
				e.newGroup(projectA, "q"+strconv.Itoa(groups), true)
			}
		}

		// Groups, with the rule quota off as the reference's setUp does.
		setQuota("security_group_rule", -1)
		for _, v := range []int{-1, 0, 10, 2147483647} {
			setQuota("security_group", v)
			if got := quota("security_group"); got != v {
				t.Fatalf("security_group quota %d shows %d", v, got)
			}
		}
		setQuota("security_group", 10)
		newGroups(quota("security_group") - count("security-groups")) // test_max_allowed_sg_amount
		if q, n := quota("security_group"), count("security-groups"); q != n {
			t.Fatalf("quota %d, groups %d", q, n)
		}
		setQuota("security_group", 2*quota("security_group")) // test_sg_quota_increased
		newGroups(quota("security_group") - count("security-groups"))
		if q, n := quota("security_group"), count("security-groups"); q != 20 || n != 20 {
			t.Fatalf("quota %d, groups %d, want 20", q, n)
		}
		// Without force the reference refuses a limit below what is
		// used, and keeps the old one.
		for _, body := range []map[string]any{{"security_group": 10}, {"security_group": 10, "check_limit": true}, {"security_group": 10, "force": false}} {
			r := e.do("PUT", "/v2.0/quotas/"+projectA, "", map[string]any{"quota": body})
			e.want(fmt.Sprintf("lower below usage with %v", body), r, 400, "HTTPBadRequest")
			if _, msg := r.fault(); msg != "Quota limit 10 for security_group must be greater than or equal to already used 20" {
				t.Fatalf("message %q", msg)
			}
		}
		if q := quota("security_group"); q != 20 {
			t.Fatalf("refused lowering left %d", q)
		}
		setQuota("security_group", quota("security_group")/2) // test_sg_quota_decrease_less_than_created
		if q := quota("security_group"); q != 10 {
			t.Fatalf("lowered quota shows %d", q)
		}
		setQuota("security_group", -1) // test_create_sg_when_quota_disabled
		before := count("security-groups")
		newGroups(10)
		if after := count("security-groups"); after <= before {
			t.Fatalf("groups %d, then %d", before, after)
		}
		setQuota("security_group", 0) // test_create_excess_sg
		e.want("group over quota", e.do("POST", sgPath, projectA, sgBody("name", "over")), 409, "OverQuota")
		for _, v := range []any{-2, 2147483648, "value"} { // test_sg_quota_incorrect_values
			r := e.do("PUT", "/v2.0/quotas/"+projectA, "", map[string]any{"quota": map[string]any{"security_group": v, "force": true}})
			e.want(fmt.Sprintf("security_group quota %v", v), r, 400, "HTTPBadRequest")
		}
		if q := quota("security_group"); q != 0 {
			t.Fatalf("refused quota updates left %d", q)
		}

		// Rules: the reference's setUp sets their quota to 10 and adds
		// TCP rules, one port each, to the default group.
		setQuota("security_group", -1)
		setQuota("security_group_rule", 10)
		def := e.defaultGroup(projectA)
		port := 1
		newRules := func(n int) {
			t.Helper()
			for range n {
				item(t, e.do("POST", rulePath, projectA, ruleBody(def, "direction", "ingress", "protocol", "tcp",
					"port_range_min", port, "port_range_max", port, "ethertype", "IPv4", "remote_ip_prefix", "0.0.0.0/0")), 201, "security_group_rule")
				port++
			}
		}
		// The groups made above already hold more than 10 rules; leave
		// room for 10 more, as the reference's fresh project has.
		setQuota("security_group_rule", count("security-group-rules")+10)
		newRules(quota("security_group_rule") - count("security-group-rules"))
		if q, n := quota("security_group_rule"), count("security-group-rules"); q != n {
			t.Fatalf("rule quota %d, rules %d", q, n)
		}
		e.want("rule over quota", e.do("POST", rulePath, projectA, ruleBody(def, "direction", "ingress", "protocol", "udp", "port_range_min", 9, "port_range_max", 9)), 409, "OverQuota")
		setQuota("security_group_rule", 2*quota("security_group_rule")) // test_sg_rules_quota_increased
		newRules(quota("security_group_rule") - count("security-group-rules"))
		if q, n := quota("security_group_rule"), count("security-group-rules"); q != n {
			t.Fatalf("raised rule quota %d, rules %d", q, n)
		}
		for _, v := range []int{-1, 0, 10, 2147483647} { // test_sg_rules_quota_values
			setQuota("security_group_rule", v)
			if got := quota("security_group_rule"); got != v {
				t.Fatalf("security_group_rule quota %d shows %d", v, got)
			}
		}
		setQuota("security_group_rule", -1) // test_create_sg_rules_when_quota_disabled
		before = count("security-group-rules")
		newRules(10)
		if after := count("security-group-rules"); after <= before {
			t.Fatalf("rules %d, then %d", before, after)
		}
		setQuota("security_group_rule", count("security-group-rules")/2) // test_sg_rules_quota_decrease_less_than_created
		if q, n := quota("security_group_rule"), count("security-group-rules"); q != n/2 {
			t.Fatalf("lowered rule quota shows %d for %d rules", q, n)
		}
		// test_sg_creation_with_insufficient_sg_rules_quota: a new group
		// brings two rules, which a rule quota of 0 refuses.
		setQuota("security_group_rule", 0)
		groupsBefore := count("security-groups")
		e.want("group without rule quota", e.do("POST", sgPath, projectA, sgBody("name", "no-rules")), 409, "OverQuota")
		if n := count("security-groups"); n != groupsBefore {
			t.Fatalf("the refused group was created: %d groups, were %d", n, groupsBefore)
		}
	})
}

// V4 and V6 protocols as the reference's base_security_groups lists them.
var (
	v4Protocols = map[string]int{"ah": 51, "dccp": 33, "egp": 8, "esp": 50, "gre": 47, "icmp": 1, "igmp": 2, "ospf": 89,
		"pgm": 113, "rsvp": 46, "sctp": 132, "tcp": 6, "udp": 17, "udplite": 136, "vrrp": 112}
	v6Protocols = map[string]int{"ipv6-encap": 41, "ipv6-frag": 44, "ipv6-icmp": 58, "ipv6-nonxt": 59, "ipv6-opts": 60, "ipv6-route": 43}
)

// TestSecurityGroupRuleProtocols stands for the reference's
// test_security_group_rule_protocol_names and _ints (stateful and
// stateless), test_security_group_rule_protocol_legacy_icmpv6 (stateful
// and stateless) and the negative
// test_create_security_group_rule_with_ipv6_protocol_names and _integers.
func TestSecurityGroupRuleProtocols(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		e.unlimitedGroups(projectA)
		check := func(t *testing.T, group, protocol, ethertype, want string) {
			t.Helper()
			everything := map[string]string{"IPv4": "0.0.0.0/0", "IPv6": "::/0"}[ethertype]
			created := item(t, e.do("POST", rulePath, projectA, ruleBody(group, "protocol", protocol, "direction", "ingress",
				"ethertype", ethertype, "remote_ip_prefix", everything)), 201, "security_group_rule")
			shown := item(t, e.do("GET", rulePath+"/"+created["id"].(string), projectA, nil), 200, "security_group_rule")
			for _, r := range []map[string]any{created, shown} {
				if r["protocol"] != want || r["direction"] != "ingress" || r["ethertype"] != ethertype {
					t.Fatalf("rule with protocol %s (%s) = %v, want protocol %s", protocol, ethertype, r, want)
				}
			}
		}
		for _, m := range modes {
			t.Run(m.name, func(t *testing.T) {
				// Names and numbers in groups of their own, as in the
				// reference: a number repeats its name's rule.
				byName := e.newGroup(projectA, "names-"+m.name, m.stateful)
				byNumber := e.newGroup(projectA, "numbers-"+m.name, m.stateful)
				for name, num := range v4Protocols {
					check(t, byName, name, "IPv4", name)
					check(t, byNumber, strconv.Itoa(num), "IPv4", strconv.Itoa(num))
				}
				for name, num := range v6Protocols {
					check(t, byName, name, "IPv6", name)
					check(t, byNumber, strconv.Itoa(num), "IPv6", strconv.Itoa(num))
				}
				// The legacy IPv6 ICMP names: the reference takes them
				// and shows its canonical name.
				for _, legacy := range []string{"icmpv6", "icmp"} {
					check(t, e.newGroup(projectA, legacy+"-"+m.name, m.stateful), legacy, "IPv6", "ipv6-icmp")
				}
			})
		}

		g := e.newGroup(projectA, "v4-only", true)
		tcp := item(t, e.do("POST", rulePath, projectA, ruleBody(g, "protocol", "tcp", "direction", "ingress",
			"ethertype", "IPv4", "remote_ip_prefix", "0.0.0.0/0")), 201, "security_group_rule")["id"].(string)
		// The reference's duplicate check takes a protocol's name and
		// number as one, and 0.0.0.0/0 or ::/0 as no prefix.
		cases := []faultCase{
			{"tcp again as 6", "POST", rulePath, ruleBody(g, "protocol", "6", "direction", "ingress", "ethertype", "IPv4", "remote_ip_prefix", "0.0.0.0/0"),
				409, "SecurityGroupRuleExists", "Security group rule already exists. Rule id is " + tcp + "."},
			{"tcp again without a prefix", "POST", rulePath, ruleBody(g, "protocol", "tcp", "direction", "ingress", "ethertype", "IPv4"),
				409, "SecurityGroupRuleExists", "Rule id is " + tcp + "."},
		}
		for name, num := range v6Protocols {
			for _, p := range []string{name, strconv.Itoa(num)} {
				cases = append(cases, faultCase{"IPv6 protocol " + p + " with IPv4", "POST", rulePath,
					ruleBody(g, "protocol", p, "direction", "ingress", "ethertype", "IPv4"),
					400, "SecurityGroupEthertypeConflictWithProtocol", "Invalid ethertype IPv4 for protocol " + p + "."})
			}
		}
		runFaultCases(t, e, cases, snapshot, "")
	})
}

// TestSecurityGroupNormalizedCIDR stands for the reference's
// test_normalized_cidr_in_rule: remote_ip_prefix is kept as given and
// normalized_cidr is its network; a rule with a remote group has neither.
func TestSecurityGroupNormalizedCIDR(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		g := e.newGroup(projectA, "cidr", true)
		created := item(t, e.do("POST", rulePath, projectA, ruleBody(g, "direction", "ingress", "ethertype", "IPv4",
			"remote_ip_prefix", "10.0.0.34/24")), 201, "security_group_rule")
		shown := item(t, e.do("GET", rulePath+"/"+created["id"].(string), projectA, nil), 200, "security_group_rule")
		for _, r := range []map[string]any{created, shown} {
			if r["normalized_cidr"] != "10.0.0.0/24" || r["remote_ip_prefix"] != "10.0.0.34/24" {
				t.Fatalf("rule = %v", r)
			}
		}
		remote := item(t, e.do("POST", rulePath, projectA, ruleBody(g, "direction", "ingress", "ethertype", "IPv4",
			"remote_group_id", g)), 201, "security_group_rule")
		if v, ok := remote["normalized_cidr"]; !ok || v != nil || remote["remote_ip_prefix"] != nil {
			t.Fatalf("rule with a remote group = %v", remote)
		}
	})
}

// TestSecurityGroupNegative stands for the nine tests of the reference's
// NegativeSecGroupTest (its IPv6 subclass runs the same requests): names
// too long or not strings on create and update, renaming the default
// group, deleting a group in use, the same group twice on a port and a
// nonexistent group on a port, which leaves the port's groups as they were.
func TestSecurityGroupNegative(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		long := strings.Repeat("x", 256)
		def := e.defaultGroup(projectA)
		net := e.create(projectA, "networks", map[string]any{"name": "n"})
		used := e.newGroup(projectA, "used", true)
		e.create(projectA, "ports", map[string]any{"network_id": net, "security_groups": []any{used}})
		port := e.create(projectA, "ports", map[string]any{"network_id": net})
		twice := e.newGroup(projectA, "twice", true)
		before := item(t, e.do("GET", "/v2.0/ports/"+port, projectA, nil), 200, "port")["security_groups"]
		const missing = "0f5b6c1e-2d7a-4e8f-9a3b-4c5d6e7f8a9b"
		portGroups := func(groups ...any) map[string]any {
			return map[string]any{"port": map[string]any{"security_groups": groups}}
		}
		runFaultCases(t, e, []faultCase{
			{"create with a name too long", "POST", sgPath, sgBody("name", long), 400, "HTTPBadRequest", "exceeds maximum length of 255"},
			{"create with a boolean name", "POST", sgPath, sgBody("name", true), 400, "HTTPBadRequest", "Invalid input for name"},
			{"rename the default group", "PUT", sgPath + "/" + def, sgBody("name", "test"), 409, "SecurityGroupCannotUpdateDefault", "Updating default security group not allowed."},
			{"default group name too long", "PUT", sgPath + "/" + def, sgBody("name", long), 400, "HTTPBadRequest", "exceeds maximum length of 255"},
			{"default group name boolean", "PUT", sgPath + "/" + def, sgBody("name", true), 400, "HTTPBadRequest", "Invalid input for name"},
			{"delete a group in use", "DELETE", sgPath + "/" + used, nil, 409, "SecurityGroupInUse", "Security Group " + used + " in use."},
			{"the same group twice on a port", "PUT", "/v2.0/ports/" + port, portGroups(twice, twice), 400, "HTTPBadRequest", "Duplicate items in the list: '" + twice + "'"},
			{"a nonexistent group on a port", "PUT", "/v2.0/ports/" + port, portGroups(missing), 404, "SecurityGroupNotFound", "Security group " + missing + " does not exist"},
		}, snapshot, "")
		after := item(t, e.do("GET", "/v2.0/ports/"+port, projectA, nil), 200, "port")["security_groups"]
		if fmt.Sprint(after) != fmt.Sprint(before) || fmt.Sprint(after) != "["+def+"]" {
			t.Fatalf("port groups %v after the failed assignments, were %v", after, before)
		}
	})
}

// TestSecurityGroupDefaultRecreatedOnPortUpdate stands for the reference's
// admin test_security_group_recreated_on_port_update: once an admin has
// deleted a project's default group, the project's next port update
// recreates it. The admin's listing of every project's groups, which
// creates no other project's group, shows that the update did.
func TestSecurityGroupDefaultRecreatedOnPortUpdate(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		net := e.create(projectA, "networks", map[string]any{"name": "n"})
		e.create(projectA, "subnets", map[string]any{"network_id": net, "ip_version": 4, "cidr": "10.90.0.0/24"})
		port := e.create(projectA, "ports", map[string]any{"network_id": net, "security_groups": []any{}})
		def := e.defaultGroup(projectA)
		defaultOfA := func() []string {
			t.Helper()
			var out []string
			for _, g := range e.do("GET", sgPath+"?name=default", "", nil).body["security_groups"].([]any) {
				if g := g.(map[string]any); g["project_id"] == projectA {
					out = append(out, g["id"].(string))
				}
			}
			return out
		}
		if r := e.do("DELETE", sgPath+"/"+def, "", nil); r.status != 204 {
			t.Fatalf("admin deletes the default group: %d %s", r.status, r.raw)
		}
		if got := defaultOfA(); len(got) != 0 {
			t.Fatalf("default group after its deletion: %v", got)
		}
		item(t, e.do("PUT", "/v2.0/ports/"+port, projectA, map[string]any{"port": map[string]any{"name": "update"}}), 200, "port")
		got := defaultOfA()
		if len(got) != 1 || got[0] == def {
			t.Fatalf("default group after the port update: %v (the deleted one was %s)", got, def)
		}
		if !slices.Contains(names(e.do("GET", sgPath, projectA, nil), "security_groups"), "default") {
			t.Fatal("the project's list has no default group")
		}
	})
}

// TestSecurityGroupQuotaFull stands for the reference's
// admin/test_quotas_negative.py tests
// test_create_security_group_when_quotas_is_full and
// test_create_security_group_rule_when_quotas_is_full: an admin creating
// for a project with room for one more group, or one more rule, gets the
// second refused with 409.
func TestSecurityGroupQuotaFull(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		setQuota := func(res string, n int) {
			t.Helper()
			item(t, e.do("PUT", "/v2.0/quotas/"+projectB, "", map[string]any{"quota": map[string]any{res: n}}), 200, "quota")
		}
		listed := func(coll string) int {
			t.Helper()
			r := e.do("GET", "/v2.0/"+coll+"?project_id="+projectB, "", nil)
			return len(r.body[strings.ReplaceAll(coll, "-", "_")].([]any))
		}
		forB := func(kv ...any) map[string]any {
			return sgBody(append([]any{"project_id", projectB}, kv...)...)
		}
		setQuota("security_group", listed("security-groups")+1)
		item(t, e.do("POST", sgPath, "", forB("name", "one")), 201, "security_group")
		e.want("second group", e.do("POST", sgPath, "", forB("name", "two")), 409, "OverQuota")

		setQuota("security_group", -1)
		g := item(t, e.do("POST", sgPath, "", forB("name", "rules")), 201, "security_group")["id"].(string)
		setQuota("security_group_rule", listed("security-group-rules")+1)
		rule := func(direction string) map[string]any {
			return ruleBody(g, "project_id", projectB, "direction", direction, "ethertype", "IPv4", "remote_ip_prefix", "0.0.0.0/0")
		}
		item(t, e.do("POST", rulePath, "", rule("ingress")), 201, "security_group_rule")
		e.want("second rule", e.do("POST", rulePath, "", rule("egress")), 409, "OverQuota")
	})
}

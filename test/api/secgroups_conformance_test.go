package api_test

import (
	"slices"
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

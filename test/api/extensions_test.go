package api_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions"
	"github.com/gophercloud/gophercloud/v2/pagination"
)

// extensionTests names, for every extension /v2.0/extensions advertises,
// tests that exercise its behaviour ("dir:TestName", dir relative to the
// repository root). An alias without one must be in extensionsUntested.
var extensionTests = map[string][]string{
	"agent":                          {"test/api:TestL3AgentScheduler", "test/api:TestDHCPAgentScheduler"},
	"allowed-address-pairs":          {"test/api:TestPorts", "test/api:TestValidationErrors"},
	"binding":                        {"test/api:TestPorts", "test/api:TestDHCPAgentScheduler"},
	"dhcp_agent_scheduler":           {"test/api:TestDHCPAgentScheduler"},
	"empty-string-filtering":         {"test/api:TestListQueries"},
	"ext-gw-mode":                    {"test/api:TestRouters", "test/api:TestValidationErrors"},
	"external-net":                   {"test/api:TestNetworks", "test/api:TestFloatingIPs"},
	"extra_dhcp_opt":                 {"test/api:TestExtraDHCPOpts"},
	"extraroute":                     {"test/api:TestRouters", "test/api:TestValidationErrors"},
	"fip-port-details":               {"test/api:TestFloatingIPs"},
	"flavors":                        {"test/api:TestVPNFlavors"},
	"ip-substring-filtering":         {"test/api:TestExtensionBehaviours"},
	"l3_agent_scheduler":             {"test/api:TestL3AgentScheduler", "test/cli:TestOpenstackL3AgentCLI"},
	"net-mtu":                        {"test/api:TestNetworks", "test/api:TestProviderNetworks"},
	"net-mtu-writable":               {"test/api:TestNetworks", "test/api:TestValidationErrors", "test/api:TestNetworkMTUMinimum"},
	"pagination":                     {"test/api:TestListQueries", "test/api:TestPagingEveryCollection", "test/api:TestVPNListQueries"},
	"port-security":                  {"test/api:TestPorts", "test/api:TestValidationErrors"},
	"project-id":                     {"test/api:TestListQueries", "test/api:TestPagingEveryCollection", "test/api:TestValidationErrors"},
	"provider":                       {"test/api:TestProviderNetworks", "test/api:TestNoTenantSegments"},
	"multi-provider":                 {"test/api:TestMultiSegmentNetworks"},
	"address-scope":                  {"test/api:TestAddressScopes"},
	"quota_details":                  {"test/api:TestFloatingIPs"},
	"quotas":                         {"test/api:TestQuotas", "test/api:TestQuotaFull", "test/api:TestVPNQuota", "test/api:TestBulkAllOrNothing", "test/api:TestSecurityGroupQuotaConformance", "test/api:TestSecurityGroupQuotaFull"},
	"revision-if-match":              {"test/api:TestIfMatch", "test/api:TestIfMatchRace"},
	"router":                         {"test/api:TestRouters", "test/cli:TestOpenstackCLI"},
	"security-group":                 {"test/api:TestSecurityGroups", "test/api:TestSecurityGroupLifecycle", "test/api:TestSecurityGroupRuleProtocols", "test/api:TestSecurityGroupNormalizedCIDR", "test/api:TestSecurityGroupNegative", "test/api:TestSecurityGroupDefaultRecreatedOnPortUpdate"},
	"service-type":                   {"test/api:TestVPNDiscovery"},
	"subnet_allocation":              {"test/api:TestSubnetPools", "test/api:TestSubnetPoolDefaultQuota", "test/cli:TestOpenstackSubnetPoolCLI"},
	"default-subnetpools":            {"test/api:TestSubnetPools", "test/cli:TestOpenstackSubnetPoolCLI"},
	"subnetpool-prefix-ops":          {"test/api:TestSubnetPoolPrefixOps"},
	"sorting":                        {"test/api:TestListQueries", "test/api:TestPagingEveryCollection", "test/api:TestVPNListQueries"},
	"standard-attr-description":      {"test/api:TestNetworks", "test/api:TestVPNPolicies"},
	"standard-attr-revisions":        {"test/api:TestRevisionBumps", "test/api:TestNetworks"},
	"standard-attr-tag":              {"test/api:TestTagsEveryResource", "test/api:TestTagFilters", "test/api:TestTagFaults", "test/cli:TestOpenstackTagsCLI"},
	"standard-attr-timestamp":        {"test/api:TestNetworks", "test/api:TestTimestamps"},
	"stateful-security-group":        {"test/api:TestExtensionBehaviours", "test/api:TestSecurityGroupStatefulness"},
	"tag-creation":                   {"test/api:TestTagsEveryResource"},
	"tag-ports-during-bulk-creation": {"test/api:TestBulkCreate"},
	"trunk":                          {"test/api:TestTrunks", "test/api:TestTrunkBadInput", "test/e2e:TestTrunkWiring"},
	"trunk-details":                  {"test/api:TestTrunks"},
	"vpn-aes-ctr":                    {"test/api:TestVPNAcceptedValues"},
	"vpn-endpoint-groups":            {"test/api:TestVPNEndpointGroupFlow"},
	"vpn-flavors":                    {"test/api:TestVPNFlavors"},
	"vpn-peer-config":                {"test/api:TestPeerConfigExport"},
	"vpn-status-reason":              {"test/control:TestVPNDeviceDriverProtocol", "test/api:TestVPNValidationErrors"},
	"vpnaas":                         {"test/api:TestVPNLegacyFlow", "test/cli:TestOpenstackVPNCLI"},
}

// extensionsUntested lists advertised aliases with no behaviour test of
// their own, and why that is acceptable.
// None today; an entry reads "alias": "reason".
var extensionsUntested = map[string]string{}

// TestExtensionsHaveTests checks that every extension Neutrino advertises
// names a behaviour test that exists (or an explicit reason for having
// none), and that neither list names an alias no longer advertised.
func TestExtensionsHaveTests(t *testing.T) {
	e := newEnv(t, "sqlite")
	pages := must[pagination.Page](t)(extensions.List(e.a).AllPages(ctx))
	exts := must[[]extensions.Extension](t)(extensions.ExtractExtensions(pages))
	var advertised []string
	for _, x := range exts {
		advertised = append(advertised, x.Alias)
	}
	// The records added with issue 16, as the reference (neutron and
	// neutron-lib) has them.
	want := map[string][3]string{
		"standard-attr-tag": {"Tag support for resources with standard attribute: network, subnet, subnetpool, address_scope, port, router, floatingip, security_group, trunk, ikepolicy, ipsecpolicy, vpnservice, endpoint_group, ipsec_site_connection",
			"Enables to set tag on resources with standard attribute.", "2017-01-01T00:00:00-00:00"},
		"tag-creation":                   {"Tag creation extension", "Allow to create multiple tags for a resource", "2024-23-07T10:00:00-00:00"},
		"tag-ports-during-bulk-creation": {"Tag Ports During Bulk Creation", "Allow to tag ports during bulk creation", "2019-12-29T19:00:00-00:00"},
		"multi-provider":                 {"Multi Provider Network", "Expose mapping of virtual networks to multiple physical networks", "2013-06-27T10:00:00-00:00"},
		"address-scope":                  {"Address scope", "Address scopes extension.", "2015-07-26T10:00:00-00:00"},
		"ip-substring-filtering":         {"IP address substring filtering", "Provides IP address substring filtering when listing ports", "2017-11-28T09:00:00-00:00"},
	}
	for _, x := range exts {
		if w, ok := want[x.Alias]; ok && (x.Name != w[0] || x.Description != w[1] || x.Updated != w[2]) {
			t.Errorf("extension %s = %q %q %q, want %q", x.Alias, x.Name, x.Description, x.Updated, w)
		}
	}
	tests := testFuncs(t)
	for _, alias := range advertised {
		names, tested := extensionTests[alias]
		_, excused := extensionsUntested[alias]
		switch {
		case tested && excused:
			t.Errorf("extension %s is in both extensionTests and extensionsUntested", alias)
		case !tested && !excused:
			t.Errorf("extension %s is advertised but names no behaviour test and no reason for none", alias)
		}
		for _, n := range names {
			if !tests[n] {
				t.Errorf("extension %s names %s, which does not exist", alias, n)
			}
		}
	}
	for alias := range extensionTests {
		if !slices.Contains(advertised, alias) {
			t.Errorf("extensionTests names %s, which is not advertised", alias)
		}
	}
	for alias := range extensionsUntested {
		if !slices.Contains(advertised, alias) {
			t.Errorf("extensionsUntested names %s, which is not advertised", alias)
		}
	}
}

// testFuncs returns "dir:TestName" for every test function in the
// directories extensionTests names.
func testFuncs(t *testing.T) map[string]bool {
	t.Helper()
	root := filepath.Join("..", "..")
	out := map[string]bool{}
	dirs := map[string]bool{}
	for _, names := range extensionTests {
		for _, n := range names {
			dir, _, _ := strings.Cut(n, ":")
			dirs[dir] = true
		}
	}
	for dir := range dirs {
		files, err := filepath.Glob(filepath.Join(root, dir, "*_test.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no test files in %s: %v", dir, err)
		}
		for _, f := range files {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			file, err := parser.ParseFile(token.NewFileSet(), f, src, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range file.Decls {
				if fn, ok := d.(*ast.FuncDecl); ok && fn.Recv == nil && strings.HasPrefix(fn.Name.Name, "Test") {
					out[dir+":"+fn.Name.Name] = true
				}
			}
		}
	}
	return out
}

// TestExtensionBehaviours covers advertised extensions that no other test
// exercises: ip-substring-filtering (fixed_ips=ip_address_substr=...)
// and stateful-security-group (stateful on create, shown and filtered).
func TestExtensionBehaviours(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		net := e.create(projectA, "networks", map[string]any{"name": "n"})
		sub := e.create(projectA, "subnets", map[string]any{"network_id": net, "ip_version": 4, "cidr": "10.20.0.0/24"})
		for _, ip := range []string{"10.20.0.15", "10.20.0.150", "10.20.0.7"} {
			e.create(projectA, "ports", map[string]any{"network_id": net, "name": ip,
				"fixed_ips": []any{map[string]any{"subnet_id": sub, "ip_address": ip}}})
		}
		r := e.do("GET", "/v2.0/ports?fixed_ips=ip_address_substr%3D0.15&sort_key=name&sort_dir=asc", projectA, nil)
		if got := names(r, "ports"); !slices.Equal(got, []string{"10.20.0.15", "10.20.0.150"}) {
			t.Fatalf("ip_address_substr=0.15: %v (%s)", got, r.raw)
		}

		stateless := e.createAs(projectA, "security-groups", "security_group", map[string]any{"name": "udp", "stateful": false})
		g := item(t, e.do("GET", "/v2.0/security-groups/"+stateless, projectA, nil), 200, "security_group")
		if g["stateful"] != false {
			t.Fatalf("a group created stateful=false shows %v", g["stateful"])
		}
		r = e.do("GET", "/v2.0/security-groups?stateful=false", projectA, nil)
		if got := names(r, "security_groups"); !slices.Equal(got, []string{"udp"}) {
			t.Fatalf("?stateful=false: %v", got)
		}
	})
}

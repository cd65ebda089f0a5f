package httpapi

import (
	"net/http"
	"slices"
	"strings"

	"github.com/neutrino-net/neutrino/api/neutron"
)

// Extension is one record of /v2.0/extensions.
type Extension struct {
	Alias, Name, Description, Updated string
}

// coreExtensions are the extensions the core API implements.
var coreExtensions = []Extension{
	{"agent", "agent", "The agent management extension.", "2013-02-03T10:00:00-00:00"},
	{"allowed-address-pairs", "Allowed Address Pairs", "Provides allowed address pairs", "2013-07-23T10:00:00-00:00"},
	{"binding", "Port Binding", "Expose port bindings of a virtual port to external application", "2014-02-03T10:00:00-00:00"},
	{"dhcp_agent_scheduler", "DHCP Agent Scheduler", "Schedule networks among dhcp agents", "2013-02-07T10:00:00-00:00"},
	{"empty-string-filtering", "Empty String Filtering Extension", "Allow filtering by attributes with empty string value", "2018-05-01T10:00:00-00:00"},
	{"ext-gw-mode", "Neutron L3 Configurable external gateway mode", "Extension of the router abstraction for specifying whether SNAT should occur on the external gateway", "2013-03-28T10:00:00-00:00"},
	{"fip-port-details", "Floating IP Port Details Extension", "Add port_details attribute to Floating IP resource", "2018-04-09T10:00:00-00:00"},
	{"external-net", "Neutron external network", "Adds external network attribute to network resource.", "2013-01-14T10:00:00-00:00"},
	{"extraroute", "Neutron Extra Route", "Extra routes configuration for L3 router", "2013-02-01T10:00:00-00:00"},
	{"extra_dhcp_opt", "Neutron Extra DHCP options", "Extra options configuration for DHCP. For example PXE boot options to DHCP clients can be specified (e.g. tftp-server, server-ip-address, bootfile-name)", "2013-03-17T12:00:00-00:00"},
	{"ip-substring-filtering", "IP address substring filtering", "Provides IP address substring filtering when listing ports", "2017-11-28T09:00:00-00:00"},
	{"l3_agent_scheduler", "L3 Agent Scheduler", "Schedule routers among l3 agents", "2013-02-07T10:00:00-00:00"},
	{"net-mtu", "Network MTU", "Provides MTU attribute for a network resource.", "2015-03-25T10:00:00-00:00"},
	{"net-mtu-writable", "Network MTU (writable)", "Provides a writable MTU attribute for a network resource.", "2017-07-12T00:00:00-00:00"},
	{"pagination", "Pagination support", "Extension that indicates that pagination is enabled.", "2016-06-12T00:00:00-00:00"},
	{"port-security", "Port Security", "Provides port security", "2012-07-23T10:00:00-00:00"},
	{"project-id", "project_id field enabled", "Extension that indicates that project_id field is enabled.", "2016-09-09T09:09:09-09:09"},
	{"provider", "Provider Network", "Expose mapping of virtual networks to physical networks", "2012-09-07T10:00:00-00:00"},
	{"quotas", "Quota management support", "Expose functions for quotas management per project", "2012-07-29T10:00:00-00:00"},
	{"quota_details", "Quota details management support", "Expose functions for quotas usage statistics per project", "2017-02-10T10:00:00-00:00"},
	{"router", "Neutron L3 Router", "Router abstraction for basic L3 forwarding between L2 Neutron networks and access to external networks via a NAT gateway.", "2012-07-20T10:00:00-00:00"},
	{"security-group", "security-group", "The security groups extension.", "2012-10-05T10:00:00-00:00"},
	{"subnet_allocation", "Subnet Allocation", "Enables allocation of subnets from a subnet pool", "2015-03-30T10:00:00-00:00"},
	{"default-subnetpools", "Default Subnetpools", "Provides ability to mark and use a subnetpool as the default.", "2016-02-18T18:00:00-00:00"},
	{"subnetpool-prefix-ops", "Subnet Pool Prefix Operations", "Provides support for adjusting the prefix list of subnet pools", "2019-02-08T10:00:00-00:00"},
	{"sorting", "Sorting support", "Extension that indicates that sorting is enabled.", "2016-06-12T00:00:00-00:00"},
	{"standard-attr-description", "standard-attr-description", "Extension to add descriptions to standard attributes", "2016-02-10T10:00:00-00:00"},
	{"standard-attr-revisions", "Resource revision numbers", "This extension will display the revision number of neutron resources.", "2016-04-11T10:00:00-00:00"},
	// The reference's name lists the singular names of the tagged
	// resources; Neutrino's are those of store.TagKinds.
	{"standard-attr-tag", "Tag support for resources with standard attribute: network, subnet, subnetpool, address_scope, port, router, floatingip, security_group, trunk, ikepolicy, ipsecpolicy, vpnservice, endpoint_group, ipsec_site_connection", "Enables to set tag on resources with standard attribute.", "2017-01-01T00:00:00-00:00"},
	{"standard-attr-timestamp", "Resource timestamps", "Adds created_at and updated_at fields to all Neutron resources that have Neutron standard attributes.", "2016-09-12T10:00:00-00:00"},
	{"tag-ports-during-bulk-creation", "Tag Ports During Bulk Creation", "Allow to tag ports during bulk creation", "2019-12-29T19:00:00-00:00"},
	{"tag-creation", "Tag creation extension", "Allow to create multiple tags for a resource", "2024-23-07T10:00:00-00:00"},
	{"stateful-security-group", "Stateful security group", "Indicates if the security group is stateful or not", "2019-11-26T09:00:00-00:00"},
}

func extensionWire(e Extension) object {
	return object{"alias": e.Alias, "name": e.Name, "description": e.Description, "updated": e.Updated, "links": []object{}}
}

func (a *API) extensions() []Extension {
	exts := append(slices.Clone(coreExtensions), vpnExtensions...)
	exts = append(exts, revisionIfMatch, trunkExtension, trunkDetailsExtension, multiProviderExtension, addressScopeExtension)
	slices.SortFunc(exts, func(x, y Extension) int { return strings.Compare(x.Alias, y.Alias) })
	return exts
}

func (a *API) routes() {
	m := a.mux
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			notFoundRoute(w, r)
			return
		}
		if r.Method != http.MethodGet {
			methodNotAllowed(w, r)
			return
		}
		writeJSON(w, http.StatusOK, object{"versions": []object{{
			"id": "v2.0", "status": "CURRENT",
			"links": []object{{"rel": "self", "href": a.baseURL(r) + "/v2.0/"}},
		}}})
	})
	m.HandleFunc("/v2.0", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			methodNotAllowed(w, r)
			return
		}
		var res []object
		for _, c := range []string{"network", "subnet", "subnetpool", "port"} {
			res = append(res, object{"name": c, "collection": c + "s",
				"links": []object{{"rel": "self", "href": a.baseURL(r) + "/v2.0/" + c + "s"}}})
		}
		writeJSON(w, http.StatusOK, object{"resources": res})
	})
	m.HandleFunc("GET /v2.0/extensions", func(w http.ResponseWriter, r *http.Request) {
		var out []object
		for _, e := range a.extensions() {
			out = append(out, extensionWire(e))
		}
		writeJSON(w, http.StatusOK, object{"extensions": out})
	})
	m.HandleFunc("GET /v2.0/extensions/{alias}", func(w http.ResponseWriter, r *http.Request) {
		alias := r.PathValue("alias")
		for _, e := range a.extensions() {
			if e.Alias == alias {
				writeJSON(w, http.StatusOK, object{"extension": extensionWire(e)})
				return
			}
		}
		writeError(w, neutron.NotFound("ExtensionNotFound", "Extension with alias %s does not exist", alias))
	})
	a.mount("/v2.0/networks", a.networks())
	a.mount("/v2.0/subnets", a.subnets())
	a.mount("/v2.0/subnetpools", a.subnetPools())
	a.mount("/v2.0/address-scopes", a.addressScopes())
	m.HandleFunc("/v2.0/subnetpools/{id}/add_prefixes", a.prefixOps(true))
	m.HandleFunc("/v2.0/subnetpools/{id}/remove_prefixes", a.prefixOps(false))
	a.mount("/v2.0/ports", a.ports())
	a.mount("/v2.0/routers", a.routers())
	a.mount("/v2.0/floatingips", a.floatingIPs())
	a.mount("/v2.0/security-groups", a.securityGroups())
	a.mount("/v2.0/security-group-rules", a.securityGroupRules())
	m.HandleFunc("/v2.0/routers/{id}/add_router_interface", a.routerInterface(true))
	m.HandleFunc("/v2.0/routers/{id}/remove_router_interface", a.routerInterface(false))
	m.HandleFunc("/v2.0/routers/{id}/l3-agents", a.routerL3Agents)
	a.mount("/v2.0/agents", a.agents())
	m.HandleFunc("/v2.0/agents/{id}/l3-routers", a.l3Routers)
	m.HandleFunc("/v2.0/agents/{id}/l3-routers/{router_id}", a.l3Router)
	m.HandleFunc("/v2.0/networks/{id}/dhcp-agents", a.networkDHCPAgents)
	m.HandleFunc("/v2.0/agents/{id}/dhcp-networks", a.dhcpNetworks)
	m.HandleFunc("/v2.0/agents/{id}/dhcp-networks/{network_id}", a.dhcpNetwork)
	a.quotaRoutes()
	a.vpnRoutes()
	a.trunkRoutes()
}

package storetest

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/neutrino-net/neutrino/internal/model"
	"github.com/neutrino-net/neutrino/internal/store"
)

// pageNames are the names (descriptions for rules) of the five rows each
// collection gets; in byte order, which both stores must follow whatever
// a database's locale: B _d a c e.
var pageNames = []string{"c", "a", "e", "B", "_d"}

// pageCase is one collection: make builds its i-th row in project pp with
// a name, list lists with a Page, each row's name.
type pageCase struct {
	coll string
	make func(i int, name string) any
	list func(tx store.Tx, p store.Page) ([]string, error)
	// bool names an attribute whose value true only row 3 ("B") has.
	bool string
}

func names[T any](items []T, err error, name func(*T) string) ([]string, error) {
	out := []string{}
	for i := range items {
		out = append(out, name(&items[i]))
	}
	return out, err
}

func pageCases() []pageCase {
	id := func(coll string, i int) string { return fmt.Sprintf("%s-%d", coll, i) }
	return []pageCase{
		{coll: "networks", bool: "shared", make: func(i int, name string) any {
			n := network(id("net", i), "pp")
			n.Name, n.Shared = name, i == 3
			return n
		}, list: func(tx store.Tx, p store.Page) ([]string, error) {
			v, err := tx.ListNetworks(ctx, store.NetworkFilter{Page: p})
			return names(v, err, func(n *model.Network) string { return n.Name })
		}},
		{coll: "subnets", bool: "enable_dhcp", make: func(i int, name string) any {
			s := subnet(id("sub", i), "pbase-net", "pp", fmt.Sprintf("10.77.%d.0/24", i))
			s.Name, s.EnableDHCP = name, i == 3
			return s
		}, list: func(tx store.Tx, p store.Page) ([]string, error) {
			v, err := tx.ListSubnets(ctx, store.SubnetFilter{Page: p})
			return names(v, err, func(s *model.Subnet) string { return s.Name })
		}},
		{coll: "ports", bool: "admin_state_up", make: func(i int, name string) any {
			pt := port(id("port", i), "pbase-net", "pp", fixed("pbase-sub", fmt.Sprintf("10.78.0.%d", 10+i)))
			pt.Name, pt.AdminStateUp = name, i == 3
			return pt
		}, list: func(tx store.Tx, p store.Page) ([]string, error) {
			v, err := tx.ListPorts(ctx, store.PortFilter{Page: p})
			return names(v, err, func(p *model.Port) string { return p.Name })
		}},
		{coll: "routers", bool: "admin_state_up", make: func(i int, name string) any {
			r := router(id("rtr", i), "pp", nil)
			r.Name, r.AdminStateUp = name, i == 3
			return r
		}, list: func(tx store.Tx, p store.Page) ([]string, error) {
			v, err := tx.ListRouters(ctx, store.RouterFilter{Page: p})
			return names(v, err, func(r *model.Router) string { return r.Name })
		}},
		{coll: "subnetpools", bool: "is_default", make: func(i int, name string) any {
			return &model.SubnetPool{ID: id("pool", i), ProjectID: "pp", Name: name, IPVersion: 4,
				Prefixes: []netip.Prefix{prefix(fmt.Sprintf("10.%d.0.0/16", 100+i))}, DefaultPrefixLen: 24,
				MinPrefixLen: 8, MaxPrefixLen: 32, IsDefault: i == 3, Standard: std(i)}
		}, list: func(tx store.Tx, p store.Page) ([]string, error) {
			v, err := tx.ListSubnetPools(ctx, store.SubnetPoolFilter{Page: p})
			return names(v, err, func(p *model.SubnetPool) string { return p.Name })
		}},
		{coll: "security_groups", make: func(i int, name string) any {
			g := group(id("sg", i), "pp")
			g.Name = name
			return g
		}, list: func(tx store.Tx, p store.Page) ([]string, error) {
			v, err := tx.ListSecurityGroups(ctx, store.SecurityGroupFilter{Page: p})
			return names(v, err, func(g *model.SecurityGroup) string { return g.Name })
		}},
		{coll: "security_group_rules", make: func(i int, name string) any {
			r := rule(id("rule", i), "pbase-sg", "pp")
			r.Description = name
			return r
		}, list: func(tx store.Tx, p store.Page) ([]string, error) {
			v, err := tx.ListRules(ctx, store.RuleFilter{Page: p})
			return names(v, err, func(r *model.SecurityGroupRule) string { return r.Description })
		}},
		{coll: "ikepolicies", make: func(i int, name string) any {
			pol := ikePolicy(id("ike", i), "pp")
			pol.Name = name
			return pol
		}, list: func(tx store.Tx, p store.Page) ([]string, error) {
			v, err := tx.ListIKEPolicies(ctx, store.PolicyFilter{Page: p})
			return names(v, err, func(p *model.IKEPolicy) string { return p.Name })
		}},
		{coll: "ipsecpolicies", make: func(i int, name string) any {
			pol := ipsecPolicy(id("ipsec", i), "pp")
			pol.Name = name
			return pol
		}, list: func(tx store.Tx, p store.Page) ([]string, error) {
			v, err := tx.ListIPsecPolicies(ctx, store.PolicyFilter{Page: p})
			return names(v, err, func(p *model.IPsecPolicy) string { return p.Name })
		}},
		{coll: "vpnservices", bool: "admin_state_up", make: func(i int, name string) any {
			v := vpnService(id("svc", i), "pp", "pbase-rtr", "")
			v.Name, v.AdminStateUp = name, i == 3
			return v
		}, list: func(tx store.Tx, p store.Page) ([]string, error) {
			v, err := tx.ListVPNServices(ctx, store.VPNServiceFilter{Page: p})
			return names(v, err, func(v *model.VPNService) string { return v.Name })
		}},
		{coll: "endpoint_groups", make: func(i int, name string) any {
			g := endpointGroup(id("eg", i), "pp", "cidr", fmt.Sprintf("10.79.%d.0/24", i))
			g.Name = name
			return g
		}, list: func(tx store.Tx, p store.Page) ([]string, error) {
			v, err := tx.ListEndpointGroups(ctx, store.EndpointGroupFilter{Page: p})
			return names(v, err, func(g *model.EndpointGroup) string { return g.Name })
		}},
		{coll: "floatingips", make: func(i int, name string) any {
			f := floatingIP(id("fip", i), "pp", "pbase-fport", fmt.Sprintf("10.78.1.%d", 10+i))
			f.FloatingNetworkID, f.Description = "pbase-net", name
			return f
		}, list: func(tx store.Tx, p store.Page) ([]string, error) {
			v, err := tx.ListFloatingIPs(ctx, store.FloatingIPFilter{Page: p})
			return names(v, err, func(f *model.FloatingIP) string { return f.Description })
		}},
		{coll: "trunks", bool: "admin_state_up", make: func(i int, name string) any {
			return &model.Trunk{ID: id("trunk", i), ProjectID: "pp", Name: name, AdminStateUp: i == 3, Status: model.StatusDown,
				PortID: fmt.Sprintf("pbase-tport-%d", i), Standard: std(0)}
		}, list: func(tx store.Tx, p store.Page) ([]string, error) {
			v, err := tx.ListTrunks(ctx, store.TrunkFilter{Page: p})
			return names(v, err, func(t *model.Trunk) string { return t.Name })
		}},
		{coll: "ipsec_site_connections", bool: "admin_state_up", make: func(i int, name string) any {
			c := connection(id("conn", i), "pp", "pbase-svc", "pbase-ike", "pbase-ipsec")
			c.Name, c.AdminStateUp = name, i == 3
			return c
		}, list: func(tx store.Tx, p store.Page) ([]string, error) {
			v, err := tx.ListConnections(ctx, store.ConnectionFilter{Page: p})
			return names(v, err, func(c *model.IPsecSiteConnection) string { return c.Name })
		}},
	}
}

// testPage: every collection's listing filters, orders (byte-wise, on
// both stores), starts after a marker and stops at a limit as a Page asks,
// and every attribute of store.PageAttrs can be filtered and sorted on.
func testPage(t *testing.T, s store.Store) {
	base := []any{network("pbase-net", "pbase"), subnet("pbase-sub", "pbase-net", "pbase", "10.78.0.0/24"),
		router("pbase-rtr", "pbase", nil), group("pbase-sg", "pbase"), ikePolicy("pbase-ike", "pbase"),
		ipsecPolicy("pbase-ipsec", "pbase"), vpnService("pbase-svc", "pbase", "pbase-rtr", ""),
		port("pbase-fport", "pbase-net", "pbase", fixed("pbase-sub", "10.78.0.200"))}
	for i := range pageNames {
		base = append(base, port(fmt.Sprintf("pbase-tport-%d", i), "pbase-net", "pbase"))
	}
	write(t, s, create(base...))
	cases := pageCases()
	covered := map[string]bool{}
	for _, pc := range cases {
		covered[pc.coll] = true
		t.Run(pc.coll, func(t *testing.T) {
			var objs []any
			for i, n := range pageNames {
				objs = append(objs, pc.make(i, n))
			}
			write(t, s, create(objs...))
			nameAttr := "name"
			if pc.coll == "security_group_rules" || pc.coll == "floatingips" {
				nameAttr = "description"
			}
			mine := map[string][]any{"project_id": {"pp"}}
			eq := func(more map[string][]any) map[string][]any {
				out := map[string][]any{"project_id": {"pp"}}
				for k, v := range more {
					out[k] = v
				}
				return out
			}
			by := func(desc bool) []store.SortKey {
				return []store.SortKey{{Attr: nameAttr, Desc: desc}, {Attr: "id", Desc: desc}}
			}
			check := func(what string, p store.Page, want []string) {
				t.Helper()
				var got []string
				err := s.Read(ctx, func(tx store.Tx) error {
					var err error
					got, err = pc.list(tx, p)
					return err
				})
				if err != nil || !slices.Equal(got, want) {
					t.Errorf("%s: got %q, %v; want %q", what, got, err, want)
				}
			}
			check("creation order", store.Page{Eq: mine}, pageNames)
			check("creation order after a marker", store.Page{Eq: mine, After: fmt.Sprintf("%s-1", idPrefix(pc)), Limit: 2},
				pageNames[2:4])
			check("creation order after the last", store.Page{Eq: mine, After: fmt.Sprintf("%s-%d", idPrefix(pc), len(pageNames)-1)},
				[]string{})
			check("ascending, byte-wise", store.Page{Eq: mine, Order: by(false)}, []string{"B", "_d", "a", "c", "e"})
			check("descending, limited", store.Page{Eq: mine, Order: by(true), Limit: 2}, []string{"e", "c"})
			check("after a marker", store.Page{Eq: mine, Order: by(true), After: fmt.Sprintf("%s-0", idPrefix(pc)), Limit: 2},
				[]string{"a", "_d"})
			check("after the last", store.Page{Eq: mine, Order: by(false), After: fmt.Sprintf("%s-2", idPrefix(pc))}, []string{})
			check("after an unknown id", store.Page{Eq: mine, Order: by(false), After: "missing"}, []string{})
			check("two values", store.Page{Eq: eq(map[string][]any{nameAttr: {"a", "e", "zz"}}), Order: by(false)}, []string{"a", "e"})
			check("no value", store.Page{Eq: eq(map[string][]any{nameAttr: {}})}, []string{})
			if pc.bool != "" {
				check("a boolean", store.Page{Eq: eq(map[string][]any{pc.bool: {true}})}, []string{"B"})
				check("the other boolean", store.Page{Eq: eq(map[string][]any{pc.bool: {false}}), Order: by(false)},
					[]string{"_d", "a", "c", "e"})
			}
			// Every attribute the store claims works in a filter and an order.
			for _, attr := range store.PageAttrs[pc.coll] {
				err := s.Read(ctx, func(tx store.Tx) error {
					_, err := pc.list(tx, store.Page{Eq: map[string][]any{attr: {sample(attr)}},
						Order: []store.SortKey{{Attr: attr}, {Attr: "id"}}, After: "x", Limit: 1})
					return err
				})
				if err != nil {
					t.Errorf("attribute %s: %v", attr, err)
				}
			}
			err := s.Read(ctx, func(tx store.Tx) error {
				_, err := pc.list(tx, store.Page{Eq: map[string][]any{"no_such_attribute": {"x"}}})
				return err
			})
			if err == nil {
				t.Error("an attribute the store does not know was accepted")
			}
		})
	}
	for coll := range store.PageAttrs {
		if !covered[coll] {
			t.Errorf("collection %s has page attributes but no test", coll)
		}
	}
}

// idPrefix is the id prefix make gives a collection's rows.
func idPrefix(pc pageCase) string {
	return map[string]string{"networks": "net", "subnets": "sub", "subnetpools": "pool", "ports": "port", "routers": "rtr",
		"security_groups": "sg", "security_group_rules": "rule", "ikepolicies": "ike", "ipsecpolicies": "ipsec",
		"vpnservices": "svc", "endpoint_groups": "eg", "ipsec_site_connections": "conn", "floatingips": "fip", "trunks": "trunk"}[pc.coll]
}

// sample is a value of the attribute's type.
func sample(attr string) any {
	switch attr {
	case "admin_state_up", "shared", "router:external", "port_security_enabled", "enable_dhcp", "is_default":
		return true
	case "mtu", "ip_version", "default_prefixlen", "min_prefixlen", "max_prefixlen":
		return 4
	}
	return "x"
}

// testIntLimits: every integer the API accepts (32 bits) is stored and
// read back on both stores.
func testIntLimits(t *testing.T, s store.Store) {
	const max = 1<<31 - 1
	n := network("lim-net", "lim")
	n.MTU = max
	r := router("lim-rtr", "lim", nil)
	ike, ipsec := ikePolicy("lim-ike", "lim"), ipsecPolicy("lim-ipsec", "lim")
	ike.Lifetime.Value, ipsec.Lifetime.Value = max, max
	svc := vpnService("lim-svc", "lim", "lim-rtr", "")
	c := connection("lim-conn", "lim", "lim-svc", "lim-ike", "lim-ipsec")
	c.MTU, c.DPD.Interval, c.DPD.Timeout = max, max-1, max
	rule := rule("lim-rule", "lim-sg", "lim")
	rule.PortRangeMin, rule.PortRangeMax = new(int), new(int)
	*rule.PortRangeMin, *rule.PortRangeMax = max, max
	write(t, s, create(n, r, ike, ipsec, svc, c, group("lim-sg", "lim"), rule))
	err := s.Read(ctx, func(tx store.Tx) error {
		gn, err := tx.GetNetwork(ctx, "lim-net")
		if err != nil || gn.MTU != max {
			return fmt.Errorf("network mtu %v, %v", gn, err)
		}
		gi, err := tx.GetIKEPolicy(ctx, "lim-ike")
		if err != nil || gi.Lifetime.Value != max {
			return fmt.Errorf("ike lifetime %v, %v", gi, err)
		}
		gp, err := tx.GetIPsecPolicy(ctx, "lim-ipsec")
		if err != nil || gp.Lifetime.Value != max {
			return fmt.Errorf("ipsec lifetime %v, %v", gp, err)
		}
		gc, err := tx.GetConnection(ctx, "lim-conn")
		if err != nil || gc.MTU != max || gc.DPD.Interval != max-1 || gc.DPD.Timeout != max {
			return fmt.Errorf("connection %v, %v", gc, err)
		}
		gr, err := tx.GetRule(ctx, "lim-rule")
		if err != nil || *gr.PortRangeMin != max || *gr.PortRangeMax != max {
			return fmt.Errorf("rule %v, %v", gr, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

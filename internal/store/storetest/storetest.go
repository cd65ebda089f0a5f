// Package storetest is a conformance suite for store.Store implementations.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/neutrino-net/neutrino/internal/model"
	"github.com/neutrino-net/neutrino/internal/store"
)

// Run runs the suite. open must return a new, empty store each time it is
// called (from parallel subtests) and arrange for it to be closed.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"Timestamps", testTimestamps},
		{"Update", testUpdate},
		{"NotFound", testNotFound},
		{"ListOrder", testListOrder},
		{"Filters", testFilters},
		{"ListPortsLoadsChildren", testListPortsChildren},
		{"Duplicate", testDuplicate},
		{"Referenced", testReferenced},
		{"Cascade", testCascade},
		{"Rollback", testRollback},
		{"Quotas", testQuotas},
		{"Count", testCount},
		{"DefaultSecurityGroup", testDefaultSecurityGroup},
		{"Concurrency", testConcurrency},
		{"Page", testPage},
		{"IntLimits", testIntLimits},
		{"VPN/RoundTrip", testVPNRoundTrip},
		{"VPN/Update", testVPNUpdate},
		{"VPN/NotFound", testVPNNotFound},
		{"VPN/ListOrder", testVPNListOrder},
		{"VPN/Filters", testVPNFilters},
		{"VPN/Duplicate", testVPNDuplicate},
		{"VPN/Referenced", testVPNReferenced},
		{"VPN/Cascade", testVPNCascade},
		{"VPN/Count", testVPNCount},
		{"VPN/Concurrency", testVPNConcurrency},
		{"Network/SegmentationID", testSegmentationID},
		{"Network/SegmentationIDConcurrency", testSegmentationIDConcurrency},
		{"Network/ProviderSegments", testProviderSegments},
		{"FloatingIP/RoundTrip", testFloatingIPs},
		{"Agents/RoundTrip", testAgentRoundTrip},
		{"Agents/Update", testAgentUpdate},
		{"Agents/NotFound", testAgentNotFound},
		{"Agents/Duplicate", testAgentDuplicate},
		{"Agents/ListOrder", testAgentListOrder},
		{"Agents/Bindings", testAgentBindings},
		{"Agents/Cascade", testAgentCascade},
		{"Agents/Rollback", testAgentRollback},
		{"PortsOnHost", testPortsOnHost},
		{"Tags", testTags},
		{"SubnetPools", testSubnetPools},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

var ctx = context.Background()

var cmpOpts = cmp.Options{
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
	cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
}

// t0 is the suite's reference time; at(n) is n seconds later.
var t0 = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

func at(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

func std(sec int) model.Standard {
	return model.Standard{Description: "made at " + fmt.Sprint(sec), CreatedAt: at(sec), UpdatedAt: at(sec + 1), RevisionNumber: 1}
}

func addr(s string) netip.Addr     { return netip.MustParseAddr(s) }
func prefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func intp(i int) *int              { return &i }

func fixed(subnet, ip string) model.FixedIP {
	return model.FixedIP{SubnetID: subnet, IPAddress: addr(ip)}
}

func network(id, project string) *model.Network {
	return &model.Network{ID: id, ProjectID: project, Name: "net " + id, AdminStateUp: true, Status: "ACTIVE",
		MTU: 1500, PortSecurityEnabled: true, Standard: std(0)}
}

func subnet(id, networkID, project, cidr string) *model.Subnet {
	p := prefix(cidr)
	return &model.Subnet{ID: id, ProjectID: project, NetworkID: networkID, Name: "subnet " + id,
		IPVersion: map[bool]int{true: 4, false: 6}[p.Addr().Is4()], CIDR: p, EnableDHCP: true, Standard: std(0)}
}

var macs atomic.Uint32 // so that every port gets its own MAC

func port(id, networkID, project string, ips ...model.FixedIP) *model.Port {
	n := macs.Add(1)
	mac := fmt.Sprintf("fa:16:3e:%02x:%02x:%02x", n>>16&0xff, n>>8&0xff, n&0xff)
	return &model.Port{ID: id, ProjectID: project, NetworkID: networkID, Name: "port " + id, AdminStateUp: true,
		Status: model.StatusDown, MACAddress: mac, FixedIPs: ips, PortSecurityEnabled: true, Standard: std(0)}
}

func router(id, project string, gw *model.RouterGateway) *model.Router {
	return &model.Router{ID: id, ProjectID: project, Name: "router " + id, AdminStateUp: true, Status: "ACTIVE",
		Gateway: gw, Standard: std(0)}
}

func group(id, project string) *model.SecurityGroup {
	return &model.SecurityGroup{ID: id, ProjectID: project, Name: "sg " + id, Stateful: true, Standard: std(0)}
}

func rule(id, groupID, project string) *model.SecurityGroupRule {
	return &model.SecurityGroupRule{ID: id, ProjectID: project, SecurityGroupID: groupID, Direction: "ingress",
		Ethertype: "IPv4", Standard: std(0)}
}

// write runs fn in a write transaction and fails the test on error.
func write(t *testing.T, s store.Store, fn func(tx store.Tx) error) {
	t.Helper()
	if err := s.Write(ctx, fn); err != nil {
		t.Fatalf("write: %v", err)
	}
}

func read(t *testing.T, s store.Store, fn func(tx store.Tx) error) {
	t.Helper()
	if err := s.Read(ctx, fn); err != nil {
		t.Fatalf("read: %v", err)
	}
}

// writeErr runs fn in a write transaction and checks its error is want.
func writeErr(t *testing.T, s store.Store, want error, fn func(tx store.Tx) error) {
	t.Helper()
	if err := s.Write(ctx, fn); !errors.Is(err, want) {
		t.Fatalf("write: got error %v, want %v", err, want)
	}
}

// create returns a function creating the given objects in order.
func create(objs ...any) func(tx store.Tx) error {
	return func(tx store.Tx) error {
		for _, o := range objs {
			var err error
			switch o := o.(type) {
			case *model.Network:
				err = tx.CreateNetwork(ctx, o, nil)
			case *model.Subnet:
				err = tx.CreateSubnet(ctx, o)
			case *model.SubnetPool:
				err = tx.CreateSubnetPool(ctx, o)
			case *model.Port:
				err = tx.CreatePort(ctx, o)
			case *model.Router:
				err = tx.CreateRouter(ctx, o)
			case *model.SecurityGroup:
				err = tx.CreateSecurityGroup(ctx, o)
			case *model.SecurityGroupRule:
				err = tx.CreateRule(ctx, o)
			case *model.IKEPolicy:
				err = tx.CreateIKEPolicy(ctx, o)
			case *model.IPsecPolicy:
				err = tx.CreateIPsecPolicy(ctx, o)
			case *model.VPNService:
				err = tx.CreateVPNService(ctx, o)
			case *model.EndpointGroup:
				err = tx.CreateEndpointGroup(ctx, o)
			case *model.IPsecSiteConnection:
				err = tx.CreateConnection(ctx, o)
			case *model.Agent:
				err = tx.CreateAgent(ctx, o)
			case *model.FloatingIP:
				err = tx.CreateFloatingIP(ctx, o)
			case *model.Trunk:
				err = tx.CreateTrunk(ctx, o)
			default:
				panic(fmt.Sprintf("create %T", o))
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
}

// base is a small topology most tests start from.
//
//	p1: network n1 with subnets s1 (10.0.0.0/24) and s6 (fd00::/64),
//	    security groups sg1 and sg2
//	p2: external network ext with subnet sext (203.0.113.0/24)
func base(t *testing.T, s store.Store) {
	t.Helper()
	ext := network("ext", "p2")
	ext.External = true
	write(t, s, create(network("n1", "p1"), subnet("s1", "n1", "p1", "10.0.0.0/24"),
		subnet("s6", "n1", "p1", "fd00::/64"), ext, subnet("sext", "ext", "p2", "203.0.113.0/24"),
		group("sg1", "p1"), group("sg2", "p1")))
}

func ids[T any](vs []T, err error) ([]string, error) {
	out := []string{}
	for _, v := range vs {
		out = append(out, idOf(v))
	}
	return out, err
}

func idOf(v any) string {
	switch v := v.(type) {
	case model.Network:
		return v.ID
	case model.Subnet:
		return v.ID
	case model.SubnetPool:
		return v.ID
	case model.Port:
		return v.ID
	case model.Router:
		return v.ID
	case model.SecurityGroup:
		return v.ID
	case model.SecurityGroupRule:
		return v.ID
	case model.IKEPolicy:
		return v.ID
	case model.IPsecPolicy:
		return v.ID
	case model.VPNService:
		return v.ID
	case model.EndpointGroup:
		return v.ID
	case model.IPsecSiteConnection:
		return v.ID
	case model.Agent:
		return v.ID
	case model.FloatingIP:
		return v.ID
	}
	panic(fmt.Sprintf("id of %T", v))
}

// checkGetList checks that get(id) and list(id) both return want.
func checkGetList[T any](t *testing.T, s store.Store, want *T, id string,
	get func(store.Tx, context.Context, string) (*T, error), list func(tx store.Tx, ids []string) ([]T, error)) {
	t.Helper()
	read(t, s, func(tx store.Tx) error {
		got, err := get(tx, ctx, id)
		if err != nil {
			return err
		}
		if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
			t.Errorf("get %s (-want +got):\n%s", id, diff)
		}
		gotList, err := list(tx, []string{id})
		if err != nil {
			return err
		}
		if diff := cmp.Diff([]T{*want}, gotList, cmpOpts); diff != "" {
			t.Errorf("list %s (-want +got):\n%s", id, diff)
		}
		return nil
	})
}

func listNetworks(tx store.Tx, ids []string) ([]model.Network, error) {
	return tx.ListNetworks(ctx, store.NetworkFilter{IDs: ids})
}

func listSubnets(tx store.Tx, ids []string) ([]model.Subnet, error) {
	return tx.ListSubnets(ctx, store.SubnetFilter{IDs: ids})
}

func listPorts(tx store.Tx, ids []string) ([]model.Port, error) {
	return tx.ListPorts(ctx, store.PortFilter{IDs: ids})
}

func listRouters(tx store.Tx, ids []string) ([]model.Router, error) {
	return tx.ListRouters(ctx, store.RouterFilter{IDs: ids})
}

func listFloatingIPs(tx store.Tx, ids []string) ([]model.FloatingIP, error) {
	return tx.ListFloatingIPs(ctx, store.FloatingIPFilter{IDs: ids})
}

// floatingIP is a floating IP of ext held by fport, unassociated.
func floatingIP(id, project, fport, address string) *model.FloatingIP {
	return &model.FloatingIP{ID: id, ProjectID: project, FloatingNetworkID: "ext", FloatingIPAddress: addr(address),
		FloatingPortID: fport, Status: model.StatusDown, Standard: std(0)}
}

func listGroups(tx store.Tx, ids []string) ([]model.SecurityGroup, error) {
	return tx.ListSecurityGroups(ctx, store.SecurityGroupFilter{IDs: ids})
}

func listRules(tx store.Tx, ids []string) ([]model.SecurityGroupRule, error) {
	return tx.ListRules(ctx, store.RuleFilter{IDs: ids})
}

func testRoundTrip(t *testing.T, s store.Store) {
	base(t, s)
	write(t, s, create(port("gwport", "ext", "", fixed("sext", "203.0.113.10"))))

	fullNet := &model.Network{ID: "full-net", ProjectID: "p1", Name: "everything", AdminStateUp: true,
		Status: "DOWN", Shared: true, External: true, MTU: 9000, PortSecurityEnabled: true,
		Standard: model.Standard{Description: "a network", CreatedAt: at(10), UpdatedAt: at(20), RevisionNumber: 7}}
	zeroNet := &model.Network{ID: "zero-net"} // every field zero, timestamps included

	fullSubnet := &model.Subnet{ID: "full-subnet", ProjectID: "p1", NetworkID: "n1", Name: "v6", IPVersion: 6,
		CIDR: prefix("2001:db8:1::/64"), GatewayIP: addr("2001:db8:1::1"),
		AllocationPools: []model.AllocationPool{{Start: addr("2001:db8:1::100"), End: addr("2001:db8:1::1ff")},
			{Start: addr("2001:db8:1::10"), End: addr("2001:db8:1::20")}},
		DNSNameservers: []string{"2001:4860:4860::8888", "1.1.1.1", "2001:4860:4860::8844"},
		HostRoutes: []model.HostRoute{{Destination: prefix("2001:db8:9::/48"), Nexthop: addr("2001:db8:1::2")},
			{Destination: prefix("::/0"), Nexthop: addr("2001:db8:1::3")}},
		EnableDHCP: true, IPv6RAMode: "slaac", IPv6AddressMode: "dhcpv6-stateless", SubnetpoolID: "pool-1",
		Standard: model.Standard{Description: "a subnet", CreatedAt: at(1), UpdatedAt: at(2), RevisionNumber: 3}}
	bareSubnet := &model.Subnet{ID: "bare-subnet", ProjectID: "p1", NetworkID: "n1", IPVersion: 4,
		CIDR: prefix("192.168.0.0/16"), Standard: std(5)}
	emptyListsSubnet := subnet("empty-lists", "n1", "p1", "192.169.0.0/16")
	emptyListsSubnet.AllocationPools = []model.AllocationPool{}
	emptyListsSubnet.DNSNameservers = []string{}
	emptyListsSubnet.HostRoutes = []model.HostRoute{}

	fullPort := &model.Port{ID: "full-port", ProjectID: "p1", NetworkID: "n1", Name: "vm", AdminStateUp: true,
		Status: model.StatusActive, MACAddress: "fa:16:3e:aa:bb:cc", DeviceID: "vm-1", DeviceOwner: "compute:nova",
		FixedIPs:            []model.FixedIP{fixed("s6", "fd00::9"), fixed("s1", "10.0.0.9"), fixed("s1", "10.0.0.3")},
		PortSecurityEnabled: true, SecurityGroups: []string{"sg2", "sg1"},
		AllowedAddressPairs: []model.AddressPair{{IPAddress: "10.1.0.0/24", MACAddress: "fa:16:3e:00:00:01"},
			{IPAddress: "10.2.0.5"}},
		BindingHostID: "compute-1", BindingVNICType: "normal", BindingVIFType: "ovs",
		BindingProfile: map[string]any{"pci_slot": "0000:03:00.1", "vf_num": 3.0, "trusted": true,
			"nested": map[string]any{"list": []any{"a", 1.5, nil}}},
		BindingVIFDetails: map[string]any{"port_filter": true, "ovs_hybrid_plug": false},
		Standard:          model.Standard{Description: "a port", CreatedAt: at(3), UpdatedAt: at(4), RevisionNumber: 2}}
	barePort := &model.Port{ID: "bare-port", ProjectID: "p1", NetworkID: "n1", MACAddress: "fa:16:3e:aa:bb:cd",
		Standard: std(6)}
	emptyMapsPort := port("empty-maps", "n1", "p1")
	emptyMapsPort.BindingProfile = map[string]any{}
	emptyMapsPort.BindingVIFDetails = map[string]any{}
	emptyMapsPort.AllowedAddressPairs = []model.AddressPair{}

	fullRouter := &model.Router{ID: "full-router", ProjectID: "p1", Name: "edge", AdminStateUp: true,
		Status: "ACTIVE", Gateway: &model.RouterGateway{NetworkID: "ext", PortID: "gwport", EnableSNAT: true},
		Routes: []model.Route{{Destination: prefix("10.50.0.0/16"), Nexthop: addr("10.0.0.254")},
			{Destination: prefix("10.40.0.0/16"), Nexthop: addr("10.0.0.253")}},
		Distributed: true, HA: true, Standard: std(7)}
	portlessGateway := router("portless-gw", "p1", &model.RouterGateway{NetworkID: "ext"})
	noGateway := router("no-gw", "p1", nil)

	fullGroup := &model.SecurityGroup{ID: "full-sg", ProjectID: "p1", Name: "web", Stateful: true,
		Standard: model.Standard{Description: "a group", CreatedAt: at(8), UpdatedAt: at(9), RevisionNumber: 4}}
	statelessGroup := &model.SecurityGroup{ID: "stateless-sg", ProjectID: "p1", Standard: std(9)}

	fullRule := &model.SecurityGroupRule{ID: "full-rule", ProjectID: "p1", SecurityGroupID: "sg1",
		Direction: "egress", Ethertype: "IPv6", Protocol: "tcp", PortRangeMin: intp(0), PortRangeMax: intp(65535),
		RemoteIPPrefix: "fd00::/8", RemoteGroupID: "sg2", Standard: std(10)}
	anyRule := rule("any-rule", "sg1", "p1")

	type tc struct {
		name  string
		obj   any
		check func(t *testing.T)
	}
	for _, c := range []tc{
		{"network/full", fullNet, func(t *testing.T) { checkGetList(t, s, fullNet, fullNet.ID, store.Tx.GetNetwork, listNetworks) }},
		{"network/zero", zeroNet, func(t *testing.T) { checkGetList(t, s, zeroNet, zeroNet.ID, store.Tx.GetNetwork, listNetworks) }},
		{"subnet/full", fullSubnet, func(t *testing.T) { checkGetList(t, s, fullSubnet, fullSubnet.ID, store.Tx.GetSubnet, listSubnets) }},
		{"subnet/bare", bareSubnet, func(t *testing.T) { checkGetList(t, s, bareSubnet, bareSubnet.ID, store.Tx.GetSubnet, listSubnets) }},
		{"subnet/empty-lists", emptyListsSubnet, func(t *testing.T) {
			checkGetList(t, s, emptyListsSubnet, emptyListsSubnet.ID, store.Tx.GetSubnet, listSubnets)
		}},
		{"port/full", fullPort, func(t *testing.T) { checkGetList(t, s, fullPort, fullPort.ID, store.Tx.GetPort, listPorts) }},
		{"port/bare", barePort, func(t *testing.T) { checkGetList(t, s, barePort, barePort.ID, store.Tx.GetPort, listPorts) }},
		{"port/empty-maps", emptyMapsPort, func(t *testing.T) {
			checkGetList(t, s, emptyMapsPort, emptyMapsPort.ID, store.Tx.GetPort, listPorts)
		}},
		{"router/full", fullRouter, func(t *testing.T) { checkGetList(t, s, fullRouter, fullRouter.ID, store.Tx.GetRouter, listRouters) }},
		{"router/portless-gateway", portlessGateway, func(t *testing.T) {
			checkGetList(t, s, portlessGateway, portlessGateway.ID, store.Tx.GetRouter, listRouters)
		}},
		{"router/no-gateway", noGateway, func(t *testing.T) { checkGetList(t, s, noGateway, noGateway.ID, store.Tx.GetRouter, listRouters) }},
		{"security-group/full", fullGroup, func(t *testing.T) {
			checkGetList(t, s, fullGroup, fullGroup.ID, store.Tx.GetSecurityGroup, listGroups)
		}},
		{"security-group/stateless", statelessGroup, func(t *testing.T) {
			checkGetList(t, s, statelessGroup, statelessGroup.ID, store.Tx.GetSecurityGroup, listGroups)
		}},
		{"rule/full", fullRule, func(t *testing.T) { checkGetList(t, s, fullRule, fullRule.ID, store.Tx.GetRule, listRules) }},
		{"rule/any", anyRule, func(t *testing.T) { checkGetList(t, s, anyRule, anyRule.ID, store.Tx.GetRule, listRules) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			write(t, s, create(c.obj))
			c.check(t)
		})
	}
}

func testTimestamps(t *testing.T, s store.Store) {
	india := time.FixedZone("IST", 5*3600+30*60)
	n := network("ts", "p1")
	n.CreatedAt = time.Date(2026, 11, 21, 17, 30, 0, 999_999_999, india) // 12:00:00.999999999Z
	n.UpdatedAt = time.Date(2026, 11, 21, 12, 0, 1, 500, time.Local)
	write(t, s, create(n))

	wantCreated := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	check := func(what string, got, want time.Time) {
		t.Helper()
		if !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("%s = %v, want %v in UTC", what, got, want)
		}
	}
	check("normalised CreatedAt", n.CreatedAt, wantCreated)
	read(t, s, func(tx store.Tx) error {
		got, err := tx.GetNetwork(ctx, "ts")
		if err != nil {
			return err
		}
		check("stored CreatedAt", got.CreatedAt, wantCreated)
		check("stored UpdatedAt", got.UpdatedAt, n.UpdatedAt.In(time.UTC))
		if f := got.CreatedAt.Format(time.RFC3339); f != "2026-11-21T12:00:00Z" {
			t.Errorf("CreatedAt formats as %s, want 2026-11-21T12:00:00Z", f)
		}
		return nil
	})

	// Update normalises too; far dates survive.
	n.UpdatedAt = time.Date(2099, 12, 31, 23, 59, 59, 123, india)
	write(t, s, func(tx store.Tx) error { return tx.UpdateNetwork(ctx, n) })
	read(t, s, func(tx store.Tx) error {
		got, err := tx.GetNetwork(ctx, "ts")
		if err != nil {
			return err
		}
		check("updated UpdatedAt", got.UpdatedAt, time.Date(2099, 12, 31, 18, 29, 59, 0, time.UTC))
		check("caller's UpdatedAt", n.UpdatedAt, got.UpdatedAt)
		return nil
	})
}

func testUpdate(t *testing.T, s store.Store) {
	base(t, s)
	write(t, s, create(port("gw1", "ext", "", fixed("sext", "203.0.113.1")),
		port("gw2", "ext", "", fixed("sext", "203.0.113.2"))))

	t.Run("network", func(t *testing.T) {
		n := network("n", "p1")
		write(t, s, create(n))
		n.Name, n.AdminStateUp, n.Status, n.Shared, n.External, n.MTU = "renamed", false, "DOWN", true, true, 1400
		n.PortSecurityEnabled, n.Description, n.UpdatedAt, n.RevisionNumber = false, "new", at(100), 2
		write(t, s, func(tx store.Tx) error { return tx.UpdateNetwork(ctx, n) })
		checkGetList(t, s, n, n.ID, store.Tx.GetNetwork, listNetworks)
	})
	t.Run("subnet", func(t *testing.T) {
		sn := subnet("sn", "n1", "p1", "10.1.0.0/24")
		sn.GatewayIP = addr("10.1.0.1")
		sn.DNSNameservers = []string{"8.8.8.8"}
		write(t, s, create(sn))
		sn.Name, sn.GatewayIP, sn.EnableDHCP = "renamed", netip.Addr{}, false
		sn.AllocationPools = []model.AllocationPool{{Start: addr("10.1.0.10"), End: addr("10.1.0.20")}}
		sn.DNSNameservers = []string{"9.9.9.9", "8.8.8.8"}
		sn.HostRoutes = []model.HostRoute{{Destination: prefix("0.0.0.0/0"), Nexthop: addr("10.1.0.2")}}
		sn.UpdatedAt, sn.RevisionNumber = at(100), 2
		write(t, s, func(tx store.Tx) error { return tx.UpdateSubnet(ctx, sn) })
		checkGetList(t, s, sn, sn.ID, store.Tx.GetSubnet, listSubnets)
	})
	t.Run("port", func(t *testing.T) {
		p := port("p", "n1", "p1", fixed("s1", "10.0.0.5"), fixed("s6", "fd00::5"))
		p.SecurityGroups = []string{"sg1"}
		write(t, s, create(p))
		p.Name, p.Status, p.DeviceID, p.DeviceOwner = "renamed", model.StatusActive, "vm", "compute:nova"
		p.MACAddress = "fa:16:3e:ff:ff:ff"
		p.FixedIPs = []model.FixedIP{fixed("s6", "fd00::6"), fixed("s1", "10.0.0.5"), fixed("s1", "10.0.0.4")}
		p.SecurityGroups = []string{"sg2", "sg1"}
		p.AllowedAddressPairs = []model.AddressPair{{IPAddress: "10.9.9.9"}}
		p.BindingHostID, p.BindingProfile = "host", map[string]any{"k": "v"}
		p.UpdatedAt, p.RevisionNumber = at(100), 2
		write(t, s, func(tx store.Tx) error { return tx.UpdatePort(ctx, p) })
		checkGetList(t, s, p, p.ID, store.Tx.GetPort, listPorts)
		read(t, s, func(tx store.Tx) error {
			got, err := tx.AllocatedIPs(ctx, "s6")
			if err != nil {
				return err
			}
			if want := []netip.Addr{addr("fd00::6")}; !slices.Equal(got, want) {
				t.Errorf("AllocatedIPs(s6) = %v, want %v (old address freed)", got, want)
			}
			return nil
		})
		// Removing everything.
		p.FixedIPs, p.SecurityGroups = nil, nil
		write(t, s, func(tx store.Tx) error { return tx.UpdatePort(ctx, p) })
		checkGetList(t, s, p, p.ID, store.Tx.GetPort, listPorts)
	})
	t.Run("router", func(t *testing.T) {
		r := router("r", "p1", nil)
		write(t, s, create(r))
		steps := []*model.RouterGateway{
			{NetworkID: "ext", PortID: "gw1", EnableSNAT: true},
			{NetworkID: "ext", PortID: "gw2"},
			nil,
		}
		for i, gw := range steps {
			r.Gateway, r.Name, r.RevisionNumber = gw, fmt.Sprint("step ", i), i+2
			r.Routes = []model.Route{{Destination: prefix("10.8.0.0/16"), Nexthop: addr("10.0.0.8")}}
			write(t, s, func(tx store.Tx) error { return tx.UpdateRouter(ctx, r) })
			checkGetList(t, s, r, r.ID, store.Tx.GetRouter, listRouters)
		}
	})
	t.Run("security-group", func(t *testing.T) {
		g := group("g", "p1")
		write(t, s, create(g))
		g.Name, g.Stateful, g.Description, g.UpdatedAt, g.RevisionNumber = "renamed", false, "new", at(100), 2
		write(t, s, func(tx store.Tx) error { return tx.UpdateSecurityGroup(ctx, g) })
		checkGetList(t, s, g, g.ID, store.Tx.GetSecurityGroup, listGroups)
	})
}

func testNotFound(t *testing.T, s store.Store) {
	base(t, s)
	for _, c := range []struct {
		name string
		fn   func(tx store.Tx) error
	}{
		{"GetNetwork", func(tx store.Tx) error { _, err := tx.GetNetwork(ctx, "nope"); return err }},
		{"GetSubnet", func(tx store.Tx) error { _, err := tx.GetSubnet(ctx, "nope"); return err }},
		{"GetPort", func(tx store.Tx) error { _, err := tx.GetPort(ctx, "nope"); return err }},
		{"GetRouter", func(tx store.Tx) error { _, err := tx.GetRouter(ctx, "nope"); return err }},
		{"GetSecurityGroup", func(tx store.Tx) error { _, err := tx.GetSecurityGroup(ctx, "nope"); return err }},
		{"GetRule", func(tx store.Tx) error { _, err := tx.GetRule(ctx, "nope"); return err }},
		{"DefaultSecurityGroup", func(tx store.Tx) error { _, err := tx.DefaultSecurityGroup(ctx, "p1"); return err }},
		{"UpdateNetwork", func(tx store.Tx) error { return tx.UpdateNetwork(ctx, network("nope", "p1")) }},
		{"UpdateSubnet", func(tx store.Tx) error { return tx.UpdateSubnet(ctx, subnet("nope", "n1", "p1", "10.0.0.0/8")) }},
		{"UpdatePort", func(tx store.Tx) error { return tx.UpdatePort(ctx, port("nope", "n1", "p1")) }},
		{"UpdateRouter", func(tx store.Tx) error { return tx.UpdateRouter(ctx, router("nope", "p1", nil)) }},
		{"UpdateSecurityGroup", func(tx store.Tx) error { return tx.UpdateSecurityGroup(ctx, group("nope", "p1")) }},
		{"DeleteNetwork", func(tx store.Tx) error { return tx.DeleteNetwork(ctx, "nope") }},
		{"DeleteSubnet", func(tx store.Tx) error { return tx.DeleteSubnet(ctx, "nope") }},
		{"DeletePort", func(tx store.Tx) error { return tx.DeletePort(ctx, "nope") }},
		{"DeleteRouter", func(tx store.Tx) error { return tx.DeleteRouter(ctx, "nope") }},
		{"DeleteSecurityGroup", func(tx store.Tx) error { return tx.DeleteSecurityGroup(ctx, "nope") }},
		{"DeleteRule", func(tx store.Tx) error { return tx.DeleteRule(ctx, "nope") }},
	} {
		t.Run(c.name, func(t *testing.T) { writeErr(t, s, store.ErrNotFound, c.fn) })
	}
	// Empty results are not errors.
	read(t, s, func(tx store.Tx) error {
		ps, err := tx.ListPorts(ctx, store.PortFilter{NetworkID: "nope"})
		if err != nil || len(ps) != 0 {
			t.Errorf("ListPorts(nope) = %v, %v; want none", ps, err)
		}
		ips, err := tx.AllocatedIPs(ctx, "nope")
		if err != nil || len(ips) != 0 {
			t.Errorf("AllocatedIPs(nope) = %v, %v; want none", ips, err)
		}
		return nil
	})
}

// testListOrder checks lists are ordered by creation time, then insertion.
func testListOrder(t *testing.T, s store.Store) {
	base(t, s)
	var objs []any
	for i, id := range []string{"c", "z", "a", "m", "b"} {
		sec := map[int]int{0: 30, 1: 20, 2: 20, 3: 10, 4: 20}[i] // created: c late, m early, z a b tied
		n := network("net-"+id, "p9")
		sn := subnet("sub-"+id, "n1", "p9", fmt.Sprintf("10.%d.0.0/16", 100+i))
		p := port("port-"+id, "n1", "p9")
		r := router("router-"+id, "p9", nil)
		g := group("sg-"+id, "p9")
		ru := rule("rule-"+id, "sg1", "p9")
		for _, std := range []*model.Standard{&n.Standard, &sn.Standard, &p.Standard, &r.Standard, &g.Standard, &ru.Standard} {
			std.CreatedAt = at(sec)
		}
		objs = append(objs, n, sn, p, r, g, ru)
	}
	write(t, s, create(objs...))
	want := []string{"m", "z", "a", "b", "c"}
	prefixed := func(p string) []string {
		out := make([]string, len(want))
		for i, w := range want {
			out[i] = p + w
		}
		return out
	}
	read(t, s, func(tx store.Tx) error {
		for _, c := range []struct {
			name string
			list func() ([]string, error)
		}{
			{"net-", func() ([]string, error) {
				return ids(tx.ListNetworks(ctx, store.NetworkFilter{Scope: store.Scope{ProjectID: "p9"}}))
			}},
			{"sub-", func() ([]string, error) {
				return ids(tx.ListSubnets(ctx, store.SubnetFilter{Scope: store.Scope{ProjectID: "p9"}}))
			}},
			{"port-", func() ([]string, error) {
				return ids(tx.ListPorts(ctx, store.PortFilter{Scope: store.Scope{ProjectID: "p9"}}))
			}},
			{"router-", func() ([]string, error) {
				return ids(tx.ListRouters(ctx, store.RouterFilter{Scope: store.Scope{ProjectID: "p9"}}))
			}},
			{"sg-", func() ([]string, error) {
				return ids(tx.ListSecurityGroups(ctx, store.SecurityGroupFilter{Scope: store.Scope{ProjectID: "p9"}}))
			}},
			{"rule-", func() ([]string, error) {
				return ids(tx.ListRules(ctx, store.RuleFilter{Scope: store.Scope{ProjectID: "p9"}}))
			}},
		} {
			got, err := c.list()
			if err != nil {
				return err
			}
			if diff := cmp.Diff(prefixed(c.name), got); diff != "" {
				t.Errorf("%s order (-want +got):\n%s", c.name, diff)
			}
		}
		return nil
	})
}

func testFilters(t *testing.T, s store.Store) {
	ext := network("ext", "p2")
	ext.External = true
	shr := network("shr", "p2")
	shr.Shared = true
	both := network("both", "p3")
	both.Shared, both.External = true, true
	r1 := router("r1", "p1", &model.RouterGateway{NetworkID: "ext", EnableSNAT: true})
	r3 := router("r3", "p2", &model.RouterGateway{NetworkID: "ext"})
	pa := port("pa", "n1", "p1", fixed("s1", "10.0.0.10"))
	pa.DeviceID, pa.SecurityGroups = "d1", []string{"g1"}
	pb := port("pb", "n1", "p1", fixed("s1b", "10.1.0.10"), fixed("s1", "10.0.0.11"))
	pb.DeviceID = "d2"
	pc := port("pc", "n3", "p2", fixed("s3", "10.3.0.10"))
	pc.DeviceID, pc.RouterID = "d1", "d1"
	write(t, s, create(
		network("n1", "p1"), network("n2", "p1"), shr, ext, network("n3", "p2"), both,
		subnet("s1", "n1", "p1", "10.0.0.0/24"), subnet("s1b", "n1", "p1", "10.1.0.0/24"),
		subnet("s2", "n2", "p1", "10.2.0.0/24"), subnet("sshr", "shr", "p2", "10.4.0.0/24"),
		subnet("sext", "ext", "p2", "10.5.0.0/24"), subnet("s3", "n3", "p2", "10.3.0.0/24"),
		subnet("sp1shr", "shr", "p1", "10.6.0.0/24"), subnet("sboth", "both", "p3", "10.7.0.0/24"),
		group("g1", "p1"), group("g2", "p1"), group("g3", "p2"),
		pa, pb, pc, port("pd", "n2", "p1"),
		r1, router("r2", "p1", nil), r3,
		rule("ru1", "g1", "p1"), rule("ru2", "g1", "p1"), rule("ru3", "g3", "p2"), rule("ru4", "g2", "p1"),
	))
	p := func(id string) store.Scope { return store.Scope{ProjectID: id} }
	type tc struct {
		name string
		list func(tx store.Tx) ([]string, error)
		want []string
	}
	cases := []tc{
		{"networks/all", func(tx store.Tx) ([]string, error) { return ids(tx.ListNetworks(ctx, store.NetworkFilter{})) },
			[]string{"n1", "n2", "shr", "ext", "n3", "both"}},
		{"networks/project", func(tx store.Tx) ([]string, error) {
			return ids(tx.ListNetworks(ctx, store.NetworkFilter{Scope: p("p1")}))
		},
			[]string{"n1", "n2"}},
		{"networks/project+public", func(tx store.Tx) ([]string, error) {
			return ids(tx.ListNetworks(ctx, store.NetworkFilter{Scope: p("p1"), IncludePublic: true}))
		}, []string{"n1", "n2", "shr", "ext", "both"}},
		{"networks/public-without-project", func(tx store.Tx) ([]string, error) {
			return ids(tx.ListNetworks(ctx, store.NetworkFilter{IncludePublic: true}))
		}, []string{"n1", "n2", "shr", "ext", "n3", "both"}},
		{"networks/ids", func(tx store.Tx) ([]string, error) {
			return ids(tx.ListNetworks(ctx, store.NetworkFilter{IDs: []string{"n3", "n1", "missing"}}))
		}, []string{"n1", "n3"}},
		{"networks/empty-ids", func(tx store.Tx) ([]string, error) {
			return ids(tx.ListNetworks(ctx, store.NetworkFilter{IDs: []string{}}))
		},
			[]string{"n1", "n2", "shr", "ext", "n3", "both"}},
		{"networks/project+ids", func(tx store.Tx) ([]string, error) {
			return ids(tx.ListNetworks(ctx, store.NetworkFilter{Scope: p("p1"), IDs: []string{"n3", "n1"}}))
		}, []string{"n1"}},
		{"networks/project+public+ids", func(tx store.Tx) ([]string, error) {
			return ids(tx.ListNetworks(ctx, store.NetworkFilter{Scope: p("p1"), IncludePublic: true, IDs: []string{"n3", "ext", "n2"}}))
		}, []string{"n2", "ext"}},

		{"subnets/all", func(tx store.Tx) ([]string, error) { return ids(tx.ListSubnets(ctx, store.SubnetFilter{})) },
			[]string{"s1", "s1b", "s2", "sshr", "sext", "s3", "sp1shr", "sboth"}},
		{"subnets/project", func(tx store.Tx) ([]string, error) {
			return ids(tx.ListSubnets(ctx, store.SubnetFilter{Scope: p("p1")}))
		},
			[]string{"s1", "s1b", "s2", "sp1shr"}},
		{"subnets/project+public", func(tx store.Tx) ([]string, error) {
			return ids(tx.ListSubnets(ctx, store.SubnetFilter{Scope: p("p1"), IncludePublic: true}))
		}, []string{"s1", "s1b", "s2", "sshr", "sext", "sp1shr", "sboth"}},
		{"subnets/networks", func(tx store.Tx) ([]string, error) {
			return ids(tx.ListSubnets(ctx, store.SubnetFilter{NetworkIDs: []string{"shr", "n1"}}))
		}, []string{"s1", "s1b", "sshr", "sp1shr"}},
		{"subnets/project+networks", func(tx store.Tx) ([]string, error) {
			return ids(tx.ListSubnets(ctx, store.SubnetFilter{Scope: p("p2"), NetworkIDs: []string{"shr", "n1"}}))
		}, []string{"sshr"}},
		{"subnets/ids", func(tx store.Tx) ([]string, error) {
			return ids(tx.ListSubnets(ctx, store.SubnetFilter{IDs: []string{"s3", "s1"}}))
		}, []string{"s1", "s3"}},
		{"subnets/public+networks+ids", func(tx store.Tx) ([]string, error) {
			return ids(tx.ListSubnets(ctx, store.SubnetFilter{Scope: p("p1"), IncludePublic: true,
				NetworkIDs: []string{"n1", "ext", "n3"}, IDs: []string{"s1b", "sext", "s3", "s2"}}))
		}, []string{"s1b", "sext"}},

		{"ports/all", func(tx store.Tx) ([]string, error) { return ids(tx.ListPorts(ctx, store.PortFilter{})) },
			[]string{"pa", "pb", "pc", "pd"}},
		{"ports/project", func(tx store.Tx) ([]string, error) { return ids(tx.ListPorts(ctx, store.PortFilter{Scope: p("p2")})) },
			[]string{"pc"}},
		{"ports/network", func(tx store.Tx) ([]string, error) { return ids(tx.ListPorts(ctx, store.PortFilter{NetworkID: "n1"})) },
			[]string{"pa", "pb"}},
		{"ports/device", func(tx store.Tx) ([]string, error) { return ids(tx.ListPorts(ctx, store.PortFilter{DeviceID: "d1"})) },
			[]string{"pa", "pc"}},
		{"ports/router", func(tx store.Tx) ([]string, error) { return ids(tx.ListPorts(ctx, store.PortFilter{RouterID: "d1"})) },
			[]string{"pc"}},
		{"ports/subnet", func(tx store.Tx) ([]string, error) { return ids(tx.ListPorts(ctx, store.PortFilter{SubnetID: "s1"})) },
			[]string{"pa", "pb"}},
		{"ports/subnet-b", func(tx store.Tx) ([]string, error) { return ids(tx.ListPorts(ctx, store.PortFilter{SubnetID: "s1b"})) },
			[]string{"pb"}},
		{"ports/ids", func(tx store.Tx) ([]string, error) {
			return ids(tx.ListPorts(ctx, store.PortFilter{IDs: []string{"pd", "pa"}}))
		}, []string{"pa", "pd"}},
		{"ports/combined", func(tx store.Tx) ([]string, error) {
			return ids(tx.ListPorts(ctx, store.PortFilter{Scope: p("p1"), NetworkID: "n1", DeviceID: "d2", SubnetID: "s1",
				IDs: []string{"pa", "pb", "pc"}}))
		}, []string{"pb"}},
		{"ports/no-match", func(tx store.Tx) ([]string, error) {
			return ids(tx.ListPorts(ctx, store.PortFilter{DeviceID: "d1", SubnetID: "s1b"}))
		}, []string{}},

		{"routers/all", func(tx store.Tx) ([]string, error) { return ids(tx.ListRouters(ctx, store.RouterFilter{})) },
			[]string{"r1", "r2", "r3"}},
		{"routers/project", func(tx store.Tx) ([]string, error) {
			return ids(tx.ListRouters(ctx, store.RouterFilter{Scope: p("p1")}))
		},
			[]string{"r1", "r2"}},
		{"routers/gateway", func(tx store.Tx) ([]string, error) {
			return ids(tx.ListRouters(ctx, store.RouterFilter{GatewayNetworkID: "ext"}))
		}, []string{"r1", "r3"}},
		{"routers/ids", func(tx store.Tx) ([]string, error) {
			return ids(tx.ListRouters(ctx, store.RouterFilter{IDs: []string{"r3", "r2"}}))
		}, []string{"r2", "r3"}},
		{"routers/combined", func(tx store.Tx) ([]string, error) {
			return ids(tx.ListRouters(ctx, store.RouterFilter{Scope: p("p1"), GatewayNetworkID: "ext", IDs: []string{"r1", "r2", "r3"}}))
		}, []string{"r1"}},

		{"security-groups/all", func(tx store.Tx) ([]string, error) {
			return ids(tx.ListSecurityGroups(ctx, store.SecurityGroupFilter{}))
		}, []string{"g1", "g2", "g3"}},
		{"security-groups/project", func(tx store.Tx) ([]string, error) {
			return ids(tx.ListSecurityGroups(ctx, store.SecurityGroupFilter{Scope: p("p2")}))
		}, []string{"g3"}},
		{"security-groups/ids", func(tx store.Tx) ([]string, error) {
			return ids(tx.ListSecurityGroups(ctx, store.SecurityGroupFilter{Scope: p("p1"), IDs: []string{"g3", "g2"}}))
		}, []string{"g2"}},

		{"rules/all", func(tx store.Tx) ([]string, error) { return ids(tx.ListRules(ctx, store.RuleFilter{})) },
			[]string{"ru1", "ru2", "ru3", "ru4"}},
		{"rules/project", func(tx store.Tx) ([]string, error) { return ids(tx.ListRules(ctx, store.RuleFilter{Scope: p("p1")})) },
			[]string{"ru1", "ru2", "ru4"}},
		{"rules/groups", func(tx store.Tx) ([]string, error) {
			return ids(tx.ListRules(ctx, store.RuleFilter{SecurityGroupIDs: []string{"g3", "g2"}}))
		}, []string{"ru3", "ru4"}},
		{"rules/ids", func(tx store.Tx) ([]string, error) {
			return ids(tx.ListRules(ctx, store.RuleFilter{SecurityGroupIDs: []string{"g1"}, IDs: []string{"ru2", "ru3"}}))
		}, []string{"ru2"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			read(t, s, func(tx store.Tx) error {
				got, err := c.list(tx)
				if err != nil {
					return err
				}
				if diff := cmp.Diff(c.want, got); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
				return nil
			})
		})
	}
}

// testListPortsChildren checks that listing many ports fills each one's
// fixed IPs and security groups, in order, exactly as Get does.
func testListPortsChildren(t *testing.T, s store.Store) {
	base(t, s)
	var want []model.Port
	var objs []any
	for i := range 50 {
		p := port(fmt.Sprint("lp", i), "n1", "p1")
		for j := range i % 4 {
			p.FixedIPs = append(p.FixedIPs, fixed("s1", fmt.Sprintf("10.0.0.%d", 4*i+3-j))) // descending
		}
		if i%3 == 0 {
			p.FixedIPs = append(p.FixedIPs, fixed("s6", fmt.Sprintf("fd00::%x", i)))
		}
		p.SecurityGroups = [][]string{nil, {"sg1"}, {"sg2", "sg1"}}[i%3]
		objs = append(objs, p)
		want = append(want, *p)
	}
	write(t, s, create(objs...))
	read(t, s, func(tx store.Tx) error {
		got, err := tx.ListPorts(ctx, store.PortFilter{NetworkID: "n1"})
		if err != nil {
			return err
		}
		if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
			t.Errorf("ListPorts (-want +got):\n%s", diff)
		}
		return nil
	})
}

func testDuplicate(t *testing.T, s store.Store) {
	base(t, s)
	write(t, s, create(network("n2", "p1"), subnet("s2", "n2", "p1", "10.0.0.0/24")))
	p := port("p", "n1", "p1", fixed("s1", "10.0.0.5"))
	write(t, s, create(p))

	t.Run("id", func(t *testing.T) {
		writeErr(t, s, store.ErrDuplicate, create(network("n1", "p1")))
		writeErr(t, s, store.ErrDuplicate, create(subnet("s1", "n1", "p1", "10.9.0.0/24")))
		writeErr(t, s, store.ErrDuplicate, create(group("sg1", "p1")))
		writeErr(t, s, store.ErrDuplicate, create(router("r", "p1", nil), router("r", "p1", nil)))
		writeErr(t, s, store.ErrDuplicate, create(rule("ru", "sg1", "p1"), rule("ru", "sg1", "p1")))
		dup := port("p", "n1", "p1")
		dup.MACAddress = "fa:16:3e:12:34:56"
		writeErr(t, s, store.ErrDuplicate, create(dup))
	})
	t.Run("mac", func(t *testing.T) {
		q := port("q", "n1", "p1")
		q.MACAddress = p.MACAddress
		writeErr(t, s, store.ErrDuplicate, create(q))
		q.NetworkID = "n2" // another network may reuse it
		write(t, s, create(q))
		read(t, s, func(tx store.Tx) error {
			for _, c := range []struct {
				network, mac string
				want         bool
			}{{"n1", p.MACAddress, true}, {"n2", p.MACAddress, true}, {"ext", p.MACAddress, false}, {"n1", "fa:16:3e:00:00:00", false}} {
				got, err := tx.MACInUse(ctx, c.network, c.mac)
				if err != nil {
					return err
				}
				if got != c.want {
					t.Errorf("MACInUse(%s, %s) = %v, want %v", c.network, c.mac, got, c.want)
				}
			}
			return nil
		})
	})
	t.Run("address", func(t *testing.T) {
		writeErr(t, s, store.ErrDuplicate, create(port("r", "n1", "p1", fixed("s6", "fd00::1"), fixed("s1", "10.0.0.5"))))
		// The same address on another subnet is fine.
		write(t, s, create(port("r", "n2", "p1", fixed("s2", "10.0.0.5"))))
		// Twice on one port.
		writeErr(t, s, store.ErrDuplicate, create(port("t", "n1", "p1", fixed("s1", "10.0.0.7"), fixed("s1", "10.0.0.7"))))
		// Taking it by update.
		u := port("u", "n1", "p1", fixed("s1", "10.0.0.6"))
		write(t, s, create(u))
		u.FixedIPs = []model.FixedIP{fixed("s1", "10.0.0.8"), fixed("s1", "10.0.0.5")}
		u.Name = "changed"
		writeErr(t, s, store.ErrDuplicate, func(tx store.Tx) error { return tx.UpdatePort(ctx, u) })
		read(t, s, func(tx store.Tx) error {
			got, err := tx.GetPort(ctx, "u")
			if err != nil {
				return err
			}
			if got.Name != "port u" || !slices.Equal(got.FixedIPs, []model.FixedIP{fixed("s1", "10.0.0.6")}) {
				t.Errorf("failed update changed the port: %+v", got)
			}
			ips, err := tx.AllocatedIPs(ctx, "s1")
			if err != nil {
				return err
			}
			if want := []netip.Addr{addr("10.0.0.5"), addr("10.0.0.6")}; !slices.Equal(ips, want) {
				t.Errorf("AllocatedIPs(s1) = %v, want %v", ips, want)
			}
			return nil
		})
	})
	t.Run("security-group-twice", func(t *testing.T) {
		v := port("v", "n1", "p1")
		v.SecurityGroups = []string{"sg1", "sg1"}
		writeErr(t, s, store.ErrDuplicate, create(v))
	})
}

func testReferenced(t *testing.T, s store.Store) {
	base(t, s)
	p := port("p", "n1", "p1", fixed("s1", "10.0.0.5"))
	p.SecurityGroups = []string{"sg1"}
	gw := port("gw", "ext", "", fixed("sext", "203.0.113.5"))
	write(t, s, create(p, gw, router("r", "p1", &model.RouterGateway{NetworkID: "ext", PortID: "gw"})))

	for _, c := range []struct {
		name string
		fn   func(tx store.Tx) error
	}{
		{"subnet-with-addresses", func(tx store.Tx) error { return tx.DeleteSubnet(ctx, "s1") }},
		{"network-with-ports", func(tx store.Tx) error { return tx.DeleteNetwork(ctx, "n1") }},
		{"group-used-by-port", func(tx store.Tx) error { return tx.DeleteSecurityGroup(ctx, "sg1") }},
		{"gateway-network", func(tx store.Tx) error {
			if err := tx.DeletePort(ctx, "gw"); err != nil {
				return err
			}
			return tx.DeleteNetwork(ctx, "ext")
		}},
		// Checked at commit.
		{"gateway-port", func(tx store.Tx) error { return tx.DeletePort(ctx, "gw") }},
		{"port-on-missing-network", create(port("x", "nope", "p1"))},
		{"address-on-missing-subnet", create(port("x", "n1", "p1", fixed("nope", "10.0.0.1")))},
		{"port-with-missing-group", func(tx store.Tx) error {
			x := port("x", "n1", "p1")
			x.SecurityGroups = []string{"nope"}
			return tx.CreatePort(ctx, x)
		}},
		{"subnet-on-missing-network", create(subnet("x", "nope", "p1", "10.0.0.0/8"))},
		{"rule-of-missing-group", create(rule("x", "nope", "p1"))},
		{"default-missing-group", func(tx store.Tx) error { return tx.SetDefaultSecurityGroup(ctx, "p1", "nope") }},
	} {
		t.Run(c.name, func(t *testing.T) { writeErr(t, s, store.ErrReferenced, c.fn) })
	}

	// Nothing was deleted.
	read(t, s, func(tx store.Tx) error {
		for _, get := range []func() error{
			func() error { _, err := tx.GetSubnet(ctx, "s1"); return err },
			func() error { _, err := tx.GetNetwork(ctx, "n1"); return err },
			func() error { _, err := tx.GetSecurityGroup(ctx, "sg1"); return err },
			func() error { _, err := tx.GetPort(ctx, "gw"); return err },
			func() error { _, err := tx.GetNetwork(ctx, "ext"); return err },
		} {
			if err := get(); err != nil {
				t.Error(err)
			}
		}
		return nil
	})

	// Clearing the gateway and deleting its port works in either order.
	write(t, s, func(tx store.Tx) error {
		if err := tx.DeletePort(ctx, "gw"); err != nil {
			return err
		}
		r, err := tx.GetRouter(ctx, "r")
		if err != nil {
			return err
		}
		r.Gateway = nil
		return tx.UpdateRouter(ctx, r)
	})
}

func testCascade(t *testing.T, s store.Store) {
	base(t, s)
	t.Run("network-deletes-subnets", func(t *testing.T) {
		write(t, s, create(network("n", "p1"), subnet("a", "n", "p1", "10.0.0.0/24"), subnet("b", "n", "p1", "10.1.0.0/24")))
		write(t, s, func(tx store.Tx) error { return tx.DeleteNetwork(ctx, "n") })
		read(t, s, func(tx store.Tx) error {
			got, err := ids(tx.ListSubnets(ctx, store.SubnetFilter{NetworkIDs: []string{"n"}}))
			if err != nil || len(got) != 0 {
				t.Errorf("subnets left: %v, %v", got, err)
			}
			if _, err := tx.GetSubnet(ctx, "a"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("GetSubnet(a) = %v, want ErrNotFound", err)
			}
			return nil
		})
	})
	t.Run("port-frees-addresses-and-groups", func(t *testing.T) {
		p := port("p", "n1", "p1", fixed("s1", "10.0.0.5"), fixed("s6", "fd00::5"))
		p.SecurityGroups = []string{"sg2", "sg1"}
		q := port("q", "n1", "p1", fixed("s1", "10.0.0.6"))
		q.SecurityGroups = []string{"sg1"}
		write(t, s, create(p, q))
		read(t, s, func(tx store.Tx) error {
			for _, c := range []struct {
				group string
				want  []string
			}{{"sg1", []string{"p", "q"}}, {"sg2", []string{"p"}}} {
				got, err := tx.SecurityGroupPorts(ctx, c.group)
				if err != nil {
					return err
				}
				if !slices.Equal(got, c.want) {
					t.Errorf("SecurityGroupPorts(%s) = %v, want %v", c.group, got, c.want)
				}
			}
			got, err := tx.AllocatedIPs(ctx, "s1")
			if err != nil {
				return err
			}
			if want := []netip.Addr{addr("10.0.0.5"), addr("10.0.0.6")}; !slices.Equal(got, want) {
				t.Errorf("AllocatedIPs(s1) = %v, want %v", got, want)
			}
			return nil
		})
		write(t, s, func(tx store.Tx) error { return tx.DeletePort(ctx, "p") })
		read(t, s, func(tx store.Tx) error {
			got, err := tx.AllocatedIPs(ctx, "s1")
			if err != nil {
				return err
			}
			if want := []netip.Addr{addr("10.0.0.6")}; !slices.Equal(got, want) {
				t.Errorf("AllocatedIPs(s1) = %v, want %v", got, want)
			}
			if got, err := tx.AllocatedIPs(ctx, "s6"); err != nil || len(got) != 0 {
				t.Errorf("AllocatedIPs(s6) = %v, %v; want none", got, err)
			}
			if got, err := tx.SecurityGroupPorts(ctx, "sg2"); err != nil || len(got) != 0 {
				t.Errorf("SecurityGroupPorts(sg2) = %v, %v; want none", got, err)
			}
			return nil
		})
		// Now unused: the group and the v6 subnet can go, the address be reused.
		write(t, s, func(tx store.Tx) error {
			if err := tx.DeleteSecurityGroup(ctx, "sg2"); err != nil {
				return err
			}
			if err := tx.DeleteSubnet(ctx, "s6"); err != nil {
				return err
			}
			return tx.CreatePort(ctx, port("p2", "n1", "p1", fixed("s1", "10.0.0.5")))
		})
	})
	t.Run("group-deletes-rules", func(t *testing.T) {
		remote := rule("remote", "other", "p1")
		remote.RemoteGroupID = "g"
		self := rule("self", "g", "p1")
		self.RemoteGroupID = "g"
		write(t, s, create(group("g", "p1"), group("other", "p1"), rule("r1", "g", "p1"), self, remote,
			rule("keep", "other", "p1")))
		write(t, s, func(tx store.Tx) error { return tx.SetDefaultSecurityGroup(ctx, "p7", "g") })
		write(t, s, func(tx store.Tx) error { return tx.DeleteSecurityGroup(ctx, "g") })
		read(t, s, func(tx store.Tx) error {
			got, err := ids(tx.ListRules(ctx, store.RuleFilter{SecurityGroupIDs: []string{"g", "other"}}))
			if err != nil {
				return err
			}
			if want := []string{"keep"}; !slices.Equal(got, want) {
				t.Errorf("rules left = %v, want %v (own rules and rules naming it as remote go)", got, want)
			}
			if _, err := tx.DefaultSecurityGroup(ctx, "p7"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("DefaultSecurityGroup after delete = %v, want ErrNotFound", err)
			}
			return nil
		})
	})
	t.Run("rule-delete", func(t *testing.T) {
		write(t, s, create(rule("gone", "sg1", "p1")))
		write(t, s, func(tx store.Tx) error { return tx.DeleteRule(ctx, "gone") })
		writeErr(t, s, store.ErrNotFound, func(tx store.Tx) error { _, err := tx.GetRule(ctx, "gone"); return err })
	})
	t.Run("router-delete", func(t *testing.T) {
		write(t, s, create(router("gone", "p1", &model.RouterGateway{NetworkID: "ext"})))
		write(t, s, func(tx store.Tx) error { return tx.DeleteRouter(ctx, "gone") })
		write(t, s, func(tx store.Tx) error { return tx.DeleteNetwork(ctx, "ext") })
	})
}

func testRollback(t *testing.T, s store.Store) {
	base(t, s)
	errBoom := errors.New("boom")
	absent := func(t *testing.T) {
		t.Helper()
		read(t, s, func(tx store.Tx) error {
			if _, err := tx.GetNetwork(ctx, "rb"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("GetNetwork(rb) = %v, want ErrNotFound", err)
			}
			if _, err := tx.GetPort(ctx, "rbp"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("GetPort(rbp) = %v, want ErrNotFound", err)
			}
			if ips, err := tx.AllocatedIPs(ctx, "s1"); err != nil || len(ips) != 0 {
				t.Errorf("AllocatedIPs(s1) = %v, %v; want none", ips, err)
			}
			return nil
		})
	}
	makeAll := create(network("rb", "p1"), port("rbp", "n1", "p1", fixed("s1", "10.0.0.9")))

	t.Run("error", func(t *testing.T) {
		err := s.Write(ctx, func(tx store.Tx) error {
			if err := makeAll(tx); err != nil {
				return err
			}
			return fmt.Errorf("wrapped: %w", errBoom)
		})
		if !errors.Is(err, errBoom) {
			t.Fatalf("Write = %v, want the closure's error", err)
		}
		absent(t)
	})
	t.Run("panic", func(t *testing.T) {
		func() {
			defer func() {
				if r := recover(); r != "boom" {
					t.Errorf("recovered %v, want boom", r)
				}
			}()
			_ = s.Write(ctx, func(tx store.Tx) error {
				if err := makeAll(tx); err != nil {
					return err
				}
				panic("boom")
			})
		}()
		absent(t)
		func() {
			defer func() { _ = recover() }()
			_ = s.Read(ctx, func(store.Tx) error { panic("boom") })
		}()
	})
	t.Run("cancelled", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		err := s.Write(cctx, func(tx store.Tx) error {
			if err := makeAll(tx); err != nil {
				return err
			}
			cancel()
			return nil
		})
		if err == nil {
			t.Log("cancel after the closure did not prevent the commit")
			write(t, s, func(tx store.Tx) error {
				if err := tx.DeletePort(ctx, "rbp"); err != nil {
					return err
				}
				return tx.DeleteNetwork(ctx, "rb")
			})
		}
		absent(t)
	})
	t.Run("failed-operation-leaves-nothing", func(t *testing.T) {
		// A failing call undoes its own writes and the transaction goes on.
		write(t, s, create(port("taken", "n1", "p1", fixed("s6", "fd00::1"))))
		write(t, s, func(tx store.Tx) error {
			err := tx.CreatePort(ctx, port("half", "n1", "p1", fixed("s1", "10.0.0.20"), fixed("s6", "fd00::1")))
			if !errors.Is(err, store.ErrDuplicate) {
				t.Errorf("CreatePort = %v, want ErrDuplicate", err)
			}
			if _, err := tx.GetPort(ctx, "half"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("GetPort(half) in the same transaction = %v, want ErrNotFound", err)
			}
			if err := tx.DeleteSubnet(ctx, "s6"); !errors.Is(err, store.ErrReferenced) {
				t.Errorf("DeleteSubnet(s6) = %v, want ErrReferenced", err)
			}
			return tx.CreatePort(ctx, port("whole", "n1", "p1", fixed("s1", "10.0.0.20")))
		})
		read(t, s, func(tx store.Tx) error {
			got, err := ids(tx.ListPorts(ctx, store.PortFilter{SubnetID: "s1"}))
			if err != nil {
				return err
			}
			if want := []string{"whole"}; !slices.Equal(got, want) {
				t.Errorf("ports on s1 = %v, want %v", got, want)
			}
			return nil
		})
	})
}

func testQuotas(t *testing.T, s store.Store) {
	check := func(project string, want map[string]int, wantProjects []string) {
		t.Helper()
		read(t, s, func(tx store.Tx) error {
			got, err := tx.Quotas(ctx, project)
			if err != nil {
				return err
			}
			if diff := cmp.Diff(want, got); diff != "" || got == nil {
				t.Errorf("Quotas(%s) (-want +got):\n%s", project, diff)
			}
			ps, err := tx.QuotaProjects(ctx)
			if err != nil {
				return err
			}
			if diff := cmp.Diff(wantProjects, ps); diff != "" {
				t.Errorf("QuotaProjects (-want +got):\n%s", diff)
			}
			return nil
		})
	}
	check("p1", map[string]int{}, []string{})
	write(t, s, func(tx store.Tx) error {
		for _, q := range []struct {
			project, resource string
			limit             int
		}{{"p2", "router", 3}, {"p1", "network", 10}, {"p1", "port", -1}, {"p1", "network", 20}, {"p1", "subnet", 0}} {
			if err := tx.SetQuota(ctx, q.project, q.resource, q.limit); err != nil {
				return err
			}
		}
		return nil
	})
	check("p1", map[string]int{"network": 20, "port": -1, "subnet": 0}, []string{"p1", "p2"})
	check("p2", map[string]int{"router": 3}, []string{"p1", "p2"})
	write(t, s, func(tx store.Tx) error { return tx.DeleteQuotas(ctx, "p1") })
	check("p1", map[string]int{}, []string{"p2"})
	write(t, s, func(tx store.Tx) error { return tx.DeleteQuotas(ctx, "never-set") })
}

func testCount(t *testing.T, s store.Store) {
	base(t, s) // p1: 1 network, 2 subnets, 2 groups; p2: 1 network, 1 subnet
	write(t, s, create(network("n2", "p1"), port("a", "n1", "p1"), port("b", "n1", "p1"), port("c", "n1", "p2"),
		router("r", "p1", nil), rule("ru1", "sg1", "p1"), rule("ru2", "sg1", "p1"), rule("ru3", "sg2", "p1"),
		group("sg3", "p2")))
	read(t, s, func(tx store.Tx) error {
		for _, c := range []struct {
			resource, project string
			want              int
		}{
			{"network", "p1", 2}, {"network", "p2", 1}, {"network", "p3", 0},
			{"subnet", "p1", 2}, {"subnet", "p2", 1},
			{"port", "p1", 2}, {"port", "p2", 1},
			{"router", "p1", 1}, {"router", "p2", 0},
			{"security_group", "p1", 2}, {"security_group", "p2", 1},
			{"security_group_rule", "p1", 3}, {"security_group_rule", "p2", 0},
		} {
			got, err := tx.Count(ctx, c.resource, c.project)
			if err != nil {
				return err
			}
			if got != c.want {
				t.Errorf("Count(%s, %s) = %d, want %d", c.resource, c.project, got, c.want)
			}
		}
		if _, err := tx.Count(ctx, "trunk", "p1"); err == nil {
			t.Error("Count(trunk) succeeded, want an error")
		}
		if n, err := tx.Count(ctx, "floatingip", "p1"); err != nil || n != 0 {
			t.Errorf("Count(floatingip) = %d, %v; want 0", n, err)
		}
		return nil
	})
}

func testDefaultSecurityGroup(t *testing.T, s store.Store) {
	base(t, s)
	write(t, s, create(group("sg3", "p2")))
	write(t, s, func(tx store.Tx) error {
		if err := tx.SetDefaultSecurityGroup(ctx, "p1", "sg1"); err != nil {
			return err
		}
		return tx.SetDefaultSecurityGroup(ctx, "p2", "sg3")
	})
	writeErr(t, s, store.ErrDuplicate, func(tx store.Tx) error { return tx.SetDefaultSecurityGroup(ctx, "p1", "sg2") })
	read(t, s, func(tx store.Tx) error {
		for project, want := range map[string]string{"p1": "sg1", "p2": "sg3"} {
			got, err := tx.DefaultSecurityGroup(ctx, project)
			if err != nil {
				return err
			}
			if got != want {
				t.Errorf("DefaultSecurityGroup(%s) = %s, want %s", project, got, want)
			}
		}
		if _, err := tx.DefaultSecurityGroup(ctx, "p3"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("DefaultSecurityGroup(p3) = %v, want ErrNotFound", err)
		}
		return nil
	})
}

// testConcurrency has writers race for the lowest free address of a /28
// under Tx.Lock: none may see ErrDuplicate and all addresses must differ.
func testConcurrency(t *testing.T, s store.Store) {
	base(t, s)
	cidr := prefix("10.20.0.0/28")
	write(t, s, create(subnet("s28", "n1", "p1", cidr.String())))
	const workers = 16
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.Write(ctx, func(tx store.Tx) error {
				if err := tx.Lock(ctx, "subnet:s28"); err != nil {
					return err
				}
				used, err := tx.AllocatedIPs(ctx, "s28")
				if err != nil {
					return err
				}
				a := cidr.Addr()
				for slices.Contains(used, a) {
					a = a.Next()
				}
				if !cidr.Contains(a) {
					return fmt.Errorf("subnet full: %v", used)
				}
				time.Sleep(2 * time.Millisecond) // widen the race window
				return tx.CreatePort(ctx, port(fmt.Sprint("worker", i), "n1", "p1", fixed("s28", a.String())))
			})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("worker: %v", err)
		}
	}
	read(t, s, func(tx store.Tx) error {
		got, err := tx.AllocatedIPs(ctx, "s28")
		if err != nil {
			return err
		}
		var want []netip.Addr
		for a := cidr.Addr(); cidr.Contains(a); a = a.Next() {
			want = append(want, a)
		}
		if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
			t.Errorf("AllocatedIPs (-want +got):\n%s", diff)
		}
		ps, err := tx.ListPorts(ctx, store.PortFilter{SubnetID: "s28"})
		if err != nil {
			return err
		}
		if len(ps) != workers {
			t.Errorf("%d ports on s28, want %d", len(ps), workers)
		}
		return nil
	})
}

package service

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"testing"

	"github.com/neutrino-net/neutrino/internal/identity"
	"github.com/neutrino-net/neutrino/internal/model"
	"github.com/neutrino-net/neutrino/internal/store"
)

// The rules below need no database: each test fakes only the store
// aggregate the rule reads. A fake embeds the aggregate's interface as
// nil, so a call the rule should not make panics and fails the test.

var bg = context.Background()

// wantFault checks err is a refusal of kind and type ("" for nil).
func wantFault(t *testing.T, what string, err error, kind Kind, typ string) {
	t.Helper()
	if typ == "" {
		if err != nil {
			t.Fatalf("%s: got %v, want success", what, err)
		}
		return
	}
	var e *Error
	if !errors.As(err, &e) || e.Kind != kind || e.Type != typ {
		t.Fatalf("%s: got %v, want %v %s", what, err, kind, typ)
	}
}

// ipamFake is a network's subnets and the addresses other ports hold.
type ipamFake struct {
	store.Networks
	store.Ports
	subnets []model.Subnet
	taken   map[string][]netip.Addr
	locks   []string
}

func (f *ipamFake) Lock(_ context.Context, key string) error {
	f.locks = append(f.locks, key)
	return nil
}
func (f *ipamFake) LockShared(context.Context, string) error { return nil }
func (f *ipamFake) ListSubnets(context.Context, store.SubnetFilter) ([]model.Subnet, error) {
	return f.subnets, nil
}
func (f *ipamFake) GetSubnet(_ context.Context, id string) (*model.Subnet, error) {
	return nil, store.ErrNotFound
}
func (f *ipamFake) AllocatedIPs(_ context.Context, subnetID string) ([]netip.Addr, error) {
	return f.taken[subnetID], nil
}

func subnetOf(id, cidr, gw string, pools ...[2]string) model.Subnet {
	p := netip.MustParsePrefix(cidr)
	sn := model.Subnet{ID: id, NetworkID: "n", CIDR: p, IPVersion: 4}
	if p.Addr().Is6() {
		sn.IPVersion = 6
	}
	if gw != "" {
		sn.GatewayIP = netip.MustParseAddr(gw)
	}
	for _, r := range pools {
		sn.AllocationPools = append(sn.AllocationPools, model.AllocationPool{Start: netip.MustParseAddr(r[0]), End: netip.MustParseAddr(r[1])})
	}
	return sn
}

func TestAllocate(t *testing.T) {
	s := &Service{}
	n := &model.Network{ID: "n"}
	v4 := subnetOf("s4", "10.0.0.0/29", "10.0.0.1", [2]string{"10.0.0.2", "10.0.0.6"})
	v6 := subnetOf("s6", "2001:db8::/64", "2001:db8::1", [2]string{"2001:db8::2", "2001:db8::ffff"})
	slaac := subnetOf("sl", "2001:db8:1::/64", "2001:db8:1::1")
	slaac.IPv6AddressMode = "slaac"
	vm := &model.Port{ID: "p", MACAddress: "fa:16:3e:00:00:01"}
	ip := netip.MustParseAddr
	fixed := func(sub, addr string) model.FixedIP {
		f := model.FixedIP{SubnetID: sub}
		if addr != "" {
			f.IPAddress = ip(addr)
		}
		return f
	}
	for _, tc := range []struct {
		name    string
		subnets []model.Subnet
		taken   map[string][]netip.Addr
		port    *model.Port
		want    []model.FixedIP // nil: the default
		keep    []model.FixedIP
		got     []model.FixedIP
		kind    Kind
		typ     string
	}{
		{name: "default: one v4, one v6, every SLAAC", subnets: []model.Subnet{v4, v6, slaac},
			taken: map[string][]netip.Addr{"s4": {ip("10.0.0.2")}}, port: vm,
			got: []model.FixedIP{fixed("s4", "10.0.0.3"), fixed("s6", "2001:db8::2"), fixed("sl", "2001:db8:1::f816:3eff:fe00:1")}},
		{name: "requested address", subnets: []model.Subnet{v4}, port: vm, want: []model.FixedIP{fixed("", "10.0.0.5")},
			got: []model.FixedIP{fixed("s4", "10.0.0.5")}},
		{name: "taken address", subnets: []model.Subnet{v4}, taken: map[string][]netip.Addr{"s4": {ip("10.0.0.5")}}, port: vm,
			want: []model.FixedIP{fixed("", "10.0.0.5")}, kind: Conflict, typ: "IpAddressAlreadyAllocated"},
		{name: "the gateway for a VM", subnets: []model.Subnet{v4}, port: vm, want: []model.FixedIP{fixed("s4", "10.0.0.1")},
			got: []model.FixedIP{fixed("s4", "10.0.0.1")}},
		{name: "the gateway a router interface holds", subnets: []model.Subnet{v4}, taken: map[string][]netip.Addr{"s4": {ip("10.0.0.1")}},
			port: vm, want: []model.FixedIP{fixed("s4", "10.0.0.1")}, kind: Conflict, typ: "IpAddressAlreadyAllocated"},
		{name: "the gateway for a router interface", subnets: []model.Subnet{v4},
			port: &model.Port{ID: "ri", DeviceOwner: model.OwnerRouterInterface}, want: []model.FixedIP{fixed("s4", "10.0.0.1")},
			got: []model.FixedIP{fixed("s4", "10.0.0.1")}},
		{name: "network address", subnets: []model.Subnet{v4}, port: vm, want: []model.FixedIP{fixed("", "10.0.0.0")},
			kind: Invalid, typ: "InvalidIpForSubnet"},
		{name: "broadcast address", subnets: []model.Subnet{v4}, port: vm, want: []model.FixedIP{fixed("s4", "10.0.0.7")},
			kind: Invalid, typ: "InvalidIpForSubnet"},
		{name: "no subnet holds it", subnets: []model.Subnet{v4}, port: vm, want: []model.FixedIP{fixed("", "192.0.2.9")},
			kind: Invalid, typ: "InvalidIpForNetwork"},
		{name: "pool exhausted", subnets: []model.Subnet{v4},
			taken: map[string][]netip.Addr{"s4": {ip("10.0.0.2"), ip("10.0.0.3"), ip("10.0.0.4"), ip("10.0.0.5"), ip("10.0.0.6")}},
			port:  vm, kind: Conflict, typ: "IpAddressGenerationFailure"},
		{name: "a fixed address on a SLAAC subnet", subnets: []model.Subnet{slaac}, port: vm,
			want: []model.FixedIP{fixed("sl", "2001:db8:1::9")}, kind: Invalid, typ: "InvalidInput"},
		{name: "a port keeps its own address", subnets: []model.Subnet{v4}, taken: map[string][]netip.Addr{"s4": {ip("10.0.0.4")}},
			port: vm, want: []model.FixedIP{fixed("s4", "")}, keep: []model.FixedIP{fixed("s4", "10.0.0.4")},
			got: []model.FixedIP{fixed("s4", "10.0.0.4")}},
		{name: "the same address twice", subnets: []model.Subnet{v4}, port: vm,
			want: []model.FixedIP{fixed("s4", "10.0.0.5"), fixed("s4", "10.0.0.5")}, kind: Conflict, typ: "IpAddressAlreadyAllocated"},
		{name: "unknown subnet", subnets: []model.Subnet{v4}, port: vm, want: []model.FixedIP{fixed("gone", "")},
			kind: NotFound, typ: "SubnetNotFound"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &ipamFake{subnets: tc.subnets, taken: tc.taken}
			got, err := s.allocate(bg, f, n, tc.port, slices.Clone(tc.want), tc.keep)
			wantFault(t, tc.name, err, tc.kind, tc.typ)
			if tc.typ == "" && !slices.Equal(got, tc.got) {
				t.Fatalf("got %v, want %v", got, tc.got)
			}
			// Subnet locks are taken in id order, so allocations never deadlock.
			if !slices.IsSorted(f.locks) {
				t.Fatalf("locks %v out of order", f.locks)
			}
		})
	}
}

// routersFake answers GetRouter from a map.
type routersFake struct {
	store.Routers
	byID map[string]model.Router
}

func (f routersFake) GetRouter(_ context.Context, id string) (*model.Router, error) {
	return lookup(f.byID, id)
}

// lookup is what a fake's Get answers from a map.
func lookup[T any](m map[string]T, id string) (*T, error) {
	v, ok := m[id]
	if !ok {
		return nil, store.ErrNotFound
	}
	return &v, nil
}

func TestCheckDevice(t *testing.T) {
	rs := routersFake{byID: map[string]model.Router{"ra": {ID: "ra", ProjectID: "A"}, "rb": {ID: "rb", ProjectID: "B"}}}
	member := caller{Identity: identity.Identity{ProjectID: "B", Roles: []string{"member"}}}
	admin := caller{Identity: identity.Identity{ProjectID: "X", Roles: []string{"admin"}}, admin: true}
	netB := &model.Network{ID: "nb", ProjectID: "B"}
	netA := &model.Network{ID: "na", ProjectID: "A", Shared: true}
	for _, tc := range []struct {
		name          string
		c             caller
		n             *model.Network
		owner, device string
		kind          Kind
		typ           string
	}{
		{"another project's router as interface", member, netB, model.OwnerRouterInterface, "ra", Forbidden, "DeviceIDNotOwnedByTenant"},
		{"another project's router, any owner", member, netB, "compute:nova", "ra", Forbidden, "DeviceIDNotOwnedByTenant"},
		{"own router", member, netB, model.OwnerRouterInterface, "rb", 0, ""},
		{"a device that is no router", member, netB, "compute:nova", "vm-1", 0, ""},
		{"network owner on someone else's network", member, netA, model.OwnerDHCP, "", Forbidden, "PolicyNotAuthorized"},
		{"network owner on one's own network", member, netB, model.OwnerDHCP, "", 0, ""},
		{"admin may", admin, netB, model.OwnerRouterInterface, "ra", 0, ""},
	} {
		p := &model.Port{ProjectID: "B", DeviceOwner: tc.owner, DeviceID: tc.device}
		wantFault(t, tc.name, checkDevice(bg, rs, tc.c, "create_port", p, tc.n), tc.kind, tc.typ)
	}
}

// groupsFake answers GetSecurityGroup from a map.
type groupsFake struct {
	store.SecurityGroups
	byID map[string]model.SecurityGroup
}

func (f groupsFake) GetSecurityGroup(_ context.Context, id string) (*model.SecurityGroup, error) {
	return lookup(f.byID, id)
}

func TestCheckPortSecurity(t *testing.T) {
	s := &Service{}
	gs := groupsFake{byID: map[string]model.SecurityGroup{"ga": {ID: "ga", ProjectID: "A"}, "gb": {ID: "gb", ProjectID: "B"}}}
	member := caller{Identity: identity.Identity{ProjectID: "B", Roles: []string{"member"}}}
	pair := func(ip, mac string) model.AddressPair { return model.AddressPair{IPAddress: ip, MACAddress: mac} }
	for _, tc := range []struct {
		name string
		p    model.Port
		kind Kind
		typ  string
	}{
		{"own group", model.Port{ProjectID: "B", PortSecurityEnabled: true, SecurityGroups: []string{"gb"}}, 0, ""},
		{"another project's group", model.Port{ProjectID: "B", PortSecurityEnabled: true, SecurityGroups: []string{"ga"}}, NotFound, "SecurityGroupNotFound"},
		{"groups without port security", model.Port{ProjectID: "B", SecurityGroups: []string{"gb"}}, Invalid, "PortSecurityAndIPRequiredForSecurityGroups"},
		{"pairs without port security", model.Port{ProjectID: "B", AllowedAddressPairs: []model.AddressPair{pair("10.0.0.9", "")}}, Conflict, "AddressPairAndPortSecurityRequired"},
		{"duplicate pair once the MAC defaults", model.Port{ProjectID: "B", PortSecurityEnabled: true, MACAddress: "fa:16:3e:00:00:01",
			AllowedAddressPairs: []model.AddressPair{pair("10.0.0.9", ""), pair("10.0.0.9", "fa:16:3e:00:00:01")}}, Invalid, "DuplicateAddressPairInRequest"},
	} {
		p := tc.p
		wantFault(t, tc.name, s.checkPortSecurity(bg, gs, member, &p), tc.kind, tc.typ)
	}
}

// quotasAgg names the aggregate so the fake can embed it next to its own
// Quotas method.
type quotasAgg = store.Quotas

// quotaFake holds explicit limits and counts.
type quotaFake struct {
	quotasAgg
	limits map[string]int
	counts map[string]int
}

func (f quotaFake) Lock(context.Context, string) error       { return nil }
func (f quotaFake) LockShared(context.Context, string) error { return nil }
func (f quotaFake) Quotas(context.Context, string) (map[string]int, error) {
	return f.limits, nil
}
func (f quotaFake) Count(_ context.Context, resource, _ string) (int, error) {
	return f.counts[resource], nil
}

func TestCheckQuota(t *testing.T) {
	s := &Service{opts: Options{Quotas: map[string]int{"network": 2, "port": -1}}}
	f := quotaFake{limits: map[string]int{"router": 1}, counts: map[string]int{"network": 2, "router": 0, "port": 1000}}
	wantFault(t, "at the default limit", s.checkQuota(bg, f, "network", "p", 1), Conflict, "OverQuota")
	wantFault(t, "under an explicit limit", s.checkQuota(bg, f, "router", "p", 1), 0, "")
	wantFault(t, "past an explicit limit", s.checkQuota(bg, f, "router", "p", 2), Conflict, "OverQuota")
	wantFault(t, "unlimited", s.checkQuota(bg, f, "port", "p", 1), 0, "")
}

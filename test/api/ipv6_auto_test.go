package api_test

import (
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/routers"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"
	"github.com/gophercloud/gophercloud/v2/pagination"
)

// eui64 is RFC 4291's modified EUI-64 address of mac in a /64.
func eui64(t *testing.T, prefix, mac string) string {
	t.Helper()
	hw, err := net.ParseMAC(mac)
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParsePrefix(prefix).Addr().As16()
	iid := []byte{hw[0] ^ 0x02, hw[1], hw[2], 0xff, 0xfe, hw[3], hw[4], hw[5]}
	copy(a[8:], iid)
	return netip.AddrFrom16(a).String()
}

func addrsOn(p *ports.Port, subnet string) []string {
	var out []string
	for _, ip := range p.FixedIPs {
		if ip.SubnetID == subnet {
			out = append(out, ip.IPAddress)
		}
	}
	return out
}

// TestIPv6AutoSubnetOnExistingPorts: as the reference, an IPv6 SLAAC or
// DHCPv6-stateless subnet added to a network with ports gives each port
// (but router interfaces) its EUI-64 address there; deleting the subnet
// removes them, unless a router interface still uses it (409, nothing
// changes).
func TestIPv6AutoSubnetOnExistingPorts(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		n := must[*networks.Network](t)(networks.Create(ctx, e.a, networks.CreateOpts{Name: "auto"}).Extract())
		v4 := mkSubnet(t, e.a, n.ID, 4, "10.9.0.0/24")
		vm := must[*ports.Port](t)(ports.Create(ctx, e.a, ports.CreateOpts{NetworkID: n.ID, Name: "vm"}).Extract())
		bare := must[*ports.Port](t)(ports.Create(ctx, e.a, ports.CreateOpts{NetworkID: n.ID, Name: "bare", FixedIPs: []ports.IP{}}).Extract())
		r, _, _ := mkRouter(t, e.a, "r", "", v4)
		ri := listIDs(t, e, "/v2.0/ports?device_id="+r, "ports", projectA)
		if len(ri) != 1 {
			t.Fatalf("router ports = %v", ri)
		}

		for _, mode := range []string{"slaac", "dhcpv6-stateless"} {
			cidr := map[string]string{"slaac": "2001:db8:a::/64", "dhcpv6-stateless": "2001:db8:b::/64"}[mode]
			sn := must[*subnets.Subnet](t)(subnets.Create(ctx, e.a, subnets.CreateOpts{NetworkID: n.ID, IPVersion: 6, CIDR: cidr,
				IPv6AddressMode: mode, IPv6RAMode: mode}).Extract())
			for _, p := range []*ports.Port{vm, bare} {
				got := must[*ports.Port](t)(ports.Get(ctx, e.a, p.ID).Extract())
				if want := []string{eui64(t, cidr, p.MACAddress)}; !slices.Equal(addrsOn(got, sn.ID), want) {
					t.Fatalf("%s: port %s on %s = %v, want %v", mode, p.Name, cidr, got.FixedIPs, want)
				}
				if got.RevisionNumber == p.RevisionNumber {
					t.Errorf("%s: port %s changed without a new revision", mode, p.Name)
				}
			}
			if got := must[*ports.Port](t)(ports.Get(ctx, e.a, ri[0]).Extract()); len(addrsOn(got, sn.ID)) != 0 {
				t.Fatalf("%s: the router interface got an automatic address: %v", mode, got.FixedIPs)
			}
		}

		// Deleting an automatic subnet takes its addresses away.
		sns := must[[]subnets.Subnet](t)(subnets.ExtractSubnets(must[pagination.Page](t)(subnets.List(e.a, subnets.ListOpts{NetworkID: n.ID, CIDR: "2001:db8:a::/64"}).AllPages(ctx))))
		slaac := sns[0].ID
		if err := subnets.Delete(ctx, e.a, slaac).ExtractErr(); err != nil {
			t.Fatalf("delete the SLAAC subnet: %v", err)
		}
		if got := must[*ports.Port](t)(ports.Get(ctx, e.a, vm.ID).Extract()); len(addrsOn(got, slaac)) != 0 || len(got.FixedIPs) != 2 {
			t.Fatalf("vm after the SLAAC subnet went: %v", got.FixedIPs)
		}

		// A router interface on the other one keeps it in use: 409, and
		// no port loses its address.
		sns = must[[]subnets.Subnet](t)(subnets.ExtractSubnets(must[pagination.Page](t)(subnets.List(e.a, subnets.ListOpts{NetworkID: n.ID, CIDR: "2001:db8:b::/64"}).AllPages(ctx))))
		stateless := sns[0].ID
		must[*routers.InterfaceInfo](t)(routers.AddInterface(ctx, e.a, r, routers.AddInterfaceOpts{SubnetID: stateless}).Extract())
		wantFault(t, subnets.Delete(ctx, e.a, stateless).ExtractErr(), 409, "SubnetInUse")
		if got := must[*ports.Port](t)(ports.Get(ctx, e.a, vm.ID).Extract()); len(addrsOn(got, stateless)) != 1 {
			t.Fatalf("vm lost its address in a refused delete: %v", got.FixedIPs)
		}
	})
}

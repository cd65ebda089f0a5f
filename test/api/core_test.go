package api_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/external"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/routers"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/mtu"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/portsecurity"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/quotas"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/groups"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/rules"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"
	"github.com/gophercloud/gophercloud/v2/pagination"
)

var ctx = context.Background()

func ptr[T any](v T) *T { return &v }

func TestDiscovery(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		root := e.do("GET", "/", "", nil)
		if root.status != 200 {
			t.Fatalf("GET / = %d", root.status)
		}
		v := root.body["versions"].([]any)[0].(map[string]any)
		if v["id"] != "v2.0" || v["status"] != "CURRENT" {
			t.Fatalf("versions = %v", root.body)
		}
		if href := v["links"].([]any)[0].(map[string]any)["href"]; href != e.url+"/v2.0/" {
			t.Fatalf("self href = %v", href)
		}
		if r := e.do("GET", "/v2.0/", projectA, nil); r.status != 200 || len(r.body["resources"].([]any)) != 4 {
			t.Fatalf("GET /v2.0/ = %d %v", r.status, r.raw)
		}
		if id := root.header.Get("X-Openstack-Request-Id"); len(id) != len("req-")+36 || id[:4] != "req-" {
			t.Fatalf("request id = %q", id)
		}
		pages := must[pagination.Page](t)(extensions.List(e.a).AllPages(ctx))
		exts := must[[]extensions.Extension](t)(extensions.ExtractExtensions(pages))
		var aliases []string
		for _, x := range exts {
			aliases = append(aliases, x.Alias)
		}
		for _, want := range []string{"router", "external-net", "ext-gw-mode", "extraroute", "security-group", "port-security",
			"allowed-address-pairs", "binding", "project-id", "standard-attr-description", "net-mtu", "quotas",
			"empty-string-filtering", "sorting", "pagination"} {
			if !slices.Contains(aliases, want) {
				t.Errorf("extension %q not advertised", want)
			}
		}
		if slices.Contains(aliases, "filter-validation") {
			t.Error("filter-validation must not be advertised")
		}
		got, err := extensions.Get(ctx, e.a, "router").Extract()
		if err != nil || got.Name != "Neutron L3 Router" {
			t.Errorf("router extension name = %q", got.Name)
		}
		_, err = extensions.Get(ctx, e.a, "no-such-ext").Extract()
		wantFault(t, err, 404, "ExtensionNotFound")
	})
}

// netExt is a network with the extension attributes gophercloud splits out.
type netExt struct {
	networks.Network
	external.NetworkExternalExt
	portsecurity.PortSecurityExt
	mtu.NetworkMTUExt
}

func TestNetworks(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		var n netExt
		err := networks.Create(ctx, e.a, networks.CreateOpts{Name: "net1", Description: "first"}).ExtractInto(&n)
		if err != nil {
			t.Fatal(err)
		}
		if n.Name != "net1" || n.Status != "ACTIVE" || !n.AdminStateUp || n.Shared || n.External ||
			n.MTU != 1450 || !n.PortSecurityEnabled || n.ProjectID != projectA || n.TenantID != projectA ||
			n.Description != "first" || n.RevisionNumber != 0 || n.CreatedAt.IsZero() || len(n.Subnets) != 0 {
			t.Fatalf("created network = %+v", n)
		}
		upd := must[*networks.Network](t)(networks.Update(ctx, e.a, n.ID, networks.UpdateOpts{Name: ptr("renamed")}).Extract())
		if upd.Name != "renamed" || upd.RevisionNumber != 1 {
			t.Fatalf("updated = %+v", upd)
		}
		// Another project cannot see it: 404, not 403.
		_, err = networks.Get(ctx, e.b, n.ID).Extract()
		wantFault(t, err, 404, "NetworkNotFound")
		err = networks.Delete(ctx, e.b, n.ID).ExtractErr()
		wantFault(t, err, 404, "NetworkNotFound")
		// Only admins create external or shared networks.
		_, err = networks.Create(ctx, e.a, external.CreateOptsExt{CreateOptsBuilder: networks.CreateOpts{Name: "x"}, External: ptr(true)}).Extract()
		wantFault(t, err, 403, "PolicyNotAuthorized")
		var ext netExt
		err = networks.Create(ctx, e.admin, external.CreateOptsExt{CreateOptsBuilder: networks.CreateOpts{Name: "public"}, External: ptr(true)}).ExtractInto(&ext)
		if err != nil || !ext.External || ext.MTU != 1500 {
			t.Fatalf("external network = %+v, %v", ext, err)
		}
		// External networks are visible to every project; readers cannot write.
		if got := must[*networks.Network](t)(networks.Get(ctx, e.b, ext.ID).Extract()); got.ID != ext.ID {
			t.Fatal("external network not visible")
		}
		_, err = networks.Create(ctx, e.readerA, networks.CreateOpts{Name: "r"}).Extract()
		wantFault(t, err, 403, "PolicyNotAuthorized")
		// Listing is scoped.
		pages := must[pagination.Page](t)(networks.List(e.a, networks.ListOpts{}).AllPages(ctx))
		list := must[[]networks.Network](t)(networks.ExtractNetworks(pages))
		if len(list) != 2 {
			t.Fatalf("project A sees %d networks, want 2 (own + external)", len(list))
		}
		pages = must[pagination.Page](t)(networks.List(e.b, networks.ListOpts{Name: "renamed"}).AllPages(ctx))
		if list := must[[]networks.Network](t)(networks.ExtractNetworks(pages)); len(list) != 0 {
			t.Fatalf("project B sees A's network: %v", list)
		}
		must[struct{}](t)(struct{}{}, networks.Delete(ctx, e.a, n.ID).ExtractErr())
		_, err = networks.Get(ctx, e.a, n.ID).Extract()
		wantFault(t, err, 404, "NetworkNotFound")
	})
}

func TestSubnets(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		n := must[*networks.Network](t)(networks.Create(ctx, e.a, networks.CreateOpts{Name: "n"}).Extract())
		sn := must[*subnets.Subnet](t)(subnets.Create(ctx, e.a, subnets.CreateOpts{
			NetworkID: n.ID, IPVersion: 4, CIDR: "10.0.0.7/24", Name: "s4", DNSNameservers: []string{"192.0.2.53"},
		}).Extract())
		if sn.CIDR != "10.0.0.0/24" || sn.GatewayIP != "10.0.0.1" || !sn.EnableDHCP ||
			len(sn.AllocationPools) != 1 || sn.AllocationPools[0].Start != "10.0.0.2" || sn.AllocationPools[0].End != "10.0.0.254" ||
			!slices.Equal(sn.DNSNameservers, []string{"192.0.2.53"}) {
			t.Fatalf("subnet = %+v", sn)
		}
		got := must[*networks.Network](t)(networks.Get(ctx, e.a, n.ID).Extract())
		if !slices.Equal(got.Subnets, []string{sn.ID}) {
			t.Fatalf("network subnets = %v", got.Subnets)
		}
		_, err := subnets.Create(ctx, e.a, subnets.CreateOpts{NetworkID: n.ID, IPVersion: 4, CIDR: "10.0.0.128/25"}).Extract()
		wantFault(t, err, 400, "InvalidInput")
		if r := e.do("POST", "/v2.0/subnets", projectA, map[string]any{"subnet": map[string]any{"network_id": n.ID, "ip_version": 4, "cidr": "10.0.0.0/16"}}); r.status != 400 {
			t.Fatalf("overlap = %d", r.status)
		} else if _, msg := r.fault(); !contains(msg, "overlaps with another subnet") {
			t.Fatalf("overlap message = %q", msg)
		}
		// No gateway, explicit pools, IPv6 SLAAC.
		noGw := must[*subnets.Subnet](t)(subnets.Create(ctx, e.a, subnets.CreateOpts{
			NetworkID: n.ID, IPVersion: 4, CIDR: "10.1.0.0/29", GatewayIP: ptr(""),
		}).Extract())
		if noGw.GatewayIP != "" || noGw.AllocationPools[0].Start != "10.1.0.1" || noGw.AllocationPools[0].End != "10.1.0.6" {
			t.Fatalf("no-gateway subnet = %+v", noGw)
		}
		v6 := must[*subnets.Subnet](t)(subnets.Create(ctx, e.a, subnets.CreateOpts{
			NetworkID: n.ID, IPVersion: 6, CIDR: "2001:db8::/64", IPv6AddressMode: "slaac", IPv6RAMode: "slaac",
		}).Extract())
		if v6.GatewayIP != "2001:db8::1" || v6.AllocationPools[0].Start != "2001:db8::2" || v6.AllocationPools[0].End != "2001:db8::ffff:ffff:ffff:ffff" {
			t.Fatalf("v6 subnet = %+v", v6)
		}
		// Pool errors.
		for _, tc := range []struct {
			pools []subnets.AllocationPool
			gw    string
			code  int
			typ   string
		}{
			{[]subnets.AllocationPool{{Start: "10.2.0.10", End: "10.2.1.5"}}, "", 400, "OutOfBoundsAllocationPool"},
			{[]subnets.AllocationPool{{Start: "10.2.0.10", End: "10.2.0.5"}}, "", 400, "InvalidAllocationPool"},
			{[]subnets.AllocationPool{{Start: "10.2.0.10", End: "10.2.0.20"}, {Start: "10.2.0.15", End: "10.2.0.30"}}, "", 409, "OverlappingAllocationPools"},
			{[]subnets.AllocationPool{{Start: "10.2.0.1", End: "10.2.0.20"}}, "10.2.0.5", 409, "GatewayConflictWithAllocationPools"},
		} {
			opts := subnets.CreateOpts{NetworkID: n.ID, IPVersion: 4, CIDR: "10.2.0.0/24", AllocationPools: tc.pools}
			if tc.gw != "" {
				opts.GatewayIP = &tc.gw
			}
			_, err := subnets.Create(ctx, e.a, opts).Extract()
			wantFault(t, err, tc.code, tc.typ)
		}
		upd := must[*subnets.Subnet](t)(subnets.Update(ctx, e.a, sn.ID, subnets.UpdateOpts{
			AllocationPools: []subnets.AllocationPool{{Start: "10.0.0.100", End: "10.0.0.110"}}, Name: ptr("s4b"),
		}).Extract())
		if upd.AllocationPools[0].Start != "10.0.0.100" || upd.Name != "s4b" {
			t.Fatalf("updated subnet = %+v", upd)
		}
		must[struct{}](t)(struct{}{}, subnets.Delete(ctx, e.a, noGw.ID).ExtractErr())
	})
}

func contains(s, sub string) bool {
	return len(sub) == 0 || (len(s) >= len(sub) && indexOf(s, sub) >= 0)
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

// portExt is a port with port security.
type portExt struct {
	ports.Port
	portsecurity.PortSecurityExt
}

func TestPorts(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		n := must[*networks.Network](t)(networks.Create(ctx, e.a, networks.CreateOpts{Name: "n"}).Extract())
		sn := must[*subnets.Subnet](t)(subnets.Create(ctx, e.a, subnets.CreateOpts{NetworkID: n.ID, IPVersion: 4, CIDR: "192.168.50.0/24"}).Extract())
		var p portExt
		if err := ports.Create(ctx, e.a, ports.CreateOpts{NetworkID: n.ID, Name: "p1"}).ExtractInto(&p); err != nil {
			t.Fatal(err)
		}
		if len(p.FixedIPs) != 1 || p.FixedIPs[0].IPAddress != "192.168.50.2" || p.FixedIPs[0].SubnetID != sn.ID ||
			p.Status != "DOWN" || !p.PortSecurityEnabled || len(p.SecurityGroups) != 1 || p.MACAddress[:8] != "fa:16:3e" {
			t.Fatalf("port = %+v", p)
		}
		// The default security group was created for the project.
		pages := must[pagination.Page](t)(groups.List(e.a, groups.ListOpts{}).AllPages(ctx))
		gs := must[[]groups.SecGroup](t)(groups.ExtractGroups(pages))
		if len(gs) != 1 || gs[0].Name != "default" || gs[0].ID != p.SecurityGroups[0] || len(gs[0].Rules) != 4 {
			t.Fatalf("default groups = %+v", gs)
		}
		// A requested address; the same address again is a 409.
		p2 := must[*ports.Port](t)(ports.Create(ctx, e.a, ports.CreateOpts{NetworkID: n.ID,
			FixedIPs: []ports.IP{{IPAddress: "192.168.50.77"}}}).Extract())
		if p2.FixedIPs[0].IPAddress != "192.168.50.77" || p2.FixedIPs[0].SubnetID != sn.ID {
			t.Fatalf("requested ip = %+v", p2.FixedIPs)
		}
		_, err := ports.Create(ctx, e.a, ports.CreateOpts{NetworkID: n.ID, FixedIPs: []ports.IP{{IPAddress: "192.168.50.77"}}}).Extract()
		wantFault(t, err, 409, "IpAddressAlreadyAllocated")
		_, err = ports.Create(ctx, e.a, ports.CreateOpts{NetworkID: n.ID, FixedIPs: []ports.IP{{IPAddress: "10.9.9.9"}}}).Extract()
		wantFault(t, err, 400, "InvalidIpForNetwork")
		_, err = ports.Create(ctx, e.a, ports.CreateOpts{NetworkID: n.ID, MACAddress: p.MACAddress}).Extract()
		wantFault(t, err, 409, "MacAddressInUse")
		// Filter by fixed IP, as openstacksdk does.
		pages = must[pagination.Page](t)(ports.List(e.a, ports.ListOpts{FixedIPs: []ports.FixedIPOpts{{IPAddress: "192.168.50.77"}}}).AllPages(ctx))
		found := must[[]ports.Port](t)(ports.ExtractPorts(pages))
		if len(found) != 1 || found[0].ID != p2.ID {
			t.Fatalf("fixed_ips filter = %v", found)
		}
		// Allowed address pairs need port security; the MAC defaults to the port's.
		upd := must[*ports.Port](t)(ports.Update(ctx, e.a, p.ID, ports.UpdateOpts{
			AllowedAddressPairs: &[]ports.AddressPair{{IPAddress: "10.244.0.0/24"}, {IPAddress: "192.168.50.200", MACAddress: "fa:16:3e:00:00:01"}},
		}).Extract())
		if len(upd.AllowedAddressPairs) != 2 || upd.AllowedAddressPairs[0].MACAddress != p.MACAddress {
			t.Fatalf("address pairs = %+v", upd.AllowedAddressPairs)
		}
		_, err = ports.Update(ctx, e.a, p.ID, portsecurity.PortUpdateOptsExt{UpdateOptsBuilder: ports.UpdateOpts{}, PortSecurityEnabled: ptr(false)}).Extract()
		wantFault(t, err, 409, "PortSecurityPortHasSecurityGroup")
		_, err = ports.Update(ctx, e.a, p.ID, portsecurity.PortUpdateOptsExt{
			UpdateOptsBuilder: ports.UpdateOpts{SecurityGroups: &[]string{}}, PortSecurityEnabled: ptr(false)}).Extract()
		wantFault(t, err, 409, "AddressPairAndPortSecurityRequired")
		var off portExt
		err = ports.Update(ctx, e.a, p.ID, portsecurity.PortUpdateOptsExt{
			UpdateOptsBuilder:   ports.UpdateOpts{SecurityGroups: &[]string{}, AllowedAddressPairs: &[]ports.AddressPair{}},
			PortSecurityEnabled: ptr(false)}).ExtractInto(&off)
		if err != nil || off.PortSecurityEnabled || len(off.SecurityGroups) != 0 {
			t.Fatalf("port security off = %+v, %v", off, err)
		}
		// Eleven pairs is one too many.
		var many []ports.AddressPair
		for i := range 11 {
			many = append(many, ports.AddressPair{IPAddress: "10.0.0." + itoa(i+1)})
		}
		_, err = ports.Create(ctx, e.a, ports.CreateOpts{NetworkID: n.ID, AllowedAddressPairs: many}).Extract()
		wantFault(t, err, 400, "AllowedAddressPairExhausted")
		// Change the fixed IP: the old address is freed.
		moved := must[*ports.Port](t)(ports.Update(ctx, e.a, p2.ID, ports.UpdateOpts{FixedIPs: []ports.IP{{SubnetID: sn.ID, IPAddress: "192.168.50.78"}}}).Extract())
		if moved.FixedIPs[0].IPAddress != "192.168.50.78" {
			t.Fatalf("moved = %+v", moved.FixedIPs)
		}
		must[*ports.Port](t)(ports.Create(ctx, e.a, ports.CreateOpts{NetworkID: n.ID, FixedIPs: []ports.IP{{IPAddress: "192.168.50.77"}}}).Extract())
		// Deletes with dependants.
		wantFault(t, networks.Delete(ctx, e.a, n.ID).ExtractErr(), 409, "NetworkInUse")
		wantFault(t, subnets.Delete(ctx, e.a, sn.ID).ExtractErr(), 409, "SubnetInUse")
		// Binding attributes are admin-only.
		_, err = ports.Create(ctx, e.a, ports.CreateOpts{NetworkID: n.ID}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		r := e.do("POST", "/v2.0/ports", projectA, map[string]any{"port": map[string]any{"network_id": n.ID, "binding:host_id": "h1"}})
		if typ, _ := r.fault(); r.status != 403 || typ != "PolicyNotAuthorized" {
			t.Fatalf("binding by member = %d %s", r.status, r.raw)
		}
		r = e.do("POST", "/v2.0/ports", "", map[string]any{"port": map[string]any{"network_id": n.ID, "binding:host_id": "h1", "binding:profile": map[string]any{"k": "v"}}})
		port := r.body["port"].(map[string]any)
		if r.status != 201 || port["binding:host_id"] != "h1" || port["binding:vif_type"] != "unbound" || port["binding:vnic_type"] != "normal" {
			t.Fatalf("admin binding = %d %s", r.status, r.raw)
		}
	})
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

func TestRouters(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ext := must[*networks.Network](t)(networks.Create(ctx, e.admin, external.CreateOptsExt{CreateOptsBuilder: networks.CreateOpts{Name: "public"}, External: ptr(true)}).Extract())
		extSub := must[*subnets.Subnet](t)(subnets.Create(ctx, e.admin, subnets.CreateOpts{NetworkID: ext.ID, IPVersion: 4, CIDR: "203.0.113.0/24"}).Extract())
		priv := must[*networks.Network](t)(networks.Create(ctx, e.a, networks.CreateOpts{Name: "priv"}).Extract())
		sn := must[*subnets.Subnet](t)(subnets.Create(ctx, e.a, subnets.CreateOpts{NetworkID: priv.ID, IPVersion: 4, CIDR: "10.10.0.0/24"}).Extract())

		_, err := routers.Create(ctx, e.a, routers.CreateOpts{Name: "bad", GatewayInfo: &routers.GatewayInfo{NetworkID: priv.ID}}).Extract()
		wantFault(t, err, 400, "BadRequest")
		r := must[*routers.Router](t)(routers.Create(ctx, e.a, routers.CreateOpts{Name: "r1", GatewayInfo: &routers.GatewayInfo{NetworkID: ext.ID}}).Extract())
		gw := r.GatewayInfo
		if gw.NetworkID != ext.ID || gw.EnableSNAT == nil || !*gw.EnableSNAT || len(gw.ExternalFixedIPs) != 1 ||
			gw.ExternalFixedIPs[0].IPAddress != "203.0.113.2" || gw.ExternalFixedIPs[0].SubnetID != extSub.ID || r.Status != "ACTIVE" {
			t.Fatalf("router = %+v", r)
		}
		// The gateway port is the router's and not the project's.
		pages := must[pagination.Page](t)(ports.List(e.admin, ports.ListOpts{DeviceID: r.ID}).AllPages(ctx))
		gwPorts := must[[]ports.Port](t)(ports.ExtractPorts(pages))
		if len(gwPorts) != 1 || gwPorts[0].DeviceOwner != "network:router_gateway" {
			t.Fatalf("gateway ports = %+v", gwPorts)
		}
		// Interfaces by subnet, then errors.
		info := must[*routers.InterfaceInfo](t)(routers.AddInterface(ctx, e.a, r.ID, routers.AddInterfaceOpts{SubnetID: sn.ID}).Extract())
		if info.SubnetID != sn.ID || info.ID != r.ID || info.PortID == "" || info.TenantID != projectA {
			t.Fatalf("interface = %+v", info)
		}
		ifPort := must[*ports.Port](t)(ports.Get(ctx, e.a, info.PortID).Extract())
		if ifPort.FixedIPs[0].IPAddress != "10.10.0.1" || ifPort.DeviceOwner != "network:router_interface" || ifPort.DeviceID != r.ID {
			t.Fatalf("interface port = %+v", ifPort)
		}
		_, err = routers.AddInterface(ctx, e.a, r.ID, routers.AddInterfaceOpts{SubnetID: sn.ID}).Extract()
		wantFault(t, err, 400, "BadRequest")
		if rr := e.do("PUT", "/v2.0/routers/"+r.ID+"/add_router_interface", projectA, map[string]any{}); rr.status != 400 {
			t.Fatalf("neither key = %d", rr.status)
		}
		if rr := e.do("PUT", "/v2.0/routers/"+r.ID+"/add_router_interface", projectA, map[string]any{"subnet_id": sn.ID, "port_id": info.PortID}); rr.status != 400 {
			t.Fatalf("both keys = %d", rr.status)
		}
		wantFault(t, ports.Delete(ctx, e.a, info.PortID).ExtractErr(), 409, "L3PortInUse")
		wantFault(t, routers.Delete(ctx, e.a, r.ID).ExtractErr(), 409, "RouterInUse")
		wantFault(t, subnets.Delete(ctx, e.a, sn.ID).ExtractErr(), 409, "SubnetInUse")
		// Extra routes need a connected next hop.
		routes := []routers.Route{{DestinationCIDR: "172.16.0.0/16", NextHop: "10.10.0.50"}}
		upd := must[*routers.Router](t)(routers.Update(ctx, e.a, r.ID, routers.UpdateOpts{Routes: &routes}).Extract())
		if len(upd.Routes) != 1 || upd.Routes[0].NextHop != "10.10.0.50" {
			t.Fatalf("routes = %+v", upd.Routes)
		}
		bad := []routers.Route{{DestinationCIDR: "172.17.0.0/16", NextHop: "192.0.2.1"}}
		_, err = routers.Update(ctx, e.a, r.ID, routers.UpdateOpts{Routes: &bad}).Extract()
		wantFault(t, err, 400, "InvalidRoutes")
		_, err = routers.RemoveInterface(ctx, e.a, r.ID, routers.RemoveInterfaceOpts{SubnetID: sn.ID}).Extract()
		wantFault(t, err, 409, "RouterInterfaceInUseByRoute")
		must[*routers.Router](t)(routers.Update(ctx, e.a, r.ID, routers.UpdateOpts{Routes: &[]routers.Route{}}).Extract())
		// Interface by port.
		sn2Net := must[*networks.Network](t)(networks.Create(ctx, e.a, networks.CreateOpts{Name: "n2"}).Extract())
		must[*subnets.Subnet](t)(subnets.Create(ctx, e.a, subnets.CreateOpts{NetworkID: sn2Net.ID, IPVersion: 4, CIDR: "10.20.0.0/24"}).Extract())
		p := must[*ports.Port](t)(ports.Create(ctx, e.a, ports.CreateOpts{NetworkID: sn2Net.ID}).Extract())
		info2 := must[*routers.InterfaceInfo](t)(routers.AddInterface(ctx, e.a, r.ID, routers.AddInterfaceOpts{PortID: p.ID}).Extract())
		if info2.PortID != p.ID {
			t.Fatalf("interface by port = %+v", info2)
		}
		// Remove both; removing again is a 404.
		must[*routers.InterfaceInfo](t)(routers.RemoveInterface(ctx, e.a, r.ID, routers.RemoveInterfaceOpts{SubnetID: sn.ID}).Extract())
		must[*routers.InterfaceInfo](t)(routers.RemoveInterface(ctx, e.a, r.ID, routers.RemoveInterfaceOpts{PortID: p.ID}).Extract())
		_, err = routers.RemoveInterface(ctx, e.a, r.ID, routers.RemoveInterfaceOpts{SubnetID: sn.ID}).Extract()
		wantFault(t, err, 404, "RouterInterfaceNotFoundForSubnet")
		_, err = routers.RemoveInterface(ctx, e.a, r.ID, routers.RemoveInterfaceOpts{PortID: p.ID}).Extract()
		wantFault(t, err, 404, "RouterInterfaceNotFound")
		// Clearing the gateway frees its address; the external network can then go.
		cleared := must[*routers.Router](t)(routers.Update(ctx, e.a, r.ID, routers.UpdateOpts{GatewayInfo: &routers.GatewayInfo{}}).Extract())
		if cleared.GatewayInfo.NetworkID != "" {
			t.Fatalf("gateway not cleared: %+v", cleared.GatewayInfo)
		}
		must[struct{}](t)(struct{}{}, routers.Delete(ctx, e.a, r.ID).ExtractErr())
		must[struct{}](t)(struct{}{}, networks.Delete(ctx, e.admin, ext.ID).ExtractErr())
	})
}

func TestSecurityGroups(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		g := must[*groups.SecGroup](t)(groups.Create(ctx, e.a, groups.CreateOpts{Name: "web", Description: "web tier"}).Extract())
		if len(g.Rules) != 2 || g.Rules[0].Direction != "egress" {
			t.Fatalf("group = %+v", g)
		}
		_, err := groups.Create(ctx, e.a, groups.CreateOpts{Name: "default"}).Extract()
		wantFault(t, err, 409, "SecurityGroupDefaultAlreadyExists")
		rule := must[*rules.SecGroupRule](t)(rules.Create(ctx, e.a, rules.CreateOpts{
			SecGroupID: g.ID, Direction: rules.DirIngress, EtherType: rules.EtherType4, Protocol: rules.ProtocolTCP,
			PortRangeMin: 443, PortRangeMax: 443, RemoteIPPrefix: "0.0.0.0/0",
		}).Extract())
		if rule.Protocol != "tcp" || rule.PortRangeMin != 443 || rule.RemoteIPPrefix != "0.0.0.0/0" || rule.ProjectID != projectA {
			t.Fatalf("rule = %+v", rule)
		}
		_, err = rules.Create(ctx, e.a, rules.CreateOpts{SecGroupID: g.ID, Direction: rules.DirIngress, EtherType: rules.EtherType4,
			Protocol: rules.ProtocolTCP, PortRangeMin: 443, PortRangeMax: 443, RemoteIPPrefix: "0.0.0.0/0"}).Extract()
		wantFault(t, err, 409, "SecurityGroupRuleExists")
		_, err = rules.Create(ctx, e.a, rules.CreateOpts{SecGroupID: g.ID, Direction: rules.DirIngress, EtherType: rules.EtherType6,
			RemoteIPPrefix: "10.0.0.0/8"}).Extract()
		wantFault(t, err, 400, "SecurityGroupRuleParameterConflict")
		_, err = rules.Create(ctx, e.a, rules.CreateOpts{SecGroupID: g.ID, Direction: rules.DirIngress, EtherType: rules.EtherType4,
			Protocol: rules.ProtocolTCP, PortRangeMin: 90, PortRangeMax: 80}).Extract()
		wantFault(t, err, 400, "SecurityGroupInvalidPortRange")
		// In use by a port: 409; project B cannot see it.
		n := must[*networks.Network](t)(networks.Create(ctx, e.a, networks.CreateOpts{Name: "n"}).Extract())
		p := must[*ports.Port](t)(ports.Create(ctx, e.a, ports.CreateOpts{NetworkID: n.ID, SecurityGroups: &[]string{g.ID}}).Extract())
		wantFault(t, groups.Delete(ctx, e.a, g.ID).ExtractErr(), 409, "SecurityGroupInUse")
		_, err = groups.Get(ctx, e.b, g.ID).Extract()
		wantFault(t, err, 404, "SecurityGroupNotFound")
		_, err = ports.Create(ctx, e.b, ports.CreateOpts{NetworkID: n.ID}).Extract()
		wantFault(t, err, 404, "NetworkNotFound")
		must[struct{}](t)(struct{}{}, ports.Delete(ctx, e.a, p.ID).ExtractErr())
		must[struct{}](t)(struct{}{}, rules.Delete(ctx, e.a, rule.ID).ExtractErr())
		must[struct{}](t)(struct{}{}, groups.Delete(ctx, e.a, g.ID).ExtractErr())
		_, err = rules.Get(ctx, e.a, rule.ID).Extract()
		wantFault(t, err, 404, "SecurityGroupRuleNotFound")
	})
}

func TestQuotas(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		q := must[*quotas.Quota](t)(quotas.Get(ctx, e.a, projectA).Extract())
		if q.Network != 100 || q.Port != 500 || q.Router != 10 {
			t.Fatalf("default quota = %+v", q)
		}
		_, err := quotas.Update(ctx, e.a, projectA, quotas.UpdateOpts{Network: ptr(1)}).Extract()
		wantFault(t, err, 403, "PolicyNotAuthorized")
		_, err = quotas.Get(ctx, e.a, projectB).Extract()
		wantStatus(t, err, 403)
		q = must[*quotas.Quota](t)(quotas.Update(ctx, e.admin, projectA, quotas.UpdateOpts{Network: ptr(1)}).Extract())
		if q.Network != 1 {
			t.Fatalf("updated quota = %+v", q)
		}
		must[*networks.Network](t)(networks.Create(ctx, e.a, networks.CreateOpts{Name: "one"}).Extract())
		_, err = networks.Create(ctx, e.a, networks.CreateOpts{Name: "two"}).Extract()
		wantFault(t, err, 409, "OverQuota")
		d := must[*quotas.QuotaDetailSet](t)(quotas.GetDetail(ctx, e.a, projectA).Extract())
		if d.Network.Used != 1 || d.Network.Limit != 1 {
			t.Fatalf("quota details = %+v", d.Network)
		}
		// Project B is unaffected.
		must[*networks.Network](t)(networks.Create(ctx, e.b, networks.CreateOpts{Name: "b1"}).Extract())
		must[*networks.Network](t)(networks.Create(ctx, e.b, networks.CreateOpts{Name: "b2"}).Extract())
		must[struct{}](t)(struct{}{}, quotas.Delete(ctx, e.admin, projectA).ExtractErr())
		must[*networks.Network](t)(networks.Create(ctx, e.a, networks.CreateOpts{Name: "two"}).Extract())
		// A limit below what is used needs force, as in the reference
		// (test_set_network_quota_lower_than_networks_amount).
		e.want("network quota below use", e.do("PUT", "/v2.0/quotas/"+projectA, "", map[string]any{"quota": map[string]any{"network": 1, "check_limit": true}}), 400, "HTTPBadRequest")
		if r := e.do("PUT", "/v2.0/quotas/"+projectA, "", map[string]any{"quota": map[string]any{"bogus": 1}}); r.status != 400 {
			t.Fatalf("unknown quota resource = %d", r.status)
		}
		if r := e.do("GET", "/v2.0/agents", projectA, nil); r.status != 200 || len(r.body["agents"].([]any)) != 0 {
			t.Fatalf("agents = %d %s", r.status, r.raw)
		}
	})
}

// TestPortGroupsNeverNull: a port without security groups (a router
// interface, a port without port security) shows "security_groups": [],
// as the reference does, never null, on create, show, update and list.
func TestPortGroupsNeverNull(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		net := e.create(projectA, "networks", map[string]any{"name": "a"})
		sub := e.create(projectA, "subnets", map[string]any{"network_id": net, "ip_version": 4, "cidr": "10.1.0.0/24"})
		rtr := e.create(projectA, "routers", map[string]any{"name": "r"})
		iface := e.do("PUT", "/v2.0/routers/"+rtr+"/add_router_interface", projectA, map[string]any{"subnet_id": sub}).body["port_id"].(string)
		open := e.create(projectA, "ports", map[string]any{"network_id": net, "port_security_enabled": false})
		for _, r := range []reply{
			e.do("GET", "/v2.0/ports/"+iface, projectA, nil),
			e.do("GET", "/v2.0/ports/"+open, projectA, nil),
			e.do("PUT", "/v2.0/ports/"+open, projectA, map[string]any{"port": map[string]any{"name": "x"}}),
			e.do("GET", "/v2.0/ports?network_id="+net, projectA, nil),
		} {
			if strings.Contains(r.raw, `"security_groups":null`) || !strings.Contains(r.raw, `"security_groups":[]`) {
				t.Fatalf("security_groups should be []: %s", r.raw)
			}
		}
	})
}

package api_test

import (
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/routers"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"
)

// TestPortOnGatewayAddress is Terraform's usual pattern: a port takes the
// subnet's gateway_ip as its fixed IP, then becomes a router interface by
// port_id. The reference allows both; once a router interface holds the
// gateway address, another port asking for it is a 409
// IpAddressAlreadyAllocated, as is adding the subnet to a router while a
// port holds it.
func TestPortOnGatewayAddress(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		netID, subID := mkNet(t, e.a, "net", 4, "10.7.0.0/24")
		sn := must[*subnets.Subnet](t)(subnets.Get(ctx, e.a, subID).Extract())
		if sn.GatewayIP != "10.7.0.1" {
			t.Fatalf("gateway_ip = %q", sn.GatewayIP)
		}
		gw := must[*ports.Port](t)(ports.Create(ctx, e.a, ports.CreateOpts{NetworkID: netID, Name: "gw",
			FixedIPs: []ports.IP{{SubnetID: subID, IPAddress: sn.GatewayIP}}}).Extract())
		if len(gw.FixedIPs) != 1 || gw.FixedIPs[0].IPAddress != "10.7.0.1" || gw.FixedIPs[0].SubnetID != subID || gw.DeviceOwner != "" {
			t.Fatalf("port on the gateway address = %+v", gw)
		}
		// While a port holds it, nothing else gets the address, and the
		// subnet cannot be added by subnet (its interface would need it).
		_, err := ports.Create(ctx, e.a, ports.CreateOpts{NetworkID: netID,
			FixedIPs: []ports.IP{{SubnetID: subID, IPAddress: sn.GatewayIP}}}).Extract()
		wantFault(t, err, 409, "IpAddressAlreadyAllocated")
		r1, _, _ := mkRouter(t, e.a, "r1", "")
		_, err = routers.AddInterface(ctx, e.a, r1, routers.AddInterfaceOpts{SubnetID: subID}).Extract()
		wantFault(t, err, 409, "IpAddressAlreadyAllocated")

		info := must[*routers.InterfaceInfo](t)(routers.AddInterface(ctx, e.a, r1, routers.AddInterfaceOpts{PortID: gw.ID}).Extract())
		if info.PortID != gw.ID || info.SubnetID != subID {
			t.Fatalf("add_router_interface by port = %+v", info)
		}
		got := must[*ports.Port](t)(ports.Get(ctx, e.a, gw.ID).Extract())
		if got.DeviceOwner != "network:router_interface" || got.DeviceID != r1 || got.FixedIPs[0].IPAddress != "10.7.0.1" {
			t.Fatalf("interface port = %+v", got)
		}
		if ids := listIDs(t, e, "/v2.0/ports?device_id="+r1, "ports", projectA); len(ids) != 1 || ids[0] != gw.ID {
			t.Fatalf("router ports = %v", ids)
		}
		// The router interface holds the gateway now.
		_, err = ports.Create(ctx, e.a, ports.CreateOpts{NetworkID: netID,
			FixedIPs: []ports.IP{{SubnetID: subID, IPAddress: sn.GatewayIP}}}).Extract()
		wantFault(t, err, 409, "IpAddressAlreadyAllocated")
		r := e.do("POST", "/v2.0/ports", projectA, map[string]any{"port": map[string]any{"network_id": netID,
			"fixed_ips": []any{map[string]any{"subnet_id": subID, "ip_address": "10.7.0.1"}}}})
		if typ, msg := r.fault(); r.status != 409 || typ != "IpAddressAlreadyAllocated" || msg != "IP address 10.7.0.1 already allocated in subnet "+subID {
			t.Fatalf("port on a held gateway: %d %s %q", r.status, typ, msg)
		}
		// Removed by port, the address is free again for any port.
		must[*routers.InterfaceInfo](t)(routers.RemoveInterface(ctx, e.a, r1, routers.RemoveInterfaceOpts{PortID: gw.ID}).Extract())
		again := must[*ports.Port](t)(ports.Create(ctx, e.a, ports.CreateOpts{NetworkID: netID,
			FixedIPs: []ports.IP{{SubnetID: subID, IPAddress: sn.GatewayIP}}}).Extract())
		if again.FixedIPs[0].IPAddress != "10.7.0.1" {
			t.Fatalf("port after the interface went = %+v", again)
		}
	})
}

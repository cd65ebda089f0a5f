package cli_test

import "testing"

// TestOpenstackGatewayPortCLI is Terraform's pattern through the openstack
// CLI: a port on the subnet's gateway address, then attached to a router
// by port ("router add port"), as the reference allows.
func TestOpenstackGatewayPortCLI(t *testing.T) {
	t.Parallel()
	c, _ := newCLI(t)
	var sub, gw, shown, router map[string]any
	rs := c.parallel(js("network", "create", "gwnet"), js("router", "create", "gwr"))
	c.check(rs[0])
	c.decode(rs[1], &router)
	c.decode(c.run(js("subnet", "create", "--network", "gwnet", "--subnet-range", "10.8.0.0/24", "gwsub")...), &sub)
	if sub["gateway_ip"] != "10.8.0.1" {
		t.Fatalf("subnet gateway_ip = %v", sub["gateway_ip"])
	}
	c.decode(c.run(js("port", "create", "--network", "gwnet", "--fixed-ip", "subnet=gwsub,ip-address=10.8.0.1", "gwport")...), &gw)
	if ips := fixedIPs(gw["fixed_ips"]); len(ips) != 1 || ips[0].ip != "10.8.0.1" {
		t.Fatalf("port create on the gateway address: fixed_ips = %v", gw["fixed_ips"])
	}
	c.check(c.run("router", "add", "port", "gwr", "gwport"))
	c.decode(c.run(js("port", "show", "gwport")...), &shown)
	wantFields(t, "port show gwport", shown, map[string]any{"device_owner": "network:router_interface", "device_id": str(t, router, "id")})
	// A second port on the address the interface now holds is refused.
	c.fails("port", "create", "--network", "gwnet", "--fixed-ip", "subnet=gwsub,ip-address=10.8.0.1", "gwport2")
}

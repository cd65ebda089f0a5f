package e2e_test

import (
	"testing"

	"github.com/neutrino-net/neutrino/internal/ipsec/strongswan"
	"github.com/neutrino-net/neutrino/internal/vmlab"
)

// TestLabKernel runs the whole end-to-end suite again on Debian's own
// kernel in the full-kernel lab (internal/vmlab), where the agent must
// detect the kernel's IPsec (xfrm) by itself: the VPN tests then check
// ESP states in the router namespaces and ESP on the wire, and the L2/L3
// tests run on a second kernel.
func TestLabKernel(t *testing.T) {
	if !vmlab.Enter(t) {
		return
	}
	if dataPlane != strongswan.DataPlaneXFRM {
		t.Fatalf("the lab kernel's IPsec data plane is %s (%s), want xfrm detected", dataPlane, dataPlaneWhy)
	}
	for _, tc := range []struct {
		name string
		run  func(*testing.T)
	}{
		{"VPNMoonSun", TestVPNMoonSun},
		{"VPNRouterMoves", TestVPNRouterMoves},
		{"RouterBetweenNetworks", TestRouterBetweenNetworks},
		{"SNAT", TestSNAT},
		{"PortSecurity", TestPortSecurity},
		{"DeleteLeavesNothing", TestDeleteLeavesNothing},
		{"DeleteAllAtOnce", TestDeleteAllAtOnce},
		{"VXLANTwoHosts", TestVXLANTwoHosts},
		{"FloatingIPs", TestFloatingIPs},
		{"VPNUnmanagedPeer", TestVPNUnmanagedPeer},
		{"SecurityGroups", TestSecurityGroups},
		{"DHCPv4", TestDHCPv4},
		{"VPNLibreswanPeer", vpnUnmanagedLibreswan},
		{"Lsw", vpnLibreswanMoonSun},
		{"LswMixed", vpnLibreswanStrongswan},
		{"LswOffice", vpnLibreswanOffice},
	} {
		t.Run(tc.name, tc.run)
	}
}

package e2e_test

import (
	"testing"

	"github.com/neutrino-net/neutrino/internal/ipsec/strongswan"
	"github.com/neutrino-net/neutrino/internal/vmlab"
)

// TestLabKernel runs the end-to-end tests that need what this machine's
// kernel lacks again on Debian's own kernel in the full-kernel lab
// (internal/vmlab), where the agent must detect the kernel's IPsec (xfrm)
// by itself: the VPN tests then check ESP states in the router
// namespaces and ESP on the wire, the Libreswan driver runs at all (its
// pluto needs ESP), and NAT and the security groups' br_netfilter path
// run on a second kernel. The plain L2/L3 tests (routing, SNAT,
// anti-spoofing, deletes, VXLAN, DHCP) and strongSwan's router move run
// on this machine's kernel only: CI's time goes where it proves
// something.
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
		{"FloatingIPs", TestFloatingIPs},
		{"VPNUnmanagedPeer", TestVPNUnmanagedPeer},
		{"SecurityGroups", TestSecurityGroups},
		{"Lsw", vpnLibreswanMoonSun},
		{"LswMoves", vpnLibreswanMoves},
		{"LswMixed", vpnLibreswanStrongswan},
		{"LswOffice", vpnUnmanagedLibreswan},
	} {
		t.Run(tc.name, tc.run)
	}
}

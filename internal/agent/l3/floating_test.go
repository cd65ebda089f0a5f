package l3

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/neutrino-net/neutrino/api/agentv1"
)

// TestFloatingRules: a floating IP adds its DNAT in prerouting and its
// SNAT before the subnets' in postrouting, after the VPN bypass and the
// internal destinations; IPv6 or invalid pairs add nothing.
func TestFloatingRules(t *testing.T) {
	a := netip.MustParseAddr
	r := agentv1.Router{
		Gateway:    &agentv1.Gateway{Interface: agentv1.Interface{PortID: "gw", NetworkID: "pub", Addresses: []netip.Prefix{netip.MustParsePrefix("203.0.113.2/24")}}, SNAT: true},
		Interfaces: []agentv1.Interface{{PortID: "in", NetworkID: "net", Addresses: []netip.Prefix{netip.MustParsePrefix("10.1.0.1/24")}}},
		FloatingIPs: []agentv1.FloatingIP{{FloatingIP: a("203.0.113.9"), FixedIP: a("10.1.0.5")},
			{FloatingIP: a("203.0.113.9"), FixedIP: a("10.1.0.5")}, {FloatingIP: a("2001:db8::9"), FixedIP: a("fd00::5")}},
	}
	var got []string
	for _, rule := range natRules(r, []ExemptPair{{Src: netip.MustParsePrefix("10.1.0.0/24"), Dst: netip.MustParsePrefix("192.168.50.0/24")}}) {
		got = append(got, rule.chain+": "+rule.String())
	}
	qg := agentv1.DeviceName(agentv1.GatewayDevicePrefix, "gw")
	want := []string{
		`forward: iifname "ipsec0" accept`,
		`forward: oifname "ipsec0" accept`,
		`postrouting: oifname "` + qg + `" ip saddr 10.1.0.0/24 ip daddr 192.168.50.0/24 accept`,
		`postrouting: oifname "` + qg + `" ip daddr 10.1.0.0/24 accept`,
		`postrouting: oifname "` + qg + `" ip saddr 10.1.0.5/32 snat ip to 203.0.113.9`,
		`prerouting: ip daddr 203.0.113.9/32 dnat ip to 10.1.0.5`,
		`postrouting: oifname "` + qg + `" ip saddr 10.1.0.0/24 snat ip to 203.0.113.2`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("rules:\n%q\nwant\n%q", got, want)
	}
	// The gateway holds the floating IP.
	s, err := desired(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	var gwAddrs []netip.Prefix
	for _, ls := range s.links {
		if ls.dev == qg {
			gwAddrs = ls.addrs
		}
	}
	if !slices.Contains(gwAddrs, netip.MustParsePrefix("203.0.113.9/32")) {
		t.Errorf("gateway addresses %v lack the floating IP", gwAddrs)
	}
}

package l2

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/neutrino-net/neutrino/api/agentv1"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func TestRanges(t *testing.T) {
	got := ranges([]netip.Prefix{pfx("10.0.0.5/32"), pfx("10.0.0.0/30"), pfx("10.0.0.4/32"), pfx("10.0.1.0/24"),
		pfx("10.0.0.128/25"), pfx("10.0.0.130/32")})
	want := []string{"10.0.0.0-10.0.0.5", "10.0.0.128-10.0.1.255"}
	var have []string
	for _, r := range got {
		have = append(have, r.from.String()+"-"+r.to.String())
	}
	if diff := cmp.Diff(want, have); diff != "" {
		t.Errorf("ranges (-want +got):\n%s", diff)
	}
	if r := ranges([]netip.Prefix{pfx("255.255.255.0/24"), pfx("255.255.255.255/32")}); len(r) != 1 || !isPrefix(r[0]) {
		t.Errorf("the top of the space: %v", r)
	}
	if els := intervalElements(ranges([]netip.Prefix{pfx("255.255.255.0/24")})); len(els) != 1 {
		t.Errorf("a range up to the last address has no interval end: %v", els)
	}
	if isPrefix(addrRange{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")}) {
		t.Error("10.0.0.1-10.0.0.2 is not one prefix")
	}
	if !isPrefix(addrRange{netip.MustParseAddr("fd00::"), netip.MustParseAddr("fd00::ffff")}) {
		t.Error("fd00::/112 is one prefix")
	}
}

func TestResolveFirewall(t *testing.T) {
	p := testPort("p1", "n1", true)
	p.Firewall = &agentv1.Firewall{Stateful: true, Rules: []agentv1.SGRule{
		{Ingress: true, Protocol: 6, PortMin: 22, PortMax: 22, RemoteGroup: "g1",
			Members: []netip.Prefix{pfx("10.0.0.7/32"), pfx("fd00::7/128")}},
		{Ingress: true, IPv6: true, Protocol: 58, PortMin: -1, PortMax: -1, RemoteGroup: "g2"},
		{Protocol: -1, RemotePrefix: pfx("192.0.2.0/24")},
		{Protocol: -1},
	}}
	fw := resolveFirewall(p)
	want := [][]netip.Prefix{{pfx("10.0.0.7/32")}, {}, {pfx("192.0.2.0/24")}, nil}
	for i, r := range fw.Rules {
		if diff := cmp.Diff(want[i], r.Remote, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
			t.Errorf("rule %d (%s) far ends (-want +got):\n%s", i, r.SGRule, diff)
		}
	}
	p.PortSecurity = false
	if resolveFirewall(p) != nil {
		t.Error("a port without port security has no firewall")
	}
}

// Zones are the network's, stable when other networks come and go, and
// distinct on one host.
func TestNumberFirewalls(t *testing.T) {
	mk := func(tap, network string) portRules {
		return portRules{Tap: tap, Network: network, FW: &firewall{}}
	}
	a := []portRules{mk("tapa", "net-a"), mk("tapb", "net-b"), {Tap: "tapc", Network: "net-a"}, mk("tapd", "net-a")}
	numberFirewalls(a)
	if a[0].FW.Zone != a[3].FW.Zone || a[0].FW.Zone == a[1].FW.Zone || a[0].FW.Zone == 0 {
		t.Errorf("zones: %d %d %d", a[0].FW.Zone, a[1].FW.Zone, a[3].FW.Zone)
	}
	if a[0].FW.Index != 1 || a[1].FW.Index != 2 || a[3].FW.Index != 3 {
		t.Errorf("indexes: %d %d %d", a[0].FW.Index, a[1].FW.Index, a[3].FW.Index)
	}
	b := []portRules{mk("tapb", "net-b")}
	numberFirewalls(b)
	if b[0].FW.Zone != a[1].FW.Zone {
		t.Errorf("net-b's zone changed from %d to %d when net-a left", a[1].FW.Zone, b[0].FW.Zone)
	}
}

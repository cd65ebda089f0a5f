package l3

import (
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/ndp"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/neutrino-net/neutrino/internal/namespace"
)

var (
	raPrefixA = pfx("2001:db8:1::/64")
	raDNS     = netip.MustParseAddr("2001:db8::53")
)

// raRouter is testRouter with the IPv6 subnet of network A in a mode.
func raRouter(id, mode string) agentv1.Router {
	r := testRouter(id)
	if mode != "" {
		r.Interfaces[0].IPv6Subnets = []agentv1.IPv6Subnet{{ID: "sub6", Prefix: raPrefixA, RAMode: mode, AddressMode: mode,
			MTU: 1450, DNS: []netip.Addr{raDNS}}}
	}
	return r
}

// TestRASpec: the reference's flags per mode.
func TestRASpec(t *testing.T) {
	for _, tc := range []struct {
		mode         string
		m, o, a, dns bool
	}{
		{agentv1.IPv6SLAAC, false, false, true, true},
		{agentv1.IPv6DHCPv6Stateless, false, true, true, false},
		{agentv1.IPv6DHCPv6Stateful, true, true, false, false},
	} {
		s, err := desired(raRouter("r", tc.mode), nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(s.ras) != 1 {
			t.Fatalf("%s: %d RA specs, want 1", tc.mode, len(s.ras))
		}
		ra := s.ras[0]
		if ra.dev != agentv1.DeviceName(agentv1.InternalDevicePrefix, portA) || ra.managed != tc.m || ra.other != tc.o || ra.mtu != 1450 ||
			len(ra.prefixes) != 1 || ra.prefixes[0].auto != tc.a || ra.prefixes[0].prefix != raPrefixA || (len(ra.dns) == 1) != tc.dns {
			t.Errorf("%s: spec %+v", tc.mode, ra)
		}
	}
	r := raRouter("r", "")
	r.Interfaces[0].IPv6Subnets = []agentv1.IPv6Subnet{{ID: "x", Prefix: raPrefixA, AddressMode: agentv1.IPv6SLAAC}}
	if s, _ := desired(r, nil); len(s.ras) != 0 {
		t.Errorf("no ipv6_ra_mode: RA specs %v, want none", s.ras)
	}
	r.Interfaces[0].IPv6Subnets[0].RAMode = "bogus"
	if _, err := desired(r, nil); err == nil {
		t.Error("unknown ipv6_ra_mode: no error")
	}
}

// TestRouterAdvertisements (issue 13 item 3): a host on a slaac subnet
// builds its EUI-64 address from the router's advertisement and routes
// through the router's link-local address, with the network's MTU; the
// flags follow the mode when it changes; solicitations are answered; a
// removed subnet withdraws the router.
func TestRouterAdvertisements(t *testing.T) {
	e := newEnv(t)
	vm := e.vm("vmS", netA, nil) // a non-forwarding host: accept_ra=1
	listener := e.vm("vmL", netA, nil)
	// Only the advertisements this test causes: none of the initial burst.
	defer func(v []time.Duration) { raInitial = v }(raInitial)
	raInitial = nil
	l := e.l3(nil)
	r := raRouter("r-ra", agentv1.IPv6SLAAC)
	start := time.Now()
	e.apply(l, r, "router with a slaac subnet")

	h := e.handle(vm)
	eth, err := h.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	want := eui64(raPrefixA, eth.Attrs().HardwareAddr)
	routerLL := eui64(pfx("fe80::/64"), mustMAC(r.Interfaces[0].MAC))
	addr := waitAddr(t, h, eth, want, 10*time.Second)
	t.Logf("SLAAC address %s after %s (flags %#x, valid %ds)", want, time.Since(start).Round(time.Millisecond), addr.Flags, addr.ValidLft)
	if addr.Flags&unix.IFA_F_PERMANENT != 0 || addr.ValidLft <= 0 || addr.ValidLft > int(raValidLifetime/time.Second) {
		t.Errorf("address %s: flags %#x valid %d: not autoconfigured from the advertisement", want, addr.Flags, addr.ValidLft)
	}
	var def *netlink.Route
	for deadline := time.Now().Add(5 * time.Second); def == nil && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		routes, _ := h.RouteList(eth, netlink.FAMILY_V6)
		for _, rt := range routes {
			if rt.Dst == nil || rt.Dst.IP.IsUnspecified() {
				def = &rt
			}
		}
	}
	if def == nil || !def.Gw.Equal(routerLL.AsSlice()) || def.Protocol != unix.RTPROT_RA {
		t.Fatalf("VM default route %+v, want via %s from an RA", def, routerLL)
	}
	if mtu := sysctlIn(t, vm, "net/ipv6/conf/eth0/mtu"); mtu != "1450" {
		t.Errorf("VM IPv6 MTU %s, want the network's 1450", mtu)
	}

	// A listener reads what the router says.
	c := listenNDP(t, listener)
	if err := c.SetControlMessage(ipv6.FlagDst, true); err != nil {
		t.Fatal(err)
	}
	// next returns the next advertisement that match accepts.
	next := func(what string, match func(*ndp.RouterAdvertisement, *ipv6.ControlMessage) bool) *ndp.RouterAdvertisement {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		for {
			m, cm, src, err := c.ReadFrom()
			if err != nil {
				t.Fatalf("%s: no router advertisement: %v", what, err)
			}
			if ra, ok := m.(*ndp.RouterAdvertisement); ok && match(ra, cm) {
				if src.WithZone("") != routerLL {
					t.Errorf("%s: advertisement from %s, want %s", what, src, routerLL)
				}
				return ra
			}
		}
	}
	check := func(what string, ra *ndp.RouterAdvertisement, m, o, a bool) {
		t.Helper()
		var pi *ndp.PrefixInformation
		var mtu *ndp.MTU
		var rdnss *ndp.RecursiveDNSServer
		for _, opt := range ra.Options {
			switch v := opt.(type) {
			case *ndp.PrefixInformation:
				pi = v
			case *ndp.MTU:
				mtu = v
			case *ndp.RecursiveDNSServer:
				rdnss = v
			}
		}
		if ra.ManagedConfiguration != m || ra.OtherConfiguration != o || ra.RouterLifetime != raRouterLifetime {
			t.Errorf("%s: M=%v O=%v lifetime %s, want M=%v O=%v %s", what, ra.ManagedConfiguration, ra.OtherConfiguration, ra.RouterLifetime, m, o, raRouterLifetime)
		}
		if pi == nil || pi.Prefix != raPrefixA.Addr() || pi.PrefixLength != 64 || !pi.OnLink || pi.AutonomousAddressConfiguration != a {
			t.Errorf("%s: prefix option %+v, want %s on-link A=%v", what, pi, raPrefixA, a)
		}
		if mtu == nil || mtu.MTU != 1450 {
			t.Errorf("%s: MTU option %v, want 1450", what, mtu)
		}
		if slaac := a && !o; (rdnss != nil) != slaac || slaac && (len(rdnss.Servers) != 1 || rdnss.Servers[0] != raDNS) {
			t.Errorf("%s: RDNSS %+v, want %s on slaac only", what, rdnss, raDNS)
		}
	}

	// A solicitation is answered, unicast, within MAX_RA_DELAY_TIME.
	sent := time.Now()
	if err := c.WriteTo(&ndp.RouterSolicitation{}, nil, netip.MustParseAddr("ff02::2")); err != nil {
		t.Fatal(err)
	}
	ra := next("solicited", func(_ *ndp.RouterAdvertisement, cm *ipv6.ControlMessage) bool {
		return cm != nil && !cm.Dst.IsMulticast()
	})
	check("solicited", ra, false, false, true)
	if d := time.Since(sent); d > raMaxDelay+time.Second {
		t.Errorf("solicitation answered after %s", d)
	}

	// A new mode is advertised at once.
	e.apply(l, raRouter("r-ra", agentv1.IPv6DHCPv6Stateful), "subnet now dhcpv6-stateful")
	check("dhcpv6-stateful", next("dhcpv6-stateful", func(ra *ndp.RouterAdvertisement, _ *ipv6.ControlMessage) bool {
		return ra.ManagedConfiguration
	}), true, true, false)
	e.apply(l, raRouter("r-ra", agentv1.IPv6DHCPv6Stateless), "subnet now dhcpv6-stateless")
	check("dhcpv6-stateless", next("dhcpv6-stateless", func(ra *ndp.RouterAdvertisement, _ *ipv6.ControlMessage) bool {
		return !ra.ManagedConfiguration
	}), false, true, true)

	// No RA mode any more: a last advertisement withdraws the router.
	e.apply(l, raRouter("r-ra", ""), "no more RA mode")
	next("withdrawn", func(ra *ndp.RouterAdvertisement, _ *ipv6.ControlMessage) bool { return ra.RouterLifetime == 0 })
	if got := len(l.routers["r-ra"].ra); got != 0 {
		t.Errorf("%d senders left", got)
	}
	if err := l.Delete(e.ctx, "r-ra"); err != nil {
		t.Fatal(err)
	}
}

func mustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

// eui64 is the modified EUI-64 address of a MAC in a /64.
func eui64(p netip.Prefix, mac net.HardwareAddr) netip.Addr {
	b := p.Masked().Addr().As16()
	b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15] = mac[0]^2, mac[1], mac[2], 0xff, 0xfe, mac[3], mac[4], mac[5]
	return netip.AddrFrom16(b)
}

// waitAddr waits until the device holds addr, no longer tentative.
func waitAddr(tb testing.TB, h *netlink.Handle, link netlink.Link, addr netip.Addr, timeout time.Duration) netlink.Addr {
	tb.Helper()
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if a, ok := findAddr(h, link, addr); ok && a.Flags&unix.IFA_F_TENTATIVE == 0 {
			return a
		}
	}
	addrs, _ := h.AddrList(link, netlink.FAMILY_V6)
	tb.Fatalf("no address %s after %s; addresses %v", addr, timeout, addrs)
	return netlink.Addr{}
}

func findAddr(h *netlink.Handle, link netlink.Link, addr netip.Addr) (netlink.Addr, bool) {
	addrs, _ := h.AddrList(link, netlink.FAMILY_V6)
	for _, a := range addrs {
		if a.IP.Equal(addr.AsSlice()) {
			return a, true
		}
	}
	return netlink.Addr{}, false
}

func sysctlIn(tb testing.TB, ns netns.NsHandle, key string) string {
	var v string
	if err := namespace.Do(ns, func() error {
		b, err := os.ReadFile("/proc/sys/" + key)
		v = strings.TrimSpace(string(b))
		return err
	}); err != nil {
		tb.Fatal(err)
	}
	return v
}

// listenNDP opens an NDP socket on eth0 of a VM namespace, once its
// link-local address is usable.
func listenNDP(tb testing.TB, ns netns.NsHandle) *ndp.Conn {
	tb.Helper()
	var c *ndp.Conn
	var err error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		err = namespace.Do(ns, func() error {
			ifi, err := net.InterfaceByName("eth0")
			if err != nil {
				return err
			}
			byIndex := *ifi
			byIndex.Name = strconv.Itoa(ifi.Index)
			c, _, err = ndp.Listen(&byIndex, ndp.LinkLocal)
			return err
		})
		if err == nil {
			tb.Cleanup(func() { c.Close() })
			return c
		}
	}
	tb.Fatalf("NDP listener: %v", err)
	return nil
}

// BenchmarkRASLAAC: a router interface with a slaac subnet is applied;
// how long until a host on the network has its SLAAC address (appeared:
// ms/address; usable after its DAD: ms/usable).
func BenchmarkRASLAAC(b *testing.B) {
	e := newEnv(b)
	vm := e.vm("vmS", netA, nil)
	l := e.l3(nil)
	h := e.handle(vm)
	eth, err := h.LinkByName("eth0")
	if err != nil {
		b.Fatal(err)
	}
	want := eui64(raPrefixA, eth.Attrs().HardwareAddr)
	var appeared, usable time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		id := "bench-" + strconv.Itoa(i)
		start := time.Now()
		if err := l.Apply(e.ctx, raRouter(id, agentv1.IPv6SLAAC)); err != nil {
			b.Fatal(err)
		}
		for {
			if _, ok := findAddr(h, eth, want); ok {
				break
			}
			if time.Since(start) > 10*time.Second {
				b.Fatalf("no SLAAC address after 10s")
			}
			time.Sleep(time.Millisecond)
		}
		appeared += time.Since(start)
		waitAddr(b, h, eth, want, 10*time.Second)
		usable += time.Since(start)
		b.StopTimer()
		if err := l.Delete(e.ctx, id); err != nil {
			b.Fatal(err)
		}
		if a, ok := findAddr(h, eth, want); ok {
			if err := h.AddrDel(eth, &a); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(appeared.Milliseconds())/float64(b.N), "ms/address")
	b.ReportMetric(float64(usable.Milliseconds())/float64(b.N), "ms/usable")
}

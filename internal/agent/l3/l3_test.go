package l3

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/neutrino-net/neutrino/internal/namespace"
	"github.com/neutrino-net/neutrino/internal/nstest"
	"github.com/neutrino-net/neutrino/internal/testenv"
)

// The test topology: two tenant networks with a VM each, an external
// network whose gateway ("outside") has no route back to the tenant
// subnets, all bridged in a throw-away host namespace.
const (
	netA   = "a0000000-0000-4000-8000-00000000000a"
	netB   = "b0000000-0000-4000-8000-00000000000b"
	netExt = "e0000000-0000-4000-8000-00000000000e"
	portA  = "1a000000-0000-4000-8000-0000000000a1"
	portB  = "1b000000-0000-4000-8000-0000000000b1"
	portB2 = "1b200000-0000-4000-8000-0000000000b2"
	portGW = "1e000000-0000-4000-8000-0000000000e1"
	portG2 = "2e000000-0000-4000-8000-0000000000e2"
	echoPt = 7777
)

var (
	vmA4  = netip.MustParseAddr("10.0.1.10")
	vmA6  = netip.MustParseAddr("2001:db8:1::10")
	vmB4  = netip.MustParseAddr("10.0.2.10")
	vmB6  = netip.MustParseAddr("2001:db8:2::10")
	out4  = netip.MustParseAddr("203.0.113.1")
	gwIP  = netip.MustParseAddr("203.0.113.10")
	pfx   = netip.MustParsePrefix
	aPort = func(a netip.Addr) netip.AddrPort { return netip.AddrPortFrom(a, echoPt) }
)

func testRouter(id string) agentv1.Router {
	return agentv1.Router{
		ID:           id,
		AdminStateUp: true,
		Gateway: &agentv1.Gateway{
			Interface: agentv1.Interface{PortID: portGW, NetworkID: netExt, MAC: "fa:16:3e:00:00:e1",
				Addresses: []netip.Prefix{pfx("203.0.113.10/24")}, MTU: 1500},
			NextHops: []netip.Addr{out4, netip.MustParseAddr("fe80::1")},
			SNAT:     true,
		},
		Interfaces: []agentv1.Interface{
			{PortID: portA, NetworkID: netA, MAC: "fa:16:3e:00:00:a1", MTU: 1450,
				Addresses: []netip.Prefix{pfx("10.0.1.1/24"), pfx("2001:db8:1::1/64")}},
			{PortID: portB, NetworkID: netB, MAC: "fa:16:3e:00:00:b1", MTU: 1450,
				Addresses: []netip.Prefix{pfx("10.0.2.1/24"), pfx("2001:db8:2::1/64")}},
		},
	}
}

// TestVPNExempt: connections that are up bypass NAT, local x peer CIDRs.
func TestVPNExempt(t *testing.T) {
	r := testRouter("r")
	conn := func(id string, up bool, local, peer []string) agentv1.IPsecConnection {
		return agentv1.IPsecConnection{ID: id, AdminStateUp: up, LocalCIDRs: local, PeerCIDRs: peer}
	}
	r.VPNServices = []agentv1.VPNService{
		{ID: "s1", AdminStateUp: true, Connections: []agentv1.IPsecConnection{
			conn("c1", true, []string{"10.0.1.0/24", "10.0.2.0/24"}, []string{"192.168.5.0/24"}),
			conn("c2", false, []string{"10.0.1.0/24"}, []string{"192.168.6.0/24"}),
		}},
		{ID: "s2", AdminStateUp: false, Connections: []agentv1.IPsecConnection{
			conn("c3", true, []string{"10.0.1.0/24"}, []string{"192.168.7.0/24"}),
		}},
	}
	var got []string
	for _, p := range VPNExempt(r) {
		got = append(got, p.Src.String()+">"+p.Dst.String())
	}
	want := []string{"10.0.1.0/24>192.168.5.0/24", "10.0.2.0/24>192.168.5.0/24"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("exempt pairs (-want +got):\n%s", d)
	}
}

// TestDesired checks the canonical spec without a kernel.
func TestDesired(t *testing.T) {
	r := testRouter("r")
	r.Routes = []agentv1.Route{
		{Destination: pfx("10.9.0.0/16"), NextHop: netip.MustParseAddr("10.0.2.30")},
		{Destination: pfx("10.9.1.2/16"), NextHop: netip.MustParseAddr("10.0.2.20")},
	}
	s, err := desired(r, []ExemptPair{{Src: pfx("10.0.1.0/24"), Dst: pfx("192.168.0.0/16")}, {Src: pfx("2001:db8::/64"), Dst: pfx("2001:db8:9::/64")}})
	if err != nil {
		t.Fatal(err)
	}
	var routes, rules []string
	for _, r := range s.routes {
		routes = append(routes, r.String())
	}
	for _, r := range s.nft {
		rules = append(rules, r.chain+": "+r.String())
	}
	want := []string{"0.0.0.0/0 via 203.0.113.1 dev qg-1e000000-00", "10.9.0.0/16 via 10.0.2.20 via 10.0.2.30", "::/0 via fe80::1 dev qg-1e000000-00"}
	if d := cmp.Diff(want, routes); d != "" {
		t.Errorf("routes (-want +got):\n%s", d)
	}
	wantRules := []string{
		`forward: iifname "ipsec0" accept`,
		`forward: oifname "ipsec0" accept`,
		`postrouting: oifname "qg-1e000000-00" ip saddr 10.0.1.0/24 ip daddr 192.168.0.0/16 accept`,
		`postrouting: oifname "qg-1e000000-00" ip daddr 10.0.1.0/24 accept`,
		`postrouting: oifname "qg-1e000000-00" ip daddr 10.0.2.0/24 accept`,
		`postrouting: oifname "qg-1e000000-00" ip saddr 10.0.1.0/24 snat ip to 203.0.113.10`,
		`postrouting: oifname "qg-1e000000-00" ip saddr 10.0.2.0/24 snat ip to 203.0.113.10`,
	}
	if d := cmp.Diff(wantRules, rules); d != "" {
		t.Errorf("nft rules (-want +got):\n%s", d)
	}
	r.Gateway.SNAT = false
	if s, _ := desired(r, nil); len(s.nft) != 2 {
		t.Errorf("SNAT off: rules %v, want only the forward ones", s.nft)
	}
	r.Interfaces = append(r.Interfaces, agentv1.Interface{PortID: portA[:12] + "x", NetworkID: netB})
	if _, err := desired(r, nil); err == nil {
		t.Error("two ports with one device name: no error")
	}
	if err := New(Options{}).Apply(context.Background(), agentv1.Router{ID: "../x", AdminStateUp: true}); err == nil {
		t.Error("router id with a slash: no error")
	}
}

// TestTraffic proves east-west forwarding, SNAT of internal traffic only,
// the NAT exemption, SNAT off, and that a repeated Apply writes nothing.
func TestTraffic(t *testing.T) {
	e := newEnv(t)
	var exempt []ExemptPair
	l := e.l3(func(string) []ExemptPair { return exempt })
	r := testRouter("r1")
	e.apply(l, r, "first apply")

	a, outside := e.udp(e.vmA), e.echo(e.outside)
	e.echo(e.vmB)
	e.reach(a, aPort(vmB4), vmA4.String()) // east-west, not translated
	e.reach(a, aPort(vmB6), vmA6.String()) // IPv6 too
	e.reach(a, aPort(out4), gwIP.String()) // north-south, translated
	e.reach(e.udp(e.vmB), aPort(out4), gwIP.String())

	// The router's own traffic (IKE from port 500) is not translated.
	var ike *net.UDPConn
	if err := namespace.Do(e.ns(r.ID), func() (err error) {
		ike, err = net.ListenUDP("udp4", &net.UDPAddr{IP: gwIP.AsSlice(), Port: 500})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ike.Close()
	if src, err := probe(ike, aPort(out4), seq.Add(1), 2*time.Second); err != nil || src != "203.0.113.10:500" {
		t.Errorf("router's own datagram from port 500: outside saw %q (%v), want 203.0.113.10:500", src, err)
	}

	waitAnnounced(l)
	before, sent := l.writes.Load(), l.announces.Load()
	e.apply(l, r, "second apply")
	waitAnnounced(l)
	if n := l.writes.Load() - before; n != 0 {
		t.Errorf("second apply: %d kernel writes, want 0", n)
	}
	if n := l.announces.Load() - sent; n != 0 {
		t.Errorf("second apply: %d address announcements, want 0", n)
	}

	have := e.nftRules(r.ID)
	if d := cmp.Diff([]string{`iifname "ipsec0" accept`, `oifname "ipsec0" accept`}, have[chainFwd]); d != "" {
		t.Errorf("forward chain (-want +got):\n%s", d)
	}

	// NAT bypass: A's subnet reaches the external subnet untranslated (the
	// outside is given a route back for this), B's is still translated.
	back := &netlink.Route{Dst: toIPNet(pfx("10.0.1.0/24")), Gw: gwIP.AsSlice()}
	if err := e.handle(e.outside).RouteAdd(back); err != nil {
		t.Fatal(err)
	}
	exempt = []ExemptPair{{Src: pfx("10.0.1.0/24"), Dst: pfx("203.0.113.0/24")}}
	e.apply(l, r, "apply with a NAT exemption")
	e.reach(a, aPort(out4), vmA4.String()) // the flow SNATed before: its conntrack entry was flushed
	e.reach(e.udp(e.vmA), aPort(out4), vmA4.String())
	e.reach(e.udp(e.vmB), aPort(out4), gwIP.String())
	if err := e.handle(e.outside).RouteDel(back); err != nil {
		t.Fatal(err)
	}
	exempt = nil

	// SNAT off: the outside sees the tenant address and cannot answer.
	r.Gateway.SNAT = false
	e.apply(l, r, "apply with SNAT off")
	drain(outside)
	if src, err := probe(e.udp(e.vmA), aPort(out4), 1, time.Second); err == nil {
		t.Errorf("SNAT off: outside answered (saw %s), want no route back", src)
	}
	select {
	case src := <-outside:
		if src != vmA4 {
			t.Errorf("SNAT off: outside saw %s, want %s", src, vmA4)
		}
	case <-time.After(2 * time.Second):
		t.Error("SNAT off: nothing reached the outside")
	}
	if got := e.nftRules(r.ID)[chainPost]; len(got) != 0 {
		t.Errorf("SNAT off: postrouting rules %q, want none", got)
	}
	r.Gateway.SNAT = true
	e.apply(l, r, "apply with SNAT on again")
	e.reach(e.udp(e.vmA), aPort(out4), gwIP.String())
}

// TestDiff proves that a changed router gets only the difference, additions
// before removals.
func TestDiff(t *testing.T) {
	e := newEnv(t)
	l := e.l3(nil)
	ops, anns := record(l), recordAnnounces(l)
	r := testRouter("r1")
	e.apply(l, r, "first apply")
	tapA := e.index(e.host, "rtr"+portA[:11])
	waitAnnounced(l)
	ops()
	anns()

	var announced []string // what the next step announces
	step := func(name string, want ...string) {
		t.Helper()
		e.apply(l, r, name)
		if d := cmp.Diff(want, ops()); d != "" {
			t.Errorf("%s: kernel writes (-want +got):\n%s", name, d)
		}
		waitAnnounced(l)
		if d := diffOps(announced, anns()); d != "" {
			t.Errorf("%s: address announcements: %s", name, d)
		}
		announced = nil
	}
	gw20, gw30 := netip.MustParseAddr("10.0.2.20"), netip.MustParseAddr("10.0.2.30")
	r.Routes = []agentv1.Route{{Destination: pfx("10.99.0.0/16"), NextHop: gw20}}
	step("add a route", "route replace 10.99.0.0/16 via 10.0.2.20")
	r.Routes = []agentv1.Route{{Destination: pfx("10.98.0.0/16"), NextHop: gw20}, {Destination: pfx("10.99.0.0/16"), NextHop: gw30}}
	step("replace routes", "route replace 10.98.0.0/16 via 10.0.2.20", "route replace 10.99.0.0/16 via 10.0.2.30")
	r.Routes = r.Routes[:1]
	step("remove a route", "route del 10.99.0.0/16")
	if got := e.routes(r.ID); !cmp.Equal(got, []string{"0.0.0.0/0 via 203.0.113.1", "10.98.0.0/16 via 10.0.2.20", "::/0 via fe80::1"}) {
		t.Errorf("routes in the kernel: %q", got)
	}
	r.Routes = nil
	step("remove all routes", "route del 10.98.0.0/16")

	r.Interfaces[1].Addresses = []netip.Prefix{pfx("10.0.3.1/24"), pfx("2001:db8:2::1/64")}
	announced = announceOps("qr-"+portB[:11], "fa:16:3e:00:00:b1", "10.0.3.1")
	step("renumber B", "addr add 10.0.3.1/24 dev qr-1b000000-00", "nft rebuild table inet neutrino-nat",
		"addr del 10.0.2.1/24 dev qr-1b000000-00")

	r.Interfaces = append(r.Interfaces[:1], agentv1.Interface{PortID: portB2, NetworkID: netB, MAC: "fa:16:3e:00:00:b2",
		Addresses: []netip.Prefix{pfx("10.0.2.1/24")}})
	announced = announceOps("qr-"+portB2[:11], "fa:16:3e:00:00:b2", "10.0.2.1")
	step("swap B's port", "link add rtr1b200000-00 type veth peer qr-1b200000-00 master brqb0000000-00",
		"link set up qr-1b200000-00", "addr add 10.0.2.1/24 dev qr-1b200000-00", "nft rebuild table inet neutrino-nat",
		"link del qr-1b000000-00")

	r.Interfaces = r.Interfaces[:1]
	step("remove B", "nft rebuild table inet neutrino-nat", "link del qr-1b200000-00")
	for _, name := range []string{"rtr" + portB[:11], "rtr" + portB2[:11]} {
		if _, err := e.handle(e.host).LinkByName(name); err == nil {
			t.Errorf("%s still in the host namespace", name)
		}
	}
	if got := e.index(e.host, "rtr"+portA[:11]); got != tapA {
		t.Errorf("A's veth was recreated (index %d, was %d)", got, tapA)
	}
	e.echo(e.outside)
	e.reach(e.udp(e.vmA), aPort(out4), gwIP.String())
	step("same again")
}

// TestDelete proves that Delete (and admin state down) removes everything
// the router owned and tolerates what is already gone.
func TestDelete(t *testing.T) {
	e := newEnv(t)
	l := e.l3(nil)
	r := testRouter("r1")
	e.apply(l, r, "apply")
	keep, err := netns.GetFromPath(filepath.Join(e.dir, "qrouter-r1")) // outlives the file
	if err != nil {
		t.Fatal(err)
	}
	defer keep.Close()

	start := time.Now()
	if err := l.Delete(e.ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	t.Logf("delete: %v", time.Since(start))
	e.assertGone(r.ID, portA, portB, portGW)
	for _, link := range e.links(keep) {
		if link != "lo" {
			t.Errorf("link %s left in the router namespace", link)
		}
	}
	c, err := nftables.New(nftables.WithNetNSFd(int(keep)))
	if err != nil {
		t.Fatal(err)
	}
	if _, exists, err := readNFT(c); err != nil || exists {
		t.Errorf("nft table left behind (err %v)", err)
	}

	before := l.writes.Load()
	if err := l.Delete(e.ctx, r.ID); err != nil {
		t.Errorf("second delete: %v", err)
	}
	if err := l.Delete(e.ctx, "never-existed"); err != nil {
		t.Errorf("delete of an unknown router: %v", err)
	}
	if n := l.writes.Load() - before; n != 0 {
		t.Errorf("deleting what is gone: %d writes", n)
	}

	e.apply(l, r, "apply again")
	r.AdminStateUp = false
	e.apply(l, r, "admin state down")
	e.assertGone(r.ID, portA, portB, portGW)
}

// TestSweep proves that a fresh L3 adopts a wanted router without a single
// write or a lost packet, and removes an unwanted one.
func TestSweep(t *testing.T) {
	e := newEnv(t)
	old := e.l3(nil)
	r1, r2 := testRouter("r1"), agentv1.Router{ID: "r2", AdminStateUp: true, Gateway: &agentv1.Gateway{
		Interface: agentv1.Interface{PortID: portG2, NetworkID: netExt, Addresses: []netip.Prefix{pfx("203.0.113.20/24")}},
		NextHops:  []netip.Addr{out4}, SNAT: true}}
	r1.Routes = []agentv1.Route{{Destination: pfx("10.98.0.0/16"), NextHop: netip.MustParseAddr("10.0.2.20")}}
	e.apply(old, r1, "apply r1")
	e.apply(old, r2, "apply r2")
	other := filepath.Join(e.dir, "not-a-router")
	if err := os.WriteFile(other, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	e.echo(e.vmB)
	e.echo(e.outside)
	e.reach(e.udp(e.vmA), aPort(vmB4), vmA4.String())
	e.reach(e.udp(e.vmA), aPort(out4), gwIP.String())
	qrA := e.index(e.ns(r1.ID), "qr-"+portA[:11])
	old.Close() // the agent stops; its routers keep running

	east, north := e.loop(e.udp(e.vmA), aPort(vmB4)), e.loop(e.udp(e.vmA), aPort(out4))
	time.Sleep(100 * time.Millisecond)
	l := e.l3(nil)
	ops := record(l)
	start := time.Now()
	if err := l.Sweep(e.ctx, []string{r1.ID}); err != nil {
		t.Fatal(err)
	}
	e.apply(l, r1, "adopting apply")
	t.Logf("sweep and adopting apply: %v", time.Since(start))
	want := []string{"link del qg-2e000000-00", "nft delete table inet neutrino-nat", "netns del qrouter-r2"}
	if d := cmp.Diff(want, ops()); d != "" {
		t.Errorf("sweep and adopting apply: kernel writes (-want +got):\n%s", d)
	}
	waitAnnounced(l)
	if n := l.announces.Load(); n != 0 {
		t.Errorf("sweep and adopting apply: %d address announcements, want 0", n)
	}
	time.Sleep(200 * time.Millisecond)
	for name, lp := range map[string]*pingLoop{"east-west": east, "north-south": north} {
		sent, lost := lp.stop()
		t.Logf("%s probes across the restart: %d sent, %d lost", name, sent, lost)
		if sent < 10 || lost != 0 {
			t.Errorf("%s probes across the restart: %d sent, %d lost", name, sent, lost)
		}
	}
	e.assertGone(r2.ID, portG2)
	if _, err := os.Stat(filepath.Join(e.dir, "qrouter-r1")); err != nil {
		t.Errorf("wanted router swept: %v", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("a file Neutrino does not own was swept: %v", err)
	}
	if got := e.index(e.ns(r1.ID), "qr-"+portA[:11]); got != qrA {
		t.Errorf("adopted veth recreated (index %d, was %d)", got, qrA)
	}
}

// env is one test's world: a throw-away host namespace with the bridges,
// VM and outside namespaces, and a namespace directory of its own.
type env struct {
	t                 testing.TB
	ctx               context.Context
	host              netns.NsHandle
	dir               string
	vmA, vmB, outside netns.NsHandle
	mu                sync.Mutex
	handles           map[netns.NsHandle]*netlink.Handle
	routerNS          map[string]netns.NsHandle
}

func newEnv(t testing.TB) *env {
	// Router namespaces are bind-mounted, so Mounting too.
	testenv.RequireKernel(t, testenv.Bridge, testenv.Veth, testenv.NFTNAT, testenv.Mounting)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	e := &env{t: t, ctx: ctx, handles: map[netns.NsHandle]*netlink.Handle{}, routerNS: map[string]netns.NsHandle{}}
	t.Cleanup(e.close)
	e.host = e.newNS()
	e.dir = e.nsDir()
	h := e.handle(e.host)
	for _, n := range []string{netA, netB, netExt} {
		attrs := netlink.NewLinkAttrs()
		attrs.Name, attrs.Flags = agentv1.DeviceName(agentv1.BridgePrefix, n), net.FlagUp
		if err := h.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil {
			t.Fatalf("bridge: %v", err)
		}
	}
	e.vmA = e.vm("vmA", netA, []string{"10.0.1.10/24", "2001:db8:1::10/64"}, "10.0.1.1", "2001:db8:1::1")
	e.vmB = e.vm("vmB", netB, []string{"10.0.2.10/24", "2001:db8:2::10/64"}, "10.0.2.1", "2001:db8:2::1")
	e.outside = e.vm("out", netExt, []string{"203.0.113.1/24"}) // no route back
	return e
}

// close releases everything; the namespaces, and all links in them, go
// with the last reference.
func (e *env) close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, h := range e.handles {
		h.Close()
	}
	for _, ns := range e.routerNS {
		ns.Close()
	}
}

func newNS() (netns.NsHandle, error) {
	ns := netns.None()
	err := namespace.OnThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return err
		}
		var err error
		ns, err = netns.Get()
		return err
	})
	return ns, err
}

func (e *env) newNS() netns.NsHandle {
	ns, err := newNS()
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { ns.Close() })
	return ns
}

// nsDir is a directory for the router namespaces (nstest.Dir); the
// namespaces left in it are removed when the test ends.
func (e *env) nsDir() string {
	dir, rm := nstest.Dir(e.t, "neutrino-test")
	e.t.Cleanup(rm)
	e.t.Cleanup(func() {
		entries, _ := os.ReadDir(dir)
		for _, en := range entries {
			if err := namespace.RemoveNamed(filepath.Join(dir, en.Name())); err != nil {
				e.t.Errorf("cleanup %s: %v", en.Name(), err)
			}
		}
	})
	return dir
}

func (e *env) handle(ns netns.NsHandle) *netlink.Handle {
	e.mu.Lock()
	defer e.mu.Unlock()
	if h := e.handles[ns]; h != nil {
		return h
	}
	h, err := newHandle(ns)
	if err != nil {
		e.t.Fatal(err)
	}
	e.handles[ns] = h
	return h
}

// ns opens a router's namespace (kept open until the test ends).
func (e *env) ns(routerID string) netns.NsHandle {
	e.mu.Lock()
	defer e.mu.Unlock()
	if ns, ok := e.routerNS[routerID]; ok {
		return ns
	}
	ns, err := netns.GetFromPath(filepath.Join(e.dir, agentv1.RouterNamespace(routerID)))
	if err != nil {
		e.t.Fatal(err)
	}
	e.routerNS[routerID] = ns
	return ns
}

// vm builds a namespace plugged into a network's bridge by a plain veth.
func (e *env) vm(name, network string, addrs []string, gateways ...string) netns.NsHandle {
	t := e.t
	ns := e.newNS()
	host, h := e.handle(e.host), e.handle(ns)
	br, err := host.LinkByName(agentv1.DeviceName(agentv1.BridgePrefix, network))
	if err != nil {
		t.Fatal(err)
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name, attrs.MasterIndex, attrs.Flags = name, br.Attrs().Index, net.FlagUp
	if err := host.LinkAdd(&netlink.Veth{LinkAttrs: attrs, PeerName: "eth0", PeerNamespace: netlink.NsFd(ns)}); err != nil {
		t.Fatal(err)
	}
	for _, dev := range []string{"lo", "eth0"} {
		link, err := h.LinkByName(dev)
		if err == nil {
			err = h.LinkSetUp(link)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	eth, _ := h.LinkByName("eth0")
	for _, a := range addrs {
		if err := h.AddrAdd(eth, toAddr(pfx(a))); err != nil {
			t.Fatal(err)
		}
	}
	for _, g := range gateways {
		gw := netip.MustParseAddr(g)
		def := pfx("0.0.0.0/0")
		if gw.Is6() {
			def = pfx("::/0")
		}
		if err := h.RouteAdd(&netlink.Route{Dst: toIPNet(def), Gw: gw.AsSlice()}); err != nil {
			t.Fatal(err)
		}
	}
	return ns
}

func (e *env) l3(exempt func(string) []ExemptPair) *L3 {
	log := slog.New(slog.NewTextHandler(e.t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	l := New(Options{HostNS: e.host, NetnsDir: e.dir, Logger: log, NATExempt: exempt})
	e.t.Cleanup(func() { l.Close() })
	return l
}

func (e *env) apply(l *L3, r agentv1.Router, what string) {
	e.t.Helper()
	start, before := time.Now(), l.writes.Load()
	if err := l.Apply(e.ctx, r); err != nil {
		e.t.Fatalf("%s: %v", what, err)
	}
	e.t.Logf("%s: %v, %d kernel writes", what, time.Since(start), l.writes.Load()-before)
}

// record collects the names of the kernel writes of l; the returned
// function hands them over and starts afresh.
func record(l *L3) func() []string { return recorder(&l.onWrite) }

// recorder sets hook to collect what it is called with; the returned
// function hands that over and starts afresh.
func recorder(hook *func(string)) func() []string {
	var mu sync.Mutex
	var ops []string
	*hook = func(op string) {
		mu.Lock()
		ops = append(ops, op)
		mu.Unlock()
	}
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		got := ops
		ops = nil
		return got
	}
}

func (e *env) links(ns netns.NsHandle) []string {
	links, err := e.handle(ns).LinkList()
	if err != nil {
		e.t.Fatal(err)
	}
	var names []string
	for _, l := range links {
		names = append(names, l.Attrs().Name)
	}
	return names
}

func (e *env) index(ns netns.NsHandle, name string) int {
	link, err := e.handle(ns).LinkByName(name)
	if err != nil {
		e.t.Fatalf("%s: %v", name, err)
	}
	return link.Attrs().Index
}

func (e *env) routes(routerID string) []string {
	have, err := e.handle(e.ns(routerID)).RouteListFiltered(netlink.FAMILY_ALL,
		&netlink.Route{Protocol: routeProtocol}, netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		e.t.Fatal(err)
	}
	var got []string
	for _, r := range have {
		got = append(got, fmt.Sprintf("%s via %s", r.Dst, r.Gw))
	}
	return got
}

func (e *env) nftRules(routerID string) map[string][]string {
	c, err := nftables.New(nftables.WithNetNSFd(int(e.ns(routerID))))
	if err != nil {
		e.t.Fatal(err)
	}
	have, _, err := readNFT(c)
	if err != nil {
		e.t.Fatal(err)
	}
	return have
}

// assertGone checks that nothing of a router is left: no namespace file
// and no host end of the veths of its ports.
func (e *env) assertGone(routerID string, ports ...string) {
	e.t.Helper()
	if _, err := os.Lstat(filepath.Join(e.dir, agentv1.RouterNamespace(routerID))); !errors.Is(err, os.ErrNotExist) {
		e.t.Errorf("namespace of %s left behind (%v)", routerID, err)
	}
	e.mu.Lock()
	if ns, ok := e.routerNS[routerID]; ok {
		ns.Close()
		delete(e.routerNS, routerID)
	}
	e.mu.Unlock()
	for _, name := range e.links(e.host) {
		for _, port := range ports {
			if name == agentv1.DeviceName(agentv1.RouterTapPrefix, port) {
				e.t.Errorf("veth %s left in the host namespace", name)
			}
		}
	}
}

// echo serves UDP in ns: each datagram comes back as "<payload> <source
// address:port>"; the source addresses are also sent on the returned channel.
func (e *env) echo(ns netns.NsHandle) <-chan netip.Addr {
	var c *net.UDPConn
	if err := namespace.Do(ns, func() (err error) {
		c, err = net.ListenUDP("udp", &net.UDPAddr{Port: echoPt})
		return err
	}); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	seen := make(chan netip.Addr, 4096)
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return // closed
			}
			src := from.Addr().Unmap()
			select {
			case seen <- src:
			default:
			}
			reply := fmt.Appendf(nil, "%s %s", buf[:n], netip.AddrPortFrom(src, from.Port()))
			c.WriteToUDPAddrPort(reply, from) // may have no route back
		}
	}()
	return seen
}

// udp opens a UDP socket in ns.
func (e *env) udp(ns netns.NsHandle) *net.UDPConn {
	var c *net.UDPConn
	if err := namespace.Do(ns, func() (err error) {
		c, err = net.ListenUDP("udp", &net.UDPAddr{})
		return err
	}); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

var seq atomic.Uint64

// probe sends one datagram to an echo server and returns the source
// (address:port) the server saw.
func probe(c *net.UDPConn, dst netip.AddrPort, n uint64, timeout time.Duration) (string, error) {
	msg := strconv.FormatUint(n, 10)
	if _, err := c.WriteToUDPAddrPort([]byte(msg), dst); err != nil {
		return "", err
	}
	if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return "", err
	}
	buf := make([]byte, 512)
	for {
		n, _, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return "", err
		}
		if got, src, _ := strings.Cut(string(buf[:n]), " "); got == msg {
			return src, nil
		}
	}
}

// reach checks, within a few seconds, that dst answers and saw wantSrc.
func (e *env) reach(c *net.UDPConn, dst netip.AddrPort, wantSrc string) {
	e.t.Helper()
	var src string
	var err error
	start := time.Now()
	for try := range 10 {
		if src, err = probe(c, dst, seq.Add(1), 300*time.Millisecond); err == nil {
			if try > 0 {
				e.t.Logf("%s answered after %d lost probes (%v)", dst, try, time.Since(start))
			}
			break
		}
	}
	if err != nil {
		e.t.Errorf("%s -> %s: %v", c.LocalAddr(), dst, err)
		return
	}
	if ap, perr := netip.ParseAddrPort(src); perr != nil || ap.Addr().String() != wantSrc {
		e.t.Errorf("%s: saw the source %s, want %s", dst, src, wantSrc)
	}
}

func drain(ch <-chan netip.Addr) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

// pingLoop probes dst every 10 ms and counts the answers that did not come.
type pingLoop struct {
	sent, lost atomic.Int64
	done       chan struct{}
	stopped    chan struct{}
}

func (e *env) loop(c *net.UDPConn, dst netip.AddrPort) *pingLoop {
	lp := &pingLoop{done: make(chan struct{}), stopped: make(chan struct{})}
	go func() {
		defer close(lp.stopped)
		deadline := time.After(30 * time.Second) // bound even if never stopped
		for {
			select {
			case <-lp.done:
				return
			case <-deadline:
				return
			case <-time.After(10 * time.Millisecond):
			}
			lp.sent.Add(1)
			if _, err := probe(c, dst, seq.Add(1), 500*time.Millisecond); err != nil {
				lp.lost.Add(1)
			}
		}
	}()
	e.t.Cleanup(func() { lp.stop() })
	return lp
}

func (lp *pingLoop) stop() (sent, lost int64) {
	select {
	case <-lp.done:
	default:
		close(lp.done)
	}
	<-lp.stopped
	return lp.sent.Load(), lp.lost.Load()
}

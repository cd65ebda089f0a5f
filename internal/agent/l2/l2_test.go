package l2

// These tests run against the real kernel. Each builds throw-away "host"
// namespaces (each with its own L2 and NetnsDir) and VM namespaces; nothing
// touches the machine's own namespace. Without root or the kernel
// features they use they fail under CI=true and skip, with the reason,
// elsewhere (internal/testenv).

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/neutrino-net/neutrino/internal/nstest"
	"github.com/neutrino-net/neutrino/internal/testenv"
)

// testNS is a throw-away namespace, bound to dir/name when named.
type testNS struct {
	netns.NsHandle
	path string
	once sync.Once
}

// remove unbinds and releases the namespace; the kernel then destroys it
// with its links.
func (n *testNS) remove() {
	n.once.Do(func() {
		if n.path != "" {
			_ = unix.Unmount(n.path, unix.MNT_DETACH)
			_ = os.Remove(n.path)
		}
		_ = n.Close()
	})
}

func newNS(t *testing.T, dir, name string) *testNS {
	t.Helper()
	h := netns.None()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		if h, err = netns.New(); err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		if err = netns.Set(orig); err == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	if err := <-errc; err != nil {
		if h.IsOpen() {
			h.Close()
		}
		t.Fatalf("cannot create a network namespace: %v", err)
	}
	n := &testNS{NsHandle: h}
	t.Cleanup(n.remove)
	if name != "" {
		n.path = filepath.Join(dir, name)
		if err := os.WriteFile(n.path, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mount(fmt.Sprintf("/proc/self/fd/%d", int(h)), n.path, "", unix.MS_BIND, ""); err != nil {
			t.Fatalf("bind namespace to %s: %v", n.path, err)
		}
	}
	return n
}

// nsDir returns a directory for named namespaces: t.TempDir when bind
// mounts work there, else a fresh directory under /run.
func nsDir(t *testing.T) string {
	t.Helper()
	testenv.RequireKernel(t, testenv.Bridge, testenv.Veth, testenv.VXLAN, testenv.Mounting)
	dir, rm := nstest.Dir(t, "neutrino-test")
	t.Cleanup(rm)
	return dir
}

// host is one simulated hypervisor: a namespace, its NetnsDir and its L2,
// whose writes are recorded.
type host struct {
	t   *testing.T
	ns  *testNS
	dir string
	l2  *L2
	h   *netlink.Handle

	mu  sync.Mutex
	ops []string
}

func newHost(t *testing.T, underlay netip.Addr, vtep string) *host {
	t.Helper()
	h := &host{t: t, dir: nsDir(t)}
	h.ns = newNS(t, "", "")
	var err error
	if h.h, err = netlink.NewHandleAt(h.ns.NsHandle); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.h.Close)
	h.l2 = h.newL2(underlay, vtep)
	return h
}

// newL2 starts an L2 on the host, as the agent does on each start.
func (h *host) newL2(underlay netip.Addr, vtep string, tune ...func(*Options)) *L2 {
	h.t.Helper()
	o := Options{HostNS: h.ns.NsHandle, NetnsDir: h.dir, UnderlayIP: underlay, VXLANDevice: vtep,
		Logger: slog.New(slog.NewTextHandler(h.t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))}
	for _, f := range tune {
		f(&o)
	}
	l, err := New(o)
	if err != nil {
		h.t.Fatalf("new l2: %v", err)
	}
	h.t.Cleanup(func() { _ = l.Close() })
	l.dp.(*linux).record = func(op string) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.ops = append(h.ops, op)
	}
	return l
}

// take returns the writes made since the last take.
func (h *host) take() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	ops := h.ops
	h.ops = nil
	return ops
}

func (h *host) apply(nets []agentv1.Network, ports []agentv1.Port) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.l2.Apply(ctx, nets, ports); err != nil {
		h.t.Fatalf("apply: %v", err)
	}
}

// vm makes a VM namespace on the host.
func (h *host) vm(name string) *testNS { return newNS(h.t, h.dir, name) }

func (h *host) link(name string) netlink.Link { return findLink(h.t, h.h, name) }

func findLink(t *testing.T, h *netlink.Handle, name string) netlink.Link {
	t.Helper()
	l, err := linkByName(h, name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func vmLink(t *testing.T, ns *testNS, name string) netlink.Link {
	t.Helper()
	h, err := netlink.NewHandleAt(ns.NsHandle)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	return findLink(t, h, name)
}

func vmDo(t *testing.T, ns *testNS, fn func(h *netlink.Handle, l netlink.Link) error, dev string) {
	t.Helper()
	h, err := netlink.NewHandleAt(ns.NsHandle)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	l := findLink(t, h, dev)
	if l == nil {
		t.Fatalf("no %s in the VM", dev)
	}
	if err := fn(h, l); err != nil {
		t.Fatal(err)
	}
}

// addAddr adds an address inside a VM as its workload would.
func addAddr(t *testing.T, ns *testNS, dev, prefix string) {
	t.Helper()
	vmDo(t, ns, func(h *netlink.Handle, l netlink.Link) error {
		return h.AddrAdd(l, &netlink.Addr{IPNet: prefixNet(netip.MustParsePrefix(prefix)), Flags: unix.IFA_F_NODAD})
	}, dev)
}

// ping sends ICMP echo requests from src in ns to dst, one a second for
// tries seconds, and reports whether a reply came.
func ping(t *testing.T, ns *testNS, src, dst string, tries int) bool {
	t.Helper()
	_, ok := nstest.NewPinger(t, ns.NsHandle, src, dst).Reach(time.Second, time.Duration(tries)*time.Second)
	return ok
}

// waitUp waits (at most 3s) until the kernel reports a device
// operationally up: until then a fresh veth drops what it is given.
func waitUp(t *testing.T, ns *testNS, dev string) {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if l := vmLink(t, ns, dev); l != nil && l.Attrs().OperState == netlink.OperUp {
			return
		}
	}
	t.Fatalf("%s not operationally up after 3s", dev)
}

func mustPing(t *testing.T, ns *testNS, src, dst string) {
	t.Helper()
	if !ping(t, ns, src, dst, 3) {
		t.Errorf("ping %s -> %s: no reply, want one", src, dst)
	}
}

func mustNotPing(t *testing.T, ns *testNS, src, dst string) {
	t.Helper()
	if ping(t, ns, src, dst, 1) {
		t.Errorf("ping %s -> %s: reply, want none", src, dst)
	}
}

const (
	// Device names keep an id's first characters: these must differ.
	net1  = "1a2b3c4d-0001-4000-8000-000000000001"
	net2  = "2b3c4d5e-0002-4000-8000-000000000002"
	port1 = "a0e1d2c3-0001-4000-8000-00000000000a"
	port2 = "b0e1d2c3-0002-4000-8000-00000000000b"
	port3 = "c0e1d2c3-0003-4000-8000-00000000000c"
)

func network(id string, vni uint32, peers ...string) agentv1.Network {
	n := agentv1.Network{ID: id, VNI: vni, MTU: 1450}
	for _, p := range peers {
		n.Peers = append(n.Peers, netip.MustParseAddr(p))
	}
	return n
}

func vmPort(id, networkID, mac, netnsName string, secure bool, addrs ...string) agentv1.Port {
	p := agentv1.Port{Interface: agentv1.Interface{PortID: id, NetworkID: networkID, MAC: mac},
		AdminStateUp: true, PortSecurity: secure, Netns: netnsName,
		Gateways: []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("fd00::1")}}
	for _, a := range addrs {
		p.Addresses = append(p.Addresses, netip.MustParsePrefix(a))
	}
	return p
}

func tap(id string) string   { return agentv1.DeviceName(agentv1.TapPrefix, id) }
func nsDev(id string) string { return agentv1.DeviceName(NamespacePortPrefix, id) }
func bridge(id string) string {
	return agentv1.DeviceName(agentv1.BridgePrefix, id)
}
func vxlan(id string) string { return agentv1.DeviceName(agentv1.VXLANPrefix, id) }

// TestTwoPortsOneHost wires two VMs on one network of one host and pings
// between them over IPv4 and IPv6.
func TestTwoPortsOneHost(t *testing.T) {
	h := newHost(t, netip.Addr{}, "")
	vm1, vm2 := h.vm("vm1"), h.vm("vm2")
	nets := []agentv1.Network{network(net1, 101)}
	ports := []agentv1.Port{
		vmPort(port1, net1, "fa:16:3e:00:00:01", "vm1", false, "10.0.0.5/24", "fd00::5/64"),
		vmPort(port2, net1, "fa:16:3e:00:00:02", "vm2", false, "10.0.0.6/24", "fd00::6/64"),
	}
	h.apply(nets, ports)

	br := h.link(bridge(net1))
	if br == nil || br.Type() != "bridge" || br.Attrs().MTU != 1450 || br.Attrs().Flags&net.FlagUp == 0 {
		t.Fatalf("bridge %s: %+v, want an up bridge with MTU 1450", bridge(net1), br)
	}
	if h.link(vxlan(net1)) != nil {
		t.Error("vxlan device for a network without peers")
	}
	for _, p := range ports {
		if !h.l2.PortReady(p.PortID) {
			t.Errorf("port %s not ready", p.PortID)
		}
		if l := h.link(tap(p.PortID)); l == nil || l.Attrs().MasterIndex != br.Attrs().Index || l.Attrs().MTU != 1450 {
			t.Errorf("tap %s: %+v, want it in %s with MTU 1450", tap(p.PortID), l, bridge(net1))
		}
	}
	dev := vmLink(t, vm1, nsDev(port1))
	if dev == nil || dev.Attrs().HardwareAddr.String() != "fa:16:3e:00:00:01" || dev.Attrs().MTU != 1450 {
		t.Fatalf("VM device %s: %+v", nsDev(port1), dev)
	}
	vmDo(t, vm1, func(h *netlink.Handle, l netlink.Link) error {
		for _, fam := range []int{unix.AF_INET, unix.AF_INET6} {
			routes, err := h.RouteList(nil, fam)
			if err != nil {
				return err
			}
			if !slices.ContainsFunc(routes, func(r netlink.Route) bool {
				return r.Gw != nil && (r.Dst == nil || maskBits(r.Dst) == 0) && r.LinkIndex == l.Attrs().Index
			}) {
				t.Errorf("no default route (family %d) in vm1: %v", fam, routes)
			}
		}
		return nil
	}, nsDev(port1))

	waitUp(t, vm1, nsDev(port1))
	waitUp(t, vm2, nsDev(port2))
	mustPing(t, vm1, "10.0.0.5", "10.0.0.6")
	mustPing(t, vm2, "10.0.0.6", "10.0.0.5")
	mustPing(t, vm1, "fd00::5", "fd00::6")

	// Changes are made in place: a new MAC and address, and admin down.
	h.take()
	ports[0].MAC = "fa:16:3e:00:00:11"
	ports[0].Addresses[0] = netip.MustParsePrefix("10.0.0.15/24")
	ports[1].AdminStateUp = false
	h.apply(nets, ports)
	t.Logf("update writes:\n  %s", strings.Join(h.take(), "\n  "))
	after := vmLink(t, vm1, nsDev(port1))
	if after.Attrs().Index != dev.Attrs().Index || after.Attrs().HardwareAddr.String() != "fa:16:3e:00:00:11" {
		t.Errorf("VM device after update: %+v, want the same device with the new MAC", after.Attrs())
	}
	vmDo(t, vm1, func(h *netlink.Handle, l netlink.Link) error {
		addrs, err := h.AddrList(l, unix.AF_INET)
		if len(addrs) != 1 || addrs[0].IPNet.String() != "10.0.0.15/24" {
			t.Errorf("VM addresses after update: %v, want only 10.0.0.15/24", addrs)
		}
		return err
	}, nsDev(port1))
	if h.l2.PortReady(port2) || h.link(tap(port2)).Attrs().Flags&net.FlagUp != 0 {
		t.Error("admin down port: want not ready and its tap down")
	}
	mustNotPing(t, vm1, "10.0.0.15", "10.0.0.6")
	ports[1].AdminStateUp = true
	h.apply(nets, ports)
	waitUp(t, vm2, nsDev(port2))
	mustPing(t, vm1, "10.0.0.15", "10.0.0.6")
}

// TestApplyIdempotent checks that equal input makes no kernel writes, and
// that an agent restart (a new L2 and Sweep) adopts everything as is.
func TestApplyIdempotent(t *testing.T) {
	h := newHost(t, netip.MustParseAddr("192.0.2.1"), "")
	h.vm("vm1")
	h.vm("vm2")
	mk := func() ([]agentv1.Network, []agentv1.Port) {
		return []agentv1.Network{network(net1, 101, "192.0.2.2", "192.0.2.3")}, []agentv1.Port{
			vmPort(port1, net1, "fa:16:3e:00:00:01", "vm1", true, "10.0.0.5/24", "fd00::5/64"),
			vmPort(port2, net1, "fa:16:3e:00:00:02", "vm2", false, "10.0.0.6/24"),
		}
	}
	h.apply(mk())
	if ops := h.take(); len(ops) == 0 {
		t.Fatal("first apply made no writes")
	} else {
		t.Logf("first apply: %d writes:\n  %s", len(ops), strings.Join(ops, "\n  "))
	}
	h.apply(mk())
	if ops := h.take(); len(ops) != 0 {
		t.Errorf("second apply with equal input wrote:\n  %s", strings.Join(ops, "\n  "))
	}
	before := indexes(h, tap(port1), tap(port2), bridge(net1), vxlan(net1))

	// Restart: a new L2 with nothing in memory.
	h.l2 = h.newL2(netip.MustParseAddr("192.0.2.1"), "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nets, ports := mk()
	if err := h.l2.Sweep(ctx, nets, ports); err != nil {
		t.Fatal(err)
	}
	if ops := h.take(); len(ops) != 0 {
		t.Errorf("sweep after restart wrote:\n  %s", strings.Join(ops, "\n  "))
	}
	if after := indexes(h, tap(port1), tap(port2), bridge(net1), vxlan(net1)); !slices.Equal(before, after) {
		t.Errorf("links recreated by sweep: indexes %v, then %v", before, after)
	}
	if !h.l2.PortReady(port1) || !h.l2.PortReady(port2) {
		t.Error("ports not ready after sweep")
	}
}

func indexes(h *host, names ...string) []int {
	var idx []int
	for _, n := range names {
		l := h.link(n)
		if l == nil {
			h.t.Fatalf("no link %s", n)
		}
		idx = append(idx, l.Attrs().Index)
	}
	return idx
}

// TestPortSecurity checks that a VM sends only from its fixed IPs, its
// allowed pairs and its MAC, and freely without port security.
func TestPortSecurity(t *testing.T) {
	h := newHost(t, netip.Addr{}, "")
	vm1, vm2 := h.vm("vm1"), h.vm("vm2")
	nets := []agentv1.Network{network(net1, 101)}
	p1 := vmPort(port1, net1, "fa:16:3e:00:00:01", "vm1", true, "10.0.0.5/24", "fd00::5/64")
	p1.AllowedPairs = []agentv1.AddressPair{{IP: netip.MustParsePrefix("10.0.0.128/25")}}
	p2 := vmPort(port2, net1, "fa:16:3e:00:00:02", "vm2", false, "10.0.0.6/24", "fd00::6/64")
	h.apply(nets, []agentv1.Port{p1, p2})
	h.take()
	waitUp(t, vm1, nsDev(port1))
	waitUp(t, vm2, nsDev(port2))

	mustPing(t, vm1, "10.0.0.5", "10.0.0.6")
	mustPing(t, vm1, "fd00::5", "fd00::6")
	addAddr(t, vm1, nsDev(port1), "10.0.0.99/24")
	addAddr(t, vm1, nsDev(port1), "10.0.0.130/24")
	addAddr(t, vm1, nsDev(port1), "fd00::99/64")
	mustNotPing(t, vm1, "10.0.0.99", "10.0.0.6")
	mustNotPing(t, vm1, "fd00::99", "fd00::6")
	mustPing(t, vm1, "10.0.0.130", "10.0.0.6") // inside the allowed pair

	// A spoofed MAC is dropped, even from the fixed IP.
	setMAC := func(mac string) {
		vmDo(t, vm1, func(h *netlink.Handle, l netlink.Link) error {
			m, _ := net.ParseMAC(mac)
			return h.LinkSetHardwareAddr(l, m)
		}, nsDev(port1))
	}
	setMAC("fa:16:3e:00:00:66")
	mustNotPing(t, vm1, "10.0.0.5", "10.0.0.6")
	setMAC("fa:16:3e:00:00:01")

	// Port security off: everything passes, and only the rules change.
	p1.PortSecurity = false
	h.apply(nets, []agentv1.Port{p1, p2})
	if diff := cmp.Diff([]string{"nft delete table bridge " + TableName}, h.take()); diff != "" {
		t.Errorf("port security off: writes (-want +got):\n%s", diff)
	}
	mustPing(t, vm1, "10.0.0.99", "10.0.0.6")
	mustPing(t, vm1, "fd00::99", "fd00::6")
}

// TestVXLANTwoHosts joins two hosts by an underlay veth and pings between
// VMs of one network on different hosts.
func TestVXLANTwoHosts(t *testing.T) {
	ip1, ip2 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	h1, h2 := newHost(t, ip1, "ul0"), newHost(t, ip2, "ul0")
	// Underlay: ul0 in each host, one veth.
	if err := h1.h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "ul0"}, PeerName: "ul0",
		PeerNamespace: netlink.NsFd(h2.ns.NsHandle)}); err != nil {
		t.Fatalf("underlay veth: %v", err)
	}
	for _, x := range []struct {
		h  *host
		ip netip.Addr
	}{{h1, ip1}, {h2, ip2}} {
		ul := x.h.link("ul0")
		if err := errors.Join(x.h.h.AddrAdd(ul, &netlink.Addr{IPNet: prefixNet(netip.PrefixFrom(x.ip, 24))}),
			x.h.h.LinkSetUp(ul)); err != nil {
			t.Fatal(err)
		}
	}
	vm1, vm2 := h1.vm("vm1"), h2.vm("vm2")
	p1 := vmPort(port1, net1, "fa:16:3e:00:00:01", "vm1", true, "10.0.0.5/24")
	p2 := vmPort(port2, net1, "fa:16:3e:00:00:02", "vm2", true, "10.0.0.6/24")
	h1.apply([]agentv1.Network{network(net1, 4242, "192.0.2.2", "192.0.2.9")}, []agentv1.Port{p1})
	h2.apply([]agentv1.Network{network(net1, 4242, "192.0.2.1")}, []agentv1.Port{p2})

	vx := h1.link(vxlan(net1)).(*netlink.Vxlan)
	if vx.VxlanId != 4242 || !vx.SrcAddr.Equal(ip1.AsSlice()) || vx.Port != 4789 || !vx.Learning ||
		vx.VtepDevIndex != h1.link("ul0").Attrs().Index || vx.MasterIndex != h1.link(bridge(net1)).Attrs().Index {
		t.Errorf("vxlan: %+v", vx)
	}
	if got := fdb(t, h1); !slices.Equal(got, []string{"192.0.2.2", "192.0.2.9"}) {
		t.Errorf("fdb: %v, want both peers", got)
	}
	waitUp(t, vm1, nsDev(port1))
	waitUp(t, vm2, nsDev(port2))
	mustPing(t, vm1, "10.0.0.5", "10.0.0.6")
	mustPing(t, vm2, "10.0.0.6", "10.0.0.5")

	// A peer leaves: only its entry goes.
	h1.take()
	h1.apply([]agentv1.Network{network(net1, 4242, "192.0.2.2")}, []agentv1.Port{p1})
	if diff := cmp.Diff([]string{"fdb del " + vxlan(net1) + " dst 192.0.2.9"}, h1.take()); diff != "" {
		t.Errorf("peer removal writes (-want +got):\n%s", diff)
	}
	mustPing(t, vm1, "10.0.0.5", "10.0.0.6")

	// No peers left: the VXLAN device goes, the bridge stays.
	h1.apply([]agentv1.Network{network(net1, 4242)}, []agentv1.Port{p1})
	if h1.link(vxlan(net1)) != nil || h1.link(bridge(net1)) == nil {
		t.Error("without peers: want the bridge and no vxlan device")
	}
	mustNotPing(t, vm1, "10.0.0.5", "10.0.0.6")
}

func fdb(t *testing.T, h *host) []string {
	t.Helper()
	neighs, err := h.h.NeighList(h.link(vxlan(net1)).Attrs().Index, unix.AF_BRIDGE)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range neighs {
		if n.HardwareAddr.String() == "00:00:00:00:00:00" && n.IP != nil {
			got = append(got, n.IP.String())
		}
	}
	slices.Sort(got)
	return got
}

// TestRemoveAndSweep checks that removals delete exactly what they owned,
// that a vanished namespace is tolerated, and that Sweep removes Neutrino's
// leftovers and nothing else.
func TestRemoveAndSweep(t *testing.T) {
	h := newHost(t, netip.MustParseAddr("192.0.2.1"), "")
	if err := h.h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "ulA"}, PeerName: "ulB"}); err != nil {
		t.Fatal(err)
	}
	ul := h.link("ulA")
	if err := errors.Join(h.h.AddrAdd(ul, &netlink.Addr{IPNet: prefixNet(netip.MustParsePrefix("192.0.2.1/24"))}), h.h.LinkSetUp(ul)); err != nil {
		t.Fatal(err)
	}
	vm1, vm2 := h.vm("vm1"), h.vm("vm2")
	vm3 := h.vm("vm3")
	nets := []agentv1.Network{network(net1, 101), network(net2, 102, "192.0.2.7")}
	p1 := vmPort(port1, net1, "fa:16:3e:00:00:01", "vm1", false, "10.0.0.5/24")
	p2 := vmPort(port2, net2, "fa:16:3e:00:00:02", "vm2", true, "10.1.0.5/24")
	p3 := vmPort(port3, net1, "fa:16:3e:00:00:03", "vm3", false, "10.0.0.7/24")
	h.apply(nets, []agentv1.Port{p1, p2, p3})
	keep := indexes(h, bridge(net1), tap(port1), tap(port3))
	h.take()

	// Remove port 2 and its network.
	h.apply(nets[:1], []agentv1.Port{p1, p3})
	want := []string{"link del " + tap(port2), "nft delete table bridge " + TableName, "link del " + vxlan(net2), "link del " + bridge(net2)}
	if diff := cmp.Diff(want, h.take()); diff != "" {
		t.Errorf("removal writes (-want +got):\n%s", diff)
	}
	for _, n := range []string{tap(port2), bridge(net2), vxlan(net2)} {
		if h.link(n) != nil {
			t.Errorf("%s still there", n)
		}
	}
	if vmLink(t, vm2, nsDev(port2)) != nil {
		t.Error("VM device of the removed port still there")
	}
	if tag, err := h.l2.dp.filterTag(context.Background()); err != nil || tag != "" {
		t.Errorf("port security table: tag %q, %v; want none", tag, err)
	}
	if got := indexes(h, bridge(net1), tap(port1), tap(port3)); !slices.Equal(keep, got) {
		t.Errorf("kept links changed: %v, then %v", keep, got)
	}
	waitUp(t, vm1, nsDev(port1))
	waitUp(t, vm3, nsDev(port3))
	mustPing(t, vm1, "10.0.0.5", "10.0.0.7")

	// The namespace of port 3 disappears before its port is removed.
	vm3.remove()
	h.apply(nets[:1], []agentv1.Port{p1})
	if h.link(tap(port3)) != nil {
		t.Error("tap of the port whose namespace vanished still there")
	}
	h.take()

	// Leftovers of a previous run, and links Neutrino does not own.
	stray := func(l netlink.Link) {
		t.Helper()
		if err := h.h.LinkAdd(l); err != nil {
			t.Fatalf("add %s: %v", l.Attrs().Name, err)
		}
	}
	stray(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "brqstray0000000"}})
	stray(&netlink.Vxlan{LinkAttrs: netlink.LinkAttrs{Name: "vxlan-stray0000"}, VxlanId: 999, Port: 4789})
	stray(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "tapstray0000000"}, PeerName: "straypeer"})
	stray(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "keep0"}})
	stray(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "tapnotaveth"}})
	keep = indexes(h, bridge(net1), tap(port1))

	h.l2 = h.newL2(netip.MustParseAddr("192.0.2.1"), "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.l2.Sweep(ctx, nets[:1], []agentv1.Port{p1}); err != nil {
		t.Fatal(err)
	}
	want = []string{"link del tapstray0000000", "link del vxlan-stray0000", "link del brqstray0000000"}
	if diff := cmp.Diff(want, h.take()); diff != "" {
		t.Errorf("sweep writes (-want +got):\n%s", diff)
	}
	for _, n := range []string{"brqstray0000000", "vxlan-stray0000", "tapstray0000000", "straypeer"} {
		if h.link(n) != nil {
			t.Errorf("leftover %s still there", n)
		}
	}
	for _, n := range []string{"keep0", "tapnotaveth", "ulA", "ulB"} {
		if h.link(n) == nil {
			t.Errorf("sweep removed %s, which Neutrino does not own", n)
		}
	}
	if got := indexes(h, bridge(net1), tap(port1)); !slices.Equal(keep, got) {
		t.Errorf("wanted links changed by sweep: %v, then %v", keep, got)
	}
}

package vmlab

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/neutrino-net/neutrino/internal/namespace"
	"github.com/neutrino-net/neutrino/internal/nstest"
	"github.com/neutrino-net/neutrino/internal/testenv"
)

func TestModuleOrder(t *testing.T) {
	dep := "kernel/net/8021q/8021q.ko: kernel/net/802/garp.ko kernel/net/802/stp.ko kernel/net/802/mrp.ko kernel/net/llc/llc.ko\n" +
		"kernel/net/802/garp.ko: kernel/net/802/stp.ko kernel/net/llc/llc.ko\n" +
		"kernel/net/802/stp.ko: kernel/net/llc/llc.ko\n" +
		"kernel/net/802/mrp.ko:\nkernel/net/llc/llc.ko:\n" +
		"kernel/drivers/net/veth.ko.xz:\n"
	got, err := moduleOrder(dep, []string{"veth", "8021q", "stp"})
	if err != nil {
		t.Fatal(err)
	}
	pos := map[string]int{}
	for i, m := range got {
		if _, dup := pos[m]; dup {
			t.Fatalf("%s twice in %v", m, got)
		}
		pos[m] = i
	}
	if len(got) != 6 {
		t.Fatalf("order %v, want 6 modules", got)
	}
	for m, before := range map[string][]string{"8021q": {"garp", "stp", "mrp", "llc"}, "garp": {"stp", "llc"}, "stp": {"llc"}} {
		for _, d := range before {
			if pos[d] > pos[m] {
				t.Errorf("%s loads after %s: %v", d, m, got)
			}
		}
	}
	if _, err := moduleOrder(dep, []string{"nosuch"}); err == nil {
		t.Error("a module missing from modules.dep was accepted")
	}
}

func TestParseReply(t *testing.T) {
	id, r, ok := parseReply("r 12 3 aGVsbG8K")
	if !ok || id != 12 || r.exit != 3 || r.out != "hello\n" {
		t.Errorf("got %d %+v %v", id, r, ok)
	}
	if id, r, ok := parseReply("r 5 0 "); !ok || id != 5 || r.out != "" {
		t.Errorf("empty output: %d %+v %v", id, r, ok)
	}
	for _, bad := range []string{"ready eth0=fa:16:3e:00:00:01", "r x 0 aGk=", "r 1 0 !!!", "c 1 2 aGk="} {
		if _, _, ok := parseReply(bad); ok {
			t.Errorf("%q accepted as a reply", bad)
		}
	}
	if m := parseHello("ready eth0=fa:16:3e:00:00:01 eth1=fa:16:3e:00:00:02"); m["eth1"] != "fa:16:3e:00:00:02" || len(m) != 2 {
		t.Errorf("hello: %v", m)
	}
}

func TestGlobalIPv6(t *testing.T) {
	ifInet6 := "fe80000000000000f8163efffe000003 02 40 20 80     eth0\n" +
		"20010db8000100000000000000000099 02 40 00 40     eth0\n" + // tentative
		"20010db80001000000000000000000aa 03 40 00 80     eth1\n" +
		"20010db8000100000000000000000003 02 40 00 00     eth0\n" +
		"00000000000000000000000000000001 01 80 10 80       lo\n"
	got := globalIPv6(ifInet6, "eth0")
	if len(got) != 1 || got[0] != netip.MustParsePrefix("2001:db8:1::3/64") {
		t.Errorf("got %v", got)
	}
}

// testNet is a network namespace standing for a compute host's network:
// bridges with taps, as the linuxbridge agent lays them out.
type testNet struct {
	ns   netns.NsHandle
	path string
}

func newTestNet(tb testing.TB) *testNet {
	tb.Helper()
	dir, rm := nstest.Dir(tb, "vmlab-guest")
	ns, path := nstest.VM(tb, dir, "host")
	tb.Cleanup(func() { ns.Close(); nstest.Clear(dir); rm() })
	return &testNet{ns: ns, path: path}
}

func (n *testNet) do(tb testing.TB, fn func() error) {
	tb.Helper()
	if err := namespace.Do(n.ns, fn); err != nil {
		tb.Fatal(err)
	}
}

// bridge adds a bridge with addresses, up.
func (n *testNet) bridge(tb testing.TB, name string, addrs ...string) {
	tb.Helper()
	n.do(tb, func() error {
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}
		if err := netlink.LinkAdd(br); err != nil {
			return fmt.Errorf("bridge %s: %w", name, err)
		}
		for _, a := range addrs {
			addr, err := netlink.ParseAddr(a)
			if err != nil {
				return err
			}
			if strings.Contains(a, ":") {
				addr.Flags = unix.IFA_F_NODAD
			}
			if err := netlink.AddrAdd(br, addr); err != nil {
				return fmt.Errorf("address %s on %s: %w", a, name, err)
			}
		}
		return netlink.LinkSetUp(br)
	})
}

// tap adds a persistent tap on a bridge, as Nova or an agent would,
// before the guest opens it.
func (n *testNet) tap(tb testing.TB, name, bridge string) int {
	tb.Helper()
	var index int
	n.do(tb, func() error {
		br, err := netlink.LinkByName(bridge)
		if err != nil {
			return err
		}
		tap := &netlink.Tuntap{LinkAttrs: netlink.LinkAttrs{Name: name, MasterIndex: br.Attrs().Index},
			Mode: netlink.TUNTAP_MODE_TAP, Flags: netlink.TUNTAP_DEFAULTS | netlink.TUNTAP_NO_PI | netlink.TUNTAP_VNET_HDR}
		if err := netlink.LinkAdd(tap); err != nil {
			return fmt.Errorf("tap %s: %w", name, err)
		}
		index = tap.Attrs().Index
		return nil
	})
	return index
}

// startDaemon starts a program in the namespace; it is killed when the
// test ends. Its output goes to the returned buffer's file.
func (n *testNet) startDaemon(tb testing.TB, logPath string, name string, args ...string) {
	tb.Helper()
	logf, err := os.Create(logPath)
	if err != nil {
		tb.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	n.do(tb, cmd.Start)
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if tb.Failed() {
			out, _ := os.ReadFile(logPath)
			tb.Logf("%s's output:\n%s", filepath.Base(name), out)
		}
	})
}

func mustRun(t *testing.T, ctx context.Context, g *Guest, script string) string {
	t.Helper()
	out, err := g.MustRun(ctx, script)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestLabGuestTapAndCommands: a guest's NIC sits on the tap it was given,
// with the MAC given: the bridge learns that MAC on the tap, a static
// address set through the command channel answers ICMP and TCP from the
// host side, and the channel keeps outputs, statuses and concurrent
// commands apart from each other and from kernel messages. The guest has
// what containers inside it need (802.1q, ipvlan, macvlan, namespaces).
func TestLabGuestTapAndCommands(t *testing.T) {
	t.Parallel()
	RequireGuests(t)
	n := newTestNet(t)
	n.bridge(t, "br0", "192.0.2.1/24")
	// The linuxbridge agent's name: "tap" and the port id's first 11
	// characters.
	tap := "tap" + "3f2a9c1e-7b4d-4c1e-9d0a-5b6c7d8e9f00"[:11]
	tapIndex := n.tap(t, tap, "br0")
	mac, _ := net.ParseMAC("fa:16:3e:00:00:01")
	g := StartTestGuest(t, GuestOptions{Name: "static", NICs: []NIC{{Tap: tap, MAC: mac, Netns: n.path}}, NoDHCP: true})
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()

	// The guest's own IPv6 start-up traffic (DAD, router solicitation)
	// teaches the bridge its MAC on the tap.
	learned := false
	for end := time.Now().Add(30 * time.Second); !learned && time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		n.do(t, func() error {
			neighs, err := netlink.NeighList(tapIndex, unix.AF_BRIDGE)
			for _, nb := range neighs {
				if nb.HardwareAddr.String() == mac.String() {
					learned = true
				}
			}
			return err
		})
	}
	if !learned {
		t.Fatalf("the bridge never learned %s on %s", mac, tap)
	}
	if got := strings.TrimSpace(mustRun(t, ctx, g, "cat /sys/class/net/eth0/address")); got != mac.String() {
		t.Fatalf("eth0's MAC is %s, want %s", got, mac)
	}

	mustRun(t, ctx, g, "ip addr add 192.0.2.10/24 dev eth0")
	p := nstest.NewPinger(t, n.ns, "192.0.2.1", "192.0.2.10")
	if _, ok := p.Reach(200*time.Millisecond, 20*time.Second); !ok {
		t.Fatal("the guest's static address does not answer ICMP from the bridge")
	}
	mustRun(t, ctx, g, "ping -c 1 -W 5 192.0.2.1")
	mustRun(t, ctx, g, "printf '#!/bin/sh\\necho hello-from-guest\\n' >/tmp/hello; chmod +x /tmp/hello; "+
		"nc -l -p 7000 -e /tmp/hello >/dev/null 2>&1 &")
	var got string
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(300 * time.Millisecond) {
		n.do(t, func() error {
			c, err := net.DialTimeout("tcp", "192.0.2.10:7000", 5*time.Second)
			if err != nil {
				return nil // not listening yet
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			data, _ := io.ReadAll(c)
			got = string(data)
			return nil
		})
		if got != "" {
			break
		}
	}
	if got != "hello-from-guest\n" {
		t.Fatalf("TCP to the guest read %q", got)
	}

	// Output, standard error and status; kernel messages stay on the
	// console.
	out, code, err := g.Run(ctx, "echo out; echo err >&2; echo '<2>vmlab-kernel-noise' >/dev/kmsg; exit 3")
	if err != nil || code != 3 || out != "out\nerr\n" {
		t.Fatalf("Run: %q, status %d, %v; want \"out\\nerr\\n\", 3", out, code, err)
	}
	for end := time.Now().Add(5 * time.Second); !strings.Contains(g.Console(), "vmlab-kernel-noise"); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("the kernel message did not reach the console")
		}
	}
	// Binary-safe output, a large output and a large script.
	var want strings.Builder
	want.WriteString("a\x00b\n")
	for i := 1; i <= 20000; i++ {
		fmt.Fprintf(&want, "%d\n", i)
	}
	if out := mustRun(t, ctx, g, "printf 'a\\000b\\n'; seq 1 20000"); out != want.String() {
		t.Fatalf("output of %d bytes, want %d", len(out), want.Len())
	}
	big := strings.Repeat("0123456789abcdef", 8192)
	if out := mustRun(t, ctx, g, "x='"+big+"'; echo ${#x}"); out != "131072\n" {
		t.Fatalf("a 128 KiB script: %q", out)
	}
	// Concurrent commands are serialised, each getting its own output.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, code, err := g.Run(ctx, fmt.Sprintf("sleep 0.1; echo %d; exit %d", i, i))
			if err != nil || code != i || out != strconv.Itoa(i)+"\n" {
				errs <- fmt.Errorf("command %d: %q, status %d, %v", i, out, code, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// A command past its deadline is killed in the guest; the channel
	// goes on.
	short, cancelShort := context.WithTimeout(ctx, 2*time.Second)
	_, _, err = g.Run(short, "sleep 60")
	cancelShort()
	if err == nil {
		t.Fatal("a 60 s command returned within a 2 s deadline without an error")
	}
	start := time.Now()
	if out := mustRun(t, ctx, g, "echo after"); out != "after\n" {
		t.Fatalf("after a timed-out command: %q", out)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the next command waited %s for the timed-out one", d)
	}

	// What containers in a guest need: 802.1q, ipvlan, macvlan links
	// (a link is the master of one kind only), network namespaces.
	mustRun(t, ctx, g, "ip link add link eth0 name eth0.100 type vlan id 100 && "+
		"ip link add link eth0 name ipvl0 type ipvlan && ip link add link eth0.100 name macv0 type macvlan && "+
		"test -d /sys/class/net/eth0.100 -a -d /sys/class/net/ipvl0 -a -d /sys/class/net/macv0 && "+
		"unshare -n sh -c '! ip link show eth0 >/dev/null 2>&1 && ip link show lo >/dev/null'")

	// Close leaves nothing running (other tests' guests may: look for
	// this one's QEMU and its process group).
	pid := g.PID()
	g.Close()
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
		t.Fatalf("QEMU (pid %d) still there after Close", pid)
	}
	if err := unix.Kill(-pid, 0); err == nil {
		t.Fatalf("QEMU's process group %d still has processes after Close", pid)
	}
}

// route4 is one line of /proc/net/route.
type route4 struct {
	iface    string
	dst, gw  netip.Addr
	maskBits int
}

// parseRoute4 reads /proc/net/route (addresses in host byte order, hex).
func parseRoute4(s string) []route4 {
	addr := func(h string) netip.Addr {
		v, _ := strconv.ParseUint(h, 16, 32)
		return netip.AddrFrom4([4]byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)})
	}
	var out []route4
	for _, line := range strings.Split(s, "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		mask := addr(f[7]).As4()
		bits := 0
		for _, b := range mask {
			for ; b != 0; b <<= 1 {
				bits++
			}
		}
		out = append(out, route4{iface: f[0], dst: addr(f[1]), gw: addr(f[2]), maskBits: bits})
	}
	return out
}

func hasRoute(routes []route4, iface, dst, gw string) bool {
	d := netip.MustParsePrefix(dst)
	for _, r := range routes {
		if r.iface == iface && r.dst == d.Addr() && r.maskBits == d.Bits() && r.gw == netip.MustParseAddr(gw) {
			return true
		}
	}
	return false
}

// TestLabGuestDHCP: a real DHCP server (busybox udhcpd) on each of two
// networks; the guest's udhcpc configures what it offers: the address,
// the router, DNS servers and domain, the MTU (option 26), and classless
// static routes (option 121), which replace the router option on their
// network as RFC 3442 says.
func TestLabGuestDHCP(t *testing.T) {
	t.Parallel()
	l := RequireGuests(t)
	n := newTestNet(t)
	n.bridge(t, "bra", "192.0.2.1/24")
	n.bridge(t, "brb", "198.51.100.1/24")
	n.tap(t, "tapdhcpa", "bra")
	n.tap(t, "tapdhcpb", "brb")
	dir := t.TempDir()
	confA := "interface bra\nstart 192.0.2.100\nend 192.0.2.110\nlease_file " + dir + "/a.leases\npidfile " + dir + "/a.pid\n" +
		"option subnet 255.255.255.0\noption router 192.0.2.1\noption dns 192.0.2.53 192.0.2.54\n" +
		"option domain example.test\noption mtu 1400\noption lease 600\n"
	confB := "interface brb\nstart 198.51.100.100\nend 198.51.100.110\nlease_file " + dir + "/b.leases\npidfile " + dir + "/b.pid\n" +
		"option subnet 255.255.255.0\noption router 198.51.100.1\noption staticroutes 203.0.113.0/24 198.51.100.1\noption lease 600\n"
	for name, conf := range map[string]string{"a": confA, "b": confB} {
		p := filepath.Join(dir, name+".conf")
		if err := os.WriteFile(p, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		n.startDaemon(t, filepath.Join(dir, name+".log"), l.Busybox, "udhcpd", "-f", p)
	}
	macA, _ := net.ParseMAC("fa:16:3e:00:00:0a")
	macB, _ := net.ParseMAC("fa:16:3e:00:00:0b")
	g := StartTestGuest(t, GuestOptions{Name: "dhcp", NICs: []NIC{
		{Tap: "tapdhcpa", MAC: macA, Netns: n.path}, {Tap: "tapdhcpb", MAC: macB, Netns: n.path}}})
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()

	// A lease takes a few seconds; a minute is a failure.
	leaseCtx, cancelLease := context.WithTimeout(ctx, time.Minute)
	defer cancelLease()
	a, err := g.WaitIPv4(leaseCtx, "eth0")
	if err != nil {
		t.Fatal(err)
	}
	b, err := g.WaitIPv4(leaseCtx, "eth1")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("leases: eth0 %s, eth1 %s", a, b)
	if !netip.MustParsePrefix("192.0.2.96/27").Contains(a.Addr()) || a.Bits() != 24 {
		t.Errorf("eth0 got %s, want one of 192.0.2.100-110/24", a)
	}
	if !netip.MustParsePrefix("198.51.100.96/27").Contains(b.Addr()) || b.Bits() != 24 {
		t.Errorf("eth1 got %s, want one of 198.51.100.100-110/24", b)
	}
	lease, err := g.Lease(ctx, "eth0")
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"router": "192.0.2.1", "dns": "192.0.2.53 192.0.2.54", "domain": "example.test",
		"mtu": "1400", "serverid": "192.0.2.1", "interface": "eth0"} {
		if strings.TrimSpace(lease[k]) != want {
			t.Errorf("eth0's lease: %s=%q, want %q (lease %v)", k, lease[k], want, lease)
		}
	}
	if got := strings.TrimSpace(mustRun(t, ctx, g, "cat /sys/class/net/eth0/mtu /sys/class/net/eth1/mtu")); got != "1400\n1500" {
		t.Errorf("MTUs eth0, eth1: %q, want 1400 (option 26) and 1500", got)
	}
	if got := mustRun(t, ctx, g, "cat /etc/resolv.conf"); got != "search example.test\nnameserver 192.0.2.53\nnameserver 192.0.2.54\n" {
		t.Errorf("resolv.conf: %q", got)
	}
	routes := parseRoute4(mustRun(t, ctx, g, "cat /proc/net/route"))
	if !hasRoute(routes, "eth0", "0.0.0.0/0", "192.0.2.1") {
		t.Errorf("no default route via 192.0.2.1 on eth0: %+v", routes)
	}
	if !hasRoute(routes, "eth1", "203.0.113.0/24", "198.51.100.1") {
		t.Errorf("no 203.0.113.0/24 via 198.51.100.1 on eth1 (option 121): %+v", routes)
	}
	if hasRoute(routes, "eth1", "0.0.0.0/0", "198.51.100.1") {
		t.Errorf("a default route via eth1's router although option 121 came with it: %+v", routes)
	}
	// The addresses work both ways.
	for _, c := range []struct{ src, dst string }{{"192.0.2.1", a.Addr().String()}, {"198.51.100.1", b.Addr().String()}} {
		if _, ok := nstest.NewPinger(t, n.ns, c.src, c.dst).Reach(200*time.Millisecond, 20*time.Second); !ok {
			t.Errorf("the guest's DHCP address %s does not answer %s", c.dst, c.src)
		}
	}
	mustRun(t, ctx, g, "ping -c 1 -W 5 192.0.2.1 && ping -c 1 -W 5 198.51.100.1")
}

// TestLabGuestSLAAC: router advertisements from a real radvd give the
// guest its IPv6 address (EUI-64 of the port's MAC in the advertised
// prefix), a default route and the advertised MTU. The guest also shares
// the host's root: a program of this machine (this test binary,
// dynamically linked or not) runs in it from /host.
func TestLabGuestSLAAC(t *testing.T) {
	t.Parallel()
	RequireGuests(t)
	radvd := testenv.RequireCommand(t, "radvd", "radvd")
	n := newTestNet(t)
	n.bridge(t, "brs", "2001:db8:1::1/64")
	n.tap(t, "tapslaac", "brs")
	n.do(t, func() error {
		// radvd wants a router.
		return os.WriteFile("/proc/sys/net/ipv6/conf/all/forwarding", []byte("1"), 0o644)
	})
	dir := t.TempDir()
	conf := filepath.Join(dir, "radvd.conf")
	if err := os.WriteFile(conf, []byte("interface brs {\n\tAdvSendAdvert on;\n\tMinRtrAdvInterval 3;\n\tMaxRtrAdvInterval 5;\n"+
		"\tAdvLinkMTU 1450;\n\tprefix 2001:db8:1::/64 {\n\t\tAdvOnLink on;\n\t\tAdvAutonomous on;\n\t};\n};\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	n.startDaemon(t, filepath.Join(dir, "radvd.log"), radvd, "-n", "-C", conf, "-p", filepath.Join(dir, "radvd.pid"), "-m", "stderr")
	mac, _ := net.ParseMAC("fa:16:3e:00:00:03")
	g := StartTestGuest(t, GuestOptions{Name: "slaac", NICs: []NIC{{Tap: "tapslaac", MAC: mac, Netns: n.path}},
		NoDHCP: true, ShareHost: true})
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	self, err := filepath.Abs(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if out := mustRun(t, ctx, g, quote("/host"+self)+" -test.list '^TestParseReply$'"); out != "TestParseReply\n" {
		t.Errorf("this test binary from /host listed %q", out)
	}
	// An advertisement comes every 3-5 s; a minute is a failure.
	raCtx, cancelRA := context.WithTimeout(ctx, time.Minute)
	defer cancelRA()
	addr, err := g.WaitIPv6(raCtx, "eth0")
	if err != nil {
		t.Fatal(err)
	}
	// EUI-64: the MAC with its universal/local bit flipped, ff:fe in the
	// middle.
	if want := netip.MustParsePrefix("2001:db8:1::f816:3eff:fe00:3/64"); addr != want {
		t.Fatalf("SLAAC address %s, want %s", addr, want)
	}
	if got := strings.TrimSpace(mustRun(t, ctx, g, "cat /proc/sys/net/ipv6/conf/eth0/mtu")); got != "1450" {
		t.Errorf("IPv6 MTU %s, want the advertised 1450", got)
	}
	// A default route (destination ::/0) through eth0, learned from the
	// advertisement.
	defaultRoute := false
	for _, line := range strings.Split(mustRun(t, ctx, g, "cat /proc/net/ipv6_route"), "\n") {
		f := strings.Fields(line)
		if len(f) == 10 && f[0] == strings.Repeat("0", 32) && f[1] == "00" && f[9] == "eth0" && strings.HasPrefix(f[4], "fe80") {
			defaultRoute = true
		}
	}
	if !defaultRoute {
		t.Error("no default route via a link-local router on eth0")
	}
	if _, ok := nstest.NewPinger(t, n.ns, "2001:db8:1::1", addr.Addr().String()).Reach(200*time.Millisecond, 20*time.Second); !ok {
		t.Error("the guest's SLAAC address does not answer ICMPv6 from the router")
	}
}

// BenchmarkGuestBoot: from StartGuest to the first command answered, for
// one guest and for three started at once (each on its own tap); it
// reports QEMU's resident and proportional memory per guest.
func BenchmarkGuestBoot(b *testing.B) {
	l := RequireGuests(b)
	n := newTestNet(b)
	n.bridge(b, "brbench", "192.0.2.1/24")
	var taps []string
	for i := 0; i < 3; i++ {
		taps = append(taps, fmt.Sprintf("tapbench%d", i))
		n.tap(b, taps[i], "brbench")
	}
	for _, parallel := range []int{1, 3} {
		b.Run(fmt.Sprintf("guests=%d", parallel), func(b *testing.B) {
			var total time.Duration
			var rss, pss int64
			boots := 0
			for b.Loop() {
				var wg sync.WaitGroup
				var mu sync.Mutex
				for i := 0; i < parallel; i++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						mac := net.HardwareAddr{0xfa, 0x16, 0x3e, 0, 1, byte(i)}
						ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
						defer cancel()
						start := time.Now()
						g, err := l.StartGuest(ctx, GuestOptions{Name: fmt.Sprintf("bench%d", i), NoDHCP: true,
							NICs: []NIC{{Tap: taps[i], MAC: mac, Netns: n.path}}})
						if err != nil {
							b.Error(err)
							return
						}
						defer g.Close()
						if _, err := g.MustRun(ctx, "true"); err != nil {
							b.Error(err)
							return
						}
						d := time.Since(start)
						r, _ := g.RSS()
						p := pssOf(g.PID())
						mu.Lock()
						total += d
						rss += r
						pss += p
						boots++
						mu.Unlock()
					}()
				}
				wg.Wait()
			}
			if boots > 0 {
				b.ReportMetric(float64(total.Milliseconds())/float64(boots), "ms/boot")
				b.ReportMetric(float64(rss>>20)/float64(boots), "MiB-rss/guest")
				b.ReportMetric(float64(pss>>20)/float64(boots), "MiB-pss/guest")
			}
		})
	}
}

// pssOf is a process's proportional set size in bytes (0 if unknown):
// pages shared with other guests (the kernel image QEMU maps) count for
// their share.
func pssOf(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "Pss:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

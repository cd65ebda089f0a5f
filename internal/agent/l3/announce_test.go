package l3

import (
	"maps"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/neutrino-net/neutrino/internal/namespace"
)

// announceBudget is how soon after the Apply that adds a router address a
// VM must reach it, or hold its new MAC: well below the kernel's ARP
// retry (1 s; the VMs here wait 10 s) and ARP ageing (about 27 s).
const announceBudget = 200 * time.Millisecond

// TestAnnounceIncomplete: a VM that tried to resolve its gateway before the
// router had it (INCOMPLETE neighbour entries, IPv4 and IPv6) reaches it
// right after the Apply that adds the interface, without waiting for its
// next solicitation (made 10 s here, so only the announcement can help).
func TestAnnounceIncomplete(t *testing.T) {
	e := newEnv(t)
	l := e.l3(nil)
	anns := recordAnnounces(l)
	r := testRouter("r1")
	full := r.Interfaces
	r.Interfaces = full[1:] // B only, for now
	e.apply(l, r, "apply without A")
	e.echo(e.ns(r.ID)) // on every address, A's too once it is there
	e.slowSolicit(e.vmA, 10*time.Second)

	gw4, gw6 := netip.MustParseAddr("10.0.1.1"), netip.MustParseAddr("2001:db8:1::1")
	c := e.udp(e.vmA)
	for _, gw := range []netip.Addr{gw4, gw6} {
		if _, err := probe(c, aPort(gw), seq.Add(1), 50*time.Millisecond); err == nil {
			t.Fatalf("%s answered before the router had it", gw)
		}
	}
	for _, gw := range []netip.Addr{gw4, gw6} {
		if n, ok := e.neigh(e.vmA, gw); !ok || n.State&(netlink.NUD_INCOMPLETE|netlink.NUD_FAILED) == 0 {
			t.Fatalf("VM A's neighbour entry of %s: %+v (found %v), want INCOMPLETE", gw, n, ok)
		}
	}

	anns()
	r.Interfaces = full
	start := time.Now()
	e.apply(l, r, "apply adding A")
	for _, gw := range []netip.Addr{gw4, gw6} {
		at, ok := e.reachWithin(c, aPort(gw), start, 2*time.Second)
		if !ok {
			t.Fatalf("VM A cannot reach %s after the Apply adding it", gw)
		}
		t.Logf("VM A reaches %s %v after the Apply started", gw, at.Sub(start).Round(time.Millisecond))
		if d := at.Sub(start); d > announceBudget {
			t.Errorf("VM A reached %s only %v after the Apply, want within %v", gw, d, announceBudget)
		}
	}
	waitAnnounced(l)
	want := announceOps("qr-"+portA[:11], "fa:16:3e:00:00:a1", "10.0.1.1", "2001:db8:1::1")
	if d := diffOps(want, anns()); d != "" {
		t.Errorf("announcements of the Apply adding A: %s", d)
	}

	before, sent := l.writes.Load(), l.announces.Load()
	e.apply(l, r, "same again")
	waitAnnounced(l)
	if w, a := l.writes.Load()-before, l.announces.Load()-sent; w != 0 || a != 0 {
		t.Errorf("same again: %d writes, %d announcements, want none", w, a)
	}
}

// TestAnnounceNewMAC: a VM that holds the router's MAC for its gateway
// learns the new one right after the Apply that changes it, whether the
// device keeps its name and gets a new MAC or a new port replaces it.
func TestAnnounceNewMAC(t *testing.T) {
	e := newEnv(t)
	l := e.l3(nil)
	anns := recordAnnounces(l)
	r := testRouter("r1")
	e.apply(l, r, "first apply")
	e.echo(e.ns(r.ID))
	e.slowSolicit(e.vmA, 10*time.Second)
	gw4, gw6 := netip.MustParseAddr("10.0.1.1"), netip.MustParseAddr("2001:db8:1::1")
	c := e.udp(e.vmA)

	const portA2 = "1a200000-0000-4000-8000-0000000000a2"
	for _, step := range []struct {
		name, port, mac string
	}{
		{"new MAC of A's device", portA, "fa:16:3e:00:01:a1"},
		{"A's port replaced", portA2, "fa:16:3e:00:02:a1"},
	} {
		// The VM talks to the router: it holds the current MAC.
		old := r.Interfaces[0].MAC
		for _, gw := range []netip.Addr{gw4, gw6} {
			src := vmA4
			if gw.Is6() {
				src = vmA6
			}
			e.reach(c, aPort(gw), src.String())
			if n, ok := e.neigh(e.vmA, gw); !ok || n.HardwareAddr.String() != old {
				t.Fatalf("%s: VM A's entry of %s before: %v (found %v), want %s", step.name, gw, n.HardwareAddr, ok, old)
			}
		}
		waitAnnounced(l)
		anns()

		r.Interfaces[0].PortID, r.Interfaces[0].MAC = step.port, step.mac
		start := time.Now()
		e.apply(l, r, step.name)
		for _, gw := range []netip.Addr{gw4, gw6} {
			var n netlink.Neigh
			for {
				n, _ = e.neigh(e.vmA, gw)
				if n.HardwareAddr.String() == step.mac || time.Since(start) > 2*time.Second {
					break
				}
				time.Sleep(2 * time.Millisecond)
			}
			d := time.Since(start)
			t.Logf("%s: VM A holds the new MAC of %s %v after the Apply started (state %s)",
				step.name, gw, d.Round(time.Millisecond), neighState(n.State))
			if n.HardwareAddr.String() != step.mac {
				t.Fatalf("%s: VM A's entry of %s: %v, want %s", step.name, gw, n.HardwareAddr, step.mac)
			}
			if d > announceBudget {
				t.Errorf("%s: VM A learnt the new MAC of %s only %v after the Apply, want within %v", step.name, gw, d, announceBudget)
			}
		}
		e.reach(c, aPort(gw4), vmA4.String())
		e.reach(c, aPort(gw6), vmA6.String())
		waitAnnounced(l)
		want := announceOps(agentv1.DeviceName(agentv1.InternalDevicePrefix, step.port), step.mac, "10.0.1.1", "2001:db8:1::1")
		if d := diffOps(want, anns()); d != "" {
			t.Errorf("%s: announcements: %s", step.name, d)
		}
	}

	before, sent := l.writes.Load(), l.announces.Load()
	e.apply(l, r, "same again")
	waitAnnounced(l)
	if w, a := l.writes.Load()-before, l.announces.Load()-sent; w != 0 || a != 0 {
		t.Errorf("same again: %d writes, %d announcements, want none", w, a)
	}
}

// TestAnnounceCarryOver: an Apply made while the announcements of the
// previous one are under way lets those go on (on their schedule), and
// stops those it makes pointless (a MAC changed again). The rounds are
// 500 ms apart here, so that the Applies come between them.
func TestAnnounceCarryOver(t *testing.T) {
	defer func(d time.Duration) { announceInterval = d }(announceInterval)
	announceInterval = 500 * time.Millisecond
	e := newEnv(t)
	l := e.l3(nil)
	anns := recordAnnounces(l)
	r := testRouter("r1")
	r.Interfaces = r.Interfaces[:1]
	e.apply(l, r, "apply with A")
	// Right away: B is added, and A's MAC changes, twice.
	r.Interfaces = testRouter("r1").Interfaces
	e.apply(l, r, "apply adding B")
	r.Interfaces[0].MAC = "fa:16:3e:00:01:a1"
	e.apply(l, r, "new MAC of A")
	r.Interfaces[0].MAC = "fa:16:3e:00:02:a1"
	e.apply(l, r, "newer MAC of A")
	waitAnnounced(l)
	got := map[string]int{}
	for _, op := range anns() {
		got[op]++
	}
	for _, tc := range []struct {
		dev, mac string
		addrs    []string
		rounds   int
	}{
		{"qr-" + portA[:11], "fa:16:3e:00:00:a1", []string{"10.0.1.1", "2001:db8:1::1"}, 1}, // cut short
		{"qr-" + portA[:11], "fa:16:3e:00:01:a1", []string{"10.0.1.1", "2001:db8:1::1"}, 1}, // cut short
		{"qr-" + portA[:11], "fa:16:3e:00:02:a1", []string{"10.0.1.1", "2001:db8:1::1"}, announceCount},
		{"qr-" + portB[:11], "fa:16:3e:00:00:b1", []string{"10.0.2.1", "2001:db8:2::1"}, announceCount},
		{"qg-" + portGW[:11], "fa:16:3e:00:00:e1", []string{"203.0.113.10"}, announceCount},
	} {
		for _, op := range announceOps(tc.dev, tc.mac, tc.addrs...) {
			if got[op] < 1 || got[op] > tc.rounds || (tc.rounds == announceCount && got[op] != tc.rounds) {
				t.Errorf("%q sent %d times, want %d", op, got[op], tc.rounds)
			}
		}
	}
	t.Logf("announcements: %v", got)
}

// slowSolicit makes a VM's kernel wait d between its neighbour
// solicitations on eth0.
func (e *env) slowSolicit(vm netns.NsHandle, d time.Duration) {
	e.t.Helper()
	ms := []byte(strconv.FormatInt(d.Milliseconds(), 10))
	if err := namespace.Do(vm, func() error {
		for _, f := range []string{"/proc/sys/net/ipv4/neigh/eth0/retrans_time_ms", "/proc/sys/net/ipv6/neigh/eth0/retrans_time_ms"} {
			if err := os.WriteFile(f, ms, 0o644); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		e.t.Fatal(err)
	}
}

// neigh returns the neighbour entry of ip on a VM's eth0.
func (e *env) neigh(vm netns.NsHandle, ip netip.Addr) (netlink.Neigh, bool) {
	e.t.Helper()
	h := e.handle(vm)
	eth, err := h.LinkByName("eth0")
	if err != nil {
		e.t.Fatal(err)
	}
	family := netlink.FAMILY_V4
	if ip.Is6() {
		family = netlink.FAMILY_V6
	}
	neighs, err := h.NeighList(eth.Attrs().Index, family)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, n := range neighs {
		if a, ok := netip.AddrFromSlice(n.IP); ok && a.Unmap() == ip {
			return n, true
		}
	}
	return netlink.Neigh{}, false
}

// reachWithin probes dst every 5 ms until it answers and returns when.
func (e *env) reachWithin(c *net.UDPConn, dst netip.AddrPort, start time.Time, bound time.Duration) (time.Time, bool) {
	for time.Since(start) < bound {
		if _, err := probe(c, dst, seq.Add(1), 5*time.Millisecond); err == nil {
			return time.Now(), true
		}
	}
	return time.Time{}, false
}

func neighState(s int) string {
	names := map[int]string{netlink.NUD_INCOMPLETE: "INCOMPLETE", netlink.NUD_REACHABLE: "REACHABLE", netlink.NUD_STALE: "STALE",
		netlink.NUD_DELAY: "DELAY", netlink.NUD_PROBE: "PROBE", netlink.NUD_FAILED: "FAILED", netlink.NUD_PERMANENT: "PERMANENT"}
	if n, ok := names[s]; ok {
		return n
	}
	return strconv.Itoa(s)
}

// recordAnnounces collects the announcements of l; the returned function
// hands them over and starts afresh.
func recordAnnounces(l *L3) func() []string { return recorder(&l.onAnnounce) }

// announceOps are the frames of one round of announcing addrs.
func announceOps(dev, mac string, addrs ...string) []string {
	var ops []string
	for _, a := range addrs {
		if netip.MustParseAddr(a).Is4() {
			ops = append(ops, "gratuitous arp request "+a+" dev "+dev+" lladdr "+mac,
				"gratuitous arp reply "+a+" dev "+dev+" lladdr "+mac)
		} else {
			ops = append(ops, "unsolicited na "+a+" dev "+dev+" lladdr "+mac)
		}
	}
	return ops
}

// diffOps compares the announcements sent with want, sent announceCount
// times each; "" when they match.
func diffOps(want, got []string) string {
	count := map[string]int{}
	for _, op := range got {
		count[op]++
	}
	var bad []string
	for _, op := range want {
		if count[op] != announceCount {
			bad = append(bad, strconv.Itoa(count[op])+"x "+op)
		}
		delete(count, op)
	}
	for _, op := range slices.Sorted(maps.Keys(count)) {
		bad = append(bad, "unexpected "+strconv.Itoa(count[op])+"x "+op)
	}
	if len(bad) == 0 {
		return ""
	}
	return "want each " + strconv.Itoa(announceCount) + " times:\n  " + strings.Join(bad, "\n  ")
}

// waitAnnounced waits until no router of l has announcements under way.
func waitAnnounced(l *L3) {
	l.mu.Lock()
	routers := slices.Collect(maps.Values(l.routers))
	l.mu.Unlock()
	for _, rt := range routers {
		rt.mu.Lock()
		a := rt.announcer
		rt.mu.Unlock()
		if a != nil {
			<-a.done
		}
	}
}

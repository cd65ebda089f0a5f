package e2e_test

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/neutrino-net/neutrino/internal/agent/l2"
	"github.com/neutrino-net/neutrino/internal/namespace"
	"github.com/neutrino-net/neutrino/internal/testenv"
)

// unconfigure6 takes from a VM what `port plug` configured for IPv6 (its
// global addresses and default route), so that what it has afterwards
// comes from router advertisements and DHCPv6, as for a real guest. The
// L2 agent does not put them back: the port's wiring does not change.
func unconfigure6(t testing.TB, vm *vmNS, portID string) {
	t.Helper()
	h := vm.handle(t)
	defer h.Close()
	link := vm.dev(t, portID)
	addrs, err := h.AddrList(link, netlink.FAMILY_V6)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if !a.IP.IsLinkLocalUnicast() {
			if err := h.AddrDel(link, &a); err != nil {
				t.Fatalf("VM %s: addr del %s: %v", vm.name, a.IPNet, err)
			}
		}
	}
	routes, _ := h.RouteList(link, netlink.FAMILY_V6)
	for _, r := range routes {
		if r.Dst == nil || r.Dst.IP.IsUnspecified() {
			if err := h.RouteDel(&r); err != nil {
				t.Fatalf("VM %s: route del default: %v", vm.name, err)
			}
		}
	}
}

// v6State is what a VM's kernel holds on a port's device: its global
// addresses and its IPv6 default route.
type v6State struct {
	addrs map[netip.Addr]netlink.Addr
	gw    netip.Addr // the default route's next hop
	proto netlink.RouteProtocol
	ll    bool // the link-local address is usable (DAD done)
}

func (vm *vmNS) v6(t testing.TB, portID string) v6State {
	t.Helper()
	h := vm.handle(t)
	defer h.Close()
	link := vm.dev(t, portID)
	st := v6State{addrs: map[netip.Addr]netlink.Addr{}}
	addrs, _ := h.AddrList(link, netlink.FAMILY_V6)
	for _, a := range addrs {
		ip, _ := netip.AddrFromSlice(a.IP)
		if ip.IsLinkLocalUnicast() {
			st.ll = st.ll || a.Flags&unix.IFA_F_TENTATIVE == 0
			continue
		}
		st.addrs[ip] = a
	}
	routes, _ := h.RouteList(link, netlink.FAMILY_V6)
	for _, r := range routes {
		if r.Dst == nil || r.Dst.IP.IsUnspecified() {
			st.gw, _ = netip.AddrFromSlice(r.Gw)
			st.proto = r.Protocol
		}
	}
	return st
}

// waitV6 polls a VM's IPv6 state until ok accepts it.
func (vm *vmNS) waitV6(t testing.TB, portID, what string, timeout time.Duration, ok func(v6State) bool) v6State {
	t.Helper()
	var st v6State
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if st = vm.v6(t, portID); ok(st) {
			return st
		}
	}
	t.Fatalf("VM %s: %s: not after %s; addresses %v, default via %s (proto %d)", vm.name, what, timeout, st.addrs, st.gw, st.proto)
	return st
}

// slaacDone accepts a state with addr autoconfigured (not permanent,
// DAD done) and a default route learnt from an advertisement.
func slaacDone(addr netip.Addr) func(v6State) bool {
	return func(st v6State) bool {
		a, ok := st.addrs[addr]
		return ok && a.Flags&(unix.IFA_F_PERMANENT|unix.IFA_F_TENTATIVE) == 0 && st.gw.IsLinkLocalUnicast() && st.proto == unix.RTPROT_RA
	}
}

// TestIPv6SLAAC (issue 13 item 3): VMs on a slaac subnet behind a router
// configure themselves from its advertisements: each gets exactly the
// fixed IPv6 address the API computed for its port (EUI-64), a default
// route via the router's link-local address, and reaches the router's
// gateway address and the other VM.
func TestIPv6SLAAC(t *testing.T) {
	e, h := oneNode(t)
	netID := e.network("v6-slaac", false)
	sub := e.subnet(netID, "2001:db8:60::/64", object{"ip_version": 6, "ipv6_ra_mode": "slaac", "ipv6_address_mode": "slaac"})
	r := e.router("r6", "")
	p1, p2 := e.port(netID, nil), e.port(netID, nil)
	vm1, vm2 := h.vm("vm6-1"), h.vm("vm6-2")
	e.plugAll(h, []port{p1, p2}, []*vmNS{vm1, vm2})
	unconfigure6(t, vm1, p1.id)
	unconfigure6(t, vm2, p2.id)
	if st := vm1.v6(t, p1.id); len(st.addrs) != 0 || st.gw.IsValid() {
		t.Fatalf("VM still configured: %v via %s", st.addrs, st.gw)
	}

	start := time.Now()
	e.addInterface(r, sub)
	for i, c := range []struct {
		vm *vmNS
		p  port
	}{{vm1, p1}, {vm2, p2}} {
		st := c.vm.waitV6(t, c.p.id, "SLAAC address "+c.p.ip, 15*time.Second, slaacDone(netip.MustParseAddr(c.p.ip)))
		t.Logf("VM %d: %s (valid %ds) and default via %s %s after the interface was added", i+1, c.p.ip,
			st.addrs[netip.MustParseAddr(c.p.ip)].ValidLft, st.gw, time.Since(start).Round(time.Millisecond))
		if len(st.addrs) != 1 {
			t.Errorf("VM %d global addresses %v, want only %s", i+1, st.addrs, c.p.ip)
		}
	}
	for _, dst := range []string{"2001:db8:60::1", p2.ip} {
		ping := newPinger(t, vm1, p1.ip, dst)
		if _, ok := ping.Reach(20*time.Millisecond, reachTimeout); !ok {
			t.Errorf("VM 1 (%s) does not reach %s", p1.ip, dst)
		}
	}
}

// dhclientScript records each event ISC dhclient reports, one line each,
// in the file %s (dhclient gives its script a clean environment); it
// configures nothing.
const dhclientScript = `#!/bin/sh
echo "reason=$reason ip6=$new_ip6_address prefixlen=$new_ip6_prefixlen dns=$new_dhcp6_name_servers" >> '%s'
`

// dhclient6 runs ISC dhclient -6 (stateless: -S) on a VM's port device in
// the foreground, with its files in a temporary directory, and returns
// the first event whose reason is want.
func dhclient6(t *testing.T, vm *vmNS, portID string, stateless bool, want string) lease {
	t.Helper()
	dir := t.TempDir()
	script, out, conf := filepath.Join(dir, "script"), filepath.Join(dir, "events"), filepath.Join(dir, "dhclient6.conf")
	if err := os.WriteFile(script, []byte(fmt.Sprintf(dhclientScript, out)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, []byte("request dhcp6.name-servers;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-6", "-d", "-v", "-cf", conf, "-sf", script, "-lf", filepath.Join(dir, "leases"), "-pf", filepath.Join(dir, "pid")}
	if stateless {
		args = append(args, "-S")
	}
	args = append(args, agentv1.DeviceName(l2.NamespacePortPrefix, portID))
	cmd := exec.Command(dhclient, args...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	logf, err := os.Create(filepath.Join(dir, "log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	start := time.Now()
	if err := namespace.Do(vm.ns, cmd.Start); err != nil {
		t.Fatalf("dhclient: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait(); logf.Close() })
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		f, err := os.Open(out)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			l := lease{}
			for _, kv := range strings.Fields(sc.Text()) {
				k, v, _ := strings.Cut(kv, "=")
				l[k] = v
			}
			l["dns"] = strings.TrimSpace(between(sc.Text()+"\n", "dns=", "\n"))
			if l["reason"] == want {
				f.Close()
				t.Logf("dhclient -6 (stateless %v): %s after %s: %v", stateless, want, time.Since(start).Round(time.Millisecond), l)
				return l
			}
		}
		f.Close()
	}
	b, _ := os.ReadFile(filepath.Join(dir, "log"))
	ev, _ := os.ReadFile(out)
	t.Fatalf("dhclient -6: no %s after 20s; events:\n%s\nlog:\n%s", want, ev, b)
	return nil
}

// TestDHCPv6 (issue 13 item 2): through the API, a VM on a
// dhcpv6-stateful subnet behind a router learns from the router's
// advertisement to ask DHCPv6 (no SLAAC address: the prefix is not
// autonomous) and ISC dhclient -6 gets exactly the port's fixed IPv6
// address and the subnet's DNS server from the network's dnsmasq; a VM
// on a dhcpv6-stateless subnet autoconfigures its address and dhclient
// -6 -S gets the DNS server.
func TestDHCPv6(t *testing.T) {
	requireDHCP(t)
	if _, err := os.Stat(dhclient); err != nil {
		testenv.Missing(t, "needs ISC dhclient (Debian package isc-dhcp-client): %v", err)
	}
	e, h := oneNode(t)
	r := e.router("r-dhcp6", "")

	t.Run("stateful", func(t *testing.T) {
		netID := e.network("v6-stateful", false)
		sub := e.subnet(netID, "2001:db8:61::/64", object{"ip_version": 6, "ipv6_ra_mode": "dhcpv6-stateful",
			"ipv6_address_mode": "dhcpv6-stateful", "dns_nameservers": []string{"2001:db8::53"}})
		p := e.port(netID, nil)
		vm := h.vm("vm-stateful")
		e.plugAll(h, []port{p}, []*vmNS{vm})
		unconfigure6(t, vm, p.id)
		h.dhcpReady(t, netID, "[2001:db8::53]")
		e.addInterface(r, sub)
		st := vm.waitV6(t, p.id, "default route from the router", 15*time.Second, func(st v6State) bool {
			return st.ll && st.gw.IsLinkLocalUnicast() && st.proto == unix.RTPROT_RA
		})
		if len(st.addrs) != 0 {
			t.Errorf("VM autoconfigured %v on a dhcpv6-stateful subnet", st.addrs)
		}
		got := dhclient6(t, vm, p.id, false, "BOUND6")
		if got["ip6"] != p.ip || got["dns"] != "2001:db8::53" {
			t.Errorf("DHCPv6 lease: address %q dns %q, want %s and 2001:db8::53", got["ip6"], got["dns"], p.ip)
		}
	})

	t.Run("stateless", func(t *testing.T) {
		netID := e.network("v6-stateless", false)
		sub := e.subnet(netID, "2001:db8:62::/64", object{"ip_version": 6, "ipv6_ra_mode": "dhcpv6-stateless",
			"ipv6_address_mode": "dhcpv6-stateless", "dns_nameservers": []string{"2001:db8::54"}})
		p := e.port(netID, nil)
		vm := h.vm("vm-stateless")
		e.plugAll(h, []port{p}, []*vmNS{vm})
		unconfigure6(t, vm, p.id)
		h.dhcpReady(t, netID, "[2001:db8::54]")
		e.addInterface(r, sub)
		vm.waitV6(t, p.id, "SLAAC address "+p.ip, 15*time.Second, slaacDone(netip.MustParseAddr(p.ip)))
		// dhclient binds to the link-local address: once DAD is done.
		vm.waitV6(t, p.id, "link-local address usable", 5*time.Second, func(st v6State) bool { return st.ll })
		got := dhclient6(t, vm, p.id, true, "RENEW6") // ISC dhclient's reason for an information reply
		if got["dns"] != "2001:db8::54" || got["ip6"] != "" {
			t.Errorf("DHCPv6 information: dns %q address %q, want 2001:db8::54 and no address", got["dns"], got["ip6"])
		}
	})
}

package e2e_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/neutrino-net/neutrino/internal/namespace"
	"github.com/neutrino-net/neutrino/internal/vmlab"
)

// guestTimeout bounds what a guest does under TCG on a shared machine
// (its boot, its first lease).
const guestTimeout = 4 * time.Minute

// startGuests boots one guest per port, at once, each with a virtio NIC
// on the port's tap ("tap" + 11 characters of its id, in the host's
// namespace, as a compute service names it) and the port's MAC.
func startGuests(t *testing.T, h *host, ports []port, names []string) []*vmlab.Guest {
	t.Helper()
	return startGuestsShare(t, h, ports, names, false)
}

// startGuestsShare is startGuests; with shareHost each guest has this
// machine's root at /host.
func startGuestsShare(t *testing.T, h *host, ports []port, names []string, shareHost bool) []*vmlab.Guest {
	t.Helper()
	lab := vmlab.RequireGuests(t)
	hostNS := fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), int(h.ns))
	guests := make([]*vmlab.Guest, len(ports))
	errs := make([]error, len(ports))
	var wg sync.WaitGroup
	for i, p := range ports {
		mac, err := net.ParseMAC(p.mac)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), guestTimeout)
			defer cancel()
			guests[i], errs[i] = lab.StartGuest(ctx, vmlab.GuestOptions{Name: names[i], ShareHost: shareHost,
				NICs: []vmlab.NIC{{Tap: agentv1.DeviceName(agentv1.TapPrefix, p.id), MAC: mac, Netns: hostNS}}})
		}()
	}
	wg.Wait()
	for i, g := range guests {
		if g == nil {
			continue
		}
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("%s's console:\n%s", g.Name, g.Console())
			}
			g.Close()
		})
		t.Logf("guest %s answered %s after start", g.Name, g.BootTime.Round(time.Millisecond))
		if errs[i] != nil {
			t.Fatalf("guest %s: %v", names[i], errs[i])
		}
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("guest %s: %v", names[i], err)
		}
	}
	return guests
}

// guestRun runs a command in a guest and returns its output and status.
func guestRun(t *testing.T, g *vmlab.Guest, script string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, code, err := g.Run(ctx, script)
	if err != nil {
		t.Fatalf("%s: %s: %v", g.Name, script, err)
	}
	return out, code
}

// guestReaches reports whether g's ICMP echo to dst is answered (a few
// tries, one second each).
func guestReaches(t *testing.T, g *vmlab.Guest, dst string, extra string) bool {
	t.Helper()
	_, code := guestRun(t, g, "ping -c 3 -W 1 "+extra+" "+dst+" >/dev/null 2>&1 || ping -c 2 -W 1 "+extra+" "+dst+" >/dev/null 2>&1")
	return code == 0
}

// TestLabGuests is the real-VMs issue's user: three QEMU guests (the
// Debian kernel, busybox) whose virtio NICs sit on their ports' taps as a
// compute service plugs them, two on one network and one behind a router.
// The agent attaches the taps, the ports become ACTIVE and bound as the
// reference's linuxbridge binds them, the guests configure themselves by
// DHCP from Neutrino's allocations, and security groups decide exactly
// what passes: the default group (same group in, anything out), a "web"
// group (TCP 8080 from anywhere, ICMP from the default group), a rule
// removed under a live flow, and anti-spoofing of the guest's own
// addresses.
func TestLabGuests(t *testing.T) {
	vmlab.RequireGuests(t)
	e, h := oneNode(t)
	netA, netB := e.network("guests-a", false), e.network("guests-b", false)
	subA := e.subnet(netA, "10.10.0.0/24", object{"dns_nameservers": []any{"192.0.2.53"},
		"host_routes": []any{object{"destination": "198.51.100.0/24", "nexthop": "10.10.0.254"}}})
	subB := e.subnet(netB, "10.20.0.0/24", nil)
	slaac := object{"ip_version": 6, "ipv6_ra_mode": "slaac", "ipv6_address_mode": "slaac"}
	subA6, subB6 := e.subnet(netA, "2001:db8:10::/64", slaac), e.subnet(netB, "2001:db8:20::/64", slaac)
	r := e.router("r", "")
	for _, s := range []string{subA, subB, subA6, subB6} {
		e.addInterface(r, s)
	}

	p1, p2 := e.port(netA, object{"name": "g1"}), e.port(netA, object{"name": "g2"})
	def := e.defaultGroup()
	web := e.create("security_group", object{"name": "web"})["id"].(string)
	e.create("security_group_rule", object{"security_group_id": web, "direction": "ingress", "ethertype": "IPv4",
		"protocol": "tcp", "port_range_min": 8080, "port_range_max": 8080, "remote_ip_prefix": "0.0.0.0/0"})
	icmpRule := e.create("security_group_rule", object{"security_group_id": web, "direction": "ingress",
		"ethertype": "IPv4", "protocol": "icmp", "remote_group_id": def})["id"].(string)
	p3 := e.port(netB, object{"name": "g3", "security_groups": []any{web}})
	ports := []port{p1, p2, p3}
	start := time.Now()
	for _, p := range ports {
		e.update("port", p.id, object{"binding:host_id": h.name})
	}
	guests := startGuests(t, h, ports, []string{"g1", "g2", "g3"})
	g1, g2, g3 := guests[0], guests[1], guests[2]

	// Bound and ACTIVE as the reference's linuxbridge binds a VM's port.
	for _, p := range ports {
		e.waitActive(p, start)
		got := e.get("port", p.id)
		details, _ := got["binding:vif_details"].(map[string]any)
		if got["binding:vif_type"] != "bridge" || details["port_filter"] != true || details["connectivity"] != "l2" {
			t.Errorf("port %s: binding:vif_type %v, binding:vif_details %v; want bridge with port_filter and l2 connectivity",
				p.id, got["binding:vif_type"], got["binding:vif_details"])
		}
	}

	// DHCP: each guest gets its port's address, the gateway, DNS, the
	// network's MTU and the host routes.
	mtu := fmt.Sprint(e.get("network", netA)["mtu"])
	for i, g := range guests {
		ctx, cancel := context.WithTimeout(context.Background(), guestTimeout)
		addr, err := g.WaitIPv4(ctx, g.Ifnames[0])
		cancel()
		if err != nil {
			t.Fatalf("%s: %v", g.Name, err)
		}
		if addr.Addr().String() != ports[i].ip {
			t.Errorf("%s got %s by DHCP, its port has %s", g.Name, addr, ports[i].ip)
		}
		ctx, cancel = context.WithTimeout(context.Background(), time.Minute)
		lease, err := g.Lease(ctx, g.Ifnames[0])
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		wantRouter := "10.10.0.1"
		if i == 2 {
			wantRouter = "10.20.0.1"
		}
		if lease["router"] != wantRouter || lease["mtu"] != mtu {
			t.Errorf("%s's lease: router %q mtu %q, want %s and %s (%v)", g.Name, lease["router"], lease["mtu"], wantRouter, mtu, lease)
		}
		if i < 2 && (lease["dns"] != "192.0.2.53" || !strings.Contains(lease["staticroutes"], "198.51.100.0/24 10.10.0.254")) {
			t.Errorf("%s's lease: dns %q staticroutes %q, want 192.0.2.53 and the host route", g.Name, lease["dns"], lease["staticroutes"])
		}
	}
	t.Logf("three guests booted and leased their ports' addresses %s after the binding", time.Since(start).Round(time.Millisecond))

	// SLAAC from the router's advertisements: exactly the port's address.
	v6 := make([]string, len(ports))
	for i, g := range guests {
		for _, f := range e.get("port", ports[i].id)["fixed_ips"].([]any) {
			if a := f.(map[string]any)["ip_address"].(string); strings.Contains(a, ":") {
				v6[i] = a
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), guestTimeout)
		addr, err := g.WaitIPv6(ctx, g.Ifnames[0])
		cancel()
		if err != nil {
			t.Fatalf("%s: no SLAAC address: %v", g.Name, err)
		}
		if addr.Addr().String() != v6[i] {
			t.Errorf("%s configured %s by SLAAC, its port has %s", g.Name, addr, v6[i])
		}
	}

	// The default group: g1 and g2 reach each other; g3 (web only) is not
	// a member, so it cannot reach g1; g1 reaches g3 (web lets ICMP in
	// from the default group, and replies are tracked).
	for _, c := range []struct {
		from     *vmlab.Guest
		to       string
		expected bool
	}{{g1, p2.ip, true}, {g2, p1.ip, true}, {g1, p3.ip, true}, {g3, p1.ip, false}, {g3, "10.20.0.1", true},
		// IPv6: the default group lets its members in; web has no ICMPv6 rule.
		{g1, v6[1], true}, {g2, v6[0], true}, {g1, "2001:db8:10::1", true}, {g1, v6[2], false}, {g3, v6[0], false}} {
		if got := guestReaches(t, c.from, c.to, ""); got != c.expected {
			t.Errorf("%s -> %s: reached %v, want %v", c.from.Name, c.to, got, c.expected)
		}
	}

	// Membership follows ports: g3 joins the default group, so g1 lets it in.
	e.update("port", p3.id, object{"security_groups": []any{web, def}})
	reached := false
	for deadline := time.Now().Add(10 * time.Second); !reached && time.Now().Before(deadline); {
		reached = guestReaches(t, g3, p1.ip, "")
	}
	if !reached {
		t.Error("g3 joined the default group, but still cannot reach g1")
	}
	e.update("port", p3.id, object{"security_groups": []any{web}})
	for deadline := time.Now().Add(10 * time.Second); reached && time.Now().Before(deadline); {
		reached = guestReaches(t, g3, p1.ip, "")
	}
	if reached {
		t.Error("g3 left the default group, but still reaches g1")
	}

	// TCP: web lets 8080 in from anywhere, nothing else.
	guestRun(t, g3, "printf '#!/bin/sh\\necho hello-from-g3\\nexec cat\\n' >/tmp/hello; chmod +x /tmp/hello; "+
		"(while true; do nc -l -p 8080 -e /tmp/hello; done) >/dev/null 2>&1 & "+
		"(while true; do nc -l -p 8081 -e /tmp/hello; done) >/dev/null 2>&1 &")
	for _, c := range []struct {
		port     int
		expected bool
	}{{8080, true}, {8081, false}} {
		out, _ := guestRun(t, g1, fmt.Sprintf("for i in 1 2 3 4 5; do nc -w 2 %s %d </dev/null && break; sleep 1; done", p3.ip, c.port))
		if got := strings.Contains(out, "hello-from-g3"); got != c.expected {
			t.Errorf("g1 -> g3 TCP %d: answered %v (%q), want %v", c.port, got, out, c.expected)
		}
	}

	// Anti-spoofing: an address the port does not have gets nothing.
	guestRun(t, g1, "ip addr add 10.10.0.250/24 dev "+g1.Ifnames[0])
	if guestReaches(t, g1, p2.ip, "-I 10.10.0.250") {
		t.Error("g1 reaches g2 from 10.10.0.250, an address its port does not have")
	}

	// A rule removed under a live flow: a namespace VM in the default
	// group pings g3 with one ICMP id (one tracked flow), then web loses
	// its ICMP rule; the flow stops, and comes back with the rule.
	vm := h.vm("vm")
	pv := e.port(netA, object{"name": "vm"})
	e.plugAll(h, []port{pv}, []*vmNS{vm})
	ping := newPinger(t, vm, pv.ip, p3.ip)
	if _, ok := ping.Reach(20*time.Millisecond, reachTimeout); !ok {
		t.Fatal("the namespace VM cannot ping g3")
	}
	tcp := openEcho(t, vm, p3.ip+":8080")
	if !tcp.roundTrip() {
		t.Fatal("no echo on the TCP connection to g3")
	}
	e.call("DELETE", "/v2.0/security-group-rules/"+icmpRule, nil, http.StatusNoContent)
	if d, ok := stops(ping, 5*time.Second); !ok {
		t.Error("the live ICMP flow still passes 5 s after its rule was deleted")
	} else {
		t.Logf("rule deleted: the live flow stopped within %s", d.Round(time.Millisecond))
	}
	if !tcp.roundTrip() {
		t.Error("an allowed TCP connection to g3 broke when another rule was deleted")
	}
	start = time.Now()
	e.create("security_group_rule", object{"security_group_id": web, "direction": "ingress",
		"ethertype": "IPv4", "protocol": "icmp", "remote_group_id": def})
	if at, ok := ping.Reach(10*time.Millisecond, reachTimeout); !ok {
		t.Error("the ICMP rule is back, but the flow does not pass")
	} else {
		t.Logf("rule created: the flow passes %s after the POST", at.Sub(start).Round(time.Millisecond))
	}
}

// echoConn is a TCP connection to a guest's greeting and echo server,
// kept open.
type echoConn struct {
	c   net.Conn
	buf []byte
	n   int
}

// openEcho connects from a namespace VM and reads the greeting.
func openEcho(t *testing.T, vm *vmNS, addr string) *echoConn {
	t.Helper()
	var c net.Conn
	err := namespace.Do(vm.ns, func() (err error) {
		c, err = net.DialTimeout("tcp4", addr, 10*time.Second)
		return err
	})
	if err != nil {
		t.Fatalf("TCP to %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	e := &echoConn{c: c}
	if !e.expect("hello-from-g3") {
		t.Fatalf("TCP to %s: no greeting", addr)
	}
	return e
}

// expect reads until s arrives (within a few seconds).
func (e *echoConn) expect(s string) bool {
	_ = e.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var got []byte
	buf := make([]byte, 256)
	for !strings.Contains(string(got), s) {
		n, err := e.c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			return strings.Contains(string(got), s)
		}
	}
	return true
}

// roundTrip sends a line and reports whether it comes back.
func (e *echoConn) roundTrip() bool {
	e.n++
	line := fmt.Sprintf("echo-%d", e.n)
	if _, err := io.WriteString(e.c, line+"\n"); err != nil {
		return false
	}
	return e.expect(line)
}

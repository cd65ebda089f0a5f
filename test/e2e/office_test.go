package e2e_test

import (
	"context"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/neutrino-net/neutrino/internal/ipsec/strongswan"
	"github.com/neutrino-net/neutrino/internal/namespace"
	"github.com/neutrino-net/neutrino/internal/testenv"
)

// publicGateway is the public network's gateway, which nobody answers
// for: the office and the Neutrino router are two sites on the internet,
// reachable from each other only at their public addresses.
var publicGateway = netip.MustParseAddr("203.0.113.254")

// office is a site Neutrino does not manage: a namespace whose uplink is
// the other end of the host's mapped "public" interface, running its own
// charon, with a LAN host behind it.
type office struct {
	gw, lanHost *vmNS
	wan         netip.Prefix // the office's address on the public network
	lan         netip.Prefix // the office's LAN
	hostIP      string       // the LAN host
	charon      *strongswan.Daemon
	dir         string
}

// newOffice wires the office to h's interface iface (created here) and
// its LAN host, and starts its charon when vpn is set.
func newOffice(t testing.TB, h *host, iface string, vpn bool) *office {
	t.Helper()
	o := &office{wan: netip.MustParsePrefix("203.0.113.1/24"), lan: netip.MustParsePrefix("192.168.50.1/24"),
		hostIP: "192.168.50.10"}
	o.gw, o.lanHost = h.vm("office"), h.vm("office-host")
	veth := func(a netlink.Link, peerName string, peerNS *vmNS) {
		if err := h.nl.LinkAdd(a); err != nil {
			t.Fatal(err)
		}
		l, err := h.nl.LinkByName(peerName)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.nl.LinkSetNsFd(l, int(peerNS.ns)); err != nil {
			t.Fatal(err)
		}
	}
	// The mapped interface stays in the host; its peer is the office's WAN.
	veth(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: iface}, PeerName: "wan0"}, "wan0", o.gw)
	// The LAN: office lan0 <-> the host's eth0.
	lanA := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "lan0"}, PeerName: "eth0"}
	veth(lanA, "lan0", o.gw)
	if l, err := h.nl.LinkByName("eth0"); err == nil {
		_ = h.nl.LinkSetNsFd(l, int(o.lanHost.ns))
	} else {
		t.Fatal(err)
	}
	up := func(v *vmNS, dev string, addr netip.Prefix) {
		nh := v.handle(t)
		defer nh.Close()
		for _, name := range []string{"lo", dev} {
			l, err := nh.LinkByName(name)
			if err != nil {
				t.Fatal(err)
			}
			if err := nh.LinkSetUp(l); err != nil {
				t.Fatal(err)
			}
		}
		l, _ := nh.LinkByName(dev)
		a := &netlink.Addr{IPNet: &net.IPNet{IP: addr.Addr().AsSlice(), Mask: net.CIDRMask(addr.Bits(), 32)}}
		if err := nh.AddrAdd(l, a); err != nil {
			t.Fatal(err)
		}
	}
	up(o.gw, "wan0", o.wan)
	up(o.gw, "lan0", o.lan)
	up(o.lanHost, "eth0", netip.MustParsePrefix(o.hostIP+"/24"))
	nh := o.lanHost.handle(t)
	defer nh.Close()
	if err := nh.RouteAdd(&netlink.Route{Gw: o.lan.Addr().AsSlice()}); err != nil {
		t.Fatal(err)
	}
	// The office's way to the internet: a router on the public network
	// that no test namespace answers for, as the VM's router's is.
	gh := o.gw.handle(t)
	defer gh.Close()
	if err := gh.RouteAdd(&netlink.Route{Gw: publicGateway.AsSlice()}); err != nil {
		t.Fatal(err)
	}
	if err := namespace.Do(o.gw.ns, func() error {
		return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644)
	}); err != nil {
		t.Fatal(err)
	}
	o.dir = t.TempDir()
	if !vpn {
		return o
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := strongswan.StartDaemon(ctx, strongswan.DaemonOptions{Dir: o.dir, Netns: o.gw.path, DataPlane: dataPlane,
		Charon: testenv.RequireCharon(t)})
	if err != nil {
		t.Fatalf("office charon: %v", err)
	}
	o.charon = d
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = d.Stop(ctx)
	})
	return o
}

// officeSite builds the office tests' world: node-1, whose interface pub0
// is the flat provider network "public" (203.0.113.0/24, external) that
// reaches the office (with its charon when vpn is set), and a router with
// its gateway there and the tenant network 10.1.0.0/24 behind it.
func officeSite(t testing.TB, vpn bool) (e *env, h *host, off *office, pub, tenant, router string) {
	t.Helper()
	e = newEnv(t)
	h = e.newHost("node-1", netip.MustParseAddr("192.0.2.1"))
	h.mappings = map[string]string{"public": "pub0"}
	off = newOffice(t, h, "pub0", vpn)
	h.startAgent()
	h.waitRegistered()
	pub = e.create("network", object{"name": "public", "router:external": true,
		"provider:network_type": "flat", "provider:physical_network": "public"})["id"].(string)
	e.subnet(pub, "203.0.113.0/24", object{"gateway_ip": publicGateway.String(),
		"allocation_pools": []any{object{"start": "203.0.113.10", "end": "203.0.113.200"}}})
	tenant = e.network("tenant", false)
	sub := e.subnet(tenant, "10.1.0.0/24", nil)
	router = e.router("r1", pub)
	e.addInterface(router, sub)
	return e, h, off, pub, tenant, router
}

// TestFloatingIPs: from the office on the public network (a flat provider
// network on a mapped interface), a VM is reached by its floating IP over
// ICMP and TCP, its own traffic leaves with the floating IP while another
// VM's leaves SNATed to the gateway, the floating IP shows ACTIVE, and
// dissociating stops it at once.
func TestFloatingIPs(t *testing.T) {
	e, h, off, pub, tenant, r := officeSite(t, false)
	gwIP := e.get("router", r)["external_gateway_info"].(map[string]any)["external_fixed_ips"].([]any)[0].(map[string]any)["ip_address"].(string)
	p1, p2 := e.port(tenant, object{"name": "vm1"}), e.port(tenant, object{"name": "vm2"})
	vm1, vm2 := h.vm("vm1"), h.vm("vm2")
	e.plugAll(h, []port{p1, p2}, []*vmNS{vm1, vm2})
	udpEcho(t, off.gw, off.wan.Addr().String()+":7777")

	// The default security group lets nothing in from the office: open it
	// to the public network once the floating IP is seen blocked.
	fip := e.create("floatingip", object{"floating_network_id": pub, "port_id": p1.id})
	fipAddr := fip["floating_ip_address"].(string)
	in := newPinger(t, off.gw, off.wan.Addr().String(), fipAddr)
	if !in.Silent(20*time.Millisecond, time.Second) {
		t.Fatal("the office reaches the VM through its floating IP, but the default security group allows no ingress from it")
	}
	start := time.Now()
	e.allowIngress(e.defaultGroup(), "203.0.113.0/24")
	at, ok := in.Reach(10*time.Millisecond, reachTimeout)
	if !ok {
		t.Fatalf("the office cannot ping the floating IP %s", fipAddr)
	}
	t.Logf("security group rules created -> first reply from outside through the floating IP: %s", at.Sub(start).Round(time.Millisecond))
	// TCP from outside reaches the VM, which sees the office's address.
	var ln net.Listener
	if err := namespace.Do(vm1.ns, func() (err error) { ln, err = net.Listen("tcp4", p1.ip+":8080"); return err }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	seen := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			seen <- c.RemoteAddr().(*net.TCPAddr).IP.String()
			c.Close()
		}
	}()
	var conn net.Conn
	err := namespace.Do(off.gw.ns, func() (err error) {
		conn, err = net.DialTimeout("tcp4", fipAddr+":8080", reachTimeout)
		return err
	})
	if err != nil {
		t.Fatalf("TCP from the office to the floating IP: %v", err)
	}
	conn.Close()
	if src := <-seen; src != off.wan.Addr().String() {
		t.Errorf("the VM saw the TCP client as %s, want the office %s", src, off.wan.Addr())
	}
	// Outbound: vm1 leaves with its floating IP, vm2 SNATed to the gateway.
	for _, tc := range []struct {
		vm   *vmNS
		want string
	}{{vm1, fipAddr}, {vm2, gwIP}} {
		if src, ok := udpProbe(t, tc.vm, off.wan.Addr().String()+":7777", 50*time.Millisecond, reachTimeout); !ok || src != tc.want {
			t.Errorf("%s -> office: source seen %q (%v), want %s", tc.vm.name, src, ok, tc.want)
		}
	}
	for deadline := time.Now().Add(activeTimeout); e.get("floatingip", fip["id"].(string))["status"] != "ACTIVE"; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("floating IP not ACTIVE after %s", activeTimeout)
		}
	}
	// Dissociation stops it at once.
	e.update("floatingip", fip["id"].(string), object{"port_id": nil})
	if d, ok := stops(in, 5*time.Second); !ok {
		t.Error("the floating IP still answers 5s after it was dissociated")
	} else {
		t.Logf("dissociated: pings stopped within %s", d.Round(time.Millisecond))
	}
	if src, ok := udpProbe(t, vm1, off.wan.Addr().String()+":7777", 50*time.Millisecond, reachTimeout); !ok || src != gwIP {
		t.Errorf("vm1 after the dissociation: source seen %q (%v), want the gateway %s", src, ok, gwIP)
	}
}

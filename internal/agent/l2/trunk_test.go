package l2

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/neutrino-net/neutrino/internal/testenv"
)

// TestTrunk: a trunk's subport is an 802.1q link on its parent's device
// (here a namespace VIF) named after the subport, in the subport
// network's bridge: a VM's VLAN sub-interface with the subport's MAC and
// address reaches the subport's network, and only that: an address the
// subport does not have is dropped, and the subport's own security group
// decides what reaches it. Removing the subport deletes its link and
// leaves the parent alone. On a kernel without 802.1q it is the eBPF
// datapath's (trunkBPF); with neither, the parent is wired, the subport is
// not, and L2 says why. TestLabL2 runs it on the lab's kernel.
func TestTrunk(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireKernel(t, testenv.Bridge, testenv.Veth)
	h := newHost(t, netip.Addr{}, "")
	vm1, vm2 := h.vm("vm1"), h.vm("vm2")
	nets := []agentv1.Network{network(net1, 101), network(net2, 102)}
	parent := vmPort(port1, net1, "fa:16:3e:00:00:01", "vm1", true, "10.0.0.5/24")
	sub := vmPort(port2, net2, "fa:16:3e:00:00:02", "", true, "10.1.0.5/24")
	sub.ParentID, sub.VLAN = port1, 101
	allowPing := &agentv1.Firewall{Stateful: true, Rules: []agentv1.SGRule{
		{Protocol: -1}, // egress: all
		{Ingress: true, Protocol: 1, PortMin: -1, PortMax: -1}, // ingress: ICMP
	}}
	sub.Firewall = allowPing
	other := vmPort(port3, net2, "fa:16:3e:00:00:03", "vm2", false, "10.1.0.6/24")
	ports := []agentv1.Port{parent, sub, other}

	if err := testenv.Probe(testenv.VLAN); err != nil {
		t.Logf("this kernel: %v", err)
		if err := testenv.Probe(testenv.TCBPF); err != nil {
			t.Logf("no eBPF either: %v", err)
			trunkDegraded(t, h, nets, ports)
			return
		}
		trunkBPF(t, h, vm1, vm2, nets, parent, sub, other)
		return
	}
	h.apply(nets, ports)
	link := h.link(tap(port2))
	v, ok := link.(*netlink.Vlan)
	if !ok || v.VlanId != 101 || v.ParentIndex != h.link(tap(port1)).Attrs().Index ||
		link.Attrs().MasterIndex != h.link(bridge(net2)).Attrs().Index {
		t.Fatalf("subport link %s: %#v, want VLAN 101 on %s in %s", tap(port2), link, tap(port1), bridge(net2))
	}
	if !h.l2.PortReady(port2) || h.l2.PortProblem(port2) != "" {
		t.Errorf("subport ready %v (problem %q), want ready", h.l2.PortReady(port2), h.l2.PortProblem(port2))
	}
	// The VM tags its own sub-interface, as the CNI plugin does.
	sif := "sub101"
	vmDo(t, vm1, func(vh *netlink.Handle, l netlink.Link) error {
		a := netlink.NewLinkAttrs()
		a.Name, a.ParentIndex, a.MTU = sif, l.Attrs().Index, 1450
		a.HardwareAddr, _ = net.ParseMAC("fa:16:3e:00:00:02")
		if err := vh.LinkAdd(&netlink.Vlan{LinkAttrs: a, VlanId: 101}); err != nil {
			return err
		}
		s, err := vh.LinkByName(sif)
		if err != nil {
			return err
		}
		return vh.LinkSetUp(s)
	}, nsDev(port1))
	addAddr(t, vm1, sif, "10.1.0.5/24")
	waitUp(t, vm1, sif)
	waitUp(t, vm2, nsDev(port3))
	mustPing(t, vm1, "10.1.0.5", "10.1.0.6")
	mustPing(t, vm2, "10.1.0.6", "10.1.0.5")
	addAddr(t, vm1, sif, "10.1.0.99/24")
	mustNotPing(t, vm1, "10.1.0.99", "10.1.0.6")

	// The subport's group, not the parent's, filters it.
	h.take()
	sub.Firewall = &agentv1.Firewall{Stateful: true, Rules: allowPing.Rules[:1]}
	h.apply(nets, []agentv1.Port{parent, sub, other})
	mustNotPing(t, vm2, "10.1.0.6", "10.1.0.5")
	mustPing(t, vm1, "10.1.0.5", "10.1.0.6")

	h.take()
	h.apply(nets, []agentv1.Port{parent, sub, other})
	if ops := h.take(); len(ops) > 0 {
		t.Errorf("second apply wrote %q, want nothing", ops)
	}
	h.apply(nets, []agentv1.Port{parent, other})
	if l, _ := h.h.LinkByName(tap(port2)); l != nil {
		t.Errorf("%s left after the subport went", tap(port2))
	}
	if !h.l2.PortReady(port1) || h.link(tap(port1)) == nil {
		t.Errorf("the parent went with its subport")
	}
}

// trunkDegraded: with neither 802.1q nor eBPF, the parent is wired, the
// subport is not, and L2 says why.
func trunkDegraded(t *testing.T, h *host, nets []agentv1.Network, ports []agentv1.Port) {
	err := h.applyErr(nets, ports)
	if !errors.Is(err, ErrVLANUnavailable) {
		t.Fatalf("subport on a kernel without 802.1q: %v, want ErrVLANUnavailable", err)
	}
	if !h.l2.PortReady(port1) || !h.l2.PortReady(port3) || h.l2.PortReady(port2) {
		t.Errorf("ready: parent %v, other %v, subport %v; want true, true, false",
			h.l2.PortReady(port1), h.l2.PortReady(port3), h.l2.PortReady(port2))
	}
	if why := h.l2.PortProblem(port2); !strings.Contains(why, "802.1q") {
		t.Errorf("subport's problem %q, want it to name 802.1q", why)
	}
}

// trunkBPF: on a kernel without 802.1q, the subport's device is the
// bridge-side end of a veth pair whose other end the parent's tc program
// sends the subport's VLAN to. The "VM" cannot make 802.1q links here: it
// sends and sniffs tagged frames with a packet socket.
func trunkBPF(t *testing.T, h *host, vm1, vm2 *testNS, nets []agentv1.Network, parent, sub, other agentv1.Port) {
	const (
		parentMAC = "fa:16:3e:00:00:01"
		subMAC    = "fa:16:3e:00:00:02"
		otherMAC  = "fa:16:3e:00:00:03"
		bcast     = "ff:ff:ff:ff:ff:ff"
	)
	h.apply(nets, []agentv1.Port{parent, sub, other})
	if !h.l2.PortReady(port2) || h.l2.PortProblem(port2) != "" {
		t.Fatalf("subport ready %v (problem %q), want ready", h.l2.PortReady(port2), h.l2.PortProblem(port2))
	}
	dev, end := h.link(tap(port2)), h.link(agentv1.DeviceName(SubportBPFPrefix, port2))
	if dev == nil || end == nil || dev.Type() != "veth" || dev.Attrs().ParentIndex != end.Attrs().Index ||
		dev.Attrs().MasterIndex != h.link(bridge(net2)).Attrs().Index || end.Attrs().MasterIndex != 0 ||
		dev.Attrs().MTU != 1450 {
		t.Fatalf("subport devices %#v and %#v, want a veth pair, %s in %s", dev, end, tap(port2), bridge(net2))
	}
	progID := func() int {
		t.Helper()
		f, err := h.l2.dp.(*linux).bpfFilter(h.link(tap(port1)))
		if err != nil || f == nil || f.Name != trunkFilterName {
			t.Fatalf("parent's filter: %#v, %v; want %s", f, err, trunkFilterName)
		}
		return f.Id
	}
	firstProg := progID()

	waitUp(t, vm1, nsDev(port1))
	waitUp(t, vm2, nsDev(port3))
	vmSock := openRaw(t, vm1.NsHandle, nsDev(port1))
	peer := openRaw(t, vm2.NsHandle, nsDev(port3))
	br1, br2 := openRaw(t, h.ns.NsHandle, bridge(net1)), openRaw(t, h.ns.NsHandle, bridge(net2))

	// ARP over the subport's VLAN: the request reaches the subport's
	// network untagged, the reply comes back tagged.
	isARP := func(op uint16, spa, tpa string) func(frame) bool {
		return func(f frame) bool {
			o, s, d, ok := f.arp()
			return ok && o == op && s == netip.MustParseAddr(spa) && d == netip.MustParseAddr(tpa)
		}
	}
	req := ethFrame(bcast, subMAC, 101, unix.ETH_P_ARP, arpPayload(1, subMAC, "10.1.0.5", "10.1.0.6", "00:00:00:00:00:00"))
	reply, ok := exchange(vmSock, req, vmSock, isARP(2, "10.1.0.6", "10.1.0.5"), 3*time.Second)
	if !ok {
		t.Fatal("tagged ARP request on VLAN 101: no reply")
	}
	if reply.VLAN != 101 || reply.Src.String() != otherMAC {
		t.Errorf("ARP reply: VLAN %d from %s, want VLAN 101 from %s", reply.VLAN, reply.Src, otherMAC)
	}
	if f, ok := peer.waitSeen(isARP(1, "10.1.0.5", "10.1.0.6"), time.Second); !ok || f.VLAN != -1 {
		t.Errorf("the peer saw the request: %v, tagged %d; want it untagged", ok, f.VLAN)
	}
	if _, ok := br2.waitSeen(isARP(1, "10.1.0.5", "10.1.0.6"), time.Second); !ok {
		t.Error("the subport network's bridge did not see the broadcast request")
	}
	if _, ok := br1.seen(isARP(1, "10.1.0.5", "10.1.0.6")); ok {
		t.Error("the parent network's bridge saw the subport's request")
	}

	// ICMP echo over the subport's VLAN.
	echo := func(vlan int, srcMAC, src string, id uint16) []byte {
		return ethFrame(otherMAC, srcMAC, vlan, unix.ETH_P_IP, ipv4Packet(src, "10.1.0.6", 1, icmpEcho(8, id, 1)))
	}
	isEcho := func(typ byte, id uint16) func(frame) bool { return func(f frame) bool { return f.isEcho(typ, id) } }
	if r, ok := exchange(vmSock, echo(101, subMAC, "10.1.0.5", 1), vmSock, isEcho(0, 1), 3*time.Second); !ok || r.VLAN != 101 {
		t.Errorf("tagged echo request on VLAN 101: reply %v on VLAN %d, want one on VLAN 101", ok, r.VLAN)
	}

	// Nowhere: another VLAN, an address the subport does not have, a MAC
	// it does not have.
	// The parent's anti-spoofing would drop a tagged frame too: without it
	// only the parent's program keeps an unknown VLAN out of the parent's
	// network.
	unsecured := parent
	unsecured.PortSecurity = false
	h.apply(nets, []agentv1.Port{unsecured, sub, other})
	peer.clear()
	br1.clear()
	br2.clear()
	vmSock.clear()
	unknown := ethFrame(bcast, parentMAC, 102, unix.ETH_P_ARP, arpPayload(1, parentMAC, "10.0.0.5", "10.0.0.7", "00:00:00:00:00:00"))
	for _, c := range []struct {
		what  string
		frame []byte
		match func(frame) bool
	}{
		{"unknown VLAN 102", unknown, isARP(1, "10.0.0.5", "10.0.0.7")},
		{"unknown VLAN 102 echo", echo(102, subMAC, "10.1.0.5", 2), isEcho(8, 2)},
		{"spoofed address 10.1.0.99", echo(101, subMAC, "10.1.0.99", 3), isEcho(8, 3)},
		{"spoofed MAC", echo(101, "fa:16:3e:00:00:99", "10.1.0.5", 4), isEcho(8, 4)},
	} {
		for range 3 {
			vmSock.send(c.frame)
		}
		time.Sleep(300 * time.Millisecond)
		for _, s := range []struct {
			name string
			sock *rawSock
		}{{"the peer", peer}, {bridge(net1), br1}, {bridge(net2), br2}} {
			if _, ok := s.sock.seen(c.match); ok {
				t.Errorf("%s: %s saw it, want it dropped", c.what, s.name)
			}
		}
	}
	if _, ok := vmSock.seen(func(f frame) bool { return f.isEcho(0, 2) || f.isEcho(0, 3) || f.isEcho(0, 4) }); ok {
		t.Error("a dropped echo request was answered")
	}
	h.apply(nets, []agentv1.Port{parent, sub, other})

	// The subport's security group (ingress: ICMP) decides what reaches
	// it: the peer's echo request does, tagged; its UDP does not.
	vmDo(t, vm2, func(vh *netlink.Handle, l netlink.Link) error {
		mac, _ := net.ParseMAC(subMAC)
		return vh.NeighSet(&netlink.Neigh{LinkIndex: l.Attrs().Index, Family: unix.AF_INET, State: netlink.NUD_PERMANENT,
			IP: net.ParseIP("10.1.0.5"), HardwareAddr: mac})
	}, nsDev(port3))
	toSub := func(l4 []byte, proto byte) []byte {
		return ethFrame(subMAC, otherMAC, -1, unix.ETH_P_IP, ipv4Packet("10.1.0.6", "10.1.0.5", proto, l4))
	}
	if f, ok := exchange(peer, toSub(icmpEcho(8, 5, 1), 1), vmSock, isEcho(8, 5), 3*time.Second); !ok || f.VLAN != 101 {
		t.Errorf("peer's echo request to the subport: seen %v on VLAN %d, want it on VLAN 101", ok, f.VLAN)
	}
	isUDP := func(f frame) bool { return f.isUDP(5000) }
	if _, ok := exchange(peer, toSub(udpDatagram(4000, 5000, "x"), 17), vmSock, isUDP, time.Second); ok {
		t.Error("peer's UDP datagram reached the subport; its group allows only ICMP in")
	}
	h.take()
	sub.Firewall = &agentv1.Firewall{Stateful: true, Rules: sub.Firewall.Rules[:1]} // egress only
	h.apply(nets, []agentv1.Port{parent, sub, other})
	vmSock.clear()
	if _, ok := exchange(peer, toSub(icmpEcho(8, 6, 1), 1), vmSock, isEcho(8, 6), time.Second); ok {
		t.Error("peer's echo request reached the subport; its group no longer allows it")
	}
	if _, ok := exchange(vmSock, echo(101, subMAC, "10.1.0.5", 7), vmSock, isEcho(0, 7), 3*time.Second); !ok {
		t.Error("the subport's own echo request: no reply; its group allows egress")
	}

	// An agent restart adopts the datapath as it is.
	h.take()
	h.l2 = h.newL2(netip.Addr{}, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.l2.Sweep(ctx, nets, []agentv1.Port{parent, sub, other}); err != nil {
		t.Fatalf("sweep: %v", err)
	}
	if ops := h.take(); len(ops) > 0 {
		t.Errorf("restart wrote %q, want nothing", ops)
	}
	if id := progID(); id != firstProg {
		t.Errorf("restart replaced the parent's program %d with %d", firstProg, id)
	}
	if !h.l2.PortReady(port2) {
		t.Error("subport not ready after the restart")
	}
	if _, ok := exchange(vmSock, echo(101, subMAC, "10.1.0.5", 8), vmSock, isEcho(0, 8), 3*time.Second); !ok {
		t.Error("after the restart: no reply on VLAN 101")
	}
	h.apply(nets, []agentv1.Port{parent, sub, other})
	if ops := h.take(); len(ops) > 0 {
		t.Errorf("second apply wrote %q, want nothing", ops)
	}

	// Removing the subport removes its devices and the parent's program.
	h.apply(nets, []agentv1.Port{parent, other})
	for _, n := range []string{tap(port2), agentv1.DeviceName(SubportBPFPrefix, port2)} {
		if l, _ := h.h.LinkByName(n); l != nil {
			t.Errorf("%s left after the subport went", n)
		}
	}
	if f, err := h.l2.dp.(*linux).bpfFilter(h.link(tap(port1))); err != nil || f != nil {
		t.Errorf("parent's filter after its last subport went: %#v, %v; want none", f, err)
	}
	if !h.l2.PortReady(port1) || h.link(tap(port1)) == nil {
		t.Errorf("the parent went with its subport")
	}
}

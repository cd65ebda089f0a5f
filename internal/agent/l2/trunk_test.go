package l2

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/neutrino-net/neutrino/internal/testenv"
)

// TestTrunk: a trunk's subport is an 802.1q link on its parent's device
// (here a namespace VIF) named after the subport, in the subport
// network's bridge: a VM's VLAN sub-interface with the subport's MAC and
// address reaches the subport's network, and only that: an address the
// subport does not have is dropped, and the subport's own security group
// decides what reaches it. Removing the subport deletes its link and
// leaves the parent alone. On a kernel without 802.1q the parent is wired,
// the subport is not, and L2 says why. TestLabL2 runs it on the lab's
// kernel.
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
		t.Logf("this kernel: %v", err)
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

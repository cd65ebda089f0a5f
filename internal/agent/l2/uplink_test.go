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

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/neutrino-net/neutrino/internal/testenv"
	"github.com/neutrino-net/neutrino/internal/vmlab"
)

// wire is a mapped "physical" interface of a host: one end of a veth whose
// other end is in a namespace standing for the switch and what is behind
// it (far).
type wire struct {
	iface string
	far   *testNS
}

// newWire makes iface in the host, down, its peer in a new namespace.
func newWire(t *testing.T, h *host, iface string) wire {
	t.Helper()
	far := newNS(t, "", "")
	if err := h.h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: iface}, PeerName: "far0",
		PeerNamespace: netlink.NsFd(far.NsHandle)}); err != nil {
		t.Fatal(err)
	}
	vmDo(t, far, func(fh *netlink.Handle, l netlink.Link) error { return fh.LinkSetUp(l) }, "far0")
	return wire{iface: iface, far: far}
}

func (h *host) uplinkL2(mappings map[string]string, state string) *L2 {
	return h.newL2(netip.Addr{}, "", func(o *Options) { o.PhysicalInterfaceMappings, o.StateDir = mappings, state })
}

func (h *host) applyErr(nets []agentv1.Network, ports []agentv1.Port) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return h.l2.Apply(ctx, nets, ports)
}

// TestFlatUplink: a flat network's bridge enslaves the interface mapped to
// its physical network, raised; a VM on it reaches what is behind the
// interface. A restarted agent adopts it without a write. When the network
// goes, the interface leaves the bridge and is down again as it was; an
// interface that is not mapped is never touched; a mapped interface with
// an address, or an unmapped physical network, is refused clearly.
func TestFlatUplink(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireKernel(t, testenv.Bridge, testenv.Veth)
	h := newHost(t, netip.MustParseAddr("192.0.2.1"), "")
	up := newWire(t, h, "up0")
	other := newWire(t, h, "other0")
	addAddr(t, up.far, "far0", "198.51.100.99/24")
	state := t.TempDir()
	h.l2 = h.uplinkL2(map[string]string{"physnet1": "up0", "physnet2": "other0"}, state)

	flat := agentv1.Network{ID: net1, Type: "flat", PhysicalNetwork: "physnet1", MTU: 1500}
	vm := h.vm("vm1")
	p := vmPort(port1, net1, "fa:16:3e:00:00:01", "vm1", false, "198.51.100.10/24")
	p.Gateways = nil
	h.apply([]agentv1.Network{flat}, []agentv1.Port{p})
	br := h.link(bridge(net1))
	l := h.link("up0")
	if l.Attrs().MasterIndex != br.Attrs().Index || l.Attrs().Flags&net.FlagUp == 0 {
		t.Fatalf("up0: master %d up %v; want bridge %d and up", l.Attrs().MasterIndex, l.Attrs().Flags&net.FlagUp != 0, br.Attrs().Index)
	}
	waitUp(t, vm, nsDev(port1))
	mustPing(t, vm, "198.51.100.10", "198.51.100.99")
	if o := h.link("other0"); o.Attrs().MasterIndex != 0 || o.Attrs().Flags&net.FlagUp != 0 {
		t.Errorf("other0, mapped but unused, was touched: master %d flags %v", o.Attrs().MasterIndex, o.Attrs().Flags)
	}
	_ = other

	// A restart adopts it as it is.
	h.take()
	h.l2 = h.uplinkL2(map[string]string{"physnet1": "up0", "physnet2": "other0"}, state)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.l2.Sweep(ctx, []agentv1.Network{flat}, []agentv1.Port{p}); err != nil {
		t.Fatal(err)
	}
	if ops := h.take(); len(ops) != 0 {
		t.Errorf("restart wrote %v; want nothing", ops)
	}

	// The network goes: up0 is out of the bridge and down, as before.
	h.apply(nil, nil)
	l = h.link("up0")
	if l.Attrs().MasterIndex != 0 || l.Attrs().Flags&net.FlagUp != 0 {
		t.Errorf("up0 after the network went: master %d up %v; want no master, down", l.Attrs().MasterIndex, l.Attrs().Flags&net.FlagUp != 0)
	}

	// Refusals.
	if err := h.applyErr([]agentv1.Network{{ID: net2, Type: "flat", PhysicalNetwork: "physnet9", MTU: 1500}}, nil); err == nil ||
		!strings.Contains(err.Error(), `physical network "physnet9" is not mapped`) {
		t.Errorf("unmapped physical network: %v", err)
	}
	addAddr(t, &testNS{NsHandle: h.ns.NsHandle}, "other0", "203.0.113.5/24")
	if err := h.applyErr([]agentv1.Network{{ID: net2, Type: "flat", PhysicalNetwork: "physnet2", MTU: 1500}}, nil); err == nil ||
		!strings.Contains(err.Error(), "must be dedicated") {
		t.Errorf("mapped interface with an address: %v", err)
	}
	if o := h.link("other0"); o.Attrs().MasterIndex != 0 {
		t.Errorf("other0 with an address was enslaved")
	}
}

// TestVLANUplink: on a kernel with 802.1q a VLAN network's bridge enslaves
// <interface>.<vlan>, which carries tagged frames to what is behind the
// interface, and goes with the network; on a kernel without it the agent
// says VLAN is unavailable. TestLabL2 runs it on the lab's kernel.
func TestVLANUplink(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireKernel(t, testenv.Bridge, testenv.Veth)
	h := newHost(t, netip.MustParseAddr("192.0.2.1"), "")
	up := newWire(t, h, "up0")
	h.l2 = h.uplinkL2(map[string]string{"physnet1": "up0"}, t.TempDir())
	vlan := agentv1.Network{ID: net1, Type: "vlan", PhysicalNetwork: "physnet1", VLAN: 100, MTU: 1500}
	p := vmPort(port1, net1, "fa:16:3e:00:00:01", "vm1", false, "198.51.100.10/24")
	p.Gateways = nil
	vm := h.vm("vm1")
	if testenv.Probe(testenv.VLAN) != nil {
		err := h.applyErr([]agentv1.Network{vlan}, []agentv1.Port{p})
		if !errors.Is(err, ErrVLANUnavailable) {
			t.Fatalf("VLAN network on a kernel without 802.1q: %v, want ErrVLANUnavailable", err)
		}
		t.Logf("this kernel: %v", err)
		return
	}
	// Behind the interface: the same VLAN, tagged.
	vmDo(t, up.far, func(fh *netlink.Handle, parent netlink.Link) error {
		a := netlink.NewLinkAttrs()
		a.Name, a.ParentIndex = "far0.100", parent.Attrs().Index
		if err := fh.LinkAdd(&netlink.Vlan{LinkAttrs: a, VlanId: 100}); err != nil {
			return err
		}
		v, err := fh.LinkByName("far0.100")
		if err != nil {
			return err
		}
		return fh.LinkSetUp(v)
	}, "far0")
	addAddr(t, up.far, "far0.100", "198.51.100.99/24")
	h.apply([]agentv1.Network{vlan}, []agentv1.Port{p})
	sub := h.link("up0.100")
	if v, ok := sub.(*netlink.Vlan); !ok || v.VlanId != 100 || sub.Attrs().MasterIndex != h.link(bridge(net1)).Attrs().Index {
		t.Fatalf("up0.100: %#v", sub)
	}
	waitUp(t, vm, nsDev(port1))
	mustPing(t, vm, "198.51.100.10", "198.51.100.99")
	h.apply(nil, nil)
	if l, _ := h.h.LinkByName("up0.100"); l != nil {
		t.Errorf("up0.100 left after the network went")
	}
	if l := h.link("up0"); l.Attrs().Flags&net.FlagUp != 0 {
		t.Errorf("up0 still up after its only VLAN network went")
	}
}

// TestLabL2 runs the uplink tests on the lab's kernel, which has 802.1q.
func TestLabL2(t *testing.T) {
	if !vmlab.Enter(t) {
		return
	}
	if err := testenv.Probe(testenv.VLAN); err != nil {
		t.Fatalf("the lab kernel has no VLAN: %v", err)
	}
	t.Run("Flat", TestFlatUplink)
	t.Run("VLAN", TestVLANUplink)
	t.Run("Trunk", TestTrunk)
}

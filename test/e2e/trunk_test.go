package e2e_test

import (
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/neutrino-net/neutrino/internal/agent/l2"
	"github.com/neutrino-net/neutrino/internal/testenv"
)

// waitTrunk polls until the trunk has status want.
func (e *env) waitTrunk(id, want string) {
	e.t.Helper()
	deadline := time.Now().Add(activeTimeout)
	for {
		got := e.get("trunk", id)["status"]
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("trunk %s: status %v after %s, want %s", id, got, activeTimeout, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestTrunkWiring: a subport added before its parent was bound follows the
// parent to its host when the parent is plugged, and the agent wires it as
// VLAN 42 on the parent's device: the trunk and the subport become ACTIVE.
// On a kernel without 802.1q (this machine's) the subport's device is the
// eBPF datapath's veth pair, and the trunk ACTIVE all the same; with
// neither 802.1q nor eBPF the parent is still ACTIVE and the trunk
// DEGRADED, the subport DOWN. Unbinding the parent puts the
// trunk DOWN and takes the subport off the host.
func TestTrunkWiring(t *testing.T) {
	e, h := oneNode(t)
	n := e.network("net", false)
	e.subnet(n, "10.0.0.0/24", nil)
	n2 := e.network("net2", false)
	e.subnet(n2, "10.2.0.0/24", nil)
	pv, sp := e.port(n, object{"name": "vm"}), e.port(n2, object{"name": "sub"})
	tr := e.create("trunk", object{"port_id": pv.id, "sub_ports": []any{
		object{"port_id": sp.id, "segmentation_type": "vlan", "segmentation_id": 42}}})["id"].(string)
	if got := e.get("port", sp.id)["binding:host_id"]; got != "" {
		t.Fatalf("subport of an unbound parent is bound to %q", got)
	}
	vm := h.vm("vm")
	e.plugAll(h, []port{pv}, []*vmNS{vm})
	if got := e.get("port", sp.id)["binding:host_id"]; got != h.name {
		t.Fatalf("subport's binding:host_id %q after its parent was bound to %s", got, h.name)
	}
	switch {
	case testenv.Probe(testenv.VLAN) == nil:
		e.waitTrunk(tr, "ACTIVE")
		e.waitActive(sp, time.Now())
		l, err := h.nl.LinkByName(agentv1.DeviceName(agentv1.TapPrefix, sp.id))
		parent, perr := h.nl.LinkByName(agentv1.DeviceName(agentv1.TapPrefix, pv.id))
		if v, ok := l.(*netlink.Vlan); err != nil || perr != nil || !ok || v.VlanId != 42 || v.ParentIndex != parent.Attrs().Index {
			t.Fatalf("subport link: %#v (%v, %v), want VLAN 42 on the parent's", l, err, perr)
		}
	case testenv.Probe(testenv.TCBPF) == nil:
		// No 802.1q (this machine): the eBPF datapath, a veth pair.
		e.waitTrunk(tr, "ACTIVE")
		e.waitActive(sp, time.Now())
		l, err := h.nl.LinkByName(agentv1.DeviceName(agentv1.TapPrefix, sp.id))
		end, eerr := h.nl.LinkByName(agentv1.DeviceName(l2.SubportBPFPrefix, sp.id))
		if err != nil || eerr != nil || l.Type() != "veth" || l.Attrs().ParentIndex != end.Attrs().Index {
			t.Fatalf("subport devices: %#v, %#v (%v, %v), want a veth pair", l, end, err, eerr)
		}
		t.Logf("no 802.1q here: the eBPF datapath")
	default:
		e.waitTrunk(tr, "DEGRADED")
		if got := e.get("port", sp.id)["status"]; got != "DOWN" {
			t.Errorf("subport status %v on a kernel without 802.1q or eBPF, want DOWN", got)
		}
		t.Logf("neither 802.1q nor eBPF here: trunk DEGRADED, as wanted")
	}
	e.update("port", pv.id, object{"binding:host_id": "", "binding:profile": object{}})
	e.waitTrunk(tr, "DOWN")
	if got := e.get("port", sp.id)["binding:host_id"]; got != "" {
		t.Fatalf("subport still bound to %q after its parent was unbound", got)
	}
}

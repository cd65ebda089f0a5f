package l2

import (
	"bytes"
	"net/netip"
	"slices"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/neutrino-net/neutrino/internal/testenv"
)

// TestTrunkPrograms runs the parent's tc program on frames whose tag is
// still in the data (TestTrunk sees the kernel's offloaded tags): the
// subport's VLAN is popped and redirected, an unknown VLAN or an 802.1ad
// tag dropped, untagged and priority-tagged frames passed.
func TestTrunkPrograms(t *testing.T) {
	testenv.RequireKernel(t, testenv.TCBPF)
	vlans, err := newVLANMap()
	if err != nil {
		t.Fatal(err)
	}
	defer vlans.Close()
	if err := vlans.Put(uint32(101), uint32(42)); err != nil {
		t.Fatal(err)
	}
	prog, err := loadProgram("nt_trunk", trunkProgram(vlans.FD()))
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	const tcActRedirect = 7
	ip := ipv4Packet("10.1.0.5", "10.1.0.6", 1, icmpEcho(8, 1, 1))
	const dst, src = "fa:16:3e:00:00:03", "fa:16:3e:00:00:02"
	untagged := ethFrame(dst, src, -1, unix.ETH_P_IP, ip)
	qinq := ethFrame(dst, src, 101, unix.ETH_P_IP, ip)
	qinq[12], qinq[13] = 0x88, 0xa8
	for _, c := range []struct {
		what string
		in   []byte
		want uint32
		out  []byte
	}{
		{"untagged", untagged, tcActOK, untagged},
		{"VLAN 101", ethFrame(dst, src, 101, unix.ETH_P_IP, ip), tcActRedirect, untagged},
		{"VLAN 101, priority 5", ethFrame(dst, src, 5<<13|101, unix.ETH_P_IP, ip), tcActRedirect, untagged},
		{"VLAN 102", ethFrame(dst, src, 102, unix.ETH_P_IP, ip), tcActShot, nil},
		{"priority tag", ethFrame(dst, src, 0, unix.ETH_P_IP, ip), tcActOK, nil},
		{"802.1ad", qinq, tcActShot, nil},
	} {
		out := make([]byte, len(c.in)+64)
		got, err := prog.Run(&ebpf.RunOptions{Data: c.in, DataOut: out})
		if err != nil {
			t.Fatalf("%s: %v", c.what, err)
		}
		if got != c.want {
			t.Errorf("%s: verdict %d, want %d", c.what, got, c.want)
		}
		if c.out != nil && !bytes.Equal(out[:len(c.out)], c.out) {
			t.Errorf("%s: frame out\n%x\nwant\n%x", c.what, out[:len(c.out)], c.out)
		}
	}

	sub, err := loadProgram("nt_subport", subportProgram(101, 42))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if got, err := sub.Run(&ebpf.RunOptions{Data: untagged}); err != nil || got != tcActRedirect {
		t.Errorf("subport program: verdict %d, %v; want %d", got, err, tcActRedirect)
	}
}

// TestTrunkProgramUpgrade: a parent's program of another version (an
// agent upgrade) is replaced with its map's entries carried over; the
// current one is adopted as it is, without a write.
func TestTrunkProgramUpgrade(t *testing.T) {
	testenv.RequireKernel(t, testenv.Veth, testenv.TCBPF)
	h := newHost(t, netip.Addr{}, "")
	if err := h.h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "tapparent00000"}, PeerName: "peer0"}); err != nil {
		t.Fatal(err)
	}
	parent := h.link("tapparent00000")
	k := h.l2.dp.(*linux)

	// The "old" agent's: the same filter, another program, one entry.
	old, err := newVLANMap()
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if err := old.Put(uint32(101), uint32(42)); err != nil {
		t.Fatal(err)
	}
	prev := append(asm.Instructions{asm.Mov.Imm(asm.R0, 0)}, trunkProgram(old.FD())...)
	prog, err := loadProgram("nt_trunk", prev)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.attach(parent, trunkFilterName, prog); err != nil {
		t.Fatal(err)
	}
	prog.Close()
	before, _ := k.bpfFilter(parent)
	h.take()

	m, err := k.trunkMap(parent, true)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	after, _ := k.bpfFilter(parent)
	if after == nil || after.Id == before.Id || !sameProgram(trunkProgram(0), after) {
		t.Fatalf("program %d replaced by %#v, want the current program", before.Id, after)
	}
	var idx uint32
	if err := m.Lookup(uint32(101), &idx); err != nil || idx != 42 {
		t.Errorf("VLAN 101 in the new map: %d, %v; want 42 carried over", idx, err)
	}
	want := []string{"tc filter replace dev tapparent00000 ingress bpf " + trunkFilterName}
	if got := h.take(); !slices.Equal(got, want) {
		t.Errorf("upgrade wrote %q, want %q", got, want)
	}

	again, err := k.trunkMap(parent, true)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if f, _ := k.bpfFilter(parent); f == nil || f.Id != after.Id {
		t.Errorf("the current program was replaced: %#v", f)
	}
	if ops := h.take(); len(ops) > 0 {
		t.Errorf("adopting the current program wrote %q", ops)
	}

	// Its last subport gone, the parent has neither filter nor qdisc.
	if err := k.detachTrunk(parent); err != nil {
		t.Fatal(err)
	}
	if f, _ := k.bpfFilter(parent); f != nil {
		t.Errorf("filter left: %#v", f)
	}
	qs, _ := h.h.QdiscList(parent)
	for _, q := range qs {
		if q.Type() == "clsact" {
			t.Error("clsact qdisc left")
		}
	}
}

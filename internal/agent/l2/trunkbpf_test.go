package l2

import (
	"bytes"
	"testing"

	"github.com/cilium/ebpf"
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

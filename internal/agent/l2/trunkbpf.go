package l2

// The eBPF datapath of trunk subports, for kernels without 802.1q links.
//
// Per subport, a veth pair: its bridge-side end carries the subport's
// device name ("tap" + 11 characters of the subport id, the name the
// 802.1q link has elsewhere) and sits in the subport network's bridge, so
// the subport's anti-spoofing and security groups (nftables rules keyed
// on that name) apply unchanged; its other end ("spt" + the same 11
// characters) is the BPF side: up, in no bridge, without addresses.
//
// On the parent's device (a VM's tap, or a namespace VIF's host end), a
// clsact qdisc with one ingress cls_bpf program in direct-action mode
// (nt_trunk, filter "neutrino-trunk"), and a hash map of the parent's
// VLAN ids, each to the ifindex of its subport's BPF-side end. For a frame
// the guest sent:
//   - with an 802.1Q tag (in skb->vlan_tci, where the kernel has usually
//     moved it before tc runs, or still in the packet data) whose VLAN id is
//     in the map: the tag is popped and the frame redirected to the egress
//     of that BPF-side end, so it enters the subport's bridge untagged on
//     the bridge-side end, as from the subport's own device;
//   - tagged with a VLAN id not in the map, or with an 802.1ad tag: dropped;
//   - untagged or priority-tagged (VLAN id 0): passed on to the parent's
//     bridge, as without a trunk.
//
// On each subport's BPF-side end, an ingress program (nt_subport, filter
// "neutrino-subport vlan=V parent=I") pushes the subport's 802.1Q tag and
// redirects the frame to the egress of the parent's device: what the
// subport's bridge sends the subport reaches the guest tagged. Its VLAN id
// and parent ifindex are constants of the program, and the filter's name
// says them, so that removing the subport finds its parent's map entry.
//
// Nothing is pinned: the programs and the map live as long as the filters
// that hold them, so they survive an agent restart and go with the devices
// (a VM's tap that its hypervisor deletes takes the parent's program and
// map with it). A restarted agent adopts them: it finds the parent's
// program through its filter, checks that its instructions are the ones it
// would load (the kernel's tag) and reopens its map by id; a program of
// another version is replaced atomically (tc filter replace), its map's
// entries carried over. Removing a subport deletes its map entry, then its
// veth pair; the parent's filter goes with the last subport.
//
// The subport's device MTU is the subport's, as for its 802.1q link, and
// like the kernel for an 802.1q link it may not exceed the parent's: the
// tagged frames travel on the parent's device.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/rlimit"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/neutrino-net/neutrino/api/agentv1"
)

// SubportBPFPrefix names the BPF-side end of an eBPF subport's veth pair.
const SubportBPFPrefix = "spt"

const (
	trunkFilterName   = "neutrino-trunk"
	subportFilterName = "neutrino-subport"
	// Our filter's place on an ingress hook.
	bpfPriority = 1
	bpfHandle   = 1
	// Map size: every VLAN id.
	maxVLANs = 4096

	tcActOK   = 0
	tcActShot = 2

	// Offsets in struct __sk_buff (include/uapi/linux/bpf.h).
	skbProtocol    = 16
	skbVLANPresent = 20
	skbVLANTCI     = 24
	skbVLANProto   = 28
)

// errBPFUnavailable is the kernel refusing what the eBPF datapath needs.
var errBPFUnavailable = errors.New("eBPF tc programs (cls_bpf, clsact) are unavailable")

// be16 is a 16-bit value as a program sees a __be16 field loaded whole.
func be16(v uint16) int32 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return int32(binary.NativeEndian.Uint16(b[:]))
}

// hostOrder is the host's byte order as the asm package knows it (it
// takes binary.LittleEndian or binary.BigEndian only).
func hostOrder() binary.ByteOrder {
	if binary.NativeEndian.Uint16([]byte{1, 0}) == 1 {
		return binary.LittleEndian
	}
	return binary.BigEndian
}

// trunkProgram is the parent's ingress program over its map of VLAN ids.
func trunkProgram(vlans int) asm.Instructions {
	return asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1), // the skb
		asm.LoadMem(asm.R2, asm.R6, skbVLANPresent, asm.Word),
		asm.JEq.Imm(asm.R2, 0, "data"),
		asm.LoadMem(asm.R2, asm.R6, skbVLANProto, asm.Word),
		asm.JNE.Imm(asm.R2, be16(unix.ETH_P_8021Q), "drop"),
		asm.LoadMem(asm.R2, asm.R6, skbVLANTCI, asm.Word),
		asm.Ja.Label("vid"),
		// No offloaded tag: one in the data, or none.
		asm.LoadMem(asm.R2, asm.R6, skbProtocol, asm.Word).WithSymbol("data"),
		asm.JEq.Imm(asm.R2, be16(unix.ETH_P_8021Q), "inline"),
		asm.JEq.Imm(asm.R2, be16(unix.ETH_P_8021AD), "drop"),
		asm.Mov.Imm(asm.R0, tcActOK).WithSymbol("pass"),
		asm.Return(),
		// bpf_skb_load_bytes(skb, 14, fp-8, 2): the TCI after the TPID.
		asm.Mov.Reg(asm.R1, asm.R6).WithSymbol("inline"),
		asm.Mov.Imm(asm.R2, 14),
		asm.Mov.Reg(asm.R3, asm.RFP),
		asm.Add.Imm(asm.R3, -8),
		asm.Mov.Imm(asm.R4, 2),
		asm.FnSkbLoadBytes.Call(),
		asm.JNE.Imm(asm.R0, 0, "drop"),
		asm.LoadMem(asm.R2, asm.RFP, -8, asm.Half),
		asm.HostTo(asm.BE, asm.R2, asm.Half),
		asm.And.Imm(asm.R2, 0x0fff).WithSymbol("vid"),
		asm.JEq.Imm(asm.R2, 0, "pass"), // priority tag: the kernel treats it as untagged
		asm.StoreMem(asm.RFP, -4, asm.R2, asm.Word),
		asm.LoadMapPtr(asm.R1, vlans),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "drop"),
		asm.LoadMem(asm.R7, asm.R0, 0, asm.Word), // the subport's BPF-side end
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.FnSkbVlanPop.Call(),
		asm.JNE.Imm(asm.R0, 0, "drop"),
		asm.Mov.Reg(asm.R1, asm.R7),
		asm.Mov.Imm(asm.R2, 0), // to its egress
		asm.FnRedirect.Call(),
		asm.Return(),
		asm.Mov.Imm(asm.R0, tcActShot).WithSymbol("drop"),
		asm.Return(),
	}
}

// subportProgram is a subport's BPF-side ingress program: tag, then out
// of the parent's device.
func subportProgram(vlan, parent int) asm.Instructions {
	return asm.Instructions{
		asm.Mov.Imm(asm.R2, be16(unix.ETH_P_8021Q)),
		asm.Mov.Imm(asm.R3, int32(vlan)),
		asm.FnSkbVlanPush.Call(), // R1 is still the skb
		asm.JNE.Imm(asm.R0, 0, "drop"),
		asm.Mov.Imm(asm.R1, int32(parent)),
		asm.Mov.Imm(asm.R2, 0),
		asm.FnRedirect.Call(),
		asm.Return(),
		asm.Mov.Imm(asm.R0, tcActShot).WithSymbol("drop"),
		asm.Return(),
	}
}

func subportFilter(vlan, parent int) string {
	return fmt.Sprintf("%s vlan=%d parent=%d", subportFilterName, vlan, parent)
}

// parseSubportFilter returns the VLAN id and parent ifindex a subport's
// filter name says.
func parseSubportFilter(name string) (vlan, parent int, ok bool) {
	n, err := fmt.Sscanf(name, subportFilterName+" vlan=%d parent=%d", &vlan, &parent)
	return vlan, parent, err == nil && n == 2
}

// memlock lifts RLIMIT_MEMLOCK once, for kernels before 5.11, which
// charge BPF maps and programs to it (a no-op on later ones).
var memlock = sync.OnceFunc(func() { _ = rlimit.RemoveMemlock() })

func loadProgram(name string, insns asm.Instructions) (*ebpf.Program, error) {
	memlock()
	p, err := ebpf.NewProgramWithOptions(&ebpf.ProgramSpec{Name: name, Type: ebpf.SchedCLS, Instructions: insns},
		ebpf.ProgramOptions{LogDisabled: true})
	if err != nil {
		return nil, fmt.Errorf("%w: load %s: %w", errBPFUnavailable, name, err)
	}
	return p, nil
}

func newVLANMap() (*ebpf.Map, error) {
	memlock()
	m, err := ebpf.NewMap(vlanMapSpec())
	if err != nil {
		return nil, fmt.Errorf("%w: create map: %w", errBPFUnavailable, err)
	}
	return m, nil
}

func vlanMapSpec() *ebpf.MapSpec {
	return &ebpf.MapSpec{Name: "nt_trunk_vlans", Type: ebpf.Hash, KeySize: 4, ValueSize: 4, MaxEntries: maxVLANs}
}

func ingressFilter(l netlink.Link, name string, fd int) *netlink.BpfFilter {
	return &netlink.BpfFilter{
		FilterAttrs: netlink.FilterAttrs{LinkIndex: l.Attrs().Index, Parent: netlink.HANDLE_MIN_INGRESS,
			Handle: bpfHandle, Priority: bpfPriority, Protocol: unix.ETH_P_ALL},
		Fd: fd, Name: name, DirectAction: true,
	}
}

// bpfFilter returns our ingress filter on l, or nil.
func (k *linux) bpfFilter(l netlink.Link) (*netlink.BpfFilter, error) {
	fs, err := k.h.FilterList(l, netlink.HANDLE_MIN_INGRESS)
	if err != nil {
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) { // no clsact
			return nil, nil
		}
		return nil, fmt.Errorf("list filters of %s: %w", l.Attrs().Name, err)
	}
	for _, f := range fs {
		if b, ok := f.(*netlink.BpfFilter); ok && b.Priority == bpfPriority && b.Handle == bpfHandle {
			return b, nil
		}
	}
	return nil, nil
}

// ensureClsact adds a clsact qdisc to l unless it has one.
func (k *linux) ensureClsact(l netlink.Link) error {
	qs, err := k.h.QdiscList(l)
	if err != nil {
		return fmt.Errorf("list qdiscs of %s: %w", l.Attrs().Name, err)
	}
	for _, q := range qs {
		if q.Type() == "clsact" {
			return nil
		}
	}
	q := &netlink.Clsact{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: l.Attrs().Index,
		Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT}}
	err = k.write("tc qdisc add dev "+l.Attrs().Name+" clsact", func() error { return k.h.QdiscAdd(q) })
	if errors.Is(err, unix.EEXIST) {
		return nil
	}
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EOPNOTSUPP) {
		return fmt.Errorf("%w: %w", errBPFUnavailable, err)
	}
	return err
}

// attach puts prog on l's ingress, in place of what our filter held.
func (k *linux) attach(l netlink.Link, name string, prog *ebpf.Program) error {
	if err := k.ensureClsact(l); err != nil {
		return err
	}
	f := ingressFilter(l, name, prog.FD())
	err := k.write("tc filter replace dev "+l.Attrs().Name+" ingress bpf "+name, func() error { return k.h.FilterReplace(f) })
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EOPNOTSUPP) {
		return fmt.Errorf("%w: %w", errBPFUnavailable, err)
	}
	return err
}

// trunkMap returns the map of the parent's program, loading and attaching
// the program first unless it is there; with create false it returns nil
// for a parent without it.
func (k *linux) trunkMap(parent netlink.Link, create bool) (*ebpf.Map, error) {
	f, err := k.bpfFilter(parent)
	if err != nil {
		return nil, err
	}
	var old *ebpf.Map
	if f != nil && f.Name == trunkFilterName {
		m, err := programMap(f)
		if err == nil {
			if sameProgram(trunkProgram(0), f) {
				return m, nil
			}
		}
		old = m // another version's: its entries move to the new map
	}
	if !create {
		return old, nil
	}
	if old != nil {
		defer old.Close()
	}
	m, err := newVLANMap()
	if err != nil {
		return nil, err
	}
	if old != nil {
		var vlan, idx uint32
		for it := old.Iterate(); it.Next(&vlan, &idx); {
			if err := m.Put(vlan, idx); err != nil {
				m.Close()
				return nil, fmt.Errorf("copy map entry: %w", err)
			}
		}
	}
	prog, err := loadProgram("nt_trunk", trunkProgram(m.FD()))
	if err != nil {
		m.Close()
		return nil, err
	}
	defer prog.Close() // the filter holds it, and it the map
	if err := k.attach(parent, trunkFilterName, prog); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// programMap opens the VLAN map of the program a filter holds.
func programMap(f *netlink.BpfFilter) (*ebpf.Map, error) {
	prog, err := ebpf.NewProgramFromID(ebpf.ProgramID(f.Id))
	if err != nil {
		return nil, fmt.Errorf("open program %d: %w", f.Id, err)
	}
	defer prog.Close()
	info, err := prog.Info()
	if err != nil {
		return nil, fmt.Errorf("program %d: %w", f.Id, err)
	}
	ids, _ := info.MapIDs()
	if len(ids) != 1 {
		return nil, fmt.Errorf("program %d has %d maps, want 1", f.Id, len(ids))
	}
	m, err := ebpf.NewMapFromID(ids[0])
	if err != nil {
		return nil, fmt.Errorf("open map %d: %w", ids[0], err)
	}
	if err := vlanMapSpec().Compatible(m); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// ensureBPFSubPort wires a subport with the eBPF datapath; see the top of
// this file.
func (k *linux) ensureBPFSubPort(p agentv1.Port, br, parent netlink.Link) error {
	if pm := parent.Attrs().MTU; p.MTU > pm {
		return fmt.Errorf("subport MTU %d exceeds its parent's %d", p.MTU, pm)
	}
	// The parent's program first: a kernel without eBPF fails here, before
	// anything is created.
	vlans, err := k.trunkMap(parent, true)
	if err != nil {
		return err
	}
	defer vlans.Close()

	name := agentv1.DeviceName(agentv1.TapPrefix, p.PortID)
	bpfName := agentv1.DeviceName(SubportBPFPrefix, p.PortID)
	dev, end, err := k.subportPair(name, bpfName)
	if err != nil {
		return err
	}
	if dev == nil {
		veth := &netlink.Veth{LinkAttrs: linkAttrs(name, p.MTU, br.Attrs().Index, false), PeerName: bpfName}
		if err := k.write("link add veth "+name+" peer "+bpfName, func() error { return k.h.LinkAdd(veth) }); err != nil {
			return err
		}
		if dev, end, err = k.subportPair(name, bpfName); err == nil && dev == nil {
			err = fmt.Errorf("veth %s vanished after creation", name)
		}
		if err != nil {
			return err
		}
		// The BPF side has no addresses: no IPv6 link-local either, so that
		// it never sends anything of its own into the subport's bridge.
		if err := k.write("link set "+bpfName+" addrgenmode none", func() error {
			return k.h.LinkSetIP6AddrGenMode(end, 1) // IN6_ADDR_GEN_MODE_NONE
		}); err != nil && !errors.Is(err, unix.EAFNOSUPPORT) && !errors.Is(err, unix.EOPNOTSUPP) {
			return err
		}
	}
	if err := k.converge(k.h, "", end, p.MTU, 0, true); err != nil {
		return err
	}
	want := subportFilter(p.VLAN, parent.Attrs().Index)
	insns := subportProgram(p.VLAN, parent.Attrs().Index)
	f, err := k.bpfFilter(end)
	if err != nil {
		return err
	}
	if f == nil || f.Name != want || !sameProgram(insns, f) {
		prog, err := loadProgram("nt_subport", insns)
		if err != nil {
			return err
		}
		err = k.attach(end, want, prog)
		prog.Close()
		if err != nil {
			return err
		}
	}
	if err := k.setVLAN(parent, vlans, p.VLAN, end); err != nil {
		return err
	}
	return k.converge(k.h, "", dev, p.MTU, br.Attrs().Index, p.AdminStateUp)
}

// sameProgram says whether the filter holds insns in direct-action mode,
// by the kernel's tag of the program (which leaves map references out).
func sameProgram(insns asm.Instructions, f *netlink.BpfFilter) bool {
	insns = slices.Clone(insns)
	// Marshalling resolves the jumps' labels, which the tag covers.
	if err := insns.Marshal(io.Discard, hostOrder()); err != nil {
		return false
	}
	ok, err := insns.HasTag(f.Tag, hostOrder())
	return err == nil && ok && f.DirectAction
}

// subportPair returns an eBPF subport's veth ends when they exist and are
// each other's peer; otherwise it removes what is in the way (with what
// the parent's map says of it) and returns nils.
func (k *linux) subportPair(name, bpfName string) (dev, end netlink.Link, err error) {
	if dev, err = linkByName(k.h, name); err != nil {
		return nil, nil, err
	}
	if end, err = linkByName(k.h, bpfName); err != nil {
		return nil, nil, err
	}
	if dev != nil && end != nil && dev.Type() == "veth" && end.Type() == "veth" &&
		dev.Attrs().ParentIndex == end.Attrs().Index && end.Attrs().ParentIndex == dev.Attrs().Index {
		return dev, end, nil
	}
	if dev != nil && dev.Type() == "tuntap" {
		return nil, nil, fmt.Errorf("%s is a VM's tap, not a subport's link", name)
	}
	var errs []error
	if dev != nil {
		errs = append(errs, k.deleteLink(context.Background(), name))
	}
	if end, _ = linkByName(k.h, bpfName); end != nil {
		errs = append(errs, k.releaseBPFSubPort(end), k.write("link del "+bpfName, func() error { return k.h.LinkDel(end) }))
	}
	return nil, nil, errors.Join(errs...)
}

// setVLAN maps the VLAN id to the subport's BPF-side end and drops the
// entries that no longer say where a subport of this parent is.
func (k *linux) setVLAN(parent netlink.Link, vlans *ebpf.Map, vlan int, end netlink.Link) error {
	var stale []uint32
	var v, idx uint32
	found := false
	for it := vlans.Iterate(); it.Next(&v, &idx); {
		if int(v) == vlan {
			found = int(idx) == end.Attrs().Index
			continue
		}
		if !k.subportOf(parent, int(v), int(idx)) {
			stale = append(stale, v)
		}
	}
	var errs []error
	if !found {
		op := fmt.Sprintf("bpf map update dev %s vlan %d %s", parent.Attrs().Name, vlan, end.Attrs().Name)
		errs = append(errs, k.write(op, func() error { return vlans.Put(uint32(vlan), uint32(end.Attrs().Index)) }))
	}
	for _, v := range stale {
		op := fmt.Sprintf("bpf map delete dev %s vlan %d", parent.Attrs().Name, v)
		errs = append(errs, k.write(op, func() error { return ignoreNotExist(vlans.Delete(v)) }))
	}
	return errors.Join(errs...)
}

// subportOf says whether ifindex idx is a subport's BPF-side end whose
// program sends to parent with VLAN id vlan.
func (k *linux) subportOf(parent netlink.Link, vlan, idx int) bool {
	l, err := k.h.LinkByIndex(idx)
	if err != nil || l == nil || !strings.HasPrefix(l.Attrs().Name, SubportBPFPrefix) {
		return false
	}
	f, err := k.bpfFilter(l)
	if err != nil || f == nil {
		return err != nil // unsure: keep it
	}
	v, p, ok := parseSubportFilter(f.Name)
	return ok && v == vlan && p == parent.Attrs().Index
}

func ignoreNotExist(err error) error {
	if errors.Is(err, ebpf.ErrKeyNotExist) {
		return nil
	}
	return err
}

// releaseBPFSubPort deletes the parent's map entry of a subport's
// BPF-side end, and the parent's program with its last entry. The veth
// pair is the caller's to delete.
func (k *linux) releaseBPFSubPort(end netlink.Link) error {
	f, err := k.bpfFilter(end)
	if err != nil || f == nil {
		return err
	}
	vlan, idx, ok := parseSubportFilter(f.Name)
	if !ok {
		return nil
	}
	parent, err := k.h.LinkByIndex(idx)
	if _, missing := errors.AsType[netlink.LinkNotFoundError](err); missing || errors.Is(err, unix.ENODEV) {
		return nil // gone, and its program and map with it
	} else if err != nil {
		return fmt.Errorf("parent %d of %s: %w", idx, end.Attrs().Name, err)
	}
	vlans, err := k.trunkMap(parent, false)
	if err != nil || vlans == nil {
		return err
	}
	defer vlans.Close()
	var have uint32
	if err := vlans.Lookup(uint32(vlan), &have); err == nil && int(have) == end.Attrs().Index {
		op := fmt.Sprintf("bpf map delete dev %s vlan %d", parent.Attrs().Name, vlan)
		if err := k.write(op, func() error { return ignoreNotExist(vlans.Delete(uint32(vlan))) }); err != nil {
			return err
		}
	}
	var key uint32
	if err := vlans.NextKey(nil, &key); errors.Is(err, ebpf.ErrKeyNotExist) {
		return k.detachTrunk(parent)
	}
	return nil
}

// detachTrunk removes the parent's program (and with it its map), and the
// clsact qdisc when nothing else uses it.
func (k *linux) detachTrunk(parent netlink.Link) error {
	f, err := k.bpfFilter(parent)
	if err != nil || f == nil || f.Name != trunkFilterName {
		return err
	}
	name := parent.Attrs().Name
	if err := k.write("tc filter del dev "+name+" ingress bpf "+trunkFilterName, func() error { return k.h.FilterDel(f) }); err != nil {
		return err
	}
	for _, hook := range []uint32{netlink.HANDLE_MIN_INGRESS, netlink.HANDLE_MIN_EGRESS} {
		if fs, err := k.h.FilterList(parent, hook); err != nil || len(fs) > 0 {
			return nil
		}
	}
	q := &netlink.Clsact{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: parent.Attrs().Index,
		Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT}}
	err = k.write("tc qdisc del dev "+name+" clsact", func() error { return k.h.QdiscDel(q) })
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EINVAL) {
		return nil
	}
	return err
}

// vlanLinks says whether the kernel makes 802.1q links, the subports'
// first choice, finding out once (again after the eBPF datapath failed
// too: a module loaded since then is used; one loaded while eBPF subports
// run is used from the agent's next start, which replaces them). A VLAN link without a lower device is
// refused either way (and loads 8021q where it is a module); whether the
// module is then there tells.
func (k *linux) vlanLinks() bool {
	if k.vlan == 0 {
		a := netlink.NewLinkAttrs()
		a.Name = "ntvlanprobe"
		if err := k.h.LinkAdd(&netlink.Vlan{LinkAttrs: a, VlanId: 1}); err == nil {
			if l, _ := linkByName(k.h, a.Name); l != nil {
				_ = k.h.LinkDel(l)
			}
		}
		k.vlan = -1
		if vlanModule() {
			k.vlan = 1
		}
	}
	return k.vlan > 0
}

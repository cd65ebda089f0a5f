package l2

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/nftables"
	mdnetlink "github.com/mdlayher/netlink"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/neutrino-net/neutrino/internal/namespace"
)

// nlTimeout bounds every netlink request.
const nlTimeout = 5 * time.Second

// linux is the dataplane on the running kernel. Host work goes through a
// netlink handle opened in the host namespace, a port's namespace work
// through a handle opened in that namespace (netlink opens each on a locked
// thread); nothing here switches a thread's namespace otherwise.
type linux struct {
	host    netns.NsHandle
	ownHost bool
	h       *netlink.Handle
	dir     string
	local   netip.Addr
	port    int
	vtep    string
	log     *slog.Logger
	// mappings are the physical networks' host interfaces; stateDir
	// keeps which of them were down (see uplink.go), down when it is "".
	mappings map[string]string
	stateDir string
	down     map[string]bool
	// record, when set, sees every write before it is made (tests).
	record func(op string)
	// vlan is whether the kernel makes 802.1q links: 0 until found out,
	// then 1 or -1 (see vlanLinks).
	vlan int
}

func newLinux(o Options) (*linux, error) {
	k := &linux{host: o.HostNS, dir: o.NetnsDir, local: o.UnderlayIP, port: o.VXLANPort, vtep: o.VXLANDevice, log: o.Logger,
		mappings: o.PhysicalInterfaceMappings, stateDir: o.StateDir}
	if k.host <= 0 {
		ns, err := netns.Get()
		if err != nil {
			return nil, fmt.Errorf("get own namespace: %w", err)
		}
		k.host, k.ownHost = ns, true
	}
	h, err := openHandle(k.host)
	if err != nil {
		k.close()
		return nil, fmt.Errorf("host namespace: %w", err)
	}
	k.h = h
	return k, nil
}

func openHandle(ns netns.NsHandle) (*netlink.Handle, error) {
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("netlink handle: %w", err)
	}
	if err := h.SetSocketTimeout(nlTimeout); err != nil {
		h.Close()
		return nil, fmt.Errorf("netlink timeout: %w", err)
	}
	return h, nil
}

func (k *linux) close() error {
	if k.h != nil {
		k.h.Close()
	}
	if k.ownHost {
		return k.host.Close()
	}
	return nil
}

// write makes one change, named op for errors and the test recorder.
func (k *linux) write(op string, fn func() error) error {
	if k.record != nil {
		k.record(op)
	}
	if err := fn(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// dump retries a netlink dump the kernel interrupted.
func dump[T any](f func() (T, error)) (T, error) {
	for i := 0; ; i++ {
		v, err := f()
		if !errors.Is(err, netlink.ErrDumpInterrupted) || i == 4 {
			return v, err
		}
	}
}

// linkByName returns nil, nil for a missing link.
func linkByName(h *netlink.Handle, name string) (netlink.Link, error) {
	l, err := h.LinkByName(name)
	if _, ok := errors.AsType[netlink.LinkNotFoundError](err); ok {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get link %s: %w", name, err)
	}
	return l, nil
}

func (k *linux) links(ctx context.Context) (map[string]string, error) {
	ls, err := dump(k.h.LinkList)
	if err != nil {
		return nil, err
	}
	m := make(map[string]string, len(ls))
	for _, l := range ls {
		m[l.Attrs().Name] = l.Type()
	}
	return m, nil
}

func (k *linux) deleteLink(ctx context.Context, name string) error {
	l, err := linkByName(k.h, name)
	if l == nil || err != nil {
		return err
	}
	if l.Type() == "tuntap" {
		return k.releaseTap(ctx, name) // a VM's: its hypervisor's to delete
	}
	if l.Type() == "veth" && strings.HasPrefix(name, agentv1.TapPrefix) {
		// An eBPF subport's: its parent's map entry goes first.
		end, err := linkByName(k.h, SubportBPFPrefix+strings.TrimPrefix(name, agentv1.TapPrefix))
		if err != nil {
			return err
		}
		if end != nil && end.Attrs().ParentIndex == l.Attrs().Index {
			if err := k.releaseBPFSubPort(end); err != nil {
				return err
			}
		}
	}
	if l.Type() == "bridge" && strings.HasPrefix(name, agentv1.BridgePrefix) {
		// Its uplinks go back as they were before the bridge goes.
		if err := k.releaseUplinks(name); err != nil {
			return err
		}
	}
	err = k.write("link del "+name, func() error { return k.h.LinkDel(l) })
	if _, ok := errors.AsType[netlink.LinkNotFoundError](err); ok || errors.Is(err, unix.ENODEV) {
		return nil
	}
	return err
}

// ensureLink returns the link named like want, creating it, or recreating
// it when it has another kind or same says it cannot be changed in place.
func (k *linux) ensureLink(h *netlink.Handle, where string, want netlink.Link, same func(netlink.Link) bool) (netlink.Link, error) {
	name := want.Attrs().Name
	have, err := linkByName(h, name)
	if err != nil {
		return nil, err
	}
	if have != nil && (have.Type() != want.Type() || (same != nil && !same(have))) {
		if err := k.write(where+"link del "+name, func() error { return h.LinkDel(have) }); err != nil {
			return nil, err
		}
		have = nil
	}
	if have != nil {
		return have, nil
	}
	if err := k.write(where+"link add "+want.Type()+" "+name, func() error { return h.LinkAdd(want) }); err != nil {
		return nil, err
	}
	if have, err = linkByName(h, name); err == nil && have == nil {
		err = fmt.Errorf("link %s vanished after creation", name)
	}
	return have, err
}

// converge sets what differs of a link's MTU, master and state.
func (k *linux) converge(h *netlink.Handle, where string, l netlink.Link, mtu, master int, up bool) error {
	a := l.Attrs()
	op := where + "link set " + a.Name
	var errs []error
	if mtu > 0 && a.MTU != mtu {
		errs = append(errs, k.write(fmt.Sprintf("%s mtu %d", op, mtu), func() error { return h.LinkSetMTU(l, mtu) }))
	}
	if master > 0 && a.MasterIndex != master {
		errs = append(errs, k.write(fmt.Sprintf("%s master %d", op, master), func() error { return h.LinkSetMasterByIndex(l, master) }))
	}
	if isUp := a.Flags&net.FlagUp != 0; up && !isUp {
		errs = append(errs, k.write(op+" up", func() error { return h.LinkSetUp(l) }))
	} else if !up && isUp {
		errs = append(errs, k.write(op+" down", func() error { return h.LinkSetDown(l) }))
	}
	return errors.Join(errs...)
}

func (k *linux) ensureNetwork(ctx context.Context, n agentv1.Network) error {
	brName := agentv1.DeviceName(agentv1.BridgePrefix, n.ID)
	br, err := k.ensureLink(k.h, "", &netlink.Bridge{LinkAttrs: linkAttrs(brName, n.MTU, 0, true)}, nil)
	if err != nil {
		return err
	}
	if err := k.converge(k.h, "", br, n.MTU, 0, true); err != nil {
		return err
	}
	vxName := agentv1.DeviceName(agentv1.VXLANPrefix, n.ID)
	switch n.Type {
	case "flat", "vlan":
		if err := k.deleteLink(ctx, vxName); err != nil {
			return err
		}
		return k.ensureUplink(br, n)
	case "local":
		return k.deleteLink(ctx, vxName)
	}
	if len(n.Peers) == 0 {
		return k.deleteLink(ctx, vxName)
	}
	want := &netlink.Vxlan{
		LinkAttrs: linkAttrs(vxName, n.MTU, br.Attrs().Index, true),
		VxlanId:   int(n.VNI),
		Port:      k.port,
		Learning:  true,
	}
	if k.local.IsValid() {
		want.SrcAddr = k.local.AsSlice()
	}
	if k.vtep != "" {
		dev, err := linkByName(k.h, k.vtep)
		if err != nil || dev == nil {
			return errors.Join(fmt.Errorf("vxlan device %s not found", k.vtep), err)
		}
		want.VtepDevIndex = dev.Attrs().Index
	}
	vx, err := k.ensureLink(k.h, "", want, func(l netlink.Link) bool {
		v := l.(*netlink.Vxlan)
		return v.VxlanId == want.VxlanId && v.SrcAddr.Equal(want.SrcAddr) && v.Port == want.Port &&
			v.Learning && v.VtepDevIndex == want.VtepDevIndex
	})
	if err != nil {
		return err
	}
	if err := k.converge(k.h, "", vx, n.MTU, br.Attrs().Index, true); err != nil {
		return err
	}
	return k.syncFDB(vx, n.Peers)
}

func linkAttrs(name string, mtu, master int, up bool) netlink.LinkAttrs {
	a := netlink.NewLinkAttrs()
	a.Name, a.MTU, a.MasterIndex = name, mtu, master
	if up {
		a.Flags = net.FlagUp
	}
	return a
}

// syncFDB keeps one all-zeros entry per peer: head-end replication of
// broadcast, unknown unicast and multicast.
func (k *linux) syncFDB(vx netlink.Link, peers []netip.Addr) error {
	idx := vx.Attrs().Index
	neighs, err := dump(func() ([]netlink.Neigh, error) { return k.h.NeighList(idx, unix.AF_BRIDGE) })
	if err != nil {
		return fmt.Errorf("list fdb of %s: %w", vx.Attrs().Name, err)
	}
	zero := make(net.HardwareAddr, 6)
	have := map[netip.Addr]bool{}
	for _, n := range neighs {
		if a, ok := netip.AddrFromSlice(n.IP); ok && bytes.Equal(n.HardwareAddr, zero) {
			have[a.Unmap()] = true
		}
	}
	entry := func(a netip.Addr) *netlink.Neigh {
		return &netlink.Neigh{LinkIndex: idx, Family: unix.AF_BRIDGE, State: netlink.NUD_PERMANENT | netlink.NUD_NOARP,
			Flags: netlink.NTF_SELF, IP: a.AsSlice(), HardwareAddr: zero}
	}
	var errs []error
	for _, p := range peers {
		if p = p.Unmap(); !have[p] {
			errs = append(errs, k.write("fdb append "+vx.Attrs().Name+" dst "+p.String(), func() error { return k.h.NeighAppend(entry(p)) }))
		}
		delete(have, p)
	}
	for _, p := range slices.SortedFunc(maps.Keys(have), netip.Addr.Compare) {
		errs = append(errs, k.write("fdb del "+vx.Attrs().Name+" dst "+p.String(), func() error { return k.h.NeighDel(entry(p)) }))
	}
	return errors.Join(errs...)
}

func (k *linux) ensurePort(ctx context.Context, p agentv1.Port, old *agentv1.Port) error {
	if old != nil && old.ParentID != "" && p.ParentID == "" {
		// It left its trunk: its VLAN link is in the way of its new VIF.
		if err := k.deleteLink(ctx, agentv1.DeviceName(agentv1.TapPrefix, p.PortID)); err != nil {
			return err
		}
	}
	if p.ParentID != "" {
		return k.ensureSubPort(p)
	}
	if p.Netns == "" {
		return k.ensureGuestTap(p)
	}
	mac, err := net.ParseMAC(p.MAC)
	if err != nil {
		return fmt.Errorf("mac: %w", err)
	}
	br, err := linkByName(k.h, agentv1.DeviceName(agentv1.BridgePrefix, p.NetworkID))
	if err != nil || br == nil {
		return errors.Join(fmt.Errorf("bridge of network %s not found", p.NetworkID), err)
	}
	ns, err := netns.GetFromPath(filepath.Join(k.dir, p.Netns))
	if err != nil {
		return fmt.Errorf("namespace %s: %w", p.Netns, err)
	}
	defer ns.Close()
	vh, err := openHandle(ns)
	if err != nil {
		return fmt.Errorf("namespace %s: %w", p.Netns, err)
	}
	defer vh.Close()
	where := "netns " + p.Netns + ": "

	tapName, nsName := agentv1.DeviceName(agentv1.TapPrefix, p.PortID), agentv1.DeviceName(NamespacePortPrefix, p.PortID)
	tap, peer, err := k.findVIF(vh, tapName, nsName)
	if err != nil {
		return err
	}
	if tap == nil {
		if tap, peer, err = k.createVIF(vh, where, p, mac, br.Attrs().Index, tapName, nsName, ns); err != nil {
			return err
		}
	}
	if err := k.converge(k.h, "", tap, p.MTU, br.Attrs().Index, p.AdminStateUp); err != nil {
		return err
	}
	if !bytes.Equal(peer.Attrs().HardwareAddr, mac) {
		if err := k.setMAC(vh, where, peer, mac); err != nil {
			return err
		}
	}
	if err := k.converge(vh, where, peer, p.MTU, 0, true); err != nil {
		return err
	}
	if lo, err := linkByName(vh, "lo"); err != nil || lo == nil {
		return errors.Join(errors.New("no loopback"), err)
	} else if err := k.converge(vh, where, lo, 0, 0, true); err != nil {
		return err
	}
	if err := k.syncAddrs(vh, where, peer, p, old); err != nil {
		return err
	}
	return k.syncRoutes(vh, where, peer, p, old)
}

// findVIF returns the port's veth ends when they exist and are each
// other's peer; otherwise it removes what is in the way and returns nils.
func (k *linux) findVIF(vh *netlink.Handle, tapName, nsName string) (tap, peer netlink.Link, err error) {
	if tap, err = linkByName(k.h, tapName); err != nil {
		return nil, nil, err
	}
	if peer, err = linkByName(vh, nsName); err != nil {
		return nil, nil, err
	}
	if tap != nil && peer != nil && tap.Type() == "veth" && peer.Type() == "veth" &&
		tap.Attrs().ParentIndex == peer.Attrs().Index && peer.Attrs().ParentIndex == tap.Attrs().Index {
		return tap, peer, nil
	}
	var errs []error
	if tap != nil {
		errs = append(errs, k.write("link del "+tapName, func() error { return k.h.LinkDel(tap) }))
	}
	if peer != nil {
		if l, _ := linkByName(vh, nsName); l != nil { // gone with the tap if it was its peer
			errs = append(errs, k.write("link del "+nsName, func() error { return vh.LinkDel(l) }))
		}
	}
	return nil, nil, errors.Join(errs...)
}

// createVIF creates the veth pair with its peer directly in the port's
// namespace under a temporary name, then renames it: a failure never
// leaves a half-named device in the way.
func (k *linux) createVIF(vh *netlink.Handle, where string, p agentv1.Port, mac net.HardwareAddr, master int, tapName, nsName string, ns netns.NsHandle) (tap, peer netlink.Link, err error) {
	tmp := fmt.Sprintf("nt%08x", rand.Uint32())
	veth := &netlink.Veth{
		LinkAttrs:        linkAttrs(tapName, p.MTU, master, p.AdminStateUp),
		PeerName:         tmp,
		PeerHardwareAddr: mac,
		PeerNamespace:    netlink.NsFd(ns),
	}
	if err := k.write("link add veth "+tapName+" peer "+p.Netns+"/"+tmp, func() error { return k.h.LinkAdd(veth) }); err != nil {
		return nil, nil, err
	}
	undo := func(err error) (netlink.Link, netlink.Link, error) {
		return nil, nil, errors.Join(err, k.deleteLink(context.Background(), tapName))
	}
	if peer, err = linkByName(vh, tmp); err != nil || peer == nil {
		return undo(errors.Join(fmt.Errorf("peer %s not in namespace", tmp), err))
	}
	if err := k.write(where+"link set "+tmp+" name "+nsName, func() error { return vh.LinkSetName(peer, nsName) }); err != nil {
		return undo(err)
	}
	if peer, err = linkByName(vh, nsName); err == nil && peer != nil {
		tap, err = linkByName(k.h, tapName)
	}
	if err != nil || tap == nil || peer == nil {
		return undo(errors.Join(errors.New("veth vanished after creation"), err))
	}
	return tap, peer, nil
}

// setMAC changes a MAC, taking the link down if it must.
func (k *linux) setMAC(vh *netlink.Handle, where string, l netlink.Link, mac net.HardwareAddr) error {
	op := where + "link set " + l.Attrs().Name + " address " + mac.String()
	err := k.write(op, func() error { return vh.LinkSetHardwareAddr(l, mac) })
	if !errors.Is(err, unix.EBUSY) {
		return err
	}
	return errors.Join(
		k.write(where+"link set "+l.Attrs().Name+" down", func() error { return vh.LinkSetDown(l) }),
		k.write(op, func() error { return vh.LinkSetHardwareAddr(l, mac) }),
		k.write(where+"link set "+l.Attrs().Name+" up", func() error { return vh.LinkSetUp(l) }))
}

// syncAddrs removes the addresses Neutrino set before and no longer
// wants, then adds the port's missing ones; addresses the workload added
// itself (e.g. a VRRP address of an allowed pair) stay. Removal comes
// first here: deleting a primary IPv4 address also deletes its subnet's
// secondaries, so what is present is listed again before adding.
func (k *linux) syncAddrs(vh *netlink.Handle, where string, l netlink.Link, p agentv1.Port, old *agentv1.Port) error {
	list := func() (map[netip.Prefix]netlink.Addr, error) {
		addrs, err := dump(func() ([]netlink.Addr, error) { return vh.AddrList(l, unix.AF_UNSPEC) })
		if err != nil {
			return nil, fmt.Errorf("list addresses: %w", err)
		}
		have := map[netip.Prefix]netlink.Addr{}
		for _, a := range addrs {
			if ip, ok := netip.AddrFromSlice(a.IP); ok {
				ones, _ := a.Mask.Size()
				have[netip.PrefixFrom(ip.Unmap(), ones)] = a
			}
		}
		return have, nil
	}
	have, err := list()
	if err != nil {
		return err
	}
	var stale []netlink.Addr
	if old != nil {
		for _, pfx := range old.Addresses {
			if a, ok := have[pfx]; ok && !slices.Contains(p.Addresses, pfx) {
				stale = append(stale, a)
			}
		}
	}
	var errs []error
	for _, a := range stale {
		errs = append(errs, k.write(where+"addr del "+a.IPNet.String()+" dev "+l.Attrs().Name, func() error { return vh.AddrDel(l, &a) }))
	}
	if len(stale) > 0 {
		if have, err = list(); err != nil {
			return errors.Join(append(errs, err)...)
		}
	}
	for _, pfx := range p.Addresses {
		if _, ok := have[pfx]; ok {
			continue
		}
		a := &netlink.Addr{IPNet: prefixNet(pfx)}
		if pfx.Addr().Is6() {
			a.Flags = unix.IFA_F_NODAD // usable at once; Neutrino owns the address
		}
		errs = append(errs, k.write(where+"addr add "+pfx.String()+" dev "+l.Attrs().Name, func() error { return vh.AddrAdd(l, a) }))
	}
	return errors.Join(errs...)
}

// syncRoutes keeps a default route per family via the port's first
// on-link gateway. A default route another device of the namespace
// already holds is left alone.
func (k *linux) syncRoutes(vh *netlink.Handle, where string, l netlink.Link, p agentv1.Port, old *agentv1.Port) error {
	want := defaultGateways(p)
	var prev []netip.Addr
	if old != nil {
		prev = defaultGateways(*old)
	}
	var errs []error
	for _, family := range []int{unix.AF_INET, unix.AF_INET6} {
		is4 := family == unix.AF_INET
		gwOf := func(gws []netip.Addr) (netip.Addr, bool) {
			i := slices.IndexFunc(gws, func(a netip.Addr) bool { return a.Is4() == is4 })
			if i < 0 {
				return netip.Addr{}, false
			}
			return gws[i], true
		}
		gw, ok := gwOf(want)
		oldGW, hadOld := gwOf(prev)
		if !ok && !hadOld {
			continue
		}
		routes, err := dump(func() ([]netlink.Route, error) { return vh.RouteList(nil, family) })
		if err != nil {
			errs = append(errs, fmt.Errorf("list routes: %w", err))
			continue
		}
		var def *netlink.Route
		for i, r := range routes {
			if r.Table == unix.RT_TABLE_MAIN && (r.Dst == nil || (r.Dst.IP.IsUnspecified() && maskBits(r.Dst) == 0)) {
				def = &routes[i]
				break
			}
		}
		onLink := def != nil && def.LinkIndex == l.Attrs().Index
		switch {
		case ok && def != nil && onLink && def.Gw.Equal(gw.AsSlice()):
		case ok && (def == nil || onLink):
			r := &netlink.Route{LinkIndex: l.Attrs().Index, Gw: gw.AsSlice()}
			errs = append(errs, k.write(where+"route replace default via "+gw.String(), func() error { return vh.RouteReplace(r) }))
		case ok:
			k.log.Debug("default route held by another device", "netns", p.Netns, "gateway", gw)
		case def != nil && onLink && def.Gw.Equal(oldGW.AsSlice()):
			errs = append(errs, k.write(where+"route del default via "+oldGW.String(), func() error { return vh.RouteDel(def) }))
		}
	}
	return errors.Join(errs...)
}

func maskBits(n *net.IPNet) int { ones, _ := n.Mask.Size(); return ones }

func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// nft opens an nftables connection in the host namespace.
func (k *linux) nft() (*nftables.Conn, error) {
	c, err := nftables.New(nftables.WithNetNSFd(int(k.host)), nftables.WithSockOptions(bigReadBuffer))
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	return c, nil
}

func (k *linux) filterTag(ctx context.Context) (string, error) {
	c, err := k.nft()
	if err != nil {
		return "", err
	}
	return readTag(c)
}

func (k *linux) setFilter(ctx context.Context, tag string, rules []portRules) error {
	c, err := k.nft()
	if err != nil {
		return err
	}
	if err := queueRuleset(c, tag, rules); err != nil {
		return err
	}
	if slices.ContainsFunc(rules, func(r portRules) bool { return r.FW != nil }) {
		if err := namespace.Do(k.host, enableBridgeNetfilter); err != nil {
			return err
		}
	}
	op := "nft replace table bridge " + TableName + " " + tag
	if len(rules) == 0 {
		op = "nft delete table bridge " + TableName
	}
	return k.write(op, c.Flush)
}

// flushFlows deletes the conntrack entries of connections from or to the
// addresses (in every zone): after a security group stops allowing
// something, established connections are checked again as new ones.
func (k *linux) flushFlows(ctx context.Context, addrs []netip.Prefix) error {
	byFamily := map[netlink.InetFamily][]netlink.CustomConntrackFilter{}
	for _, a := range addrs {
		fam := netlink.InetFamily(unix.AF_INET)
		if a.Addr().Is6() {
			fam = unix.AF_INET6
		}
		for _, field := range []netlink.ConntrackFilterType{netlink.ConntrackOrigSrcIP, netlink.ConntrackOrigDstIP} {
			f := &netlink.ConntrackFilter{}
			if err := f.AddIPNet(field, prefixNet(a)); err != nil {
				return err
			}
			byFamily[fam] = append(byFamily[fam], f)
		}
	}
	var errs []error
	for fam, fs := range byFamily {
		n, err := k.h.ConntrackDeleteFilters(netlink.ConntrackTable, fam, fs...)
		if err != nil {
			errs = append(errs, fmt.Errorf("conntrack delete: %w", err))
			continue
		}
		k.log.DebugContext(ctx, "security groups: connections flushed", "entries", n)
	}
	return errors.Join(errs...)
}

// errNoTap says a guest port's tap is not there (yet): the compute
// service creates it when it starts the VM.
var errNoTap = errors.New("waiting for the VM's tap")

// ensureGuestTap attaches a VM's tap, created by QEMU or libvirt under
// the port's device name, to its network's bridge. Its MAC and the
// guest's configuration are the hypervisor's and the guest's.
func (k *linux) ensureGuestTap(p agentv1.Port) error {
	br, err := linkByName(k.h, agentv1.DeviceName(agentv1.BridgePrefix, p.NetworkID))
	if err != nil || br == nil {
		return errors.Join(fmt.Errorf("bridge of network %s not found", p.NetworkID), err)
	}
	tap, err := linkByName(k.h, agentv1.DeviceName(agentv1.TapPrefix, p.PortID))
	if err != nil {
		return err
	}
	if tap == nil {
		return errNoTap
	}
	if tap.Type() != "tuntap" {
		return fmt.Errorf("%s is a %s, not a VM's tap", tap.Attrs().Name, tap.Type())
	}
	return k.converge(k.h, "", tap, p.MTU, br.Attrs().Index, p.AdminStateUp)
}

// errNoParent says a subport's parent has no device (yet).
var errNoParent = errors.New("waiting for the trunk parent's device")

// ensureSubPort wires a trunk's subport as the reference's linuxbridge
// trunk driver does: an 802.1q link on the parent's host device (a VM's
// tap or a namespace VIF's veth) tagged with the subport's segmentation
// id, named after the subport like a tap, in the subport network's bridge.
// Frames the guest tags arrive on it untagged; the bridge's frames leave
// the parent tagged. Being named like a tap, it gets the subport's own
// anti-spoofing and security groups. On a kernel without 802.1q links it
// uses the eBPF datapath of trunkbpf.go instead, whose subport device has
// the same name and place; with neither, it returns ErrVLANUnavailable.
func (k *linux) ensureSubPort(p agentv1.Port) error {
	if p.VLAN < 1 || p.VLAN > 4094 {
		return fmt.Errorf("VLAN id %d out of range", p.VLAN)
	}
	br, err := linkByName(k.h, agentv1.DeviceName(agentv1.BridgePrefix, p.NetworkID))
	if err != nil || br == nil {
		return errors.Join(fmt.Errorf("bridge of network %s not found", p.NetworkID), err)
	}
	parent, err := linkByName(k.h, agentv1.DeviceName(agentv1.TapPrefix, p.ParentID))
	if err != nil {
		return err
	}
	if parent == nil {
		return errNoParent
	}
	if !k.vlanLinks() {
		err := k.ensureBPFSubPort(p, br, parent)
		if errors.Is(err, errBPFUnavailable) {
			k.vlan = 0 // probed again on the retry: loading 8021q heals it
			return fmt.Errorf("%w, and %w", ErrVLANUnavailable, err)
		}
		return err
	}
	name := agentv1.DeviceName(agentv1.TapPrefix, p.PortID)
	if have, err := linkByName(k.h, name); err != nil {
		return err
	} else if have != nil && have.Type() == "tuntap" {
		return fmt.Errorf("%s is a VM's tap, not a subport's link", name)
	} else if have != nil && have.Type() == "veth" {
		// An eBPF subport's, from a kernel without 802.1q then.
		if err := k.deleteLink(context.Background(), name); err != nil {
			return err
		}
	}
	a := linkAttrs(name, p.MTU, br.Attrs().Index, p.AdminStateUp)
	a.ParentIndex = parent.Attrs().Index
	vl, err := k.ensureLink(k.h, "", &netlink.Vlan{LinkAttrs: a, VlanId: p.VLAN}, func(l netlink.Link) bool {
		v, ok := l.(*netlink.Vlan)
		return ok && v.VlanId == p.VLAN && v.ParentIndex == parent.Attrs().Index
	})
	if err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL) && !vlanModule() {
			return fmt.Errorf("%w: %w", ErrVLANUnavailable, err)
		}
		return err
	}
	return k.converge(k.h, "", vl, p.MTU, br.Attrs().Index, p.AdminStateUp)
}

// releaseTap takes a VM's tap off its bridge and leaves it to its
// hypervisor.
func (k *linux) releaseTap(ctx context.Context, name string) error {
	tap, err := linkByName(k.h, name)
	if err != nil || tap == nil {
		return err
	}
	if err := k.detachTrunk(tap); err != nil { // a trunk parent's eBPF program
		return err
	}
	if tap.Attrs().MasterIndex == 0 {
		return nil
	}
	return k.write("link set "+name+" nomaster", func() error { return k.h.LinkSetNoMaster(tap) })
}

// watchTaps calls fn with the name of each tap that appears or goes
// away in the host namespace, until done is closed.
func (k *linux) watchTaps(done <-chan struct{}, fn func(name string, present bool)) error {
	ch := make(chan netlink.LinkUpdate, 64)
	if err := netlink.LinkSubscribeWithOptions(ch, done, netlink.LinkSubscribeOptions{Namespace: &k.host}); err != nil {
		return fmt.Errorf("watch links: %w", err)
	}
	go func() {
		for u := range ch {
			if u.Link == nil || u.Link.Type() != "tuntap" || !strings.HasPrefix(u.Link.Attrs().Name, agentv1.TapPrefix) {
				continue
			}
			fn(u.Link.Attrs().Name, u.Header.Type == unix.RTM_NEWLINK)
		}
	}()
	return nil
}

// bigReadBuffer lets a ruleset's replacement be acknowledged in full: the
// kernel acknowledges every rule of the batch, and with hundreds of them
// the default receive buffer overflows (ENOBUFS) before they are read.
func bigReadBuffer(c *mdnetlink.Conn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 32<<20)
	}); err != nil {
		return err
	}
	return serr
}

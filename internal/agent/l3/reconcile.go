package l3

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/neutrino-net/neutrino/internal/namespace"
)

// routeProtocol marks the routes Neutrino owns in a router namespace, so
// leftovers are found without any memory ("N").
const routeProtocol netlink.RouteProtocol = 78

// reconcile converges the router namespace on want: it reads the kernel
// and writes only the differences, additions before removals. Once the
// links and their addresses are there, the addresses that appeared are
// announced (see announce.go).
func (l *L3) reconcile(ctx context.Context, log *slog.Logger, id string, rt *router, want *spec) error {
	pending := rt.stopAnnounce() // the rest may go on below, or lose its point
	if err := l.ensureNS(log, id, rt); err != nil {
		return err
	}
	host, err := l.hostHandle()
	if err != nil {
		return err
	}
	var errs []error
	errs = append(errs, ensureSysctls(rt.ns, l.write), l.ensureUp(rt.nl, "lo"))
	// A floating IP's DNAT goes in before its address, as the reference's
	// agent orders it: otherwise the router itself would answer the new
	// address for a moment (a TCP reset, its own ping replies).
	if slices.ContainsFunc(want.nft, func(r nftRule) bool { return r.dnat.IsValid() }) {
		errs = append(errs, l.ensureNFT(rt, want.nft))
	}

	// Additions: links, addresses, routes, then the NAT table.
	wanted := map[string]bool{}
	stale := map[string][]netip.Prefix{} // per device: addresses to remove
	links := map[string]linkState{}      // the devices as they now are
	var announce []announcement
	now := time.Now()
	for _, ls := range want.links {
		wanted[ls.dev] = true
		if ctx.Err() != nil {
			break // after announcing what was added
		}
		link, renewed, err := l.ensureLink(host, rt, ls)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ad, err := l.ensureAddrs(rt.nl, link, ls.addrs)
		errs = append(errs, err)
		stale[ls.dev] = ad.stale
		st := linkState{ifindex: link.Attrs().Index, mac: link.Attrs().HardwareAddr, addrs: slices.Concat(ad.added, ad.kept)}
		if ls.mac != "" {
			st.mac, _ = net.ParseMAC(ls.mac) // what ensureLink set
		}
		links[ls.dev] = st
		if renewed {
			announce = append(announce, newAnnouncements(ls.dev, st, st.addrs, now)...)
		} else {
			announce = append(announce, newAnnouncements(ls.dev, st, ad.added, now)...)
		}
	}
	l.announce(log, rt, append(announce, carryOver(pending, links, announce)...))
	if err := ctx.Err(); err != nil {
		return err
	}
	l.ensureRA(log, rt, want.ras, links)
	oldRoutes, err := l.ensureRoutes(rt.nl, want.routes)
	errs = append(errs, err, l.ensureNFT(rt, want.nft))

	// Removals: stale routes, addresses, then links.
	for _, r := range oldRoutes {
		errs = append(errs, l.write("route del "+r.Dst.String(), func() error {
			return ignore(rt.nl.RouteDel(&r), unix.ESRCH)
		}))
	}
	for _, ls := range want.links {
		for _, p := range stale[ls.dev] {
			errs = append(errs, l.write(fmt.Sprintf("addr del %s dev %s", p, ls.dev), func() error {
				link, err := rt.nl.LinkByName(ls.dev)
				if err != nil {
					return err
				}
				return ignore(rt.nl.AddrDel(link, toAddr(p)), unix.EADDRNOTAVAIL)
			}))
		}
	}
	errs = append(errs, l.deleteLinks(ctx, rt, wanted))
	return errors.Join(errs...)
}

// ensureNS opens the router's namespace, creating it when missing.
func (l *L3) ensureNS(log *slog.Logger, id string, rt *router) error {
	path := l.nsPath(id)
	if rt.nl != nil && sameNS(rt.ns, path) {
		return nil
	}
	rt.close()
	ns, err := openNS(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := l.write("netns add "+agentv1.RouterNamespace(id), func() error { return namespace.CreateNamed(path) }); err != nil {
			return err
		}
		log.Info("router namespace created", "path", path)
		ns, err = openNS(path)
	}
	if err != nil {
		return err
	}
	return rt.attach(ns)
}

func (l *L3) ensureUp(h *netlink.Handle, name string) error {
	link, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("link %s: %w", name, err)
	}
	if link.Attrs().Flags&net.FlagUp != 0 {
		return nil
	}
	return l.write("link set up "+name, func() error { return h.LinkSetUp(link) })
}

// ensureLink makes the veth pair of one port exist with the wanted
// attributes. A correct existing pair is kept as it is, so adopting a
// running router does not disturb its traffic. renewed reports a device
// whose addresses are to be announced again: a new MAC, or a device that
// was down or off its bridge. (A new device has no addresses yet.)
func (l *L3) ensureLink(host *netlink.Handle, rt *router, ls linkSpec) (_ netlink.Link, renewed bool, _ error) {
	dev, err := lookup(rt.nl, ls.dev)
	if err != nil {
		return nil, false, err
	}
	tap, err := lookup(host, ls.host)
	if err != nil {
		return nil, false, err
	}
	if !isPair(dev, tap) {
		if dev != nil {
			if err := l.write("link del "+ls.dev, func() error { return ignore(rt.nl.LinkDel(dev), unix.ENODEV) }); err != nil {
				return nil, false, err
			}
		}
		if tap, err = lookup(host, ls.host); err != nil { // gone with its peer?
			return nil, false, err
		}
		if tap != nil {
			if err := l.write("link del "+ls.host, func() error { return ignore(host.LinkDel(tap), unix.ENODEV) }); err != nil {
				return nil, false, err
			}
		}
		dev, err := l.addLink(host, rt, ls)
		return dev, false, err
	}

	var errs []error
	if ls.mac != "" && dev.Attrs().HardwareAddr.String() != ls.mac {
		mac, _ := net.ParseMAC(ls.mac)
		renewed = true
		errs = append(errs, l.write(fmt.Sprintf("link set %s address %s", ls.dev, ls.mac), func() error {
			return rt.nl.LinkSetHardwareAddr(dev, mac)
		}))
	}
	for _, e := range []struct {
		h    *netlink.Handle
		link netlink.Link
	}{{rt.nl, dev}, {host, tap}} {
		name := e.link.Attrs().Name
		if ls.mtu > 0 && e.link.Attrs().MTU != ls.mtu {
			errs = append(errs, l.write(fmt.Sprintf("link set %s mtu %d", name, ls.mtu), func() error {
				return e.h.LinkSetMTU(e.link, ls.mtu)
			}))
		}
	}
	br, err := lookup(host, ls.bridge)
	if err != nil {
		return nil, false, err
	}
	if br == nil || tap.Attrs().MasterIndex != br.Attrs().Index {
		idx, err := l.ensureBridge(host, ls.bridge)
		if err != nil {
			return nil, false, err
		}
		renewed = true
		errs = append(errs, l.write(fmt.Sprintf("link set %s master %s", ls.host, ls.bridge), func() error {
			return host.LinkSetMasterByIndex(tap, idx)
		}))
	}
	for _, e := range []struct {
		h    *netlink.Handle
		link netlink.Link
	}{{host, tap}, {rt.nl, dev}} {
		if e.link.Attrs().Flags&net.FlagUp == 0 {
			renewed = true
			errs = append(errs, l.write("link set up "+e.link.Attrs().Name, func() error { return e.h.LinkSetUp(e.link) }))
		}
	}
	return dev, renewed, errors.Join(errs...)
}

// addLink creates the veth pair directly with its router end in the
// router namespace and its host end enslaved to the bridge, both up.
func (l *L3) addLink(host *netlink.Handle, rt *router, ls linkSpec) (netlink.Link, error) {
	br, err := l.ensureBridge(host, ls.bridge)
	if err != nil {
		return nil, err
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name, attrs.MTU, attrs.MasterIndex, attrs.Flags = ls.host, ls.mtu, br, net.FlagUp
	veth := &netlink.Veth{LinkAttrs: attrs, PeerName: ls.dev, PeerNamespace: netlink.NsFd(rt.ns)}
	if ls.mac != "" {
		veth.PeerHardwareAddr, _ = net.ParseMAC(ls.mac)
	}
	if err := l.write(fmt.Sprintf("link add %s type veth peer %s master %s", ls.host, ls.dev, ls.bridge), func() error {
		return host.LinkAdd(veth)
	}); err != nil {
		return nil, err
	}
	dev, err := rt.nl.LinkByName(ls.dev)
	if err != nil {
		return nil, fmt.Errorf("link %s: %w", ls.dev, err)
	}
	if err := l.write("link set up "+ls.dev, func() error { return rt.nl.LinkSetUp(dev) }); err != nil {
		return nil, err
	}
	return dev, nil
}

// ensureBridge returns the index of a network's bridge, creating it (up)
// when the L2 layer has not yet. Bridges are never deleted here.
func (l *L3) ensureBridge(host *netlink.Handle, name string) (int, error) {
	br, err := lookup(host, name)
	if err != nil {
		return 0, err
	}
	if br == nil {
		// The L2 layer owns bridges and makes them earlier in the same
		// sync; creating one here could resurrect a bridge L2 just removed
		// (a worker applying a router's previous state) and leak it. The
		// worker retries with backoff.
		return 0, fmt.Errorf("bridge %s does not exist (the L2 layer makes it)", name)
	}
	if br.Type() != "bridge" {
		return 0, fmt.Errorf("%s is a %s, not a bridge", name, br.Type())
	}
	return br.Attrs().Index, nil
}

// addrDiff is what ensureAddrs found and did on a link.
type addrDiff struct {
	added []netip.Prefix // wanted, added
	kept  []netip.Prefix // wanted, there already
	stale []netip.Prefix // to remove once the additions are done
}

// ensureAddrs adds the missing addresses of a link and returns those to
// remove once the additions are done (IPv6 link-local ones are kept).
func (l *L3) ensureAddrs(h *netlink.Handle, link netlink.Link, want []netip.Prefix) (addrDiff, error) {
	var d addrDiff
	have, err := h.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return d, fmt.Errorf("list addresses of %s: %w", link.Attrs().Name, err)
	}
	got := map[netip.Prefix]bool{}
	for _, a := range have {
		p, ok := fromIPNet(a.IPNet)
		if !ok || p.Addr().IsLinkLocalUnicast() {
			continue
		}
		got[p] = true
		if !slices.Contains(want, p) {
			d.stale = append(d.stale, p)
		}
	}
	var errs []error
	for _, p := range want {
		if got[p] {
			d.kept = append(d.kept, p)
			continue
		}
		err := l.write(fmt.Sprintf("addr add %s dev %s", p, link.Attrs().Name), func() error {
			return ignore(h.AddrAdd(link, toAddr(p)), unix.EEXIST)
		})
		if err == nil {
			d.added = append(d.added, p)
		}
		errs = append(errs, err)
	}
	return d, errors.Join(errs...)
}

// ensureRoutes installs the wanted routes that the kernel lacks or holds
// differently and returns Neutrino's routes to remove afterwards.
func (l *L3) ensureRoutes(h *netlink.Handle, want []routeSpec) ([]netlink.Route, error) {
	have, err := h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Protocol: routeProtocol}, netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	got := map[netip.Prefix][]netip.Addr{}
	var stale []netlink.Route
	for _, r := range have {
		dst, ok := fromIPNet(r.Dst)
		if !ok {
			continue
		}
		dst = dst.Masked()
		var via []netip.Addr
		if a, ok := netip.AddrFromSlice(r.Gw); ok {
			via = append(via, a.Unmap())
		}
		for _, nh := range r.MultiPath {
			if a, ok := netip.AddrFromSlice(nh.Gw); ok {
				via = append(via, a.Unmap())
			}
		}
		got[dst] = append(got[dst], via...)
		if !slices.ContainsFunc(want, func(w routeSpec) bool { return w.dst == dst }) {
			stale = append(stale, r)
		}
	}
	var errs []error
	for _, w := range want {
		via := got[w.dst]
		sortAddrs(via)
		if slices.Equal(via, w.via) {
			continue
		}
		errs = append(errs, l.write("route replace "+w.String(), func() error {
			r, err := w.route(h)
			if err != nil {
				return err
			}
			return h.RouteReplace(r)
		}))
	}
	return stale, errors.Join(errs...)
}

// deleteLinks deletes the router's veths (which takes their host ends
// along) except those in keep; nil keep deletes them all.
func (l *L3) deleteLinks(ctx context.Context, rt *router, keep map[string]bool) error {
	links, err := rt.nl.LinkList()
	if err != nil {
		return fmt.Errorf("list links: %w", err)
	}
	var errs []error
	for _, link := range links {
		name := link.Attrs().Name
		if keep[name] || !(strings.HasPrefix(name, agentv1.InternalDevicePrefix) || strings.HasPrefix(name, agentv1.GatewayDevicePrefix)) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return errors.Join(append(errs, err)...)
		}
		errs = append(errs, l.write("link del "+name, func() error { return ignore(rt.nl.LinkDel(link), unix.ENODEV) }))
	}
	return errors.Join(errs...)
}

func (w routeSpec) String() string {
	var b strings.Builder
	b.WriteString(w.dst.String())
	for _, a := range w.via {
		b.WriteString(" via " + a.String())
	}
	if w.dev != "" {
		b.WriteString(" dev " + w.dev)
	}
	return b.String()
}

func (w routeSpec) route(h *netlink.Handle) (*netlink.Route, error) {
	dev := 0
	if w.dev != "" {
		link, err := h.LinkByName(w.dev)
		if err != nil {
			return nil, fmt.Errorf("link %s: %w", w.dev, err)
		}
		dev = link.Attrs().Index
	}
	r := &netlink.Route{Dst: toIPNet(w.dst), Protocol: routeProtocol}
	if len(w.via) == 1 {
		r.Gw, r.LinkIndex = w.via[0].AsSlice(), dev
		return r, nil
	}
	for _, a := range w.via {
		r.MultiPath = append(r.MultiPath, &netlink.NexthopInfo{Gw: a.AsSlice(), LinkIndex: dev})
	}
	return r, nil
}

// lookup returns a link by name, or nil when there is none.
func lookup(h *netlink.Handle, name string) (netlink.Link, error) {
	link, err := h.LinkByName(name)
	if _, ok := errors.AsType[netlink.LinkNotFoundError](err); ok {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("link %s: %w", name, err)
	}
	return link, nil
}

// isPair reports whether dev and tap are the two ends of one veth.
func isPair(dev, tap netlink.Link) bool {
	if dev == nil || tap == nil || dev.Type() != "veth" || tap.Type() != "veth" {
		return false
	}
	return dev.Attrs().ParentIndex == tap.Attrs().Index && tap.Attrs().ParentIndex == dev.Attrs().Index
}

// ignore treats the given errnos as success.
func ignore(err error, errnos ...unix.Errno) error {
	for _, e := range errnos {
		if errors.Is(err, e) {
			return nil
		}
	}
	return err
}

func toAddr(p netip.Prefix) *netlink.Addr {
	a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
	if p.Addr().Is6() {
		a.Flags = unix.IFA_F_NODAD // Neutron's IPAM guarantees uniqueness
	}
	return a
}

func toIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func fromIPNet(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones), true
}

func comparePrefix(a, b netip.Prefix) int {
	return cmp.Or(a.Addr().Compare(b.Addr()), cmp.Compare(a.Bits(), b.Bits()))
}

func sortPrefixes(ps []netip.Prefix) { slices.SortFunc(ps, comparePrefix) }

func compactPrefixes(ps []netip.Prefix) []netip.Prefix { return slices.Compact(ps) }

func sortAddrs(as []netip.Addr) { slices.SortFunc(as, netip.Addr.Compare) }

func compactAddrs(as []netip.Addr) []netip.Addr { return slices.Compact(as) }

func sortRoutes(rs []routeSpec) {
	slices.SortFunc(rs, func(a, b routeSpec) int { return comparePrefix(a.dst, b.dst) })
}

func sortLinks(ls []linkSpec) {
	slices.SortFunc(ls, func(a, b linkSpec) int { return strings.Compare(a.dev, b.dev) })
}

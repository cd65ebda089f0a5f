// Package l3 realises one router's layer 3 on a host: the router's network
// namespace, its veth interfaces plugged into the networks' Linux bridges,
// addresses, routes and the SNAT rules of its gateway.
//
// Apply is idempotent and diff-based: the applied state is remembered, so
// applying the same router again does no kernel work; a changed router is
// compared with what the kernel holds and only the differences are written,
// additions before removals. A router whose admin state is down is torn
// down (namespace deleted), as the reference L3 agent does.
package l3

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/neutrino-net/neutrino/internal/namespace"
)

// DefaultNetnsDir is where named network namespaces live (as for ip netns).
const DefaultNetnsDir = "/var/run/netns"

// socketTimeout bounds every netlink exchange.
const socketTimeout = 10 * time.Second

// ExemptPair is a source and destination prefix whose traffic leaves the
// gateway untranslated (VPN NAT bypass). Only IPv4 pairs matter: IPv6 is
// never translated.
type ExemptPair struct {
	Src, Dst netip.Prefix
}

// VPNExempt returns the NAT bypass pairs of a router's VPN connections
// that are up: every local CIDR to every peer CIDR, so that traffic for
// the tunnel keeps its source address.
func VPNExempt(r agentv1.Router) []ExemptPair {
	var out []ExemptPair
	for _, s := range r.VPNServices {
		if !s.AdminStateUp {
			continue
		}
		for _, c := range s.Connections {
			if !c.AdminStateUp {
				continue
			}
			for _, l := range c.LocalCIDRs {
				src, err := netip.ParsePrefix(l)
				if err != nil {
					continue
				}
				for _, p := range c.PeerCIDRs {
					if dst, err := netip.ParsePrefix(p); err == nil {
						out = append(out, ExemptPair{Src: src, Dst: dst})
					}
				}
			}
		}
	}
	return out
}

// Options configures an L3.
type Options struct {
	// HostNS is the agent's own network namespace, opened once at start;
	// the bridges and the host ends of the veths live there. When it is
	// not open (<= 0), the namespace of the thread calling New is used.
	HostNS netns.NsHandle
	// NetnsDir is where the named router namespaces are bind-mounted;
	// DefaultNetnsDir when empty.
	NetnsDir string
	Logger   *slog.Logger
	// NATExempt, when set, returns the pairs a router must not SNAT (VPN
	// NAT bypass). It is consulted on every Apply, so a change takes
	// effect on the router's next Apply.
	NATExempt func(routerID string) []ExemptPair
}

// L3 manages the routers of one host. It is safe for concurrent use; Apply
// and Delete of one router are serialised.
type L3 struct {
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	host    *netlink.Handle
	routers map[string]*router

	writes  atomic.Uint64   // kernel writes, for tests and metrics
	onWrite func(op string) // test hook

	announces  atomic.Uint64   // gratuitous ARP and NA frames sent; not writes
	onAnnounce func(op string) // test hook

	ras  atomic.Uint64    // router advertisements sent; not writes
	onRA func(dst string) // test hook
}

// router is the per-router state: the open namespace and what was applied.
type router struct {
	mu      sync.Mutex
	gone    bool // removed from L3.routers; re-fetch
	ns      netns.NsHandle
	nl      *netlink.Handle
	applied *spec
	// bypass are the NAT bypass pairs of the router's table as last
	// written (see flushBypass).
	bypass []ExemptPair
	// floating are the floating IP associations ("floating>fixed") of the
	// table as last written (see flushFloating).
	floating map[string]bool

	announcer *announcer           // the address announcements under way, if any
	ra        map[string]*raSender // router advertisement senders by device
}

// New returns an L3. It does no kernel work.
func New(opts Options) *L3 {
	if opts.NetnsDir == "" {
		opts.NetnsDir = DefaultNetnsDir
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.HostNS <= 0 {
		ns, err := netns.Get() // the calling thread's namespace, never /proc/1
		if err != nil {
			log.Warn("l3: cannot open the host namespace, using the current one", "err", err)
			ns = netns.None()
		}
		opts.HostNS = ns
	}
	return &L3{opts: opts, log: log.With("component", "l3"), routers: map[string]*router{}}
}

// Apply makes the host realise router r. It does nothing when r equals
// what was last applied; a router whose admin state is down is deleted.
func (l *L3) Apply(ctx context.Context, r agentv1.Router) error {
	if err := validID(r.ID); err != nil {
		return err
	}
	if !r.AdminStateUp {
		return l.Delete(ctx, r.ID)
	}
	exempt := VPNExempt(r)
	if l.opts.NATExempt != nil {
		exempt = append(exempt, l.opts.NATExempt(r.ID)...)
	}
	want, err := desired(r, exempt)
	if err != nil {
		return invalidError{fmt.Errorf("router %s: %w", r.ID, err)}
	}
	rt := l.lock(r.ID)
	defer rt.mu.Unlock()
	if rt.applied != nil && reflect.DeepEqual(*rt.applied, *want) {
		return nil
	}
	rt.applied = nil // unknown until this reconcile succeeds
	log := l.log.With("router", r.ID)
	start := time.Now()
	if err := l.reconcile(ctx, log, r.ID, rt, want); err != nil {
		return fmt.Errorf("router %s: %w", r.ID, err)
	}
	rt.applied = want
	log.Debug("router applied", "took", time.Since(start))
	return nil
}

// Delete removes everything Neutrino created for a router: its veths, its
// nftables table, its namespace and the namespace's file. What is already
// gone is skipped.
func (l *L3) Delete(ctx context.Context, routerID string) error {
	if err := validID(routerID); err != nil {
		return err
	}
	rt := l.lock(routerID)
	defer rt.mu.Unlock()
	l.mu.Lock()
	delete(l.routers, routerID)
	rt.gone = true
	l.mu.Unlock()
	rt.applied = nil
	rt.stopAnnounce()
	rt.stopRA(true) // while the devices are still there

	log := l.log.With("router", routerID)
	path := l.nsPath(routerID)
	var errs []error
	if rt.nl == nil {
		switch ns, err := openNS(path); {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			errs = append(errs, err)
		default:
			if err := rt.attach(ns); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if rt.nl != nil {
		errs = append(errs, l.deleteLinks(ctx, rt, nil), l.deleteNFT(rt))
	}
	rt.close()
	if _, err := os.Lstat(path); err == nil {
		errs = append(errs, l.write("netns del "+filepath.Base(path), func() error { return namespace.RemoveNamed(path) }))
		log.Info("router namespace deleted")
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("delete router %s: %w", routerID, err)
	}
	return nil
}

// Sweep adopts the router namespaces under NetnsDir that are wanted (a later
// Apply converges them without disturbing traffic) and deletes the others.
func (l *L3) Sweep(ctx context.Context, wanted []string) error {
	keep := map[string]bool{}
	for _, id := range wanted {
		keep[id] = true
	}
	stale := map[string]bool{}
	entries, err := os.ReadDir(l.opts.NetnsDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("sweep: %w", err)
	}
	for _, e := range entries {
		if id, ok := strings.CutPrefix(e.Name(), agentv1.RouterNamespacePrefix); ok && !keep[id] {
			stale[id] = true
		}
	}
	l.mu.Lock()
	for id := range l.routers {
		if !keep[id] {
			stale[id] = true
		}
	}
	l.mu.Unlock()
	var errs []error
	for id := range stale {
		if err := ctx.Err(); err != nil {
			return errors.Join(append(errs, err)...)
		}
		l.log.Info("sweeping unwanted router", "router", id)
		errs = append(errs, l.Delete(ctx, id))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	return nil
}

// lock returns the locked state of a router, creating it when needed.
func (l *L3) lock(id string) *router {
	for {
		l.mu.Lock()
		rt := l.routers[id]
		if rt == nil {
			rt = &router{ns: netns.None()}
			l.routers[id] = rt
		}
		l.mu.Unlock()
		rt.mu.Lock()
		if !rt.gone {
			return rt
		}
		rt.mu.Unlock()
	}
}

func (l *L3) nsPath(id string) string {
	return filepath.Join(l.opts.NetnsDir, agentv1.RouterNamespace(id))
}

// hostHandle is the netlink handle of the agent's namespace.
func (l *L3) hostHandle() (*netlink.Handle, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.host == nil {
		h, err := newHandle(l.opts.HostNS)
		if err != nil {
			return nil, fmt.Errorf("host namespace: %w", err)
		}
		l.host = h
	}
	return l.host, nil
}

// write performs and counts one kernel write; op names it in errors.
func (l *L3) write(op string, fn func() error) error {
	l.writes.Add(1)
	if l.onWrite != nil {
		l.onWrite(op)
	}
	l.log.Debug("kernel write", "op", op)
	if err := fn(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

func (rt *router) attach(ns netns.NsHandle) error {
	h, err := newHandle(ns)
	if err != nil {
		ns.Close()
		return fmt.Errorf("router namespace: %w", err)
	}
	rt.ns, rt.nl = ns, h
	return nil
}

func (rt *router) close() {
	if rt.nl != nil {
		rt.nl.Close()
		rt.nl = nil
	}
	if rt.ns.IsOpen() {
		rt.ns.Close()
		rt.ns = netns.None()
	}
}

func newHandle(ns netns.NsHandle) (*netlink.Handle, error) {
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, err
	}
	if err := h.SetSocketTimeout(socketTimeout); err != nil {
		h.Close()
		return nil, err
	}
	return h, nil
}

// validID rejects ids that cannot name a namespace file.
func validID(id string) error {
	if id == "" || id == "." || id == ".." || strings.ContainsAny(id, "/\x00") {
		return invalidError{fmt.Errorf("invalid router id %q", id)}
	}
	return nil
}

// invalidError is a desired router that cannot be realised as given
// (bad ids, addresses or routes, clashing device names): retrying it
// cannot help, and Terminal tells the agent so.
type invalidError struct{ error }

func (e invalidError) Unwrap() error { return e.error }

// Terminal reports that retrying the same desired state cannot succeed.
func (invalidError) Terminal() bool { return true }

// spec is the desired kernel state of one router, in canonical order.
type spec struct {
	links  []linkSpec
	routes []routeSpec
	nft    nftSpec
	ras    []raSpec // router advertisements, by device
}

// linkSpec is one router port: a veth whose router end dev lives in the
// router namespace and whose host end host is a port of bridge.
type linkSpec struct {
	dev, host, bridge string
	mac               string // canonical; "" keeps the kernel's
	mtu               int    // 0 keeps the kernel's
	addrs             []netip.Prefix
}

// routeSpec is one destination and its next hops (several: multipath),
// through dev when set (the gateway's default routes, whose next hop may be
// link-local).
type routeSpec struct {
	dst netip.Prefix
	via []netip.Addr
	dev string
}

// desired computes the canonical spec of a router.
func desired(r agentv1.Router, exempt []ExemptPair) (*spec, error) {
	s := &spec{}
	seen := map[string]string{}
	addLink := func(prefix string, ifc agentv1.Interface) error {
		if ifc.PortID == "" || ifc.NetworkID == "" {
			return errors.New("interface without port or network id")
		}
		ls := linkSpec{
			dev:    agentv1.DeviceName(prefix, ifc.PortID),
			host:   agentv1.DeviceName(agentv1.RouterTapPrefix, ifc.PortID),
			bridge: agentv1.DeviceName(agentv1.BridgePrefix, ifc.NetworkID),
			mtu:    ifc.MTU,
		}
		if other, dup := seen[ls.dev]; dup {
			return fmt.Errorf("ports %s and %s share device name %s", other, ifc.PortID, ls.dev)
		}
		seen[ls.dev] = ifc.PortID
		if ifc.MAC != "" {
			mac, err := net.ParseMAC(ifc.MAC)
			if err != nil {
				return fmt.Errorf("port %s: %w", ifc.PortID, err)
			}
			ls.mac = mac.String()
		}
		for _, p := range ifc.Addresses {
			if !p.IsValid() {
				return fmt.Errorf("port %s: invalid address", ifc.PortID)
			}
			ls.addrs = append(ls.addrs, netip.PrefixFrom(p.Addr().Unmap(), p.Bits()))
		}
		sortPrefixes(ls.addrs)
		ls.addrs = compactPrefixes(ls.addrs)
		s.links = append(s.links, ls)
		return nil
	}
	for _, ifc := range r.Interfaces {
		if err := addLink(agentv1.InternalDevicePrefix, ifc); err != nil {
			return nil, err
		}
		ra, ok, err := raSpecOf(agentv1.DeviceName(agentv1.InternalDevicePrefix, ifc.PortID), ifc)
		if err != nil {
			return nil, err
		}
		if ok {
			s.ras = append(s.ras, ra)
		}
	}
	routes := map[netip.Prefix]*routeSpec{}
	addRoute := func(dst netip.Prefix, via netip.Addr, dev string) error {
		if !dst.IsValid() || !via.IsValid() || dst.Addr().Is4() != via.Unmap().Is4() {
			return fmt.Errorf("invalid route %v via %v", dst, via)
		}
		dst = dst.Masked()
		rs := routes[dst]
		if rs == nil {
			rs = &routeSpec{dst: dst, dev: dev}
			routes[dst] = rs
		}
		if rs.dev != dev {
			rs.dev = "" // mixed: the kernel resolves each next hop
		}
		rs.via = append(rs.via, via.Unmap())
		return nil
	}
	if g := r.Gateway; g != nil {
		if err := addLink(agentv1.GatewayDevicePrefix, g.Interface); err != nil {
			return nil, err
		}
		// The gateway holds the floating IPs (/32), so it answers for
		// them and announces them.
		if fs := floatingPairs(r); len(fs) > 0 {
			ls := &s.links[len(s.links)-1]
			for _, f := range fs {
				ls.addrs = append(ls.addrs, netip.PrefixFrom(f.FloatingIP, 32))
			}
			sortPrefixes(ls.addrs)
			ls.addrs = compactPrefixes(ls.addrs)
		}
		var has4, has6 bool // one default route per family
		for _, nh := range g.NextHops {
			nh = nh.Unmap()
			if (nh.Is4() && has4) || (nh.Is6() && has6) {
				continue
			}
			has4, has6 = has4 || nh.Is4(), has6 || nh.Is6()
			def := netip.PrefixFrom(netip.IPv4Unspecified(), 0)
			if nh.Is6() {
				def = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
			}
			if err := addRoute(def, nh, agentv1.DeviceName(agentv1.GatewayDevicePrefix, g.PortID)); err != nil {
				return nil, err
			}
		}
	}
	for _, rt := range r.Routes {
		if err := addRoute(rt.Destination, rt.NextHop, ""); err != nil {
			return nil, err
		}
	}
	for _, rs := range routes {
		sortAddrs(rs.via)
		rs.via = compactAddrs(rs.via)
		s.routes = append(s.routes, *rs)
	}
	sortRoutes(s.routes)
	sortLinks(s.links)
	slices.SortFunc(s.ras, func(a, b raSpec) int { return strings.Compare(a.dev, b.dev) })
	s.nft = natRules(r, exempt)
	return s, nil
}

// Close releases the netlink handles and namespace references L3 holds.
// The routers keep running; a new L3 adopts them.
// Call it once no Apply, Delete or Sweep runs.
func (l *L3) Close() error {
	l.mu.Lock()
	routers := slices.Collect(maps.Values(l.routers))
	l.mu.Unlock()
	for _, rt := range routers { // lock order: router, then l.mu
		rt.mu.Lock()
		rt.stopAnnounce()
		rt.stopRA(false) // the next agent takes over; the hosts keep the router
		rt.close()
		rt.applied = nil
		rt.mu.Unlock()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.host != nil {
		l.host.Close()
		l.host = nil
	}
	return nil
}

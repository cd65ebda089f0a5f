// Package l2 is the per-host layer 2 of the agent: one Linux bridge per
// network, VXLAN with head-end replication to the other hosts carrying the
// network, a veth pair per port into the port's namespace, and port
// security in an nftables bridge table owned by Neutrino.
//
// Apply is idempotent and diff-based: it remembers what it applied and a
// second call with the same input does no kernel writes. Sweep is for agent
// start: it adopts what a previous run left in place without disturbing it
// and removes Neutrino's leftovers.
package l2

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/vishvananda/netns"

	"github.com/neutrino-net/neutrino/api/agentv1"
)

// NamespacePortPrefix names a port's device inside its namespace.
const NamespacePortPrefix = "ns-"

// Options configures an L2.
type Options struct {
	// HostNS is the agent's own network namespace, remembered at start.
	// When unset (zero or negative), New takes the calling thread's.
	HostNS netns.NsHandle
	// NetnsDir is where named namespaces live; default /var/run/netns.
	NetnsDir string
	// UnderlayIP is the local VXLAN endpoint.
	UnderlayIP netip.Addr
	// VXLANPort is the VXLAN UDP port; default 4789.
	VXLANPort int
	// VXLANDevice optionally names the underlay device for VXLAN.
	VXLANDevice string
	// PhysicalInterfaceMappings map physical networks to the host
	// interfaces that carry their flat and VLAN networks.
	PhysicalInterfaceMappings map[string]string
	// StateDir is where L2 remembers what it must put back (uplinks);
	// empty: in memory only.
	StateDir string
	Logger   *slog.Logger
}

// L2 realises networks and ports on one host. It is safe for concurrent
// use; reconciles are serialised.
type L2 struct {
	log *slog.Logger
	dp  dataplane

	mu sync.Mutex
	// nets and ports are what was applied; a nil value is an item that was
	// attempted and failed: it is ensured again, or deleted when unwanted.
	nets  map[string]*agentv1.Network
	ports map[string]*agentv1.Port
	tag   string // the port security ruleset in place ("" for none)
	known bool   // whether tag is known
	// allowed is what each firewalled tap's rules allowed as last
	// applied: a rule gone means its established connections go too.
	allowed map[string]map[string]bool

	smu      sync.RWMutex
	ready    map[string]bool   // ports wired and up
	problems map[string]string // why a port could not be wired
	netReady map[string]bool   // networks whose bridge is in place
	guests   map[string]bool   // wanted VM taps, by name: whether wired

	changes chan struct{} // a wanted VM tap came or went
	done    chan struct{}
}

// Changes signals when a VM's tap that a port waits for appears, or a
// wired one goes away: the caller should Apply again.
func (l *L2) Changes() <-chan struct{} { return l.changes }

// tapEvent notes a tap that came or went.
func (l *L2) tapEvent(name string, present bool) {
	l.smu.RLock()
	wired, wanted := l.guests[name]
	l.smu.RUnlock()
	if !wanted || wired == present {
		return
	}
	select {
	case l.changes <- struct{}{}:
	default:
	}
}

// dataplane is the kernel as L2 uses it; linux implements it and the unit
// tests fake it. Every method tolerates being called again with the same
// input and writes only what differs.
type dataplane interface {
	// links returns the host namespace's link kinds by name.
	links(ctx context.Context) (map[string]string, error)
	ensureNetwork(ctx context.Context, n agentv1.Network) error
	// ensurePort wires p; old is what was applied before, if known, so
	// addresses and routes Neutrino set and no longer wants can go.
	ensurePort(ctx context.Context, p agentv1.Port, old *agentv1.Port) error
	// deleteLink deletes a host link; a missing one is not an error.
	deleteLink(ctx context.Context, name string) error
	// filterTag returns the tag of the port security ruleset in place.
	filterTag(ctx context.Context) (string, error)
	// setFilter replaces the ruleset wholesale; no rules removes it.
	setFilter(ctx context.Context, tag string, rules []portRules) error
	// flushFlows forgets the tracked connections from or to addresses.
	flushFlows(ctx context.Context, addrs []netip.Prefix) error
	// releaseTap detaches a VM's tap (which its hypervisor owns).
	releaseTap(ctx context.Context, name string) error
	close() error
}

// New returns an L2 working in opts.HostNS.
func New(opts Options) (*L2, error) {
	if opts.NetnsDir == "" {
		opts.NetnsDir = "/var/run/netns"
	}
	if opts.VXLANPort == 0 {
		opts.VXLANPort = 4789
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	dp, err := newLinux(opts)
	if err != nil {
		return nil, err
	}
	l := newL2(opts.Logger, dp)
	if err := dp.watchTaps(l.done, l.tapEvent); err != nil {
		dp.close()
		return nil, err
	}
	return l, nil
}

func newL2(log *slog.Logger, dp dataplane) *L2 {
	return &L2{
		log:      log.With("component", "l2"),
		dp:       dp,
		nets:     map[string]*agentv1.Network{},
		ports:    map[string]*agentv1.Port{},
		ready:    map[string]bool{},
		problems: map[string]string{},
		netReady: map[string]bool{},
		guests:   map[string]bool{},
		changes:  make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
}

// Close releases the handles L2 holds; it leaves the data plane in place.
func (l *L2) Close() error {
	select {
	case <-l.done:
	default:
		close(l.done)
	}
	return l.dp.close()
}

// PortReady reports whether the port is wired and administratively up, so
// the agent can report it ACTIVE.
func (l *L2) PortReady(portID string) bool {
	l.smu.RLock()
	defer l.smu.RUnlock()
	return l.ready[portID]
}

// PortProblem says why the last Apply could not wire a port ("" when it
// could, or when the port only waits for its VM's tap or trunk parent).
func (l *L2) PortProblem(portID string) string {
	l.smu.RLock()
	defer l.smu.RUnlock()
	return l.problems[portID]
}

// NetworkReady reports whether the network's bridge is in place, so the
// agent can plug routers into it.
func (l *L2) NetworkReady(networkID string) bool {
	l.smu.RLock()
	defer l.smu.RUnlock()
	return l.netReady[networkID]
}

// Apply realises networks and ports: it adds and changes what differs from
// what it applied last, then deletes what it applied and is no longer
// wanted. Errors of independent items are joined; an item that failed is
// retried by the next call.
func (l *L2) Apply(ctx context.Context, networks []agentv1.Network, ports []agentv1.Port) error {
	return l.reconcile(ctx, networks, ports, false)
}

// Sweep is Apply for agent start: it forgets what it remembers, adopts the
// links and rules that already match (without touching them), fixes those
// that differ, and removes every link Neutrino owns (by name prefix and
// kind) that is not wanted.
func (l *L2) Sweep(ctx context.Context, networks []agentv1.Network, ports []agentv1.Port) error {
	l.mu.Lock()
	clear(l.nets)
	clear(l.ports)
	l.known = false
	l.mu.Unlock()
	return l.reconcile(ctx, networks, ports, true)
}

func (l *L2) reconcile(ctx context.Context, networks []agentv1.Network, ports []agentv1.Port, sweep bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	defer l.updateReady()

	wantNets := make(map[string]agentv1.Network, len(networks))
	for _, n := range networks {
		n.Peers = slices.Clone(n.Peers)
		slices.SortFunc(n.Peers, netip.Addr.Compare)
		n.Peers = slices.Compact(n.Peers)
		wantNets[n.ID] = n
	}
	wantPorts := make(map[string]agentv1.Port, len(ports))
	for _, p := range ports {
		// Own copies: what is remembered must not change with the caller's slices.
		p.Addresses, p.AllowedPairs, p.Gateways = slices.Clone(p.Addresses), slices.Clone(p.AllowedPairs), slices.Clone(p.Gateways)
		if p.MTU == 0 {
			p.MTU = wantNets[p.NetworkID].MTU
		}
		wantPorts[p.PortID] = p
	}

	errs := []error{uniqueNames(wantNets, agentv1.VXLANPrefix), uniqueNames(wantPorts, agentv1.TapPrefix)}

	// Cheap check that what we remember still exists.
	present, err := l.dp.links(ctx)
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("list links: %w", err))...)
	}
	l.forgetMissing(present)
	if !l.known {
		if l.tag, err = l.dp.filterTag(ctx); err != nil {
			return errors.Join(append(errs, fmt.Errorf("read port security rules: %w", err))...)
		}
		l.known = true
	}

	// Add and change: networks, then port security (so a new port never
	// forwards unfiltered; leaving ports keep their rules until they are
	// gone), then ports.
	failed := map[string]bool{}
	problems := map[string]string{}
	for _, id := range slices.Sorted(maps.Keys(wantNets)) {
		n := wantNets[id]
		if old := l.nets[id]; old != nil && sameNetwork(*old, n) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return errors.Join(append(errs, err)...)
		}
		l.nets[id] = nil
		if err := l.dp.ensureNetwork(ctx, n); err != nil {
			errs = append(errs, fmt.Errorf("network %s: %w", id, err))
			failed[id] = true
			continue
		}
		l.nets[id] = &n
		l.log.InfoContext(ctx, "network applied", "network", id, "vni", n.VNI, "peers", len(n.Peers))
	}
	errs = append(errs, l.syncFilter(ctx, wantPorts, true))
	// Trunk subports go after the ports whose devices carry them.
	sub := func(id string) int {
		if wantPorts[id].ParentID != "" {
			return 1
		}
		return 0
	}
	ids := slices.SortedFunc(maps.Keys(wantPorts), func(a, b string) int {
		return cmp.Or(cmp.Compare(sub(a), sub(b)), strings.Compare(a, b))
	})
	rewired := map[string]bool{} // ports whose device may have been recreated
	for _, id := range ids {
		p := wantPorts[id]
		if _, ok := wantNets[p.NetworkID]; !ok || failed[p.NetworkID] {
			if !ok {
				errs = append(errs, fmt.Errorf("port %s: network %s is not on this host", id, p.NetworkID))
				problems[id] = fmt.Sprintf("network %s is not on this host", p.NetworkID)
			}
			l.ports[id] = nil // not ready; ensured again once the network is
			continue
		}
		if p.ParentID != "" && l.ports[p.ParentID] == nil {
			// Its parent's device is not there (yet): wired once it is.
			l.ports[id] = nil
			continue
		}
		old := l.ports[id]
		if old != nil && sameWiring(*old, p) && !rewired[p.ParentID] {
			l.ports[id] = &p // port security changes are in the filter
			continue
		}
		if err := ctx.Err(); err != nil {
			return errors.Join(append(errs, err)...)
		}
		l.ports[id] = nil
		rewired[id] = true
		if err := l.dp.ensurePort(ctx, p, old); errors.Is(err, errNoTap) || errors.Is(err, errNoParent) {
			l.log.DebugContext(ctx, "port waits for its device", "port", id, "tap", agentv1.DeviceName(agentv1.TapPrefix, id), "why", err)
			continue
		} else if err != nil {
			errs = append(errs, fmt.Errorf("port %s: %w", id, err))
			problems[id] = err.Error()
			continue
		}
		l.ports[id] = &p
		l.log.InfoContext(ctx, "port wired", "port", id, "tap", agentv1.DeviceName(agentv1.TapPrefix, id), "netns", p.Netns,
			"parent", p.ParentID, "vlan", p.VLAN)
	}

	// Delete: ports, their rules, then networks.
	for _, id := range slices.Sorted(maps.Keys(l.ports)) {
		if _, ok := wantPorts[id]; ok {
			continue
		}
		remove := l.dp.deleteLink
		if p := l.ports[id]; p != nil && p.Netns == "" && p.ParentID == "" {
			remove = l.dp.releaseTap
		}
		if err := remove(ctx, agentv1.DeviceName(agentv1.TapPrefix, id)); err != nil {
			errs = append(errs, fmt.Errorf("delete port %s: %w", id, err))
			continue
		}
		delete(l.ports, id)
		l.log.InfoContext(ctx, "port removed", "port", id)
	}
	errs = append(errs, l.syncFilter(ctx, wantPorts, false))
	for _, id := range slices.Sorted(maps.Keys(l.nets)) {
		if _, ok := wantNets[id]; ok {
			continue
		}
		err := errors.Join(
			l.dp.deleteLink(ctx, agentv1.DeviceName(agentv1.VXLANPrefix, id)),
			l.dp.deleteLink(ctx, agentv1.DeviceName(agentv1.BridgePrefix, id)))
		if err != nil {
			errs = append(errs, fmt.Errorf("delete network %s: %w", id, err))
			continue
		}
		delete(l.nets, id)
		l.log.InfoContext(ctx, "network removed", "network", id)
	}
	if sweep {
		errs = append(errs, l.sweepLinks(ctx, present, wantNets, wantPorts))
	}
	l.smu.Lock()
	l.problems = problems
	l.smu.Unlock()

	return errors.Join(errs...)
}

// updateReady publishes which ports are wired and up, and which
// networks are in place.
func (l *L2) updateReady() {
	l.smu.Lock()
	defer l.smu.Unlock()
	clear(l.ready)
	for id, p := range l.ports {
		if p != nil && p.AdminStateUp {
			l.ready[id] = true
		}
	}
	clear(l.netReady)
	for id, n := range l.nets {
		if n != nil {
			l.netReady[id] = true
		}
	}
	clear(l.guests)
	for id, p := range l.ports {
		if p == nil || (p.Netns == "" && p.ParentID == "") {
			l.guests[agentv1.DeviceName(agentv1.TapPrefix, id)] = p != nil
		}
	}
}

// uniqueNames drops (and reports) the ids whose device names clash with
// an earlier id's: names keep only the start of an id. The prefix given is
// the longest of the kind, so it keeps the fewest characters.
func uniqueNames[T any](want map[string]T, prefix string) error {
	seen := map[string]string{}
	var errs []error
	for _, id := range slices.Sorted(maps.Keys(want)) {
		name := agentv1.DeviceName(prefix, id)
		if other, ok := seen[name]; ok {
			errs = append(errs, fmt.Errorf("%s is ignored: its device name %s is %s's", id, name, other))
			delete(want, id)
			continue
		}
		seen[name] = id
	}
	return errors.Join(errs...)
}

// forgetMissing marks for re-ensuring what is remembered but whose links
// are gone.
func (l *L2) forgetMissing(present map[string]string) {
	noBridge := map[string]bool{}
	for id, n := range l.nets {
		if n == nil {
			continue
		}
		_, br := present[agentv1.DeviceName(agentv1.BridgePrefix, id)]
		_, vx := present[agentv1.DeviceName(agentv1.VXLANPrefix, id)]
		if !br || (len(n.Peers) > 0 && !vx) {
			l.nets[id] = nil
			noBridge[id] = !br
		}
	}
	for id, p := range l.ports {
		// A port whose bridge went lost its master with it.
		if _, ok := present[agentv1.DeviceName(agentv1.TapPrefix, id)]; p != nil && (!ok || noBridge[p.NetworkID]) {
			l.ports[id] = nil
		}
	}
}

// syncFilter installs the port security ruleset for want, and with
// leaving also for the remembered ports about to be deleted.
func (l *L2) syncFilter(ctx context.Context, want map[string]agentv1.Port, leaving bool) error {
	ports := slices.Collect(maps.Values(want))
	if leaving {
		for id, p := range l.ports {
			if _, ok := want[id]; !ok && p != nil {
				ports = append(ports, *p)
			}
		}
	}
	rules := filterRules(ports)
	tag := rulesTag(rules)
	if l.known && tag == l.tag {
		return nil
	}
	if err := l.dp.setFilter(ctx, tag, rules); err != nil {
		l.known = false
		return fmt.Errorf("port security: %w", err)
	}
	l.tag, l.known = tag, true
	l.log.InfoContext(ctx, "port security applied", "ports", len(rules), "tag", tag)
	return l.flushRevoked(ctx, rules)
}

// flushRevoked forgets the tracked connections of the firewalled ports
// that lost a rule (or a remote address of one) since the last ruleset:
// their next packet is checked as a new connection. The reference does
// the same when a rule is deleted.
func (l *L2) flushRevoked(ctx context.Context, rules []portRules) error {
	now := map[string]map[string]bool{}
	var flush []netip.Prefix
	for _, r := range rules {
		if r.FW == nil {
			continue
		}
		set := map[string]bool{}
		for _, fr := range r.FW.Rules {
			set[fr.key()] = true
		}
		now[r.Tap] = set
		for k := range l.allowed[r.Tap] {
			if !set[k] {
				flush = append(flush, r.IPs...)
				break
			}
		}
	}
	l.allowed = now
	if len(flush) == 0 {
		return nil
	}
	if err := l.dp.flushFlows(ctx, flush); err != nil {
		return fmt.Errorf("security groups: %w", err)
	}
	return nil
}

// sweepLinks deletes the links Neutrino owns that are not wanted: taps
// first, then VXLAN devices, then bridges.
func (l *L2) sweepLinks(ctx context.Context, present map[string]string, nets map[string]agentv1.Network, ports map[string]agentv1.Port) error {
	wanted := map[string]bool{}
	for id, n := range nets {
		wanted[agentv1.DeviceName(agentv1.BridgePrefix, id)] = true
		if len(n.Peers) > 0 {
			wanted[agentv1.DeviceName(agentv1.VXLANPrefix, id)] = true
		}
	}
	for id := range ports {
		wanted[agentv1.DeviceName(agentv1.TapPrefix, id)] = true
	}
	var errs []error
	for _, owned := range ownedKinds {
		for _, name := range slices.Sorted(maps.Keys(present)) {
			if wanted[name] || present[name] != owned.kind || !strings.HasPrefix(name, owned.prefix) {
				continue
			}
			if err := l.dp.deleteLink(ctx, name); err != nil {
				errs = append(errs, fmt.Errorf("sweep %s: %w", name, err))
				continue
			}
			l.log.InfoContext(ctx, "leftover removed", "link", name)
		}
	}
	return errors.Join(errs...)
}

// ownedKinds are the links Neutrino owns, in deletion order.
var ownedKinds = []struct{ prefix, kind string }{
	{agentv1.TapPrefix, "vlan"}, // trunk subports
	{agentv1.TapPrefix, "veth"},
	{agentv1.VXLANPrefix, "vxlan"},
	{agentv1.BridgePrefix, "bridge"},
}

func sameNetwork(a, b agentv1.Network) bool {
	return a.ID == b.ID && a.VNI == b.VNI && a.MTU == b.MTU && slices.Equal(a.Peers, b.Peers) &&
		a.Type == b.Type && a.PhysicalNetwork == b.PhysicalNetwork && a.VLAN == b.VLAN
}

// sameWiring compares what ensurePort realises; port security is not in it.
func sameWiring(a, b agentv1.Port) bool {
	return a.PortID == b.PortID && a.NetworkID == b.NetworkID && strings.EqualFold(a.MAC, b.MAC) &&
		a.ParentID == b.ParentID && a.VLAN == b.VLAN &&
		a.MTU == b.MTU && a.Netns == b.Netns && a.AdminStateUp == b.AdminStateUp &&
		slices.Equal(a.Addresses, b.Addresses) && slices.Equal(a.Gateways, b.Gateways)
}

// defaultGateways returns per family the first gateway on-link in one of
// the addresses' prefixes.
func defaultGateways(p agentv1.Port) []netip.Addr {
	var gws []netip.Addr
	for _, gw := range p.Gateways {
		if slices.ContainsFunc(gws, func(g netip.Addr) bool { return g.Is4() == gw.Is4() }) {
			continue
		}
		if slices.ContainsFunc(p.Addresses, func(a netip.Prefix) bool { return a.Masked().Contains(gw) }) {
			gws = append(gws, gw)
		}
	}
	slices.SortFunc(gws, func(a, b netip.Addr) int { return cmp.Compare(a.BitLen(), b.BitLen()) })
	return gws
}

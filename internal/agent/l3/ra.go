package l3

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mdlayher/ndp"
	"github.com/vishvananda/netns"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/neutrino-net/neutrino/internal/namespace"
)

// Router advertisements (RFC 4861 section 6.2). An internal interface
// whose IPv6 subnets have an ipv6_ra_mode gets a sender: a goroutine of
// the agent with an ICMPv6 socket opened inside the router namespace and
// bound to the interface's link-local address. It sends an unsolicited
// advertisement as soon as the interface is there (and again when what
// it says changes), a few more at short intervals, then one every
// raMinInterval to raMaxInterval, and answers each router solicitation.
// What it says is the reference's radvd configuration: per subnet a
// prefix information option (on-link; autonomous for slaac and
// dhcpv6-stateless), the managed flag when a subnet is dhcpv6-stateful,
// the other-configuration flag when one is dhcpv6-stateless or -stateful,
// the network's MTU, the slaac subnets' DNS servers (RDNSS) and the
// router's link-layer address. Senders run beside the kernel state, not
// in it: they stop (without a word) when the agent stops, and the next
// agent starts them on its first Apply; the lifetimes below carry the
// hosts over the gap. An interface or subnet that goes away gets a last
// advertisement with a router lifetime of zero.
var (
	raMinInterval       = 30 * time.Second  // the reference's MinRtrAdvInterval
	raMaxInterval       = 100 * time.Second // and MaxRtrAdvInterval
	raInitial           = []time.Duration{time.Second, 3 * time.Second}
	raMaxDelay          = 500 * time.Millisecond // MAX_RA_DELAY_TIME, before answering a solicitation
	raRouterLifetime    = 1800 * time.Second     // hosts keep the router this long without a word
	raValidLifetime     = 86400 * time.Second    // radvd's defaults
	raPreferredLifetime = 14400 * time.Second
	raRetry             = 200 * time.Millisecond // first retry when the socket cannot be opened
)

// raSpec is what the advertisements on one internal device say.
type raSpec struct {
	dev            string
	mtu            int // 0: no MTU option
	managed, other bool
	prefixes       []raPrefix
	dns            []netip.Addr
}

type raPrefix struct {
	prefix netip.Prefix
	auto   bool
}

// raSpecOf derives the advertisements of an internal interface from its
// IPv6 subnets; ok is false when no subnet has an ipv6_ra_mode.
func raSpecOf(dev string, ifc agentv1.Interface) (raSpec, bool, error) {
	s := raSpec{dev: dev}
	for _, sn := range ifc.IPv6Subnets {
		var auto bool
		switch sn.RAMode {
		case "":
			continue
		case agentv1.IPv6SLAAC:
			auto = true
			for _, d := range sn.DNS {
				if d.Is6() && !slices.Contains(s.dns, d) {
					s.dns = append(s.dns, d)
				}
			}
		case agentv1.IPv6DHCPv6Stateless:
			auto, s.other = true, true
		case agentv1.IPv6DHCPv6Stateful:
			s.managed, s.other = true, true
		default:
			return s, false, fmt.Errorf("port %s: subnet %s: unknown ipv6_ra_mode %q", ifc.PortID, sn.ID, sn.RAMode)
		}
		if !sn.Prefix.IsValid() || !sn.Prefix.Addr().Is6() {
			return s, false, fmt.Errorf("port %s: subnet %s: invalid IPv6 prefix %v", ifc.PortID, sn.ID, sn.Prefix)
		}
		p := raPrefix{prefix: sn.Prefix.Masked(), auto: auto}
		if i := slices.IndexFunc(s.prefixes, func(o raPrefix) bool { return o.prefix == p.prefix }); i >= 0 {
			s.prefixes[i].auto = s.prefixes[i].auto || auto
			continue
		}
		s.prefixes = append(s.prefixes, p)
		if mtu := cmpOr(sn.MTU, ifc.MTU); mtu >= 1280 {
			s.mtu = mtu
		}
	}
	if len(s.prefixes) == 0 {
		return raSpec{}, false, nil
	}
	slices.SortFunc(s.prefixes, func(a, b raPrefix) int { return comparePrefix(a.prefix, b.prefix) })
	slices.SortFunc(s.dns, netip.Addr.Compare)
	return s, true, nil
}

func cmpOr(a, b int) int {
	if a != 0 {
		return a
	}
	return b
}

// message builds the advertisement; final ones withdraw the router and
// deprecate the prefixes.
func (s *raSpec) message(mac net.HardwareAddr, final bool) *ndp.RouterAdvertisement {
	ra := &ndp.RouterAdvertisement{
		CurrentHopLimit:      64,
		ManagedConfiguration: s.managed,
		OtherConfiguration:   s.other,
		RouterLifetime:       raRouterLifetime,
	}
	valid, preferred := raValidLifetime, raPreferredLifetime
	if final {
		ra.RouterLifetime, valid, preferred = 0, 0, 0
	}
	for _, p := range s.prefixes {
		ra.Options = append(ra.Options, &ndp.PrefixInformation{
			PrefixLength: uint8(p.prefix.Bits()), OnLink: true, AutonomousAddressConfiguration: p.auto,
			ValidLifetime: valid, PreferredLifetime: preferred, Prefix: p.prefix.Addr(),
		})
	}
	if s.mtu > 0 {
		ra.Options = append(ra.Options, ndp.NewMTU(uint32(s.mtu)))
	}
	if len(s.dns) > 0 {
		ra.Options = append(ra.Options, &ndp.RecursiveDNSServer{Lifetime: ra.RouterLifetime, Servers: s.dns})
	}
	if len(mac) == 6 {
		ra.Options = append(ra.Options, &ndp.LinkLayerAddress{Direction: ndp.Source, Addr: mac})
	}
	return ra
}

// raSender advertises on one device of one router namespace.
type raSender struct {
	ifindex int    // of the device it was started for
	nsIno   uint64 // of the namespace it was started in
	spec    atomic.Pointer[raSpec]
	kick    chan struct{} // the spec changed: advertise now
	cancel  context.CancelFunc
	final   atomic.Bool // when cancelled: send a last advertisement
	done    chan struct{}
}

// stop ends the sender; final withdraws the router from the hosts.
func (s *raSender) stop(final bool) {
	s.final.Store(final)
	s.cancel()
	<-s.done
}

// stopRA ends all senders of a router; the router is locked.
func (rt *router) stopRA(final bool) {
	for dev, s := range rt.ra {
		s.stop(final)
		delete(rt.ra, dev)
	}
}

func nsInode(ns netns.NsHandle) uint64 {
	var st unix.Stat_t
	if unix.Fstat(int(ns), &st) != nil {
		return 0
	}
	return st.Ino
}

// ensureRA makes the router's senders match want; links are the router's
// devices as reconcile left them (a device missing there keeps its sender
// as it is). The router is locked.
func (l *L3) ensureRA(log *slog.Logger, rt *router, want []raSpec, links map[string]linkState) {
	ino := nsInode(rt.ns)
	keep := map[string]bool{}
	for _, s := range want {
		keep[s.dev] = true
		st, ok := links[s.dev]
		if !ok {
			continue
		}
		if cur := rt.ra[s.dev]; cur != nil {
			if cur.ifindex == st.ifindex && cur.nsIno == ino {
				if !reflect.DeepEqual(*cur.spec.Load(), s) {
					cur.spec.Store(&s)
					select {
					case cur.kick <- struct{}{}:
					default:
					}
				}
				continue
			}
			cur.stop(false) // a new device or namespace: its own sender
		}
		if rt.ra == nil {
			rt.ra = map[string]*raSender{}
		}
		rt.ra[s.dev] = l.startRA(log.With("dev", s.dev), rt.ns, ino, st.ifindex, s)
	}
	for dev, s := range rt.ra {
		if !keep[dev] {
			s.stop(true)
			delete(rt.ra, dev)
		}
	}
}

// startRA starts a sender; it holds a namespace reference of its own.
func (l *L3) startRA(log *slog.Logger, ns netns.NsHandle, ino uint64, ifindex int, spec raSpec) *raSender {
	ctx, cancel := context.WithCancel(context.Background())
	s := &raSender{ifindex: ifindex, nsIno: ino, kick: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{})}
	s.spec.Store(&spec)
	own, err := unix.Dup(int(ns))
	if err != nil {
		log.Warn("router advertisements: cannot hold the namespace", "err", err)
		close(s.done)
		return s
	}
	go func() {
		defer close(s.done)
		defer unix.Close(own)
		l.runRA(ctx, log, netns.NsHandle(own), s)
	}()
	return s
}

// raConn is the sender's socket on its device.
type raConn struct {
	*ndp.Conn
	mac net.HardwareAddr
}

// openRA opens the ICMPv6 socket of a device inside the namespace, bound
// to its link-local address. The device is named by its index (as the
// IPv6 zone too): names are resolved in whatever namespace the process's
// zone cache last saw.
func openRA(ns netns.NsHandle, ifindex int) (*raConn, error) {
	var c *raConn
	err := namespace.Do(ns, func() error {
		ifi, err := net.InterfaceByIndex(ifindex)
		if err != nil {
			return err
		}
		byIndex := *ifi
		byIndex.Name = strconv.Itoa(ifi.Index)
		conn, _, err := ndp.Listen(&byIndex, ndp.LinkLocal)
		if err != nil {
			return err
		}
		var f ipv6.ICMPFilter
		f.SetAll(true)
		f.Accept(ipv6.ICMPTypeRouterSolicitation)
		if err := conn.SetICMPFilter(&f); err != nil {
			conn.Close()
			return err
		}
		c = &raConn{Conn: conn, mac: ifi.HardwareAddr}
		return nil
	})
	return c, err
}

// runRA is a sender's life: open the socket (retrying until the device
// has its link-local address), advertise, answer, and reopen after a
// send error (a device replaced under it is a new sender).
func (l *L3) runRA(ctx context.Context, log *slog.Logger, ns netns.NsHandle, s *raSender) {
	allNodes := netip.MustParseAddr("ff02::1")
	retry := raRetry
	for ctx.Err() == nil {
		c, err := openRA(ns, s.ifindex)
		if err != nil {
			log.Debug("router advertisements: socket not ready", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(retry):
			}
			retry = min(2*retry, 5*time.Second)
			continue
		}
		retry = raRetry
		err = l.serveRA(ctx, log, c, s, allNodes)
		if ctx.Err() != nil && s.final.Load() {
			if err := c.WriteTo(s.spec.Load().message(c.mac, true), nil, allNodes); err == nil {
				l.ras.Add(1)
			}
		}
		c.Close()
		if err != nil && ctx.Err() == nil {
			log.Warn("router advertisements: reopening", "err", err)
		}
	}
}

// serveRA advertises on an open socket until ctx ends or a send fails.
func (l *L3) serveRA(ctx context.Context, log *slog.Logger, c *raConn, s *raSender, allNodes netip.Addr) error {
	send := func(dst netip.Addr) error {
		if err := c.WriteTo(s.spec.Load().message(c.mac, false), nil, dst); err != nil {
			return fmt.Errorf("send to %s: %w", dst, err)
		}
		l.ras.Add(1)
		if l.onRA != nil {
			l.onRA(dst.String())
		}
		return nil
	}
	// Solicitations are read in a goroutine; each is answered, unicast
	// when it has a source, after a random delay up to raMaxDelay.
	var mu sync.Mutex
	pending := map[netip.Addr]bool{}
	failed := make(chan error, 1)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		for {
			m, _, src, err := c.ReadFrom()
			if err != nil {
				return // closed
			}
			if _, ok := m.(*ndp.RouterSolicitation); !ok {
				continue
			}
			dst := src
			if !src.IsValid() || src.WithZone("").IsUnspecified() {
				dst = allNodes
			}
			mu.Lock()
			if pending[dst] {
				mu.Unlock()
				continue
			}
			pending[dst] = true
			mu.Unlock()
			time.AfterFunc(rand.N(raMaxDelay), func() {
				mu.Lock()
				delete(pending, dst)
				mu.Unlock()
				if ctx.Err() != nil {
					return
				}
				if err := send(dst); err != nil {
					select {
					case failed <- err:
					default:
					}
				}
			})
		}
	}()
	defer func() {
		c.SetReadDeadline(time.Now()) // ends the reader
		<-readDone
	}()

	initial := slices.Clone(raInitial)
	next := time.Duration(0)
	timer := time.NewTimer(next)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-failed:
			return err
		case <-s.kick:
			initial = slices.Clone(raInitial)
			timer.Reset(0)
			continue
		case <-timer.C:
		}
		if err := send(allNodes); err != nil {
			return err
		}
		if len(initial) > 0 {
			next, initial = initial[0], initial[1:]
		} else {
			next = raMinInterval + rand.N(raMaxInterval-raMinInterval+1)
		}
		timer.Reset(next)
	}
}

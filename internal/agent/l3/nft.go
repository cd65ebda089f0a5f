package l3

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/neutrino-net/neutrino/api/agentv1"
)

// The NAT table Neutrino owns in each router namespace. It is of family inet
// so the forwarding rules cover IPv4 and IPv6; only IPv4 is translated.
const (
	natTable    = "neutrino-nat"
	chainPre    = "prerouting"
	chainPost   = "postrouting"
	chainFwd    = "forward"
	ipsecDevice = "ipsec0" // TUN device of userspace ESP (kernel-libipsec)
)

// nftSpec is the table's rules, chain by chain, in order.
type nftSpec []nftRule

// nftRule matches the given (set) fields and accepts, or translates the
// source to snat when it is valid.
type nftRule struct {
	chain    string
	iif, oif string
	src, dst netip.Prefix // IPv4
	snat     netip.Addr
	dnat     netip.Addr
}

// natRules renders a router's table: accept what the VPN TUN device
// forwards, and SNAT to the gateway's IPv4 address the traffic that leaves
// the gateway from an internal subnet to a non-internal destination, except
// the exempt pairs. The router's own traffic (e.g. IKE) is never translated.
func natRules(r agentv1.Router, exempt []ExemptPair) nftSpec {
	rules := nftSpec{{chain: chainFwd, iif: ipsecDevice}, {chain: chainFwd, oif: ipsecDevice}}
	g := r.Gateway
	if g == nil || !g.SNAT {
		return rules
	}
	var gw netip.Addr
	for _, p := range g.Addresses {
		if p.Addr().Unmap().Is4() {
			gw = p.Addr().Unmap()
			break
		}
	}
	var internal []netip.Prefix
	for _, ifc := range r.Interfaces {
		for _, p := range ifc.Addresses {
			if p.Addr().Unmap().Is4() {
				internal = append(internal, netip.PrefixFrom(p.Addr().Unmap(), p.Bits()).Masked())
			}
		}
	}
	sortPrefixes(internal)
	internal = slices.Compact(internal)
	if !gw.IsValid() || len(internal) == 0 {
		return rules
	}
	oif := agentv1.DeviceName(agentv1.GatewayDevicePrefix, g.PortID)
	var pairs []ExemptPair
	for _, p := range exempt {
		if p.Src.IsValid() && p.Dst.IsValid() && p.Src.Addr().Unmap().Is4() && p.Dst.Addr().Unmap().Is4() {
			pairs = append(pairs, ExemptPair{
				Src: netip.PrefixFrom(p.Src.Addr().Unmap(), p.Src.Bits()).Masked(),
				Dst: netip.PrefixFrom(p.Dst.Addr().Unmap(), p.Dst.Bits()).Masked(),
			})
		}
	}
	slices.SortFunc(pairs, func(a, b ExemptPair) int {
		return cmp.Or(comparePrefix(a.Src, b.Src), comparePrefix(a.Dst, b.Dst))
	})
	for _, p := range slices.Compact(pairs) {
		rules = append(rules, nftRule{chain: chainPost, oif: oif, src: p.Src, dst: p.Dst})
	}
	for _, d := range internal {
		rules = append(rules, nftRule{chain: chainPost, oif: oif, dst: d})
	}
	// A floating IP's fixed IP leaves with it, and what is sent to it
	// reaches the fixed IP (from outside and, hairpinned, from inside).
	for _, f := range floatingPairs(r) {
		rules = append(rules, nftRule{chain: chainPost, oif: oif, src: netip.PrefixFrom(f.FixedIP, 32), snat: f.FloatingIP})
	}
	for _, f := range floatingPairs(r) {
		rules = append(rules, nftRule{chain: chainPre, dst: netip.PrefixFrom(f.FloatingIP, 32), dnat: f.FixedIP})
	}
	for _, s := range internal {
		rules = append(rules, nftRule{chain: chainPost, oif: oif, src: s, snat: gw})
	}
	return rules
}

// String is the rule in nft syntax; it is also the rule's comment, by which
// the kernel's table is compared with the wanted one.
func (r nftRule) String() string {
	var f []string
	if r.iif != "" {
		f = append(f, fmt.Sprintf("iifname %q", r.iif))
	}
	if r.oif != "" {
		f = append(f, fmt.Sprintf("oifname %q", r.oif))
	}
	if r.src.IsValid() {
		f = append(f, "ip saddr "+r.src.String())
	}
	if r.dst.IsValid() {
		f = append(f, "ip daddr "+r.dst.String())
	}
	switch {
	case r.snat.IsValid():
		f = append(f, "snat ip to "+r.snat.String())
	case r.dnat.IsValid():
		f = append(f, "dnat ip to "+r.dnat.String())
	default:
		f = append(f, "accept")
	}
	return strings.Join(f, " ")
}

func (r nftRule) exprs() []expr.Any {
	var e []expr.Any
	if r.src.IsValid() || r.dst.IsValid() || r.snat.IsValid() || r.dnat.IsValid() {
		e = append(e,
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}})
	}
	ifname := func(key expr.MetaKey, name string) {
		if name != "" {
			b := make([]byte, unix.IFNAMSIZ)
			copy(b, name)
			e = append(e, &expr.Meta{Key: key, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: b})
		}
	}
	ifname(expr.MetaKeyIIFNAME, r.iif)
	ifname(expr.MetaKeyOIFNAME, r.oif)
	prefix := func(offset uint32, p netip.Prefix) { // offset in the IPv4 header
		if p.IsValid() {
			e = append(e,
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4},
				&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: net.CIDRMask(p.Bits(), 32), Xor: make([]byte, 4)},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: p.Addr().AsSlice()})
		}
	}
	prefix(12, r.src)
	prefix(16, r.dst)
	if r.snat.IsValid() {
		return append(e,
			&expr.Immediate{Register: 1, Data: r.snat.AsSlice()},
			&expr.NAT{Type: expr.NATTypeSourceNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1})
	}
	if r.dnat.IsValid() {
		return append(e,
			&expr.Immediate{Register: 1, Data: r.dnat.AsSlice()},
			&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1})
	}
	return append(e, &expr.Verdict{Kind: expr.VerdictAccept})
}

// ensureNFT rebuilds the router's table, wholesale and atomically, when the
// kernel's differs from want.
func (l *L3) ensureNFT(rt *router, want nftSpec) error {
	c, err := nftables.New(nftables.WithNetNSFd(int(rt.ns)))
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	have, exists, err := readNFT(c)
	if err != nil {
		return err
	}
	if exists && equalNFT(have, want) {
		return nil
	}
	t := &nftables.Table{Family: nftables.TableFamilyINet, Name: natTable}
	c.AddTable(t) // so that the delete below cannot fail
	c.DelTable(t)
	c.AddTable(t)
	accept := nftables.ChainPolicyAccept
	chains := map[string]*nftables.Chain{
		chainPre: c.AddChain(&nftables.Chain{Name: chainPre, Table: t, Type: nftables.ChainTypeNAT,
			Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest}),
		chainPost: c.AddChain(&nftables.Chain{Name: chainPost, Table: t, Type: nftables.ChainTypeNAT,
			Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource}),
		chainFwd: c.AddChain(&nftables.Chain{Name: chainFwd, Table: t, Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &accept}),
	}
	for _, r := range want {
		c.AddRule(&nftables.Rule{Table: t, Chain: chains[r.chain], Exprs: r.exprs(),
			UserData: userdata.AppendString(nil, userdata.TypeComment, r.String())})
	}
	if err := l.write("nft rebuild table inet "+natTable, c.Flush); err != nil {
		return err
	}
	return errors.Join(l.flushBypass(rt, want), l.flushFloating(rt, want))
}

// floatingPairs are the router's valid IPv4 floating IP associations,
// sorted and unique.
func floatingPairs(r agentv1.Router) []agentv1.FloatingIP {
	var out []agentv1.FloatingIP
	for _, f := range r.FloatingIPs {
		fl, fx := f.FloatingIP.Unmap(), f.FixedIP.Unmap()
		if fl.Is4() && fx.Is4() {
			out = append(out, agentv1.FloatingIP{FloatingIP: fl, FixedIP: fx})
		}
	}
	slices.SortFunc(out, func(a, b agentv1.FloatingIP) int {
		return cmp.Or(a.FloatingIP.Compare(b.FloatingIP), a.FixedIP.Compare(b.FixedIP))
	})
	return slices.Compact(out)
}

// flushFloating deletes the conntrack entries of the fixed IPs whose
// floating IP changed (added, moved or gone) and of flows to those
// floating IPs: NAT is decided on a flow's first packet, so without this
// a VM's flow would keep leaving SNATed to the gateway after an
// association, or with the floating IP after a dissociation.
func (l *L3) flushFloating(rt *router, want nftSpec) error {
	now := map[string]bool{}
	for _, r := range want {
		if r.dnat.IsValid() {
			now[r.dst.Addr().String()+">"+r.dnat.String()] = true
		}
	}
	var filters []netlink.CustomConntrackFilter
	add := func(key string, wanted bool) error {
		if wanted {
			return nil
		}
		fl, fx, _ := strings.Cut(key, ">")
		for _, c := range []struct {
			field netlink.ConntrackFilterType
			addr  string
		}{{netlink.ConntrackOrigSrcIP, fx}, {netlink.ConntrackOrigDstIP, fl}} {
			f := &netlink.ConntrackFilter{}
			if err := f.AddIP(c.field, net.ParseIP(c.addr)); err != nil {
				return err
			}
			filters = append(filters, f)
		}
		return nil
	}
	for k := range now {
		if err := add(k, rt.floating[k]); err != nil {
			return err
		}
	}
	for k := range rt.floating {
		if err := add(k, now[k]); err != nil {
			return err
		}
	}
	rt.floating = now
	if len(filters) == 0 || rt.nl == nil {
		return nil
	}
	n, err := rt.nl.ConntrackDeleteFilters(netlink.ConntrackTable, unix.AF_INET, filters...)
	if err != nil {
		return fmt.Errorf("flush conntrack of floating IP flows: %w", err)
	}
	if n > 0 {
		l.log.Info("conntrack entries of floating IP flows deleted", "entries", n)
	}
	return nil
}

// flushBypass deletes the conntrack entries of flows between NAT bypass
// pairs, those of the new table and of the previous one. NAT is decided on
// a flow's first packet: a VM that pings the peer's network before its
// tunnel is up has its flow SNATed, and without this the flow would stay
// SNATed (and miss the IPsec policy) for as long as it runs; after a
// tunnel goes, its flows must be translated again.
func (l *L3) flushBypass(rt *router, want nftSpec) error {
	var pairs []ExemptPair
	for _, r := range want {
		if r.chain == chainPost && r.src.IsValid() && r.dst.IsValid() && !r.snat.IsValid() {
			pairs = append(pairs, ExemptPair{Src: r.src, Dst: r.dst})
		}
	}
	all := append(slices.Clone(pairs), rt.bypass...)
	if len(all) == 0 || rt.nl == nil {
		rt.bypass = pairs
		return nil
	}
	filters := make([]netlink.CustomConntrackFilter, 0, len(all))
	for _, p := range all {
		f := &netlink.ConntrackFilter{}
		if err := f.AddIPNet(netlink.ConntrackOrigSrcIP, toIPNet(p.Src)); err != nil {
			return err
		}
		if err := f.AddIPNet(netlink.ConntrackOrigDstIP, toIPNet(p.Dst)); err != nil {
			return err
		}
		filters = append(filters, f)
	}
	n, err := rt.nl.ConntrackDeleteFilters(netlink.ConntrackTable, unix.AF_INET, filters...)
	if err != nil {
		return fmt.Errorf("flush conntrack of NAT bypass flows: %w", err)
	}
	if n > 0 {
		l.log.Info("conntrack entries of NAT bypass flows deleted", "entries", n)
	}
	rt.bypass = pairs
	return nil
}

// readNFT returns the comments of the table's rules by chain.
func readNFT(c *nftables.Conn) (map[string][]string, bool, error) {
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, false, fmt.Errorf("list nft chains: %w", err)
	}
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, false, fmt.Errorf("list nft tables: %w", err)
	}
	exists := slices.ContainsFunc(tables, func(t *nftables.Table) bool { return t.Name == natTable })
	have := map[string][]string{}
	for _, ch := range chains {
		if ch.Table.Name != natTable {
			continue
		}
		rules, err := c.GetRules(ch.Table, ch)
		if err != nil {
			return nil, false, fmt.Errorf("list nft rules: %w", err)
		}
		have[ch.Name] = []string{}
		for _, r := range rules {
			s, _ := userdata.GetString(r.UserData, userdata.TypeComment)
			have[ch.Name] = append(have[ch.Name], s)
		}
	}
	return have, exists, nil
}

func equalNFT(have map[string][]string, want nftSpec) bool {
	w := map[string][]string{chainPre: {}, chainPost: {}, chainFwd: {}}
	for _, r := range want {
		w[r.chain] = append(w[r.chain], r.String())
	}
	if len(have) != len(w) {
		return false
	}
	for ch, rules := range w {
		if got, ok := have[ch]; !ok || !slices.Equal(got, rules) {
			return false
		}
	}
	return true
}

// deleteNFT deletes the router's table if it exists.
func (l *L3) deleteNFT(rt *router) error {
	c, err := nftables.New(nftables.WithNetNSFd(int(rt.ns)))
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return fmt.Errorf("list nft tables: %w", err)
	}
	if !slices.ContainsFunc(tables, func(t *nftables.Table) bool { return t.Name == natTable }) {
		return nil
	}
	c.DelTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: natTable})
	return l.write("nft delete table inet "+natTable, c.Flush)
}

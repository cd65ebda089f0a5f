package l2

import (
	"fmt"
	"net"
	"strconv"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

var sgTable = &nftables.Table{Family: nftables.TableFamilyINet, Name: SGTableName}

// Protocols whose rules take a destination port range.
var portProtocols = map[int]bool{unix.IPPROTO_TCP: true, unix.IPPROTO_UDP: true, unix.IPPROTO_DCCP: true,
	unix.IPPROTO_SCTP: true, unix.IPPROTO_UDPLITE: true}

// ICMPv6 a port always needs (the reference's base rules): multicast
// listener queries, reports and done, router solicitations (egress),
// router advertisements (ingress), neighbour solicitations and
// advertisements.
var (
	icmp6Egress  = []byte{130, 131, 132, 133, 135, 136, 143}
	icmp6Ingress = []byte{130, 131, 132, 134, 135, 136}
)

// queueFirewall queues the security groups' rules: the bridge table's
// marking chains (the bridge table is being rebuilt by queueRuleset) and
// the inet table, in the same transaction. Without firewalled ports the
// inet table is just deleted.
func queueFirewall(c *nftables.Conn, rules []portRules) error {
	c.AddTable(sgTable)
	c.DelTable(sgTable)
	var fws []portRules
	for _, r := range rules {
		if r.FW != nil {
			fws = append(fws, r)
		}
	}
	if len(fws) == 0 {
		return nil
	}
	if len(fws) > maxFirewalled {
		return fmt.Errorf("security groups: %d ports with security groups on this host, at most %d", len(fws), maxFirewalled)
	}
	accept := nftables.ChainPolicyAccept

	// Bridge side: the zone in prerouting, the ports in forward.
	zone := c.AddChain(&nftables.Chain{Name: "sg-zone", Table: table, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityRef(-300), Policy: &accept})
	brAdd := func(ch *nftables.Chain, ex ...[]expr.Any) {
		c.AddRule(&nftables.Rule{Table: table, Chain: ch, Exprs: cat(ex...)})
	}
	// A mark with our bit from elsewhere (a VXLAN packet's outer mark)
	// means nothing here.
	brAdd(zone, markIs(markOurs, markOurs), setMark(0, 0))
	for _, r := range fws {
		brAdd(zone, iif(r.Tap), setMark(0, markOurs|uint32(r.FW.Zone)), verdict(expr.VerdictAccept, ""))
	}
	for _, r := range fws {
		for _, m := range r.MACs {
			mac, err := net.ParseMAC(m)
			if err != nil {
				return fmt.Errorf("port %s: mac %q: %w", r.Tap, m, err)
			}
			brAdd(zone, load(expr.PayloadBaseLLHeader, 0, 6), []expr.Any{eq(mac)},
				setMark(0, markOurs|uint32(r.FW.Zone)), verdict(expr.VerdictAccept, ""))
		}
	}
	mark := c.AddChain(&nftables.Chain{Name: "sg-mark", Table: table, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityRef(-200), Policy: &accept})
	// Packets from a firewalled port carry our bit since sg-zone; clear
	// its fields. A packet to one may come without it (a flood from an
	// unfirewalled port): it gets it, and no foreign bits survive.
	brAdd(mark, markIs(markOurs, markOurs), setMark(0, markOurs))
	for _, r := range fws {
		// (Its packets have our bit: the ingress field is clear or set by
		// a port's rule above.)
		brAdd(mark, iif(r.Tap), setMark(markIngress, markOurs|uint32(r.FW.Index)<<16))
		brAdd(mark, oif(r.Tap), markIs(markOurs, markOurs), setMark(markOurs|markEgress, uint32(r.FW.Index)))
		brAdd(mark, oif(r.Tap), markIs(markOurs, 0), setMark(0, markOurs|uint32(r.FW.Index)))
	}

	// inet side: zones, then the per-port chains.
	c.AddTable(sgTable)
	add := func(ch *nftables.Chain, ex ...[]expr.Any) {
		c.AddRule(&nftables.Rule{Table: sgTable, Chain: ch, Exprs: cat(ex...)})
	}
	raw := c.AddChain(&nftables.Chain{Name: "zone", Table: sgTable, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityRaw, Policy: &accept})
	zones := map[uint16]bool{}
	for _, r := range fws {
		if z := r.FW.Zone; !zones[z] {
			zones[z] = true
			add(raw, markIs(0xffffffff, markOurs|uint32(z)), []expr.Any{
				&expr.Immediate{Register: 1, Data: binaryutil.NativeEndian.PutUint16(z)},
				&expr.Ct{Key: expr.CtKeyZONE, Register: 1, SourceRegister: true},
			})
		}
	}
	fwd := c.AddChain(&nftables.Chain{Name: "forward", Table: sgTable, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &accept})
	add(fwd, markIs(markOurs, 0), verdict(expr.VerdictAccept, ""))
	sets := 0
	for _, r := range fws {
		eg := c.AddChain(&nftables.Chain{Name: "egress-" + r.Tap, Table: sgTable})
		in := c.AddChain(&nftables.Chain{Name: "ingress-" + r.Tap, Table: sgTable})
		add(fwd, markIs(markEgress, uint32(r.FW.Index)<<16), verdict(expr.VerdictJump, eg.Name))
		add(fwd, markIs(markIngress, uint32(r.FW.Index)), verdict(expr.VerdictJump, in.Name))
		for _, dir := range []struct {
			ch      *nftables.Chain
			ingress bool
		}{{eg, false}, {in, true}} {
			if err := queuePortChain(c, dir.ch, r.FW, dir.ingress, &sets); err != nil {
				return fmt.Errorf("port %s: %w", r.Tap, err)
			}
		}
	}
	return nil
}

// queuePortChain fills one direction's chain of a port: what the port
// always needs, conntrack, the rules (each returns to the forward chain
// on a match), and a drop.
func queuePortChain(c *nftables.Conn, ch *nftables.Chain, fw *firewall, ingress bool, sets *int) error {
	add := func(ex ...[]expr.Any) {
		c.AddRule(&nftables.Rule{Table: sgTable, Chain: ch, Exprs: cat(ex...)})
	}
	ret := verdict(expr.VerdictReturn, "")
	drop := verdict(expr.VerdictDrop, "")
	if ingress {
		add(family(false), proto(unix.IPPROTO_UDP), ports(67, 68), ret)
		add(family(true), proto(unix.IPPROTO_UDP), ports(547, 546), ret)
		for _, t := range icmp6Ingress {
			add(family(true), proto(unix.IPPROTO_ICMPV6), load(expr.PayloadBaseTransportHeader, 0, 1), []expr.Any{eq([]byte{t})}, ret)
		}
	} else {
		add(family(false), proto(unix.IPPROTO_UDP), ports(68, 67), ret)
		add(family(true), proto(unix.IPPROTO_UDP), ports(546, 547), ret)
		// A port is no DHCP server and no router.
		add(family(false), proto(unix.IPPROTO_UDP), srcPort(67), drop)
		add(family(true), proto(unix.IPPROTO_UDP), srcPort(547), drop)
		add(family(true), proto(unix.IPPROTO_ICMPV6), load(expr.PayloadBaseTransportHeader, 0, 1), []expr.Any{eq([]byte{134})}, drop)
		for _, t := range icmp6Egress {
			add(family(true), proto(unix.IPPROTO_ICMPV6), load(expr.PayloadBaseTransportHeader, 0, 1), []expr.Any{eq([]byte{t})}, ret)
		}
	}
	if fw.Stateful {
		add(ctState(expr.CtStateBitINVALID), drop)
		add(ctState(expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED), ret)
	}
	for _, r := range fw.Rules {
		if r.Ingress != ingress {
			continue
		}
		match := family(r.IPv6)
		if r.Protocol >= 0 {
			match = append(match, proto(byte(r.Protocol))...)
		}
		switch {
		case portProtocols[r.Protocol] && r.PortMin > 0:
			match = append(match, dstPorts(uint16(r.PortMin), uint16(max(r.PortMax, r.PortMin)))...)
		case (r.Protocol == unix.IPPROTO_ICMP || r.Protocol == unix.IPPROTO_ICMPV6) && r.PortMin >= 0:
			match = append(match, load(expr.PayloadBaseTransportHeader, 0, 1)...)
			match = append(match, eq([]byte{byte(r.PortMin)}))
			if r.PortMax >= 0 {
				match = append(match, load(expr.PayloadBaseTransportHeader, 1, 1)...)
				match = append(match, eq([]byte{byte(r.PortMax)}))
			}
		}
		if r.Remote == nil {
			add(match, ret)
			continue
		}
		rs := ranges(r.Remote)
		if len(rs) == 0 {
			continue // an empty remote group matches nothing
		}
		// The far end: the source of ingress, the destination of egress.
		off := uint32(16)
		switch {
		case r.IPv6 && ingress:
			off = 8
		case r.IPv6:
			off = 24
		case ingress:
			off = 12
		}
		if len(rs) == 1 && isPrefix(rs[0]) {
			add(match, matchAddr(off, rs[0]), ret)
			continue
		}
		*sets++
		set := &nftables.Set{Table: sgTable, Name: "remote-" + strconv.Itoa(*sets), Interval: true,
			KeyType: nftables.TypeIPAddr}
		if r.IPv6 {
			set.KeyType = nftables.TypeIP6Addr
		}
		if err := c.AddSet(set, intervalElements(rs)); err != nil {
			return fmt.Errorf("remote addresses: %w", err)
		}
		l := uint32(4)
		if r.IPv6 {
			l = 16
		}
		add(match, load(expr.PayloadBaseNetworkHeader, off, l),
			[]expr.Any{&expr.Lookup{SourceRegister: 1, SetName: set.Name, SetID: set.ID}}, ret)
	}
	add(drop)
	return nil
}

// isPrefix reports whether a range is exactly one prefix.
func isPrefix(r addrRange) bool {
	p, err := r.from.Prefix(r.from.BitLen())
	if err != nil {
		return false
	}
	for bits := r.from.BitLen(); bits >= 0; bits-- {
		p, _ = r.from.Prefix(bits)
		if p.Addr() != r.from {
			return false
		}
		if lastAddr(p) == r.to {
			return true
		}
	}
	return false
}

// matchAddr matches the address at off in the network header against
// the range, which is one prefix.
func matchAddr(off uint32, r addrRange) []expr.Any {
	for bits := r.from.BitLen(); bits >= 0; bits-- {
		p, _ := r.from.Prefix(bits)
		if lastAddr(p) == r.to {
			return match(off, p)
		}
	}
	return nil
}

// intervalElements are the elements of an interval set holding rs:
// each range's first address, and the address after its last as an
// interval end (none after the family's last address).
func intervalElements(rs []addrRange) []nftables.SetElement {
	var els []nftables.SetElement
	for _, r := range rs {
		els = append(els, nftables.SetElement{Key: r.from.AsSlice()})
		if next := r.to.Next(); next.IsValid() {
			els = append(els, nftables.SetElement{Key: next.AsSlice(), IntervalEnd: true})
		}
	}
	return els
}

func iif(name string) []expr.Any {
	return []expr.Any{&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1}, eq(ifname(name))}
}

func oif(name string) []expr.Any {
	return []expr.Any{&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1}, eq(ifname(name))}
}

// markIs matches packets whose mark, masked, is v.
func markIs(mask, v uint32) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(mask), Xor: binaryutil.NativeEndian.PutUint32(0)},
		eq(binaryutil.NativeEndian.PutUint32(v)),
	}
}

// setMark sets the mark to (mark & keep) ^ xor.
func setMark(keep, xor uint32) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(keep), Xor: binaryutil.NativeEndian.PutUint32(xor)},
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1, SourceRegister: true},
	}
}

func family(v6 bool) []expr.Any {
	f := byte(unix.NFPROTO_IPV4)
	if v6 {
		f = unix.NFPROTO_IPV6
	}
	return []expr.Any{&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1}, eq([]byte{f})}
}

func proto(p byte) []expr.Any {
	return []expr.Any{&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, eq([]byte{p})}
}

// ports matches a source and a destination port.
func ports(src, dst uint16) []expr.Any {
	return cat(srcPort(src), load(expr.PayloadBaseTransportHeader, 2, 2),
		[]expr.Any{eq(binaryutil.BigEndian.PutUint16(dst))})
}

func srcPort(p uint16) []expr.Any {
	return cat(load(expr.PayloadBaseTransportHeader, 0, 2), []expr.Any{eq(binaryutil.BigEndian.PutUint16(p))})
}

func dstPorts(lo, hi uint16) []expr.Any {
	ex := load(expr.PayloadBaseTransportHeader, 2, 2)
	if lo == hi {
		return append(ex, eq(binaryutil.BigEndian.PutUint16(lo)))
	}
	return append(ex, &expr.Range{Op: expr.CmpOpEq, Register: 1,
		FromData: binaryutil.BigEndian.PutUint16(lo), ToData: binaryutil.BigEndian.PutUint16(hi)})
}

// ctState matches packets whose conntrack state has one of the bits.
func ctState(bits uint32) []expr.Any {
	return []expr.Any{
		&expr.Ct{Key: expr.CtKeySTATE, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(bits), Xor: binaryutil.NativeEndian.PutUint32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(0)},
	}
}

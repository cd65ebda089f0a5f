package l2

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"

	"github.com/neutrino-net/neutrino/api/agentv1"
)

// TableName is the nftables table (family bridge) Neutrino owns for port
// security. It is rebuilt wholesale on every change.
const TableName = "neutrino-l2"

// portRules is what one port with port security may send.
type portRules struct {
	Tap     string
	Network string
	MACs    []string       // lower case, sorted
	IPs     []netip.Prefix // fixed IPs (host prefixes) and allowed pairs, sorted
	FW      *firewall      // security groups; nil for none
}

// Always allowed sources: IPv6 link-local and unspecified (NDP, DAD), and
// ARP probes from 0.0.0.0.
var (
	linkLocal6   = netip.MustParsePrefix("fe80::/10")
	unspecified6 = netip.MustParsePrefix("::/128")
	unspecified4 = netip.MustParsePrefix("0.0.0.0/32")
)

// filterRules returns the rules of the ports with port security, by tap.
func filterRules(ports []agentv1.Port) []portRules {
	var rules []portRules
	for _, p := range ports {
		if !p.PortSecurity {
			continue
		}
		r := portRules{Tap: agentv1.DeviceName(agentv1.TapPrefix, p.PortID), Network: p.NetworkID,
			MACs: []string{strings.ToLower(p.MAC)}, FW: resolveFirewall(p)}
		for _, a := range p.Addresses {
			r.IPs = append(r.IPs, netip.PrefixFrom(a.Addr(), a.Addr().BitLen()))
		}
		for _, ap := range p.AllowedPairs {
			r.IPs = append(r.IPs, ap.IP.Masked())
			if ap.MAC != "" {
				r.MACs = append(r.MACs, strings.ToLower(ap.MAC))
			}
		}
		slices.Sort(r.MACs)
		r.MACs = slices.Compact(r.MACs)
		slices.SortFunc(r.IPs, comparePrefix)
		r.IPs = slices.Compact(r.IPs)
		rules = append(rules, r)
	}
	slices.SortFunc(rules, func(a, b portRules) int { return strings.Compare(a.Tap, b.Tap) })
	rules = slices.CompactFunc(rules, func(a, b portRules) bool { return a.Tap == b.Tap })
	numberFirewalls(rules)
	return rules
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

// rulesTag identifies a ruleset; it is "" for no rules.
func rulesTag(rules []portRules) string {
	if len(rules) == 0 {
		return ""
	}
	h := sha256.New()
	for _, r := range rules {
		fmt.Fprintf(h, "%s %v %v\n", r.Tap, r.MACs, r.IPs)
		if r.FW != nil {
			fmt.Fprintf(h, " fw %s %v %d %d\n", r.Network, r.FW.Stateful, r.FW.Zone, r.FW.Index)
			for _, fr := range r.FW.Rules {
				fmt.Fprintf(h, "  %s %v\n", fr.SGRule, fr.Remote)
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

const tagPrefix = "neutrino-l2 "

var table = &nftables.Table{Family: nftables.TableFamilyBridge, Name: TableName}

// readTag returns the tag kept as a comment in the table's "meta" chain,
// "" when there is no table.
func readTag(c *nftables.Conn) (string, error) {
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyBridge)
	if err != nil {
		return "", err
	}
	if !slices.ContainsFunc(tables, func(t *nftables.Table) bool { return t.Name == TableName }) {
		return "", nil
	}
	rules, err := c.GetRules(table, &nftables.Chain{Name: "meta", Table: table})
	if err != nil {
		return "?", nil // a table without our tag: rebuild it
	}
	for _, r := range rules {
		if s, ok := userdata.GetString(r.UserData, userdata.TypeComment); ok && strings.HasPrefix(s, tagPrefix) {
			return strings.TrimPrefix(s, tagPrefix), nil
		}
	}
	return "?", nil
}

// queueRuleset queues the table's replacement in one transaction: add
// (so the delete cannot fail), delete, and add again with its content.
// Without rules the table is just deleted.
func queueRuleset(c *nftables.Conn, tag string, rules []portRules) error {
	c.AddTable(table)
	c.DelTable(table)
	if len(rules) == 0 {
		return queueFirewall(c, nil)
	}
	c.AddTable(table)
	meta := c.AddChain(&nftables.Chain{Name: "meta", Table: table})
	c.AddRule(&nftables.Rule{Table: table, Chain: meta,
		Exprs:    []expr.Any{&expr.Verdict{Kind: expr.VerdictReturn}},
		UserData: userdata.AppendString(nil, userdata.TypeComment, tagPrefix+tag)})
	accept := nftables.ChainPolicyAccept
	base := c.AddChain(&nftables.Chain{Name: "prerouting", Table: table, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityRef(-200), Policy: &accept})
	for _, r := range rules {
		src := c.AddChain(&nftables.Chain{Name: r.Tap, Table: table})
		ip := c.AddChain(&nftables.Chain{Name: r.Tap + "-ip", Table: table})
		c.AddRule(&nftables.Rule{Table: table, Chain: base, Exprs: cat(
			[]expr.Any{&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1}, eq(ifname(r.Tap))},
			verdict(expr.VerdictJump, src.Name))})
		// Ethernet source: the port's MAC or a pair's, else drop.
		for _, m := range r.MACs {
			mac, err := net.ParseMAC(m)
			if err != nil {
				return fmt.Errorf("port %s: mac %q: %w", r.Tap, m, err)
			}
			c.AddRule(&nftables.Rule{Table: table, Chain: src, Exprs: cat(
				load(expr.PayloadBaseLLHeader, 6, 6), []expr.Any{eq(mac)}, verdict(expr.VerdictGoto, ip.Name))})
		}
		c.AddRule(&nftables.Rule{Table: table, Chain: src, Exprs: verdict(expr.VerdictDrop, "")})
		// IP and ARP sources.
		add := func(ex ...[]expr.Any) { c.AddRule(&nftables.Rule{Table: table, Chain: ip, Exprs: cat(ex...)}) }
		acc := verdict(expr.VerdictAccept, "")
		for _, p := range r.IPs {
			if p.Addr().Is4() {
				add(etherType(unix.ETH_P_IP), match(12, p), acc)
				add(etherType(unix.ETH_P_ARP), match(14, p), acc)
			} else {
				add(etherType(unix.ETH_P_IPV6), match(8, p), acc)
			}
		}
		add(etherType(unix.ETH_P_IPV6), match(8, linkLocal6), acc)
		add(etherType(unix.ETH_P_IPV6), match(8, unspecified6), acc)
		add(etherType(unix.ETH_P_ARP), match(14, unspecified4), acc)
		add(etherType(unix.ETH_P_IP), match(12, unspecified4), match(16, netip.MustParsePrefix("255.255.255.255/32")),
			load(expr.PayloadBaseNetworkHeader, 9, 1), []expr.Any{eq([]byte{unix.IPPROTO_UDP})},
			load(expr.PayloadBaseTransportHeader, 2, 2), []expr.Any{eq(binaryutil.BigEndian.PutUint16(67))}, acc)
		for _, t := range []uint16{unix.ETH_P_IP, unix.ETH_P_IPV6, unix.ETH_P_ARP, unix.ETH_P_8021Q, unix.ETH_P_8021AD} {
			add(etherType(t), verdict(expr.VerdictDrop, ""))
		}
	}
	return queueFirewall(c, rules)
}

func cat(ex ...[]expr.Any) []expr.Any { return slices.Concat(ex...) }

func load(base expr.PayloadBase, off, n uint32) []expr.Any {
	return []expr.Any{&expr.Payload{DestRegister: 1, Base: base, Offset: off, Len: n}}
}

func eq(b []byte) expr.Any { return &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: b} }

func verdict(k expr.VerdictKind, chain string) []expr.Any {
	return []expr.Any{&expr.Verdict{Kind: k, Chain: chain}}
}

func etherType(t uint16) []expr.Any {
	return cat(load(expr.PayloadBaseLLHeader, 12, 2), []expr.Any{eq(binaryutil.BigEndian.PutUint16(t))})
}

// match matches the address at off in the network header against p.
func match(off uint32, p netip.Prefix) []expr.Any {
	n := uint32(p.Addr().BitLen() / 8)
	ex := load(expr.PayloadBaseNetworkHeader, off, n)
	if p.Bits() < p.Addr().BitLen() {
		mask := net.CIDRMask(p.Bits(), p.Addr().BitLen())
		ex = append(ex, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: n, Mask: mask, Xor: make([]byte, n)})
	}
	return append(ex, eq(p.Masked().Addr().AsSlice()))
}

func ifname(n string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, n)
	return b
}

package l2

import (
	"fmt"
	"hash/fnv"
	"net/netip"
	"os"
	"path/filepath"
	"slices"

	"github.com/neutrino-net/neutrino/api/agentv1"
)

// Security groups are enforced on the bridges with br_netfilter, as the
// reference's linuxbridge agent does, because bridge-family conntrack
// (nf_conntrack_bridge) is missing from many kernels:
//
//   - the bridge table's "sg-zone" chain (prerouting, before br_netfilter)
//     marks each IP packet from or to a firewalled port with its
//     network's conntrack zone, so that overlapping tenant addresses never
//     share a connection;
//   - the inet table's "zone" chain (raw priority) moves that mark into
//     the packet's conntrack zone;
//   - the bridge table's "sg-mark" chain (forward, before br_netfilter)
//     marks which firewalled port sends the packet (egress) and which one
//     receives it (ingress; per copy, so floods are filtered per port);
//   - the inet table's "forward" chain jumps to those ports' chains.
//
// The packet mark is Neutrino's while such a packet crosses a bridge:
// bit 31 says so; then bits 0-14 carry the zone (prerouting), or bits
// 16-30 the egress port and bits 0-15 the ingress port (forward).
const (
	// SGTableName is the nftables table (family inet) of the security
	// groups, rebuilt wholesale with the port security table.
	SGTableName = "neutrino-sg"

	markOurs    = 0x80000000
	markEgress  = 0x7fff0000
	markIngress = 0x0000ffff
	maxZone     = 0x7fff
	// maxFirewalled is how many firewalled ports one host can have.
	maxFirewalled = 0x7fff
)

// firewall is what a port's security groups allow, with the remote
// groups' members resolved.
type firewall struct {
	Stateful bool
	Zone     uint16
	Index    uint16 // 1.. among the host's firewalled ports
	Rules    []fwRule
}

// fwRule is an agentv1.SGRule with its far ends: nil Remote means any
// address of the rule's family, an empty one none.
type fwRule struct {
	agentv1.SGRule
	Remote []netip.Prefix
}

// key is the rule with its far ends, for comparing rulesets: a rule of
// a remote group whose member leaves is no longer the same rule.
func (r fwRule) key() string { return fmt.Sprint(r.SGRule.String(), r.Remote) }

// resolveFirewall returns a port's firewall, nil when it has none.
func resolveFirewall(p agentv1.Port) *firewall {
	if !p.PortSecurity || p.Firewall == nil {
		return nil
	}
	fw := &firewall{Stateful: p.Firewall.Stateful}
	for _, r := range p.Firewall.Rules {
		fr := fwRule{SGRule: r}
		switch {
		case r.RemoteGroup != "":
			fr.Remote = []netip.Prefix{}
			for _, m := range r.Members {
				if m.Addr().Is6() == r.IPv6 {
					fr.Remote = append(fr.Remote, m.Masked())
				}
			}
		case r.RemotePrefix.IsValid():
			fr.Remote = []netip.Prefix{r.RemotePrefix.Masked()}
		}
		fw.Rules = append(fw.Rules, fr)
	}
	return fw
}

// numberFirewalls gives each firewalled port its index and its
// network's conntrack zone. Zones come from a hash of the network id, so
// they stay the same across rebuilds and agent restarts (connections
// keep their entries); a collision on this host goes to the next free
// zone, in network id order.
func numberFirewalls(rules []portRules) {
	var nets []string
	for _, r := range rules {
		if r.FW != nil {
			nets = append(nets, r.Network)
		}
	}
	slices.Sort(nets)
	nets = slices.Compact(nets)
	zones := map[string]uint16{}
	used := map[uint16]bool{}
	for _, id := range nets {
		h := fnv.New32a()
		h.Write([]byte(id))
		z := uint16(h.Sum32()%maxZone) + 1
		for used[z] {
			z = z%maxZone + 1
		}
		used[z], zones[id] = true, z
	}
	i := uint16(0)
	for _, r := range rules { // sorted by tap
		if r.FW != nil {
			i++
			r.FW.Index, r.FW.Zone = i, zones[r.Network]
		}
	}
}

// addrRange is an inclusive range of addresses.
type addrRange struct{ from, to netip.Addr }

// ranges merges prefixes of one family into sorted, disjoint ranges.
func ranges(ps []netip.Prefix) []addrRange {
	var out []addrRange
	sorted := slices.Clone(ps)
	slices.SortFunc(sorted, comparePrefix)
	for _, p := range sorted {
		p = p.Masked()
		from, to := p.Addr(), lastAddr(p)
		if n := len(out); n > 0 {
			last := &out[n-1]
			if next := last.to.Next(); !next.IsValid() || from.Compare(next) <= 0 {
				if to.Compare(last.to) > 0 {
					last.to = to
				}
				continue
			}
		}
		out = append(out, addrRange{from, to})
	}
	return out
}

// lastAddr is the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// enableBridgeNetfilter makes the host's bridges pass IP packets through
// the inet hooks, where conntrack is: it needs the br_netfilter module.
func enableBridgeNetfilter() error {
	dir := "/proc/sys/net/bridge"
	if _, err := os.Stat(dir); err != nil {
		return fmt.Errorf("security groups need the kernel's br_netfilter (modprobe br_netfilter): %w", err)
	}
	for _, f := range []string{"bridge-nf-call-iptables", "bridge-nf-call-ip6tables"} {
		p := filepath.Join(dir, f)
		if b, err := os.ReadFile(p); err == nil && len(b) > 0 && b[0] == '1' {
			continue
		}
		if err := os.WriteFile(p, []byte("1"), 0o644); err != nil {
			return fmt.Errorf("security groups: enable %s: %w", f, err)
		}
	}
	return nil
}

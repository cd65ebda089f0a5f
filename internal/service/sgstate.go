package service

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/neutrino-net/neutrino/internal/model"
	"github.com/neutrino-net/neutrino/internal/store"
)

// sgCache holds, while one host state is built, the security groups'
// data-plane rules and the remote groups' member addresses.
type sgCache struct {
	rules   map[string][]agentv1.SGRule // by group
	members map[string][]netip.Prefix   // by group, for remote groups
	groups  map[string]*model.SecurityGroup
}

// firewall is the data-plane view of a port's security groups: nil
// without port security.
func (b *stateBuilder) firewall(p *model.Port) (*agentv1.Firewall, error) {
	if !p.PortSecurityEnabled {
		return nil, nil
	}
	if b.sg.rules == nil {
		b.sg = sgCache{rules: map[string][]agentv1.SGRule{}, members: map[string][]netip.Prefix{}, groups: map[string]*model.SecurityGroup{}}
	}
	fw := &agentv1.Firewall{Stateful: len(p.SecurityGroups) == 0, Rules: []agentv1.SGRule{}}
	seen := map[string]bool{}
	for _, id := range p.SecurityGroups {
		g, ok := b.sg.groups[id]
		if !ok {
			var err error
			if g, err = b.tx.GetSecurityGroup(b.ctx, id); err != nil {
				return nil, fmt.Errorf("security group %s: %w", id, err)
			}
			b.sg.groups[id] = g
		}
		// The reference does not let a port mix stateful and stateless
		// groups; if both are there, stateful wins.
		fw.Stateful = fw.Stateful || g.Stateful
		rules, ok := b.sg.rules[id]
		if !ok {
			rs, err := b.tx.ListRules(b.ctx, store.RuleFilter{SecurityGroupIDs: []string{id}})
			if err != nil {
				return nil, fmt.Errorf("rules of security group %s: %w", id, err)
			}
			for i := range rs {
				r, err := dataPlaneRule(&rs[i])
				if err != nil {
					return nil, err
				}
				rules = append(rules, r)
			}
			b.sg.rules[id] = rules
		}
		for _, r := range rules {
			if k := r.String(); !seen[k] {
				seen[k] = true
				fw.Rules = append(fw.Rules, r)
			}
			if r.RemoteGroup != "" {
				if _, ok := b.sg.members[r.RemoteGroup]; !ok {
					m, err := b.groupMembers(r.RemoteGroup)
					if err != nil {
						return nil, err
					}
					b.sg.members[r.RemoteGroup] = m
				}
			}
		}
	}
	slices.SortFunc(fw.Rules, func(a, b agentv1.SGRule) int {
		if a.String() < b.String() {
			return -1
		} else if a.String() > b.String() {
			return 1
		}
		return 0
	})
	return fw, nil
}

// groupMembers returns the addresses of a group's ports: fixed IPs and
// allowed address pairs, sorted and without duplicates.
func (b *stateBuilder) groupMembers(groupID string) ([]netip.Prefix, error) {
	ids, err := b.tx.SecurityGroupPorts(b.ctx, groupID)
	if err != nil {
		return nil, fmt.Errorf("ports of security group %s: %w", groupID, err)
	}
	out := []netip.Prefix{}
	if len(ids) == 0 {
		return out, nil
	}
	ports, err := b.tx.ListPorts(b.ctx, store.PortFilter{IDs: ids})
	if err != nil {
		return nil, err
	}
	for _, p := range ports {
		for _, ip := range p.FixedIPs {
			out = append(out, netip.PrefixFrom(ip.IPAddress, ip.IPAddress.BitLen()))
		}
		for _, ap := range p.AllowedAddressPairs {
			if pfx, ok := pairPrefix(ap.IPAddress); ok {
				out = append(out, pfx)
			}
		}
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return slices.Compact(out), nil
}

// pairPrefix parses an allowed address pair's ip_address (an address or
// a CIDR).
func pairPrefix(s string) (netip.Prefix, bool) {
	if pfx, err := netip.ParsePrefix(s); err == nil {
		return pfx.Masked(), true
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a, a.BitLen()), true
	}
	return netip.Prefix{}, false
}

// dataPlaneRule maps a stored rule to what the agent applies: protocol
// names to numbers, an open port range to 0-0, an open ICMP type or
// code to -1.
func dataPlaneRule(r *model.SecurityGroupRule) (agentv1.SGRule, error) {
	out := agentv1.SGRule{Ingress: r.Direction == "ingress", IPv6: r.Ethertype == "IPv6", Protocol: -1,
		RemoteGroup: r.RemoteGroupID}
	if r.Protocol != "" {
		if n, ok := protocolNumbers[r.Protocol]; ok {
			out.Protocol = n
		} else if n, err := strconv.Atoi(r.Protocol); err == nil {
			out.Protocol = n
		} else {
			return out, fmt.Errorf("security group rule %s: protocol %q", r.ID, r.Protocol)
		}
	}
	// The reference takes "icmp" on an IPv6 rule as ICMPv6.
	if out.IPv6 && out.Protocol == 1 {
		out.Protocol = 58
	}
	lo, hi := r.PortRangeMin, r.PortRangeMax
	switch out.Protocol {
	case 1, 58:
		out.PortMin, out.PortMax = -1, -1
		if lo != nil {
			out.PortMin = *lo
		}
		if hi != nil {
			out.PortMax = *hi
		}
	default:
		switch {
		case lo != nil && hi != nil:
			out.PortMin, out.PortMax = *lo, *hi
		case lo != nil:
			out.PortMin, out.PortMax = *lo, *lo
		case hi != nil:
			out.PortMin, out.PortMax = *hi, *hi
		}
	}
	if r.RemoteIPPrefix != "" {
		p, err := netip.ParsePrefix(r.RemoteIPPrefix)
		if err != nil {
			return out, fmt.Errorf("security group rule %s: remote_ip_prefix %q", r.ID, r.RemoteIPPrefix)
		}
		out.RemotePrefix = p.Masked()
	}
	return out, nil
}

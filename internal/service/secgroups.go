package service

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strconv"

	"github.com/neutrino-net/neutrino/internal/model"
	"github.com/neutrino-net/neutrino/internal/store"
)

// SecurityGroupView is a group with its rules.
type SecurityGroupView struct {
	model.SecurityGroup
	Rules []model.SecurityGroupRule
}

func sgNotFound(id string) *Error {
	return errNotFound("SecurityGroupNotFound", "Security group %s does not exist", id)
}

func (s *Service) ownedSG(ctx context.Context, tx store.SecurityGroups, c caller, id string) (*model.SecurityGroup, error) {
	g, err := tx.GetSecurityGroup(ctx, id)
	if err != nil {
		return nil, notFound(err, "SecurityGroupNotFound", "Security group %s does not exist", id)
	}
	if !c.owns(g.ProjectID) {
		return nil, sgNotFound(id)
	}
	return g, nil
}

// ensureDefaultSG returns the project's default group, creating it with
// the reference's four rules the first time.
func (s *Service) ensureDefaultSG(ctx context.Context, tx store.Tx, project string) (string, error) {
	if err := tx.Lock(ctx, "default-sg:"+project); err != nil {
		return "", err
	}
	id, err := tx.DefaultSecurityGroup(ctx, project)
	if err == nil || !errors.Is(err, store.ErrNotFound) {
		return id, err
	}
	g := model.SecurityGroup{ID: newID(), ProjectID: project, Name: "default", Stateful: true}
	g.Description = "Default security group"
	s.stamp(&g.Standard)
	if err := tx.CreateSecurityGroup(ctx, &g); err != nil {
		return "", err
	}
	if err := tx.SetDefaultSecurityGroup(ctx, project, g.ID); err != nil {
		return "", err
	}
	for _, r := range []struct{ dir, eth, remote string }{
		{"egress", "IPv4", ""}, {"egress", "IPv6", ""}, {"ingress", "IPv4", g.ID}, {"ingress", "IPv6", g.ID},
	} {
		if err := s.insertRule(ctx, tx, g, r.dir, r.eth, r.remote); err != nil {
			return "", err
		}
	}
	return g.ID, nil
}

func (s *Service) insertRule(ctx context.Context, tx store.SecurityGroups, g model.SecurityGroup, dir, eth, remote string) error {
	r := model.SecurityGroupRule{ID: newID(), ProjectID: g.ProjectID, SecurityGroupID: g.ID, Direction: dir, Ethertype: eth, RemoteGroupID: remote}
	s.stamp(&r.Standard)
	return tx.CreateRule(ctx, &r)
}

// EnsureDefaultSecurityGroup makes sure a listed project has its default
// group; listing groups and rules calls it, as the reference does. The
// project is the one the listing filters on (project_id or tenant_id),
// else the caller's; only an admin does it for another project.
func (s *Service) EnsureDefaultSecurityGroup(ctx context.Context, p store.Page) error {
	c := who(ctx)
	project := c.ProjectID
	if vs := p.Eq["project_id"]; len(vs) > 0 {
		if v, ok := vs[0].(string); ok && v != "" {
			project = v
		}
	}
	if c.ProjectID == "" || (project != c.ProjectID && !c.admin) {
		return nil
	}
	var missing bool
	err := s.read(ctx, func(tx store.Tx) error {
		_, err := tx.DefaultSecurityGroup(ctx, project)
		missing = errors.Is(err, store.ErrNotFound)
		if missing {
			return nil
		}
		return err
	})
	if err != nil || !missing || !c.CanWrite() {
		return err
	}
	return s.write(ctx, func(tx store.Tx) error {
		_, err := s.ensureDefaultSG(ctx, tx, project)
		return err
	})
}

func (s *Service) sgViews(ctx context.Context, tx store.Tx, groups []model.SecurityGroup) ([]SecurityGroupView, error) {
	out := make([]SecurityGroupView, len(groups))
	ids := make([]string, len(groups))
	by := make(map[string]*SecurityGroupView, len(groups))
	for i, g := range groups {
		out[i] = SecurityGroupView{SecurityGroup: g, Rules: []model.SecurityGroupRule{}}
		ids[i] = g.ID
		by[g.ID] = &out[i]
	}
	if len(groups) == 0 {
		return out, nil
	}
	rules, err := tx.ListRules(ctx, store.RuleFilter{SecurityGroupIDs: ids})
	if err != nil {
		return nil, err
	}
	for _, r := range rules {
		by[r.SecurityGroupID].Rules = append(by[r.SecurityGroupID].Rules, r)
	}
	return out, nil
}

// CreateSecurityGroup creates a group with the two default egress rules,
// within the group and the rule quotas.
func (s *Service) CreateSecurityGroup(ctx context.Context, g model.SecurityGroup) (*SecurityGroupView, error) {
	c := who(ctx)
	if err := c.mayWrite("create_security_group"); err != nil {
		return nil, err
	}
	project, err := c.project(g.ProjectID)
	if err != nil {
		return nil, err
	}
	if g.Name == "default" {
		return nil, errConflict("SecurityGroupDefaultAlreadyExists", "Default security group already exists.")
	}
	g.ID, g.ProjectID = newID(), project
	s.stamp(&g.Standard)
	var v *SecurityGroupView
	err = s.write(ctx, func(tx store.Tx) error {
		if _, err := s.ensureDefaultSG(ctx, tx, project); err != nil {
			return err
		}
		if err := s.checkQuota(ctx, tx, "security_group", project, 1); err != nil {
			return err
		}
		// The group's two egress rules count against the rule quota,
		// as in the reference.
		if err := s.checkQuota(ctx, tx, "security_group_rule", project, 2); err != nil {
			return err
		}
		if err := tx.CreateSecurityGroup(ctx, &g); err != nil {
			return err
		}
		for _, eth := range []string{"IPv4", "IPv6"} {
			if err := s.insertRule(ctx, tx, g, "egress", eth, ""); err != nil {
				return err
			}
		}
		views, err := s.sgViews(ctx, tx, []model.SecurityGroup{g})
		if err == nil {
			v = &views[0]
		}
		return err
	})
	return v, err
}

// GetSecurityGroup returns a group the caller owns.
func (s *Service) GetSecurityGroup(ctx context.Context, id string) (*SecurityGroupView, error) {
	c := who(ctx)
	var v *SecurityGroupView
	err := s.read(ctx, func(tx store.Tx) error {
		g, err := s.ownedSG(ctx, tx, c, id)
		if err != nil {
			return err
		}
		views, err := s.sgViews(ctx, tx, []model.SecurityGroup{*g})
		if err == nil {
			v = &views[0]
		}
		return err
	})
	return v, err
}

// ListSecurityGroups returns the caller's groups, creating its default
// group first if needed.
func (s *Service) ListSecurityGroups(ctx context.Context, p store.Page) ([]SecurityGroupView, error) {
	if err := s.EnsureDefaultSecurityGroup(ctx, p); err != nil {
		return nil, err
	}
	c := who(ctx)
	var out []SecurityGroupView
	err := s.read(ctx, func(tx store.Tx) error {
		gs, err := tx.ListSecurityGroups(ctx, store.SecurityGroupFilter{Scope: c.scope(), Page: p})
		if err != nil {
			return err
		}
		out, err = s.sgViews(ctx, tx, gs)
		return err
	})
	return out, err
}

// UpdateSecurityGroup renames or re-describes a group, or changes its
// statefulness while no port uses it.
func (s *Service) UpdateSecurityGroup(ctx context.Context, id string, change func(*model.SecurityGroup)) (*SecurityGroupView, error) {
	c := who(ctx)
	if err := c.mayWrite("update_security_group"); err != nil {
		return nil, err
	}
	var v *SecurityGroupView
	err := s.write(ctx, func(tx store.Tx) error {
		if err := tx.Lock(ctx, "sg:"+id); err != nil {
			return err
		}
		old, err := s.ownedSG(ctx, tx, c, id)
		if err != nil {
			return err
		}
		g := *old
		change(&g)
		if g.Stateful != old.Stateful {
			// The reference lets no port's filtering change kind
			// under it.
			ports, err := tx.SecurityGroupPorts(ctx, id)
			if err != nil {
				return err
			}
			if len(ports) > 0 {
				return errConflict("SecurityGroupInUse", "Security Group %s in use.", id)
			}
		}
		if g.Name != old.Name && (old.Name == "default" || g.Name == "default") {
			if def, _ := tx.DefaultSecurityGroup(ctx, old.ProjectID); def == id || g.Name == "default" {
				return errConflict("SecurityGroupCannotUpdateDefault", "Updating default security group not allowed.")
			}
		}
		s.touch(&g.Standard)
		if err := tx.UpdateSecurityGroup(ctx, &g); err != nil {
			return err
		}
		views, err := s.sgViews(ctx, tx, []model.SecurityGroup{g})
		if err == nil {
			v = &views[0]
		}
		return err
	})
	return v, err
}

// DeleteSecurityGroup deletes a group no port uses; only an admin may
// delete a project's default group.
func (s *Service) DeleteSecurityGroup(ctx context.Context, id string) error {
	c := who(ctx)
	if err := c.mayWrite("delete_security_group"); err != nil {
		return err
	}
	return s.write(ctx, func(tx store.Tx) error {
		if err := tx.Lock(ctx, "sg:"+id); err != nil {
			return err
		}
		g, err := s.ownedSG(ctx, tx, c, id)
		if err != nil {
			return err
		}
		if def, _ := tx.DefaultSecurityGroup(ctx, g.ProjectID); def == id && !c.admin {
			return errConflict("SecurityGroupCannotRemoveDefault", "Insufficient rights for removing default security group.")
		}
		ports, err := tx.SecurityGroupPorts(ctx, id)
		if err != nil {
			return err
		}
		if len(ports) > 0 {
			return errConflict("SecurityGroupInUse", "Security Group %s in use.", id)
		}
		if err := tx.DeleteSecurityGroup(ctx, id); errors.Is(err, store.ErrReferenced) {
			return errConflict("SecurityGroupInUse", "Security Group %s in use.", id)
		} else if err != nil {
			return err
		}
		return nil
	})
}

// checkStatefulMix refuses, as the reference does, a port whose groups
// mix stateful and stateless ones; the groups exist (checkPortSecurity).
// A group that changes kind at the same moment may slip through; the
// agent then filters the port statefully.
func checkStatefulMix(ctx context.Context, tx store.SecurityGroups, ids []string) error {
	var stateful, stateless bool
	for _, id := range ids {
		g, err := tx.GetSecurityGroup(ctx, id)
		if err != nil {
			return err
		}
		stateful, stateless = stateful || g.Stateful, stateless || !g.Stateful
	}
	if stateful && stateless {
		return errConflict("SecurityGroupConflict",
			"Error Cannot apply both stateful and stateless security groups on the same port at the same time while attempting the operation.")
	}
	return nil
}

var protocolNumbers = map[string]int{
	"ah": 51, "dccp": 33, "egp": 8, "esp": 50, "gre": 47, "icmp": 1, "icmpv6": 58, "igmp": 2,
	"ipip": 4, "ipv6-encap": 41, "ipv6-frag": 44, "ipv6-icmp": 58, "ipv6-nonxt": 59, "ipv6-opts": 60,
	"ipv6-route": 43, "ospf": 89, "pgm": 113, "rsvp": 46, "sctp": 132, "tcp": 6, "udp": 17, "udplite": 136, "vrrp": 112,
}

// checkRulePorts validates the port range of a rule with protocol number
// num, as the reference does: ports only for the protocols that have them,
// both ends given and ordered; ICMP type and code from 0 to 255, and no
// code without a type.
func checkRulePorts(num int, lo, hi *int) error {
	switch num {
	case 33, 132, 6, 17, 136: // dccp, sctp, tcp, udp, udplite
		if (lo != nil && *lo == 0) || (hi != nil && *hi == 0) {
			return errInvalid("SecurityGroupInvalidPortValue", "Invalid value for port 0")
		}
		if lo == nil || hi == nil || *lo > *hi {
			return errInvalid("SecurityGroupInvalidPortRange", "For TCP/UDP protocols, port_range_min must be <= port_range_max")
		}
	case 1, 58: // icmp, ipv6-icmp
		for _, f := range []struct {
			field, attr string
			v           *int
		}{{"type", "port_range_min", lo}, {"code", "port_range_max", hi}} {
			if f.v != nil && (*f.v < 0 || *f.v > 255) {
				return errInvalid("SecurityGroupInvalidIcmpValue",
					"Invalid value for ICMP %s (%s) %d. It must be 0 to 255.", f.field, f.attr, *f.v)
			}
		}
		if lo == nil && hi != nil {
			return errInvalid("SecurityGroupMissingIcmpType", "ICMP code (port-range-max) %d is provided but ICMP type (port-range-min) is missing.", *hi)
		}
	default:
		return errInvalid("SecurityGroupInvalidProtocolForPort",
			"Ports cannot be specified for protocol %d. Ports are only supported for DCCP, SCTP, TCP, UDP, UDPLITE.", num)
	}
	return nil
}

// ipv6Protocols are the protocols, by name and number, that the reference
// refuses in an IPv4 rule.
var ipv6Protocols = []string{"ipv6-encap", "ipv6-frag", "ipv6-icmp", "icmpv6", "ipv6-nonxt", "ipv6-opts", "ipv6-route",
	"41", "44", "58", "59", "60", "43"}

// checkRule validates a rule in the reference's order, first giving an
// IPv6 rule's legacy ICMP protocol (icmp, icmpv6, 1) the reference's
// canonical ipv6-icmp (58).
func checkRule(r *model.SecurityGroupRule) error {
	if r.Ethertype == "IPv6" {
		switch r.Protocol {
		case "icmp", "icmpv6":
			r.Protocol = "ipv6-icmp"
		case "1":
			r.Protocol = "58"
		}
	}
	num := -1
	if r.Protocol != "" {
		if n, ok := protocolNumbers[r.Protocol]; ok {
			num = n
		} else if n, err := strconv.Atoi(r.Protocol); err == nil && n >= 0 && n <= 255 {
			num = n
		} else {
			return errInvalid("SecurityGroupRuleInvalidProtocol",
				"Security group rule protocol %s not supported. Only protocol values [None, ah, dccp, egp, esp, gre, icmp, icmpv6, igmp, ipip, ipv6-encap, ipv6-frag, ipv6-icmp, ipv6-nonxt, ipv6-opts, ipv6-route, ospf, pgm, rsvp, sctp, tcp, udp, udplite, vrrp] and integer representations [0 to 255] are supported.", r.Protocol)
		}
	}
	if (r.PortRangeMin != nil || r.PortRangeMax != nil) && r.Protocol == "" {
		return errInvalid("SecurityGroupProtocolRequiredWithPorts", "Must also specify protocol if port range is given.")
	}
	if r.PortRangeMin != nil || r.PortRangeMax != nil {
		if err := checkRulePorts(num, r.PortRangeMin, r.PortRangeMax); err != nil {
			return err
		}
	}
	if r.RemoteIPPrefix != "" && r.RemoteGroupID != "" {
		return errInvalid("SecurityGroupRemoteGroupAndRemoteIpPrefix", "Only remote_ip_prefix or remote_group_id may be provided.")
	}
	if r.RemoteIPPrefix != "" {
		p, err := netip.ParsePrefix(r.RemoteIPPrefix)
		if err != nil {
			return errInvalidInput("remote_ip_prefix", "'"+r.RemoteIPPrefix+"' is not a valid IP subnet")
		}
		if p.Addr().Is4() != (r.Ethertype == "IPv4") {
			return errInvalid("SecurityGroupRuleParameterConflict", "Conflicting value ethertype %s for CIDR %s", r.Ethertype, r.RemoteIPPrefix)
		}
		r.RemoteIPPrefix = p.String() // as given; normalized_cidr is its network
	}
	if r.Ethertype == "IPv4" && slices.Contains(ipv6Protocols, r.Protocol) {
		return errInvalid("SecurityGroupEthertypeConflictWithProtocol", "Invalid ethertype %s for protocol %s.", r.Ethertype, r.Protocol)
	}
	return nil
}

// sameRule says whether two rules are one for the reference's duplicate
// check: a protocol's name and number are the same protocol, and a prefix
// of every address (0.0.0.0/0, ::/0) is the same as none.
func sameRule(a, b *model.SecurityGroupRule) bool {
	eq := func(x, y *int) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	protocol := func(p string) string {
		if n, ok := protocolNumbers[p]; ok {
			return strconv.Itoa(n)
		}
		return p
	}
	prefix := func(p string) string {
		if p == "0.0.0.0/0" || p == "::/0" {
			return ""
		}
		return p
	}
	return a.Direction == b.Direction && a.Ethertype == b.Ethertype && protocol(a.Protocol) == protocol(b.Protocol) &&
		eq(a.PortRangeMin, b.PortRangeMin) && eq(a.PortRangeMax, b.PortRangeMax) &&
		prefix(a.RemoteIPPrefix) == prefix(b.RemoteIPPrefix) && a.RemoteGroupID == b.RemoteGroupID
}

// CreateRule adds a rule to a group the caller owns.
func (s *Service) CreateRule(ctx context.Context, r model.SecurityGroupRule) (*model.SecurityGroupRule, error) {
	c := who(ctx)
	if err := c.mayWrite("create_security_group_rule"); err != nil {
		return nil, err
	}
	if err := checkRule(&r); err != nil {
		return nil, err
	}
	r.ID = newID()
	s.stamp(&r.Standard)
	err := s.write(ctx, func(tx store.Tx) error {
		if err := tx.Lock(ctx, "sg:"+r.SecurityGroupID); err != nil {
			return err
		}
		g, err := s.ownedSG(ctx, tx, c, r.SecurityGroupID)
		if err != nil {
			return err
		}
		if r.ProjectID, err = c.project(r.ProjectID); err != nil {
			return err
		}
		if !c.admin || r.ProjectID == c.ProjectID {
			r.ProjectID = g.ProjectID
		}
		if r.RemoteGroupID != "" {
			if _, err := s.ownedSG(ctx, tx, c, r.RemoteGroupID); err != nil {
				return err
			}
		}
		// The reference reserves quota before its plugin looks for a
		// duplicate: a full quota is OverQuota even for a repeated rule.
		if err := s.checkQuota(ctx, tx, "security_group_rule", r.ProjectID, 1); err != nil {
			return err
		}
		existing, err := tx.ListRules(ctx, store.RuleFilter{SecurityGroupIDs: []string{g.ID}})
		if err != nil {
			return err
		}
		for i := range existing {
			if sameRule(&existing[i], &r) {
				return errConflict("SecurityGroupRuleExists", "Security group rule already exists. Rule id is %s.", existing[i].ID)
			}
		}
		if err := tx.CreateRule(ctx, &r); err != nil {
			return err
		}
		return tx.Touch(ctx, "security_groups", g.ID, r.CreatedAt) // its rules changed
	})
	if err != nil {
		return nil, err
	}
	s.hintGroup(ctx, r.SecurityGroupID)
	return &r, nil
}

func ruleNotFound(id string) *Error {
	return errNotFound("SecurityGroupRuleNotFound", "Security group rule %s does not exist", id)
}

// GetRule returns a rule the caller owns.
func (s *Service) GetRule(ctx context.Context, id string) (*model.SecurityGroupRule, error) {
	c := who(ctx)
	var out *model.SecurityGroupRule
	err := s.read(ctx, func(tx store.Tx) error {
		r, err := tx.GetRule(ctx, id)
		if err != nil {
			return notFound(err, "SecurityGroupRuleNotFound", "Security group rule %s does not exist", id)
		}
		if !c.owns(r.ProjectID) {
			return ruleNotFound(id)
		}
		out = r
		return nil
	})
	return out, err
}

// ListRules returns the caller's rules.
func (s *Service) ListRules(ctx context.Context, p store.Page) ([]model.SecurityGroupRule, error) {
	if err := s.EnsureDefaultSecurityGroup(ctx, p); err != nil {
		return nil, err
	}
	c := who(ctx)
	var out []model.SecurityGroupRule
	err := s.read(ctx, func(tx store.Tx) error {
		var err error
		out, err = tx.ListRules(ctx, store.RuleFilter{Scope: c.scope(), Page: p})
		return err
	})
	return out, err
}

// DeleteRule deletes a rule the caller owns.
func (s *Service) DeleteRule(ctx context.Context, id string) error {
	c := who(ctx)
	if err := c.mayWrite("delete_security_group_rule"); err != nil {
		return err
	}
	var group string
	err := s.write(ctx, func(tx store.Tx) error {
		r, err := tx.GetRule(ctx, id)
		if err != nil {
			return notFound(err, "SecurityGroupRuleNotFound", "Security group rule %s does not exist", id)
		}
		if !c.owns(r.ProjectID) {
			return ruleNotFound(id)
		}
		group = r.SecurityGroupID
		if err := tx.DeleteRule(ctx, id); err != nil {
			return err
		}
		return tx.Touch(ctx, "security_groups", group, s.now())
	})
	if err == nil {
		s.hintGroup(ctx, group)
	}
	return err
}

package service

import (
	"context"
	"math"
	"net/netip"
	"slices"

	"github.com/neutrino-net/neutrino/internal/ipam"
	"github.com/neutrino-net/neutrino/internal/model"
	"github.com/neutrino-net/neutrino/internal/store"
)

func subnetPoolNotFound(id string) *Error {
	return errNotFound("SubnetPoolNotFound", "Subnet pool %s could not be found.", id)
}

// visibleSubnetPool returns a pool the caller may see: its own, a shared
// one, or any for an admin.
func (s *Service) visibleSubnetPool(ctx context.Context, tx store.Tx, c caller, id string) (*model.SubnetPool, error) {
	p, err := tx.GetSubnetPool(ctx, id)
	if err != nil {
		return nil, notFound(err, "SubnetPoolNotFound", "Subnet pool %s could not be found.", id)
	}
	if !c.owns(p.ProjectID) && !p.Shared {
		return nil, subnetPoolNotFound(id)
	}
	return p, nil
}

// SubnetPoolLens says which prefix lengths a create or update gives.
type SubnetPoolLens struct {
	Default, Min, Max *int
}

// checkSubnetPool canonicalises p's prefixes, derives its IP version and
// checks its prefix lengths.
func checkSubnetPool(p *model.SubnetPool) error {
	if len(p.Prefixes) == 0 {
		return invalidOp("a subnet pool needs at least one prefix")
	}
	for i, pre := range p.Prefixes {
		p.Prefixes[i] = pre.Masked()
	}
	v := 4
	if p.Prefixes[0].Addr().Is6() {
		v = 6
	}
	for _, pre := range p.Prefixes {
		if pre.Addr().Is6() != (v == 6) {
			return invalidOp("Cannot mix IPv4 and IPv6 prefixes in a subnet pool")
		}
	}
	slices.SortFunc(p.Prefixes, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	for i := 1; i < len(p.Prefixes); i++ {
		if p.Prefixes[i-1].Overlaps(p.Prefixes[i]) {
			return invalidOp("prefixes %s and %s overlap", p.Prefixes[i-1], p.Prefixes[i])
		}
	}
	p.IPVersion = v
	bits := p.Prefixes[0].Addr().BitLen()
	if p.MinPrefixLen < 0 || p.MaxPrefixLen > bits || p.MinPrefixLen > p.MaxPrefixLen {
		return errInvalid("IllegalSubnetPoolPrefixBounds",
			"Illegal prefix bounds: prefix_type=min_prefixlen, prefixlen=%d, base_prefix_type=max_prefixlen, base_prefixlen=%d.",
			p.MinPrefixLen, p.MaxPrefixLen)
	}
	if p.DefaultPrefixLen < p.MinPrefixLen || p.DefaultPrefixLen > p.MaxPrefixLen {
		return errInvalid("IllegalSubnetPoolPrefixBounds",
			"Illegal prefix bounds: prefix_type=default_prefixlen, prefixlen=%d, base_prefix_type=min_prefixlen, base_prefixlen=%d.",
			p.DefaultPrefixLen, p.MinPrefixLen)
	}
	return nil
}

// applyLens sets the prefix lengths given, and the reference's defaults
// (min 8 for IPv4 and 64 for IPv6, max the address length, default the
// minimum) for those never set.
func applyLens(p *model.SubnetPool, l SubnetPoolLens, create bool) {
	if len(p.Prefixes) == 0 {
		return
	}
	six := p.Prefixes[0].Addr().Is6()
	if l.Min != nil {
		p.MinPrefixLen = *l.Min
	} else if create {
		p.MinPrefixLen = 8
		if six {
			p.MinPrefixLen = 64
		}
	}
	if l.Max != nil {
		p.MaxPrefixLen = *l.Max
	} else if create {
		p.MaxPrefixLen = p.Prefixes[0].Addr().BitLen()
	}
	if l.Default != nil {
		p.DefaultPrefixLen = *l.Default
	} else if create || l.Min != nil && p.DefaultPrefixLen < p.MinPrefixLen {
		p.DefaultPrefixLen = p.MinPrefixLen
	}
}

// checkDefaultPool refuses a second default pool of an IP version.
func checkDefaultPool(ctx context.Context, tx store.Tx, p *model.SubnetPool) error {
	if !p.IsDefault {
		return nil
	}
	if err := tx.Lock(ctx, "default-subnetpool"); err != nil {
		return err
	}
	defaults, err := tx.ListSubnetPools(ctx, store.SubnetPoolFilter{Page: store.Page{Eq: map[string][]any{
		"is_default": {true}, "ip_version": {p.IPVersion}}}})
	if err != nil {
		return err
	}
	for _, d := range defaults {
		if d.ID != p.ID {
			return errInvalid("InvalidInput", "Invalid input for operation: A default subnetpool for this IP family has already been set. Only one default may exist per IP family.")
		}
	}
	return nil
}

// CreateSubnetPool creates p; shared and is_default are for admins.
func (s *Service) CreateSubnetPool(ctx context.Context, p model.SubnetPool, lens SubnetPoolLens) (*model.SubnetPool, error) {
	c := who(ctx)
	if err := c.mayWrite("create_subnetpool"); err != nil {
		return nil, err
	}
	project, err := c.project(p.ProjectID)
	if err != nil {
		return nil, err
	}
	if p.Shared && !c.admin {
		return nil, errForbidden("create_subnetpool:shared")
	}
	if p.IsDefault && !c.admin {
		return nil, errForbidden("create_subnetpool:is_default")
	}
	p.ID, p.ProjectID = newID(), project
	applyLens(&p, lens, true)
	if err := checkSubnetPool(&p); err != nil {
		return nil, err
	}
	s.stamp(&p.Standard)
	err = s.write(ctx, func(tx store.Tx) error {
		if err := s.checkQuota(ctx, tx, "subnetpool", project, 1); err != nil {
			return err
		}
		if err := checkDefaultPool(ctx, tx, &p); err != nil {
			return err
		}
		if err := s.checkPoolScope(ctx, tx, c, &p, true); err != nil {
			return err
		}
		return tx.CreateSubnetPool(ctx, &p)
	})
	if err != nil {
		return nil, err
	}
	return &p, nil
}

// GetSubnetPool returns a pool the caller may see.
func (s *Service) GetSubnetPool(ctx context.Context, id string) (*model.SubnetPool, error) {
	c := who(ctx)
	var out *model.SubnetPool
	err := s.read(ctx, func(tx store.Tx) error {
		var err error
		out, err = s.visibleSubnetPool(ctx, tx, c, id)
		return err
	})
	return out, err
}

// ListSubnetPools lists the pools the caller may see.
func (s *Service) ListSubnetPools(ctx context.Context, pg store.Page) ([]model.SubnetPool, error) {
	c := who(ctx)
	var out []model.SubnetPool
	err := s.read(ctx, func(tx store.Tx) error {
		var err error
		out, err = tx.ListSubnetPools(ctx, store.SubnetPoolFilter{Scope: c.scope(), Page: pg, IncludeShared: true})
		return err
	})
	return out, err
}

// UpdateSubnetPool changes a pool: prefixes may only grow (each old one
// inside a new one), is_default is for admins.
func (s *Service) UpdateSubnetPool(ctx context.Context, id string, lens SubnetPoolLens, change func(*model.SubnetPool)) (*model.SubnetPool, error) {
	c := who(ctx)
	if err := c.mayWrite("update_subnetpool"); err != nil {
		return nil, err
	}
	var out *model.SubnetPool
	err := s.write(ctx, func(tx store.Tx) error {
		if err := tx.Lock(ctx, "subnetpool:"+id); err != nil {
			return err
		}
		p, err := s.visibleSubnetPool(ctx, tx, c, id)
		if err != nil {
			return err
		}
		if !c.owns(p.ProjectID) {
			return errForbidden("update_subnetpool")
		}
		old := *p
		old.Prefixes = slices.Clone(p.Prefixes)
		change(p)
		if p.IsDefault != old.IsDefault && !c.admin {
			return errForbidden("update_subnetpool:is_default")
		}
		applyLens(p, lens, false)
		if err := checkSubnetPool(p); err != nil {
			return err
		}
		if p.IPVersion != old.IPVersion {
			return invalidOp("Cannot mix IPv4 and IPv6 prefixes in a subnet pool")
		}
		for _, o := range old.Prefixes {
			if !slices.ContainsFunc(p.Prefixes, func(n netip.Prefix) bool { return n.Bits() <= o.Bits() && n.Contains(o.Addr()) }) {
				return errInvalid("IllegalSubnetPoolPrefixUpdate",
					"Illegal update to prefixes: Existing prefixes must be a subset of the new prefixes.")
			}
		}
		if err := checkDefaultPool(ctx, tx, p); err != nil {
			return err
		}
		if err := s.checkPoolScope(ctx, tx, c, p, p.AddressScopeID != old.AddressScopeID); err != nil {
			return err
		}
		s.touch(&p.Standard)
		out = p
		return tx.UpdateSubnetPool(ctx, p)
	})
	return out, err
}

// DeleteSubnetPool deletes a pool no subnet was allocated from.
func (s *Service) DeleteSubnetPool(ctx context.Context, id string) error {
	c := who(ctx)
	if err := c.mayWrite("delete_subnetpool"); err != nil {
		return err
	}
	return s.write(ctx, func(tx store.Tx) error {
		if err := tx.Lock(ctx, "subnetpool:"+id); err != nil {
			return err
		}
		p, err := s.visibleSubnetPool(ctx, tx, c, id)
		if err != nil {
			return err
		}
		if !c.owns(p.ProjectID) {
			return errForbidden("delete_subnetpool")
		}
		used, err := tx.ListSubnets(ctx, store.SubnetFilter{SubnetPoolIDs: []string{id}, Page: store.Page{Limit: 1}})
		if err != nil {
			return err
		}
		if len(used) > 0 {
			return errConflict("SubnetPoolInUse", "Unable to complete operation on subnet pool %s. Subnet pool is in use.", id)
		}
		return tx.DeleteSubnetPool(ctx, id)
	})
}

// PoolRequest asks for a subnet's CIDR from a pool: the pool (or the
// default pool of the subnet's IP version) and a prefix length (0: the
// pool's default) or the CIDR itself (Subnet.CIDR valid).
type PoolRequest struct {
	PoolID     string
	UseDefault bool
	PrefixLen  int
}

// fromPool fills sn.CIDR (and sn.SubnetpoolID) from the pool req names,
// under the pool's lock: a requested CIDR must lie inside the pool and
// overlap none of its subnets, else the first free prefix of the length
// asked for is taken.
func (s *Service) fromPool(ctx context.Context, tx store.Tx, c caller, sn *model.Subnet, req *PoolRequest) error {
	id := req.PoolID
	if req.UseDefault {
		defaults, err := tx.ListSubnetPools(ctx, store.SubnetPoolFilter{Page: store.Page{Eq: map[string][]any{
			"is_default": {true}, "ip_version": {sn.IPVersion}}}})
		if err != nil {
			return err
		}
		if len(defaults) == 0 {
			return errInvalid("BadRequest", "Bad subnets request: No default subnetpool found for IPv%d.", sn.IPVersion)
		}
		id = defaults[0].ID
	}
	if err := tx.Lock(ctx, "subnetpool:"+id); err != nil {
		return err
	}
	p, err := s.visibleSubnetPool(ctx, tx, c, id)
	if err != nil {
		return err
	}
	if p.IPVersion != sn.IPVersion {
		return invalidOp("Cannot allocate IPv%d subnet from IPv%d subnet pool", sn.IPVersion, p.IPVersion)
	}
	sn.SubnetpoolID = p.ID
	inPool, err := tx.ListSubnets(ctx, store.SubnetFilter{SubnetPoolIDs: []string{p.ID}})
	if err != nil {
		return err
	}
	used := make([]netip.Prefix, 0, len(inPool))
	for _, o := range inPool {
		used = append(used, o.CIDR)
	}
	bits := req.PrefixLen
	if sn.CIDR.IsValid() {
		bits = sn.CIDR.Bits()
	} else if bits == 0 {
		bits = p.DefaultPrefixLen
	}
	if bits < p.MinPrefixLen || bits > p.MaxPrefixLen {
		return errInvalid("IllegalSubnetPoolPrefixBounds",
			"Illegal prefix bounds: prefix_type=prefixlen, prefixlen=%d, base_prefix_type=min_prefixlen/max_prefixlen, base_prefixlen=%d/%d.",
			bits, p.MinPrefixLen, p.MaxPrefixLen)
	}
	if err := checkPoolQuota(p, inPool, sn.ProjectID, bits); err != nil {
		return err
	}
	if sn.CIDR.IsValid() {
		cidr := sn.CIDR.Masked()
		if !slices.ContainsFunc(p.Prefixes, func(pre netip.Prefix) bool { return pre.Bits() <= cidr.Bits() && pre.Contains(cidr.Addr()) }) {
			return errConflict("SubnetAllocationError", "Failed to allocate subnet: Cannot allocate requested subnet from the available set of prefixes.")
		}
		if slices.ContainsFunc(used, cidr.Overlaps) {
			return errConflict("SubnetAllocationError", "Failed to allocate subnet: Cannot allocate requested subnet from the available set of prefixes.")
		}
		return nil
	}
	cidr, ok := ipam.AllocatePrefix(p.Prefixes, used, bits)
	if !ok {
		return errConflict("SubnetAllocationError", "Failed to allocate subnet: Insufficient prefix space to allocate subnet size /%d.", bits)
	}
	sn.CIDR = cidr
	return nil
}

// checkPoolQuota enforces the pool's default_quota on project's subnets
// from it: a subnet of length bits costs its addresses (IPv4) or its /64s
// (IPv6; a longer IPv6 prefix costs a fraction of one), as in the
// reference. A quota of 0 is no limit there too. The reference sums the
// subnets of the pool's owner whoever allocates; this counts the
// allocating project's, which is what a per-project quota means.
func checkPoolQuota(p *model.SubnetPool, inPool []model.Subnet, project string, bits int) error {
	if p.DefaultQuota == nil || *p.DefaultQuota == 0 {
		return nil
	}
	unit := 32
	if p.IPVersion == 6 {
		unit = 64
	}
	units := func(bits int) float64 { return math.Ldexp(1, unit-bits) }
	used := 0.0
	for _, o := range inPool {
		if o.ProjectID == project {
			used += units(o.CIDR.Bits())
		}
	}
	if used+units(bits) > float64(*p.DefaultQuota) {
		return errConflict("SubnetPoolQuotaExceeded", "Per-tenant subnet pool prefix quota exceeded.")
	}
	return nil
}

// AdjustPrefixes adds prefixes to a pool (merged with its own) or removes
// them (subtracted from its own; what a subnet of the pool uses cannot be
// removed), the subnetpool-prefix-ops actions. It returns the new
// prefixes.
func (s *Service) AdjustPrefixes(ctx context.Context, id string, add bool, prefixes []netip.Prefix) ([]netip.Prefix, error) {
	c := who(ctx)
	rule := "remove_prefixes"
	if add {
		rule = "add_prefixes"
	}
	if err := c.mayWrite(rule); err != nil {
		return nil, err
	}
	var out []netip.Prefix
	err := s.write(ctx, func(tx store.Tx) error {
		if err := tx.Lock(ctx, "subnetpool:"+id); err != nil {
			return err
		}
		p, err := s.visibleSubnetPool(ctx, tx, c, id)
		if err != nil {
			return err
		}
		if !c.owns(p.ProjectID) {
			return errForbidden(rule)
		}
		for _, pre := range prefixes {
			if pre.Addr().Is6() != (p.IPVersion == 6) {
				return invalidOp("Cannot mix IPv4 and IPv6 prefixes in a subnet pool")
			}
		}
		next := slices.Clone(p.Prefixes)
		if add {
			next = ipam.MergePrefixes(append(next, prefixes...))
		} else {
			for _, r := range prefixes {
				var kept []netip.Prefix
				for _, o := range next {
					kept = append(kept, ipam.SubtractPrefix(o, r)...)
				}
				next = kept
			}
			next = ipam.MergePrefixes(next)
			if len(next) == 0 {
				return errInvalid("IllegalSubnetPoolUpdate", "Illegal update to subnet pool: a subnet pool needs at least one prefix.")
			}
			subs, err := tx.ListSubnets(ctx, store.SubnetFilter{SubnetPoolIDs: []string{id}})
			if err != nil {
				return err
			}
			for _, sn := range subs {
				if !slices.ContainsFunc(next, func(n netip.Prefix) bool { return n.Bits() <= sn.CIDR.Bits() && n.Contains(sn.CIDR.Addr()) }) {
					return errInvalid("IllegalSubnetPoolUpdate",
						"Illegal update to subnet pool: prefix %s of subnet %s is allocated from the prefixes to remove.", sn.CIDR, sn.ID)
				}
			}
		}
		p.Prefixes = next
		if err := checkSubnetPool(p); err != nil {
			return err
		}
		if err := s.checkPoolScope(ctx, tx, c, p, false); err != nil {
			return err
		}
		s.touch(&p.Standard)
		out = p.Prefixes
		return tx.UpdateSubnetPool(ctx, p)
	})
	return out, err
}

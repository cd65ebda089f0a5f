package service

import (
	"context"
	"slices"

	"github.com/neutrino-net/neutrino/internal/model"
	"github.com/neutrino-net/neutrino/internal/store"
)

func addressScopeNotFound(id string) *Error {
	return errNotFound("AddressScopeNotFound", "Address scope %s could not be found.", id)
}

// visibleAddressScope returns a scope the caller may see: its own, a
// shared one, or any for an admin.
func (s *Service) visibleAddressScope(ctx context.Context, tx store.Tx, c caller, id string) (*model.AddressScope, error) {
	a, err := tx.GetAddressScope(ctx, id)
	if err != nil {
		return nil, notFound(err, "AddressScopeNotFound", "Address scope %s could not be found.", id)
	}
	if !c.owns(a.ProjectID) && !a.Shared {
		return nil, addressScopeNotFound(id)
	}
	return a, nil
}

// CreateAddressScope creates a; shared is for admins.
func (s *Service) CreateAddressScope(ctx context.Context, a model.AddressScope) (*model.AddressScope, error) {
	c := who(ctx)
	if err := c.mayWrite("create_address_scope"); err != nil {
		return nil, err
	}
	project, err := c.project(a.ProjectID)
	if err != nil {
		return nil, err
	}
	if a.Shared && !c.admin {
		return nil, errForbidden("create_address_scope:shared")
	}
	a.ID, a.ProjectID = newID(), project
	s.stamp(&a.Standard)
	if err := s.write(ctx, func(tx store.Tx) error { return tx.CreateAddressScope(ctx, &a) }); err != nil {
		return nil, err
	}
	return &a, nil
}

// GetAddressScope returns a scope the caller may see.
func (s *Service) GetAddressScope(ctx context.Context, id string) (*model.AddressScope, error) {
	c := who(ctx)
	var out *model.AddressScope
	err := s.read(ctx, func(tx store.Tx) error {
		var err error
		out, err = s.visibleAddressScope(ctx, tx, c, id)
		return err
	})
	return out, err
}

// ListAddressScopes lists the scopes the caller may see.
func (s *Service) ListAddressScopes(ctx context.Context, pg store.Page) ([]model.AddressScope, error) {
	c := who(ctx)
	var out []model.AddressScope
	err := s.read(ctx, func(tx store.Tx) error {
		var err error
		out, err = tx.ListAddressScopes(ctx, store.AddressScopeFilter{Scope: c.scope(), Page: pg, IncludeShared: true})
		return err
	})
	return out, err
}

// UpdateAddressScope changes a scope's name, description or (admins)
// shared; a shared scope cannot be unshared, as in the reference.
func (s *Service) UpdateAddressScope(ctx context.Context, id string, change func(*model.AddressScope)) (*model.AddressScope, error) {
	c := who(ctx)
	if err := c.mayWrite("update_address_scope"); err != nil {
		return nil, err
	}
	var out *model.AddressScope
	err := s.write(ctx, func(tx store.Tx) error {
		if err := tx.Lock(ctx, "address-scope:"+id); err != nil {
			return err
		}
		a, err := s.visibleAddressScope(ctx, tx, c, id)
		if err != nil {
			return err
		}
		if !c.owns(a.ProjectID) {
			return errForbidden("update_address_scope")
		}
		old := *a
		change(a)
		if a.Shared != old.Shared && !c.admin {
			return errForbidden("update_address_scope:shared")
		}
		if old.Shared && !a.Shared {
			return errInvalid("AddressScopeUpdateError", "Unable to update address scope %s : Shared address scope can't be unshared.", id)
		}
		s.touch(&a.Standard)
		out = a
		return tx.UpdateAddressScope(ctx, a)
	})
	return out, err
}

// DeleteAddressScope deletes a scope no subnet pool is in.
func (s *Service) DeleteAddressScope(ctx context.Context, id string) error {
	c := who(ctx)
	if err := c.mayWrite("delete_address_scope"); err != nil {
		return err
	}
	return s.write(ctx, func(tx store.Tx) error {
		if err := tx.Lock(ctx, "address-scope:"+id); err != nil {
			return err
		}
		a, err := s.visibleAddressScope(ctx, tx, c, id)
		if err != nil {
			return err
		}
		if !c.owns(a.ProjectID) {
			return errForbidden("delete_address_scope")
		}
		pools, err := tx.ListSubnetPools(ctx, store.SubnetPoolFilter{AddressScopeIDs: []string{id}, Page: store.Page{Limit: 1}})
		if err != nil {
			return err
		}
		if len(pools) > 0 {
			return errConflict("AddressScopeInUse",
				"Unable to complete operation on address scope %s. There are one or more subnet pools in use on the address scope.", id)
		}
		return tx.DeleteAddressScope(ctx, id)
	})
}

// checkPoolScope checks pool p's address scope as the reference does: a
// scope the caller owns (or any, for an admin), of the pool's IP version,
// whose other pools' prefixes p's overlap none of. It runs under the
// scope's lock, so two pools never join a scope with overlapping prefixes
// at once. joining says whether p enters the scope now (ownership is
// checked only then).
func (s *Service) checkPoolScope(ctx context.Context, tx store.Tx, c caller, p *model.SubnetPool, joining bool) error {
	if p.AddressScopeID == "" {
		return nil
	}
	id := p.AddressScopeID
	if err := tx.Lock(ctx, "address-scope:"+id); err != nil {
		return err
	}
	a, err := tx.GetAddressScope(ctx, id)
	if err != nil {
		return notFound(err, "AddressScopeNotFound", "Address scope %s could not be found.", id)
	}
	if joining && !c.owns(a.ProjectID) && !a.Shared {
		return addressScopeNotFound(id)
	}
	if joining && !c.owns(a.ProjectID) {
		return errInvalid("IllegalSubnetPoolAssociationToAddressScope",
			"Illegal subnetpool association: subnetpool %s cannot be associated with address scope %s.", p.ID, id)
	}
	if a.IPVersion != p.IPVersion {
		return errInvalid("IllegalSubnetPoolIpVersionAssociationToAddressScope",
			"Illegal subnetpool association: subnetpool %s cannot associate with address scope %s because subnetpool ip_version is not %d.",
			p.ID, id, a.IPVersion)
	}
	others, err := tx.ListSubnetPools(ctx, store.SubnetPoolFilter{AddressScopeIDs: []string{id}})
	if err != nil {
		return err
	}
	for _, o := range others {
		if o.ID == p.ID {
			continue
		}
		for _, pre := range p.Prefixes {
			if slices.ContainsFunc(o.Prefixes, pre.Overlaps) {
				return errInvalid("AddressScopePrefixConflict",
					"Failed to associate address scope: subnetpools within an address scope must have unique prefixes.")
			}
		}
	}
	return nil
}

// networkScopes sets the address scopes of the views' networks: per IP
// version, that of the pool of the first subnet allocated from a pool in
// a scope, as in the reference.
func (s *Service) networkScopes(ctx context.Context, tx store.Tx, views map[string]*NetworkView, subs []model.Subnet) error {
	var poolIDs []string
	for _, sn := range subs {
		if sn.SubnetpoolID != "" && !slices.Contains(poolIDs, sn.SubnetpoolID) {
			poolIDs = append(poolIDs, sn.SubnetpoolID)
		}
	}
	if len(poolIDs) == 0 {
		return nil
	}
	pools, err := tx.ListSubnetPools(ctx, store.SubnetPoolFilter{IDs: poolIDs})
	if err != nil {
		return err
	}
	scopeOf := make(map[string]string, len(pools))
	for _, p := range pools {
		scopeOf[p.ID] = p.AddressScopeID
	}
	for _, sn := range subs {
		v, scope := views[sn.NetworkID], scopeOf[sn.SubnetpoolID]
		if v == nil || scope == "" {
			continue
		}
		if sn.IPVersion == 4 && v.IPv4AddressScope == "" {
			v.IPv4AddressScope = scope
		}
		if sn.IPVersion == 6 && v.IPv6AddressScope == "" {
			v.IPv6AddressScope = scope
		}
	}
	return nil
}

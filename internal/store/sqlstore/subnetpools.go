package sqlstore

import (
	"context"
	"net/netip"

	"github.com/neutrino-net/neutrino/internal/model"
	"github.com/neutrino-net/neutrino/internal/store"
)

var subnetPools = &table[model.SubnetPool]{
	name: "subnetpools", noun: "subnet pool",
	cols: cols("id", "project_id", "name", "ip_version", "prefixes", "default_prefixlen", "min_prefixlen",
		"max_prefixlen", "shared", "is_default", "address_scope_id", "default_quota"),
	fields: func(p *model.SubnetPool) []any {
		return append([]any{&p.ID, &p.ProjectID, &p.Name, &p.IPVersion, jsonCol[[]netip.Prefix]{&p.Prefixes},
			&p.DefaultPrefixLen, &p.MinPrefixLen, &p.MaxPrefixLen, &p.Shared, &p.IsDefault, &p.AddressScopeID, nullInt{&p.DefaultQuota}},
			stdFields(&p.Standard)...)
	},
	page: pageAttrs("id", "project_id", "name", "description", "ip_version#", "default_prefixlen#",
		"min_prefixlen#", "max_prefixlen#", "shared#", "is_default#", "default_quota#"),
}

var addressScopes = &table[model.AddressScope]{
	name: "address_scopes", noun: "address scope",
	cols: cols("id", "project_id", "name", "ip_version", "shared"),
	fields: func(a *model.AddressScope) []any {
		return append([]any{&a.ID, &a.ProjectID, &a.Name, &a.IPVersion, &a.Shared}, stdFields(&a.Standard)...)
	},
	page: pageAttrs("id", "project_id", "name", "description", "ip_version#", "shared#"),
}

func (t *tx) GetAddressScope(ctx context.Context, id string) (*model.AddressScope, error) {
	return addressScopes.get(ctx, t, id)
}

func (t *tx) ListAddressScopes(ctx context.Context, f store.AddressScopeFilter) ([]model.AddressScope, error) {
	var w where
	if f.ProjectID != "" && f.IncludeShared {
		w.add("(project_id = ? OR shared)", f.ProjectID)
	} else {
		w.eq("project_id", f.ProjectID)
	}
	w.in("id", f.IDs)
	return addressScopes.listPage(ctx, t, w, f.Page)
}

func (t *tx) CreateAddressScope(ctx context.Context, a *model.AddressScope) error {
	return t.atomic1(ctx, "create address scope "+a.ID, func() error { return addressScopes.insert(ctx, t, a) })
}

func (t *tx) UpdateAddressScope(ctx context.Context, a *model.AddressScope) error {
	return t.atomic1(ctx, "update address scope "+a.ID, func() error { return addressScopes.update(ctx, t, a) })
}

func (t *tx) DeleteAddressScope(ctx context.Context, id string) error {
	return t.atomic(ctx, "delete address scope "+id, func() error { return addressScopes.delete(ctx, t, id) })
}

func (t *tx) GetSubnetPool(ctx context.Context, id string) (*model.SubnetPool, error) {
	return subnetPools.get(ctx, t, id)
}

func (t *tx) ListSubnetPools(ctx context.Context, f store.SubnetPoolFilter) ([]model.SubnetPool, error) {
	var w where
	if f.ProjectID != "" && f.IncludeShared {
		w.add("(project_id = ? OR shared)", f.ProjectID)
	} else {
		w.eq("project_id", f.ProjectID)
	}
	w.in("id", f.IDs)
	w.in("address_scope_id", f.AddressScopeIDs)
	return subnetPools.listPage(ctx, t, w, f.Page)
}

func (t *tx) CreateSubnetPool(ctx context.Context, p *model.SubnetPool) error {
	return t.atomic1(ctx, "create subnet pool "+p.ID, func() error { return subnetPools.insert(ctx, t, p) })
}

func (t *tx) UpdateSubnetPool(ctx context.Context, p *model.SubnetPool) error {
	return t.atomic1(ctx, "update subnet pool "+p.ID, func() error { return subnetPools.update(ctx, t, p) })
}

func (t *tx) DeleteSubnetPool(ctx context.Context, id string) error {
	return t.atomic(ctx, "delete subnet pool "+id, func() error { return subnetPools.delete(ctx, t, id) })
}

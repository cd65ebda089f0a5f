package sqlstore

import (
	"context"
	"fmt"

	"github.com/neutrino-net/neutrino/internal/model"
	"github.com/neutrino-net/neutrino/internal/store"
)

// VPNaaS resources (migration 0002_vpnaas).

var ikePolicies = &table[model.IKEPolicy]{
	name: "ikepolicies", noun: "ike policy",
	cols: cols("id", "project_id", "name", "auth_algorithm", "encryption_algorithm", "phase1_negotiation_mode",
		"lifetime_units", "lifetime_value", "ike_version", "pfs"),
	fields: func(p *model.IKEPolicy) []any {
		return append([]any{&p.ID, &p.ProjectID, &p.Name, &p.AuthAlgorithm, &p.EncryptionAlgorithm,
			&p.Phase1NegotiationMode, &p.Lifetime.Units, &p.Lifetime.Value, &p.IKEVersion, &p.PFS},
			stdFields(&p.Standard)...)
	},
	page: pageAttrs("id", "project_id", "name", "description", "auth_algorithm", "encryption_algorithm",
		"phase1_negotiation_mode", "ike_version", "pfs"),
}

var ipsecPolicies = &table[model.IPsecPolicy]{
	name: "ipsecpolicies", noun: "ipsec policy",
	cols: cols("id", "project_id", "name", "transform_protocol", "auth_algorithm", "encryption_algorithm",
		"encapsulation_mode", "lifetime_units", "lifetime_value", "pfs"),
	fields: func(p *model.IPsecPolicy) []any {
		return append([]any{&p.ID, &p.ProjectID, &p.Name, &p.TransformProtocol, &p.AuthAlgorithm,
			&p.EncryptionAlgorithm, &p.EncapsulationMode, &p.Lifetime.Units, &p.Lifetime.Value, &p.PFS},
			stdFields(&p.Standard)...)
	},
	page: pageAttrs("id", "project_id", "name", "description", "transform_protocol", "auth_algorithm",
		"encryption_algorithm", "encapsulation_mode", "pfs"),
}

var vpnServices = &table[model.VPNService]{
	name: "vpnservices", noun: "vpn service",
	cols: cols("id", "project_id", "name", "router_id", "subnet_id", "admin_state_up", "flavor_id", "provider",
		"external_v4_ip", "external_v6_ip", "status"),
	fields: func(v *model.VPNService) []any {
		return append([]any{&v.ID, &v.ProjectID, &v.Name, &v.RouterID, nullStr{&v.SubnetID}, &v.AdminStateUp,
			nullStr{&v.FlavorID}, &v.Provider, nullStr{&v.ExternalV4IP}, nullStr{&v.ExternalV6IP}, &v.Status},
			stdFields(&v.Standard)...)
	},
	page: pageAttrs("id", "project_id", "name", "description", "router_id", "admin_state_up#", "status"),
}

// endpointGroups holds the group row; Endpoints live in
// endpoint_group_endpoints.
var endpointGroups = &table[model.EndpointGroup]{
	name: "endpoint_groups", noun: "endpoint group",
	cols: cols("id", "project_id", "name", "endpoint_type"),
	fields: func(g *model.EndpointGroup) []any {
		return append([]any{&g.ID, &g.ProjectID, &g.Name, &g.Type}, stdFields(&g.Standard)...)
	},
	page: pageAttrs("id", "project_id", "name", "description", "type=endpoint_type"),
}

var connections = &table[model.IPsecSiteConnection]{
	name: "ipsec_site_connections", noun: "ipsec site connection",
	cols: cols("id", "project_id", "name", "vpnservice_id", "ikepolicy_id", "ipsecpolicy_id", "peer_address",
		"peer_id", "local_id", "peer_cidrs", "local_ep_group_id", "peer_ep_group_id", "route_mode", "mtu",
		"initiator", "auth_mode", "psk", "dpd_action", "dpd_interval", "dpd_timeout", "admin_state_up", "status",
		"status_reason"),
	fields: func(c *model.IPsecSiteConnection) []any {
		return append([]any{&c.ID, &c.ProjectID, &c.Name, &c.VPNServiceID, &c.IKEPolicyID, &c.IPsecPolicyID,
			&c.PeerAddress, &c.PeerID, &c.LocalID, jsonCol[[]string]{&c.PeerCIDRs}, nullStr{&c.LocalEPGroupID},
			nullStr{&c.PeerEPGroupID}, &c.RouteMode, &c.MTU, &c.Initiator, &c.AuthMode, secretCol{&c.PSK},
			&c.DPD.Action, &c.DPD.Interval, &c.DPD.Timeout, &c.AdminStateUp, &c.Status, &c.StatusReason},
			stdFields(&c.Standard)...)
	},
	page: pageAttrs("id", "project_id", "name", "description", "vpnservice_id", "ikepolicy_id", "ipsecpolicy_id",
		"peer_address", "peer_id", "route_mode", "mtu#", "initiator", "auth_mode", "admin_state_up#", "status"),
}

// IKE policies.

func (t *tx) GetIKEPolicy(ctx context.Context, id string) (*model.IKEPolicy, error) {
	return ikePolicies.get(ctx, t, id)
}

func (t *tx) ListIKEPolicies(ctx context.Context, f store.PolicyFilter) ([]model.IKEPolicy, error) {
	var w where
	w.eq("project_id", f.ProjectID)
	return ikePolicies.listPage(ctx, t, w, f.Page)
}

func (t *tx) CreateIKEPolicy(ctx context.Context, p *model.IKEPolicy) error {
	return t.atomic1(ctx, "create ike policy "+p.ID, func() error { return ikePolicies.insert(ctx, t, p) })
}

func (t *tx) UpdateIKEPolicy(ctx context.Context, p *model.IKEPolicy) error {
	return t.atomic1(ctx, "update ike policy "+p.ID, func() error { return ikePolicies.update(ctx, t, p) })
}

// DeleteIKEPolicy deletes the policy; a connection using it gives
// ErrReferenced.
func (t *tx) DeleteIKEPolicy(ctx context.Context, id string) error {
	return t.atomic(ctx, "delete ike policy "+id, func() error { return ikePolicies.delete(ctx, t, id) })
}

// IPsec policies.

func (t *tx) GetIPsecPolicy(ctx context.Context, id string) (*model.IPsecPolicy, error) {
	return ipsecPolicies.get(ctx, t, id)
}

func (t *tx) ListIPsecPolicies(ctx context.Context, f store.PolicyFilter) ([]model.IPsecPolicy, error) {
	var w where
	w.eq("project_id", f.ProjectID)
	return ipsecPolicies.listPage(ctx, t, w, f.Page)
}

func (t *tx) CreateIPsecPolicy(ctx context.Context, p *model.IPsecPolicy) error {
	return t.atomic1(ctx, "create ipsec policy "+p.ID, func() error { return ipsecPolicies.insert(ctx, t, p) })
}

func (t *tx) UpdateIPsecPolicy(ctx context.Context, p *model.IPsecPolicy) error {
	return t.atomic1(ctx, "update ipsec policy "+p.ID, func() error { return ipsecPolicies.update(ctx, t, p) })
}

// DeleteIPsecPolicy deletes the policy; a connection using it gives
// ErrReferenced.
func (t *tx) DeleteIPsecPolicy(ctx context.Context, id string) error {
	return t.atomic(ctx, "delete ipsec policy "+id, func() error { return ipsecPolicies.delete(ctx, t, id) })
}

// VPN services.

func (t *tx) GetVPNService(ctx context.Context, id string) (*model.VPNService, error) {
	return vpnServices.get(ctx, t, id)
}

func (t *tx) ListVPNServices(ctx context.Context, f store.VPNServiceFilter) ([]model.VPNService, error) {
	var w where
	w.eq("project_id", f.ProjectID)
	w.in("id", f.IDs)
	w.eq("router_id", f.RouterID)
	w.eq("subnet_id", f.SubnetID)
	return vpnServices.listPage(ctx, t, w, f.Page)
}

// CreateVPNService inserts the service; a missing router or subnet gives
// ErrReferenced.
func (t *tx) CreateVPNService(ctx context.Context, v *model.VPNService) error {
	return t.atomic1(ctx, "create vpn service "+v.ID, func() error { return vpnServices.insert(ctx, t, v) })
}

func (t *tx) UpdateVPNService(ctx context.Context, v *model.VPNService) error {
	return t.atomic1(ctx, "update vpn service "+v.ID, func() error { return vpnServices.update(ctx, t, v) })
}

// DeleteVPNService deletes the service; a connection using it gives
// ErrReferenced.
func (t *tx) DeleteVPNService(ctx context.Context, id string) error {
	return t.atomic(ctx, "delete vpn service "+id, func() error { return vpnServices.delete(ctx, t, id) })
}

// Endpoint groups.

func (t *tx) GetEndpointGroup(ctx context.Context, id string) (*model.EndpointGroup, error) {
	gs, err := t.listEndpointGroups(ctx, whereID(id), store.Page{})
	if err != nil {
		return nil, err
	}
	if len(gs) == 0 {
		return nil, fmt.Errorf("endpoint group %s: %w", id, store.ErrNotFound)
	}
	return &gs[0], nil
}

func (t *tx) ListEndpointGroups(ctx context.Context, f store.EndpointGroupFilter) ([]model.EndpointGroup, error) {
	var w where
	w.eq("project_id", f.ProjectID)
	w.in("id", f.IDs)
	if f.Endpoint != "" {
		w.add("id IN (SELECT group_id FROM endpoint_group_endpoints WHERE endpoint = ?)", f.Endpoint)
	}
	return t.listEndpointGroups(ctx, w, f.Page)
}

// listEndpointGroups loads the groups selected by w with their endpoints in
// two queries, whatever their number. A group without endpoints has nil
// Endpoints.
func (t *tx) listEndpointGroups(ctx context.Context, w where, p store.Page) ([]model.EndpointGroup, error) {
	gs, err := endpointGroups.listPage(ctx, t, w, p)
	if err != nil || len(gs) == 0 {
		return gs, err
	}
	from, args, err := endpointGroups.selection(t, w, p)
	if err != nil {
		return nil, err
	}
	byID := make(map[string]*model.EndpointGroup, len(gs))
	for i := range gs {
		byID[gs[i].ID] = &gs[i]
	}
	eps, err := queryAll(ctx, t, "SELECT group_id, endpoint FROM endpoint_group_endpoints WHERE group_id IN (SELECT id"+
		from+") ORDER BY group_id, position",
		func(s scanner) (v [2]string, err error) {
			err = s.Scan(&v[0], &v[1])
			return v, err
		}, args...)
	if err != nil {
		return nil, fmt.Errorf("list endpoint groups: endpoints: %w", err)
	}
	for _, v := range eps {
		g := byID[v[0]]
		g.Endpoints = append(g.Endpoints, v[1])
	}
	return gs, nil
}

// CreateEndpointGroup inserts the group with its endpoints; an endpoint
// listed twice gives ErrDuplicate.
func (t *tx) CreateEndpointGroup(ctx context.Context, g *model.EndpointGroup) error {
	return t.atomic(ctx, "create endpoint group "+g.ID, func() error {
		if err := endpointGroups.insert(ctx, t, g); err != nil {
			return err
		}
		return t.insertEndpoints(ctx, g)
	})
}

// UpdateEndpointGroup overwrites the group and replaces its endpoints.
func (t *tx) UpdateEndpointGroup(ctx context.Context, g *model.EndpointGroup) error {
	return t.atomic(ctx, "update endpoint group "+g.ID, func() error {
		if err := endpointGroups.update(ctx, t, g); err != nil {
			return err
		}
		if _, err := t.exec(ctx, "DELETE FROM endpoint_group_endpoints WHERE group_id = ?", g.ID); err != nil {
			return err
		}
		return t.insertEndpoints(ctx, g)
	})
}

func (t *tx) insertEndpoints(ctx context.Context, g *model.EndpointGroup) error {
	for i, ep := range g.Endpoints {
		if _, err := t.exec(ctx, "INSERT INTO endpoint_group_endpoints (endpoint, group_id, position) VALUES (?, ?, ?)",
			ep, g.ID, i); err != nil {
			return fmt.Errorf("endpoint %s: %w", ep, err)
		}
	}
	return nil
}

// DeleteEndpointGroup deletes the group and its endpoints; a connection
// using it gives ErrReferenced.
func (t *tx) DeleteEndpointGroup(ctx context.Context, id string) error {
	return t.atomic(ctx, "delete endpoint group "+id, func() error { return endpointGroups.delete(ctx, t, id) })
}

// IPsec site connections.

func (t *tx) GetConnection(ctx context.Context, id string) (*model.IPsecSiteConnection, error) {
	return connections.get(ctx, t, id)
}

func (t *tx) ListConnections(ctx context.Context, f store.ConnectionFilter) ([]model.IPsecSiteConnection, error) {
	var w where
	w.eq("project_id", f.ProjectID)
	w.in("id", f.IDs)
	w.in("vpnservice_id", f.VPNServiceIDs)
	w.eq("ikepolicy_id", f.IKEPolicyID)
	w.eq("ipsecpolicy_id", f.IPsecPolicyID)
	if f.EndpointGroupID != "" {
		w.add("(local_ep_group_id = ? OR peer_ep_group_id = ?)", f.EndpointGroupID, f.EndpointGroupID)
	}
	return connections.listPage(ctx, t, w, f.Page)
}

// CreateConnection inserts the connection; a missing VPN service, policy
// or endpoint group gives ErrReferenced.
func (t *tx) CreateConnection(ctx context.Context, c *model.IPsecSiteConnection) error {
	return t.atomic1(ctx, "create ipsec site connection "+c.ID, func() error { return connections.insert(ctx, t, c) })
}

func (t *tx) UpdateConnection(ctx context.Context, c *model.IPsecSiteConnection) error {
	return t.atomic1(ctx, "update ipsec site connection "+c.ID, func() error { return connections.update(ctx, t, c) })
}

func (t *tx) DeleteConnection(ctx context.Context, id string) error {
	return t.atomic(ctx, "delete ipsec site connection "+id, func() error { return connections.delete(ctx, t, id) })
}

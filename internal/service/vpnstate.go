package service

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/neutrino-net/neutrino/internal/model"
	"github.com/neutrino-net/neutrino/internal/store"
)

// vpnCache holds what several connections of one host state share:
// policies and endpoint groups, each read once.
type vpnCache struct {
	ike    map[string]*model.IKEPolicy
	ipsec  map[string]*model.IPsecPolicy
	groups map[string]*model.EndpointGroup
}

// vpnServices returns a router's VPN services that have at least one
// connection, sorted by id, with every connection resolved for a device
// driver (contract 9.1). A connection whose policy, endpoint group or
// subnet vanished under it is left out: there is nothing to realise.
func (b *stateBuilder) vpnServices(routerID string) ([]agentv1.VPNService, error) {
	vs, err := b.tx.ListVPNServices(b.ctx, store.VPNServiceFilter{RouterID: routerID})
	if err != nil || len(vs) == 0 {
		return nil, err
	}
	ids := make([]string, len(vs))
	for i, v := range vs {
		ids[i] = v.ID
	}
	conns, err := b.tx.ListConnections(b.ctx, store.ConnectionFilter{VPNServiceIDs: ids})
	if err != nil || len(conns) == 0 {
		return nil, err
	}
	byService := map[string][]*model.IPsecSiteConnection{}
	for i := range conns {
		byService[conns[i].VPNServiceID] = append(byService[conns[i].VPNServiceID], &conns[i])
	}
	slices.SortFunc(vs, func(x, y model.VPNService) int { return strings.Compare(x.ID, y.ID) })
	var out []agentv1.VPNService
	for i := range vs {
		v := &vs[i]
		cs := byService[v.ID]
		if len(cs) == 0 {
			continue
		}
		slices.SortFunc(cs, func(x, y *model.IPsecSiteConnection) int { return strings.Compare(x.ID, y.ID) })
		p := b.providers.provider(v.Provider)
		svc := agentv1.VPNService{ID: v.ID, Provider: p.Name, Driver: p.Driver, AdminStateUp: v.AdminStateUp,
			ExternalV4IP: v.ExternalV4IP, ExternalV6IP: v.ExternalV6IP, Connections: []agentv1.IPsecConnection{}}
		for _, c := range cs {
			conn, err := b.vpnConnection(v, c)
			if errors.Is(err, store.ErrNotFound) {
				continue
			} else if err != nil {
				return nil, err
			}
			svc.Connections = append(svc.Connections, *conn)
		}
		if len(svc.Connections) > 0 {
			out = append(out, svc)
		}
	}
	return out, nil
}

// vpnConnection resolves one connection of service v.
func (b *stateBuilder) vpnConnection(v *model.VPNService, c *model.IPsecSiteConnection) (*agentv1.IPsecConnection, error) {
	ike, err := b.ikePolicy(c.IKEPolicyID)
	if err != nil {
		return nil, err
	}
	ipsec, err := b.ipsecPolicy(c.IPsecPolicyID)
	if err != nil {
		return nil, err
	}
	local, peer := []string{}, []string{}
	if v.SubnetID != "" { // legacy mode
		sn, err := b.subnet(v.SubnetID)
		if err != nil {
			return nil, err
		}
		local = append(local, sn.CIDR.String())
		peer = append(peer, c.PeerCIDRs...)
	} else {
		lg, err := b.endpointGroup(c.LocalEPGroupID)
		if err != nil {
			return nil, err
		}
		for _, id := range lg.Endpoints {
			sn, err := b.subnet(id)
			if err != nil {
				return nil, err
			}
			local = append(local, sn.CIDR.String())
		}
		pg, err := b.endpointGroup(c.PeerEPGroupID)
		if err != nil {
			return nil, err
		}
		peer = append(peer, pg.Endpoints...)
	}
	return &agentv1.IPsecConnection{
		ID:           c.ID,
		LocalAddress: localAddress(v, c.PeerAddress),
		PeerAddress:  c.PeerAddress,
		LocalID:      c.LocalID,
		PeerID:       c.PeerID,
		PSK:          agentv1.Secret(c.PSK.Reveal()),
		LocalCIDRs:   local,
		PeerCIDRs:    peer,
		IKE: agentv1.IKEPolicy{AuthAlgorithm: ike.AuthAlgorithm, EncryptionAlgorithm: ike.EncryptionAlgorithm,
			Phase1NegotiationMode: ike.Phase1NegotiationMode, IKEVersion: ike.IKEVersion, PFS: ike.PFS,
			LifetimeSeconds: ike.Lifetime.Value},
		IPsec: agentv1.IPsecPolicy{TransformProtocol: ipsec.TransformProtocol, AuthAlgorithm: ipsec.AuthAlgorithm,
			EncryptionAlgorithm: ipsec.EncryptionAlgorithm, EncapsulationMode: ipsec.EncapsulationMode, PFS: ipsec.PFS,
			LifetimeSeconds: ipsec.Lifetime.Value},
		DPD:          agentv1.DPD{Action: c.DPD.Action, Interval: c.DPD.Interval, Timeout: c.DPD.Timeout},
		Initiator:    c.Initiator,
		AdminStateUp: c.AdminStateUp,
		MTU:          c.MTU,
	}, nil
}

// localAddress is the service's external address of the peer's family.
// An FQDN peer is resolved and stored as an address when the connection
// is created or updated (resolvePeer), so peer is normally an address; a
// value that does not parse is treated as IPv4, the reference's default.
func localAddress(v *model.VPNService, peer string) string {
	if a, err := netip.ParseAddr(peer); err == nil && a.Unmap().Is6() {
		return v.ExternalV6IP
	}
	return v.ExternalV4IP
}

func (b *stateBuilder) ikePolicy(id string) (*model.IKEPolicy, error) {
	if p, ok := b.vpn.ike[id]; ok {
		return p, nil
	}
	p, err := b.tx.GetIKEPolicy(b.ctx, id)
	if err != nil {
		return nil, fmt.Errorf("ikepolicy %s: %w", id, err)
	}
	if b.vpn.ike == nil {
		b.vpn.ike = map[string]*model.IKEPolicy{}
	}
	b.vpn.ike[id] = p
	return p, nil
}

func (b *stateBuilder) ipsecPolicy(id string) (*model.IPsecPolicy, error) {
	if p, ok := b.vpn.ipsec[id]; ok {
		return p, nil
	}
	p, err := b.tx.GetIPsecPolicy(b.ctx, id)
	if err != nil {
		return nil, fmt.Errorf("ipsecpolicy %s: %w", id, err)
	}
	if b.vpn.ipsec == nil {
		b.vpn.ipsec = map[string]*model.IPsecPolicy{}
	}
	b.vpn.ipsec[id] = p
	return p, nil
}

func (b *stateBuilder) endpointGroup(id string) (*model.EndpointGroup, error) {
	if g, ok := b.vpn.groups[id]; ok {
		return g, nil
	}
	g, err := b.tx.GetEndpointGroup(b.ctx, id)
	if err != nil {
		return nil, fmt.Errorf("endpoint group %s: %w", id, err)
	}
	if b.vpn.groups == nil {
		b.vpn.groups = map[string]*model.EndpointGroup{}
	}
	b.vpn.groups[id] = g
	return g, nil
}

// ResolvedConnection is a connection the caller owns as a device driver
// sees it: every value resolved, the PSK included (the peer-config export
// renders it for the remote site).
func (s *Service) ResolvedConnection(ctx context.Context, id string) (*agentv1.IPsecConnection, error) {
	var out *agentv1.IPsecConnection
	err := s.read(ctx, func(tx store.Tx) error {
		c, err := s.ownedConnection(ctx, tx, who(ctx), id)
		if err != nil {
			return err
		}
		v, err := tx.GetVPNService(ctx, c.VPNServiceID)
		if err != nil {
			return err
		}
		b := stateBuilder{ctx: ctx, tx: tx, alive: s.alive, providers: s.opts.Providers,
			subnets: map[string]*model.Subnet{}, networks: map[string]*model.Network{}}
		out, err = b.vpnConnection(v, c)
		return err
	})
	return out, err
}

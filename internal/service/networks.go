package service

import (
	"context"
	"slices"

	"github.com/neutrino-net/neutrino/internal/model"
	"github.com/neutrino-net/neutrino/internal/segment"
	"github.com/neutrino-net/neutrino/internal/store"
)

// NetworkView is a network with its derived attributes.
type NetworkView struct {
	model.Network
	Subnets []string
	// IPv4AddressScope and IPv6AddressScope are the address scopes of the
	// network's subnets' pools ("" for none).
	IPv4AddressScope, IPv6AddressScope string
}

func networkNotFound(id string) *Error {
	return errNotFound("NetworkNotFound", "Network %s could not be found.", id)
}

// visibleNetwork returns the network if the caller may see it: its owner,
// an admin, or anyone for a shared or external network.
func (s *Service) visibleNetwork(ctx context.Context, tx store.Tx, c caller, id string) (*model.Network, error) {
	n, err := tx.GetNetwork(ctx, id)
	if err != nil {
		return nil, notFound(err, "NetworkNotFound", "Network %s could not be found.", id)
	}
	if !c.owns(n.ProjectID) && !n.Shared && !n.External {
		return nil, networkNotFound(id)
	}
	return n, nil
}

// ownedNetwork returns the network if the caller may change it: 404 if
// invisible, 403 if visible but someone else's.
func (s *Service) ownedNetwork(ctx context.Context, tx store.Tx, c caller, id, rule string) (*model.Network, error) {
	n, err := s.visibleNetwork(ctx, tx, c, id)
	if err != nil {
		return nil, err
	}
	if !c.owns(n.ProjectID) {
		return nil, errForbidden(rule)
	}
	return n, nil
}

// maxMTU is the largest MTU of a network: the physical network's, less
// the VXLAN overhead for a VXLAN tenant network or one with a VXLAN segment
// (external networks are not encapsulated).
func (s *Service) maxMTU(n *model.Network) int {
	vxlan := n.NetworkType == "" || n.NetworkType == segment.VXLAN
	for _, sg := range n.Segments {
		vxlan = vxlan || sg.NetworkType == segment.VXLAN
	}
	if n.External || !vxlan {
		return s.opts.PhysnetMTU
	}
	return s.opts.PhysnetMTU - VXLANOverhead
}

// MinMTUv4 and MinMTUv6 are the smallest MTUs IPv4 and IPv6 allow; a
// network below one takes no subnet of that version (and an agent still
// gives its links MinMTUv4, the least an Ethernet link takes).
const (
	MinMTUv4 = 68
	MinMTUv6 = 1280
)

// checkMTU checks a network's MTU on its own: non-negative and within
// what its segment carries. Below what a subnet's IP version needs is
// allowed while the network has no such subnet, as in the reference
// (checkSubnetMTU).
func (s *Service) checkMTU(n *model.Network) error {
	if n.MTU < 0 {
		return errInvalidInput("mtu", "'"+itoa(n.MTU)+"' should be non-negative")
	}
	if max := s.maxMTU(n); n.MTU > max {
		return errInvalid("InvalidInput", "Invalid input for operation: Requested MTU is too big, maximum is %d.", max)
	}
	return nil
}

// checkSubnetMTU refuses a subnet of version on n, or an MTU of n below
// what a subnet of that version on it needs, with the reference's 409.
func checkSubnetMTU(n *model.Network, version int) error {
	min := MinMTUv4
	if version == 6 {
		min = MinMTUv6
	}
	if n.MTU < min {
		return errConflict("NetworkMTUSubnetConflict", "MTU of %s is not valid, subnet requires a minimum of %d", n.ID, min)
	}
	return nil
}

// CreateNetwork creates n on the segment prov asks for (nil: a tenant
// network). Zero MTU means the default for its kind.
func (s *Service) CreateNetwork(ctx context.Context, n model.Network, prov *ProviderRequest) (*NetworkView, error) {
	c := who(ctx)
	if err := c.mayWrite("create_network"); err != nil {
		return nil, err
	}
	project, err := c.project(n.ProjectID)
	if err != nil {
		return nil, err
	}
	if n.External && !c.admin {
		return nil, errForbidden("create_network:router:external")
	}
	if n.Shared && !c.admin {
		return nil, errForbidden("create_network:shared")
	}
	var pools [][]segment.Range
	if prov != nil && prov.SegmentsGiven {
		segs, ps, err := s.segmentsOf(c, prov)
		if err != nil {
			return nil, err
		}
		switch {
		case len(segs) > 1:
			n.Segments, pools = segs, ps
			n.NetworkType, n.PhysicalNetwork, n.SegmentationID = segs[0].NetworkType, segs[0].PhysicalNetwork, segs[0].SegmentationID
		case len(segs) == 1:
			n.NetworkType, n.PhysicalNetwork, n.SegmentationID, pools = segs[0].NetworkType, segs[0].PhysicalNetwork, segs[0].SegmentationID, ps
		default:
			prov = nil // no segments: a tenant network
		}
	}
	if pools == nil {
		typ, physnet, segID, pool, err := s.segmentOf(c, prov)
		if err != nil {
			return nil, err
		}
		n.NetworkType, n.PhysicalNetwork, n.SegmentationID, pools = typ, physnet, segID, [][]segment.Range{pool}
	}
	n.ID, n.ProjectID, n.Status = newID(), project, model.StatusActive
	if n.MTU == 0 {
		n.MTU = s.maxMTU(&n)
	}
	if err := s.checkMTU(&n); err != nil {
		return nil, err
	}
	s.stamp(&n.Standard)
	err = s.write(ctx, func(tx store.Tx) error {
		if err := s.checkQuota(ctx, tx, "network", project, 1); err != nil {
			return err
		}
		return segmentTaken(tx.CreateNetwork(ctx, &n, pools...), &n)
	})
	if err != nil {
		return nil, err
	}
	return &NetworkView{Network: n, Subnets: []string{}}, nil
}

// GetNetwork returns a network the caller may see.
func (s *Service) GetNetwork(ctx context.Context, id string) (*NetworkView, error) {
	c := who(ctx)
	var v *NetworkView
	err := s.read(ctx, func(tx store.Tx) error {
		n, err := s.visibleNetwork(ctx, tx, c, id)
		if err != nil {
			return err
		}
		views, err := s.networkViews(ctx, tx, c, []model.Network{*n})
		if err != nil {
			return err
		}
		v = &views[0]
		return nil
	})
	return v, err
}

// ListNetworks returns the networks the caller may see.
func (s *Service) ListNetworks(ctx context.Context, p store.Page) ([]NetworkView, error) {
	c := who(ctx)
	var out []NetworkView
	err := s.read(ctx, func(tx store.Tx) error {
		nets, err := tx.ListNetworks(ctx, store.NetworkFilter{Scope: c.scope(), IncludePublic: !c.admin, Page: p})
		if err != nil {
			return err
		}
		out, err = s.networkViews(ctx, tx, c, nets)
		return err
	})
	return out, err
}

// networkViews adds the subnet ids the caller may see to each network.
func (s *Service) networkViews(ctx context.Context, tx store.Tx, c caller, nets []model.Network) ([]NetworkView, error) {
	ids := make([]string, len(nets))
	for i, n := range nets {
		ids[i] = n.ID
	}
	out := make([]NetworkView, len(nets))
	by := make(map[string]*NetworkView, len(nets))
	for i, n := range nets {
		out[i] = NetworkView{Network: n, Subnets: []string{}}
		by[n.ID] = &out[i]
	}
	if len(nets) == 0 {
		return out, nil
	}
	subs, err := tx.ListSubnets(ctx, store.SubnetFilter{NetworkIDs: ids})
	if err != nil {
		return nil, err
	}
	for _, sn := range subs {
		if v := by[sn.NetworkID]; v != nil {
			v.Subnets = append(v.Subnets, sn.ID)
		}
	}
	if err := s.networkScopes(ctx, tx, by, subs); err != nil {
		return nil, err
	}
	return out, nil
}

// UpdateNetwork applies change to a network the caller owns.
func (s *Service) UpdateNetwork(ctx context.Context, id string, prov *ProviderRequest, change func(*model.Network)) (*NetworkView, error) {
	c := who(ctx)
	if err := c.mayWrite("update_network"); err != nil {
		return nil, err
	}
	var v *NetworkView
	err := s.write(ctx, func(tx store.Tx) error {
		if err := tx.Lock(ctx, "network:"+id); err != nil {
			return err
		}
		old, err := s.ownedNetwork(ctx, tx, c, id, "update_network")
		if err != nil {
			return err
		}
		n := *old
		change(&n)
		if err := checkProviderUnchanged(c, prov, old); err != nil {
			return err
		}
		if n.External != old.External && !c.admin {
			return errForbidden("update_network:router:external")
		}
		if n.Shared != old.Shared && !c.admin {
			return errForbidden("update_network:shared")
		}
		if n.MTU != old.MTU {
			if err := s.checkMTU(&n); err != nil {
				return err
			}
			subs, err := tx.ListSubnets(ctx, store.SubnetFilter{NetworkIDs: []string{id}})
			if err != nil {
				return err
			}
			for _, sn := range subs {
				if err := checkSubnetMTU(&n, sn.IPVersion); err != nil {
					return err
				}
			}
		}
		if old.External && !n.External {
			rs, err := tx.ListRouters(ctx, store.RouterFilter{GatewayNetworkID: id})
			if err != nil {
				return err
			}
			if len(rs) > 0 {
				return errConflict("ExternalNetworkInUse",
					"External network %s cannot be updated to be made non-external, since it has existing gateway ports.", id)
			}
		}
		if old.Shared && !n.Shared {
			ports, err := tx.ListPorts(ctx, store.PortFilter{NetworkID: id})
			if err != nil {
				return err
			}
			if slices.ContainsFunc(ports, func(p model.Port) bool { return p.ProjectID != n.ProjectID && p.ProjectID != "" }) {
				return errConflict("InvalidSharedSetting",
					"Unable to reconfigure sharing settings for network %s. Multiple tenants are using it.", id)
			}
		}
		s.touch(&n.Standard)
		if err := tx.UpdateNetwork(ctx, &n); err != nil {
			return err
		}
		views, err := s.networkViews(ctx, tx, c, []model.Network{n})
		if err != nil {
			return err
		}
		v = &views[0]
		return nil
	})
	if err == nil {
		s.hintAll(ctx) // the MTU may have changed on every host
	}
	return v, err
}

// DeleteNetwork deletes a network without ports, with its subnets.
func (s *Service) DeleteNetwork(ctx context.Context, id string) error {
	c := who(ctx)
	if err := c.mayWrite("delete_network"); err != nil {
		return err
	}
	return s.write(ctx, func(tx store.Tx) error {
		if err := tx.Lock(ctx, "network:"+id); err != nil {
			return err
		}
		if _, err := s.ownedNetwork(ctx, tx, c, id, "delete_network"); err != nil {
			return err
		}
		ports, err := tx.ListPorts(ctx, store.PortFilter{NetworkID: id})
		if err != nil {
			return err
		}
		for _, p := range ports {
			if p.DeviceOwner != model.OwnerDHCP {
				return errConflict("NetworkInUse",
					"Unable to complete operation on network %s. There are one or more ports still in use on the network.", id)
			}
		}
		subnets, err := tx.ListSubnets(ctx, store.SubnetFilter{NetworkIDs: []string{id}})
		if err != nil {
			return err
		}
		for _, sn := range subnets {
			if err := s.vpnBeforeSubnetDelete(ctx, tx, sn.ID); err != nil {
				return err
			}
		}
		for _, p := range ports {
			if err := tx.DeletePort(ctx, p.ID); err != nil {
				return err
			}
		}
		return tx.DeleteNetwork(ctx, id)
	})
}

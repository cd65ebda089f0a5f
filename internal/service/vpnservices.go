package service

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/neutrino-net/neutrino/internal/model"
	"github.com/neutrino-net/neutrino/internal/store"
)

func vpnServiceNotFound(id string) *Error {
	return errNotFound("VPNServiceNotFound", "VPNService %s could not be found", id)
}

func (s *Service) ownedVPNService(ctx context.Context, tx store.VPN, c caller, id string) (*model.VPNService, error) {
	v, err := tx.GetVPNService(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !c.owns(v.ProjectID)) {
		return nil, vpnServiceNotFound(id)
	}
	return v, err
}

// Providers returns the VPN service providers.
func (s *Service) Providers() []Provider { return s.opts.Providers.List() }

// gatewayIPs returns the first IPv4 and first IPv6 address of a router's
// gateway port ("" when there is none).
func gatewayIPs(ctx context.Context, tx store.Ports, r *model.Router) (v4, v6 string, err error) {
	if r.Gateway == nil {
		return "", "", nil
	}
	p, err := tx.GetPort(ctx, r.Gateway.PortID)
	if err != nil {
		return "", "", fmt.Errorf("gateway port of router %s: %w", r.ID, err)
	}
	for _, ip := range p.FixedIPs {
		if ip.IPAddress.Is4() && v4 == "" {
			v4 = ip.IPAddress.String()
		} else if ip.IPAddress.Is6() && v6 == "" {
			v6 = ip.IPAddress.String()
		}
	}
	return v4, v6, nil
}

// subnetOnRouter reports whether the router has an interface on the subnet.
func subnetOnRouter(ports []model.Port, subnetID string) bool {
	return slices.ContainsFunc(ports, func(p model.Port) bool {
		return p.DeviceOwner == model.OwnerRouterInterface &&
			slices.ContainsFunc(p.FixedIPs, func(ip model.FixedIP) bool { return ip.SubnetID == subnetID })
	})
}

// CreateVPNService creates a VPN service on a router with a gateway. A
// service without connections has nothing to bring up, so it starts DOWN
// rather than in the reference's everlasting PENDING_CREATE.
func (s *Service) CreateVPNService(ctx context.Context, v model.VPNService) (*model.VPNService, error) {
	c := who(ctx)
	if err := c.mayWrite("create_vpnservice"); err != nil {
		return nil, err
	}
	project, err := c.project(v.ProjectID)
	if err != nil {
		return nil, err
	}
	provider, err := s.opts.Providers.forFlavor(v.FlavorID)
	if err != nil {
		return nil, err
	}
	v.ID, v.ProjectID, v.Provider, v.Status = newID(), project, provider.Name, model.StatusDown
	s.stamp(&v.Standard)
	err = s.write(ctx, func(tx store.Tx) error {
		r, ports, err := s.lockedRouter(ctx, tx, c, v.RouterID)
		if err != nil {
			return err
		}
		if r.Gateway == nil {
			return errInvalid("RouterIsNotExternal", "Router %s has no external network gateway set", r.ID)
		}
		if v.SubnetID != "" && !subnetOnRouter(ports, v.SubnetID) {
			return errInvalid("SubnetIsNotConnectedToRouter", "Subnet %s is not connected to Router %s", v.SubnetID, r.ID)
		}
		if err := s.oneDeviceDriver(ctx, tx, r.ID, provider); err != nil {
			return err
		}
		if err := s.checkQuota(ctx, tx, "vpnservice", project, 1); err != nil {
			return err
		}
		if v.ExternalV4IP, v.ExternalV6IP, err = gatewayIPs(ctx, tx, r); err != nil {
			return err
		}
		return tx.CreateVPNService(ctx, &v)
	})
	if err != nil {
		return nil, err
	}
	s.notify(ctx, &v)
	return &v, nil
}

// oneDeviceDriver refuses a VPN service whose provider's device driver
// differs from that of a service the router already has (any project's):
// each driver runs its own IKE daemon in the router's namespace, and two
// daemons cannot share its gateway's IKE ports, so such a router's
// tunnels would not work. The reference accepts it; Neutrino says so at
// once (409). The caller holds the router's lock.
func (s *Service) oneDeviceDriver(ctx context.Context, tx store.VPN, routerID string, p Provider) error {
	vs, err := tx.ListVPNServices(ctx, store.VPNServiceFilter{RouterID: routerID})
	if err != nil {
		return err
	}
	for _, o := range vs {
		if other := s.opts.Providers.provider(o.Provider); other.Driver != p.Driver {
			return errConflict("VPNServiceDriverConflict",
				"Router %s has VPN services of provider %s (device driver %s); a VPN service of provider %s (device driver %s) cannot share the router: each device driver runs its own IKE daemon on the router's gateway address. Use another router.",
				routerID, other.Name, other.Driver, p.Name, p.Driver)
		}
	}
	return nil
}

// notify runs after a committed change to the VPN of v's router: the
// router's hosts get a hint (they fetch the router's state at once) and
// the service's driver is told.
func (s *Service) notify(ctx context.Context, v *model.VPNService) {
	s.hintRouters(ctx, v.RouterID)
	s.opts.Providers.driver(v.Provider).Notify(ctx, v.RouterID)
}

// GetVPNService returns a VPN service the caller owns.
func (s *Service) GetVPNService(ctx context.Context, id string) (*model.VPNService, error) {
	var out *model.VPNService
	err := s.read(ctx, func(tx store.Tx) error {
		var err error
		out, err = s.ownedVPNService(ctx, tx, who(ctx), id)
		return err
	})
	return out, err
}

// ListVPNServices returns the caller's VPN services.
func (s *Service) ListVPNServices(ctx context.Context, p store.Page) ([]model.VPNService, error) {
	var out []model.VPNService
	err := s.read(ctx, func(tx store.Tx) error {
		var err error
		out, err = tx.ListVPNServices(ctx, store.VPNServiceFilter{Scope: who(ctx).scope(), Page: p})
		return err
	})
	return out, err
}

// UpdateVPNService changes name, description or admin_state_up of a
// service in any state (the reference refuses PENDING_* ones).
func (s *Service) UpdateVPNService(ctx context.Context, id string, change func(*model.VPNService)) (*model.VPNService, error) {
	c := who(ctx)
	if err := c.mayWrite("update_vpnservice"); err != nil {
		return nil, err
	}
	var out *model.VPNService
	err := s.write(ctx, func(tx store.Tx) error {
		if err := tx.Lock(ctx, "vpnservice:"+id); err != nil {
			return err
		}
		old, err := s.ownedVPNService(ctx, tx, c, id)
		if err != nil {
			return err
		}
		v := *old
		change(&v)
		if model.IsPending(v.Status) {
			hosted, err := s.routerHostedAlive(ctx, tx, v.RouterID)
			if err != nil {
				return err
			}
			if !hosted {
				v.Status = model.StatusDown
			}
		}
		s.touch(&v.Standard)
		out = &v
		return tx.UpdateVPNService(ctx, &v)
	})
	if err == nil {
		s.notify(ctx, out)
	}
	return out, err
}

// DeleteVPNService deletes a service no connection uses.
func (s *Service) DeleteVPNService(ctx context.Context, id string) error {
	c := who(ctx)
	if err := c.mayWrite("delete_vpnservice"); err != nil {
		return err
	}
	var gone *model.VPNService
	inUse := errConflict("VPNServiceInUse", "VPNService %s is still in use", id)
	err := s.write(ctx, func(tx store.Tx) error {
		if err := tx.Lock(ctx, "vpnservice:"+id); err != nil {
			return err
		}
		v, err := s.ownedVPNService(ctx, tx, c, id)
		if err != nil {
			return err
		}
		conns, err := tx.ListConnections(ctx, store.ConnectionFilter{VPNServiceIDs: []string{id}})
		if err != nil {
			return err
		}
		if len(conns) > 0 {
			return inUse
		}
		gone = v
		if err := tx.DeleteVPNService(ctx, id); errors.Is(err, store.ErrReferenced) {
			return inUse
		} else if err != nil {
			return err
		}
		return nil
	})
	if err == nil {
		s.notify(ctx, gone)
	}
	return err
}

// vpnBeforeGatewayClear refuses to remove the gateway of a router that a
// VPN service uses (the reference's ROUTER_GATEWAY BEFORE_DELETE check).
func (s *Service) vpnBeforeGatewayClear(ctx context.Context, tx store.VPN, routerID string) error {
	vs, err := tx.ListVPNServices(ctx, store.VPNServiceFilter{RouterID: routerID})
	if err != nil || len(vs) == 0 {
		return err
	}
	ids := make([]string, len(vs))
	for i, v := range vs {
		ids[i] = v.ID
	}
	return errConflict("RouterInUse", "Router %s is currently used by VPN service(s) (%s)", routerID, strings.Join(ids, ", "))
}

// vpnAfterGatewayChange keeps external_v4_ip/external_v6_ip of a router's
// VPN services equal to its gateway addresses.
func (s *Service) vpnAfterGatewayChange(ctx context.Context, tx store.Tx, r *model.Router) ([]model.VPNService, error) {
	vs, err := tx.ListVPNServices(ctx, store.VPNServiceFilter{RouterID: r.ID})
	if err != nil || len(vs) == 0 {
		return nil, err
	}
	v4, v6, err := gatewayIPs(ctx, tx, r)
	if err != nil {
		return nil, err
	}
	var changed []model.VPNService
	for i := range vs {
		v := &vs[i]
		if v.ExternalV4IP == v4 && v.ExternalV6IP == v6 {
			continue
		}
		v.ExternalV4IP, v.ExternalV6IP = v4, v6
		s.touch(&v.Standard)
		if err := tx.UpdateVPNService(ctx, v); err != nil {
			return nil, err
		}
		changed = append(changed, *v)
	}
	return changed, nil
}

// vpnBeforeInterfaceRemove refuses to detach a subnet that a VPN service
// (legacy mode) or a connection's local endpoint group on the router uses.
func (s *Service) vpnBeforeInterfaceRemove(ctx context.Context, tx store.VPN, routerID string, subnetIDs []string) error {
	vs, err := tx.ListVPNServices(ctx, store.VPNServiceFilter{RouterID: routerID})
	if err != nil || len(vs) == 0 {
		return err
	}
	var svcIDs []string
	for _, v := range vs {
		if slices.Contains(subnetIDs, v.SubnetID) {
			return errConflict("SubnetInUseByVPNService", "Subnet %s is used by VPNService %s", v.SubnetID, v.ID)
		}
		svcIDs = append(svcIDs, v.ID)
	}
	conns, err := tx.ListConnections(ctx, store.ConnectionFilter{VPNServiceIDs: svcIDs})
	if err != nil {
		return err
	}
	for _, conn := range conns {
		if conn.LocalEPGroupID == "" {
			continue
		}
		g, err := tx.GetEndpointGroup(ctx, conn.LocalEPGroupID)
		if err != nil {
			return err
		}
		for _, sub := range subnetIDs {
			if slices.Contains(g.Endpoints, sub) {
				return errConflict("SubnetInUseByIPsecSiteConnection", "Subnet %s is used by ipsec site connection %s", sub, conn.ID)
			}
		}
	}
	return nil
}

// vpnBeforeSubnetDelete refuses to delete a subnet that a legacy VPN
// service names (its router interface is normally what holds the subnet,
// but an interface can go without the router API) or that an endpoint
// group lists; the reference wraps the latter in SubnetInUse.
func (s *Service) vpnBeforeSubnetDelete(ctx context.Context, tx store.VPN, subnetID string) error {
	vs, err := tx.ListVPNServices(ctx, store.VPNServiceFilter{SubnetID: subnetID})
	if err != nil {
		return err
	}
	if len(vs) > 0 {
		return errConflict("SubnetInUseByVPNService", "Subnet %s is used by VPNService %s", subnetID, vs[0].ID)
	}
	gs, err := tx.ListEndpointGroups(ctx, store.EndpointGroupFilter{Endpoint: subnetID})
	if err != nil {
		return err
	}
	for _, g := range gs {
		if g.Type == "subnet" {
			return subnetInUse(subnetID, fmt.Sprintf("Subnet %s is used by endpoint group %s", subnetID, g.ID))
		}
	}
	return nil
}

// versionOf returns the IP version of an address or prefix string.
func versionOf(s string) int {
	if p, err := netip.ParsePrefix(s); err == nil {
		if p.Addr().Is4() {
			return 4
		}
		return 6
	}
	if a, err := netip.ParseAddr(s); err == nil && a.Is4() {
		return 4
	}
	return 6
}

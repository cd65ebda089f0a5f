package service

import (
	"context"
	"fmt"
	"net/netip"
	"slices"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/neutrino-net/neutrino/internal/model"
	"github.com/neutrino-net/neutrino/internal/store"
)

// GatewayRequest is the external_gateway_info of a router request.
type GatewayRequest struct {
	NetworkID        string
	EnableSNAT       *bool           // nil: default (true) or unchanged
	ExternalFixedIPs []model.FixedIP // nil: default allocation or unchanged
}

// RouterView is a router with its gateway's addresses.
type RouterView struct {
	model.Router
	GatewayIPs []model.FixedIP
}

// InterfaceInfo is the body of add/remove_router_interface responses.
type InterfaceInfo struct {
	RouterID  string
	ProjectID string
	PortID    string
	NetworkID string
	SubnetID  string
	SubnetIDs []string
}

func routerNotFound(id string) *Error {
	return errNotFound("RouterNotFound", "Router %s could not be found", id)
}

func badRouter(format string, args ...any) *Error {
	return errInvalid("BadRequest", "Bad router request: %s.", fmt.Sprintf(format, args...))
}

func (s *Service) ownedRouter(ctx context.Context, tx store.Tx, c caller, id string) (*model.Router, error) {
	r, err := tx.GetRouter(ctx, id)
	if err != nil {
		return nil, notFound(err, "RouterNotFound", "Router %s could not be found", id)
	}
	if !c.owns(r.ProjectID) {
		return nil, routerNotFound(id)
	}
	return r, nil
}

// lockedRouter serialises changes to a router the caller owns and returns
// it with its ports (gateway and interfaces).
func (s *Service) lockedRouter(ctx context.Context, tx store.Tx, c caller, id string) (*model.Router, []model.Port, error) {
	if err := tx.Lock(ctx, "router:"+id); err != nil {
		return nil, nil, err
	}
	r, err := s.ownedRouter(ctx, tx, c, id)
	if err != nil {
		return nil, nil, err
	}
	ports, err := tx.ListPorts(ctx, store.PortFilter{RouterID: id})
	return r, ports, err
}

func (s *Service) routerView(ctx context.Context, tx store.Tx, r *model.Router) (*RouterView, error) {
	v := &RouterView{Router: *r}
	if r.Gateway != nil && r.Gateway.PortID != "" {
		p, err := tx.GetPort(ctx, r.Gateway.PortID)
		if err != nil {
			return nil, fmt.Errorf("gateway port of router %s: %w", r.ID, err)
		}
		v.GatewayIPs = p.FixedIPs
	}
	return v, nil
}

// CreateRouter creates a router, with its gateway port when gw is set.
func (s *Service) CreateRouter(ctx context.Context, r model.Router, gw *GatewayRequest) (*RouterView, error) {
	c := who(ctx)
	if err := c.mayWrite("create_router"); err != nil {
		return nil, err
	}
	project, err := c.project(r.ProjectID)
	if err != nil {
		return nil, err
	}
	if err := gatewayPolicy(c, gw, "create_router"); err != nil {
		return nil, err
	}
	r.ID, r.ProjectID, r.Status = newID(), project, model.StatusActive
	if r.Routes == nil {
		r.Routes = []model.Route{}
	}
	s.stamp(&r.Standard)
	var v *RouterView
	var host string
	err = s.write(ctx, func(tx store.Tx) error {
		if err := s.checkQuota(ctx, tx, "router", project, 1); err != nil {
			return err
		}
		if err := tx.CreateRouter(ctx, &r); err != nil {
			return err
		}
		if gw != nil {
			if err := s.setGateway(ctx, tx, c, &r, gw); err != nil {
				return err
			}
			if err := tx.UpdateRouter(ctx, &r); err != nil {
				return err
			}
		}
		if host, err = s.schedule(ctx, tx, r.ID); err != nil {
			return err
		}
		v, err = s.routerView(ctx, tx, &r)
		return err
	})
	if err == nil && host != "" {
		s.hint(ctx, []string{host}, agentv1.Hint{RouterIDs: []string{r.ID}})
	}
	return v, err
}

func gatewayPolicy(c caller, gw *GatewayRequest, action string) error {
	if gw == nil || c.admin {
		return nil
	}
	if gw.EnableSNAT != nil {
		return errForbidden(action + ":external_gateway_info:enable_snat")
	}
	if gw.ExternalFixedIPs != nil {
		return errForbidden(action + ":external_gateway_info:external_fixed_ips")
	}
	return nil
}

// setGateway makes r's gateway match gw, creating, moving or updating the
// gateway port. A nil gw removes the gateway.
func (s *Service) setGateway(ctx context.Context, tx store.Tx, c caller, r *model.Router, gw *GatewayRequest) error {
	old := r.Gateway
	if gw == nil || (old != nil && gw.NetworkID != old.NetworkID) {
		if err := s.floatingBeforeGatewayChange(ctx, tx, r); err != nil {
			return err
		}
	}
	if gw == nil {
		if old == nil {
			return nil
		}
		r.Gateway = nil
		if err := tx.UpdateRouter(ctx, r); err != nil {
			return err
		}
		return tx.DeletePort(ctx, old.PortID)
	}
	if err := tx.Lock(ctx, "network:"+gw.NetworkID); err != nil {
		return err
	}
	n, err := s.visibleNetwork(ctx, tx, c, gw.NetworkID)
	if err != nil {
		return err
	}
	if !n.External {
		return badRouter("Network %s is not an external network", n.ID)
	}
	snat := true
	if old != nil {
		snat = old.EnableSNAT
	}
	if gw.EnableSNAT != nil {
		snat = *gw.EnableSNAT
	}
	if old != nil && old.NetworkID == gw.NetworkID {
		r.Gateway = &model.RouterGateway{NetworkID: n.ID, PortID: old.PortID, EnableSNAT: snat}
		if gw.ExternalFixedIPs == nil {
			return nil
		}
		p, err := tx.GetPort(ctx, old.PortID)
		if err != nil {
			return err
		}
		want := slices.Clone(gw.ExternalFixedIPs)
		if p.FixedIPs, err = s.allocate(ctx, tx, n, p, want, p.FixedIPs); err != nil {
			return err
		}
		s.touch(&p.Standard)
		return tx.UpdatePort(ctx, p)
	}
	if old != nil {
		r.Gateway = nil
		if err := tx.UpdateRouter(ctx, r); err != nil {
			return err
		}
		if err := tx.DeletePort(ctx, old.PortID); err != nil {
			return err
		}
	}
	p := model.Port{
		ID: newID(), NetworkID: n.ID, AdminStateUp: true, Status: model.StatusDown,
		DeviceID: r.ID, DeviceOwner: model.OwnerRouterGateway, RouterID: r.ID, PortSecurityEnabled: false,
		SecurityGroups: []string{}, AllowedAddressPairs: []model.AddressPair{},
		BindingVNICType: "normal", BindingVIFType: "unbound", BindingProfile: map[string]any{}, BindingVIFDetails: map[string]any{},
	}
	s.stamp(&p.Standard)
	if p.MACAddress, err = s.newMAC(ctx, tx, n.ID); err != nil {
		return err
	}
	var want []model.FixedIP
	if gw.ExternalFixedIPs != nil {
		want = slices.Clone(gw.ExternalFixedIPs)
	}
	if p.FixedIPs, err = s.allocate(ctx, tx, n, &p, want, nil); err != nil {
		return err
	}
	if err := dupAsConflict(tx.CreatePort(ctx, &p), &p); err != nil {
		return err
	}
	r.Gateway = &model.RouterGateway{NetworkID: n.ID, PortID: p.ID, EnableSNAT: snat}
	return nil
}

// GetRouter returns a router the caller owns.
func (s *Service) GetRouter(ctx context.Context, id string) (*RouterView, error) {
	c := who(ctx)
	var v *RouterView
	err := s.read(ctx, func(tx store.Tx) error {
		r, err := s.ownedRouter(ctx, tx, c, id)
		if err != nil {
			return err
		}
		v, err = s.routerView(ctx, tx, r)
		return err
	})
	return v, err
}

// ListRouters returns the caller's routers.
func (s *Service) ListRouters(ctx context.Context, p store.Page) ([]RouterView, error) {
	c := who(ctx)
	var out []RouterView
	err := s.read(ctx, func(tx store.Tx) error {
		rs, err := tx.ListRouters(ctx, store.RouterFilter{Scope: c.scope(), Page: p})
		if err != nil {
			return err
		}
		var gwIDs []string
		for _, r := range rs {
			if r.Gateway != nil {
				gwIDs = append(gwIDs, r.Gateway.PortID)
			}
		}
		ips := map[string][]model.FixedIP{}
		if len(gwIDs) > 0 {
			ports, err := tx.ListPorts(ctx, store.PortFilter{IDs: gwIDs})
			if err != nil {
				return err
			}
			for _, p := range ports {
				ips[p.ID] = p.FixedIPs
			}
		}
		out = make([]RouterView, len(rs))
		for i, r := range rs {
			out[i] = RouterView{Router: r}
			if r.Gateway != nil {
				out[i].GatewayIPs = ips[r.Gateway.PortID]
			}
		}
		return nil
	})
	return out, err
}

// RouterUpdate says what a router PUT changes besides plain attributes.
type RouterUpdate struct {
	Change     func(*model.Router)
	GatewaySet bool
	Gateway    *GatewayRequest // with GatewaySet: nil clears the gateway
}

// UpdateRouter updates a router the caller owns.
func (s *Service) UpdateRouter(ctx context.Context, id string, u RouterUpdate) (*RouterView, error) {
	c := who(ctx)
	if err := c.mayWrite("update_router"); err != nil {
		return nil, err
	}
	if err := gatewayPolicy(c, u.Gateway, "update_router"); err != nil {
		return nil, err
	}
	var v *RouterView
	var moved []model.VPNService
	var hosts []string
	err := s.write(ctx, func(tx store.Tx) error {
		if err := tx.Lock(ctx, "router:"+id); err != nil {
			return err
		}
		var err error
		if hosts, err = s.routerHosts(ctx, tx, id); err != nil {
			return err
		}
		old, err := s.ownedRouter(ctx, tx, c, id)
		if err != nil {
			return err
		}
		r := *old
		if u.Change != nil {
			u.Change(&r)
		}
		if u.GatewaySet {
			// Clearing the gateway or moving it to another network deletes
			// the gateway port, which a VPN service on the router forbids.
			if old.Gateway != nil && (u.Gateway == nil || u.Gateway.NetworkID != old.Gateway.NetworkID) {
				if err := s.vpnBeforeGatewayClear(ctx, tx, id); err != nil {
					return err
				}
			}
			if err := s.setGateway(ctx, tx, c, &r, u.Gateway); err != nil {
				return err
			}
			if moved, err = s.vpnAfterGatewayChange(ctx, tx, &r); err != nil {
				return err
			}
		}
		if !slices.Equal(r.Routes, old.Routes) {
			if err := s.checkRoutes(ctx, tx, &r); err != nil {
				return err
			}
		}
		s.touch(&r.Standard)
		if err := tx.UpdateRouter(ctx, &r); err != nil {
			return err
		}
		v, err = s.routerView(ctx, tx, &r)
		return err
	})
	if err == nil {
		s.afterRouter(ctx, hosts, id, u.GatewaySet)
		for i := range moved { // afterRouter hinted the hosts already
			s.opts.Providers.driver(moved[i].Provider).Notify(ctx, moved[i].RouterID)
		}
	}
	return v, err
}

// afterRouter hints the hosts of a changed router; when the router's
// networks changed, every host resyncs (its VXLAN peers may change).
func (s *Service) afterRouter(ctx context.Context, hosts []string, routerID string, networksChanged bool) {
	if networksChanged {
		s.hintAll(ctx)
		return
	}
	s.hint(ctx, hosts, agentv1.Hint{RouterIDs: []string{routerID}})
}

// checkRoutes validates extra routes: each nexthop must be on a subnet the
// router is connected to and must not be one of the router's own addresses.
func (s *Service) checkRoutes(ctx context.Context, tx store.Tx, r *model.Router) error {
	if len(r.Routes) > MaxRoutes {
		return errInvalid("RoutesExhausted", "Unable to complete operation for %s. The number of routes exceeds the maximum %d.", r.ID, MaxRoutes)
	}
	ports, err := tx.ListPorts(ctx, store.PortFilter{RouterID: r.ID})
	if err != nil {
		return err
	}
	var nets []netip.Prefix
	own := map[netip.Addr]bool{}
	for _, p := range ports {
		for _, ip := range p.FixedIPs {
			own[ip.IPAddress] = true
			sn, err := tx.GetSubnet(ctx, ip.SubnetID)
			if err != nil {
				return err
			}
			nets = append(nets, sn.CIDR)
		}
	}
	for _, rt := range r.Routes {
		bad := func(reason string) error {
			return errInvalid("InvalidRoutes", "Invalid format for routes: [{'destination': '%s', 'nexthop': '%s'}], %s.", rt.Destination, rt.Nexthop, reason)
		}
		if rt.Destination.Addr().Is4() != rt.Nexthop.Is4() {
			return bad("the nexthop and destination must be of the same IP version")
		}
		if own[rt.Nexthop] {
			return bad("the nexthop is used by router")
		}
		if !slices.ContainsFunc(nets, func(p netip.Prefix) bool { return p.Contains(rt.Nexthop) }) {
			return bad("the nexthop is not connected with router")
		}
	}
	return nil
}

// DeleteRouter deletes a router without interfaces, with its gateway port.
func (s *Service) DeleteRouter(ctx context.Context, id string) error {
	c := who(ctx)
	if err := c.mayWrite("delete_router"); err != nil {
		return err
	}
	var hosts []string
	err := s.write(ctx, func(tx store.Tx) error {
		r, ports, err := s.lockedRouter(ctx, tx, c, id)
		if err != nil {
			return err
		}
		for _, p := range ports {
			if p.DeviceOwner == model.OwnerRouterInterface {
				return errConflict("RouterInUse", "Router %s still has ports", id)
			}
		}
		if hosts, err = s.routerHosts(ctx, tx, id); err != nil {
			return err
		}
		if err := s.vpnBeforeGatewayClear(ctx, tx, id); err != nil {
			return err
		}
		if err := s.setGateway(ctx, tx, c, r, nil); err != nil {
			return err
		}
		return tx.DeleteRouter(ctx, id)
	})
	if err == nil {
		s.afterRouter(ctx, hosts, id, true)
	}
	return err
}

// InterfaceRequest names a subnet or a port, as in the unwrapped body of
// add/remove_router_interface.
type InterfaceRequest struct {
	SubnetID string
	PortID   string
}

// AddInterface attaches a subnet (through a new port holding its gateway
// address) or an existing port to a router.
func (s *Service) AddInterface(ctx context.Context, routerID string, req InterfaceRequest) (*InterfaceInfo, error) {
	c := who(ctx)
	if err := c.mayWrite("add_router_interface"); err != nil {
		return nil, err
	}
	if req.SubnetID == "" && req.PortID == "" {
		return nil, badRouter("Either subnet_id or port_id must be specified")
	}
	if req.SubnetID != "" && req.PortID != "" {
		return nil, badRouter("Cannot specify both subnet-id and port-id")
	}
	var info *InterfaceInfo
	err := s.write(ctx, func(tx store.Tx) error {
		r, existing, err := s.lockedRouter(ctx, tx, c, routerID)
		if err != nil {
			return err
		}
		var p *model.Port
		if req.PortID != "" {
			p, err = s.ownedPort(ctx, tx, c, req.PortID)
			if err != nil {
				return err
			}
			if p.DeviceID != "" {
				return errConflict("PortInUse", "Unable to complete operation on port %s for network %s. Port already has an attached device %s.", p.ID, p.NetworkID, p.DeviceID)
			}
			if len(p.FixedIPs) == 0 {
				return badRouter("Router port must have at least one fixed IP")
			}
			v4 := 0
			for _, ip := range p.FixedIPs {
				if ip.IPAddress.Is4() {
					v4++
				}
			}
			if v4 > 1 {
				return badRouter("Cannot have multiple IPv4 subnets on router port")
			}
			for _, ip := range p.FixedIPs {
				sn, err := tx.GetSubnet(ctx, ip.SubnetID)
				if err != nil {
					return err
				}
				if sn.IPVersion == 6 && sn.IPv6RAMode == "" && sn.IPv6AddressMode != "" {
					return badRouter("IPv6 subnet %s configured to receive RAs from an external router cannot be added to Neutron Router", sn.ID)
				}
				if err := s.checkInterfaceSubnet(ctx, tx, r, existing, sn); err != nil {
					return err
				}
			}
			p.DeviceID, p.DeviceOwner, p.RouterID = r.ID, model.OwnerRouterInterface, r.ID
			s.touch(&p.Standard)
			if err := tx.UpdatePort(ctx, p); err != nil {
				return err
			}
		} else {
			sn, n, err := s.visibleSubnet(ctx, tx, c, req.SubnetID)
			if err != nil {
				return err
			}
			if !sn.GatewayIP.IsValid() {
				return badRouter("Subnet for router interface must have a gateway IP")
			}
			if !c.admin && sn.ProjectID != c.ProjectID {
				// As the reference: a globally shared subnet is another
				// project's, not one to wire into one's own router.
				return badRouter("Cannot add interface to router because subnet %s is not owned by project making the request", sn.ID)
			}
			if sn.IPVersion == 6 && sn.IPv6RAMode == "" && sn.IPv6AddressMode != "" {
				return badRouter("IPv6 subnet %s configured to receive RAs from an external router cannot be added to Neutron Router", sn.ID)
			}
			if err := s.checkInterfaceSubnet(ctx, tx, r, existing, sn); err != nil {
				return err
			}
			if err := tx.Lock(ctx, "network:"+n.ID); err != nil {
				return err
			}
			p = &model.Port{
				ID: newID(), ProjectID: sn.ProjectID, NetworkID: n.ID, AdminStateUp: true, Status: model.StatusDown,
				DeviceID: r.ID, DeviceOwner: model.OwnerRouterInterface, RouterID: r.ID, PortSecurityEnabled: n.PortSecurityEnabled,
				SecurityGroups: []string{}, AllowedAddressPairs: []model.AddressPair{},
				BindingVNICType: "normal", BindingVIFType: "unbound", BindingProfile: map[string]any{}, BindingVIFDetails: map[string]any{},
			}
			s.stamp(&p.Standard)
			if p.MACAddress, err = s.newMAC(ctx, tx, n.ID); err != nil {
				return err
			}
			if p.FixedIPs, err = s.allocate(ctx, tx, n, p, []model.FixedIP{{SubnetID: sn.ID, IPAddress: sn.GatewayIP}}, nil); err != nil {
				return err
			}
			if err := dupAsConflict(tx.CreatePort(ctx, p), p); err != nil {
				return err
			}
		}
		info = interfaceInfo(r, p)
		return nil
	})
	if err == nil {
		s.afterRouter(ctx, nil, routerID, true)
	}
	return info, err
}

// checkInterfaceSubnet refuses a second port on a subnet and overlapping
// subnets on one router.
func (s *Service) checkInterfaceSubnet(ctx context.Context, tx store.Tx, r *model.Router, existing []model.Port, sn *model.Subnet) error {
	for _, p := range existing {
		if p.DeviceOwner != model.OwnerRouterInterface {
			continue
		}
		for _, ip := range p.FixedIPs {
			if ip.SubnetID == sn.ID {
				return badRouter("Router already has a port on subnet %s", sn.ID)
			}
			other, err := tx.GetSubnet(ctx, ip.SubnetID)
			if err != nil {
				return err
			}
			if other.CIDR.Overlaps(sn.CIDR) {
				return badRouter("Cidr %s of subnet %s overlaps with cidr %s of subnet %s", sn.CIDR, sn.ID, other.CIDR, other.ID)
			}
		}
	}
	return nil
}

func interfaceInfo(r *model.Router, p *model.Port) *InterfaceInfo {
	info := &InterfaceInfo{RouterID: r.ID, ProjectID: r.ProjectID, PortID: p.ID, NetworkID: p.NetworkID, SubnetIDs: []string{}}
	for _, ip := range p.FixedIPs {
		info.SubnetIDs = append(info.SubnetIDs, ip.SubnetID)
	}
	if len(info.SubnetIDs) > 0 {
		info.SubnetID = info.SubnetIDs[0]
	}
	return info
}

// RemoveInterface detaches a subnet or a port from a router.
func (s *Service) RemoveInterface(ctx context.Context, routerID string, req InterfaceRequest) (*InterfaceInfo, error) {
	c := who(ctx)
	if err := c.mayWrite("remove_router_interface"); err != nil {
		return nil, err
	}
	if req.SubnetID == "" && req.PortID == "" {
		return nil, badRouter("Either subnet_id or port_id must be specified")
	}
	var info *InterfaceInfo
	err := s.write(ctx, func(tx store.Tx) error {
		r, ports, err := s.lockedRouter(ctx, tx, c, routerID)
		if err != nil {
			return err
		}
		var port *model.Port
		for i := range ports {
			p := &ports[i]
			if p.DeviceOwner != model.OwnerRouterInterface {
				continue
			}
			onSubnet := slices.ContainsFunc(p.FixedIPs, func(ip model.FixedIP) bool { return ip.SubnetID == req.SubnetID })
			if (req.PortID != "" && p.ID == req.PortID) || (req.PortID == "" && onSubnet) {
				port = p
				break
			}
		}
		switch {
		case port == nil && req.PortID != "":
			return errNotFound("RouterInterfaceNotFound", "Router %s does not have an interface with id %s", r.ID, req.PortID)
		case port == nil:
			if _, _, err := s.visibleSubnet(ctx, tx, c, req.SubnetID); err != nil {
				return err
			}
			return errNotFound("RouterInterfaceNotFoundForSubnet", "Router %s has no interface on subnet %s", r.ID, req.SubnetID)
		case req.SubnetID != "" && !slices.ContainsFunc(port.FixedIPs, func(ip model.FixedIP) bool { return ip.SubnetID == req.SubnetID }):
			return errInvalid("SubnetMismatchForPort", "Subnet %s does not match port %s", req.SubnetID, port.ID)
		}
		for _, ip := range port.FixedIPs {
			sn, err := tx.GetSubnet(ctx, ip.SubnetID)
			if err != nil {
				return err
			}
			for _, rt := range r.Routes {
				if sn.CIDR.Contains(rt.Nexthop) {
					return errConflict("RouterInterfaceInUseByRoute",
						"Router interface for subnet %s on router %s cannot be deleted, as it is required by one or more routes.", sn.ID, r.ID)
				}
			}
		}
		info = interfaceInfo(r, port)
		if err := s.vpnBeforeInterfaceRemove(ctx, tx, r.ID, info.SubnetIDs); err != nil {
			return err
		}
		if err := s.floatingBeforeInterfaceRemove(ctx, tx, r.ID, info.SubnetIDs); err != nil {
			return err
		}
		return tx.DeletePort(ctx, port.ID)
	})
	if err == nil {
		s.afterRouter(ctx, nil, routerID, true)
	}
	return info, err
}

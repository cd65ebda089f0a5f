package service

import (
	"context"
	"errors"
	"net/netip"
	"slices"

	"github.com/neutrino-net/neutrino/internal/model"
	"github.com/neutrino-net/neutrino/internal/store"
)

// FloatingIPRequest is a floating IP's create or update body; nil fields
// were not given.
type FloatingIPRequest struct {
	ProjectID         string
	FloatingNetworkID string
	FloatingIPAddress *netip.Addr
	SubnetID          string
	// PortID: nil not given, "" dissociate (null), else associate.
	PortID         *string
	FixedIPAddress *netip.Addr
	Description    *string
}

// PortDetails is the associated port as the fip-port-details extension
// shows it.
type PortDetails struct {
	Name, NetworkID, MACAddress, Status, DeviceID, DeviceOwner string
	AdminStateUp                                               bool
}

// FloatingIPView is a floating IP with its port's details.
type FloatingIPView struct {
	model.FloatingIP
	Port *PortDetails
}

func badFloatingIP(format string, args ...any) *Error {
	return errInvalid("BadRequest", "Bad floatingip request: "+format, args...)
}

func floatingIPNotFound(id string) *Error {
	return errNotFound("FloatingIPNotFound", "Floating IP %s could not be found", id)
}

// ownedFloatingIP returns the floating IP if the caller owns it (404
// otherwise, as the reference hides others' floating IPs).
func (s *Service) ownedFloatingIP(ctx context.Context, tx store.Tx, c caller, id string) (*model.FloatingIP, error) {
	f, err := tx.GetFloatingIP(ctx, id)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, floatingIPNotFound(id)
		}
		return nil, err
	}
	if !c.owns(f.ProjectID) {
		return nil, floatingIPNotFound(id)
	}
	return f, nil
}

// lockedFloatingIP locks the floating IP and returns it if the caller
// owns it.
func (s *Service) lockedFloatingIP(ctx context.Context, tx store.Tx, c caller, id string) (*model.FloatingIP, error) {
	if err := tx.Lock(ctx, "floatingip:"+id); err != nil {
		return nil, err
	}
	return s.ownedFloatingIP(ctx, tx, c, id)
}

// CreateFloatingIP allocates an address of an external network, on a port
// of its own, and associates it when a port is given.
func (s *Service) CreateFloatingIP(ctx context.Context, req FloatingIPRequest) (*FloatingIPView, error) {
	c := who(ctx)
	if err := c.mayWrite("create_floatingip"); err != nil {
		return nil, err
	}
	project, err := c.project(req.ProjectID)
	if err != nil {
		return nil, err
	}
	if req.FloatingIPAddress != nil && !c.admin {
		return nil, errForbidden("create_floatingip:floating_ip_address")
	}
	f := model.FloatingIP{ID: newID(), ProjectID: project, FloatingNetworkID: req.FloatingNetworkID, Status: model.StatusDown}
	if req.Description != nil {
		f.Description = *req.Description
	}
	s.stamp(&f.Standard)
	var v *FloatingIPView
	err = s.write(ctx, func(tx store.Tx) error {
		if err := tx.Lock(ctx, "network:"+f.FloatingNetworkID); err != nil {
			return err
		}
		n, err := s.visibleNetwork(ctx, tx, c, f.FloatingNetworkID)
		if err != nil {
			return err
		}
		if !n.External {
			return badFloatingIP("Network %s is not a valid external network.", n.ID)
		}
		if err := s.checkQuota(ctx, tx, "floatingip", project, 1); err != nil {
			return err
		}
		want, err := s.floatingWant(ctx, tx, n, req)
		if err != nil {
			return err
		}
		p := model.Port{
			ID: newID(), NetworkID: n.ID, AdminStateUp: true, Status: model.StatusDown,
			DeviceID: f.ID, DeviceOwner: model.OwnerFloatingIP, PortSecurityEnabled: false,
			SecurityGroups: []string{}, AllowedAddressPairs: []model.AddressPair{},
			BindingVNICType: "normal", BindingVIFType: "unbound", BindingProfile: map[string]any{}, BindingVIFDetails: map[string]any{},
		}
		s.stamp(&p.Standard)
		if p.MACAddress, err = s.newMAC(ctx, tx, n.ID); err != nil {
			return err
		}
		if p.FixedIPs, err = s.allocate(ctx, tx, n, &p, want, nil); err != nil {
			return err
		}
		if err := dupAsConflict(tx.CreatePort(ctx, &p), &p); err != nil {
			return err
		}
		f.FloatingPortID, f.FloatingIPAddress = p.ID, p.FixedIPs[0].IPAddress
		if req.PortID != nil && *req.PortID != "" {
			if err := s.associate(ctx, tx, c, &f, *req.PortID, req.FixedIPAddress); err != nil {
				return err
			}
		}
		if err := tx.CreateFloatingIP(ctx, &f); err != nil {
			return s.floatingConflict(err, &f)
		}
		v, err = s.floatingView(ctx, tx, &f)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.afterFloatingIP(ctx, "", f.RouterID)
	return v, nil
}

// floatingWant is what to allocate for a new floating IP: the address or
// subnet asked for, else the network's first IPv4 subnet.
func (s *Service) floatingWant(ctx context.Context, tx store.Tx, n *model.Network, req FloatingIPRequest) ([]model.FixedIP, error) {
	subnets, err := tx.ListSubnets(ctx, store.SubnetFilter{NetworkIDs: []string{n.ID}})
	if err != nil {
		return nil, err
	}
	var v4 []model.Subnet
	for _, sn := range subnets {
		if sn.CIDR.Addr().Is4() {
			v4 = append(v4, sn)
		}
	}
	switch {
	case req.FloatingIPAddress != nil:
		if !req.FloatingIPAddress.Is4() {
			return nil, badFloatingIP("Floating IP %s is not an IPv4 address.", req.FloatingIPAddress)
		}
		return []model.FixedIP{{SubnetID: req.SubnetID, IPAddress: *req.FloatingIPAddress}}, nil
	case req.SubnetID != "":
		if !slices.ContainsFunc(v4, func(sn model.Subnet) bool { return sn.ID == req.SubnetID }) {
			return nil, badFloatingIP("Subnet %s is not an IPv4 subnet of network %s.", req.SubnetID, n.ID)
		}
		return []model.FixedIP{{SubnetID: req.SubnetID}}, nil
	case len(v4) == 0:
		return nil, badFloatingIP("Network %s does not contain any IPv4 subnet.", n.ID)
	}
	return []model.FixedIP{{SubnetID: v4[0].ID}}, nil
}

// associate points f at one IPv4 fixed IP of port portID, reached from
// f's external network through a router with a gateway on it and an
// interface on the fixed IP's subnet.
func (s *Service) associate(ctx context.Context, tx store.Tx, c caller, f *model.FloatingIP, portID string, fixed *netip.Addr) error {
	if err := tx.Lock(ctx, "port:"+portID); err != nil {
		return err
	}
	p, err := tx.GetPort(ctx, portID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !c.owns(p.ProjectID) && !c.admin) {
		return errNotFound("PortNotFound", "Port %s could not be found.", portID)
	} else if err != nil {
		return err
	}
	if p.ProjectID != f.ProjectID && !c.admin {
		return badFloatingIP("Cannot process floating IP association with Port %s, since that port is owned by a different project.", portID)
	}
	if len(p.DeviceOwner) > 8 && p.DeviceOwner[:8] == "network:" {
		return badFloatingIP("Port %s has owner %s and therefore cannot be associated with a floating IP.", portID, p.DeviceOwner)
	}
	var v4 []model.FixedIP
	for _, ip := range p.FixedIPs {
		if ip.IPAddress.Is4() {
			v4 = append(v4, ip)
		}
	}
	var chosen model.FixedIP
	switch {
	case len(v4) == 0:
		return badFloatingIP("Cannot add floating IP to port %s that has no fixed IPv4 addresses.", portID)
	case fixed != nil:
		i := slices.IndexFunc(v4, func(ip model.FixedIP) bool { return ip.IPAddress == *fixed })
		if i < 0 {
			return badFloatingIP("Port %s does not have fixed ip %s.", portID, fixed)
		}
		chosen = v4[i]
	case len(v4) > 1:
		return badFloatingIP("Port %s has multiple fixed IPv4 addresses. Must provide a specific IPv4 address when assigning a floating IP.", portID)
	default:
		chosen = v4[0]
	}
	routerID, err := s.routerFor(ctx, tx, p.NetworkID, chosen.SubnetID, f.FloatingNetworkID)
	if err != nil {
		return err
	}
	if routerID == "" {
		return errNotFound("ExternalGatewayForFloatingIPNotFound",
			"External network %s is not reachable from subnet %s.  Therefore, cannot associate Port %s with a Floating IP.",
			f.FloatingNetworkID, chosen.SubnetID, portID)
	}
	f.PortID, f.FixedIPAddress, f.RouterID = portID, chosen.IPAddress, routerID
	return nil
}

// routerFor finds a router with an interface on subnet (of network) and a
// gateway on the external network.
func (s *Service) routerFor(ctx context.Context, tx store.Tx, network, subnet, external string) (string, error) {
	ports, err := tx.ListPorts(ctx, store.PortFilter{NetworkID: network})
	if err != nil {
		return "", err
	}
	var candidates []string
	for _, rp := range ports {
		if rp.RouterID == "" || rp.DeviceOwner != model.OwnerRouterInterface {
			continue
		}
		if slices.ContainsFunc(rp.FixedIPs, func(ip model.FixedIP) bool { return ip.SubnetID == subnet }) {
			candidates = append(candidates, rp.RouterID)
		}
	}
	slices.Sort(candidates)
	for _, id := range slices.Compact(candidates) {
		r, err := tx.GetRouter(ctx, id)
		if err != nil {
			return "", err
		}
		if r.Gateway != nil && r.Gateway.NetworkID == external {
			return r.ID, nil
		}
	}
	return "", nil
}

// floatingConflict turns a fixed IP's second floating IP into the
// reference's conflict.
func (s *Service) floatingConflict(err error, f *model.FloatingIP) error {
	if errors.Is(err, store.ErrDuplicate) {
		return errConflict("FloatingIPPortAlreadyAssociated",
			"Cannot associate floating IP %s (%s) with port %s using fixed IP %s, as that fixed IP already has a floating IP on external network %s.",
			f.FloatingIPAddress, f.ID, f.PortID, f.FixedIPAddress, f.FloatingNetworkID)
	}
	return err
}

func (s *Service) floatingView(ctx context.Context, tx store.Tx, f *model.FloatingIP) (*FloatingIPView, error) {
	v := &FloatingIPView{FloatingIP: *f}
	if f.PortID == "" {
		return v, nil
	}
	p, err := tx.GetPort(ctx, f.PortID)
	if err != nil {
		return nil, err
	}
	v.Port = &PortDetails{Name: p.Name, NetworkID: p.NetworkID, MACAddress: p.MACAddress, Status: p.Status,
		DeviceID: p.DeviceID, DeviceOwner: p.DeviceOwner, AdminStateUp: p.AdminStateUp}
	return v, nil
}

// GetFloatingIP returns a floating IP the caller owns.
func (s *Service) GetFloatingIP(ctx context.Context, id string) (*FloatingIPView, error) {
	c := who(ctx)
	var v *FloatingIPView
	err := s.read(ctx, func(tx store.Tx) error {
		f, err := s.ownedFloatingIP(ctx, tx, c, id)
		if err != nil {
			return err
		}
		v, err = s.floatingView(ctx, tx, f)
		return err
	})
	return v, err
}

// ListFloatingIPs returns the caller's floating IPs.
func (s *Service) ListFloatingIPs(ctx context.Context, p store.Page) ([]FloatingIPView, error) {
	c := who(ctx)
	var out []FloatingIPView
	err := s.read(ctx, func(tx store.Tx) error {
		fs, err := tx.ListFloatingIPs(ctx, store.FloatingIPFilter{Scope: c.scope(), Page: p})
		if err != nil {
			return err
		}
		out = make([]FloatingIPView, 0, len(fs))
		for i := range fs {
			v, err := s.floatingView(ctx, tx, &fs[i])
			if err != nil {
				return err
			}
			out = append(out, *v)
		}
		return nil
	})
	return out, err
}

// UpdateFloatingIP associates, re-associates or dissociates a floating IP
// and changes its description.
func (s *Service) UpdateFloatingIP(ctx context.Context, id string, req FloatingIPRequest) (*FloatingIPView, error) {
	c := who(ctx)
	if err := c.mayWrite("update_floatingip"); err != nil {
		return nil, err
	}
	var v *FloatingIPView
	var oldRouter, newRouter string
	err := s.write(ctx, func(tx store.Tx) error {
		f, err := s.lockedFloatingIP(ctx, tx, c, id)
		if err != nil {
			return err
		}
		oldRouter = f.RouterID
		if req.Description != nil {
			f.Description = *req.Description
		}
		switch {
		case req.PortID != nil && *req.PortID == "":
			dissociate(f)
		case req.PortID != nil:
			if err := s.associate(ctx, tx, c, f, *req.PortID, req.FixedIPAddress); err != nil {
				return err
			}
		case req.FixedIPAddress != nil:
			return badFloatingIP("fixed_ip_address cannot be specified without a port_id.")
		}
		newRouter = f.RouterID
		s.touch(&f.Standard)
		if err := tx.UpdateFloatingIP(ctx, f); err != nil {
			return s.floatingConflict(err, f)
		}
		v, err = s.floatingView(ctx, tx, f)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.afterFloatingIP(ctx, oldRouter, newRouter)
	return v, nil
}

// DeleteFloatingIP releases the address and its port.
func (s *Service) DeleteFloatingIP(ctx context.Context, id string) error {
	c := who(ctx)
	if err := c.mayWrite("delete_floatingip"); err != nil {
		return err
	}
	var router string
	err := s.write(ctx, func(tx store.Tx) error {
		f, err := s.lockedFloatingIP(ctx, tx, c, id)
		if err != nil {
			return err
		}
		router = f.RouterID
		if err := tx.DeleteFloatingIP(ctx, id); err != nil {
			return err
		}
		return tx.DeletePort(ctx, f.FloatingPortID)
	})
	if err == nil {
		s.afterFloatingIP(ctx, router, "")
	}
	return err
}

// dissociatePort dissociates the floating IPs of a port about to go, as
// the reference does when a port is deleted.
func (s *Service) dissociatePort(ctx context.Context, tx store.Tx, portID string) ([]string, error) {
	fs, err := tx.ListFloatingIPs(ctx, store.FloatingIPFilter{PortIDs: []string{portID}})
	if err != nil {
		return nil, err
	}
	var routers []string
	for i := range fs {
		f := &fs[i]
		routers = append(routers, f.RouterID)
		dissociate(f)
		s.touch(&f.Standard)
		if err := tx.UpdateFloatingIP(ctx, f); err != nil {
			return nil, err
		}
	}
	return routers, nil
}

// afterFloatingIP hints the hosts of the routers whose floating IPs
// changed.
func (s *Service) afterFloatingIP(ctx context.Context, routers ...string) {
	s.hintRouters(ctx, slices.DeleteFunc(slices.Clone(routers), func(r string) bool { return r == "" })...)
}

// floatingBeforeInterfaceRemove refuses to remove a router's interface on
// a subnet whose fixed IPs have floating IPs through the router.
func (s *Service) floatingBeforeInterfaceRemove(ctx context.Context, tx store.Tx, routerID string, subnets []string) error {
	fs, err := tx.ListFloatingIPs(ctx, store.FloatingIPFilter{RouterIDs: []string{routerID}})
	if err != nil {
		return err
	}
	for _, f := range fs {
		p, err := tx.GetPort(ctx, f.PortID)
		if err != nil {
			return err
		}
		for _, ip := range p.FixedIPs {
			if ip.IPAddress == f.FixedIPAddress && slices.Contains(subnets, ip.SubnetID) {
				return errConflict("RouterInterfaceInUseByFloatingIP",
					"Router interface for subnet %s on router %s cannot be deleted, as it is required by one or more floating IPs.",
					ip.SubnetID, routerID)
			}
		}
	}
	return nil
}

// floatingBeforeGatewayChange refuses to clear or move the gateway of a
// router that floating IPs go through.
func (s *Service) floatingBeforeGatewayChange(ctx context.Context, tx store.Tx, r *model.Router) error {
	if r.Gateway == nil {
		return nil
	}
	fs, err := tx.ListFloatingIPs(ctx, store.FloatingIPFilter{RouterIDs: []string{r.ID}})
	if err != nil || len(fs) == 0 {
		return err
	}
	return errConflict("RouterExternalGatewayInUseByFloatingIp",
		"Gateway cannot be updated for router %s, since a gateway to external network %s is required by one or more floating IPs.",
		r.ID, r.Gateway.NetworkID)
}

// dissociate clears f's association.
func dissociate(f *model.FloatingIP) {
	f.PortID, f.FixedIPAddress, f.RouterID, f.Status = "", netip.Addr{}, "", model.StatusDown
}

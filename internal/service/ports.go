package service

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"

	"github.com/neutrino-net/neutrino/internal/ipam"
	"github.com/neutrino-net/neutrino/internal/model"
	"github.com/neutrino-net/neutrino/internal/store"
)

// PortCreate is a port request; the *Set flags say which optional
// attributes the client gave, since their defaults depend on other rows.
type PortCreate struct {
	model.Port
	FixedIPsSet       bool
	MACSet            bool
	PortSecuritySet   bool
	SecurityGroupsSet bool
}

func portNotFound(id string) *Error {
	return errNotFound("PortNotFound", "Port %s could not be found.", id)
}

func (s *Service) ownedPort(ctx context.Context, tx store.Ports, c caller, id string) (*model.Port, error) {
	p, err := tx.GetPort(ctx, id)
	if err != nil {
		return nil, notFound(err, "PortNotFound", "Port %s could not be found.", id)
	}
	if !c.owns(p.ProjectID) {
		return nil, portNotFound(id)
	}
	return p, nil
}

// CreatePort creates a port on a network the caller owns or that is shared.
func (s *Service) CreatePort(ctx context.Context, req PortCreate) (*model.Port, error) {
	c := who(ctx)
	if err := c.mayWrite("create_port"); err != nil {
		return nil, err
	}
	p := req.Port
	project, err := c.project(p.ProjectID)
	if err != nil {
		return nil, err
	}
	if (p.BindingHostID != "" || len(p.BindingProfile) > 0) && !c.admin {
		return nil, errForbidden("create_port:binding:host_id")
	}
	p.ID, p.ProjectID, p.Status = newID(), project, model.StatusDown
	if p.BindingVNICType == "" {
		p.BindingVNICType = "normal"
	}
	p.BindingVIFType = "unbound"
	if p.BindingProfile == nil {
		p.BindingProfile = map[string]any{}
	}
	p.BindingVIFDetails = map[string]any{}
	s.stamp(&p.Standard)
	err = s.write(ctx, func(tx store.Tx) error {
		if err := tx.Lock(ctx, "network:"+p.NetworkID); err != nil {
			return err
		}
		n, err := s.visibleNetwork(ctx, tx, c, p.NetworkID)
		if err != nil {
			return err
		}
		if !c.owns(n.ProjectID) && !n.Shared {
			return errForbidden("create_port")
		}
		if err := checkDevice(ctx, tx, c, "create_port", &p, n); err != nil {
			return err
		}
		if req.MACSet {
			if !c.owns(n.ProjectID) {
				return errForbidden("create_port:mac_address")
			}
			if err := macFree(ctx, tx, n.ID, p.MACAddress); err != nil {
				return err
			}
		} else if p.MACAddress, err = s.newMAC(ctx, tx, n.ID); err != nil {
			return err
		}
		if !req.PortSecuritySet {
			p.PortSecurityEnabled = n.PortSecurityEnabled
		}
		if !req.SecurityGroupsSet {
			p.SecurityGroups = []string{}
			if p.PortSecurityEnabled && !strings.HasPrefix(p.DeviceOwner, "network:") {
				sg, err := s.ensureDefaultSG(ctx, tx, project)
				if err != nil {
					return err
				}
				p.SecurityGroups = []string{sg}
			}
		}
		if err := s.checkPortSecurity(ctx, tx, c, &p); err != nil {
			return err
		}
		if err := checkStatefulMix(ctx, tx, p.SecurityGroups); err != nil {
			return err
		}
		if err := s.checkQuota(ctx, tx, "port", project, 1); err != nil {
			return err
		}
		var want []model.FixedIP
		if req.FixedIPsSet {
			want = p.FixedIPs
			if want == nil {
				want = []model.FixedIP{}
			}
		}
		if p.FixedIPs, err = s.allocate(ctx, tx, n, &p, want, nil); err != nil {
			return err
		}
		return dupAsConflict(tx.CreatePort(ctx, &p), &p)
	})
	if err != nil {
		return nil, err
	}
	if p.BindingHostID != "" {
		s.hintAll(ctx)
	}
	s.hintDHCP(ctx, p.NetworkID)
	return &p, nil
}

// checkDevice enforces who may point port p on network n at a device,
// for action create_port or update_port: a network:* device_owner needs
// the network's owner (the reference's <action>:device_owner policy), and
// a device_id that names a router must name one of the port's project
// (the reference's DeviceIDNotOwnedByTenant). Admins may do either.
func checkDevice(ctx context.Context, tx store.Routers, c caller, action string, p *model.Port, n *model.Network) error {
	if c.admin {
		return nil
	}
	if strings.HasPrefix(p.DeviceOwner, "network:") && !c.owns(n.ProjectID) {
		return errForbidden(action + ":device_owner")
	}
	if p.DeviceID == "" {
		return nil
	}
	r, err := tx.GetRouter(ctx, p.DeviceID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil
	case err != nil:
		return err
	case r.ProjectID != p.ProjectID:
		return errDenied("DeviceIDNotOwnedByTenant",
			"The following device_id %s is not owned by your tenant or matches another tenants router.", p.DeviceID)
	}
	return nil
}

// dupAsConflict turns a uniqueness failure that the locks should have
// prevented into a 409 rather than a 500.
func dupAsConflict(err error, p *model.Port) error {
	if errors.Is(err, store.ErrDuplicate) {
		return errConflict("IpAddressAlreadyAllocated", "Unable to complete operation for network %s: an address or MAC of port %s is already in use.", p.NetworkID, p.ID)
	}
	return err
}

func macFree(ctx context.Context, tx store.Ports, networkID, mac string) error {
	used, err := tx.MACInUse(ctx, networkID, mac)
	if err != nil {
		return err
	}
	if used {
		return errConflict("MacAddressInUse", "Unable to complete operation for network %s. The mac address %s is in use.", networkID, mac)
	}
	return nil
}

func (s *Service) newMAC(ctx context.Context, tx store.Ports, networkID string) (string, error) {
	for range 16 {
		mac := ipam.RandomMAC(s.opts.MACPrefix)
		used, err := tx.MACInUse(ctx, networkID, mac)
		if err != nil {
			return "", err
		}
		if !used {
			return mac, nil
		}
	}
	return "", errConflict("MacAddressGenerationFailure", "Unable to generate unique mac on network %s.", networkID)
}

// checkPortSecurity validates security groups and allowed address pairs
// against the port's port_security_enabled.
func (s *Service) checkPortSecurity(ctx context.Context, tx store.SecurityGroups, c caller, p *model.Port) error {
	if !p.PortSecurityEnabled && len(p.SecurityGroups) > 0 {
		return errInvalid("PortSecurityAndIPRequiredForSecurityGroups",
			"Port security must be enabled and port must have an IP address in order to use security groups.")
	}
	for _, id := range p.SecurityGroups {
		g, err := tx.GetSecurityGroup(ctx, id)
		if err != nil || (!c.owns(g.ProjectID) && g.ProjectID != p.ProjectID) {
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			return sgNotFound(id)
		}
	}
	if len(p.AllowedAddressPairs) > 0 && !p.PortSecurityEnabled {
		return errConflict("AddressPairAndPortSecurityRequired",
			"Port Security must be enabled in order to have allowed address pairs on a port.")
	}
	if len(p.AllowedAddressPairs) > s.MaxAllowedAddressPairs() {
		return errInvalid("AllowedAddressPairExhausted",
			"The number of allowed address pair exceeds the maximum %d.", s.MaxAllowedAddressPairs())
	}
	seen := map[model.AddressPair]bool{}
	for i := range p.AllowedAddressPairs {
		ap := &p.AllowedAddressPairs[i]
		if ap.MACAddress == "" {
			ap.MACAddress = p.MACAddress
		}
		if seen[*ap] {
			return errInvalid("DuplicateAddressPairInRequest",
				"Request contains duplicate address pair: mac_address %s ip_address %s.", ap.MACAddress, ap.IPAddress)
		}
		seen[*ap] = true
	}
	return nil
}

// ipamTx is what address allocation reads and locks.
type ipamTx interface {
	store.Locker
	store.Networks
	store.Ports
}

// allocate returns the fixed IPs of port p on network n. want nil means
// the default (one IPv4 address, one stateful IPv6 address and every SLAAC
// address); otherwise each entry names a subnet, an address or both. keep
// holds the port's current addresses, which it may keep.
func (s *Service) allocate(ctx context.Context, tx ipamTx, n *model.Network, p *model.Port, want, keep []model.FixedIP) ([]model.FixedIP, error) {
	subnets, err := tx.ListSubnets(ctx, store.SubnetFilter{NetworkIDs: []string{n.ID}})
	if err != nil {
		return nil, err
	}
	byID := make(map[string]*model.Subnet, len(subnets))
	for i := range subnets {
		byID[subnets[i].ID] = &subnets[i]
	}
	// Resolve each request to a subnet first, so locks are taken in order.
	if want != nil {
		for i, w := range want {
			switch {
			case w.SubnetID != "":
				if byID[w.SubnetID] == nil {
					if _, err := tx.GetSubnet(ctx, w.SubnetID); err != nil {
						return nil, notFound(err, "SubnetNotFound", "Subnet %s could not be found.", w.SubnetID)
					}
					return nil, invalidOp("Failed to create port on network %s, because fixed_ips included invalid subnet %s", n.ID, w.SubnetID)
				}
			case w.IPAddress.IsValid():
				for _, sn := range subnets {
					if sn.CIDR.Contains(w.IPAddress) {
						want[i].SubnetID = sn.ID
						break
					}
				}
				if want[i].SubnetID == "" {
					return nil, errInvalid("InvalidIpForNetwork",
						"IP address %s is not a valid IP for any of the subnets on the specified network.", w.IPAddress)
				}
			}
		}
	}
	ids := make([]string, 0, len(subnets))
	for _, sn := range subnets {
		ids = append(ids, sn.ID)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if err := tx.Lock(ctx, "subnet:"+id); err != nil {
			return nil, err
		}
	}
	a := allocator{tx: tx, port: p, taken: map[string]map[netip.Addr]bool{}, mine: map[netip.Addr]bool{}}
	for _, k := range keep {
		a.mine[k.IPAddress] = true
	}
	if want == nil {
		return a.defaults(ctx, n, subnets)
	}
	out := make([]model.FixedIP, 0, len(want))
	for _, w := range want {
		sn := byID[w.SubnetID]
		if !w.IPAddress.IsValid() {
			if i := slices.IndexFunc(keep, func(k model.FixedIP) bool { return k.SubnetID == sn.ID }); i >= 0 &&
				!slices.ContainsFunc(out, func(o model.FixedIP) bool { return o == keep[i] }) {
				out = append(out, keep[i])
				continue
			}
		}
		ip, err := a.take(ctx, sn, w.IPAddress)
		if err != nil {
			return nil, err
		}
		if slices.Contains(out, ip) {
			return nil, invalidOp("Duplicate IP address '%s'", ip.IPAddress)
		}
		out = append(out, ip)
	}
	return out, nil
}

type allocator struct {
	tx    store.Ports
	port  *model.Port
	taken map[string]map[netip.Addr]bool // subnet -> taken by other ports
	mine  map[netip.Addr]bool            // the port's current addresses
}

func (a *allocator) load(ctx context.Context, subnetID string) (map[netip.Addr]bool, error) {
	if t, ok := a.taken[subnetID]; ok {
		return t, nil
	}
	ips, err := a.tx.AllocatedIPs(ctx, subnetID)
	if err != nil {
		return nil, err
	}
	t := make(map[netip.Addr]bool, len(ips))
	for _, ip := range ips {
		if !a.mine[ip] {
			t[ip] = true
		}
	}
	a.taken[subnetID] = t
	return t, nil
}

// take allocates ip (or any free address when ip is zero) on sn.
func (a *allocator) take(ctx context.Context, sn *model.Subnet, ip netip.Addr) (model.FixedIP, error) {
	taken, err := a.load(ctx, sn.ID)
	if err != nil {
		return model.FixedIP{}, err
	}
	if sn.Auto() {
		if ip.IsValid() && a.port.DeviceOwner != model.OwnerRouterInterface {
			return model.FixedIP{}, invalidOp("IPv6 address %s cannot be directly assigned to a port on subnet %s as the subnet is configured for automatic addresses", ip, sn.ID)
		}
		if !ip.IsValid() {
			if ip, err = ipam.EUI64(sn.CIDR, a.port.MACAddress); err != nil {
				return model.FixedIP{}, err
			}
		}
	}
	if !ip.IsValid() {
		got, ok := ipam.NextFree(sn.AllocationPools, func(a netip.Addr) bool { return taken[a] })
		if !ok {
			return model.FixedIP{}, errConflict("IpAddressGenerationFailure", "No more IP addresses available for subnet %s.", sn.ID)
		}
		taken[got] = true
		return model.FixedIP{SubnetID: sn.ID, IPAddress: got}, nil
	}
	first, last := ipam.First(sn.CIDR), ipam.Last(sn.CIDR)
	if !sn.CIDR.Contains(ip) || (first != last && sn.CIDR.Bits() < 31 && (ip == first || (ip.Is4() && ip == last))) {
		return model.FixedIP{}, errInvalid("InvalidIpForSubnet", "IP address %s is not a valid IP for the specified subnet.", ip)
	}
	// The gateway address is free until a port takes it: as in the
	// reference, any port may, and a router interface added by port then
	// serves it (Terraform's usual pattern).
	if taken[ip] {
		return model.FixedIP{}, errConflict("IpAddressAlreadyAllocated", "IP address %s already allocated in subnet %s", ip, sn.ID)
	}
	taken[ip] = true
	return model.FixedIP{SubnetID: sn.ID, IPAddress: ip}, nil
}

// defaults gives one address from the first IPv4 subnet with room, one from
// the first stateful IPv6 subnet with room, and every automatic address.
func (a *allocator) defaults(ctx context.Context, n *model.Network, subnets []model.Subnet) ([]model.FixedIP, error) {
	out := []model.FixedIP{}
	var v4, v6 bool
	var lastErr error
	for i := range subnets {
		sn := &subnets[i]
		if sn.Auto() {
			ip, err := a.take(ctx, sn, netip.Addr{})
			if err != nil {
				return nil, err
			}
			out = append(out, ip)
			continue
		}
		if (sn.IPVersion == 4 && v4) || (sn.IPVersion == 6 && v6) {
			continue
		}
		ip, err := a.take(ctx, sn, netip.Addr{})
		var ne *Error
		if errors.As(err, &ne) && ne.Type == "IpAddressGenerationFailure" {
			lastErr = err
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, ip)
		if sn.IPVersion == 4 {
			v4 = true
		} else {
			v6 = true
		}
	}
	if len(out) == 0 && lastErr != nil {
		return nil, errConflict("IpAddressGenerationFailure", "No more IP addresses available on network %s.", n.ID)
	}
	return out, nil
}

// GetPort returns a port the caller owns.
func (s *Service) GetPort(ctx context.Context, id string) (*model.Port, error) {
	c := who(ctx)
	var out *model.Port
	err := s.read(ctx, func(tx store.Tx) error {
		var err error
		if out, err = s.ownedPort(ctx, tx, c, id); err != nil {
			return err
		}
		return withTrunkDetails(ctx, tx, []*model.Port{out})
	})
	return out, err
}

// ListPorts returns the ports the caller owns.
func (s *Service) ListPorts(ctx context.Context, p store.Page) ([]model.Port, error) {
	c := who(ctx)
	var out []model.Port
	err := s.read(ctx, func(tx store.Tx) error {
		var err error
		if out, err = tx.ListPorts(ctx, store.PortFilter{Scope: c.scope(), Page: p}); err != nil {
			return err
		}
		ptrs := make([]*model.Port, len(out))
		for i := range out {
			ptrs[i] = &out[i]
		}
		return withTrunkDetails(ctx, tx, ptrs)
	})
	return out, err
}

// UpdatePort applies change to a port the caller owns. Fixed IPs that
// change are reallocated; entries without an address are allocated.
func (s *Service) UpdatePort(ctx context.Context, id string, change func(*model.Port)) (*model.Port, error) {
	c := who(ctx)
	if err := c.mayWrite("update_port"); err != nil {
		return nil, err
	}
	var out *model.Port
	var bound, moved bool
	err := s.write(ctx, func(tx store.Tx) error {
		if err := tx.Lock(ctx, "port:"+id); err != nil {
			return err
		}
		old, err := s.ownedPort(ctx, tx, c, id)
		if err != nil {
			return err
		}
		// As on create, the reference makes sure the port's project has
		// its default group (an admin may have deleted it), though only
		// for its own project or as an admin.
		if old.ProjectID != "" && (c.admin || c.ProjectID == old.ProjectID) {
			if _, err := tx.DefaultSecurityGroup(ctx, old.ProjectID); errors.Is(err, store.ErrNotFound) {
				if _, err := s.ensureDefaultSG(ctx, tx, old.ProjectID); err != nil {
					return err
				}
			} else if err != nil {
				return err
			}
		}
		p := *old
		p.FixedIPs = slices.Clone(old.FixedIPs)
		p.SecurityGroups = slices.Clone(old.SecurityGroups)
		p.AllowedAddressPairs = slices.Clone(old.AllowedAddressPairs)
		change(&p)
		if !c.admin && (p.BindingHostID != old.BindingHostID || !mapsEqual(p.BindingProfile, old.BindingProfile)) {
			return errForbidden("update_port:binding:host_id")
		}
		if p.MACAddress != old.MACAddress {
			if !c.admin { // the reference's update_port:mac_address is admin_only
				return errForbidden("update_port:mac_address")
			}
			if err := macFree(ctx, tx, p.NetworkID, p.MACAddress); err != nil {
				return err
			}
		}
		if p.DeviceID != old.DeviceID || p.DeviceOwner != old.DeviceOwner {
			if old.RouterID != "" {
				// A router's own port changes hands only through the
				// router API; an admin's edit detaches it.
				if !c.admin {
					return errForbidden("update_port:device_owner")
				}
				p.RouterID = ""
			}
			n, err := tx.GetNetwork(ctx, p.NetworkID)
			if err != nil {
				return err
			}
			if err := checkDevice(ctx, tx, c, "update_port", &p, n); err != nil {
				return err
			}
		}
		if old.PortSecurityEnabled && !p.PortSecurityEnabled {
			if len(p.SecurityGroups) > 0 {
				return errConflict("PortSecurityPortHasSecurityGroup",
					"Port has security group associated. Cannot disable port security or ip address until security group is removed")
			}
		}
		if err := s.checkPortSecurity(ctx, tx, c, &p); err != nil {
			return err
		}
		if !slices.Equal(p.SecurityGroups, old.SecurityGroups) {
			if err := checkStatefulMix(ctx, tx, p.SecurityGroups); err != nil {
				return err
			}
		}
		if !slices.Equal(p.FixedIPs, old.FixedIPs) {
			// Only address changes need the network lock (allocate then
			// takes the subnet locks); other updates run in parallel.
			if err := tx.Lock(ctx, "network:"+p.NetworkID); err != nil {
				return err
			}
			n, err := tx.GetNetwork(ctx, p.NetworkID)
			if err != nil {
				return err
			}
			if p.FixedIPs, err = s.allocate(ctx, tx, n, &p, p.FixedIPs, old.FixedIPs); err != nil {
				return err
			}
		}
		s.touch(&p.Standard)
		out = &p
		bound = p.BindingHostID != "" || old.BindingHostID != ""
		moved = p.BindingHostID != old.BindingHostID
		if err := dupAsConflict(tx.UpdatePort(ctx, &p), &p); err != nil {
			return err
		}
		return withTrunkDetails(ctx, tx, []*model.Port{&p})
	})
	if err == nil && moved {
		if ferr := s.followParent(ctx, id); ferr != nil {
			// The port's update stands; the agents' next sync of a trunk
			// whose subports lag is the visible symptom.
			s.log.ErrorContext(ctx, "trunk subports not moved with their parent", "port", id, "error", ferr)
		}
	}
	if err == nil && bound {
		s.hintAll(ctx)
	}
	if err == nil {
		s.hintDHCP(ctx, out.NetworkID)
	}
	return out, err
}

// DeletePort deletes a port that no router attached. A port that only
// names a router in device_id and device_owner (made through the port API,
// or left behind by a router that is gone) is not the router's and goes.
func (s *Service) DeletePort(ctx context.Context, id string) error {
	c := who(ctx)
	if err := c.mayWrite("delete_port"); err != nil {
		return err
	}
	var bound bool
	var routers []string
	var networkID string
	err := s.write(ctx, func(tx store.Tx) error {
		if err := tx.Lock(ctx, "port:"+id); err != nil {
			return err
		}
		p, err := s.ownedPort(ctx, tx, c, id)
		if err != nil {
			return err
		}
		if p.RouterID != "" || p.DeviceOwner == model.OwnerFloatingIP {
			return errConflict("L3PortInUse",
				"Port %s has owner %s and therefore cannot be deleted directly via the port API.", id, p.DeviceOwner)
		}
		if err := trunkOfPort(ctx, tx, id); err != nil {
			return err
		}
		bound, networkID = p.BindingHostID != "", p.NetworkID
		// Its floating IPs stay, dissociated, as in the reference.
		if routers, err = s.dissociatePort(ctx, tx, id); err != nil {
			return err
		}
		return tx.DeletePort(ctx, id)
	})
	if err == nil && bound {
		s.hintAll(ctx)
	} else if err == nil {
		s.afterFloatingIP(ctx, routers...)
	}
	if err == nil {
		s.hintDHCP(ctx, networkID)
	}
	return err
}

func mapsEqual(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || !jsonEqual(v, w) {
			return false
		}
	}
	return true
}

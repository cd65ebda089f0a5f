package service

import (
	"context"
	"fmt"
	"github.com/neutrino-net/neutrino/api/agentv1"
	"net/netip"
	"slices"

	"github.com/neutrino-net/neutrino/internal/ipam"
	"github.com/neutrino-net/neutrino/internal/model"
	"github.com/neutrino-net/neutrino/internal/store"
)

// SubnetCreate is a subnet request. Zero-valued GatewayIP with
// GatewaySet=false means "the first host"; GatewaySet with a zero GatewayIP
// means no gateway. A nil AllocationPools means the default pools.
type SubnetCreate struct {
	model.Subnet
	GatewaySet bool
	// Pool, if set, takes the CIDR from a subnet pool (Subnet.CIDR, if
	// valid, is the prefix asked of it).
	Pool *PoolRequest
}

func subnetNotFound(id string) *Error {
	return errNotFound("SubnetNotFound", "Subnet %s could not be found.", id)
}

func invalidOp(format string, args ...any) *Error {
	return errInvalid("InvalidInput", "Invalid input for operation: %s.", fmt.Sprintf(format, args...))
}

// visibleSubnet returns a subnet the caller may see: its own or one on a
// shared or external network.
func (s *Service) visibleSubnet(ctx context.Context, tx store.Tx, c caller, id string) (*model.Subnet, *model.Network, error) {
	sn, err := tx.GetSubnet(ctx, id)
	if err != nil {
		return nil, nil, notFound(err, "SubnetNotFound", "Subnet %s could not be found.", id)
	}
	n, err := tx.GetNetwork(ctx, sn.NetworkID)
	if err != nil {
		// Outside the network's lock, the network (and with it the
		// subnet) can go between the two reads.
		return nil, nil, notFound(err, "SubnetNotFound", "Subnet %s could not be found.", id)
	}
	if !c.owns(sn.ProjectID) && !n.Shared && !n.External {
		return nil, nil, subnetNotFound(id)
	}
	return sn, n, nil
}

// checkSubnet validates the address plan of sn: version, gateway, pools,
// DNS servers, host routes and IPv6 modes.
func checkSubnet(sn *model.Subnet) error {
	v4 := sn.IPVersion == 4
	if sn.CIDR.Addr().Is4() != v4 {
		return invalidOp("Cidr %s and IP version %d are not compatible", sn.CIDR, sn.IPVersion)
	}
	if sn.CIDR.Bits() == 0 {
		return invalidOp("%s is not a valid cidr for a subnet", sn.CIDR)
	}
	if v4 && (sn.IPv6RAMode != "" || sn.IPv6AddressMode != "") {
		mode, val := "ipv6_ra_mode", sn.IPv6RAMode
		if val == "" {
			mode, val = "ipv6_address_mode", sn.IPv6AddressMode
		}
		return invalidOp("%s set to '%s' with ip_version set to '4' is not valid", mode, val)
	}
	if sn.IPv6RAMode != "" && sn.IPv6AddressMode != "" && sn.IPv6RAMode != sn.IPv6AddressMode {
		return invalidOp("ipv6_ra_mode set to '%s' with ipv6_address_mode set to '%s' is not valid. If both attributes are set, they must be the same value",
			sn.IPv6RAMode, sn.IPv6AddressMode)
	}
	if !v4 && !sn.EnableDHCP && (sn.IPv6RAMode != "" || sn.IPv6AddressMode != "") {
		return invalidOp("ipv6_ra_mode or ipv6_address_mode cannot be set when enable_dhcp is set to False")
	}
	// As the reference's is_auto_address_subnet: either mode makes
	// hosts build their address from the prefix (EUI-64).
	if (sn.Auto() || sn.IPv6RAMode == agentv1.IPv6SLAAC || sn.IPv6RAMode == agentv1.IPv6DHCPv6Stateless) && !v4 && sn.CIDR.Bits() != 64 {
		return invalidOp("Invalid CIDR %s for IPv6 address mode. OpenStack uses the EUI-64 address format, which requires the prefix to be /64", sn.CIDR)
	}
	if gw := sn.GatewayIP; gw.IsValid() {
		if gw.Is4() != v4 {
			return errInvalidInput("gateway_ip", fmt.Sprintf("'%s' is not a valid IP address for IP version %d", gw, sn.IPVersion))
		}
		if sn.CIDR.Contains(gw) && ipam.First(sn.CIDR) != ipam.Last(sn.CIDR) &&
			(gw == ipam.First(sn.CIDR) || (v4 && gw == ipam.Last(sn.CIDR) && sn.CIDR.Bits() < 31)) {
			return invalidOp("Gateway is not valid on subnet")
		}
	}
	if err := poolError(sn); err != nil {
		return err
	}
	if len(sn.DNSNameservers) > MaxDNSNameservers {
		return errInvalid("DNSNameServersExhausted",
			"Unable to complete operation for %s. The number of DNS nameservers exceeds the limit %d.", sn.ID, MaxDNSNameservers)
	}
	seen := map[string]bool{}
	for _, d := range sn.DNSNameservers {
		if a, err := netip.ParseAddr(d); err != nil || a.Is4() != v4 {
			return errInvalidInput("dns_nameservers", fmt.Sprintf("'%s' is not a valid IP address", d))
		}
		if seen[d] {
			return errInvalidInput("dns_nameservers", fmt.Sprintf("Duplicate nameserver '%s'", d))
		}
		seen[d] = true
	}
	if len(sn.HostRoutes) > MaxHostRoutes {
		return errInvalid("HostRoutesExhausted",
			"Unable to complete operation for %s. The number of host routes exceeds the limit %d.", sn.ID, MaxHostRoutes)
	}
	routes := map[model.HostRoute]bool{}
	for _, r := range sn.HostRoutes {
		if r.Destination.Addr().Is4() != v4 || r.Nexthop.Is4() != v4 {
			return invalidOp("Host route %s via %s does not match IP version %d", r.Destination, r.Nexthop, sn.IPVersion)
		}
		if routes[r] {
			return errInvalidInput("host_routes", fmt.Sprintf("Duplicate hostroute '%s'", r.Destination))
		}
		routes[r] = true
	}
	return nil
}

func poolError(sn *model.Subnet) error {
	err := ipam.CheckPools(sn.CIDR, sn.GatewayIP, sn.AllocationPools)
	pe, ok := err.(*ipam.PoolError)
	if !ok {
		return err
	}
	switch pe.Kind {
	case "invalid":
		return errInvalid("InvalidAllocationPool", "The allocation pool %s is not valid.", ipam.PoolString(pe.Pool))
	case "out-of-bounds":
		return errInvalid("OutOfBoundsAllocationPool", "The allocation pool %s spans beyond the subnet cidr %s.", ipam.PoolString(pe.Pool), sn.CIDR)
	case "overlap":
		return errConflict("OverlappingAllocationPools", "Found overlapping allocation pools: %s %s for subnet %s.",
			ipam.PoolString(pe.Pool), ipam.PoolString(pe.Other), sn.CIDR)
	default:
		return errConflict("GatewayConflictWithAllocationPools", "Gateway ip %s conflicts with allocation pool %s.",
			sn.GatewayIP, ipam.PoolString(pe.Pool))
	}
}

// CreateSubnet creates a subnet on a network the caller owns.
func (s *Service) CreateSubnet(ctx context.Context, req SubnetCreate) (*model.Subnet, error) {
	c := who(ctx)
	if err := c.mayWrite("create_subnet"); err != nil {
		return nil, err
	}
	sn := req.Subnet
	project, err := c.project(sn.ProjectID)
	if err != nil {
		return nil, err
	}
	sn.ID, sn.ProjectID = newID(), project
	// prepare derives what the CIDR decides and checks the subnet: before
	// the transaction, or in it once a pool has given the CIDR.
	prepare := func() error {
		sn.CIDR = sn.CIDR.Masked()
		if !req.GatewaySet {
			sn.GatewayIP = ipam.DefaultGateway(sn.CIDR)
		}
		if sn.AllocationPools == nil && sn.CIDR.Addr().Is4() == (sn.IPVersion == 4) {
			sn.AllocationPools = ipam.DefaultPools(sn.CIDR, sn.GatewayIP)
		}
		if sn.DNSNameservers == nil {
			sn.DNSNameservers = []string{}
		}
		if sn.HostRoutes == nil {
			sn.HostRoutes = []model.HostRoute{}
		}
		return checkSubnet(&sn)
	}
	if req.Pool == nil {
		if err := prepare(); err != nil {
			return nil, err
		}
	}
	s.stamp(&sn.Standard)
	var dhcpHosts []string
	var autoPorts []string
	if sn.Auto() {
		if autoPorts, err = s.portIDs(ctx, store.PortFilter{NetworkID: sn.NetworkID}); err != nil {
			return nil, err
		}
	}
	addressed := 0
	err = s.write(ctx, func(tx store.Tx) error {
		// Ports before their network, as port updates lock them.
		if err := lockPorts(ctx, tx, autoPorts); err != nil {
			return err
		}
		if err := tx.Lock(ctx, "network:"+sn.NetworkID); err != nil {
			return err
		}
		n, err := s.visibleNetwork(ctx, tx, c, sn.NetworkID)
		if err != nil {
			return err
		}
		if !c.owns(n.ProjectID) {
			return errForbidden("create_subnet")
		}
		if err := checkSubnetMTU(n, sn.IPVersion); err != nil {
			return err
		}
		if req.Pool != nil {
			if err := s.fromPool(ctx, tx, c, &sn, req.Pool); err != nil {
				return err
			}
			if err := prepare(); err != nil {
				return err
			}
		}
		others, err := tx.ListSubnets(ctx, store.SubnetFilter{NetworkIDs: []string{n.ID}})
		if err != nil {
			return err
		}
		for _, o := range others {
			if o.CIDR.Overlaps(sn.CIDR) {
				return invalidOp("Requested subnet with cidr: %s for network: %s overlaps with another subnet", sn.CIDR, n.ID)
			}
		}
		if err := s.checkQuota(ctx, tx, "subnet", project, 1); err != nil {
			return err
		}
		if err := tx.CreateSubnet(ctx, &sn); err != nil {
			return err
		}
		if err := tx.Touch(ctx, "networks", n.ID, sn.CreatedAt); err != nil { // its subnets changed
			return err
		}
		if sn.Auto() {
			if addressed, err = s.addAutoAddresses(ctx, tx, &sn, autoPorts); err != nil {
				return err
			}
		}
		dhcpHosts, err = s.syncDHCP(ctx, tx, sn.NetworkID)
		return err
	})
	if err != nil {
		return nil, err
	}
	if addressed > 0 {
		s.hintAll(ctx) // ports on every host may have a new address
	} else {
		s.hint(ctx, dhcpHosts, agentv1.Hint{Full: true})
	}
	return &sn, nil
}

// GetSubnet returns a subnet the caller may see.
func (s *Service) GetSubnet(ctx context.Context, id string) (*model.Subnet, error) {
	c := who(ctx)
	var out *model.Subnet
	err := s.read(ctx, func(tx store.Tx) error {
		sn, _, err := s.visibleSubnet(ctx, tx, c, id)
		out = sn
		return err
	})
	return out, err
}

// ListSubnets returns the subnets the caller may see.
func (s *Service) ListSubnets(ctx context.Context, p store.Page) ([]model.Subnet, error) {
	c := who(ctx)
	var out []model.Subnet
	err := s.read(ctx, func(tx store.Tx) error {
		var err error
		out, err = tx.ListSubnets(ctx, store.SubnetFilter{Scope: c.scope(), IncludePublic: !c.admin, Page: p})
		return err
	})
	return out, err
}

// UpdateSubnet applies change to a subnet the caller owns. change reports
// whether it set the allocation pools.
func (s *Service) UpdateSubnet(ctx context.Context, id string, change func(*model.Subnet)) (*model.Subnet, error) {
	c := who(ctx)
	if err := c.mayWrite("update_subnet"); err != nil {
		return nil, err
	}
	var out *model.Subnet
	err := s.write(ctx, func(tx store.Tx) error {
		// The network's lock before the subnet's, the order port
		// creation, router interfaces and DeleteSubnet take them in
		// (syncDHCP below takes the network's): the other order
		// deadlocked with a concurrent port create on PostgreSQL. A
		// subnet never changes network, so the unlocked read finds the
		// right one.
		old, _, err := s.visibleSubnet(ctx, tx, c, id)
		if err != nil {
			return err
		}
		if err := tx.Lock(ctx, "network:"+old.NetworkID); err != nil {
			return err
		}
		if err := tx.Lock(ctx, "subnet:"+id); err != nil {
			return err
		}
		if old, _, err = s.visibleSubnet(ctx, tx, c, id); err != nil {
			return err
		}
		if !c.owns(old.ProjectID) {
			return errForbidden("update_subnet")
		}
		sn := *old
		change(&sn)
		if old.EnableDHCP && !sn.EnableDHCP && (sn.IPv6RAMode != "" || sn.IPv6AddressMode != "") {
			return invalidOp("Cannot disable enable_dhcp with ipv6 attributes set")
		}
		if err := checkSubnet(&sn); err != nil {
			return err
		}
		if sn.GatewayIP != old.GatewayIP && sn.GatewayIP.IsValid() {
			ports, err := tx.ListPorts(ctx, store.PortFilter{SubnetID: id})
			if err != nil {
				return err
			}
			for _, p := range ports {
				for _, ip := range p.FixedIPs {
					if ip.SubnetID == id && (ip.IPAddress == sn.GatewayIP || (ip.IPAddress == old.GatewayIP && p.DeviceOwner == model.OwnerRouterInterface)) {
						return errConflict("GatewayIpInUse",
							"Current gateway ip %s already in use by port %s. Unable to update.", ip.IPAddress, p.ID)
					}
				}
			}
		}
		s.touch(&sn.Standard)
		out = &sn
		if err := tx.UpdateSubnet(ctx, &sn); err != nil {
			return err
		}
		if err := tx.Touch(ctx, "networks", sn.NetworkID, sn.UpdatedAt); err != nil {
			return err
		}
		_, err = s.syncDHCP(ctx, tx, sn.NetworkID) // enable_dhcp may have changed
		return err
	})
	if err == nil {
		s.hintAll(ctx) // gateways of ports may have changed
	}
	return out, err
}

// DeleteSubnet deletes a subnet without allocated addresses.
func (s *Service) DeleteSubnet(ctx context.Context, id string) error {
	c := who(ctx)
	if err := c.mayWrite("delete_subnet"); err != nil {
		return err
	}
	var networkID string
	var dhcpHosts []string
	// The ports with an address on the subnet, locked before the network
	// (as port updates lock them) so that automatic addresses can go.
	holders, err := s.portIDs(ctx, store.PortFilter{SubnetID: id})
	if err != nil {
		return err
	}
	unaddressed := 0
	err = s.write(ctx, func(tx store.Tx) error {
		unaddressed = 0
		if err := lockPorts(ctx, tx, holders); err != nil {
			return err
		}
		sn, _, err := s.visibleSubnet(ctx, tx, c, id)
		if err != nil {
			return err
		}
		// The network's lock first, as port creation and router
		// interfaces take it before the subnet's: holding both, no
		// allocation on this subnet is under way.
		if err := tx.Lock(ctx, "network:"+sn.NetworkID); err != nil {
			return err
		}
		if err := tx.Lock(ctx, "subnet:"+id); err != nil {
			return err
		}
		if sn, _, err = s.visibleSubnet(ctx, tx, c, id); err != nil {
			return err
		}
		if !c.owns(sn.ProjectID) {
			return errForbidden("delete_subnet")
		}
		if err := s.vpnBeforeSubnetDelete(ctx, tx, id); err != nil {
			return err
		}
		if err := s.dropDHCPAddresses(ctx, tx, id); err != nil {
			return err
		}
		if sn.Auto() {
			if unaddressed, err = s.dropAutoAddresses(ctx, tx, sn, holders); err != nil {
				return err
			}
		}
		taken, err := tx.AllocatedIPs(ctx, id)
		if err != nil {
			return err
		}
		if len(taken) > 0 {
			return subnetInUse(id, "One or more ports have an IP allocation from this subnet.")
		}
		if err := tx.DeleteSubnet(ctx, id); err != nil {
			return err
		}
		if err := tx.Touch(ctx, "networks", sn.NetworkID, s.now()); err != nil {
			return err
		}
		networkID = sn.NetworkID
		dhcpHosts, err = s.syncDHCP(ctx, tx, sn.NetworkID)
		return err
	})
	if err == nil {
		s.hintDHCP(ctx, networkID)
		s.hint(ctx, dhcpHosts, agentv1.Hint{Full: true})
		if unaddressed > 0 {
			s.hintAll(ctx)
		}
	}
	return err
}

// portIDs returns the ids of the ports filter selects, in id order.
func (s *Service) portIDs(ctx context.Context, filter store.PortFilter) ([]string, error) {
	var ids []string
	err := s.read(ctx, func(tx store.Tx) error {
		ports, err := tx.ListPorts(ctx, filter)
		for _, p := range ports {
			ids = append(ids, p.ID)
		}
		return err
	})
	slices.Sort(ids)
	return ids, err
}

// lockPorts takes the writer locks of ports, in id order (so that two
// writers never wait for each other), each once.
func lockPorts(ctx context.Context, tx store.Tx, ids []string) error {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	for _, id := range slices.Compact(ids) {
		if err := tx.Lock(ctx, "port:"+id); err != nil {
			return err
		}
	}
	return nil
}

// getsAutoAddress reports whether a port takes the automatic address of
// an IPv6 SLAAC or DHCPv6-stateless subnet created on its network: every
// port but router interfaces, which the router API addresses, as in the
// reference.
func getsAutoAddress(p *model.Port) bool { return p.DeviceOwner != model.OwnerRouterInterface }

// addAutoAddresses gives the ports of a new automatic-address subnet's
// network their EUI-64 address on it, as the reference does, and returns
// how many ports changed. locked are the ports already locked; a port
// created since is locked now.
func (s *Service) addAutoAddresses(ctx context.Context, tx store.Tx, sn *model.Subnet, locked []string) (int, error) {
	ports, err := tx.ListPorts(ctx, store.PortFilter{NetworkID: sn.NetworkID})
	if err != nil {
		return 0, err
	}
	changed := 0
	for i := range ports {
		p := &ports[i]
		if !getsAutoAddress(p) || slices.ContainsFunc(p.FixedIPs, func(ip model.FixedIP) bool { return ip.SubnetID == sn.ID }) {
			continue
		}
		if _, ok := slices.BinarySearch(locked, p.ID); !ok {
			if err := tx.Lock(ctx, "port:"+p.ID); err != nil {
				return changed, err
			}
		}
		ip, err := ipam.EUI64(sn.CIDR, p.MACAddress)
		if err != nil {
			return changed, fmt.Errorf("automatic address of port %s: %w", p.ID, err)
		}
		p.FixedIPs = append(p.FixedIPs, model.FixedIP{SubnetID: sn.ID, IPAddress: ip})
		s.touch(&p.Standard)
		if err := tx.UpdatePort(ctx, p); err != nil {
			return changed, err
		}
		changed++
	}
	return changed, nil
}

// dropAutoAddresses removes the automatic addresses of a subnet being
// deleted from the ports that took them (locked before), and returns how
// many ports changed; router interfaces keep theirs, so the subnet stays
// in use, as in the reference.
func (s *Service) dropAutoAddresses(ctx context.Context, tx store.Tx, sn *model.Subnet, locked []string) (int, error) {
	if len(locked) == 0 {
		return 0, nil
	}
	ports, err := tx.ListPorts(ctx, store.PortFilter{IDs: locked})
	if err != nil {
		return 0, err
	}
	changed := 0
	for i := range ports {
		p := &ports[i]
		if !getsAutoAddress(p) {
			continue
		}
		kept := slices.DeleteFunc(slices.Clone(p.FixedIPs), func(ip model.FixedIP) bool { return ip.SubnetID == sn.ID })
		if len(kept) == len(p.FixedIPs) {
			continue
		}
		p.FixedIPs = kept
		s.touch(&p.Standard)
		if err := tx.UpdatePort(ctx, p); err != nil {
			return changed, err
		}
		changed++
	}
	return changed, nil
}

func subnetInUse(id, reason string) *Error {
	return errConflict("SubnetInUse", "Unable to complete operation on subnet %s: %s", id, reason)
}

package service

import (
	"context"
	"errors"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/neutrino-net/neutrino/internal/model"
	"github.com/neutrino-net/neutrino/internal/store"
)

// DHCP: which DHCP agents serve each network (the dhcp_agent_scheduler
// extension), each serving agent's DHCP port, and the DHCP part of a
// host's desired state.
//
// A network is scheduled when it has a DHCP-enabled subnet: to
// dhcp_agents_per_network alive, admin-up DHCP agents, the least loaded
// (fewest networks) first, oldest among equals. Each agent serving the
// network has a DHCP port as the reference's DHCP agent makes it:
// device_owner network:dhcp, device_id dhcp<uuid5(DNS, host)>-<network id>,
// bound to the agent's host, with an address on each DHCP-enabled subnet.
// syncDHCP keeps this true; it runs in the transactions that change a
// network's subnets, its DHCP agents, or that see a DHCP agent appear. It
// takes only the network's lock (the callers' order: network, then
// subnets), so concurrent scheduling of two networks may balance
// imperfectly but never deadlocks.

// DefaultDHCPLeaseDuration is the reference's dhcp_lease_duration.
const DefaultDHCPLeaseDuration = 86400

// DHCPDeviceID is the device_id of the DHCP port of host's DHCP agent on a
// network, as the reference's DHCP agent forms it.
func DHCPDeviceID(host, networkID string) string {
	return "dhcp" + uuid.NewSHA1(uuid.NameSpaceDNS, []byte(host)).String() + "-" + networkID
}

func (s *Service) dhcpLease() int {
	if s.opts.DHCPLeaseDuration > 0 {
		return s.opts.DHCPLeaseDuration
	}
	return DefaultDHCPLeaseDuration
}

func (s *Service) dhcpAgentsPerNetwork() int {
	if s.opts.DHCPAgentsPerNetwork > 0 {
		return s.opts.DHCPAgentsPerNetwork
	}
	return 1
}

// isAgentDHCPPort reports whether p is a DHCP port an agent's scheduling
// made (not one a user created with that owner).
func isAgentDHCPPort(p *model.Port) bool {
	return p.DeviceOwner == model.OwnerDHCP && strings.HasPrefix(p.DeviceID, "dhcp") && p.BindingHostID != "" &&
		p.DeviceID == DHCPDeviceID(p.BindingHostID, p.NetworkID)
}

// syncDHCP schedules a network with DHCP-enabled subnets that has fewer
// alive DHCP agents than wanted, and makes the DHCP ports match the
// bindings and subnets. It returns the hosts whose desired state changed.
func (s *Service) syncDHCP(ctx context.Context, tx store.Tx, networkID string) ([]string, error) {
	return s.syncDHCPPorts(ctx, tx, networkID, true)
}

// syncDHCPPorts is syncDHCP; without schedule it only makes the DHCP ports
// match the bindings (after an admin removed one).
func (s *Service) syncDHCPPorts(ctx context.Context, tx store.Tx, networkID string, schedule bool) ([]string, error) {
	if err := tx.Lock(ctx, "network:"+networkID); err != nil {
		return nil, err
	}
	n, err := tx.GetNetwork(ctx, networkID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	subnets, err := tx.ListSubnets(ctx, store.SubnetFilter{NetworkIDs: []string{networkID}})
	if err != nil {
		return nil, err
	}
	var dhcpSubnets []string
	for _, sn := range subnets {
		if sn.EnableDHCP {
			dhcpSubnets = append(dhcpSubnets, sn.ID)
		}
	}
	agents, err := tx.ListAgents(ctx)
	if err != nil {
		return nil, err
	}
	byID := map[string]*model.Agent{}
	for i := range agents {
		byID[agents[i].ID] = &agents[i]
	}
	bound, err := tx.NetworkAgents(ctx, networkID)
	if err != nil {
		return nil, err
	}
	hosts := map[string]bool{}
	if len(dhcpSubnets) > 0 && schedule {
		alive := 0
		for _, id := range bound {
			if a := byID[id]; a != nil && s.alive(a) {
				alive++
			}
		}
		if alive < s.dhcpAgentsPerNetwork() {
			loads, err := tx.NetworkLoads(ctx)
			if err != nil {
				return nil, err
			}
			var candidates []*model.Agent
			for i := range agents {
				a := &agents[i]
				if a.AgentType == agentv1.AgentTypeDHCP && a.AdminStateUp && s.alive(a) && !slices.Contains(bound, a.ID) {
					candidates = append(candidates, a)
				}
			}
			for ; alive < s.dhcpAgentsPerNetwork() && len(candidates) > 0; alive++ {
				best := leastLoaded(candidates, loads)
				if err := tx.BindNetwork(ctx, networkID, best.ID); err != nil {
					return nil, err
				}
				loads[best.ID]++
				bound = append(bound, best.ID)
				candidates = slices.DeleteFunc(candidates, func(a *model.Agent) bool { return a == best })
				s.log.InfoContext(ctx, "network scheduled to a DHCP agent", "network", networkID, "host", best.Host, "agent", best.ID)
			}
		}
	}
	// The DHCP ports: one per serving agent while the network has DHCP.
	want := map[string]string{} // device id -> host
	if len(dhcpSubnets) > 0 {
		for _, id := range bound {
			if a := byID[id]; a != nil {
				want[DHCPDeviceID(a.Host, networkID)] = a.Host
			}
		}
	}
	ports, err := tx.ListPorts(ctx, store.PortFilter{NetworkID: networkID})
	if err != nil {
		return nil, err
	}
	have := map[string]*model.Port{}
	for i := range ports {
		p := &ports[i]
		if !isAgentDHCPPort(p) {
			continue
		}
		if _, ok := want[p.DeviceID]; !ok {
			if err := tx.DeletePort(ctx, p.ID); err != nil {
				return nil, err
			}
			hosts[p.BindingHostID] = true
			continue
		}
		have[p.DeviceID] = p
	}
	for _, dev := range slices.Sorted(maps.Keys(want)) {
		host := want[dev]
		p := have[dev]
		var keep []model.FixedIP
		if p != nil {
			for _, ip := range p.FixedIPs {
				if slices.Contains(dhcpSubnets, ip.SubnetID) {
					keep = append(keep, ip)
				}
			}
			covered := true
			for _, sid := range dhcpSubnets {
				covered = covered && slices.ContainsFunc(keep, func(ip model.FixedIP) bool { return ip.SubnetID == sid })
			}
			if covered && len(keep) == len(p.FixedIPs) {
				continue
			}
		}
		wantIPs := slices.Clone(keep)
		for _, sid := range dhcpSubnets {
			if !slices.ContainsFunc(keep, func(ip model.FixedIP) bool { return ip.SubnetID == sid }) {
				wantIPs = append(wantIPs, model.FixedIP{SubnetID: sid})
			}
		}
		hosts[host] = true
		if p != nil {
			if p.FixedIPs, err = s.allocate(ctx, tx, n, p, wantIPs, keep); err != nil {
				return nil, err
			}
			s.touch(&p.Standard)
			if err := tx.UpdatePort(ctx, p); err != nil {
				return nil, err
			}
			continue
		}
		p = &model.Port{ID: newID(), ProjectID: n.ProjectID, NetworkID: networkID, AdminStateUp: true,
			Status: model.StatusDown, DeviceOwner: model.OwnerDHCP, DeviceID: dev, PortSecurityEnabled: n.PortSecurityEnabled,
			SecurityGroups: []string{}, AllowedAddressPairs: []model.AddressPair{}, BindingHostID: host,
			BindingProfile: map[string]any{}, BindingVNICType: "normal", BindingVIFType: "unbound",
			BindingVIFDetails: map[string]any{}, ExtraDHCPOpts: []model.ExtraDHCPOpt{}}
		s.stamp(&p.Standard)
		if p.MACAddress, err = s.newMAC(ctx, tx, networkID); err != nil {
			return nil, err
		}
		if p.FixedIPs, err = s.allocate(ctx, tx, n, p, wantIPs, nil); err != nil {
			return nil, err
		}
		if err := tx.CreatePort(ctx, p); err != nil {
			return nil, err
		}
	}
	return slices.Sorted(maps.Keys(hosts)), nil
}

// dropDHCPAddresses removes a subnet's addresses from the agents' DHCP
// ports before the subnet goes, as the reference does.
func (s *Service) dropDHCPAddresses(ctx context.Context, tx store.Tx, subnetID string) error {
	ports, err := tx.ListPorts(ctx, store.PortFilter{SubnetID: subnetID})
	if err != nil {
		return err
	}
	for i := range ports {
		p := &ports[i]
		if !isAgentDHCPPort(p) {
			continue
		}
		p.FixedIPs = slices.DeleteFunc(p.FixedIPs, func(ip model.FixedIP) bool { return ip.SubnetID == subnetID })
		s.touch(&p.Standard)
		if err := tx.UpdatePort(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

// dhcpHosts returns the hosts of the DHCP agents serving a network.
func dhcpHosts(ctx context.Context, tx store.Tx, networkID string) ([]string, error) {
	ids, err := tx.NetworkAgents(ctx, networkID)
	if err != nil {
		return nil, err
	}
	var hosts []string
	for _, id := range ids {
		a, err := tx.GetAgent(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			return nil, err
		}
		hosts = append(hosts, a.Host)
	}
	return hosts, nil
}

// hintDHCP hints the hosts serving DHCP on networks (after a commit): a
// port change changes what their servers hand out.
func (s *Service) hintDHCP(ctx context.Context, networkIDs ...string) {
	if s.opts.Hint == nil || len(networkIDs) == 0 {
		return
	}
	ctx = context.WithoutCancel(ctx)
	var hosts []string
	err := s.read(ctx, func(tx store.Tx) error {
		hosts = nil
		for _, id := range networkIDs {
			hs, err := dhcpHosts(ctx, tx, id)
			if err != nil {
				return err
			}
			hosts = append(hosts, hs...)
		}
		return nil
	})
	if err != nil {
		s.log.WarnContext(ctx, "DHCP hosts not found; they catch up at their next resync", "networks", networkIDs, "error", err)
		return
	}
	slices.Sort(hosts)
	s.hint(ctx, slices.Compact(hosts), agentv1.Hint{Full: true})
}

// scheduleDHCPAll schedules every network with DHCP that no alive DHCP
// agent serves (a DHCP agent appeared or came back).
func (s *Service) scheduleDHCPAll(ctx context.Context, tx store.Tx) ([]string, error) {
	nets, err := tx.ListNetworks(ctx, store.NetworkFilter{})
	if err != nil {
		return nil, err
	}
	var hosts []string
	for _, n := range nets {
		hs, err := s.syncDHCP(ctx, tx, n.ID)
		if err != nil {
			return nil, err
		}
		hosts = append(hosts, hs...)
	}
	slices.Sort(hosts)
	return slices.Compact(hosts), nil
}

// dhcpState adds to a host's state the DHCP configuration of every
// network whose DHCP port is bound to the host's DHCP agent.
func (b *stateBuilder) dhcpState(_ string, dhcpPorts map[string]*model.Port, out []agentv1.Network, lease int) error {
	for i := range out {
		p := dhcpPorts[out[i].ID]
		if p == nil {
			continue
		}
		subnets, err := b.tx.ListSubnets(b.ctx, store.SubnetFilter{NetworkIDs: []string{out[i].ID}})
		if err != nil {
			return err
		}
		d := &agentv1.DHCP{PortID: p.ID, LeaseSeconds: lease, Subnets: []agentv1.DHCPSubnet{}, Hosts: []agentv1.DHCPHost{}}
		for _, sn := range subnets {
			if !sn.EnableDHCP {
				continue
			}
			ds := agentv1.DHCPSubnet{ID: sn.ID, CIDR: sn.CIDR, Gateway: sn.GatewayIP, DNS: []netip.Addr{},
				HostRoutes: []agentv1.Route{}, IPv6AddressMode: sn.IPv6AddressMode}
			for _, d := range sn.DNSNameservers {
				if a, err := netip.ParseAddr(d); err == nil {
					ds.DNS = append(ds.DNS, a)
				}
			}
			for _, r := range sn.HostRoutes {
				ds.HostRoutes = append(ds.HostRoutes, agentv1.Route{Destination: r.Destination, NextHop: r.Nexthop})
			}
			d.Subnets = append(d.Subnets, ds)
		}
		if len(d.Subnets) == 0 {
			continue
		}
		ports, err := b.tx.ListPorts(b.ctx, store.PortFilter{NetworkID: out[i].ID})
		if err != nil {
			return err
		}
		for _, q := range ports {
			h := agentv1.DHCPHost{PortID: q.ID, MAC: q.MACAddress, IPs: []netip.Addr{}}
			for _, ip := range q.FixedIPs {
				h.IPs = append(h.IPs, ip.IPAddress)
			}
			for _, o := range q.ExtraDHCPOpts {
				h.Options = append(h.Options, agentv1.DHCPOption{Name: o.OptName, Value: o.OptValue, IPVersion: o.IPVersion})
			}
			d.Hosts = append(d.Hosts, h)
		}
		out[i].DHCP = d
	}
	return nil
}

func invalidDHCPAgent(id string) *Error {
	// The reference's InvalidDHCPAgent is an AgentNotFound, hence a 404.
	return errNotFound("InvalidDHCPAgent", "Agent %s is not a valid DHCP Agent or has been disabled", id)
}

// DHCPAgentNetworks returns the networks a DHCP agent serves (admin only:
// others get the 404 of an unknown agent).
func (s *Service) DHCPAgentNetworks(ctx context.Context, agentID string) ([]NetworkView, error) {
	if !who(ctx).admin {
		return nil, agentNotFound(agentID)
	}
	out := []NetworkView{}
	err := s.read(ctx, func(tx store.Tx) error {
		if _, err := tx.GetAgent(ctx, agentID); err != nil {
			return notFound(err, "AgentNotFound", "Agent %s could not be found.", agentID)
		}
		ids, err := tx.AgentNetworks(ctx, agentID)
		if err != nil || len(ids) == 0 {
			return err
		}
		nets, err := tx.ListNetworks(ctx, store.NetworkFilter{IDs: ids})
		if err != nil {
			return err
		}
		out, err = s.networkViews(ctx, tx, who(ctx), nets)
		return err
	})
	return out, err
}

// NetworkDHCPAgents returns the DHCP agents serving a network (admin only,
// the reference's get_dhcp-agents; others get the network's 404 when they
// cannot see it, and an empty list otherwise, as RouterAgents does).
func (s *Service) NetworkDHCPAgents(ctx context.Context, networkID string) ([]AgentView, error) {
	c := who(ctx)
	out := []AgentView{}
	err := s.read(ctx, func(tx store.Tx) error {
		if _, err := s.visibleNetwork(ctx, tx, c, networkID); err != nil {
			return err
		}
		if !c.admin {
			return nil // only admins see where networks are served, as for routers
		}
		ids, err := tx.NetworkAgents(ctx, networkID)
		if err != nil {
			return err
		}
		out, err = s.agentViews(ctx, tx, ids)
		return err
	})
	return out, err
}

// AddNetworkToDHCPAgent makes a DHCP agent serve a network (admin only),
// as the reference does: an agent that is not a DHCP agent or is admin-down
// is an InvalidDHCPAgent; adding it to an agent that serves it already is a
// NetworkHostedByDHCPAgent conflict; more agents than
// dhcp_agents_per_network may serve a network this way.
func (s *Service) AddNetworkToDHCPAgent(ctx context.Context, agentID, networkID string) error {
	if !who(ctx).admin {
		return agentNotFound(agentID)
	}
	var hosts []string
	err := s.write(ctx, func(tx store.Tx) error {
		if err := tx.Lock(ctx, "network:"+networkID); err != nil {
			return err
		}
		a, err := tx.GetAgent(ctx, agentID)
		if err != nil {
			return notFound(err, "AgentNotFound", "Agent %s could not be found.", agentID)
		}
		if a.AgentType != agentv1.AgentTypeDHCP || !a.AdminStateUp {
			return invalidDHCPAgent(agentID)
		}
		if _, err := tx.GetNetwork(ctx, networkID); err != nil {
			return notFound(err, "NetworkNotFound", "Network %s could not be found.", networkID)
		}
		bound, err := tx.NetworkAgents(ctx, networkID)
		if err != nil {
			return err
		}
		if slices.Contains(bound, agentID) {
			return errConflict("NetworkHostedByDHCPAgent", "The network %s has been already hosted by the DHCP Agent %s.", networkID, agentID)
		}
		if err := tx.BindNetwork(ctx, networkID, agentID); err != nil {
			return err
		}
		hosts, err = s.syncDHCPPorts(ctx, tx, networkID, false)
		hosts = append(hosts, a.Host)
		return err
	})
	if err == nil {
		s.log.InfoContext(ctx, "network added to a DHCP agent", "network", networkID, "agent", agentID)
		s.hint(ctx, slices.Compact(slices.Sorted(slices.Values(hosts))), agentv1.Hint{Full: true})
	}
	return err
}

// RemoveNetworkFromDHCPAgent stops a DHCP agent serving a network (admin
// only); its DHCP port goes. The network is not rescheduled until a DHCP
// agent registers or the network's subnets change, as in the reference.
func (s *Service) RemoveNetworkFromDHCPAgent(ctx context.Context, agentID, networkID string) error {
	if !who(ctx).admin {
		return agentNotFound(agentID)
	}
	var hosts []string
	err := s.write(ctx, func(tx store.Tx) error {
		if err := tx.Lock(ctx, "network:"+networkID); err != nil {
			return err
		}
		a, err := tx.GetAgent(ctx, agentID)
		if err != nil {
			return notFound(err, "AgentNotFound", "Agent %s could not be found.", agentID)
		}
		bound, err := tx.NetworkAgents(ctx, networkID)
		if err != nil {
			return err
		}
		if !slices.Contains(bound, agentID) {
			return errConflict("NetworkNotHostedByDhcpAgent", "The network %s is not hosted by the DHCP agent %s.", networkID, agentID)
		}
		if err := tx.UnbindNetwork(ctx, networkID, agentID); err != nil {
			return err
		}
		hosts, err = s.syncDHCPPorts(ctx, tx, networkID, false)
		hosts = append(hosts, a.Host)
		return err
	})
	if err == nil {
		s.log.InfoContext(ctx, "network removed from a DHCP agent", "network", networkID, "agent", agentID)
		s.hint(ctx, slices.Compact(slices.Sorted(slices.Values(hosts))), agentv1.Hint{Full: true})
	}
	return err
}

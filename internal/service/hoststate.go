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
	"github.com/neutrino-net/neutrino/internal/segment"
	"github.com/neutrino-net/neutrino/internal/store"
)

// HostState builds the desired state of a host: the routers its L3 agent
// hosts, the VM ports bound to it, and the networks they need with the
// other hosts that carry them.
func (s *Service) HostState(ctx context.Context, host string) (*agentv1.HostState, error) {
	st := &agentv1.HostState{Host: host, Networks: []agentv1.Network{}, Routers: []agentv1.Router{}, Ports: []agentv1.Port{}}
	err := s.read(ctx, func(tx store.Tx) error {
		b := stateBuilder{ctx: ctx, tx: tx, alive: s.alive, providers: s.opts.Providers,
			subnets: map[string]*model.Subnet{}, networks: map[string]*model.Network{}}
		agent, err := tx.AgentByHost(ctx, host, agentv1.AgentTypeL3)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		routerIDs, err := tx.AgentRouters(ctx, agent.ID)
		if err != nil {
			return err
		}
		slices.Sort(routerIDs)
		for _, id := range routerIDs {
			r, err := b.router(id)
			if err != nil {
				return err
			}
			st.Routers = append(st.Routers, *r)
		}
		ports, err := tx.PortsOnHost(ctx, host)
		if err != nil {
			return err
		}
		dhcpPorts := map[string]*model.Port{}
		var hosted []string
		for i := range ports {
			if ports[i].IsRouterPort() {
				continue
			}
			hosted = append(hosted, ports[i].ID)
			p, err := b.port(&ports[i])
			if err != nil {
				return err
			}
			if ports[i].DeviceOwner == model.OwnerTrunkSubport {
				if p.ParentID, p.VLAN, err = b.subPort(ports[i].DeviceID, p.PortID); err != nil {
					return err
				}
			}
			if isAgentDHCPPort(&ports[i]) {
				// Wired like a VM port, into the network's DHCP namespace;
				// a DHCP server is not subject to port security.
				p.Netns, p.PortSecurity, p.AllowedPairs, p.Firewall = agentv1.DHCPNamespace(p.NetworkID), false, []agentv1.AddressPair{}, nil
				dhcpPorts[p.NetworkID] = &ports[i]
			}
			st.Ports = append(st.Ports, *p)
		}
		if st.Trunks, err = b.trunks(hosted); err != nil {
			return err
		}
		if st.Networks, err = b.networkList(host); err != nil {
			return err
		}
		if len(b.sg.members) > 0 {
			st.RemoteGroups = b.sg.members
			for i := range st.Ports {
				if fw := st.Ports[i].Firewall; fw != nil {
					for j := range fw.Rules {
						if g := fw.Rules[j].RemoteGroup; g != "" {
							fw.Rules[j].Members = b.sg.members[g]
						}
					}
				}
			}
		}
		return b.dhcpState(host, dhcpPorts, st.Networks, s.dhcpLease())
	})
	if err != nil {
		return nil, err
	}
	return st, nil
}

// stateBuilder caches subnets, networks, policies and endpoint groups
// while one host state is built.
type stateBuilder struct {
	ctx       context.Context
	tx        store.Tx
	alive     func(*model.Agent) bool
	providers *Providers
	subnets   map[string]*model.Subnet
	networks  map[string]*model.Network
	vpn       vpnCache
	sg        sgCache
	trunk     map[string]*model.Trunk
}

// subPort returns a subport's parent and VLAN tag on trunk trunkID.
func (b *stateBuilder) subPort(trunkID, portID string) (string, int, error) {
	t, ok := b.trunk[trunkID]
	if !ok {
		var err error
		if t, err = b.tx.GetTrunk(b.ctx, trunkID); err != nil {
			return "", 0, fmt.Errorf("trunk %s of subport %s: %w", trunkID, portID, err)
		}
		if b.trunk == nil {
			b.trunk = map[string]*model.Trunk{}
		}
		b.trunk[trunkID] = t
	}
	for _, sp := range t.SubPorts {
		if sp.PortID == portID {
			return t.PortID, sp.SegmentationID, nil
		}
	}
	return "", 0, fmt.Errorf("port %s names trunk %s but is not its subport", portID, trunkID)
}

// trunks returns the trunks whose parent is one of the host's ports.
func (b *stateBuilder) trunks(portIDs []string) ([]agentv1.Trunk, error) {
	if len(portIDs) == 0 {
		return nil, nil
	}
	ts, err := b.tx.ListTrunks(b.ctx, store.TrunkFilter{PortIDs: portIDs})
	if err != nil {
		return nil, err
	}
	var out []agentv1.Trunk
	for _, t := range ts {
		at := agentv1.Trunk{ID: t.ID, PortID: t.PortID, SubPortIDs: []string{}}
		for _, sp := range t.SubPorts {
			at.SubPortIDs = append(at.SubPortIDs, sp.PortID)
		}
		out = append(out, at)
	}
	slices.SortFunc(out, func(a, b agentv1.Trunk) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

func (b *stateBuilder) subnet(id string) (*model.Subnet, error) {
	if sn, ok := b.subnets[id]; ok {
		return sn, nil
	}
	sn, err := b.tx.GetSubnet(b.ctx, id)
	if err != nil {
		return nil, fmt.Errorf("subnet %s: %w", id, err)
	}
	b.subnets[id] = sn
	return sn, nil
}

func (b *stateBuilder) network(id string) (*model.Network, error) {
	if n, ok := b.networks[id]; ok {
		return n, nil
	}
	n, err := b.tx.GetNetwork(b.ctx, id)
	if err != nil {
		return nil, fmt.Errorf("network %s: %w", id, err)
	}
	b.networks[id] = n
	return n, nil
}

// linkMTU is the MTU agents give n's links: the network's, but not below
// what an Ethernet link takes (a network may be set lower while it has
// no IPv4 subnet).
func linkMTU(n *model.Network) int {
	if n.MTU > 0 && n.MTU < MinMTUv4 {
		return MinMTUv4
	}
	return n.MTU
}

// iface is a port's data-plane view: addresses with their subnets' lengths.
func (b *stateBuilder) iface(p *model.Port) (agentv1.Interface, []netip.Addr, error) {
	n, err := b.network(p.NetworkID)
	if err != nil {
		return agentv1.Interface{}, nil, err
	}
	out := agentv1.Interface{PortID: p.ID, NetworkID: p.NetworkID, MAC: p.MACAddress, MTU: linkMTU(n), Addresses: []netip.Prefix{}}
	var gateways []netip.Addr
	for _, ip := range p.FixedIPs {
		sn, err := b.subnet(ip.SubnetID)
		if err != nil {
			return out, nil, err
		}
		out.Addresses = append(out.Addresses, netip.PrefixFrom(ip.IPAddress, sn.CIDR.Bits()))
		if sn.GatewayIP.IsValid() && sn.GatewayIP != ip.IPAddress {
			gateways = append(gateways, sn.GatewayIP)
		}
	}
	return out, gateways, nil
}

func (b *stateBuilder) router(id string) (*agentv1.Router, error) {
	r, err := b.tx.GetRouter(b.ctx, id)
	if err != nil {
		return nil, fmt.Errorf("router %s: %w", id, err)
	}
	out := &agentv1.Router{ID: r.ID, AdminStateUp: r.AdminStateUp, Interfaces: []agentv1.Interface{}, Routes: []agentv1.Route{}}
	ports, err := b.tx.ListPorts(b.ctx, store.PortFilter{RouterID: id})
	if err != nil {
		return nil, err
	}
	for i := range ports {
		p := &ports[i]
		in, gws, err := b.iface(p)
		if err != nil {
			return nil, err
		}
		switch p.DeviceOwner {
		case model.OwnerRouterInterface:
			if in.IPv6Subnets, err = b.ipv6Subnets(p); err != nil {
				return nil, err
			}
			out.Interfaces = append(out.Interfaces, in)
		case model.OwnerRouterGateway:
			if r.Gateway != nil && r.Gateway.PortID == p.ID {
				out.Gateway = &agentv1.Gateway{Interface: in, NextHops: gws, SNAT: r.Gateway.EnableSNAT}
			}
		}
	}
	for _, rt := range r.Routes {
		out.Routes = append(out.Routes, agentv1.Route{Destination: rt.Destination, NextHop: rt.Nexthop})
	}
	if out.VPNServices, err = b.vpnServices(r.ID); err != nil {
		return nil, err
	}
	if out.Gateway != nil {
		fs, err := b.tx.ListFloatingIPs(b.ctx, store.FloatingIPFilter{RouterIDs: []string{r.ID}})
		if err != nil {
			return nil, err
		}
		for _, f := range fs {
			out.FloatingIPs = append(out.FloatingIPs, agentv1.FloatingIP{ID: f.ID, FloatingIP: f.FloatingIPAddress, FixedIP: f.FixedIPAddress})
		}
	}
	return out, nil
}

// ipv6Subnets are the IPv6 subnets of a router interface, with what its
// router advertisements need.
func (b *stateBuilder) ipv6Subnets(p *model.Port) ([]agentv1.IPv6Subnet, error) {
	n, err := b.network(p.NetworkID)
	if err != nil {
		return nil, err
	}
	var out []agentv1.IPv6Subnet
	for _, ip := range p.FixedIPs {
		sn, err := b.subnet(ip.SubnetID)
		if err != nil {
			return nil, err
		}
		if sn.IPVersion != 6 || slices.ContainsFunc(out, func(s agentv1.IPv6Subnet) bool { return s.ID == sn.ID }) {
			continue
		}
		s := agentv1.IPv6Subnet{ID: sn.ID, Prefix: sn.CIDR.Masked(), RAMode: sn.IPv6RAMode, AddressMode: sn.IPv6AddressMode, MTU: linkMTU(n)}
		for _, d := range sn.DNSNameservers {
			if a, err := netip.ParseAddr(d); err == nil && a.Is6() {
				s.DNS = append(s.DNS, a)
			}
		}
		out = append(out, s)
	}
	return out, nil
}

func (b *stateBuilder) port(p *model.Port) (*agentv1.Port, error) {
	in, gws, err := b.iface(p)
	if err != nil {
		return nil, err
	}
	out := &agentv1.Port{Interface: in, AdminStateUp: p.AdminStateUp, PortSecurity: p.PortSecurityEnabled,
		AllowedPairs: []agentv1.AddressPair{}, Gateways: gws}
	out.Netns, _ = p.BindingProfile["netns"].(string)
	for _, ap := range p.AllowedAddressPairs {
		if pfx, ok := pairPrefix(ap.IPAddress); ok {
			out.AllowedPairs = append(out.AllowedPairs, agentv1.AddressPair{IP: pfx, MAC: ap.MACAddress})
		}
	}
	out.Firewall, err = b.firewall(p)
	return out, err
}

// networkList returns the networks the host uses, each with the underlay
// addresses of the other hosts that use it too.
func (b *stateBuilder) networkList(host string) ([]agentv1.Network, error) {
	out := []agentv1.Network{}
	if len(b.networks) == 0 {
		return out, nil
	}
	peers, err := b.networkHosts(host)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(b.networks))
	for id := range b.networks {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		n := b.networks[id]
		an := agentv1.Network{ID: n.ID, MTU: linkMTU(n), External: n.External, Type: n.NetworkType,
			PhysicalNetwork: n.PhysicalNetwork}
		switch n.NetworkType {
		case segment.VLAN:
			an.VLAN = n.SegmentationID
		case segment.VXLAN, "":
			an.VNI, an.Peers = uint32(n.SegmentationID), peers[n.ID]
		}
		out = append(out, an)
	}
	return out, nil
}

// networkHosts maps each network of this host to the underlay addresses of
// the other alive agents whose routers or ports are on it.
func (b *stateBuilder) networkHosts(self string) (map[string][]netip.Addr, error) {
	agents, err := b.tx.ListAgents(b.ctx)
	if err != nil {
		return nil, err
	}
	out := map[string][]netip.Addr{}
	for _, a := range agents {
		if a.Host == self || a.UnderlayIP == "" || !b.alive(&a) {
			continue
		}
		ip, err := netip.ParseAddr(a.UnderlayIP)
		if err != nil {
			continue
		}
		nets := map[string]bool{}
		routerIDs, err := b.tx.AgentRouters(b.ctx, a.ID)
		if err != nil {
			return nil, err
		}
		for _, rid := range routerIDs {
			ports, err := b.tx.ListPorts(b.ctx, store.PortFilter{RouterID: rid})
			if err != nil {
				return nil, err
			}
			for _, p := range ports {
				nets[p.NetworkID] = true
			}
		}
		ports, err := b.tx.PortsOnHost(b.ctx, a.Host)
		if err != nil {
			return nil, err
		}
		for _, p := range ports {
			nets[p.NetworkID] = true
		}
		for id := range nets {
			if _, mine := b.networks[id]; mine {
				out[id] = append(out[id], ip)
			}
		}
	}
	for id := range out {
		slices.SortFunc(out[id], func(a, b netip.Addr) int { return a.Compare(b) })
	}
	return out, nil
}

package service

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/neutrino-net/neutrino/api/neutron"
	"github.com/neutrino-net/neutrino/internal/model"
	"github.com/neutrino-net/neutrino/internal/store"
)

// DefaultAgentDownTime is how long an agent may miss heartbeats before it
// is shown dead and gets no new routers.
const DefaultAgentDownTime = 30 * time.Second

// AgentView is an agent with its liveness.
type AgentView struct {
	model.Agent
	Alive bool
}

// AgentDownTime is how long an agent may miss heartbeats before it is dead.
func (s *Service) AgentDownTime() time.Duration { return s.agentDownTime() }

func (s *Service) agentDownTime() time.Duration {
	if s.opts.AgentDownTime > 0 {
		return s.opts.AgentDownTime
	}
	return DefaultAgentDownTime
}

func (s *Service) alive(a *model.Agent) bool {
	return s.now().Sub(a.HeartbeatTimestamp) < s.agentDownTime()
}

// Heartbeat registers or refreshes an agent, and schedules routers that no
// alive agent hosts when a new or revived L3 agent appears. It returns the
// hosts that should resync: those that got routers and the revived agent's.
func (s *Service) Heartbeat(ctx context.Context, hb agentv1.Heartbeat) ([]string, error) {
	if hb.AgentType == "" {
		hb.AgentType = agentv1.AgentTypeL3
	}
	var hosts []string
	err := s.write(ctx, func(tx store.Tx) error {
		if err := tx.Lock(ctx, "agent:"+hb.Host); err != nil {
			return err
		}
		a, err := tx.AgentByHost(ctx, hb.Host, hb.AgentType)
		revived, isNew := false, false
		now := s.now()
		switch {
		case errors.Is(err, store.ErrNotFound):
			a = &model.Agent{ID: newID(), Host: hb.Host, AgentType: hb.AgentType, Binary: agentv1.Binary,
				AdminStateUp: true, CreatedAt: now}
			revived, isNew = true, true
		case err != nil:
			return err
		default:
			revived = !s.alive(a)
		}
		a.UnderlayIP = ""
		if hb.UnderlayIP.IsValid() {
			a.UnderlayIP = hb.UnderlayIP.String()
		}
		a.Configurations, a.StartedAt, a.HeartbeatTimestamp = hb.Configurations, hb.StartedAt.UTC(), now
		if a.Configurations == nil {
			a.Configurations = map[string]any{}
		}
		if isNew {
			err = tx.CreateAgent(ctx, a)
		} else {
			err = tx.UpdateAgent(ctx, a)
		}
		if err != nil {
			return err
		}
		if revived && a.AgentType == agentv1.AgentTypeL3 {
			if hosts, err = s.scheduleAll(ctx, tx); err != nil {
				return err
			}
			// The agent itself resyncs too: while it was dead, failover
			// may have moved its routers away.
			if !slices.Contains(hosts, a.Host) {
				hosts = append(hosts, a.Host)
			}
			s.log.InfoContext(ctx, "agent alive", "host", a.Host, "agent", a.ID)
		}
		return nil
	})
	return hosts, err
}

// scheduleAll binds every router that no alive agent hosts to the least
// loaded alive, admin-up L3 agent, and returns the hosts that got routers.
func (s *Service) scheduleAll(ctx context.Context, tx store.Tx) ([]string, error) {
	if err := tx.Lock(ctx, "scheduler"); err != nil {
		return nil, err
	}
	routers, err := tx.ListRouters(ctx, store.RouterFilter{})
	if err != nil {
		return nil, err
	}
	var hosts []string
	for _, r := range routers {
		host, err := s.schedule(ctx, tx, r.ID)
		if err != nil {
			return nil, err
		}
		if host != "" && !slices.Contains(hosts, host) {
			hosts = append(hosts, host)
		}
	}
	return hosts, nil
}

// schedule binds a router to the least loaded alive L3 agent unless an
// alive agent already hosts it; it returns the new host ("" if none).
func (s *Service) schedule(ctx context.Context, tx store.Tx, routerID string) (string, error) {
	agents, err := tx.ListAgents(ctx)
	if err != nil {
		return "", err
	}
	byID := map[string]*model.Agent{}
	var candidates []*model.Agent
	for i := range agents {
		a := &agents[i]
		byID[a.ID] = a
		if a.AgentType == agentv1.AgentTypeL3 && a.AdminStateUp && s.alive(a) {
			candidates = append(candidates, a)
		}
	}
	bound, err := tx.RouterAgents(ctx, routerID)
	if err != nil {
		return "", err
	}
	for _, id := range bound {
		if a := byID[id]; a != nil && s.alive(a) {
			return "", nil
		}
	}
	if len(candidates) == 0 {
		return "", nil
	}
	loads, err := tx.RouterLoads(ctx)
	if err != nil {
		return "", err
	}
	best := slices.MinFunc(candidates, func(a, b *model.Agent) int {
		if d := loads[a.ID] - loads[b.ID]; d != 0 {
			return d
		}
		return a.CreatedAt.Compare(b.CreatedAt)
	})
	for _, id := range bound { // a dead agent's binding moves
		if err := tx.UnbindRouter(ctx, routerID, id); err != nil {
			return "", err
		}
	}
	if err := tx.BindRouter(ctx, routerID, best.ID); err != nil {
		return "", err
	}
	return best.Host, nil
}

// ListAgents returns every agent to admins and none to others, as the
// reference's admin-only get_agent policy filters the list.
func (s *Service) ListAgents(ctx context.Context) ([]AgentView, error) {
	if !who(ctx).admin {
		return []AgentView{}, nil
	}
	var out []AgentView
	err := s.read(ctx, func(tx store.Tx) error {
		agents, err := tx.ListAgents(ctx)
		for i := range agents {
			out = append(out, AgentView{Agent: agents[i], Alive: s.alive(&agents[i])})
		}
		return err
	})
	return out, err
}

func agentNotFound(id string) *neutron.Error {
	return neutron.NotFound("AgentNotFound", "Agent %s could not be found.", id)
}

// GetAgent returns one agent to an admin (others get a 404).
func (s *Service) GetAgent(ctx context.Context, id string) (*AgentView, error) {
	if !who(ctx).admin {
		return nil, agentNotFound(id)
	}
	var out *AgentView
	err := s.read(ctx, func(tx store.Tx) error {
		a, err := tx.GetAgent(ctx, id)
		if err != nil {
			return notFound(err, "AgentNotFound", "Agent %s could not be found.", id)
		}
		out = &AgentView{Agent: *a, Alive: s.alive(a)}
		return nil
	})
	return out, err
}

// UpdateAgent changes admin_state_up or the description (admin only).
func (s *Service) UpdateAgent(ctx context.Context, id string, change func(*model.Agent)) (*AgentView, error) {
	if !who(ctx).admin {
		return nil, neutron.Forbidden("update_agent")
	}
	var out *AgentView
	err := s.write(ctx, func(tx store.Tx) error {
		a, err := tx.GetAgent(ctx, id)
		if err != nil {
			return notFound(err, "AgentNotFound", "Agent %s could not be found.", id)
		}
		change(a)
		out = &AgentView{Agent: *a, Alive: s.alive(a)}
		return tx.UpdateAgent(ctx, a)
	})
	return out, err
}

// DeleteAgent removes an agent record and its bindings (admin only).
func (s *Service) DeleteAgent(ctx context.Context, id string) error {
	if !who(ctx).admin {
		return neutron.Forbidden("delete_agent")
	}
	return s.write(ctx, func(tx store.Tx) error {
		if _, err := tx.GetAgent(ctx, id); err != nil {
			return notFound(err, "AgentNotFound", "Agent %s could not be found.", id)
		}
		return tx.DeleteAgent(ctx, id)
	})
}

// RouterAgents returns the agents hosting a router the caller owns.
func (s *Service) RouterAgents(ctx context.Context, routerID string) ([]AgentView, error) {
	c := who(ctx)
	var out []AgentView
	err := s.read(ctx, func(tx store.Tx) error {
		if _, err := s.ownedRouter(ctx, tx, c, routerID); err != nil || !c.admin {
			return err // only admins see where routers run
		}
		ids, err := tx.RouterAgents(ctx, routerID)
		if err != nil {
			return err
		}
		for _, id := range ids {
			a, err := tx.GetAgent(ctx, id)
			if err != nil {
				return err
			}
			out = append(out, AgentView{Agent: *a, Alive: s.alive(a)})
		}
		return nil
	})
	return out, err
}

// HostsOfRouter returns the hosts of the agents hosting a router.
func (s *Service) HostsOfRouter(ctx context.Context, routerID string) ([]string, error) {
	var hosts []string
	err := s.read(ctx, func(tx store.Tx) error {
		var err error
		hosts, err = s.routerHosts(ctx, tx, routerID)
		return err
	})
	return hosts, err
}

// hint tells hosts that something changed for them (after a commit).
func (s *Service) hint(ctx context.Context, hosts []string, h agentv1.Hint) {
	if s.opts.Hint == nil {
		return
	}
	for _, host := range hosts {
		s.opts.Hint(ctx, host, h)
	}
}

// hintRouters hints the hosts of routers (after a commit), one hint per
// host naming its routers among them. The hosts are read in a transaction
// of their own that a client hanging up cannot cancel: the change is
// committed, so its hint must go out.
func (s *Service) hintRouters(ctx context.Context, routerIDs ...string) {
	if s.opts.Hint == nil || len(routerIDs) == 0 {
		return
	}
	ctx = context.WithoutCancel(ctx)
	byHost := map[string][]string{}
	err := s.read(ctx, func(tx store.Tx) error {
		for _, id := range routerIDs {
			hosts, err := s.routerHosts(ctx, tx, id)
			if err != nil {
				return err
			}
			for _, h := range hosts {
				if !slices.Contains(byHost[h], id) {
					byHost[h] = append(byHost[h], id)
				}
			}
		}
		return nil
	})
	if err != nil {
		s.log.WarnContext(ctx, "hosts of routers not found; their agents catch up at their next resync",
			"routers", routerIDs, "error", err)
		return
	}
	for _, h := range slices.Sorted(maps.Keys(byHost)) {
		s.hint(ctx, []string{h}, agentv1.Hint{RouterIDs: byHost[h]})
	}
}

// hintAll asks every agent to resync, for changes that move VXLAN peers.
func (s *Service) hintAll(ctx context.Context) {
	if s.opts.Hint == nil {
		return
	}
	var hosts []string
	_ = s.read(ctx, func(tx store.Tx) error {
		agents, err := tx.ListAgents(ctx)
		for _, a := range agents {
			hosts = append(hosts, a.Host)
		}
		return err
	})
	s.hint(ctx, hosts, agentv1.Hint{Full: true})
}

// routerHosts returns the hosts of the agents hosting a router.
func (s *Service) routerHosts(ctx context.Context, tx store.Tx, routerID string) ([]string, error) {
	ids, err := tx.RouterAgents(ctx, routerID)
	if err != nil {
		return nil, err
	}
	var hosts []string
	for _, id := range ids {
		a, err := tx.GetAgent(ctx, id)
		if err != nil {
			return nil, err
		}
		hosts = append(hosts, a.Host)
	}
	return hosts, nil
}

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
		for i := range ports {
			if ports[i].IsRouterPort() {
				continue
			}
			p, err := b.port(&ports[i])
			if err != nil {
				return err
			}
			st.Ports = append(st.Ports, *p)
		}
		st.Networks, err = b.networkList(host)
		return err
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

// iface is a port's data-plane view: addresses with their subnets' lengths.
func (b *stateBuilder) iface(p *model.Port) (agentv1.Interface, []netip.Addr, error) {
	n, err := b.network(p.NetworkID)
	if err != nil {
		return agentv1.Interface{}, nil, err
	}
	out := agentv1.Interface{PortID: p.ID, NetworkID: p.NetworkID, MAC: p.MACAddress, MTU: n.MTU, Addresses: []netip.Prefix{}}
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
		pfx, err := netip.ParsePrefix(ap.IPAddress)
		if err != nil {
			a, aerr := netip.ParseAddr(ap.IPAddress)
			if aerr != nil {
				continue
			}
			pfx = netip.PrefixFrom(a, a.BitLen())
		}
		out.AllowedPairs = append(out.AllowedPairs, agentv1.AddressPair{IP: pfx, MAC: ap.MACAddress})
	}
	return out, nil
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
		out = append(out, agentv1.Network{ID: n.ID, VNI: uint32(n.SegmentationID), MTU: n.MTU, External: n.External,
			Peers: peers[n.ID]})
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

// ReportOutcome is what one agent status report did (for metrics).
type ReportOutcome struct {
	// VPNApplied counts the VPN services whose reported state was taken,
	// VPNIgnored those that do not exist or whose router the reporting
	// host does not host.
	VPNApplied, VPNIgnored int
	// Err is the report's error (nil when it was applied).
	Err error
}

// ReportStatus applies an agent's report in one transaction: ports it
// wired become ACTIVE (and bound with vif_type "bridge"), ports it lost
// DOWN; a router's ports are bound to the reporting host, ACTIVE when the
// router is; VPN services and their connections take the reported states
// (settling PENDING_*) when the reporting host's agent hosts their router,
// and are ignored otherwise, as are routers it does not host. Reports are
// absolute, so a repeat changes nothing.
func (s *Service) ReportStatus(ctx context.Context, r agentv1.StatusReport) (err error) {
	var out ReportOutcome
	if s.opts.ObserveReport != nil {
		defer func() {
			if err != nil { // rolled back: nothing was taken
				out = ReportOutcome{Err: err}
			}
			s.opts.ObserveReport(out)
		}()
	}
	vpn := vpnReports(r.VPNServices)
	if err := checkVPNReports(vpn); err != nil {
		return err
	}
	return s.write(ctx, func(tx store.Tx) error {
		out = ReportOutcome{}
		var hosted map[string]bool
		if len(r.Routers) > 0 || len(vpn) > 0 {
			var err error
			if hosted, err = s.hostedRouters(ctx, tx, r.Host); err != nil {
				return err
			}
		}
		if err := s.reportRouters(ctx, tx, r, hosted); err != nil {
			return err
		}
		if err := s.reportPorts(ctx, tx, r); err != nil {
			return err
		}
		if len(vpn) == 0 {
			return nil
		}
		applied, err := s.applyVPNStatus(ctx, tx, vpn, func(v *model.VPNService) bool { return hosted[v.RouterID] })
		out.VPNApplied, out.VPNIgnored = applied, len(vpn)-applied
		return err
	})
}

// hostedRouters returns the routers the L3 agent of host hosts.
func (s *Service) hostedRouters(ctx context.Context, tx store.Tx, host string) (map[string]bool, error) {
	a, err := tx.AgentByHost(ctx, host, agentv1.AgentTypeL3)
	if errors.Is(err, store.ErrNotFound) {
		return map[string]bool{}, nil
	} else if err != nil {
		return nil, err
	}
	ids, err := tx.AgentRouters(ctx, a.ID)
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(ids))
	for _, id := range ids {
		out[id] = true
	}
	return out, nil
}

// reportPorts applies the ports of a report: only ports bound to the
// reporting host change.
func (s *Service) reportPorts(ctx context.Context, tx store.Tx, r agentv1.StatusReport) error {
	ids := make([]string, 0, len(r.Ports))
	for id := range r.Ports {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		status := r.Ports[id]
		if status != model.StatusActive && status != model.StatusDown {
			return fmt.Errorf("%w: port %s: %q", ErrBadStatus, id, status)
		}
		if err := tx.Lock(ctx, "port:"+id); err != nil {
			return err
		}
		p, err := tx.GetPort(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			return err
		}
		if p.BindingHostID != r.Host || p.Status == status {
			continue
		}
		p.Status = status
		p.BindingVIFType = "unbound"
		if status == model.StatusActive {
			p.BindingVIFType = "bridge"
		}
		s.touch(&p.Standard)
		if err := tx.UpdatePort(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

// reportRouters binds the ports of the routers an agent reports to its
// host, with the router's state as their status. Routers the host does not
// host are ignored: an agent that comes back after its routers moved may
// report them once more while it removes them.
func (s *Service) reportRouters(ctx context.Context, tx store.Tx, r agentv1.StatusReport, hosted map[string]bool) error {
	ids := make([]string, 0, len(r.Routers))
	for id := range r.Routers {
		if hosted[id] {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		status := model.StatusDown
		if r.Routers[id].Status == model.StatusActive {
			status = model.StatusActive
		}
		ports, err := tx.ListPorts(ctx, store.PortFilter{RouterID: id})
		if err != nil {
			return err
		}
		for i := range ports {
			p := &ports[i]
			if !p.IsRouterPort() || (p.Status == status && p.BindingHostID == r.Host && p.BindingVIFType == "bridge") {
				continue
			}
			if err := tx.Lock(ctx, "port:"+p.ID); err != nil {
				return err
			}
			p.Status, p.BindingHostID, p.BindingVIFType = status, r.Host, "bridge"
			s.touch(&p.Standard)
			if err := tx.UpdatePort(ctx, p); err != nil {
				return err
			}
		}
	}
	return nil
}

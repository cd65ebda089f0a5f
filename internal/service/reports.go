package service

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/neutrino-net/neutrino/internal/model"
	"github.com/neutrino-net/neutrino/internal/store"
)

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
		// Trunks first: their locks come before their ports' (as in the
		// trunk API), so concurrent writers never deadlock.
		if err := s.reportTrunks(ctx, tx, r); err != nil {
			return err
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
		p.BindingVIFType, p.BindingVIFDetails = "unbound", map[string]any{}
		if status == model.StatusActive {
			// As the reference's linuxbridge mechanism binds: a compute
			// service plugs the VM's tap, named "tap" + the port id's
			// first 11 characters, and the agent puts it on the
			// network's bridge with its filters.
			p.BindingVIFType = "bridge"
			p.BindingVIFDetails = map[string]any{"port_filter": true, "connectivity": "l2"}
		}
		s.touch(&p.Standard)
		if err := tx.UpdatePort(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

// reportTrunks applies the trunk states of a report: only trunks whose
// parent is bound to the reporting host change. A DEGRADED trunk's reason
// goes to the server's log (the API has no field for it).
func (s *Service) reportTrunks(ctx context.Context, tx store.Tx, r agentv1.StatusReport) error {
	for _, id := range slices.Sorted(maps.Keys(r.Trunks)) {
		st := r.Trunks[id]
		switch st.Status {
		case agentv1.TrunkActive, agentv1.TrunkDown, agentv1.TrunkDegraded:
		default:
			return fmt.Errorf("%w: trunk %s: %q", ErrBadStatus, id, st.Status)
		}
		if err := tx.Lock(ctx, "trunk:"+id); err != nil {
			return err
		}
		t, err := tx.GetTrunk(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			return err
		}
		parent, err := tx.GetPort(ctx, t.PortID)
		if errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			return err
		}
		if parent.BindingHostID != r.Host || t.Status == st.Status {
			continue
		}
		if st.Status == agentv1.TrunkDegraded {
			s.log.WarnContext(ctx, "trunk degraded", "trunk", id, "host", r.Host, "reason", st.Reason)
		}
		t.Status = st.Status
		s.touch(&t.Standard)
		if err := tx.UpdateTrunk(ctx, t); err != nil {
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
		// The router's floating IPs are as realised as the router.
		fs, err := tx.ListFloatingIPs(ctx, store.FloatingIPFilter{RouterIDs: []string{id}})
		if err != nil {
			return err
		}
		for i := range fs {
			f := &fs[i]
			if f.Status == status {
				continue
			}
			if err := tx.Lock(ctx, "floatingip:"+f.ID); err != nil {
				return err
			}
			f.Status = status
			s.touch(&f.Standard)
			if err := tx.UpdateFloatingIP(ctx, f); err != nil {
				return err
			}
		}
	}
	return nil
}

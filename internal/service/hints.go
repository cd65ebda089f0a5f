package service

import (
	"context"
	"maps"
	"slices"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/neutrino-net/neutrino/internal/store"
)

// hint tells hosts that something changed for them (after a commit).
func (s *Service) hint(ctx context.Context, hosts []string, h agentv1.Hint) {
	if s.opts.Hint == nil {
		return
	}
	if b := batchOf(ctx); b != nil { // not committed yet
		b.later(func() { s.hint(outsideBatch(ctx), hosts, h) })
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

// hintGroup hints the hosts of a security group's ports (after a commit
// that changed its rules), in a transaction a client hanging up cannot
// cancel.
func (s *Service) hintGroup(ctx context.Context, groupID string) {
	if s.opts.Hint == nil {
		return
	}
	ctx = context.WithoutCancel(ctx)
	var hosts []string
	err := s.read(ctx, func(tx store.Tx) error {
		ids, err := tx.SecurityGroupPorts(ctx, groupID)
		if err != nil || len(ids) == 0 {
			return err
		}
		ports, err := tx.ListPorts(ctx, store.PortFilter{IDs: ids})
		for _, p := range ports {
			if p.BindingHostID != "" && !slices.Contains(hosts, p.BindingHostID) {
				hosts = append(hosts, p.BindingHostID)
			}
		}
		return err
	})
	if err != nil {
		s.log.WarnContext(ctx, "hosts of a security group not found; their agents catch up at their next resync",
			"security_group", groupID, "error", err)
		return
	}
	slices.Sort(hosts)
	s.hint(ctx, hosts, agentv1.Hint{PortIDs: []string{}})
}

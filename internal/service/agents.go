package service

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/neutrino-net/neutrino/api/agentv1"
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
		if revived && a.AgentType == agentv1.AgentTypeDHCP {
			if hosts, err = s.scheduleDHCPAll(ctx, tx); err != nil {
				return err
			}
			if !slices.Contains(hosts, a.Host) {
				hosts = append(hosts, a.Host)
			}
			s.log.InfoContext(ctx, "DHCP agent alive", "host", a.Host, "agent", a.ID)
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

func agentNotFound(id string) *Error {
	return errNotFound("AgentNotFound", "Agent %s could not be found.", id)
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
		return nil, errForbidden("update_agent")
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
		return errForbidden("delete_agent")
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
		out, err = s.agentViews(ctx, tx, ids)
		return err
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

// agentViews reads agents by id, with whether each is alive.
func (s *Service) agentViews(ctx context.Context, tx store.Tx, ids []string) ([]AgentView, error) {
	out := make([]AgentView, 0, len(ids))
	for _, id := range ids {
		a, err := tx.GetAgent(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, AgentView{Agent: *a, Alive: s.alive(a)})
	}
	return out, nil
}

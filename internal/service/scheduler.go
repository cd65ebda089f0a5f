package service

import (
	"context"
	"errors"
	"maps"
	"slices"
	"time"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/neutrino-net/neutrino/internal/model"
	"github.com/neutrino-net/neutrino/internal/store"
)

// Router placement beyond the initial scheduling (agents.go): failover of
// dead L3 agents' routers and the l3_agent_scheduler extension's admin API.
//
// Lock order, on PostgreSQL: "scheduler" before "router:<id>". Writers that
// change router bindings (Heartbeat's scheduleAll, RescheduleDead, the admin
// API) hold "scheduler"; those that touch a bound router also hold its
// router lock, so a router update or delete never races its move (the
// update's hint reaches the host that has the router when it commits).

// failoverBatch bounds the routers one failover transaction moves: every
// move holds a PostgreSQL advisory lock until the commit, and the lock
// table is small (max_locks_per_transaction).
const failoverBatch = 50

// RouterMove is one router that failover moved.
type RouterMove struct {
	RouterID            string
	FromAgent, FromHost string
	ToAgent, ToHost     string
}

// FailoverPeriod is how often RunFailover looks for dead agents: a third
// of agent_down_time (at least 100 ms), so a dead agent's routers move at
// most agent_down_time/3 after it is declared dead.
func (s *Service) FailoverPeriod() time.Duration {
	return max(s.agentDownTime()/3, 100*time.Millisecond)
}

// RunFailover calls RescheduleDead every period (FailoverPeriod when 0)
// until ctx ends. Every server of a deployment may run it: the moves
// serialise on the store's "scheduler" lock and a check that finds nothing
// to move writes nothing.
func (s *Service) RunFailover(ctx context.Context, period time.Duration) {
	s.runEvery(ctx, period, "failover check failed; retrying at the next one", func(ctx context.Context) error {
		_, err := s.RescheduleDead(ctx)
		return err
	})
}

// runEvery calls check every period (FailoverPeriod when 0) until ctx
// ends, each call bounded by 30 s; a failure is logged with msg and the
// check runs again at the next tick.
func (s *Service) runEvery(ctx context.Context, period time.Duration, msg string, check func(context.Context) error) {
	if period <= 0 {
		period = s.FailoverPeriod()
	}
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		if err := check(cctx); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, msg, "error", err)
		}
		cancel()
	}
}

// splitL3 returns the dead L3 agents and the alive, admin-up L3 agents
// that may take routers.
func (s *Service) splitL3(agents []model.Agent) (dead, candidates []*model.Agent) {
	for i := range agents {
		a := &agents[i]
		switch {
		case a.AgentType != agentv1.AgentTypeL3:
		case !s.alive(a):
			dead = append(dead, a)
		case a.AdminStateUp:
			candidates = append(candidates, a)
		}
	}
	return dead, candidates
}

// leastLoaded is the candidate with the fewest routers, the oldest among
// equals (as schedule picks).
func leastLoaded(candidates []*model.Agent, loads map[string]int) *model.Agent {
	return slices.MinFunc(candidates, func(a, b *model.Agent) int {
		if d := loads[a.ID] - loads[b.ID]; d != 0 {
			return d
		}
		return a.CreatedAt.Compare(b.CreatedAt)
	})
}

// RescheduleDead moves the routers of L3 agents that have been dead for
// agent_down_time to the least loaded alive, admin-up L3 agents, hints
// the hosts that gained or lost routers with their ids and every other
// host to resync (its VXLAN peers may change), and logs each move. With no
// such agent alive the routers stay where they are until one is.
//
// A check that finds nothing to move is one read transaction: the agent
// list and, per dead L3 agent, its indexed router bindings; it never
// reads the routers of alive agents.
func (s *Service) RescheduleDead(ctx context.Context) ([]RouterMove, error) {
	var pending bool
	err := s.read(ctx, func(tx store.Tx) error {
		pending = false
		agents, err := tx.ListAgents(ctx)
		if err != nil {
			return err
		}
		dead, candidates := s.splitL3(agents)
		if len(candidates) == 0 {
			return nil
		}
		for _, a := range dead {
			ids, err := tx.AgentRouters(ctx, a.ID)
			if err != nil {
				return err
			}
			if len(ids) > 0 {
				pending = true
				return nil
			}
		}
		return nil
	})
	if err != nil || !pending {
		return nil, err
	}
	var all []RouterMove
	for {
		moves, more, err := s.moveBatch(ctx)
		if err != nil {
			return all, err
		}
		for _, m := range moves {
			s.log.InfoContext(ctx, "router moved off a dead L3 agent", "router", m.RouterID,
				"from_host", m.FromHost, "to_host", m.ToHost, "from_agent", m.FromAgent, "to_agent", m.ToAgent)
		}
		if len(moves) > 0 {
			byHost := map[string][]string{}
			for _, m := range moves {
				byHost[m.ToHost] = append(byHost[m.ToHost], m.RouterID)
				byHost[m.FromHost] = append(byHost[m.FromHost], m.RouterID)
			}
			s.hintMoved(ctx, byHost)
		}
		all = append(all, moves...)
		if !more {
			return all, nil
		}
	}
}

// moveBatch moves up to failoverBatch routers off dead L3 agents in one
// transaction; more says whether routers were left for another batch.
func (s *Service) moveBatch(ctx context.Context) (moves []RouterMove, more bool, err error) {
	err = s.write(ctx, func(tx store.Tx) error {
		moves, more = nil, false
		if err := tx.Lock(ctx, "scheduler"); err != nil {
			return err
		}
		agents, err := tx.ListAgents(ctx)
		if err != nil {
			return err
		}
		dead, candidates := s.splitL3(agents) // again: liveness may have changed
		if len(candidates) == 0 {
			return nil
		}
		byID := make(map[string]*model.Agent, len(agents))
		for i := range agents {
			byID[agents[i].ID] = &agents[i]
		}
		loads, err := tx.RouterLoads(ctx)
		if err != nil {
			return err
		}
		handled := 0
		for _, d := range dead {
			ids, err := tx.AgentRouters(ctx, d.ID)
			if err != nil {
				return err
			}
			for _, id := range ids {
				if handled == failoverBatch {
					more = true
					return nil
				}
				handled++
				if err := tx.Lock(ctx, "router:"+id); err != nil {
					return err
				}
				bound, err := tx.RouterAgents(ctx, id) // after the lock: it may be gone
				if err != nil {
					return err
				}
				if !slices.Contains(bound, d.ID) {
					continue
				}
				hosted := false
				for _, b := range bound {
					if a := byID[b]; a != nil && s.alive(a) {
						hosted = true
						continue
					}
					if err := tx.UnbindRouter(ctx, id, b); err != nil {
						return err
					}
					loads[b]--
				}
				if hosted { // an alive agent hosts it too: only the dead binding goes
					continue
				}
				best := leastLoaded(candidates, loads)
				if err := tx.BindRouter(ctx, id, best.ID); err != nil {
					return err
				}
				loads[best.ID]++
				moves = append(moves, RouterMove{RouterID: id, FromAgent: d.ID, FromHost: d.Host, ToAgent: best.ID, ToHost: best.Host})
			}
		}
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	return moves, more, nil
}

// hintMoved hints, after a commit, each host that gained or lost routers
// with their ids, and every other agent's host with a full resync: a router
// on another host changes the VXLAN peers of its networks.
func (s *Service) hintMoved(ctx context.Context, byHost map[string][]string) {
	if s.opts.Hint == nil || len(byHost) == 0 {
		return
	}
	ctx = context.WithoutCancel(ctx)
	for _, h := range slices.Sorted(maps.Keys(byHost)) {
		s.hint(ctx, []string{h}, agentv1.Hint{RouterIDs: slices.Compact(slices.Sorted(slices.Values(byHost[h])))})
	}
	var others []string
	err := s.read(ctx, func(tx store.Tx) error {
		agents, err := tx.ListAgents(ctx)
		for _, a := range agents {
			if _, done := byHost[a.Host]; !done && !slices.Contains(others, a.Host) {
				others = append(others, a.Host)
			}
		}
		return err
	})
	if err != nil {
		s.log.WarnContext(ctx, "agents not listed; they learn of moved routers at their next resync", "error", err)
		return
	}
	s.hint(ctx, others, agentv1.Hint{Full: true})
}

func invalidL3Agent(id string) *Error {
	// The reference's InvalidL3Agent is an AgentNotFound, hence a 404.
	return errNotFound("InvalidL3Agent", "Agent %s is not a L3 Agent or has been disabled", id)
}

// L3AgentRouters returns the routers an agent hosts (admin only: others
// get the 404 of an unknown agent, as GetAgent gives them).
func (s *Service) L3AgentRouters(ctx context.Context, agentID string) ([]RouterView, error) {
	if !who(ctx).admin {
		return nil, agentNotFound(agentID)
	}
	out := []RouterView{}
	err := s.read(ctx, func(tx store.Tx) error {
		if _, err := tx.GetAgent(ctx, agentID); err != nil {
			return notFound(err, "AgentNotFound", "Agent %s could not be found.", agentID)
		}
		ids, err := tx.AgentRouters(ctx, agentID)
		if err != nil {
			return err
		}
		for _, id := range ids {
			r, err := tx.GetRouter(ctx, id)
			if errors.Is(err, store.ErrNotFound) {
				continue
			} else if err != nil {
				return err
			}
			v, err := s.routerView(ctx, tx, r)
			if err != nil {
				return err
			}
			out = append(out, *v)
		}
		return nil
	})
	return out, err
}

// AddRouterToL3Agent binds a router to an L3 agent (admin only), as the
// reference's l3_agent_scheduler does for legacy routers: an agent that is
// not an L3 agent or is admin-down is an InvalidL3Agent; a router another
// agent hosts (alive or dead) is a RouterHostedByL3Agent conflict; adding
// it to the agent that hosts it already changes nothing. A dead agent is
// accepted, as in the reference, but failover moves the router to an alive
// agent at its next check.
func (s *Service) AddRouterToL3Agent(ctx context.Context, agentID, routerID string) error {
	if !who(ctx).admin {
		return agentNotFound(agentID)
	}
	var host string
	err := s.write(ctx, func(tx store.Tx) error {
		host = ""
		if err := tx.Lock(ctx, "scheduler"); err != nil {
			return err
		}
		if err := tx.Lock(ctx, "router:"+routerID); err != nil {
			return err
		}
		if _, err := tx.GetRouter(ctx, routerID); err != nil {
			return notFound(err, "RouterNotFound", "Router %s could not be found", routerID)
		}
		a, err := tx.GetAgent(ctx, agentID)
		if err != nil {
			return notFound(err, "AgentNotFound", "Agent %s could not be found.", agentID)
		}
		if a.AgentType != agentv1.AgentTypeL3 || !a.AdminStateUp {
			return invalidL3Agent(agentID)
		}
		bound, err := tx.RouterAgents(ctx, routerID)
		if err != nil {
			return err
		}
		if slices.Contains(bound, agentID) {
			return nil
		}
		if len(bound) > 0 {
			return errConflict("RouterHostedByL3Agent", "The router %s has been already hosted by the L3 Agent %s.", routerID, bound[0])
		}
		if err := tx.BindRouter(ctx, routerID, agentID); err != nil {
			return err
		}
		host = a.Host
		return nil
	})
	if err == nil && host != "" {
		s.log.InfoContext(ctx, "router added to an L3 agent", "router", routerID, "host", host, "agent", agentID)
		s.hintMoved(ctx, map[string][]string{host: {routerID}})
	}
	return err
}

// RemoveRouterFromL3Agent unbinds a router from an agent (admin only). The
// router is then hosted nowhere, as in the reference, until an admin adds
// it to an agent or an L3 agent registers or comes back alive (which
// schedules every router no alive agent hosts).
func (s *Service) RemoveRouterFromL3Agent(ctx context.Context, agentID, routerID string) error {
	if !who(ctx).admin {
		return agentNotFound(agentID)
	}
	var host string
	err := s.write(ctx, func(tx store.Tx) error {
		if err := tx.Lock(ctx, "scheduler"); err != nil {
			return err
		}
		if err := tx.Lock(ctx, "router:"+routerID); err != nil {
			return err
		}
		a, err := tx.GetAgent(ctx, agentID)
		if err != nil {
			return notFound(err, "AgentNotFound", "Agent %s could not be found.", agentID)
		}
		if _, err := tx.GetRouter(ctx, routerID); err != nil {
			return notFound(err, "RouterNotFound", "Router %s could not be found", routerID)
		}
		bound, err := tx.RouterAgents(ctx, routerID)
		if err != nil {
			return err
		}
		if !slices.Contains(bound, agentID) {
			return errConflict("RouterNotHostedByL3Agent", "The router %s is not hosted by L3 agent %s.", routerID, agentID)
		}
		host = a.Host
		return tx.UnbindRouter(ctx, routerID, agentID)
	})
	if err == nil {
		s.log.InfoContext(ctx, "router removed from an L3 agent", "router", routerID, "host", host, "agent", agentID)
		s.hintMoved(ctx, map[string][]string{host: {routerID}})
	}
	return err
}

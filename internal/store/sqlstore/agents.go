package sqlstore

import (
	"context"
	"fmt"

	"github.com/neutrino-net/neutrino/internal/model"
	"github.com/neutrino-net/neutrino/internal/store"
)

// Agents and their router bindings (migration 0003_agents).

// agents lists in creation (insertion) order. "binary" is a reserved word
// in PostgreSQL.
var agents = &table[model.Agent]{
	name: "agents", noun: "agent",
	cols: []string{"id", "host", "agent_type", `"binary"`, "underlay_ip", "admin_state_up", "configurations",
		"started_at", "heartbeat_timestamp", "created_at", "description"},
	fields: func(a *model.Agent) []any {
		return []any{&a.ID, &a.Host, &a.AgentType, &a.Binary, &a.UnderlayIP, &a.AdminStateUp,
			jsonCol[map[string]any]{&a.Configurations}, tsCol{&a.StartedAt}, tsCol{&a.HeartbeatTimestamp},
			tsCol{&a.CreatedAt}, &a.Description}
	},
	order: "seq",
}

func (t *tx) GetAgent(ctx context.Context, id string) (*model.Agent, error) {
	return agents.get(ctx, t, id)
}

func (t *tx) AgentByHost(ctx context.Context, host, agentType string) (*model.Agent, error) {
	as, err := agents.list(ctx, t, where{conds: []string{"host = ?", "agent_type = ?"}, args: []any{host, agentType}})
	switch {
	case err != nil:
		return nil, err
	case len(as) == 0:
		return nil, fmt.Errorf("%s agent on %s: %w", agentType, host, store.ErrNotFound)
	}
	return &as[0], nil
}

// ListAgents lists the agents in the order they were created.
func (t *tx) ListAgents(ctx context.Context) ([]model.Agent, error) {
	return agents.list(ctx, t, where{})
}

// CreateAgent inserts the agent; a second agent of its type on its host, or
// a second one with its id, gives ErrDuplicate.
func (t *tx) CreateAgent(ctx context.Context, a *model.Agent) error {
	return t.atomic1(ctx, "create agent "+a.ID, func() error { return agents.insert(ctx, t, a) })
}

// UpdateAgent overwrites every field of the agent; moving it onto a host
// and type another agent has gives ErrDuplicate.
func (t *tx) UpdateAgent(ctx context.Context, a *model.Agent) error {
	return t.atomic1(ctx, "update agent "+a.ID, func() error { return agents.update(ctx, t, a) })
}

// DeleteAgent deletes the agent; its router bindings go with it (ON DELETE
// CASCADE).
func (t *tx) DeleteAgent(ctx context.Context, id string) error {
	return t.atomic1(ctx, "delete agent "+id, func() error { return agents.delete(ctx, t, id) })
}

// RouterAgents returns the ids of the agents hosting the router, in agent
// creation order; none (or no such router) is an empty list.
func (t *tx) RouterAgents(ctx context.Context, routerID string) ([]string, error) {
	ids, err := queryAll(ctx, t, `SELECT a.id FROM agents a JOIN router_agent_bindings b ON b.agent_id = a.id
		WHERE b.router_id = ? ORDER BY a.seq`, scanOne[string], routerID)
	if err != nil {
		return nil, fmt.Errorf("agents of router %s: %w", routerID, err)
	}
	return ids, nil
}

// AgentRouters returns the ids of the routers the agent hosts, in router
// order (as ListRouters); none (or no such agent) is an empty list.
func (t *tx) AgentRouters(ctx context.Context, agentID string) ([]string, error) {
	ids, err := queryAll(ctx, t, `SELECT r.id FROM routers r JOIN router_agent_bindings b ON b.router_id = r.id
		WHERE b.agent_id = ? ORDER BY r.created_at, r.seq`, scanOne[string], agentID)
	if err != nil {
		return nil, fmt.Errorf("routers of agent %s: %w", agentID, err)
	}
	return ids, nil
}

func (t *tx) RouterLoads(ctx context.Context) (map[string]int, error) {
	type load struct {
		agent string
		n     int
	}
	ls, err := queryAll(ctx, t, "SELECT agent_id, COUNT(*) FROM router_agent_bindings GROUP BY agent_id",
		func(s scanner) (l load, err error) {
			err = s.Scan(&l.agent, &l.n)
			return l, err
		})
	if err != nil {
		return nil, fmt.Errorf("router loads: %w", err)
	}
	m := make(map[string]int, len(ls))
	for _, l := range ls {
		m[l.agent] = l.n
	}
	return m, nil
}

// BindRouter records the binding unless it exists; a missing router or
// agent gives ErrReferenced.
func (t *tx) BindRouter(ctx context.Context, routerID, agentID string) error {
	return t.atomic1(ctx, "bind router "+routerID+" to agent "+agentID, func() error {
		_, err := t.exec(ctx, `INSERT INTO router_agent_bindings (router_id, agent_id) VALUES (?, ?)
			ON CONFLICT (router_id, agent_id) DO NOTHING`, routerID, agentID)
		return err
	})
}

// UnbindRouter removes the binding; ErrNotFound if there was none.
func (t *tx) UnbindRouter(ctx context.Context, routerID, agentID string) error {
	return t.atomic1(ctx, "unbind router "+routerID+" from agent "+agentID, func() error {
		return t.execOne(ctx, "DELETE FROM router_agent_bindings WHERE router_id = ? AND agent_id = ?", routerID, agentID)
	})
}

// PortsOnHost lists, as ListPorts does, the ports bound to host ("" gives
// the unbound ports).
func (t *tx) PortsOnHost(ctx context.Context, host string) ([]model.Port, error) {
	var w where
	w.add("binding_host_id = ?", host)
	ps, err := t.listPorts(ctx, w, store.Page{})
	if err != nil {
		return nil, fmt.Errorf("ports on host %s: %w", host, err)
	}
	return ps, nil
}

// NetworkAgents returns the ids of the DHCP agents serving a network, in
// agent order.
func (t *tx) NetworkAgents(ctx context.Context, networkID string) ([]string, error) {
	ids, err := queryAll(ctx, t, `SELECT a.id FROM agents a JOIN network_dhcp_agent_bindings b ON b.agent_id = a.id
		WHERE b.network_id = ? ORDER BY a.seq`, scanOne[string], networkID)
	if err != nil {
		return nil, fmt.Errorf("DHCP agents of network %s: %w", networkID, err)
	}
	return ids, nil
}

// AgentNetworks returns the ids of the networks a DHCP agent serves, in
// network order.
func (t *tx) AgentNetworks(ctx context.Context, agentID string) ([]string, error) {
	ids, err := queryAll(ctx, t, `SELECT n.id FROM networks n JOIN network_dhcp_agent_bindings b ON b.network_id = n.id
		WHERE b.agent_id = ? ORDER BY n.seq`, scanOne[string], agentID)
	if err != nil {
		return nil, fmt.Errorf("networks of DHCP agent %s: %w", agentID, err)
	}
	return ids, nil
}

func (t *tx) NetworkLoads(ctx context.Context) (map[string]int, error) {
	type load struct {
		agent string
		n     int
	}
	ls, err := queryAll(ctx, t, "SELECT agent_id, COUNT(*) FROM network_dhcp_agent_bindings GROUP BY agent_id",
		func(s scanner) (l load, err error) {
			err = s.Scan(&l.agent, &l.n)
			return l, err
		})
	if err != nil {
		return nil, fmt.Errorf("network loads: %w", err)
	}
	m := make(map[string]int, len(ls))
	for _, l := range ls {
		m[l.agent] = l.n
	}
	return m, nil
}

// BindNetwork records the binding unless it exists; a missing network or
// agent gives ErrReferenced.
func (t *tx) BindNetwork(ctx context.Context, networkID, agentID string) error {
	return t.atomic1(ctx, "bind network "+networkID+" to DHCP agent "+agentID, func() error {
		_, err := t.exec(ctx, `INSERT INTO network_dhcp_agent_bindings (network_id, agent_id) VALUES (?, ?)
			ON CONFLICT (network_id, agent_id) DO NOTHING`, networkID, agentID)
		return err
	})
}

// UnbindNetwork removes the binding; ErrNotFound if there was none.
func (t *tx) UnbindNetwork(ctx context.Context, networkID, agentID string) error {
	return t.atomic1(ctx, "unbind network "+networkID+" from DHCP agent "+agentID, func() error {
		return t.execOne(ctx, "DELETE FROM network_dhcp_agent_bindings WHERE network_id = ? AND agent_id = ?", networkID, agentID)
	})
}

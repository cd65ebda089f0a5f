package httpapi

import (
	"net/http"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/neutrino-net/neutrino/api/neutron"
	"github.com/neutrino-net/neutrino/internal/model"
	"github.com/neutrino-net/neutrino/internal/service"
	"github.com/neutrino-net/neutrino/internal/store"
)

var agentRes = newResource("agent", "agents",
	attr{name: "id", filter: fString, sort: true},
	attr{name: "agent_type", filter: fString, sort: true},
	attr{name: "binary", filter: fString, sort: true},
	attr{name: "topic", filter: fString},
	attr{name: "host", filter: fString, sort: true},
	attr{name: "admin_state_up", put: true, conv: toBool, filter: fBool, sort: true},
	attr{name: "alive", filter: fBool},
	attr{name: "description", put: true, conv: orNone(str(255)), filter: fString},
	attr{name: "heartbeat_timestamp", sort: true},
	attr{name: "created_at", sort: true},
	attr{name: "started_at", sort: true},
	attr{name: "configurations"},
	attr{name: "availability_zone", filter: fString},
	attr{name: "resources_synced"},
)

// agentTime is the reference's agent timestamp format.
const agentTime = "2006-01-02 15:04:05"

func agentWire(a *service.AgentView) object {
	return object{
		"id": a.ID, "agent_type": a.AgentType, "binary": a.Binary, "topic": agentTopic(a.AgentType), "host": a.Host,
		"admin_state_up": a.AdminStateUp, "alive": a.Alive, "description": strOrNil(a.Description),
		"heartbeat_timestamp": a.HeartbeatTimestamp.UTC().Format(agentTime),
		"created_at":          a.CreatedAt.UTC().Format(agentTime),
		"started_at":          a.StartedAt.UTC().Format(agentTime),
		"configurations":      a.Configurations, "availability_zone": "nova", "resources_synced": nil,
	}
}

// agentTopic is the reference's RPC topic of an agent type.
func agentTopic(agentType string) string {
	if agentType == agentv1.AgentTypeDHCP {
		return "dhcp_agent"
	}
	return "l3_agent"
}

func (a *API) agents() crud {
	return crud{
		res: agentRes,
		list: func(r *http.Request, pg store.Page) (listing, error) {
			as, err := a.svc.ListAgents(r.Context())
			return wireList(as, agentWire), err
		},
		show: func(r *http.Request, id string) (object, error) {
			ag, err := a.svc.GetAgent(r.Context(), id)
			if err != nil {
				return nil, err
			}
			return agentWire(ag), nil
		},
		update: func(r *http.Request, id string, v values) (object, error) {
			ag, err := a.svc.UpdateAgent(r.Context(), id, func(m *model.Agent) {
				m.AdminStateUp = v.boolean("admin_state_up", m.AdminStateUp)
				if v.has("description") {
					m.Description = v.str("description")
				}
			})
			if err != nil {
				return nil, err
			}
			return agentWire(ag), nil
		},
		remove: func(r *http.Request, id string) error { return a.svc.DeleteAgent(r.Context(), id) },
	}
}

func (a *API) routerL3Agents(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		methodNotAllowed(w, r)
		return
	}
	as, err := a.svc.RouterAgents(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, object{"agents": wireList(as, agentWire).all()})
}

// l3Routers serves the l3_agent_scheduler extension's collection
// /v2.0/agents/{id}/l3-routers: GET lists the routers the agent hosts (as
// GET /v2.0/routers shows them), POST {"router_id": ...} binds one.
func (a *API) l3Routers(w http.ResponseWriter, r *http.Request) {
	agentID := r.PathValue("id")
	switch r.Method {
	case http.MethodGet:
		rs, err := a.svc.L3AgentRouters(r.Context(), agentID)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		fields := r.URL.Query()["fields"]
		out := wireList(rs, func(v *service.RouterView) object { return selectFields(routerWire(v, true), fields) }).all()
		writeJSON(w, http.StatusOK, object{"routers": out})
	case http.MethodPost:
		m, err := readObject(r)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		raw, ok := m["router_id"]
		if !ok || raw == nil {
			a.fail(w, r, neutron.BadRequest("Failed to parse request. Required attribute 'router_id' not specified"))
			return
		}
		id, err := uuidConv(raw)
		if err != nil {
			a.fail(w, r, attrError("router_id", err))
			return
		}
		if err := a.svc.AddRouterToL3Agent(r.Context(), agentID, id.(string)); err != nil {
			a.fail(w, r, err)
			return
		}
		// The reference answers with its plugin's None serialised: a JSON
		// null, which openstacksdk's add_router_to_agent decodes (it
		// calls resp.json(), which an empty body fails).
		writeJSON(w, http.StatusCreated, nil)
	default:
		methodNotAllowed(w, r)
	}
}

// l3Router serves DELETE /v2.0/agents/{id}/l3-routers/{router_id}.
func (a *API) l3Router(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodDelete {
		methodNotAllowed(w, r)
		return
	}
	if err := a.svc.RemoveRouterFromL3Agent(r.Context(), r.PathValue("id"), r.PathValue("router_id")); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// networkDHCPAgents serves GET /v2.0/networks/{id}/dhcp-agents.
func (a *API) networkDHCPAgents(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		methodNotAllowed(w, r)
		return
	}
	as, err := a.svc.NetworkDHCPAgents(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, object{"agents": wireList(as, agentWire).all()})
}

// dhcpNetworks serves the dhcp_agent_scheduler extension's collection
// /v2.0/agents/{id}/dhcp-networks: GET lists the networks the agent serves
// (as GET /v2.0/networks shows them), POST {"network_id": ...} adds one.
func (a *API) dhcpNetworks(w http.ResponseWriter, r *http.Request) {
	agentID := r.PathValue("id")
	switch r.Method {
	case http.MethodGet:
		ns, err := a.svc.DHCPAgentNetworks(r.Context(), agentID)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		fields := r.URL.Query()["fields"]
		out := wireList(ns, func(v *service.NetworkView) object { return selectFields(networkWire(v, true), fields) }).all()
		writeJSON(w, http.StatusOK, object{"networks": out})
	case http.MethodPost:
		m, err := readObject(r)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		raw, ok := m["network_id"]
		if !ok || raw == nil {
			a.fail(w, r, neutron.BadRequest("Failed to parse request. Required attribute 'network_id' not specified"))
			return
		}
		id, err := uuidConv(raw)
		if err != nil {
			a.fail(w, r, attrError("network_id", err))
			return
		}
		if err := a.svc.AddNetworkToDHCPAgent(r.Context(), agentID, id.(string)); err != nil {
			a.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusCreated, nil)
	default:
		methodNotAllowed(w, r)
	}
}

// dhcpNetwork serves DELETE /v2.0/agents/{id}/dhcp-networks/{network_id}.
func (a *API) dhcpNetwork(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodDelete {
		methodNotAllowed(w, r)
		return
	}
	if err := a.svc.RemoveNetworkFromDHCPAgent(r.Context(), r.PathValue("id"), r.PathValue("network_id")); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

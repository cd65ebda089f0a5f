package httpapi

import (
	"net/http"

	"github.com/neutrino-net/neutrino/internal/model"
	"github.com/neutrino-net/neutrino/internal/service"
	"github.com/neutrino-net/neutrino/internal/store"
)

var networkRes = newResource("network", "networks", common(
	attr{name: "admin_state_up", post: true, put: true, conv: toBool, filter: fBool, sort: true},
	attr{name: "status", filter: fString, sort: true},
	attr{name: "subnets", filter: fListValue},
	attr{name: "shared", post: true, put: true, conv: toBool, filter: fBool, sort: true},
	attr{name: "router:external", post: true, put: true, conv: toBool, filter: fBool, sort: true},
	attr{name: "mtu", post: true, put: true, conv: toInt, filter: fInt, sort: true},
	attr{name: "port_security_enabled", post: true, put: true, conv: toBool, filter: fBool},
)...)

func networkWire(v *service.NetworkView) object {
	n := &v.Network
	return base(n.ID, n.ProjectID, n.Standard, object{
		"name":                      n.Name,
		"admin_state_up":            n.AdminStateUp,
		"status":                    n.Status,
		"subnets":                   v.Subnets,
		"shared":                    n.Shared,
		"router:external":           n.External,
		"mtu":                       n.MTU,
		"port_security_enabled":     n.PortSecurityEnabled,
		"availability_zone_hints":   []string{},
		"availability_zones":        []string{},
		"ipv4_address_scope":        nil,
		"ipv6_address_scope":        nil,
		"l2_adjacency":              true,
		"is_default":                false,
		"tags":                      []string{},
		"provider:network_type":     nil,
		"provider:physical_network": nil,
		"provider:segmentation_id":  nil,
	})
}

func applyNetwork(v values, n *model.Network) {
	if v.has("name") {
		n.Name = v.str("name")
	}
	applyDescription(v, &n.Standard)
	n.AdminStateUp = v.boolean("admin_state_up", n.AdminStateUp)
	n.Shared = v.boolean("shared", n.Shared)
	n.External = v.boolean("router:external", n.External)
	n.PortSecurityEnabled = v.boolean("port_security_enabled", n.PortSecurityEnabled)
	if m, ok := v["mtu"].(int); ok {
		n.MTU = m
	}
}

func (a *API) networks() crud {
	return crud{
		res: networkRes,
		list: func(r *http.Request, pg store.Page) (listing, error) {
			nets, err := a.svc.ListNetworks(r.Context(), pg)
			return wireList(nets, networkWire), err
		},
		show: func(r *http.Request, id string) (object, error) {
			v, err := a.svc.GetNetwork(r.Context(), id)
			if err != nil {
				return nil, err
			}
			return networkWire(v), nil
		},
		create: func(r *http.Request, v values) (object, error) {
			n := model.Network{ProjectID: v.str("project_id"), AdminStateUp: true, PortSecurityEnabled: true}
			applyNetwork(v, &n)
			out, err := a.svc.CreateNetwork(r.Context(), n)
			if err != nil {
				return nil, err
			}
			return networkWire(out), nil
		},
		update: func(r *http.Request, id string, v values) (object, error) {
			out, err := a.svc.UpdateNetwork(r.Context(), id, func(n *model.Network) { applyNetwork(v, n) })
			if err != nil {
				return nil, err
			}
			return networkWire(out), nil
		},
		remove: func(r *http.Request, id string) error { return a.svc.DeleteNetwork(r.Context(), id) },
	}
}

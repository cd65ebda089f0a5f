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
	attr{name: "provider:network_type", post: true, put: true, conv: str(255), filter: fString, adminOnly: true},
	attr{name: "provider:physical_network", post: true, put: true, conv: orNone(str(64)), filter: fString, adminOnly: true},
	attr{name: "provider:segmentation_id", post: true, put: true, conv: orNone(toInt), filter: fInt, adminOnly: true},
)...)

// networkWire is a network as the API shows it; the provider attributes
// only to admins, as in the reference.
func networkWire(v *service.NetworkView, admin bool) object {
	n := &v.Network
	o := base(n.ID, n.ProjectID, n.Standard, object{
		"name":                    n.Name,
		"admin_state_up":          n.AdminStateUp,
		"status":                  n.Status,
		"subnets":                 v.Subnets,
		"shared":                  n.Shared,
		"router:external":         n.External,
		"mtu":                     n.MTU,
		"port_security_enabled":   n.PortSecurityEnabled,
		"availability_zone_hints": []string{},
		"availability_zones":      []string{},
		"ipv4_address_scope":      nil,
		"ipv6_address_scope":      nil,
		"l2_adjacency":            true,
		"is_default":              false,
		"tags":                    []string{},
	})
	if admin {
		o["provider:network_type"] = n.NetworkType
		o["provider:physical_network"] = strOrNil(n.PhysicalNetwork)
		o["provider:segmentation_id"] = nil
		if n.SegmentationID != 0 {
			o["provider:segmentation_id"] = n.SegmentationID
		}
	}
	return o
}

// providerRequest is what v gives of the provider attributes.
func providerRequest(v values) *service.ProviderRequest {
	var p service.ProviderRequest
	if t, ok := v["provider:network_type"].(string); ok {
		p.NetworkType = &t
	}
	if pn, ok := v["provider:physical_network"].(string); ok {
		p.PhysicalNetwork = &pn
	}
	if id, ok := v["provider:segmentation_id"].(int); ok {
		p.SegmentationID = &id
	}
	return &p
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
			admin := isAdmin(r)
			return wireList(nets, func(v *service.NetworkView) object { return networkWire(v, admin) }), err
		},
		show: func(r *http.Request, id string) (object, error) {
			v, err := a.svc.GetNetwork(r.Context(), id)
			if err != nil {
				return nil, err
			}
			return networkWire(v, isAdmin(r)), nil
		},
		create: func(r *http.Request, v values) (object, error) {
			n := model.Network{ProjectID: v.str("project_id"), AdminStateUp: true, PortSecurityEnabled: true}
			applyNetwork(v, &n)
			out, err := a.svc.CreateNetwork(r.Context(), n, providerRequest(v))
			if err != nil {
				return nil, err
			}
			return networkWire(out, isAdmin(r)), nil
		},
		update: func(r *http.Request, id string, v values) (object, error) {
			out, err := a.svc.UpdateNetwork(r.Context(), id, providerRequest(v), func(n *model.Network) { applyNetwork(v, n) })
			if err != nil {
				return nil, err
			}
			return networkWire(out, isAdmin(r)), nil
		},
		remove: func(r *http.Request, id string) error { return a.svc.DeleteNetwork(r.Context(), id) },
	}
}

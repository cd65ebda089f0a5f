package httpapi

import (
	"net/http"
	"net/netip"

	"github.com/neutrino-net/neutrino/internal/model"
	"github.com/neutrino-net/neutrino/internal/service"
	"github.com/neutrino-net/neutrino/internal/store"
)

var routeSpec = dictSpec([]string{"destination", "nexthop"}, map[string]converter{"destination": cidrConv, "nexthop": ipConv})

var gatewaySpec = dictSpec([]string{"network_id"}, map[string]converter{
	"network_id":         uuidConv,
	"enable_snat":        toBool,
	"external_fixed_ips": orNone(listOf(dictSpec(nil, map[string]converter{"subnet_id": uuidConv, "ip_address": ipConv}))),
	"qos_policy_id":      orNone(uuidConv),
})

// gatewayConv accepts null and {} as "no gateway".
func gatewayConv(v any) (any, error) {
	if m, ok := v.(map[string]any); v == nil || (ok && len(m) == 0) {
		return nil, nil
	}
	return gatewaySpec(v)
}

var routerRes = newResource("router", "routers", common(
	attr{name: "admin_state_up", post: true, put: true, conv: toBool, filter: fBool, sort: true},
	attr{name: "status", filter: fString, sort: true},
	attr{name: "external_gateway_info", post: true, put: true, conv: gatewayConv},
	attr{name: "routes", post: false, put: true, conv: orNone(listOf(routeSpec))},
	attr{name: "distributed", adminOnly: true, filter: fBool},
	attr{name: "ha", adminOnly: true, filter: fBool},
)...)

func routerWire(v *service.RouterView, admin bool) object {
	rt := &v.Router
	routes := make([]object, len(rt.Routes))
	for i, x := range rt.Routes {
		routes[i] = object{"destination": x.Destination.String(), "nexthop": x.Nexthop.String()}
	}
	var gw any
	if rt.Gateway != nil {
		gw = object{
			"network_id":         rt.Gateway.NetworkID,
			"enable_snat":        rt.Gateway.EnableSNAT,
			"external_fixed_ips": fixedIPsWire(v.GatewayIPs),
		}
	}
	o := base(rt.ID, rt.ProjectID, rt.Standard, object{
		"name":                    rt.Name,
		"admin_state_up":          rt.AdminStateUp,
		"status":                  rt.Status,
		"external_gateway_info":   gw,
		"routes":                  routes,
		"availability_zone_hints": []string{},
		"availability_zones":      []string{},
		"tags":                    []string{},
	})
	if admin {
		o["distributed"] = rt.Distributed
		o["ha"] = rt.HA
	}
	return o
}

func gatewayFrom(v any) *service.GatewayRequest {
	m, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	gw := &service.GatewayRequest{NetworkID: m["network_id"].(string)}
	if b, ok := m["enable_snat"].(bool); ok {
		gw.EnableSNAT = &b
	}
	if ips, ok := m["external_fixed_ips"]; ok && ips != nil {
		gw.ExternalFixedIPs = fixedIPsFrom(ips)
	}
	return gw
}

func applyRouter(v values, rt *model.Router) {
	if v.has("name") {
		rt.Name = v.str("name")
	}
	applyDescription(v, &rt.Standard)
	rt.AdminStateUp = v.boolean("admin_state_up", rt.AdminStateUp)
	if v.has("routes") {
		rt.Routes = []model.Route{}
		for _, x := range toList(v["routes"]) {
			m := x.(map[string]any)
			rt.Routes = append(rt.Routes, model.Route{Destination: m["destination"].(netip.Prefix), Nexthop: m["nexthop"].(netip.Addr)})
		}
	}
}

func (a *API) routers() crud {
	return crud{
		res: routerRes,
		list: func(r *http.Request, pg store.Page) (listing, error) {
			rs, err := a.svc.ListRouters(r.Context(), pg)
			admin := isAdmin(r)
			return wireList(rs, func(v *service.RouterView) object { return routerWire(v, admin) }), err
		},
		show: func(r *http.Request, id string) (object, error) {
			v, err := a.svc.GetRouter(r.Context(), id)
			if err != nil {
				return nil, err
			}
			return routerWire(v, isAdmin(r)), nil
		},
		create: func(r *http.Request, v values) (object, error) {
			rt := model.Router{ProjectID: v.str("project_id"), AdminStateUp: true}
			applyRouter(v, &rt)
			out, err := a.svc.CreateRouter(r.Context(), rt, gatewayFrom(v["external_gateway_info"]))
			if err != nil {
				return nil, err
			}
			return routerWire(out, isAdmin(r)), nil
		},
		update: func(r *http.Request, id string, v values) (object, error) {
			out, err := a.svc.UpdateRouter(r.Context(), id, service.RouterUpdate{
				Change:     func(rt *model.Router) { applyRouter(v, rt) },
				GatewaySet: v.has("external_gateway_info"),
				Gateway:    gatewayFrom(v["external_gateway_info"]),
			})
			if err != nil {
				return nil, err
			}
			return routerWire(out, isAdmin(r)), nil
		},
		remove: func(r *http.Request, id string) error { return a.svc.DeleteRouter(r.Context(), id) },
	}
}

// routerInterface serves PUT /v2.0/routers/{id}/add_router_interface and
// remove_router_interface, whose bodies are not wrapped in an envelope.
func (a *API) routerInterface(add bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPut {
			methodNotAllowed(w, r)
			return
		}
		m, err := readObject(r)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		var req service.InterfaceRequest
		for key, dst := range map[string]*string{"subnet_id": &req.SubnetID, "port_id": &req.PortID} {
			if raw, ok := m[key]; ok && raw != nil {
				s, err := uuidConv(raw)
				if err != nil {
					a.fail(w, r, attrError(key, err))
					return
				}
				*dst = s.(string)
			}
		}
		var info *service.InterfaceInfo
		if add {
			info, err = a.svc.AddInterface(r.Context(), r.PathValue("id"), req)
		} else {
			info, err = a.svc.RemoveInterface(r.Context(), r.PathValue("id"), req)
		}
		if err != nil {
			a.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, object{
			"id": info.RouterID, "tenant_id": info.ProjectID, "project_id": info.ProjectID,
			"port_id": info.PortID, "network_id": info.NetworkID, "subnet_id": info.SubnetID, "subnet_ids": info.SubnetIDs,
		})
	}
}

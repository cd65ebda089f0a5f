package httpapi

import (
	"net/http"
	"net/netip"

	"github.com/neutrino-net/neutrino/internal/service"
	"github.com/neutrino-net/neutrino/internal/store"
)

var floatingIPRes = newResource("floatingip", "floatingips", append(append(append([]attr{idAttr(), descriptionAttr()},
	projectAttrs()...), standardAttrs()...),
	attr{name: "floating_network_id", post: true, required: true, conv: uuidConv, filter: fString, sort: true},
	attr{name: "floating_ip_address", post: true, conv: ipConv, filter: fString, sort: true},
	attr{name: "subnet_id", post: true, conv: orNone(uuidConv)},
	attr{name: "port_id", post: true, put: true, conv: orNone(uuidConv), filter: fString, sort: true},
	attr{name: "fixed_ip_address", post: true, put: true, conv: orNone(ipConv), filter: fString, sort: true},
	attr{name: "router_id", filter: fString, sort: true},
	attr{name: "status", filter: fString, sort: true},
	attr{name: "port_details"},
)...)

func floatingIPWire(v *service.FloatingIPView) object {
	f := &v.FloatingIP
	o := base(f.ID, f.ProjectID, f.Standard, object{
		"floating_network_id": f.FloatingNetworkID,
		"floating_ip_address": f.FloatingIPAddress.String(),
		"port_id":             strOrNil(f.PortID),
		"fixed_ip_address":    addrOrNil(f.FixedIPAddress),
		"router_id":           strOrNil(f.RouterID),
		"status":              f.Status,
		"port_details":        nil,
		"tags":                []string{},
	})
	if p := v.Port; p != nil {
		o["port_details"] = object{"name": p.Name, "network_id": p.NetworkID, "mac_address": p.MACAddress,
			"admin_state_up": p.AdminStateUp, "status": p.Status, "device_id": p.DeviceID, "device_owner": p.DeviceOwner}
	}
	return o
}

func floatingIPRequest(v values) service.FloatingIPRequest {
	req := service.FloatingIPRequest{ProjectID: v.str("project_id"), FloatingNetworkID: v.str("floating_network_id"),
		SubnetID: v.str("subnet_id")}
	if a, ok := v["floating_ip_address"].(netip.Addr); ok {
		req.FloatingIPAddress = &a
	}
	if v.has("port_id") {
		id := v.str("port_id") // null: "", dissociate
		req.PortID = &id
	}
	if a, ok := v["fixed_ip_address"].(netip.Addr); ok {
		req.FixedIPAddress = &a
	}
	if v.has("description") {
		d := v.str("description")
		req.Description = &d
	}
	return req
}

func (a *API) floatingIPs() crud {
	return crud{
		res: floatingIPRes,
		list: func(r *http.Request, pg store.Page) (listing, error) {
			fs, err := a.svc.ListFloatingIPs(r.Context(), pg)
			return wireList(fs, floatingIPWire), err
		},
		show: func(r *http.Request, id string) (object, error) {
			v, err := a.svc.GetFloatingIP(r.Context(), id)
			if err != nil {
				return nil, err
			}
			return floatingIPWire(v), nil
		},
		create: func(r *http.Request, v values) (object, error) {
			out, err := a.svc.CreateFloatingIP(r.Context(), floatingIPRequest(v))
			if err != nil {
				return nil, err
			}
			return floatingIPWire(out), nil
		},
		update: func(r *http.Request, id string, v values) (object, error) {
			out, err := a.svc.UpdateFloatingIP(r.Context(), id, floatingIPRequest(v))
			if err != nil {
				return nil, err
			}
			return floatingIPWire(out), nil
		},
		remove: func(r *http.Request, id string) error { return a.svc.DeleteFloatingIP(r.Context(), id) },
	}
}

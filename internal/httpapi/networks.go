package httpapi

import (
	"net/http"
	"slices"
	"strings"

	"github.com/neutrino-net/neutrino/api/neutron"
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
	attr{name: "segments", post: true, put: true, conv: orNone(segmentsConv), adminOnly: true},
)...)

// multiProviderExtension is the reference's multi-provider extension.
var multiProviderExtension = Extension{"multi-provider", "Multi Provider Network",
	"Expose mapping of virtual networks to multiple physical networks", "2013-06-27T10:00:00-00:00"}

// segmentKeys are the attributes of one segment.
var segmentKeys = []string{"provider:network_type", "provider:physical_network", "provider:segmentation_id"}

// segmentsConv is the reference's type:convert_segments: a list of
// objects with only the provider attributes; a segmentation id of 0 or
// null is not given.
func segmentsConv(v any) (any, error) {
	l, ok := v.([]any)
	if !ok {
		return nil, reason("'%s' is not a list", quote(v))
	}
	out := make([]service.ProviderRequest, 0, len(l))
	for _, x := range l {
		m, ok := x.(map[string]any)
		if !ok {
			return nil, reason("'%s' is not a dictionary", quote(x))
		}
		var bad []string
		for k := range m {
			if !slices.Contains(segmentKeys, k) {
				bad = append(bad, k)
			}
		}
		if len(bad) > 0 {
			slices.Sort(bad)
			// The reference raises a bare HTTPBadRequest here.
			return nil, neutron.BadRequest("Unrecognized attribute(s) '%s'", strings.Join(bad, ", "))
		}
		var p service.ProviderRequest
		if t := m["provider:network_type"]; t != nil {
			st, ok := t.(string)
			if !ok {
				return nil, reason("'%s' is not a valid string", quote(t))
			}
			p.NetworkType = &st
		}
		if pn := m["provider:physical_network"]; pn != nil {
			st, ok := pn.(string)
			if !ok {
				return nil, reason("'%s' is not a valid string", quote(pn))
			}
			p.PhysicalNetwork = &st
		}
		if id := m["provider:segmentation_id"]; id != nil {
			n, err := toInt(id)
			if err != nil {
				return nil, err
			}
			if n.(int) != 0 {
				i := n.(int)
				p.SegmentationID = &i
			}
		}
		out = append(out, p)
	}
	return out, nil
}

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
		"ipv4_address_scope":      strOrNil(v.IPv4AddressScope),
		"ipv6_address_scope":      strOrNil(v.IPv6AddressScope),
		"l2_adjacency":            true,
		"is_default":              false,
		"tags":                    []string{},
	})
	if admin && len(n.Segments) > 1 {
		// A multi-segment network shows its segments instead of the
		// provider attributes, as in the reference.
		segs := make([]object, len(n.Segments))
		for i, sg := range n.Segments {
			segs[i] = object{"provider:network_type": sg.NetworkType,
				"provider:physical_network": strOrNil(sg.PhysicalNetwork), "provider:segmentation_id": nil}
			if sg.SegmentationID != 0 {
				segs[i]["provider:segmentation_id"] = sg.SegmentationID
			}
		}
		o["segments"] = segs
	} else if admin {
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
	p.Segments, p.SegmentsGiven = v["segments"].([]service.ProviderRequest)
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

package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/neutrino-net/neutrino/api/neutron"
	"github.com/neutrino-net/neutrino/internal/model"
	"github.com/neutrino-net/neutrino/internal/peerconfig"
	"github.com/neutrino-net/neutrino/internal/service"
	"github.com/neutrino-net/neutrino/internal/store"
)

// Crypto vocabularies of the 2025.x reference (contract section 4).
var (
	encryptionAlgorithms = func() []string {
		out := []string{"3des", "aes-128", "aes-192", "aes-256"}
		for _, mode := range []string{"ccm", "gcm"} {
			for _, icv := range []string{"8", "12", "16"} {
				for _, bits := range []string{"128", "192", "256"} {
					out = append(out, "aes-"+bits+"-"+mode+"-"+icv)
				}
			}
		}
		return append(out, "aes-128-ctr", "aes-192-ctr", "aes-256-ctr")
	}()
	authAlgorithms = []string{"sha1", "sha256", "sha384", "sha512", "aes-xcbc", "aes-cmac"}
	pfsGroups      = func() []string {
		out := []string{"group2", "group5"}
		for g := 14; g <= 31; g++ {
			out = append(out, "group"+strconv.Itoa(g))
		}
		return out
	}()
	dpdActions = []string{"clear", "disabled", "hold", "restart", "restart-by-peer"}
)

// vpnCommon is id, project, name and description with the reference's
// VPN sort keys (id, project and name only, when sortable).
func vpnCommon(sortable bool, extra ...attr) []attr {
	out := []attr{
		{name: "id", filter: fString, sort: sortable},
		{name: "tenant_id", post: true, conv: str(255), filter: fString, sort: sortable},
		{name: "project_id", post: true, conv: str(255), filter: fString, sort: sortable},
		{name: "name", post: true, put: true, conv: nameString, filter: fString, sort: sortable},
		{name: "description", post: true, put: true, conv: str(255), filter: fString},
	}
	return append(out, extra...)
}

// lifetimeReq is a converted lifetime; raw keeps the value as sent.
type lifetimeReq struct {
	units *string
	value *int
	raw   any
}

var lifetimeSpec = dictSpec(nil, map[string]converter{"units": oneOf("seconds"), "value": intRange(60, -1)})

func lifetimeConv(v any) (any, error) {
	if v == nil {
		return lifetimeReq{}, nil
	}
	m, err := lifetimeSpec(v)
	if err != nil {
		return nil, err
	}
	out := lifetimeReq{}
	if u, ok := m.(map[string]any)["units"].(string); ok {
		out.units = &u
	}
	if n, ok := m.(map[string]any)["value"].(int); ok {
		out.value = &n
		out.raw = v.(map[string]any)["value"]
	}
	return out, nil
}

func (l lifetimeReq) apply(dst *model.Lifetime) {
	if l.units != nil {
		dst.Units = *l.units
	}
	if l.value != nil && *l.value != 0 {
		dst.Value = *l.value
	}
}

func lifetimeWire(l model.Lifetime) object { return object{"units": l.Units, "value": l.Value} }

// echoLifetime returns the response with lifetime.value as the client sent
// it (a string stays a string), the reference's quirk that tempest checks.
func echoLifetime(o object, v values) object {
	if l, ok := v["lifetime"].(lifetimeReq); ok && l.raw != nil {
		o["lifetime"].(object)["value"] = l.raw
	}
	return o
}

func nonNegative(v any) (any, error) {
	n, err := toInt(v)
	if err != nil {
		return nil, err
	}
	if n.(int) < 0 {
		return nil, reason("'%d' should be non-negative", n)
	}
	return n, nil
}

var dpdSpec = dictSpec(nil, map[string]converter{"action": oneOf(dpdActions...), "interval": nonNegative, "timeout": nonNegative})

func dpdConv(v any) (any, error) {
	if v == nil {
		return service.DPDRequest{}, nil
	}
	m, err := dpdSpec(v)
	if err != nil {
		return nil, err
	}
	var out service.DPDRequest
	d := m.(map[string]any)
	if a, ok := d["action"].(string); ok {
		out.Action = &a
	}
	if n, ok := d["interval"].(int); ok {
		out.Interval = &n
	}
	if n, ok := d["timeout"].(int); ok {
		out.Timeout = &n
	}
	return out, nil
}

// cidrList is convert_to_list plus list_of_subnets_or_none.
func cidrList(v any) (any, error) {
	items := toList(v)
	out := make([]string, 0, len(items))
	for _, x := range items {
		s, ok := x.(string)
		if !ok {
			return nil, reason("'%s' is not a valid IP subnet", quote(x))
		}
		if !service.ValidCIDR(s) {
			if p, err := parseCIDR(s); err == nil {
				return nil, reason("'%s' isn't a recognized IP subnet cidr, '%s' is recommended", s, p.String())
			}
			if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
				return nil, reason("'%s' isn't a recognized IP subnet cidr, '%s/%d' is recommended", s, a, a.BitLen())
			}
			return nil, reason("'%s' is not a valid IP subnet", s)
		}
		if slices.Contains(out, s) {
			return nil, reason("Duplicate items in the list: '%s'", s)
		}
		out = append(out, s)
	}
	return out, nil
}

// stringList is convert_to_list with each item a string of at most 255.
func stringList(v any) (any, error) {
	items := toList(v)
	out := make([]string, 0, len(items))
	for _, x := range items {
		s, err := str(255)(x)
		if err != nil {
			return nil, err
		}
		out = append(out, s.(string))
	}
	return out, nil
}

// pskConv accepts any string up to 255 bytes and never echoes it back in
// an error.
func pskConv(v any) (any, error) {
	s, ok := v.(string)
	if !ok {
		return nil, reason("the pre-shared key is not a valid string")
	}
	if len(s) > 255 {
		return nil, reason("the pre-shared key exceeds maximum length of 255")
	}
	return model.Secret(s), nil
}

var ikePolicyRes = newResource("ikepolicy", "ikepolicies", vpnCommon(true,
	attr{name: "auth_algorithm", post: true, put: true, conv: oneOf(authAlgorithms...), filter: fString},
	attr{name: "encryption_algorithm", post: true, put: true, conv: oneOf(encryptionAlgorithms...), filter: fString},
	attr{name: "phase1_negotiation_mode", post: true, put: true, conv: oneOf("main", "aggressive"), filter: fString},
	attr{name: "lifetime", post: true, put: true, conv: lifetimeConv},
	attr{name: "ike_version", post: true, put: true, conv: oneOf("v1", "v2"), filter: fString},
	attr{name: "pfs", post: true, put: true, conv: oneOf(pfsGroups...), filter: fString},
)...)

var ipsecPolicyRes = newResource("ipsecpolicy", "ipsecpolicies", vpnCommon(true,
	attr{name: "transform_protocol", post: true, put: true, conv: oneOf("esp", "ah", "ah-esp"), filter: fString},
	attr{name: "auth_algorithm", post: true, put: true, conv: oneOf(authAlgorithms...), filter: fString},
	attr{name: "encryption_algorithm", post: true, put: true, conv: oneOf(encryptionAlgorithms...), filter: fString},
	attr{name: "encapsulation_mode", post: true, put: true, conv: oneOf("tunnel", "transport"), filter: fString},
	attr{name: "lifetime", post: true, put: true, conv: lifetimeConv},
	attr{name: "pfs", post: true, put: true, conv: oneOf(pfsGroups...), filter: fString},
)...)

var vpnServiceRes = newResource("vpnservice", "vpnservices", vpnCommon(true,
	attr{name: "router_id", post: true, required: true, conv: uuidConv, filter: fString, sort: true},
	attr{name: "subnet_id", post: true, conv: orNone(uuidConv), filter: fString},
	attr{name: "admin_state_up", post: true, put: true, conv: toBool, filter: fBool},
	attr{name: "flavor_id", post: true, conv: orNone(uuidConv), filter: fString},
	attr{name: "external_v4_ip", filter: fString},
	attr{name: "external_v6_ip", filter: fString},
	attr{name: "status", filter: fString},
)...)

var endpointGroupRes = newResource("endpoint_group", "endpoint_groups", vpnCommon(false,
	attr{name: "type", post: true, required: true, conv: oneOf("subnet", "cidr", "network", "router", "vlan"), filter: fString},
	attr{name: "endpoints", post: true, conv: stringList, filter: fListValue},
)...)

var connectionRes = newResource("ipsec_site_connection", "ipsec_site_connections", vpnCommon(true,
	attr{name: "vpnservice_id", post: true, required: true, conv: uuidConv, filter: fString},
	attr{name: "ikepolicy_id", post: true, required: true, conv: uuidConv, filter: fString},
	attr{name: "ipsecpolicy_id", post: true, required: true, conv: uuidConv, filter: fString},
	attr{name: "peer_address", post: true, put: true, required: true, conv: str(255), filter: fString},
	attr{name: "peer_id", post: true, put: true, required: true, conv: str(255), filter: fString},
	attr{name: "local_id", post: true, put: true, conv: str(255), filter: fString},
	attr{name: "peer_cidrs", post: true, put: true, conv: cidrList, filter: fListValue},
	attr{name: "local_ep_group_id", post: true, put: true, conv: orNone(uuidConv), filter: fString},
	attr{name: "peer_ep_group_id", post: true, put: true, conv: orNone(uuidConv), filter: fString},
	attr{name: "route_mode", filter: fString},
	attr{name: "mtu", post: true, put: true, conv: nonNegative, filter: fInt},
	attr{name: "initiator", post: true, put: true, conv: oneOf("bi-directional", "response-only"), filter: fString},
	attr{name: "auth_mode", filter: fString},
	attr{name: "psk", post: true, put: true, required: true, conv: pskConv},
	attr{name: "dpd", post: true, put: true, conv: dpdConv},
	attr{name: "admin_state_up", post: true, put: true, conv: toBool, filter: fBool},
	attr{name: "status", filter: fString},
	// vpn-status-reason: read-only, null when there is nothing to say.
	attr{name: "status_reason", filter: fString},
)...)

func vpnBase(id, project, name, description string, o object) object {
	o["id"], o["tenant_id"], o["project_id"], o["name"], o["description"] = id, project, project, name, description
	return o
}

func ikePolicyWire(p *model.IKEPolicy) object {
	return vpnBase(p.ID, p.ProjectID, p.Name, p.Description, object{
		"auth_algorithm": p.AuthAlgorithm, "encryption_algorithm": p.EncryptionAlgorithm,
		"phase1_negotiation_mode": p.Phase1NegotiationMode, "lifetime": lifetimeWire(p.Lifetime),
		"ike_version": p.IKEVersion, "pfs": p.PFS,
	})
}

func ipsecPolicyWire(p *model.IPsecPolicy) object {
	return vpnBase(p.ID, p.ProjectID, p.Name, p.Description, object{
		"transform_protocol": p.TransformProtocol, "auth_algorithm": p.AuthAlgorithm,
		"encryption_algorithm": p.EncryptionAlgorithm, "encapsulation_mode": p.EncapsulationMode,
		"lifetime": lifetimeWire(p.Lifetime), "pfs": p.PFS,
	})
}

func vpnServiceWire(v *model.VPNService) object {
	return vpnBase(v.ID, v.ProjectID, v.Name, v.Description, object{
		"router_id": v.RouterID, "subnet_id": strOrNil(v.SubnetID), "admin_state_up": v.AdminStateUp,
		"flavor_id": strOrNil(v.FlavorID), "external_v4_ip": strOrNil(v.ExternalV4IP),
		"external_v6_ip": strOrNil(v.ExternalV6IP), "status": v.Status,
	})
}

func endpointGroupWire(g *model.EndpointGroup) object {
	return vpnBase(g.ID, g.ProjectID, g.Name, g.Description, object{"type": g.Type, "endpoints": g.Endpoints})
}

func connectionWire(c *model.IPsecSiteConnection) object {
	cidrs := c.PeerCIDRs
	if cidrs == nil {
		cidrs = []string{}
	}
	return vpnBase(c.ID, c.ProjectID, c.Name, c.Description, object{
		"vpnservice_id": c.VPNServiceID, "ikepolicy_id": c.IKEPolicyID, "ipsecpolicy_id": c.IPsecPolicyID,
		"peer_address": c.PeerAddress, "peer_id": c.PeerID, "local_id": c.LocalID, "peer_cidrs": cidrs,
		"local_ep_group_id": strOrNil(c.LocalEPGroupID), "peer_ep_group_id": strOrNil(c.PeerEPGroupID),
		"route_mode": c.RouteMode, "mtu": c.MTU, "initiator": c.Initiator, "auth_mode": c.AuthMode,
		"psk": c.PSK.Reveal(), "admin_state_up": c.AdminStateUp, "status": c.Status, "status_reason": strOrNil(c.StatusReason),
		"dpd": object{"action": c.DPD.Action, "interval": c.DPD.Interval, "timeout": c.DPD.Timeout},
	})
}

func applyName(v values, name, description *string) {
	if v.has("name") {
		*name = v.str("name")
	}
	if v.has("description") {
		*description = v.str("description")
	}
}

func setStr(v values, key string, dst *string) {
	if v.has(key) {
		*dst, _ = v[key].(string)
	}
}

func applyIKE(v values, p *model.IKEPolicy) {
	applyName(v, &p.Name, &p.Description)
	setStr(v, "auth_algorithm", &p.AuthAlgorithm)
	setStr(v, "encryption_algorithm", &p.EncryptionAlgorithm)
	setStr(v, "phase1_negotiation_mode", &p.Phase1NegotiationMode)
	setStr(v, "ike_version", &p.IKEVersion)
	setStr(v, "pfs", &p.PFS)
	if l, ok := v["lifetime"].(lifetimeReq); ok {
		l.apply(&p.Lifetime)
	}
}

func applyIPsec(v values, p *model.IPsecPolicy) {
	applyName(v, &p.Name, &p.Description)
	setStr(v, "transform_protocol", &p.TransformProtocol)
	setStr(v, "auth_algorithm", &p.AuthAlgorithm)
	setStr(v, "encryption_algorithm", &p.EncryptionAlgorithm)
	setStr(v, "encapsulation_mode", &p.EncapsulationMode)
	setStr(v, "pfs", &p.PFS)
	if l, ok := v["lifetime"].(lifetimeReq); ok {
		l.apply(&p.Lifetime)
	}
}

func applyConnection(v values, c *model.IPsecSiteConnection) {
	applyName(v, &c.Name, &c.Description)
	setStr(v, "project_id", &c.ProjectID)
	for key, dst := range map[string]*string{
		"vpnservice_id": &c.VPNServiceID, "ikepolicy_id": &c.IKEPolicyID, "ipsecpolicy_id": &c.IPsecPolicyID,
		"peer_address": &c.PeerAddress, "peer_id": &c.PeerID, "local_id": &c.LocalID,
		"local_ep_group_id": &c.LocalEPGroupID, "peer_ep_group_id": &c.PeerEPGroupID, "initiator": &c.Initiator,
	} {
		setStr(v, key, dst)
	}
	if v.has("peer_cidrs") {
		c.PeerCIDRs = v["peer_cidrs"].([]string)
	}
	if n, ok := v["mtu"].(int); ok {
		c.MTU = n
	}
	if psk, ok := v["psk"].(model.Secret); ok {
		c.PSK = psk
	}
	c.AdminStateUp = v.boolean("admin_state_up", c.AdminStateUp)
}

func connectionRequest(v values) service.ConnectionRequest {
	dpd, _ := v["dpd"].(service.DPDRequest)
	return service.ConnectionRequest{Change: func(c *model.IPsecSiteConnection) { applyConnection(v, c) }, DPD: dpd}
}

// policyCRUD wires one of the two policy kinds.
func policyCRUD[T any](res *resource, wire func(*T) object, apply func(values, *T), defaults func(values) T,
	create func(*http.Request, T) (*T, error), get func(*http.Request, string) (*T, error),
	list func(*http.Request, store.Page) ([]T, error), update func(*http.Request, string, func(*T)) (*T, error),
	remove func(*http.Request, string) error) crud {
	return crud{
		res: res,
		list: func(r *http.Request, pg store.Page) (listing, error) {
			items, err := list(r, pg)
			return wireList(items, wire), err
		},
		show: func(r *http.Request, id string) (object, error) {
			p, err := get(r, id)
			if err != nil {
				return nil, err
			}
			return wire(p), nil
		},
		create: func(r *http.Request, v values) (object, error) {
			p := defaults(v)
			apply(v, &p)
			out, err := create(r, p)
			if err != nil {
				return nil, err
			}
			return echoLifetime(wire(out), v), nil
		},
		update: func(r *http.Request, id string, v values) (object, error) {
			out, err := update(r, id, func(p *T) { apply(v, p) })
			if err != nil {
				return nil, err
			}
			return echoLifetime(wire(out), v), nil
		},
		remove: remove,
	}
}

func (a *API) ikePolicies() crud {
	return policyCRUD(ikePolicyRes, ikePolicyWire, applyIKE,
		func(v values) model.IKEPolicy {
			return model.IKEPolicy{ProjectID: v.str("project_id"), AuthAlgorithm: "sha1", EncryptionAlgorithm: "aes-128",
				Phase1NegotiationMode: "main", Lifetime: model.Lifetime{Units: "seconds", Value: 3600}, IKEVersion: "v1", PFS: "group5"}
		},
		func(r *http.Request, p model.IKEPolicy) (*model.IKEPolicy, error) {
			return a.svc.CreateIKEPolicy(r.Context(), p)
		},
		func(r *http.Request, id string) (*model.IKEPolicy, error) { return a.svc.GetIKEPolicy(r.Context(), id) },
		func(r *http.Request, pg store.Page) ([]model.IKEPolicy, error) {
			return a.svc.ListIKEPolicies(r.Context(), pg)
		},
		func(r *http.Request, id string, f func(*model.IKEPolicy)) (*model.IKEPolicy, error) {
			return a.svc.UpdateIKEPolicy(r.Context(), id, f)
		},
		func(r *http.Request, id string) error { return a.svc.DeleteIKEPolicy(r.Context(), id) })
}

func (a *API) ipsecPolicies() crud {
	return policyCRUD(ipsecPolicyRes, ipsecPolicyWire, applyIPsec,
		func(v values) model.IPsecPolicy {
			return model.IPsecPolicy{ProjectID: v.str("project_id"), TransformProtocol: "esp", AuthAlgorithm: "sha1",
				EncryptionAlgorithm: "aes-128", EncapsulationMode: "tunnel", Lifetime: model.Lifetime{Units: "seconds", Value: 3600}, PFS: "group5"}
		},
		func(r *http.Request, p model.IPsecPolicy) (*model.IPsecPolicy, error) {
			return a.svc.CreateIPsecPolicy(r.Context(), p)
		},
		func(r *http.Request, id string) (*model.IPsecPolicy, error) {
			return a.svc.GetIPsecPolicy(r.Context(), id)
		},
		func(r *http.Request, pg store.Page) ([]model.IPsecPolicy, error) {
			return a.svc.ListIPsecPolicies(r.Context(), pg)
		},
		func(r *http.Request, id string, f func(*model.IPsecPolicy)) (*model.IPsecPolicy, error) {
			return a.svc.UpdateIPsecPolicy(r.Context(), id, f)
		},
		func(r *http.Request, id string) error { return a.svc.DeleteIPsecPolicy(r.Context(), id) })
}

func (a *API) vpnServices() crud {
	return crud{
		res: vpnServiceRes,
		list: func(r *http.Request, pg store.Page) (listing, error) {
			vs, err := a.svc.ListVPNServices(r.Context(), pg)
			return wireList(vs, vpnServiceWire), err
		},
		show: func(r *http.Request, id string) (object, error) {
			v, err := a.svc.GetVPNService(r.Context(), id)
			if err != nil {
				return nil, err
			}
			return vpnServiceWire(v), nil
		},
		create: func(r *http.Request, v values) (object, error) {
			vs := model.VPNService{ProjectID: v.str("project_id"), RouterID: v.str("router_id"), AdminStateUp: true}
			applyName(v, &vs.Name, &vs.Description)
			setStr(v, "subnet_id", &vs.SubnetID)
			setStr(v, "flavor_id", &vs.FlavorID)
			vs.AdminStateUp = v.boolean("admin_state_up", true)
			out, err := a.svc.CreateVPNService(r.Context(), vs)
			if err != nil {
				return nil, err
			}
			return vpnServiceWire(out), nil
		},
		update: func(r *http.Request, id string, v values) (object, error) {
			out, err := a.svc.UpdateVPNService(r.Context(), id, func(vs *model.VPNService) {
				applyName(v, &vs.Name, &vs.Description)
				vs.AdminStateUp = v.boolean("admin_state_up", vs.AdminStateUp)
			})
			if err != nil {
				return nil, err
			}
			return vpnServiceWire(out), nil
		},
		remove: func(r *http.Request, id string) error { return a.svc.DeleteVPNService(r.Context(), id) },
	}
}

func (a *API) endpointGroups() crud {
	return crud{
		res: endpointGroupRes,
		list: func(r *http.Request, pg store.Page) (listing, error) {
			gs, err := a.svc.ListEndpointGroups(r.Context(), pg)
			return wireList(gs, endpointGroupWire), err
		},
		show: func(r *http.Request, id string) (object, error) {
			g, err := a.svc.GetEndpointGroup(r.Context(), id)
			if err != nil {
				return nil, err
			}
			return endpointGroupWire(g), nil
		},
		create: func(r *http.Request, v values) (object, error) {
			g := model.EndpointGroup{ProjectID: v.str("project_id"), Type: v.str("type"), Endpoints: []string{}}
			applyName(v, &g.Name, &g.Description)
			if eps, ok := v["endpoints"].([]string); ok {
				g.Endpoints = eps
			}
			out, err := a.svc.CreateEndpointGroup(r.Context(), g)
			if err != nil {
				return nil, err
			}
			return endpointGroupWire(out), nil
		},
		update: func(r *http.Request, id string, v values) (object, error) {
			out, err := a.svc.UpdateEndpointGroup(r.Context(), id, func(g *model.EndpointGroup) {
				applyName(v, &g.Name, &g.Description)
			})
			if err != nil {
				return nil, err
			}
			return endpointGroupWire(out), nil
		},
		remove: func(r *http.Request, id string) error { return a.svc.DeleteEndpointGroup(r.Context(), id) },
	}
}

func (a *API) connections() crud {
	return crud{
		res: connectionRes,
		list: func(r *http.Request, pg store.Page) (listing, error) {
			cs, err := a.svc.ListConnections(r.Context(), pg)
			return wireList(cs, connectionWire), err
		},
		show: func(r *http.Request, id string) (object, error) {
			c, err := a.svc.GetConnection(r.Context(), id)
			if err != nil {
				return nil, err
			}
			return connectionWire(c), nil
		},
		create: func(r *http.Request, v values) (object, error) {
			out, err := a.svc.CreateConnection(r.Context(), connectionRequest(v))
			if err != nil {
				return nil, err
			}
			return connectionWire(out), nil
		},
		update: func(r *http.Request, id string, v values) (object, error) {
			out, err := a.svc.UpdateConnection(r.Context(), id, connectionRequest(v))
			if err != nil {
				return nil, err
			}
			return connectionWire(out), nil
		},
		remove: func(r *http.Request, id string) error { return a.svc.DeleteConnection(r.Context(), id) },
	}
}

// vpnExtensions are the aliases the VPN plugin advertises.
var vpnExtensions = []Extension{
	{"vpnaas", "VPN service", "Extension for VPN service", "2013-05-29T10:00:00-00:00"},
	{"vpn-endpoint-groups", "VPN Endpoint Groups", "VPN endpoint groups support", "2015-08-04T10:00:00-00:00"},
	{"service-type", "Neutron Service Type Management", "API for retrieving service providers for Neutron advanced services", "2013-01-20T00:00:00-00:00"},
	{"vpn-flavors", "VPN Service Flavor Extension", "Flavor support for vpnservices.", "2017-04-19T00:00:00-00:00"},
	{"vpn-aes-ctr", "VPN support for AES CTR mode", "Add AES CTR choices for encryption algorithm", "2024-01-09T09:00:00-00:00"},
	{"flavors", "Neutron Service Flavors", "Flavor specification for Neutron advanced services.", "2015-09-17T10:00:00-00:00"},
	// Neutrino's own: a connection's configuration for the remote site.
	{"vpn-peer-config", "VPN peer configuration export",
		"GET /v2.0/vpn/ipsec-site-connections/{id}/peer-config?format=<f> returns, as text, the configuration the remote site's device needs to build this connection's tunnel (swanctl); without format, the list of formats.",
		"2026-12-05T00:00:00-00:00"},
	// Neutrino's own: ipsec_site_connections carry status_reason.
	{"vpn-status-reason", "VPN connection status reason",
		"Adds the read-only status_reason attribute to IPsec site connections: the last IKE/IPsec negotiation failure the device driver reported (e.g. authentication failed, no proposal chosen); null while the connection is ACTIVE or nothing was reported.",
		"2026-11-01T00:00:00-00:00"},
}

func (a *API) vpnRoutes() {
	a.mount("/v2.0/vpn/ikepolicies", a.ikePolicies())
	a.mount("/v2.0/vpn/ipsecpolicies", a.ipsecPolicies())
	a.mount("/v2.0/vpn/vpnservices", a.vpnServices())
	a.mount("/v2.0/vpn/endpoint-groups", a.endpointGroups())
	a.mount("/v2.0/vpn/ipsec-site-connections", a.connections())
	a.mux.HandleFunc("/v2.0/vpn/ipsec-site-connections/{id}/peer-config", a.peerConfig)
	a.mux.HandleFunc("GET /v2.0/service-providers", func(w http.ResponseWriter, r *http.Request) {
		var out []object
		for _, p := range a.svc.Providers() {
			out = append(out, object{"service_type": "VPN", "name": p.Name, "default": p.Default})
		}
		writeJSON(w, http.StatusOK, object{"service_providers": out})
	})
	flavor := func(p service.Provider) object {
		return object{"id": p.FlavorID, "name": p.Name, "description": fmt.Sprintf("VPN service provider %s (%s driver)", p.Name, p.Driver),
			"service_type": "VPN", "enabled": true, "service_profiles": []string{}}
	}
	a.mux.HandleFunc("GET /v2.0/flavors", func(w http.ResponseWriter, r *http.Request) {
		var out []object
		for _, p := range a.svc.Providers() {
			out = append(out, flavor(p))
		}
		writeJSON(w, http.StatusOK, object{"flavors": out})
	})
	a.mux.HandleFunc("GET /v2.0/flavors/{id}", func(w http.ResponseWriter, r *http.Request) {
		id := strings.TrimSuffix(r.PathValue("id"), ".json")
		for _, p := range a.svc.Providers() {
			if strings.EqualFold(p.FlavorID, id) {
				writeJSON(w, http.StatusOK, object{"flavor": flavor(p)})
				return
			}
		}
		writeError(w, neutron.NotFound("FlavorNotFound", "Flavor %s could not be found.", id))
	})
}

// peerConfig serves a connection's configuration for the remote site. It
// holds the PSK: only the owner and admins get it, never cached.
func (a *API) peerConfig(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		methodNotAllowed(w, r)
		return
	}
	c, err := a.svc.ResolvedConnection(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	f := r.URL.Query().Get("format")
	if f == "" {
		writeJSON(w, http.StatusOK, object{"formats": peerconfig.Formats()})
		return
	}
	text, err := peerconfig.Render(f, *c)
	var unsafe *peerconfig.UnsafeValueError
	switch {
	case errors.Is(err, peerconfig.ErrUnknownFormat):
		writeError(w, neutron.BadRequest("Unknown peer configuration format %q; known formats: %s.",
			f, strings.Join(peerconfig.Formats(), ", ")))
		return
	case errors.As(err, &unsafe):
		writeError(w, &neutron.Error{Status: http.StatusConflict, Type: "PeerConfigUnsafe", Message: unsafe.Error()})
		return
	case err != nil:
		writeError(w, &neutron.Error{Status: http.StatusConflict, Type: "PeerConfigUnsupported",
			Message: "The connection cannot be expressed in format " + f + ": " + err.Error()})
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(text))
}

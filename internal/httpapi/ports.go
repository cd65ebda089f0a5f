package httpapi

import (
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/neutrino-net/neutrino/api/neutron"
	"github.com/neutrino-net/neutrino/internal/model"
	"github.com/neutrino-net/neutrino/internal/service"
	"github.com/neutrino-net/neutrino/internal/store"
)

var vnicTypes = []string{"normal", "direct", "macvtap", "baremetal", "direct-physical", "virtio-forwarder", "smart-nic", "vdpa", "remote-managed"}

var portRes = newResource("port", "ports", common(
	attr{name: "network_id", post: true, required: true, conv: uuidConv, filter: fString, sort: true},
	attr{name: "admin_state_up", post: true, put: true, conv: toBool, filter: fBool, sort: true},
	attr{name: "mac_address", post: true, put: true, conv: macConv, filter: fString, sort: true},
	attr{name: "fixed_ips", post: true, put: true, conv: orNone(listOf(dictSpec(nil,
		map[string]converter{"subnet_id": uuidConv, "ip_address": ipConv}))), filter: fFixedIPs},
	attr{name: "device_id", post: true, put: true, conv: str(255), filter: fString, sort: true},
	attr{name: "device_owner", post: true, put: true, conv: str(255), filter: fString, sort: true},
	attr{name: "status", filter: fString, sort: true},
	attr{name: "security_groups", post: true, put: true, conv: orNone(uniqueListOf(uuidConv)), filter: fListValue},
	attr{name: "port_security_enabled", post: true, put: true, conv: toBool, filter: fBool},
	attr{name: "allowed_address_pairs", post: true, put: true, conv: orNone(listOf(addressPair))},
	attr{name: "binding:host_id", post: true, put: true, conv: str(255), filter: fString, adminOnly: true},
	attr{name: "binding:profile", post: true, put: true, conv: orNone(dictConv), adminOnly: true},
	attr{name: "binding:vnic_type", post: true, put: true, conv: oneOf(vnicTypes...), filter: fString},
	attr{name: "binding:vif_type", filter: fString, adminOnly: true},
	attr{name: "binding:vif_details", adminOnly: true},
	attr{name: "extra_dhcp_opts", post: true, put: true, conv: orNone(listOf(extraDHCPOpt))},
)...)

// extraDHCPOpt is one entry of extra_dhcp_opts, as the reference's two key
// specs: opt_name and opt_value are required; opt_value may be an empty
// string only for the options that may be blank.
func extraDHCPOpt(v any) (any, error) {
	value := orNone(notEmpty(255))
	if m, ok := v.(map[string]any); ok {
		if name, _ := m["opt_name"].(string); slices.Contains(validBlankDHCPOpts, name) {
			value = orNone(str(255))
		}
	}
	return dictSpec([]string{"opt_name", "opt_value"},
		map[string]converter{"opt_name": notEmpty(64), "opt_value": value, "ip_version": ipVersion46})(v)
}

// notEmpty is the reference's type:not_empty_string with a maximum length.
func notEmpty(max int) converter {
	return func(v any) (any, error) {
		out, err := str(max)(v)
		if err != nil {
			return nil, err
		}
		if strings.TrimSpace(out.(string)) == "" {
			return nil, reason("'%s' Blank strings are not permitted", out)
		}
		return out, nil
	}
}

// ipVersion46 is extra_dhcp_opt's ip_version: an integer, 4 or 6.
func ipVersion46(v any) (any, error) {
	out, err := toInt(v)
	if err != nil {
		return nil, err
	}
	if n := out.(int); n != 4 && n != 6 {
		return nil, reason("%d is not in [4, 6]", n)
	}
	return out, nil
}

// validBlankDHCPOpts may be given an empty value (the reference's
// VALID_BLANK_EXTRA_DHCP_OPTS): it tells the client the option is unset.
var validBlankDHCPOpts = []string{"router", "classless-static-route"}

// applyExtraDHCPOpts merges the requested options into the port's, as the
// reference does: options match by name and IP version; a null value
// removes the option (or, for router and classless-static-route, an
// empty one sets it blank); any other value adds or replaces it.
func applyExtraDHCPOpts(v any, p *model.Port) {
	opts := slices.Clone(p.ExtraDHCPOpts)
	if opts == nil {
		opts = []model.ExtraDHCPOpt{}
	}
	for _, x := range toList(v) {
		m := x.(map[string]any)
		o := model.ExtraDHCPOpt{OptName: m["opt_name"].(string), IPVersion: 4}
		if iv, ok := m["ip_version"].(int); ok {
			o.IPVersion = iv
		}
		val, set := m["opt_value"].(string)
		o.OptValue = val
		i := slices.IndexFunc(opts, func(e model.ExtraDHCPOpt) bool { return e.OptName == o.OptName && e.IPVersion == o.IPVersion })
		keep := set && (val != "" || slices.Contains(validBlankDHCPOpts, o.OptName))
		switch {
		case !keep && i >= 0:
			opts = slices.Delete(opts, i, i+1)
		case keep && i >= 0:
			opts[i] = o
		case keep:
			opts = append(opts, o)
		}
	}
	p.ExtraDHCPOpts = opts
}

func addressPair(v any) (any, error) {
	m, ok := v.(map[string]any)
	if ok {
		if _, has := m["ip_address"]; !has {
			return nil, &opError{"AllowedAddressPair must contain ip_address"}
		}
	}
	return dictSpec([]string{"ip_address"}, map[string]converter{"ip_address": ipOrCIDR, "mac_address": macConv})(v)
}

func portWire(p *model.Port, admin bool) object {
	pairs := make([]object, len(p.AllowedAddressPairs))
	for i, ap := range p.AllowedAddressPairs {
		pairs[i] = object{"ip_address": ap.IPAddress, "mac_address": ap.MACAddress}
	}
	groups := p.SecurityGroups
	if groups == nil {
		groups = []string{} // the store gives nil for none; the wire has []
	}
	o := base(p.ID, p.ProjectID, p.Standard, object{
		"name":                  p.Name,
		"network_id":            p.NetworkID,
		"admin_state_up":        p.AdminStateUp,
		"mac_address":           p.MACAddress,
		"fixed_ips":             fixedIPsWire(p.FixedIPs),
		"device_id":             p.DeviceID,
		"device_owner":          p.DeviceOwner,
		"status":                p.Status,
		"security_groups":       groups,
		"port_security_enabled": p.PortSecurityEnabled,
		"allowed_address_pairs": pairs,
		"binding:vnic_type":     p.BindingVNICType,
		"extra_dhcp_opts":       dhcpOptsWire(p.ExtraDHCPOpts),
		"tags":                  []string{},
	})
	if d := p.TrunkDetails; d != nil {
		subs := make([]object, len(d.SubPorts))
		for i, sp := range d.SubPorts {
			subs[i] = object{"port_id": sp.PortID, "segmentation_type": sp.SegmentationType,
				"segmentation_id": sp.SegmentationID, "mac_address": sp.MACAddress}
		}
		o["trunk_details"] = object{"trunk_id": d.TrunkID, "sub_ports": subs}
	}
	if admin {
		o["binding:host_id"] = p.BindingHostID
		o["binding:profile"] = p.BindingProfile
		o["binding:vif_type"] = p.BindingVIFType
		o["binding:vif_details"] = p.BindingVIFDetails
	}
	return o
}

func dhcpOptsWire(opts []model.ExtraDHCPOpt) []object {
	out := make([]object, len(opts))
	for i, o := range opts {
		out[i] = object{"opt_name": o.OptName, "opt_value": o.OptValue, "ip_version": o.IPVersion}
	}
	return out
}

func fixedIPsFrom(v any) []model.FixedIP {
	out := []model.FixedIP{}
	for _, x := range toList(v) {
		m := x.(map[string]any)
		var ip model.FixedIP
		ip.SubnetID, _ = m["subnet_id"].(string)
		ip.IPAddress, _ = m["ip_address"].(netip.Addr)
		out = append(out, ip)
	}
	return out
}

func checkFixedIPs(v values, maxPairs int) error {
	for _, x := range toList(v["fixed_ips"]) {
		if len(x.(map[string]any)) == 0 {
			return neutron.InvalidInput("fixed_ips", "Invalid data format for fixed IP: '{}'")
		}
	}
	if n := len(toList(v["allowed_address_pairs"])); n > maxPairs {
		return neutron.Invalid("AllowedAddressPairExhausted", "The number of allowed address pair exceeds the maximum %d.", maxPairs)
	}
	return nil
}

// applyPort copies the mutable attributes of v onto p.
func applyPort(v values, p *model.Port) {
	if v.has("name") {
		p.Name = v.str("name")
	}
	applyDescription(v, &p.Standard)
	p.AdminStateUp = v.boolean("admin_state_up", p.AdminStateUp)
	if v.has("mac_address") {
		p.MACAddress = v.str("mac_address")
	}
	if v.has("fixed_ips") {
		p.FixedIPs = fixedIPsFrom(v["fixed_ips"])
	}
	if v.has("device_id") {
		p.DeviceID = v.str("device_id")
	}
	if v.has("device_owner") {
		p.DeviceOwner = v.str("device_owner")
	}
	if v.has("security_groups") {
		p.SecurityGroups = []string{}
		for _, g := range toList(v["security_groups"]) {
			p.SecurityGroups = append(p.SecurityGroups, g.(string))
		}
	}
	p.PortSecurityEnabled = v.boolean("port_security_enabled", p.PortSecurityEnabled)
	if v.has("allowed_address_pairs") {
		p.AllowedAddressPairs = []model.AddressPair{}
		for _, x := range toList(v["allowed_address_pairs"]) {
			m := x.(map[string]any)
			ap := model.AddressPair{IPAddress: m["ip_address"].(string)}
			ap.MACAddress, _ = m["mac_address"].(string)
			p.AllowedAddressPairs = append(p.AllowedAddressPairs, ap)
		}
	}
	if v.has("binding:host_id") {
		p.BindingHostID = v.str("binding:host_id")
	}
	if v.has("binding:profile") {
		p.BindingProfile, _ = v["binding:profile"].(map[string]any)
		if p.BindingProfile == nil {
			p.BindingProfile = map[string]any{}
		}
	}
	if v.has("binding:vnic_type") {
		p.BindingVNICType = v.str("binding:vnic_type")
	}
	if v.has("extra_dhcp_opts") {
		applyExtraDHCPOpts(v["extra_dhcp_opts"], p)
	}
}

func (a *API) ports() crud {
	return crud{
		res: portRes,
		list: func(r *http.Request, pg store.Page) (listing, error) {
			ports, err := a.svc.ListPorts(r.Context(), pg)
			admin := isAdmin(r)
			return wireList(ports, func(p *model.Port) object { return portWire(p, admin) }), err
		},
		show: func(r *http.Request, id string) (object, error) {
			p, err := a.svc.GetPort(r.Context(), id)
			if err != nil {
				return nil, err
			}
			return portWire(p, isAdmin(r)), nil
		},
		create: func(r *http.Request, v values) (object, error) {
			if err := checkFixedIPs(v, a.svc.MaxAllowedAddressPairs()); err != nil {
				return nil, err
			}
			req := service.PortCreate{
				FixedIPsSet:       v.has("fixed_ips") && v["fixed_ips"] != nil,
				MACSet:            v.has("mac_address"),
				PortSecuritySet:   v.has("port_security_enabled"),
				SecurityGroupsSet: v.has("security_groups") && v["security_groups"] != nil,
			}
			p := &req.Port
			p.ProjectID, p.NetworkID, p.AdminStateUp = v.str("project_id"), v.str("network_id"), true
			p.AllowedAddressPairs, p.SecurityGroups, p.ExtraDHCPOpts = []model.AddressPair{}, []string{}, []model.ExtraDHCPOpt{}
			applyPort(v, p)
			out, err := a.svc.CreatePort(r.Context(), req)
			if err != nil {
				return nil, err
			}
			return portWire(out, isAdmin(r)), nil
		},
		update: func(r *http.Request, id string, v values) (object, error) {
			if err := checkFixedIPs(v, a.svc.MaxAllowedAddressPairs()); err != nil {
				return nil, err
			}
			out, err := a.svc.UpdatePort(r.Context(), id, func(p *model.Port) { applyPort(v, p) })
			if err != nil {
				return nil, err
			}
			return portWire(out, isAdmin(r)), nil
		},
		remove: func(r *http.Request, id string) error { return a.svc.DeletePort(r.Context(), id) },
	}
}

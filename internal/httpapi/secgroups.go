package httpapi

import (
	"net/http"
	"net/netip"
	"strconv"

	"github.com/neutrino-net/neutrino/api/neutron"
	"github.com/neutrino-net/neutrino/internal/model"
	"github.com/neutrino-net/neutrino/internal/service"
	"github.com/neutrino-net/neutrino/internal/store"
)

var sgRes = newResource("security_group", "security_groups", common(
	attr{name: "stateful", post: true, put: true, conv: toBool, filter: fBool, sort: true},
	attr{name: "security_group_rules"},
	attr{name: "shared", filter: fBool},
)...)

// protocolConv accepts a protocol name or number as a string or an integer.
func protocolConv(v any) (any, error) {
	switch x := v.(type) {
	case nil:
		return "", nil
	case string:
		return x, nil
	default:
		n, err := toInt(v)
		if err != nil {
			return nil, err
		}
		return strconv.Itoa(n.(int)), nil
	}
}

func ruleRes() *resource {
	attrs := []attr{idAttr(), descriptionAttr()}
	attrs = append(attrs, projectAttrs()...)
	attrs = append(attrs, standardAttrs()...)
	return newResource("security_group_rule", "security_group_rules", append(attrs,
		attr{name: "security_group_id", post: true, required: true, conv: uuidConv, filter: fString, sort: true},
		attr{name: "direction", post: true, required: true, conv: oneOf("ingress", "egress"), filter: fString, sort: true},
		attr{name: "ethertype", post: true, conv: oneOf("IPv4", "IPv6"), filter: fString, sort: true},
		attr{name: "protocol", post: true, conv: protocolConv, filter: fString, sort: true},
		attr{name: "port_range_min", post: true, conv: portConv, filter: fInt, sort: true},
		attr{name: "port_range_max", post: true, conv: portConv, filter: fInt, sort: true},
		attr{name: "remote_ip_prefix", post: true, conv: orNone(prefixConv), filter: fString, sort: true},
		attr{name: "remote_group_id", post: true, conv: orNone(uuidConv), filter: fString, sort: true},
		attr{name: "remote_address_group_id", post: true, conv: orNone(uuidConv), filter: fString},
		attr{name: "normalized_cidr"},
		attr{name: "belongs_to_default_sg"},
	)...)
}

var sgRuleRes = ruleRes()

// prefixConv takes a rule's remote_ip_prefix as cidrConv does but keeps
// its host bits: the reference stores and shows the prefix as given and
// its network as normalized_cidr.
func prefixConv(v any) (any, error) {
	if _, err := cidrConv(v); err != nil {
		return nil, err
	}
	return parseCIDR(v.(string))
}

func ruleWire(r *model.SecurityGroupRule) object {
	var cidr, normalized any
	if r.RemoteIPPrefix != "" {
		cidr, normalized = r.RemoteIPPrefix, r.RemoteIPPrefix
		if p, err := netip.ParsePrefix(r.RemoteIPPrefix); err == nil {
			normalized = p.Masked().String()
		}
	}
	return base(r.ID, r.ProjectID, r.Standard, object{
		"security_group_id":       r.SecurityGroupID,
		"direction":               r.Direction,
		"ethertype":               r.Ethertype,
		"protocol":                strOrNil(r.Protocol),
		"port_range_min":          intPtrOrNil(r.PortRangeMin),
		"port_range_max":          intPtrOrNil(r.PortRangeMax),
		"remote_ip_prefix":        cidr,
		"normalized_cidr":         normalized,
		"remote_group_id":         strOrNil(r.RemoteGroupID),
		"remote_address_group_id": nil,
	})
}

func sgWire(g *service.SecurityGroupView) object {
	return base(g.ID, g.ProjectID, g.Standard, object{
		"name":                 g.Name,
		"stateful":             g.Stateful,
		"shared":               false,
		"security_group_rules": wireList(g.Rules, ruleWire).all(),
		"tags":                 []string{},
	})
}

func (a *API) securityGroups() crud {
	return crud{
		res: sgRes,
		list: func(r *http.Request, pg store.Page) (listing, error) {
			gs, err := a.svc.ListSecurityGroups(r.Context(), pg)
			return wireList(gs, sgWire), err
		},
		show: func(r *http.Request, id string) (object, error) {
			g, err := a.svc.GetSecurityGroup(r.Context(), id)
			if err != nil {
				return nil, err
			}
			return sgWire(g), nil
		},
		create: func(r *http.Request, v values) (object, error) {
			g := model.SecurityGroup{ProjectID: v.str("project_id"), Name: v.str("name"), Stateful: v.boolean("stateful", true)}
			applyDescription(v, &g.Standard)
			out, err := a.svc.CreateSecurityGroup(r.Context(), g)
			if err != nil {
				return nil, err
			}
			return sgWire(out), nil
		},
		update: func(r *http.Request, id string, v values) (object, error) {
			out, err := a.svc.UpdateSecurityGroup(r.Context(), id, func(g *model.SecurityGroup) {
				if v.has("name") {
					g.Name = v.str("name")
				}
				if v.has("stateful") {
					g.Stateful = v.boolean("stateful", g.Stateful)
				}
				applyDescription(v, &g.Standard)
			})
			if err != nil {
				return nil, err
			}
			return sgWire(out), nil
		},
		remove: func(r *http.Request, id string) error { return a.svc.DeleteSecurityGroup(r.Context(), id) },
	}
}

func optInt(v values, k string) *int {
	if n, ok := v[k].(int); ok {
		return &n
	}
	return nil
}

func (a *API) securityGroupRules() crud {
	return crud{
		res: sgRuleRes,
		list: func(r *http.Request, pg store.Page) (listing, error) {
			rs, err := a.svc.ListRules(r.Context(), pg)
			return wireList(rs, ruleWire), err
		},
		show: func(r *http.Request, id string) (object, error) {
			x, err := a.svc.GetRule(r.Context(), id)
			if err != nil {
				return nil, err
			}
			return ruleWire(x), nil
		},
		create: func(r *http.Request, v values) (object, error) {
			rule := model.SecurityGroupRule{
				ProjectID:       v.str("project_id"),
				SecurityGroupID: v.str("security_group_id"),
				Direction:       v.str("direction"),
				Ethertype:       "IPv4",
				Protocol:        v.str("protocol"),
				PortRangeMin:    optInt(v, "port_range_min"),
				PortRangeMax:    optInt(v, "port_range_max"),
				RemoteGroupID:   v.str("remote_group_id"),
			}
			if e := v.str("ethertype"); e != "" {
				rule.Ethertype = e
			}
			if p, ok := v["remote_ip_prefix"]; ok && p != nil {
				rule.RemoteIPPrefix = scalar(p)
			}
			applyDescription(v, &rule.Standard)
			out, err := a.svc.CreateRule(r.Context(), rule)
			if err != nil {
				return nil, err
			}
			return ruleWire(out), nil
		},
		remove: func(r *http.Request, id string) error { return a.svc.DeleteRule(r.Context(), id) },
	}
}

func scalar(v any) string { s, _ := scalarString(v); return s }

// portConv takes a rule's port_range_min or port_range_max: null or an
// integer from 0 to 65535; anything else is the reference's
// SecurityGroupInvalidPortValue, naming the value as sent.
func portConv(v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	n, err := toInt(v)
	if _, isBool := v.(bool); err != nil || isBool || n.(int) < 0 || n.(int) > 65535 {
		return nil, neutron.Invalid("SecurityGroupInvalidPortValue", "Invalid value for port %v", v)
	}
	return n, nil
}

package httpapi

import (
	"net/http"
	"net/netip"

	"github.com/neutrino-net/neutrino/api/neutron"
	"github.com/neutrino-net/neutrino/internal/model"
	"github.com/neutrino-net/neutrino/internal/service"
	"github.com/neutrino-net/neutrino/internal/store"
)

var subnetPoolRes = newResource("subnetpool", "subnetpools", common(
	attr{name: "prefixes", post: true, put: true, required: true, conv: listOf(cidrConv)},
	attr{name: "ip_version", filter: fInt, sort: true},
	attr{name: "default_prefixlen", post: true, put: true, conv: toInt, filter: fInt, sort: true},
	attr{name: "min_prefixlen", post: true, put: true, conv: toInt, filter: fInt, sort: true},
	attr{name: "max_prefixlen", post: true, put: true, conv: toInt, filter: fInt, sort: true},
	attr{name: "shared", post: true, conv: toBool, filter: fBool, sort: true},
	attr{name: "is_default", post: true, put: true, conv: toBool, filter: fBool, sort: true},
	attr{name: "default_quota", post: true, put: true, conv: orNone(nonNegative), filter: fInt, sort: true},
	attr{name: "address_scope_id", post: true, put: true, conv: orNone(uuidConv), filter: fString, sort: true},
)...)

func subnetPoolWire(p *model.SubnetPool) object {
	prefixes := make([]string, len(p.Prefixes))
	for i, pre := range p.Prefixes {
		prefixes[i] = pre.String()
	}
	return base(p.ID, p.ProjectID, p.Standard, object{
		"name":              p.Name,
		"ip_version":        p.IPVersion,
		"prefixes":          prefixes,
		"default_prefixlen": p.DefaultPrefixLen,
		"min_prefixlen":     p.MinPrefixLen,
		"max_prefixlen":     p.MaxPrefixLen,
		"shared":            p.Shared,
		"is_default":        p.IsDefault,
		"default_quota":     intPtrOrNil(p.DefaultQuota),
		"address_scope_id":  strOrNil(p.AddressScopeID),
		"tags":              []string{},
	})
}

func subnetPoolLens(v values) service.SubnetPoolLens {
	var l service.SubnetPoolLens
	for k, dst := range map[string]**int{"default_prefixlen": &l.Default, "min_prefixlen": &l.Min, "max_prefixlen": &l.Max} {
		if n, ok := v[k].(int); ok {
			*dst = &n
		}
	}
	return l
}

func applySubnetPool(v values, p *model.SubnetPool) {
	if v.has("name") {
		p.Name = v.str("name")
	}
	applyDescription(v, &p.Standard)
	if v.has("prefixes") {
		p.Prefixes = nil
		for _, e := range toList(v["prefixes"]) {
			p.Prefixes = append(p.Prefixes, e.(netip.Prefix))
		}
	}
	p.IsDefault = v.boolean("is_default", p.IsDefault)
	if v.has("default_quota") {
		p.DefaultQuota = nil
		if n, ok := v["default_quota"].(int); ok {
			p.DefaultQuota = &n
		}
	}
	if v.has("address_scope_id") {
		p.AddressScopeID = v.str("address_scope_id")
	}
}

func (a *API) subnetPools() crud {
	return crud{
		res: subnetPoolRes,
		list: func(r *http.Request, pg store.Page) (listing, error) {
			pools, err := a.svc.ListSubnetPools(r.Context(), pg)
			return wireList(pools, subnetPoolWire), err
		},
		show: func(r *http.Request, id string) (object, error) {
			p, err := a.svc.GetSubnetPool(r.Context(), id)
			if err != nil {
				return nil, err
			}
			return subnetPoolWire(p), nil
		},
		create: func(r *http.Request, v values) (object, error) {
			p := model.SubnetPool{ProjectID: v.str("project_id"), Shared: v.boolean("shared", false)}
			applySubnetPool(v, &p)
			out, err := a.svc.CreateSubnetPool(r.Context(), p, subnetPoolLens(v))
			if err != nil {
				return nil, err
			}
			return subnetPoolWire(out), nil
		},
		update: func(r *http.Request, id string, v values) (object, error) {
			out, err := a.svc.UpdateSubnetPool(r.Context(), id, subnetPoolLens(v), func(p *model.SubnetPool) { applySubnetPool(v, p) })
			if err != nil {
				return nil, err
			}
			return subnetPoolWire(out), nil
		},
		remove: func(r *http.Request, id string) error { return a.svc.DeleteSubnetPool(r.Context(), id) },
	}
}

// prefixOps serves PUT /v2.0/subnetpools/{id}/add_prefixes and
// remove_prefixes (subnetpool-prefix-ops): body and reply
// {"prefixes": [...]}.
func (a *API) prefixOps(add bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPut {
			methodNotAllowed(w, r)
			return
		}
		body, err := readObject(r)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		raw, ok := body["prefixes"]
		if !ok {
			a.fail(w, r, neutron.BadRequest("Unable to find 'prefixes' in request body"))
			return
		}
		conv, err := listOf(cidrConv)(raw)
		if err != nil {
			a.fail(w, r, attrError("prefixes", err))
			return
		}
		var prefixes []netip.Prefix
		for _, e := range toList(conv) {
			prefixes = append(prefixes, e.(netip.Prefix))
		}
		out, err := a.svc.AdjustPrefixes(r.Context(), r.PathValue("id"), add, prefixes)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		strs := make([]string, len(out))
		for i, p := range out {
			strs[i] = p.String()
		}
		writeJSON(w, http.StatusOK, object{"prefixes": strs})
	}
}

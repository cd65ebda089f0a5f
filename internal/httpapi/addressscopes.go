package httpapi

import (
	"net/http"

	"github.com/neutrino-net/neutrino/internal/model"
	"github.com/neutrino-net/neutrino/internal/store"
)

// addressScopeExtension is the reference's address-scope extension.
var addressScopeExtension = Extension{"address-scope", "Address scope", "Address scopes extension.", "2015-07-26T10:00:00-00:00"}

var addressScopeRes = newResource("address_scope", "address_scopes", common(
	attr{name: "ip_version", post: true, required: true, conv: ipVersion, filter: fInt, sort: true},
	attr{name: "shared", post: true, put: true, conv: toBool, filter: fBool, sort: true},
)...)

func addressScopeWire(a *model.AddressScope) object {
	return base(a.ID, a.ProjectID, a.Standard, object{
		"name":       a.Name,
		"ip_version": a.IPVersion,
		"shared":     a.Shared,
	})
}

func (a *API) addressScopes() crud {
	return crud{
		res: addressScopeRes,
		list: func(r *http.Request, pg store.Page) (listing, error) {
			scopes, err := a.svc.ListAddressScopes(r.Context(), pg)
			return wireList(scopes, addressScopeWire), err
		},
		show: func(r *http.Request, id string) (object, error) {
			s, err := a.svc.GetAddressScope(r.Context(), id)
			if err != nil {
				return nil, err
			}
			return addressScopeWire(s), nil
		},
		create: func(r *http.Request, v values) (object, error) {
			s := model.AddressScope{ProjectID: v.str("project_id"), Name: v.str("name"),
				IPVersion: v["ip_version"].(int), Shared: v.boolean("shared", false)}
			applyDescription(v, &s.Standard)
			out, err := a.svc.CreateAddressScope(r.Context(), s)
			if err != nil {
				return nil, err
			}
			return addressScopeWire(out), nil
		},
		update: func(r *http.Request, id string, v values) (object, error) {
			out, err := a.svc.UpdateAddressScope(r.Context(), id, func(s *model.AddressScope) {
				if v.has("name") {
					s.Name = v.str("name")
				}
				applyDescription(v, &s.Standard)
				s.Shared = v.boolean("shared", s.Shared)
			})
			if err != nil {
				return nil, err
			}
			return addressScopeWire(out), nil
		},
		remove: func(r *http.Request, id string) error { return a.svc.DeleteAddressScope(r.Context(), id) },
	}
}

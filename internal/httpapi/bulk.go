package httpapi

import (
	"context"
	"net/http"

	"github.com/neutrino-net/neutrino/api/neutron"
)

// bulkCollections are the collections the reference creates in bulk
// (allow_bulk): the core resources, routers, floating IPs and security
// groups and rules. The VPN ones answer "Bulk operation not supported".
var bulkCollections = map[string]bool{
	"networks": true, "subnets": true, "ports": true, "routers": true, "floatingips": true,
	"security_groups": true, "security_group_rules": true,
}

// bulkItems returns the value of a bulk body's plural key, when res allows
// bulk and the body has that key and not the singular one.
func bulkItems(body any, res *resource) (any, bool) {
	top, ok := body.(map[string]any)
	if !ok || !bulkCollections[res.plural] {
		return nil, false
	}
	if _, single := top[res.singular]; single {
		return nil, false
	}
	items, ok := top[res.plural]
	return items, ok
}

// bulkCreate creates every item of a bulk body (each a resource's
// attributes, bare or in its singular envelope) in one transaction: all
// of them, in order, or none, with the first failing item's error. Every
// item is checked before anything is written.
func (a *API) bulkCreate(w http.ResponseWriter, r *http.Request, c crud, raw any) {
	list, ok := raw.([]any)
	if !ok || len(list) == 0 {
		a.fail(w, r, neutron.BadRequest("Resources required"))
		return
	}
	vals := make([]values, len(list))
	for i, it := range list {
		m, ok := it.(map[string]any)
		if !ok {
			a.fail(w, r, neutron.BadRequest("Unable to find '%s' in request body", c.res.singular))
			return
		}
		if inner, ok := m[c.res.singular].(map[string]any); ok && len(m) == 1 {
			m = inner
		}
		v, err := parseAttrs(m, c.res, false)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		vals[i] = v
	}
	var out []object
	err := a.svc.Batch(r.Context(), func(ctx context.Context) error {
		out = out[:0]
		rc := r.WithContext(ctx)
		for _, v := range vals {
			o, err := c.create(rc, v)
			if err != nil {
				return err
			}
			out = append(out, o)
		}
		return nil
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, object{c.res.plural: out})
}

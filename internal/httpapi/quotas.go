package httpapi

import (
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/neutrino-net/neutrino/api/neutron"
	"github.com/neutrino-net/neutrino/internal/identity"
)

func quotaWire(limits map[string]int) object {
	o := make(object, len(limits))
	for k, v := range limits {
		o[k] = v
	}
	return o
}

func (a *API) quotaRoutes() {
	m := a.mux
	m.HandleFunc("GET /v2.0/quotas", func(w http.ResponseWriter, r *http.Request) {
		all, err := a.svc.ListQuotas(r.Context())
		if err != nil {
			a.fail(w, r, err)
			return
		}
		out := []object{}
		for project, limits := range all {
			o := quotaWire(limits)
			o["project_id"], o["tenant_id"] = project, project
			out = append(out, o)
		}
		slices.SortFunc(out, func(x, y object) int { return strings.Compare(x["project_id"].(string), y["project_id"].(string)) })
		writeJSON(w, http.StatusOK, object{"quotas": out})
	})
	m.HandleFunc("GET /v2.0/quotas/tenant", func(w http.ResponseWriter, r *http.Request) {
		id := identity.FromContext(r.Context())
		writeJSON(w, http.StatusOK, object{"tenant": object{"tenant_id": id.ProjectID}})
	})
	m.HandleFunc("GET /v2.0/quotas/project", func(w http.ResponseWriter, r *http.Request) {
		id := identity.FromContext(r.Context())
		writeJSON(w, http.StatusOK, object{"project": object{"project_id": id.ProjectID}})
	})
	m.HandleFunc("GET /v2.0/quotas/{project}", func(w http.ResponseWriter, r *http.Request) {
		limits, err := a.svc.Quotas(r.Context(), r.PathValue("project"))
		if err != nil {
			a.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, object{"quota": quotaWire(limits)})
	})
	m.HandleFunc("GET /v2.0/quotas/{project}/default", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, object{"quota": quotaWire(a.svc.DefaultQuotas())})
	})
	m.HandleFunc("GET /v2.0/quotas/{project}/details", func(w http.ResponseWriter, r *http.Request) {
		det, err := a.svc.QuotaDetails(r.Context(), r.PathValue("project"))
		if err != nil {
			a.fail(w, r, err)
			return
		}
		o := object{}
		for k, u := range det {
			o[k] = object{"limit": u.Limit, "used": u.Used, "reserved": u.Reserved}
		}
		writeJSON(w, http.StatusOK, object{"quota": o})
	})
	m.HandleFunc("PUT /v2.0/quotas/{project}", func(w http.ResponseWriter, r *http.Request) {
		body, err := readJSON(r)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		top, _ := body.(map[string]any)
		in, ok := top["quota"].(map[string]any)
		if !ok {
			a.fail(w, r, neutron.BadRequest("Unable to find 'quota' in request body"))
			return
		}
		// The reference takes "force" (lower a limit below what is in
		// use) and the deprecated "check_limit" beside the limits; its
		// clients send them, so they are no unknown resources.
		force := in["force"] == true
		delete(in, "force")
		delete(in, "check_limit")
		known := a.svc.QuotaResources()
		limits := map[string]int{}
		var unknown []string
		for k := range in {
			if !slices.Contains(known, k) {
				unknown = append(unknown, k)
			}
		}
		if len(unknown) > 0 {
			slices.Sort(unknown)
			a.fail(w, r, neutron.BadRequest("Unrecognized attribute(s) '%s'", strings.Join(unknown, ", ")))
			return
		}
		for _, k := range slices.Sorted(maps.Keys(in)) {
			n, err := intRange(-1, -2)(in[k])
			if err != nil {
				a.fail(w, r, attrError(k, err))
				return
			}
			limits[k] = n.(int)
		}
		out, err := a.svc.SetQuotas(r.Context(), r.PathValue("project"), limits, force)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, object{"quota": quotaWire(out)})
	})
	m.HandleFunc("DELETE /v2.0/quotas/{project}", func(w http.ResponseWriter, r *http.Request) {
		if err := a.svc.ResetQuotas(r.Context(), r.PathValue("project")); err != nil {
			a.fail(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

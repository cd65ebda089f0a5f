package httpapi

import (
	"fmt"
	"net/http"

	"github.com/neutrino-net/neutrino/api/neutron"
	"github.com/neutrino-net/neutrino/internal/model"
	"github.com/neutrino-net/neutrino/internal/store"
)

// trunkExtension is the reference's trunk extension.
var trunkExtension = Extension{"trunk", "Trunk Extension", "Provides support for trunk ports", "2016-01-01T10:00:00-00:00"}

// trunkDetailsExtension is the reference's trunk-details extension: a
// parent port shows its trunk and subports in trunk_details.
var trunkDetailsExtension = Extension{"trunk-details", "Trunk port details", "Expose trunk port details", "2016-01-01T10:00:00-00:00"}

var trunkRes = newResource("trunk", "trunks", common(
	attr{name: "admin_state_up", post: true, put: true, conv: toBool, filter: fBool, sort: true},
	attr{name: "port_id", post: true, required: true, conv: uuidConv, filter: fString, sort: true},
	attr{name: "status", filter: fString, sort: true},
	attr{name: "sub_ports", post: true, conv: subPortsConv},
)...)

// subPortsConv is the reference's type:subports: a list of objects, each
// with a port UUID and, together, segmentation_type and segmentation_id.
func subPortsConv(v any) (any, error) {
	sps, msg := subPortsFrom(v)
	if msg != "" {
		return nil, reason("%s", msg)
	}
	return sps, nil
}

// subPortsFrom parses a list of subports, or says what is wrong with it.
func subPortsFrom(v any) ([]model.SubPort, string) {
	l, ok := v.([]any)
	if !ok {
		return nil, fmt.Sprintf("Invalid data format for subports: '%s' is not a list", quote(v))
	}
	out := make([]model.SubPort, 0, len(l))
	seen, tags := map[string]bool{}, map[string]bool{}
	for _, x := range l {
		m, ok := x.(map[string]any)
		if !ok {
			return nil, fmt.Sprintf("Invalid data format for subport: '%s' is not a dict", quote(x))
		}
		raw, ok := m["port_id"]
		if !ok {
			return nil, "A valid port UUID must be specified"
		}
		id, err := uuidConv(raw)
		if err != nil {
			return nil, fmt.Sprintf("Invalid UUID for subport: '%s'", quote(raw))
		}
		for k := range m {
			if k != "port_id" && k != "segmentation_type" && k != "segmentation_id" {
				return nil, fmt.Sprintf("Unrecognized attribute '%s' of subport", k)
			}
		}
		st, hasType := m["segmentation_type"].(string)
		rawID, hasID := m["segmentation_id"]
		if !hasType || st == "" || !hasID || rawID == nil {
			return nil, fmt.Sprintf("Invalid subport details '%s': missing segmentation information. Must specify both segmentation_id and segmentation_type", quote(x))
		}
		n, err := toInt(rawID)
		if err != nil {
			return nil, fmt.Sprintf("Invalid subport details: segmentation_id '%s' is not an integer", quote(rawID))
		}
		if seen[id.(string)] {
			return nil, fmt.Sprintf("Non unique UUID for subport: '%s'", id)
		}
		seen[id.(string)] = true
		if tag := fmt.Sprint(st, "/", n); tags[tag] {
			return nil, fmt.Sprintf("Segmentation ID '%d' for '%s' is not unique", n, id)
		} else {
			tags[tag] = true
		}
		out = append(out, model.SubPort{PortID: id.(string), SegmentationType: st, SegmentationID: n.(int)})
	}
	return out, ""
}

func subPortsWire(sps []model.SubPort) []object {
	out := make([]object, len(sps))
	for i, sp := range sps {
		out[i] = object{"port_id": sp.PortID, "segmentation_type": sp.SegmentationType, "segmentation_id": sp.SegmentationID}
	}
	return out
}

func trunkWire(t *model.Trunk) object {
	return base(t.ID, t.ProjectID, t.Standard, object{
		"name":           t.Name,
		"admin_state_up": t.AdminStateUp,
		"status":         t.Status,
		"port_id":        t.PortID,
		"sub_ports":      subPortsWire(t.SubPorts),
	})
}

func (a *API) trunks() crud {
	return crud{
		res: trunkRes,
		list: func(r *http.Request, pg store.Page) (listing, error) {
			ts, err := a.svc.ListTrunks(r.Context(), pg)
			return wireList(ts, trunkWire), err
		},
		show: func(r *http.Request, id string) (object, error) {
			t, err := a.svc.GetTrunk(r.Context(), id)
			if err != nil {
				return nil, err
			}
			return trunkWire(t), nil
		},
		create: func(r *http.Request, v values) (object, error) {
			t := model.Trunk{ProjectID: v.str("project_id"), Name: v.str("name"), PortID: v.str("port_id"),
				AdminStateUp: v.boolean("admin_state_up", true)}
			applyDescription(v, &t.Standard)
			t.SubPorts, _ = v["sub_ports"].([]model.SubPort)
			out, err := a.svc.CreateTrunk(r.Context(), t)
			if err != nil {
				return nil, err
			}
			return trunkWire(out), nil
		},
		update: func(r *http.Request, id string, v values) (object, error) {
			out, err := a.svc.UpdateTrunk(r.Context(), id, func(t *model.Trunk) {
				if v.has("name") {
					t.Name = v.str("name")
				}
				applyDescription(v, &t.Standard)
				t.AdminStateUp = v.boolean("admin_state_up", t.AdminStateUp)
			})
			if err != nil {
				return nil, err
			}
			return trunkWire(out), nil
		},
		remove: func(r *http.Request, id string) error { return a.svc.DeleteTrunk(r.Context(), id) },
	}
}

// trunkRoutes serves /v2.0/trunks and its member actions, whose bodies
// are {"sub_ports": [...]} and whose replies are the bare trunk.
func (a *API) trunkRoutes() {
	a.mount("/v2.0/trunks", a.trunks())
	a.mux.HandleFunc("/v2.0/trunks/{id}/get_subports", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			methodNotAllowed(w, r)
			return
		}
		t, err := a.svc.GetTrunk(r.Context(), r.PathValue("id"))
		if err != nil {
			a.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, object{"sub_ports": subPortsWire(t.SubPorts)})
	})
	for _, add := range []bool{true, false} {
		path := "/v2.0/trunks/{id}/remove_subports"
		if add {
			path = "/v2.0/trunks/{id}/add_subports"
		}
		a.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPut {
				methodNotAllowed(w, r)
				return
			}
			id := r.PathValue("id")
			r, err := withIfMatch(r, "trunks", id)
			if err != nil {
				a.fail(w, r, err)
				return
			}
			m, err := readObject(r)
			if err != nil {
				a.fail(w, r, err)
				return
			}
			raw, ok := m["sub_ports"]
			if !ok {
				a.fail(w, r, neutron.BadRequest("Failed to parse request. Required attribute 'sub_ports' not specified"))
				return
			}
			var t *model.Trunk
			if add {
				sps, msg := subPortsFrom(raw)
				if msg != "" {
					a.fail(w, r, neutron.Invalid("InvalidInput", "Invalid input for operation: %s.", msg))
					return
				}
				t, err = a.svc.AddSubPorts(r.Context(), id, sps)
			} else {
				ids, msg := subPortIDs(raw)
				if msg != "" {
					a.fail(w, r, neutron.Invalid("InvalidInput", "Invalid input for operation: %s.", msg))
					return
				}
				t, err = a.svc.RemoveSubPorts(r.Context(), id, ids)
			}
			if err != nil {
				a.fail(w, r, err)
				return
			}
			writeJSON(w, http.StatusOK, trunkWire(t))
		})
	}
}

// subPortIDs parses remove_subports' list, whose entries need only a
// port_id (segmentation details, if given, are ignored as in the
// reference).
func subPortIDs(v any) ([]string, string) {
	l, ok := v.([]any)
	if !ok {
		return nil, fmt.Sprintf("Invalid data format for subports: '%s' is not a list", quote(v))
	}
	var ids []string
	seen := map[string]bool{}
	for _, x := range l {
		m, ok := x.(map[string]any)
		if !ok {
			return nil, fmt.Sprintf("Invalid data format for subport: '%s' is not a dict", quote(x))
		}
		raw, ok := m["port_id"]
		if !ok {
			return nil, "A valid port UUID must be specified"
		}
		id, err := uuidConv(raw)
		if err != nil {
			return nil, fmt.Sprintf("Invalid UUID for subport: '%s'", quote(raw))
		}
		if seen[id.(string)] {
			return nil, fmt.Sprintf("Non unique UUID for subport: '%s'", id)
		}
		seen[id.(string)] = true
		ids = append(ids, id.(string))
	}
	return ids, ""
}

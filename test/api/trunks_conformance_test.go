package api_test

import (
	"fmt"
	"testing"
)

// TestTrunkConformance follows the reference's trunk tests (positive
// gaps and every negative one) on both stores, with the reference's
// statuses: subport lists are validated before anything is looked up,
// missing ports and trunks are 404s, a disabled trunk refuses changes
// and deletion with 409, ports in use by a trunk cannot be deleted, and a
// subport's network MTU may not exceed the parent's.
func TestTrunkConformance(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		const missing = "5a0e2b1c-3d4f-4e5a-8b6c-7d8e9f0a1b2c"
		nets := 0
		port := func(mtu int) string {
			t.Helper()
			nets++
			body := map[string]any{"name": fmt.Sprint("n", nets)}
			if mtu > 0 {
				body["mtu"] = mtu
			}
			net := e.create(projectA, "networks", body)
			return e.create(projectA, "ports", map[string]any{"network_id": net})
		}
		sub := func(portID string, seg int) map[string]any {
			return map[string]any{"port_id": portID, "segmentation_type": "vlan", "segmentation_id": seg}
		}
		trunk := func(body map[string]any) map[string]any {
			t.Helper()
			return item(t, e.do("POST", "/v2.0/trunks", projectA, map[string]any{"trunk": body}), 201, "trunk")
		}

		// An empty subport list, a description update, trunk_details
		// without subports.
		parent := port(0)
		tr := trunk(map[string]any{"port_id": parent, "sub_ports": []any{}})
		if subs, _ := tr["sub_ports"].([]any); subs == nil || len(subs) != 0 {
			t.Fatalf("trunk with an empty list: sub_ports = %v", tr["sub_ports"])
		}
		up := item(t, e.do("PUT", "/v2.0/trunks/"+tr["id"].(string), projectA, map[string]any{"trunk": map[string]any{"description": "d2"}}), 200, "trunk")
		if up["description"] != "d2" {
			t.Fatalf("description after update = %v", up["description"])
		}
		details, _ := item(t, e.do("GET", "/v2.0/ports/"+parent, projectA, nil), 200, "port")["trunk_details"].(map[string]any)
		if details["trunk_id"] != tr["id"] || fmt.Sprint(details["sub_ports"]) != "[]" {
			t.Fatalf("trunk_details without subports = %v", details)
		}
		trunkID := tr["id"].(string)

		disabledParent := port(0)
		disabled := trunk(map[string]any{"port_id": disabledParent, "admin_state_up": false})["id"].(string)
		withSub, subPort := port(0), port(0)
		trunk(map[string]any{"port_id": withSub, "sub_ports": []any{sub(subPort, 2)}})
		dup1, dup2 := port(0), port(0)
		if r := e.do("PUT", "/v2.0/trunks/"+trunkID+"/add_subports", projectA, map[string]any{"sub_ports": []any{sub(dup1, 2)}}); r.status != 200 {
			t.Fatalf("add subport: %d %s", r.status, r.raw)
		}
		small, small2, large := port(1400), port(1400), port(1450)
		smallTrunk := trunk(map[string]any{"port_id": small})["id"].(string)
		free1, free2 := port(0), port(0)

		snapshot := func(e *env) string {
			return e.do("GET", "/v2.0/trunks?sort_key=id", projectA, nil).raw + e.do("GET", "/v2.0/ports?sort_key=id", projectA, nil).raw
		}
		post := func(body map[string]any) map[string]any { return map[string]any{"trunk": body} }
		subs := func(s ...any) map[string]any { return map[string]any{"sub_ports": s} }
		runFaultCases(t, e, []faultCase{
			{"missing parent", "POST", "/v2.0/trunks", post(map[string]any{"port_id": missing, "sub_ports": []any{}}), 404, "PortNotFound", ""},
			{"missing subport port", "POST", "/v2.0/trunks", post(map[string]any{"port_id": free1, "sub_ports": []any{sub(missing, 2)}}), 404, "PortNotFound", ""},
			{"add a missing port", "PUT", "/v2.0/trunks/" + trunkID + "/add_subports", subs(sub(missing, 3)), 404, "PortNotFound", ""},
			{"add to a missing trunk", "PUT", "/v2.0/trunks/" + missing + "/add_subports", subs(sub(free1, 3)), 404, "TrunkNotFound", ""},
			{"add without segmentation_id", "PUT", "/v2.0/trunks/" + trunkID + "/add_subports",
				subs(map[string]any{"port_id": free1, "segmentation_type": "vlan"}), 400, "InvalidInput", "missing segmentation information"},
			{"create without segmentation_id", "POST", "/v2.0/trunks", post(map[string]any{"port_id": free1, "sub_ports": []any{
				map[string]any{"port_id": missing, "segmentation_type": "vlan"}}}), 400, "HTTPBadRequest", ""},
			{"create without segmentation_type", "POST", "/v2.0/trunks", post(map[string]any{"port_id": free1, "sub_ports": []any{
				map[string]any{"port_id": missing, "segmentation_id": 3}}}), 400, "HTTPBadRequest", ""},
			{"create without port_id", "POST", "/v2.0/trunks", post(map[string]any{"port_id": free1, "sub_ports": []any{
				map[string]any{"segmentation_type": "vlan", "segmentation_id": 3}}}), 400, "HTTPBadRequest", ""},
			{"inherit", "PUT", "/v2.0/trunks/" + trunkID + "/add_subports",
				subs(map[string]any{"port_id": free1, "segmentation_type": "inherit", "segmentation_id": -1}), 400, "InvalidInput", "Unknown segmentation_type 'inherit'"},
			{"duplicate segmentation ids on create", "POST", "/v2.0/trunks", post(map[string]any{"port_id": trunkID, "sub_ports": []any{
				sub(free1, 2), sub(free2, 2)}}), 400, "HTTPBadRequest", "is not unique"},
			{"the parent as its own subport", "PUT", "/v2.0/trunks/" + trunkID + "/add_subports", subs(sub(parent, 4)), 409, "ParentPortInUse", ""},
			{"add to a disabled trunk", "PUT", "/v2.0/trunks/" + disabled + "/add_subports", subs(sub(free1, 2)), 409, "TrunkDisabled", ""},
			{"remove from a disabled trunk", "PUT", "/v2.0/trunks/" + disabled + "/remove_subports", subs(sub(disabledParent, 2)), 409, "TrunkDisabled", ""},
			{"delete a disabled trunk", "DELETE", "/v2.0/trunks/" + disabled, nil, 409, "TrunkDisabled", ""},
			{"a taken segmentation id", "PUT", "/v2.0/trunks/" + trunkID + "/add_subports", subs(sub(dup2, 2)), 409, "DuplicateSubPort", ""},
			{"add passing a dict", "PUT", "/v2.0/trunks/" + trunkID + "/add_subports", map[string]any{"sub_ports": sub(free1, 5)}, 400, "InvalidInput", "is not a list"},
			{"remove passing a dict", "PUT", "/v2.0/trunks/" + trunkID + "/remove_subports", map[string]any{"sub_ports": sub(dup1, 2)}, 400, "InvalidInput", "is not a list"},
			{"remove a subport it lacks", "PUT", "/v2.0/trunks/" + trunkID + "/remove_subports", subs(sub(free1, 7)), 404, "SubPortNotFound", ""},
			{"delete a trunk's parent", "DELETE", "/v2.0/ports/" + withSub, nil, 409, "PortInUseAsTrunkParent", ""},
			{"delete a subport", "DELETE", "/v2.0/ports/" + subPort, nil, 409, "PortInUseAsSubPort", ""},
			{"subport MTU above the parent's on create", "POST", "/v2.0/trunks", post(map[string]any{"port_id": small2, "sub_ports": []any{sub(large, 9)}}), 409, "SubPortMtuGreaterThanTrunkPortMtu", ""},
			{"subport MTU above the parent's on add", "PUT", "/v2.0/trunks/" + smallTrunk + "/add_subports", subs(sub(large, 9)), 409, "SubPortMtuGreaterThanTrunkPortMtu", ""},
		}, snapshot, "")
	})
}

package api_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/neutrino-net/neutrino/internal/store/sqlstore/sqltest"
)

// TestMultiSegmentNetworks: the multi-provider extension as the
// reference's ML2 has it, on both stores: admins create networks of
// several segments (ids allocated like single provider networks), which
// show segments instead of the provider attributes; one segment shows the
// provider attributes; refusals are the reference's and change nothing; a
// deleted network's segments are free again.
func TestMultiSegmentNetworks(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, dialect string) {
		e := newEnv(t, dialect, providerSegments)
		post := func(project string, attrs map[string]any) reply {
			t.Helper()
			return e.do("POST", "/v2.0/networks", project, map[string]any{"network": attrs})
		}
		seg := func(typ string, physnet any, id any) map[string]any {
			return map[string]any{"provider:network_type": typ, "provider:physical_network": physnet, "provider:segmentation_id": id}
		}
		segsOf := func(n map[string]any) string {
			b, _ := json.Marshal(n["segments"])
			return string(b)
		}
		r := post("", map[string]any{"name": "multi", "project_id": projectA,
			"segments": []any{seg("vlan", "physnet1", nil), seg("vxlan", nil, 500)}})
		if r.status != 201 {
			t.Fatalf("POST multi-segment network = %d %s", r.status, r.raw)
		}
		multi := r.body["network"].(map[string]any)
		const want = `[{"provider:network_type":"vlan","provider:physical_network":"physnet1","provider:segmentation_id":100},` +
			`{"provider:network_type":"vxlan","provider:physical_network":null,"provider:segmentation_id":500}]`
		if got := segsOf(multi); got != want {
			t.Errorf("segments %s, want %s", got, want)
		}
		if _, ok := multi["provider:network_type"]; ok {
			t.Errorf("a multi-segment network shows provider attributes: %v", multi)
		}
		if multi["mtu"] != float64(1450) {
			t.Errorf("MTU with a VXLAN segment %v, want 1450", multi["mtu"])
		}
		id := multi["id"].(string)
		shown := item(t, e.do("GET", "/v2.0/networks/"+id, "", nil), 200, "network")
		if got := segsOf(shown); got != want {
			t.Errorf("GET shows segments %s, want %s", got, want)
		}
		mine := item(t, e.do("GET", "/v2.0/networks/"+id, projectA, nil), 200, "network")
		if _, ok := mine["segments"]; ok {
			t.Errorf("the member sees segments: %v", mine)
		}
		// One segment is a single-segment network.
		one := item(t, post("", map[string]any{"name": "one", "segments": []any{seg("flat", "physnet1", nil)}}), 201, "network")
		if _, ok := one["segments"]; ok || one["provider:network_type"] != "flat" || one["provider:physical_network"] != "physnet1" {
			t.Errorf("one segment: %v", one)
		}

		snapshot := func() string {
			return e.do("GET", "/v2.0/networks?sort_key=name&sort_dir=asc&fields=name&fields=segments&fields=provider:network_type&fields=provider:segmentation_id", "", nil).raw
		}
		before := snapshot()
		if !strings.Contains(before, `"multi"`) {
			t.Fatalf("snapshot %s", before)
		}
		for _, tc := range []struct {
			project string
			attrs   map[string]any
			status  int
			typ     string
			msg     string
		}{
			{projectA, map[string]any{"segments": []any{seg("vxlan", nil, 600)}}, 403, "PolicyNotAuthorized", "create_network:segments"},
			{"", map[string]any{"provider:network_type": "vxlan", "segments": []any{seg("vxlan", nil, 600)}}, 400,
				"SegmentsSetInConjunctionWithProviders", "Segments and provider values cannot both be set."},
			{"", map[string]any{"segments": []any{seg("vlan", "physnet2", 5), seg("vlan", "physnet2", 5)}}, 400,
				"SegmentsContainDuplicateEntry", "Duplicate segment entry in request."},
			{"", map[string]any{"segments": []any{map[string]any{"provider:network_type": "vxlan", "mtu": 1}}}, 400,
				"HTTPBadRequest", "Unrecognized attribute(s) 'mtu'"},
			{"", map[string]any{"segments": "vxlan"}, 400, "HTTPBadRequest", "is not a list"},
			{"", map[string]any{"segments": []any{seg("vlan", "physnet2", 6), seg("gre", nil, nil)}}, 400,
				"InvalidInput", "network_type value 'gre' not supported"},
			{"", map[string]any{"segments": []any{seg("vlan", "physnet2", 6), map[string]any{"provider:segmentation_id": 7}}}, 400,
				"InvalidInput", "network_type required"},
			// The second segment is taken: nothing of the first stays.
			{"", map[string]any{"segments": []any{seg("vlan", "physnet2", 6), seg("vxlan", nil, 500)}}, 409,
				"TunnelIdInUse", "The tunnel ID 500 is in use"},
			{"", map[string]any{"segments": []any{seg("vlan", "physnet2", 6), seg("flat", "physnet1", nil)}}, 409,
				"FlatNetworkInUse", "Physical network physnet1 is in use"},
			{"", map[string]any{"segments": []any{seg("vlan", "physnet2", 6), seg("vlan", "physnet1", 100)}}, 409,
				"VlanIdInUse", "The VLAN 100 on physical network physnet1 is in use"},
		} {
			r := post(tc.project, tc.attrs)
			typ, msg := r.fault()
			if r.status != tc.status || typ != tc.typ || !strings.Contains(msg, tc.msg) {
				t.Errorf("%v: %d %s %q, want %d %s containing %q", tc.attrs, r.status, typ, msg, tc.status, tc.typ, tc.msg)
			}
		}
		if after := snapshot(); after != before {
			t.Errorf("refused requests changed the networks:\nbefore %s\nafter  %s", before, after)
		}
		// Segments never change.
		for _, project := range []string{"", projectA} {
			r := e.do("PUT", "/v2.0/networks/"+id, project, map[string]any{"network": map[string]any{"segments": []any{seg("vxlan", nil, 501)}}})
			if r.status/100 != 4 {
				t.Errorf("PUT segments as %q: %d %s", project, r.status, r.raw)
			}
		}
		// A deleted network's segments are free again.
		if r := e.do("DELETE", "/v2.0/networks/"+id, "", nil); r.status != 204 {
			t.Fatalf("DELETE: %d %s", r.status, r.raw)
		}
		again := item(t, post("", map[string]any{"segments": []any{seg("vxlan", nil, 500), seg("vlan", "physnet1", 100)}}), 201, "network")
		if got := segsOf(again); !strings.Contains(got, `"provider:segmentation_id":500`) || !strings.Contains(got, `"provider:segmentation_id":100`) {
			t.Errorf("segments after the delete: %s", got)
		}
		if r := e.do("GET", "/v2.0/extensions/multi-provider", "", nil); r.status != 200 {
			t.Errorf("GET /v2.0/extensions/multi-provider = %d", r.status)
		}
	})
}

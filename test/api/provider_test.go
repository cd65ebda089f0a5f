package api_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/neutrino-net/neutrino/internal/segment"
	"github.com/neutrino-net/neutrino/internal/service"
	"github.com/neutrino-net/neutrino/internal/store/sqlstore/sqltest"
)

// providerSegments: flat on physnet1 and public, VLANs 100-101 on
// physnet1 and admin-chosen only on physnet2, tenant VNIs 1000-1001.
func providerSegments(o *service.Options) {
	o.Segments = &segment.Config{Flat: []string{"physnet1", "public"},
		VLAN: map[string][]segment.Range{"physnet1": {{Min: 100, Max: 101}}, "physnet2": {}},
		VNI:  []segment.Range{{Min: 1000, Max: 1001}}, TenantTypes: []string{segment.VXLAN}}
}

// netSnapshot lists every network's name and segment, as the admin sees it.
func netSnapshot(e *env) string {
	r := e.do("GET", "/v2.0/networks?sort_key=name&sort_dir=asc", "", nil)
	var b strings.Builder
	for _, o := range r.body["networks"].([]any) {
		n := o.(map[string]any)
		fmt.Fprintf(&b, "%v:%v/%v/%v ", n["name"], n["provider:network_type"], n["provider:physical_network"], n["provider:segmentation_id"])
	}
	return b.String()
}

// TestProviderNetworks: the provider extension as the reference's ML2
// has it: admins create flat, VLAN, VXLAN and local networks on the
// configured physical networks and ranges, get the reference's errors for
// the rest, and only admins see or set the attributes.
func TestProviderNetworks(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, dialect string) {
		e := newEnv(t, dialect, providerSegments)
		post := func(project string, attrs map[string]any) reply {
			t.Helper()
			return e.do("POST", "/v2.0/networks", project, map[string]any{"network": attrs})
		}
		created := func(r reply) map[string]any {
			t.Helper()
			if r.status != 201 {
				t.Fatalf("POST network = %d %s", r.status, r.raw)
			}
			return r.body["network"].(map[string]any)
		}
		segOf := func(n map[string]any) string {
			return fmt.Sprintf("%v/%v/%v", n["provider:network_type"], n["provider:physical_network"], n["provider:segmentation_id"])
		}
		// Tenant networks: VXLAN from vni_ranges, attributes hidden from members.
		mine := created(post(projectA, map[string]any{"name": "mine"}))
		if _, ok := mine["provider:network_type"]; ok {
			t.Errorf("a member sees provider attributes: %v", mine)
		}
		if mine["mtu"] != float64(1450) {
			t.Errorf("tenant VXLAN network MTU %v, want 1450", mine["mtu"])
		}
		shown := e.do("GET", "/v2.0/networks/"+mine["id"].(string), "", nil).body["network"].(map[string]any)
		if got := segOf(shown); got != "vxlan/<nil>/1000" {
			t.Errorf("tenant network segment %s, want vxlan/<nil>/1000", got)
		}
		// Admin-made segments.
		for _, tc := range []struct {
			attrs map[string]any
			want  string
			mtu   float64
		}{
			{map[string]any{"provider:network_type": "flat", "provider:physical_network": "physnet1"}, "flat/physnet1/<nil>", 1500},
			{map[string]any{"provider:network_type": "vlan", "provider:physical_network": "physnet1"}, "vlan/physnet1/100", 1500},
			{map[string]any{"provider:network_type": "vlan"}, "vlan/physnet1/101", 1500},
			{map[string]any{"provider:network_type": "vlan", "provider:physical_network": "physnet2", "provider:segmentation_id": "5"}, "vlan/physnet2/5", 1500},
			{map[string]any{"provider:network_type": "vlan", "provider:physical_network": "physnet1", "provider:segmentation_id": 4000}, "vlan/physnet1/4000", 1500},
			{map[string]any{"provider:network_type": "vxlan", "provider:segmentation_id": 77}, "vxlan/<nil>/77", 1450},
			{map[string]any{"provider:network_type": "vxlan"}, "vxlan/<nil>/1001", 1450},
			{map[string]any{"provider:network_type": "local", "provider:physical_network": nil}, "local/<nil>/<nil>", 1500},
		} {
			n := created(post("", tc.attrs))
			if got := segOf(n); got != tc.want || n["mtu"] != tc.mtu {
				t.Errorf("%v: segment %s mtu %v, want %s mtu %v", tc.attrs, got, n["mtu"], tc.want, tc.mtu)
			}
		}
		// The reference's refusals, which change nothing.
		before := netSnapshot(e)
		for _, tc := range []struct {
			project string
			attrs   map[string]any
			status  int
			typ     string
			msg     string
		}{
			{projectA, map[string]any{"provider:network_type": "vxlan"}, 403, "PolicyNotAuthorized", "create_network:provider:network_type"},
			{"", map[string]any{"provider:segmentation_id": 5}, 400, "InvalidInput", "network_type required"},
			{"", map[string]any{"provider:network_type": "gre"}, 400, "InvalidInput", "network_type value 'gre' not supported"},
			{"", map[string]any{"provider:network_type": "flat"}, 400, "InvalidInput", "physical_network required for flat provider network"},
			{"", map[string]any{"provider:network_type": "flat", "provider:physical_network": "physnet9"}, 400, "InvalidInput", "physical_network 'physnet9' unknown for flat provider network"},
			{"", map[string]any{"provider:network_type": "flat", "provider:physical_network": "public", "provider:segmentation_id": 3}, 400, "InvalidInput", "segmentation_id prohibited for flat provider network"},
			{"", map[string]any{"provider:network_type": "flat", "provider:physical_network": "physnet1"}, 409, "FlatNetworkInUse", "Physical network physnet1 is in use"},
			{"", map[string]any{"provider:network_type": "vlan", "provider:physical_network": "physnet1"}, 503, "NoNetworkAvailable", "No tenant network is available"},
			{"", map[string]any{"provider:network_type": "vlan", "provider:physical_network": "physnet2", "provider:segmentation_id": 5}, 409, "VlanIdInUse", "The VLAN 5 on physical network physnet2 is in use"},
			{"", map[string]any{"provider:network_type": "vlan", "provider:physical_network": "physnet2", "provider:segmentation_id": 4095}, 400, "InvalidInput", "segmentation_id out of range (1 through 4094)"},
			{"", map[string]any{"provider:network_type": "vlan", "provider:physical_network": "physnet9", "provider:segmentation_id": 7}, 400, "InvalidInput", "physical_network 'physnet9' unknown for VLAN provider network"},
			{"", map[string]any{"provider:network_type": "vlan", "provider:segmentation_id": 7}, 400, "InvalidInput", "segmentation_id requires physical_network"},
			{"", map[string]any{"provider:network_type": "vxlan", "provider:physical_network": "physnet1"}, 400, "InvalidInput", "provider:physical_network specified for vxlan network"},
			{"", map[string]any{"provider:network_type": "vxlan", "provider:segmentation_id": 77}, 409, "TunnelIdInUse", "The tunnel ID 77 is in use"},
			{"", map[string]any{"provider:network_type": "vxlan", "provider:segmentation_id": 1 << 24}, 400, "InvalidInput", "segmentation_id out of range (1 through 16777215)"},
			{"", map[string]any{"provider:network_type": "vxlan"}, 503, "NoNetworkAvailable", "No tenant network"},
			{"", map[string]any{"provider:network_type": "local", "provider:segmentation_id": 1}, 400, "InvalidInput", "segmentation_id prohibited for local provider network"},
			{"", map[string]any{"provider:network_type": "vlan", "provider:physical_network": "physnet2", "provider:segmentation_id": "x"}, 400, "HTTPBadRequest", "is not an integer"},
		} {
			r := post(tc.project, tc.attrs)
			typ, msg := r.fault()
			if r.status != tc.status || typ != tc.typ || !strings.Contains(msg, tc.msg) {
				t.Errorf("%v: %d %s %q, want %d %s containing %q", tc.attrs, r.status, typ, msg, tc.status, tc.typ, tc.msg)
			}
		}
		if after := netSnapshot(e); after != before {
			t.Errorf("refused requests changed the networks:\nbefore %s\nafter  %s", before, after)
		}
		// Tenant networks, VNIs exhausted: 503 as well.
		if r := post(projectA, map[string]any{"name": "one-too-many"}); r.status != 503 {
			t.Errorf("tenant network with no VNI left: %d %s", r.status, r.raw)
		}
		// Updates cannot change the segment; the same values pass.
		id := mine["id"].(string)
		for _, tc := range []struct {
			project string
			attrs   map[string]any
			status  int
		}{
			{"", map[string]any{"provider:segmentation_id": 1001}, 400},
			{"", map[string]any{"provider:network_type": "vlan"}, 400},
			{"", map[string]any{"provider:segmentation_id": 1000, "name": "same"}, 200},
			{projectA, map[string]any{"provider:network_type": "vxlan"}, 403},
		} {
			if r := e.do("PUT", "/v2.0/networks/"+id, tc.project, map[string]any{"network": tc.attrs}); r.status != tc.status {
				t.Errorf("PUT %v: %d %s, want %d", tc.attrs, r.status, r.raw, tc.status)
			}
		}
		// Filters: admins filter on the segment; members' provider filters
		// are ignored, as for any attribute they cannot see.
		r := e.do("GET", "/v2.0/networks?provider:network_type=vlan&provider:physical_network=physnet1", "", nil)
		if got := len(r.body["networks"].([]any)); got != 3 {
			t.Errorf("admin filter on vlan/physnet1: %d networks, want 3", got)
		}
		r = e.do("GET", "/v2.0/networks?provider:segmentation_id=77", "", nil)
		if got := len(r.body["networks"].([]any)); got != 1 {
			t.Errorf("admin filter on segmentation_id 77: %d networks, want 1", got)
		}
		r = e.do("GET", "/v2.0/networks?provider:network_type=vlan", projectA, nil)
		if got := len(r.body["networks"].([]any)); got != 1 {
			t.Errorf("member with a provider filter: %d networks, want its 1", got)
		}
		// The extension is listed.
		if r := e.do("GET", "/v2.0/extensions/provider", "", nil); r.status != 200 {
			t.Errorf("GET /v2.0/extensions/provider = %d", r.status)
		}
	})
}

// TestNoTenantSegments: with no VNI range, or tenant VLAN networks and no
// VLAN range, a network without provider attributes gets 503
// NoNetworkAvailable and nothing is written, rather than an id from the
// whole range.
func TestNoTenantSegments(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, dialect string) {
		for _, cfg := range []*segment.Config{
			{Flat: []string{"*"}, VLAN: map[string][]segment.Range{}, VNI: nil, TenantTypes: []string{segment.VXLAN}},
			{Flat: []string{"*"}, VLAN: map[string][]segment.Range{"physnet1": {}}, TenantTypes: []string{segment.VLAN}},
		} {
			e := newEnv(t, dialect, func(o *service.Options) { o.Segments = cfg })
			r := e.do("POST", "/v2.0/networks", projectA, map[string]any{"network": map[string]any{"name": "n"}})
			if typ, _ := r.fault(); r.status != 503 || typ != "NoNetworkAvailable" {
				t.Errorf("tenant types %v: %d %s, want 503 NoNetworkAvailable", cfg.TenantTypes, r.status, r.raw)
			}
			if n := len(e.do("GET", "/v2.0/networks", "", nil).body["networks"].([]any)); n != 0 {
				t.Errorf("a refused network was written: %d networks", n)
			}
		}
	})
}

package api_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/trunk_details"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/trunks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"
	"github.com/gophercloud/gophercloud/v2/pagination"
)

// trunkNet makes a network with a subnet for project A and returns a
// function creating ports on it.
func trunkNet(t *testing.T, e *env, cidr string) func(opts ports.CreateOpts) *ports.Port {
	n := must[*networks.Network](t)(networks.Create(ctx, e.a, networks.CreateOpts{Name: "trunked"}).Extract())
	must[*subnets.Subnet](t)(subnets.Create(ctx, e.a, subnets.CreateOpts{NetworkID: n.ID, IPVersion: 4, CIDR: cidr}).Extract())
	return func(opts ports.CreateOpts) *ports.Port {
		opts.NetworkID = n.ID
		return must[*ports.Port](t)(ports.Create(ctx, e.a, opts).Extract())
	}
}

func subportIDs(sps []trunks.Subport) []string {
	var ids []string
	for _, sp := range sps {
		ids = append(ids, fmt.Sprintf("%s/%s/%d", sp.PortID, sp.SegmentationType, sp.SegmentationID))
	}
	return ids
}

func TestTrunks(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		port := trunkNet(t, e, "10.70.0.0/24")
		parent, s1, s2 := port(ports.CreateOpts{Name: "parent"}), port(ports.CreateOpts{}), port(ports.CreateOpts{})
		attached := port(ports.CreateOpts{DeviceID: "vm-1", DeviceOwner: "compute:nova"})
		other := mustPortOf(t, e)

		tr := must[*trunks.Trunk](t)(trunks.Create(ctx, e.a, trunks.CreateOpts{PortID: parent.ID, Name: "t",
			Subports: []trunks.Subport{{PortID: s1.ID, SegmentationType: "vlan", SegmentationID: 100}}}).Extract())
		if tr.Status != "DOWN" || !tr.AdminStateUp || tr.PortID != parent.ID || tr.ProjectID != projectA ||
			!slices.Equal(subportIDs(tr.Subports), []string{s1.ID + "/vlan/100"}) {
			t.Fatalf("created trunk = %+v", tr)
		}
		// The subport is the trunk's now.
		if p := must[*ports.Port](t)(ports.Get(ctx, e.a, s1.ID).Extract()); p.DeviceOwner != "trunk:subport" || p.DeviceID != tr.ID {
			t.Fatalf("subport owner %q device %q", p.DeviceOwner, p.DeviceID)
		}
		// The parent shows its trunk (trunk-details), on GET and in lists.
		{
			var withDetails struct {
				ports.Port
				trunk_details.TrunkDetailsExt
			}
			if err := ports.Get(ctx, e.a, parent.ID).ExtractInto(&withDetails); err != nil {
				t.Fatal(err)
			}
			d := withDetails.TrunkDetails
			if d.TrunkID != tr.ID || len(d.SubPorts) != 1 || d.SubPorts[0].PortID != s1.ID || d.SubPorts[0].SegmentationID != 100 ||
				d.SubPorts[0].SegmentationType != "vlan" || d.SubPorts[0].MACAddress != s1.MACAddress {
				t.Fatalf("parent's trunk_details = %+v, want trunk %s with %s (vlan 100, %s)", d, tr.ID, s1.ID, s1.MACAddress)
			}
			var listed []struct {
				ports.Port
				trunk_details.TrunkDetailsExt
			}
			pages, err := ports.List(e.a, ports.ListOpts{ID: parent.ID}).AllPages(ctx)
			if err == nil {
				err = ports.ExtractPortsInto(pages, &listed)
			}
			if err != nil || len(listed) != 1 || listed[0].TrunkDetails.TrunkID != tr.ID {
				t.Fatalf("listed parent: %+v, %v; want its trunk_details", listed, err)
			}
			var sub struct {
				ports.Port
				trunk_details.TrunkDetailsExt
			}
			if err := ports.Get(ctx, e.a, s1.ID).ExtractInto(&sub); err != nil || sub.TrunkDetails.TrunkID != "" {
				t.Fatalf("a subport shows trunk_details %+v (%v), want none", sub.TrunkDetails, err)
			}
		}
		// The reference's refusals.
		_, err := trunks.Create(ctx, e.a, trunks.CreateOpts{PortID: parent.ID}).Extract()
		wantFault(t, err, 409, "ParentPortInUse")
		_, err = trunks.Create(ctx, e.a, trunks.CreateOpts{PortID: s1.ID}).Extract()
		wantFault(t, err, 409, "TrunkPortInUse")
		_, err = trunks.Create(ctx, e.a, trunks.CreateOpts{PortID: other}).Extract()
		wantFault(t, err, 404, "PortNotFound")
		add := func(sps ...trunks.Subport) (*trunks.Trunk, error) {
			return trunks.AddSubports(ctx, e.a, tr.ID, trunks.AddSubportsOpts{Subports: sps}).Extract()
		}
		for _, c := range []struct {
			sp     trunks.Subport
			status int
			typ    string
		}{
			{trunks.Subport{PortID: s2.ID, SegmentationType: "vlan", SegmentationID: 100}, 409, "DuplicateSubPort"},
			{trunks.Subport{PortID: s2.ID, SegmentationType: "vlan", SegmentationID: 4095}, 400, "InvalidInput"},
			{trunks.Subport{PortID: s2.ID, SegmentationType: "vlan", SegmentationID: 0}, 400, "InvalidInput"},
			{trunks.Subport{PortID: s2.ID, SegmentationType: "gre", SegmentationID: 5}, 400, "InvalidInput"},
			{trunks.Subport{PortID: parent.ID, SegmentationType: "vlan", SegmentationID: 5}, 409, "ParentPortInUse"},
			{trunks.Subport{PortID: s1.ID, SegmentationType: "vlan", SegmentationID: 5}, 409, "TrunkPortInUse"},
			{trunks.Subport{PortID: other, SegmentationType: "vlan", SegmentationID: 5}, 404, "PortNotFound"},
			{trunks.Subport{PortID: attached.ID, SegmentationType: "vlan", SegmentationID: 5}, 409, "PortInUse"},
		} {
			_, err := add(c.sp)
			wantFault(t, err, c.status, c.typ)
		}
		got := must[*trunks.Trunk](t)(add(trunks.Subport{PortID: s2.ID, SegmentationType: "vlan", SegmentationID: 200}))
		if !slices.Equal(subportIDs(got.Subports), []string{s1.ID + "/vlan/100", s2.ID + "/vlan/200"}) || got.RevisionNumber <= tr.RevisionNumber {
			t.Fatalf("after add_subports: %+v", got)
		}
		sps := must[[]trunks.Subport](t)(trunks.GetSubports(ctx, e.a, tr.ID).Extract())
		if len(sps) != 2 || sps[1].PortID != s2.ID || sps[1].SegmentationID != 200 {
			t.Fatalf("get_subports = %+v", sps)
		}
		// Listing, filters and isolation.
		pages := must[pagination.Page](t)(trunks.List(e.a, trunks.ListOpts{PortID: parent.ID}).AllPages(ctx))
		if l := must[[]trunks.Trunk](t)(trunks.ExtractTrunks(pages)); len(l) != 1 || l[0].ID != tr.ID || len(l[0].Subports) != 2 {
			t.Fatalf("list by port_id = %+v", l)
		}
		pages = must[pagination.Page](t)(trunks.List(e.b, trunks.ListOpts{}).AllPages(ctx))
		if l := must[[]trunks.Trunk](t)(trunks.ExtractTrunks(pages)); len(l) != 0 {
			t.Fatalf("project B sees %+v", l)
		}
		_, err = trunks.Get(ctx, e.b, tr.ID).Extract()
		wantFault(t, err, 404, "TrunkNotFound")
		// Ports in a trunk cannot go.
		wantFault(t, ports.Delete(ctx, e.a, s1.ID).ExtractErr(), 409, "PortInUseAsSubPort")
		wantFault(t, ports.Delete(ctx, e.a, parent.ID).ExtractErr(), 409, "PortInUseAsTrunkParent")
		// remove_subports gives the port back.
		got = must[*trunks.Trunk](t)(trunks.RemoveSubports(ctx, e.a, tr.ID, trunks.RemoveSubportsOpts{Subports: []trunks.RemoveSubport{{PortID: s1.ID}}}).Extract())
		if !slices.Equal(subportIDs(got.Subports), []string{s2.ID + "/vlan/200"}) {
			t.Fatalf("after remove_subports: %+v", got.Subports)
		}
		if p := must[*ports.Port](t)(ports.Get(ctx, e.a, s1.ID).Extract()); p.DeviceOwner != "" || p.DeviceID != "" {
			t.Fatalf("removed subport owner %q device %q", p.DeviceOwner, p.DeviceID)
		}
		_, err = trunks.RemoveSubports(ctx, e.a, tr.ID, trunks.RemoveSubportsOpts{Subports: []trunks.RemoveSubport{{PortID: s1.ID}}}).Extract()
		wantFault(t, err, 404, "SubPortNotFound")
		// Updates, If-Match, and a disabled trunk.
		stale := tr.RevisionNumber
		_, err = trunks.Update(ctx, e.a, tr.ID, trunks.UpdateOpts{Name: ptr("x"), RevisionNumber: &stale}).Extract()
		wantFault(t, err, 412, "RevisionNumberConstraintFailed")
		off := must[*trunks.Trunk](t)(trunks.Update(ctx, e.a, tr.ID, trunks.UpdateOpts{AdminStateUp: ptr(false), Name: ptr("off")}).Extract())
		if off.AdminStateUp || off.Name != "off" || len(off.Subports) != 1 {
			t.Fatalf("disabled trunk = %+v", off)
		}
		_, err = add(trunks.Subport{PortID: s1.ID, SegmentationType: "vlan", SegmentationID: 300})
		wantFault(t, err, 409, "TrunkDisabled")
		wantFault(t, trunks.Delete(ctx, e.a, tr.ID).ExtractErr(), 409, "TrunkDisabled")
		must[*trunks.Trunk](t)(trunks.Update(ctx, e.a, tr.ID, trunks.UpdateOpts{AdminStateUp: ptr(true)}).Extract())
		if err := trunks.Delete(ctx, e.a, tr.ID).ExtractErr(); err != nil {
			t.Fatal(err)
		}
		if p := must[*ports.Port](t)(ports.Get(ctx, e.a, s2.ID).Extract()); p.DeviceOwner != "" || p.DeviceID != "" {
			t.Fatalf("subport of a deleted trunk: owner %q device %q", p.DeviceOwner, p.DeviceID)
		}
		for _, id := range []string{s2.ID, parent.ID} {
			if err := ports.Delete(ctx, e.a, id).ExtractErr(); err != nil {
				t.Fatalf("delete port %s after its trunk: %v", id, err)
			}
		}
		if r := e.do("GET", "/v2.0/extensions/trunk", projectA, nil); r.status != 200 {
			t.Fatalf("extension trunk: %d", r.status)
		}
	})
}

// TestTrunkBadInput sends malformed trunk requests: each gets the
// reference's 4xx and none changes anything.
func TestTrunkBadInput(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		port := trunkNet(t, e, "10.71.0.0/24")
		parent, s1 := port(ports.CreateOpts{}), port(ports.CreateOpts{})
		tr := must[*trunks.Trunk](t)(trunks.Create(ctx, e.a, trunks.CreateOpts{PortID: parent.ID}).Extract())
		sp := func(m map[string]any) map[string]any {
			return map[string]any{"trunk": map[string]any{"port_id": s1.ID, "sub_ports": []any{m}}}
		}
		addPath := "/v2.0/trunks/" + tr.ID + "/add_subports"
		cases := []faultCase{
			{"no port", "POST", "/v2.0/trunks", map[string]any{"trunk": map[string]any{"name": "x"}}, 400, "HTTPBadRequest", "port_id"},
			{"bad port", "POST", "/v2.0/trunks", map[string]any{"trunk": map[string]any{"port_id": "nope"}}, 400, "HTTPBadRequest", "not a valid UUID"},
			{"no tag", "POST", "/v2.0/trunks", sp(map[string]any{"port_id": parent.ID}), 400, "HTTPBadRequest", "missing segmentation"},
			{"tag text", "POST", "/v2.0/trunks", sp(map[string]any{"port_id": parent.ID, "segmentation_type": "vlan", "segmentation_id": "ten"}), 400, "HTTPBadRequest", "not an integer"},
			{"status", "POST", "/v2.0/trunks", map[string]any{"trunk": map[string]any{"port_id": s1.ID, "status": "ACTIVE"}}, 400, "HTTPBadRequest", "status"},
			{"port_id put", "PUT", "/v2.0/trunks/" + tr.ID, map[string]any{"trunk": map[string]any{"port_id": s1.ID}}, 400, "HTTPBadRequest", "port_id"},
			{"add none", "PUT", addPath, map[string]any{}, 400, "HTTPBadRequest", "sub_ports"},
			{"add not list", "PUT", addPath, map[string]any{"sub_ports": "x"}, 400, "InvalidInput", "not a list"},
			{"add twice", "PUT", addPath, map[string]any{"sub_ports": []any{
				map[string]any{"port_id": s1.ID, "segmentation_type": "vlan", "segmentation_id": 1},
				map[string]any{"port_id": s1.ID, "segmentation_type": "vlan", "segmentation_id": 2}}}, 400, "InvalidInput", "Non unique"},
			{"add same tag", "PUT", addPath, map[string]any{"sub_ports": []any{
				map[string]any{"port_id": s1.ID, "segmentation_type": "vlan", "segmentation_id": 7},
				map[string]any{"port_id": parent.ID, "segmentation_type": "vlan", "segmentation_id": 7}}}, 400, "InvalidInput", "not unique"},
			{"add get", "GET", addPath, nil, 405, "HTTPMethodNotAllowed", ""},
			{"remove unknown", "PUT", "/v2.0/trunks/" + tr.ID + "/remove_subports", map[string]any{"sub_ports": []any{map[string]any{"port_id": s1.ID}}}, 404, "SubPortNotFound", s1.ID},
			{"no trunk", "PUT", "/v2.0/trunks/" + s1.ID + "/add_subports", map[string]any{"sub_ports": []any{}}, 404, "TrunkNotFound", s1.ID},
		}
		runFaultCases(t, e, cases, func(e *env) string {
			return e.do("GET", "/v2.0/trunks", "", nil).raw + e.do("GET", "/v2.0/ports?fields=device_owner&fields=revision_number", "", nil).raw
		}, "")
	})
}

// TestTrunkRace adds ten subports to one trunk at once, and creates two
// trunks on one parent at once: every subport ends up in the trunk, and
// exactly one of the two trunks is made.
func TestTrunkRace(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		port := trunkNet(t, e, "10.72.0.0/24")
		parent := port(ports.CreateOpts{})
		tr := must[*trunks.Trunk](t)(trunks.Create(ctx, e.a, trunks.CreateOpts{PortID: parent.ID}).Extract())
		const n = 10
		subs := make([]*ports.Port, n)
		for i := range subs {
			subs[i] = port(ports.CreateOpts{})
		}
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				_, errs[i] = trunks.AddSubports(ctx, e.a, tr.ID, trunks.AddSubportsOpts{Subports: []trunks.Subport{
					{PortID: subs[i].ID, SegmentationType: "vlan", SegmentationID: 10 + i}}}).Extract()
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("add subport %d: %v", i, err)
			}
		}
		if sps := must[[]trunks.Subport](t)(trunks.GetSubports(ctx, e.a, tr.ID).Extract()); len(sps) != n {
			t.Fatalf("%d subports after %d concurrent adds", len(sps), n)
		}
		p2 := port(ports.CreateOpts{})
		var made, refused int
		var mu sync.Mutex
		for range 2 {
			wg.Go(func() {
				_, err := trunks.Create(ctx, e.a, trunks.CreateOpts{PortID: p2.ID}).Extract()
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					made++
				} else {
					refused++
				}
			})
		}
		wg.Wait()
		pages := must[pagination.Page](t)(trunks.List(e.a, trunks.ListOpts{PortID: p2.ID}).AllPages(ctx))
		if l := must[[]trunks.Trunk](t)(trunks.ExtractTrunks(pages)); made != 1 || refused != 1 || len(l) != 1 {
			t.Fatalf("two creates on one parent: %d made, %d refused, %d listed", made, refused, len(l))
		}
	})
}

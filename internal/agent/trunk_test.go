package agent

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/neutrino-net/neutrino/api/agentv1"
)

// readyL2 is an L2 whose ports are ready or have a problem as told.
type readyL2 struct {
	ready    map[string]bool
	problems map[string]string
}

func (readyL2) Apply(context.Context, []agentv1.Network, []agentv1.Port) error { return nil }
func (readyL2) Sweep(context.Context, []agentv1.Network, []agentv1.Port) error { return nil }
func (l readyL2) PortReady(id string) bool                                     { return l.ready[id] }
func (readyL2) NetworkReady(string) bool                                       { return true }
func (l readyL2) PortProblem(id string) string                                 { return l.problems[id] }

func TestTrunkStatus(t *testing.T) {
	port := func(id string, up bool) agentv1.Port {
		return agentv1.Port{Interface: agentv1.Interface{PortID: id}, AdminStateUp: up}
	}
	st := &agentv1.HostState{
		Ports: []agentv1.Port{port("p", true), port("s1", true), port("s2", true), port("s3", false)},
		Trunks: []agentv1.Trunk{
			{ID: "bare", PortID: "p", SubPortIDs: []string{}},
			{ID: "ok", PortID: "p", SubPortIDs: []string{"s1", "s3"}}, // s3 is down: not waited for
			{ID: "novlan", PortID: "p", SubPortIDs: []string{"s1", "s2"}},
			{ID: "waiting", PortID: "p", SubPortIDs: []string{"s4"}},
		},
	}
	l2 := readyL2{ready: map[string]bool{"p": true, "s1": true},
		problems: map[string]string{"s2": "VLAN (802.1q) is unavailable in this kernel"}}
	st.Ports = append(st.Ports, port("s4", true))
	a := &Agent{opts: Options{L2: l2}}
	got := a.trunkStatus(st)
	want := map[string]agentv1.TrunkStatus{
		"bare":    {Status: "ACTIVE"},
		"ok":      {Status: "ACTIVE"},
		"novlan":  {Status: "DEGRADED", Reason: "subport s2: VLAN (802.1q) is unavailable in this kernel"},
		"waiting": {Status: "DOWN"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("with the parent wired (-want +got):\n%s", diff)
	}
	l2.ready["p"] = false // the VM's tap is not there
	for id, s := range a.trunkStatus(st) {
		if s.Status != "DOWN" {
			t.Errorf("trunk %s with its parent unwired: %+v, want DOWN", id, s)
		}
	}
}

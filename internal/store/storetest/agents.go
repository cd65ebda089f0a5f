package storetest

// Conformance tests of the networks' segmentation ids, agents, their router
// bindings and the ports on a host.

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/neutrino-net/neutrino/internal/model"
	"github.com/neutrino-net/neutrino/internal/segment"
	"github.com/neutrino-net/neutrino/internal/store"
)

// maxSegmentationID is the largest VXLAN network identifier (24 bits).
const maxSegmentationID = 1<<24 - 1

// Agent types.
const (
	l3Agent  = "L3 agent"
	ovsAgent = "Open vSwitch agent"
)

func agent(id, host, typ string) *model.Agent {
	return &model.Agent{ID: id, Host: host, AgentType: typ, Binary: "neutrino-agent", UnderlayIP: "192.0.2.1",
		AdminStateUp: true, Configurations: map[string]any{"routers": 0.0}, StartedAt: at(0),
		HeartbeatTimestamp: at(1), CreatedAt: at(0), Description: "agent " + id}
}

func listAgents(tx store.Tx, ids []string) ([]model.Agent, error) {
	// Agents have no id filter: select from the full list.
	all, err := tx.ListAgents(ctx)
	return slices.DeleteFunc(all, func(a model.Agent) bool { return !slices.Contains(ids, a.ID) }), err
}

func bind(routerID, agentID string) func(tx store.Tx) error {
	return func(tx store.Tx) error { return tx.BindRouter(ctx, routerID, agentID) }
}

func unbind(routerID, agentID string) func(tx store.Tx) error {
	return func(tx store.Tx) error { return tx.UnbindRouter(ctx, routerID, agentID) }
}

// checkSegmentationIDs checks that every network has a segmentation id of
// its own, in range, and returns them by network id.
func checkSegmentationIDs(t *testing.T, s store.Store) map[string]int {
	t.Helper()
	byNetwork := map[string]int{}
	read(t, s, func(tx store.Tx) error {
		ns, err := tx.ListNetworks(ctx, store.NetworkFilter{})
		if err != nil {
			return err
		}
		owner := map[int]string{}
		for _, n := range ns {
			if n.SegmentationID < 1 || n.SegmentationID > maxSegmentationID {
				t.Errorf("network %s: segmentation id %d out of range", n.ID, n.SegmentationID)
			}
			if other, ok := owner[n.SegmentationID]; ok {
				t.Errorf("networks %s and %s: same segmentation id %d", other, n.ID, n.SegmentationID)
			}
			owner[n.SegmentationID] = n.ID
			byNetwork[n.ID] = n.SegmentationID
		}
		return nil
	})
	return byNetwork
}

func testSegmentationID(t *testing.T, s store.Store) {
	base(t, s)
	checkSegmentationIDs(t, s)

	// The store sets it in the caller's copy.
	n := network("n", "p1")
	write(t, s, create(n))
	if n.SegmentationID < 1 || n.SegmentationID > maxSegmentationID {
		t.Fatalf("CreateNetwork set segmentation id %d, want one in 1..%d", n.SegmentationID, maxSegmentationID)
	}
	checkGetList(t, s, n, n.ID, store.Tx.GetNetwork, listNetworks)
	// A given id is kept; another network's is refused.
	taken := network("taken", "p1")
	taken.SegmentationID = n.SegmentationID
	writeErr(t, s, store.ErrDuplicate, create(taken))
	m := network("m", "p1")
	m.SegmentationID = n.SegmentationID + 7777
	write(t, s, create(m))
	if m.SegmentationID != n.SegmentationID+7777 {
		t.Errorf("CreateNetwork changed the given segmentation id %d to %d", n.SegmentationID+7777, m.SegmentationID)
	}
	checkGetList(t, s, m, m.ID, store.Tx.GetNetwork, listNetworks)
	checkSegmentationIDs(t, s)

	t.Run("update-keeps-it", func(t *testing.T) {
		seg := n.SegmentationID
		for _, v := range []int{0, seg + 1000, m.SegmentationID, seg} {
			n.SegmentationID, n.Name, n.RevisionNumber = v, fmt.Sprint("renamed ", v), n.RevisionNumber+1
			write(t, s, func(tx store.Tx) error { return tx.UpdateNetwork(ctx, n) })
			if n.SegmentationID != seg {
				t.Errorf("UpdateNetwork with segmentation id %d left %d in the caller's copy, want the stored %d", v,
					n.SegmentationID, seg)
				n.SegmentationID = seg
			}
			checkGetList(t, s, n, n.ID, store.Tx.GetNetwork, listNetworks)
		}
	})
	t.Run("after-deletion", func(t *testing.T) {
		write(t, s, func(tx store.Tx) error { return tx.DeleteNetwork(ctx, "m") })
		for i := range 3 {
			write(t, s, create(network(fmt.Sprint("after", i), "p1")))
		}
		checkSegmentationIDs(t, s)
	})
	t.Run("failed-create", func(t *testing.T) {
		// A refused network takes nothing; the transaction goes on.
		k := network("k", "p1")
		write(t, s, func(tx store.Tx) error {
			if err := tx.CreateNetwork(ctx, network("n1", "p1"), nil); !errors.Is(err, store.ErrDuplicate) {
				t.Errorf("CreateNetwork(n1) again = %v, want ErrDuplicate", err)
			}
			return tx.CreateNetwork(ctx, k, nil)
		})
		checkGetList(t, s, k, k.ID, store.Tx.GetNetwork, listNetworks)
		checkSegmentationIDs(t, s)
	})
}

// testSegmentationIDConcurrency has writers create (and delete some)
// networks at once, without taking locks: every network must get an id of
// its own.
func testSegmentationIDConcurrency(t *testing.T, s store.Store) {
	const workers, perWorker = 8, 15
	var mu sync.Mutex
	got := map[string]int{} // live network -> segmentation id its creator saw
	errs := make(chan error, workers*perWorker)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range perWorker {
				// One or two networks per transaction.
				var made []*model.Network
				err := s.Write(ctx, func(tx store.Tx) error {
					made = nil
					for k := range 1 + j%2 {
						n := network(fmt.Sprintf("w%d-%d-%d", w, j, k), "p1")
						if err := tx.CreateNetwork(ctx, n, nil); err != nil {
							return err
						}
						made = append(made, n)
					}
					return nil
				})
				if err != nil {
					errs <- err
					continue
				}
				mu.Lock()
				for _, n := range made {
					got[n.ID] = n.SegmentationID
				}
				mu.Unlock()
				if j%3 == 2 { // delete the newest, whose id may come back
					id := made[len(made)-1].ID
					if err := s.Write(ctx, func(tx store.Tx) error { return tx.DeleteNetwork(ctx, id) }); err != nil {
						errs <- err
						continue
					}
					mu.Lock()
					delete(got, id)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("writer: %v", err)
	}
	stored := checkSegmentationIDs(t, s)
	if diff := cmp.Diff(got, stored); diff != "" {
		t.Errorf("segmentation ids: the creators' (-) and the stored (+):\n%s", diff)
	}
}

func testAgentRoundTrip(t *testing.T, s store.Store) {
	india := time.FixedZone("IST", 5*3600+30*60)
	full := &model.Agent{ID: "full", Host: "compute-1.example.org", AgentType: l3Agent, Binary: "neutrino-l3-agent",
		UnderlayIP: "2001:db8::17", AdminStateUp: true,
		Configurations: map[string]any{"agent_mode": "legacy", "routers": 3.0, "ha": false, "nothing": nil,
			"interfaces": []any{"eth0", map[string]any{"name": "br-ex", "mtu": 1500.0}},
			"nested":     map[string]any{"deeper": map[string]any{"list": []any{1.5, true, "x", []any{}}, "empty": map[string]any{}}}},
		StartedAt:          time.Date(2026, 11, 21, 17, 30, 0, 999_999_999, india),
		HeartbeatTimestamp: time.Date(2026, 11, 21, 12, 0, 41, 500, time.Local),
		CreatedAt:          time.Date(2026, 11, 21, 12, 0, 0, 1, time.UTC),
		Description:        `an "agent" with 'quotes' ✓ ? $1`}
	zero := &model.Agent{ID: "zero"} // every field zero, timestamps included, nil Configurations
	empty := agent("empty", "compute-2", ovsAgent)
	empty.Configurations = map[string]any{}
	empty.AdminStateUp = false

	write(t, s, create(full, zero, empty))
	for what, c := range map[string]struct{ got, want time.Time }{
		"StartedAt":          {full.StartedAt, time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)},
		"HeartbeatTimestamp": {full.HeartbeatTimestamp, time.Date(2026, 11, 21, 12, 0, 41, 0, time.Local).UTC()},
		"CreatedAt":          {full.CreatedAt, time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)},
	} {
		if !c.got.Equal(c.want) || c.got.Location() != time.UTC {
			t.Errorf("normalised %s = %v, want %v in UTC", what, c.got, c.want)
		}
	}
	for _, a := range []*model.Agent{full, zero, empty} {
		t.Run(a.ID, func(t *testing.T) {
			checkGetList(t, s, a, a.ID, store.Tx.GetAgent, listAgents)
			read(t, s, func(tx store.Tx) error {
				got, err := tx.AgentByHost(ctx, a.Host, a.AgentType)
				if err != nil {
					return err
				}
				if diff := cmp.Diff(a, got); diff != "" {
					t.Errorf("AgentByHost(%q, %q) (-want +got):\n%s", a.Host, a.AgentType, diff)
				}
				return nil
			})
		})
	}
	read(t, s, func(tx store.Tx) error {
		got, err := tx.GetAgent(ctx, "full")
		if err != nil {
			return err
		}
		if loc := got.HeartbeatTimestamp.Location(); loc != time.UTC {
			t.Errorf("stored HeartbeatTimestamp in %v, want UTC", loc)
		}
		return nil
	})
}

func testAgentUpdate(t *testing.T, s store.Store) {
	a := agent("a", "h1", l3Agent)
	write(t, s, create(a, agent("b", "h2", l3Agent)))

	a.Binary, a.UnderlayIP, a.AdminStateUp, a.Description = "neutrino-l3-agent-v2", "192.0.2.99", false, "draining"
	a.Configurations = map[string]any{"routers": 7.0, "new": []any{"x", map[string]any{"y": nil}}} // "routers" only kept
	a.StartedAt = at(50)
	a.HeartbeatTimestamp = time.Date(2026, 11, 21, 12, 1, 40, 999_999_999, time.FixedZone("X", -3600))
	write(t, s, func(tx store.Tx) error { return tx.UpdateAgent(ctx, a) })
	if want := at(100 + 3600); !a.HeartbeatTimestamp.Equal(want) || a.HeartbeatTimestamp.Location() != time.UTC {
		t.Errorf("normalised HeartbeatTimestamp = %v, want %v in UTC", a.HeartbeatTimestamp, want)
	}
	checkGetList(t, s, a, a.ID, store.Tx.GetAgent, listAgents)

	// Heartbeats only.
	for i := range 3 {
		a.HeartbeatTimestamp = at(200 + i)
		write(t, s, func(tx store.Tx) error { return tx.UpdateAgent(ctx, a) })
	}
	checkGetList(t, s, a, a.ID, store.Tx.GetAgent, listAgents)

	// Moving it onto another host.
	a.Host = "h3"
	write(t, s, func(tx store.Tx) error { return tx.UpdateAgent(ctx, a) })
	checkGetList(t, s, a, a.ID, store.Tx.GetAgent, listAgents)
	writeErr(t, s, store.ErrNotFound, func(tx store.Tx) error { _, err := tx.AgentByHost(ctx, "h1", l3Agent); return err })

	// Onto b's host and type.
	moved := *a
	moved.Host, moved.Description = "h2", "moved"
	writeErr(t, s, store.ErrDuplicate, func(tx store.Tx) error { return tx.UpdateAgent(ctx, &moved) })
	checkGetList(t, s, a, a.ID, store.Tx.GetAgent, listAgents)
}

func testAgentNotFound(t *testing.T, s store.Store) {
	write(t, s, create(router("r", "p1", nil), agent("a", "h1", l3Agent)))
	for _, c := range []struct {
		name string
		fn   func(tx store.Tx) error
	}{
		{"GetAgent", func(tx store.Tx) error { _, err := tx.GetAgent(ctx, "nope"); return err }},
		{"AgentByHost/type", func(tx store.Tx) error { _, err := tx.AgentByHost(ctx, "h1", ovsAgent); return err }},
		{"AgentByHost/host", func(tx store.Tx) error { _, err := tx.AgentByHost(ctx, "h2", l3Agent); return err }},
		{"AgentByHost/empty", func(tx store.Tx) error { _, err := tx.AgentByHost(ctx, "", ""); return err }},
		{"UpdateAgent", func(tx store.Tx) error { return tx.UpdateAgent(ctx, agent("nope", "h9", l3Agent)) }},
		{"DeleteAgent", func(tx store.Tx) error { return tx.DeleteAgent(ctx, "nope") }},
		{"UnbindRouter/not-bound", unbind("r", "a")},
		{"UnbindRouter/missing", unbind("nope", "nope")},
	} {
		t.Run(c.name, func(t *testing.T) { writeErr(t, s, store.ErrNotFound, c.fn) })
	}
	// Empty results are not errors.
	read(t, s, func(tx store.Tx) error {
		if got, err := tx.RouterAgents(ctx, "r"); err != nil || len(got) != 0 {
			t.Errorf("RouterAgents(r) = %v, %v; want none", got, err)
		}
		if got, err := tx.RouterAgents(ctx, "nope"); err != nil || len(got) != 0 {
			t.Errorf("RouterAgents(nope) = %v, %v; want none", got, err)
		}
		if got, err := tx.AgentRouters(ctx, "nope"); err != nil || len(got) != 0 {
			t.Errorf("AgentRouters(nope) = %v, %v; want none", got, err)
		}
		if got, err := tx.RouterLoads(ctx); err != nil || got == nil || len(got) != 0 {
			t.Errorf("RouterLoads = %#v, %v; want an empty map", got, err)
		}
		if got, err := tx.PortsOnHost(ctx, "nope"); err != nil || len(got) != 0 {
			t.Errorf("PortsOnHost(nope) = %v, %v; want none", got, err)
		}
		return nil
	})
	read(t, s, func(tx store.Tx) error {
		got, err := ids(tx.ListAgents(ctx))
		if err != nil || !slices.Equal(got, []string{"a"}) {
			t.Errorf("ListAgents = %v, %v; want [a]", got, err)
		}
		return nil
	})
}

func testAgentDuplicate(t *testing.T, s store.Store) {
	write(t, s, create(agent("a", "h1", l3Agent)))
	t.Run("host-and-type", func(t *testing.T) { writeErr(t, s, store.ErrDuplicate, create(agent("b", "h1", l3Agent))) })
	t.Run("id", func(t *testing.T) { writeErr(t, s, store.ErrDuplicate, create(agent("a", "h9", ovsAgent))) })
	// Another type on the host, the type on another host.
	write(t, s, create(agent("c", "h1", ovsAgent), agent("d", "h2", l3Agent)))
	t.Run("failed-create-leaves-nothing", func(t *testing.T) {
		write(t, s, func(tx store.Tx) error {
			if err := tx.CreateAgent(ctx, agent("e", "h2", l3Agent)); !errors.Is(err, store.ErrDuplicate) {
				t.Errorf("CreateAgent(e on h2) = %v, want ErrDuplicate", err)
			}
			if _, err := tx.GetAgent(ctx, "e"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("GetAgent(e) in the same transaction = %v, want ErrNotFound", err)
			}
			return tx.CreateAgent(ctx, agent("e", "h3", l3Agent))
		})
	})
	read(t, s, func(tx store.Tx) error {
		got, err := ids(tx.ListAgents(ctx))
		if err != nil {
			return err
		}
		if want := []string{"a", "c", "d", "e"}; !slices.Equal(got, want) {
			t.Errorf("ListAgents = %v, want %v", got, want)
		}
		return nil
	})
}

// testAgentListOrder checks agents are listed in the order they were
// created (inserted), whatever their CreatedAt.
func testAgentListOrder(t *testing.T, s store.Store) {
	var objs []any
	want := []string{"c", "z", "a", "m", "b"}
	for i, id := range want {
		a := agent(id, "host-"+id, l3Agent)
		a.CreatedAt = at([]int{30, 20, 20, 10, 40}[i])
		objs = append(objs, a)
	}
	write(t, s, create(objs[:2]...))
	write(t, s, create(objs[2:]...))
	read(t, s, func(tx store.Tx) error {
		got, err := ids(tx.ListAgents(ctx))
		if err != nil {
			return err
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("ListAgents order (-want +got):\n%s", diff)
		}
		return nil
	})
}

// checkBindings checks RouterAgents, AgentRouters and RouterLoads.
func checkBindings(t *testing.T, s store.Store, routerAgents, agentRouters map[string][]string, loads map[string]int) {
	t.Helper()
	read(t, s, func(tx store.Tx) error {
		for r, want := range routerAgents {
			got, err := tx.RouterAgents(ctx, r)
			if err != nil {
				return err
			}
			if !slices.Equal(got, want) {
				t.Errorf("RouterAgents(%s) = %v, want %v", r, got, want)
			}
		}
		for a, want := range agentRouters {
			got, err := tx.AgentRouters(ctx, a)
			if err != nil {
				return err
			}
			if !slices.Equal(got, want) {
				t.Errorf("AgentRouters(%s) = %v, want %v", a, got, want)
			}
		}
		got, err := tx.RouterLoads(ctx)
		if err != nil {
			return err
		}
		if diff := cmp.Diff(loads, got); diff != "" || got == nil {
			t.Errorf("RouterLoads (-want +got):\n%s", diff)
		}
		return nil
	})
}

func testAgentBindings(t *testing.T, s store.Store) {
	write(t, s, create(router("r1", "p1", nil), router("r2", "p1", nil), router("r3", "p2", nil),
		agent("a1", "h1", l3Agent), agent("a2", "h2", l3Agent), agent("a3", "h3", l3Agent)))
	checkBindings(t, s, map[string][]string{"r1": nil}, map[string][]string{"a1": nil}, map[string]int{})

	// Bound in another order than the routers' and the agents'; twice in
	// one transaction and again in another: idempotent.
	write(t, s, func(tx store.Tx) error {
		for _, b := range [][2]string{{"r2", "a1"}, {"r1", "a2"}, {"r1", "a1"}, {"r1", "a2"}} {
			if err := tx.BindRouter(ctx, b[0], b[1]); err != nil {
				return err
			}
		}
		return nil
	})
	write(t, s, bind("r1", "a1"))
	checkBindings(t, s,
		map[string][]string{"r1": {"a1", "a2"}, "r2": {"a1"}, "r3": nil},
		map[string][]string{"a1": {"r1", "r2"}, "a2": {"r1"}, "a3": nil},
		map[string]int{"a1": 2, "a2": 1})

	t.Run("missing", func(t *testing.T) {
		writeErr(t, s, store.ErrReferenced, bind("nope", "a1"))
		writeErr(t, s, store.ErrReferenced, bind("r1", "nope"))
		// A refused binding leaves the transaction usable.
		write(t, s, func(tx store.Tx) error {
			if err := tx.BindRouter(ctx, "r3", "nope"); !errors.Is(err, store.ErrReferenced) {
				t.Errorf("BindRouter(r3, nope) = %v, want ErrReferenced", err)
			}
			return tx.BindRouter(ctx, "r3", "a3")
		})
		checkBindings(t, s, map[string][]string{"r3": {"a3"}}, nil, map[string]int{"a1": 2, "a2": 1, "a3": 1})
	})
	t.Run("unbind", func(t *testing.T) {
		write(t, s, unbind("r1", "a1"))
		writeErr(t, s, store.ErrNotFound, unbind("r1", "a1"))
		writeErr(t, s, store.ErrNotFound, unbind("r2", "a2"))
		checkBindings(t, s,
			map[string][]string{"r1": {"a2"}, "r2": {"a1"}, "r3": {"a3"}},
			map[string][]string{"a1": {"r2"}, "a2": {"r1"}, "a3": {"r3"}},
			map[string]int{"a1": 1, "a2": 1, "a3": 1})
		write(t, s, unbind("r3", "a3"))
		checkBindings(t, s, map[string][]string{"r3": nil}, map[string][]string{"a3": nil}, map[string]int{"a1": 1, "a2": 1})
		// And bound again.
		write(t, s, bind("r1", "a1"))
		checkBindings(t, s, map[string][]string{"r1": {"a1", "a2"}}, nil, map[string]int{"a1": 2, "a2": 1})
	})
}

func testAgentCascade(t *testing.T, s store.Store) {
	base(t, s)
	write(t, s, create(router("r1", "p1", nil), router("r2", "p1", nil), agent("a1", "h1", l3Agent),
		agent("a2", "h2", l3Agent)))
	write(t, s, func(tx store.Tx) error {
		for _, f := range []func(store.Tx) error{bind("r1", "a1"), bind("r2", "a1"), bind("r1", "a2"), bind("r2", "a2")} {
			if err := f(tx); err != nil {
				return err
			}
		}
		return nil
	})
	t.Run("agent-delete", func(t *testing.T) {
		write(t, s, func(tx store.Tx) error { return tx.DeleteAgent(ctx, "a1") })
		writeErr(t, s, store.ErrNotFound, func(tx store.Tx) error { _, err := tx.GetAgent(ctx, "a1"); return err })
		checkBindings(t, s, map[string][]string{"r1": {"a2"}, "r2": {"a2"}}, map[string][]string{"a1": nil},
			map[string]int{"a2": 2})
		// The host and type are free again, and the new agent hosts nothing.
		write(t, s, create(agent("a1", "h1", l3Agent)))
		checkBindings(t, s, nil, map[string][]string{"a1": nil}, map[string]int{"a2": 2})
	})
	t.Run("router-delete", func(t *testing.T) {
		write(t, s, func(tx store.Tx) error { return tx.DeleteRouter(ctx, "r1") })
		checkBindings(t, s, map[string][]string{"r1": nil}, map[string][]string{"a2": {"r2"}}, map[string]int{"a2": 1})
		read(t, s, func(tx store.Tx) error {
			_, err := tx.GetAgent(ctx, "a2")
			return err
		})
	})
}

func testAgentRollback(t *testing.T, s store.Store) {
	write(t, s, create(router("r1", "p1", nil), agent("keep", "h0", l3Agent)))
	errBoom := errors.New("boom")
	err := s.Write(ctx, func(tx store.Tx) error {
		if err := tx.CreateAgent(ctx, agent("a", "h1", l3Agent)); err != nil {
			return err
		}
		for _, f := range []func(store.Tx) error{bind("r1", "a"), bind("r1", "keep")} {
			if err := f(tx); err != nil {
				return err
			}
		}
		k, err := tx.GetAgent(ctx, "keep")
		if err != nil {
			return err
		}
		k.AdminStateUp = false
		if err := tx.UpdateAgent(ctx, k); err != nil {
			return err
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("Write = %v, want the closure's error", err)
	}
	writeErr(t, s, store.ErrNotFound, func(tx store.Tx) error { _, err := tx.AgentByHost(ctx, "h1", l3Agent); return err })
	checkBindings(t, s, map[string][]string{"r1": nil}, nil, map[string]int{})
	read(t, s, func(tx store.Tx) error {
		k, err := tx.GetAgent(ctx, "keep")
		if err == nil && !k.AdminStateUp {
			t.Error("rolled back update of agent keep persisted")
		}
		return err
	})
}

func testPortsOnHost(t *testing.T, s store.Store) {
	base(t, s)
	bound := func(p *model.Port, host string) *model.Port {
		p.BindingHostID, p.BindingVIFType = host, "ovs"
		return p
	}
	a := bound(port("a", "n1", "p1", fixed("s6", "fd00::5"), fixed("s1", "10.0.0.5")), "h1")
	a.SecurityGroups = []string{"sg2", "sg1"}
	a.BindingProfile = map[string]any{"k": map[string]any{"v": []any{1.0}}}
	b := bound(port("b", "n1", "p1", fixed("s1", "10.0.0.6")), "h2")
	b.SecurityGroups = []string{"sg1"}
	c := bound(port("c", "n1", "p1"), "h1")                                   // no addresses, no groups
	d := port("d", "n1", "p1", fixed("s1", "10.0.0.8"))                       // unbound
	e := bound(port("e", "ext", "p2", fixed("sext", "203.0.113.9")), "h1")    // another project's
	f := bound(port("f", "n1", "p1", fixed("s1", "10.0.0.9")), "compute-1.h") // not a prefix match
	objs := []any{a, b, c, d, e, f}
	var many []model.Port
	for i := range 30 {
		p := bound(port(fmt.Sprint("m", i), "n1", "p1", fixed("s1", fmt.Sprintf("10.0.0.%d", 100+i))), "h3")
		if i%2 == 0 {
			p.FixedIPs = append(p.FixedIPs, fixed("s6", fmt.Sprintf("fd00::%x", 100+i)))
			p.SecurityGroups = []string{"sg1", "sg2"}
		}
		objs = append(objs, p)
		many = append(many, *p)
	}
	write(t, s, create(objs...))

	check := func(host string, want []model.Port) {
		t.Helper()
		read(t, s, func(tx store.Tx) error {
			got, err := tx.PortsOnHost(ctx, host)
			if err != nil {
				return err
			}
			if diff := cmp.Diff(want, got, cmpOpts); diff != "" || got == nil {
				t.Errorf("PortsOnHost(%q) (-want +got):\n%s", host, diff)
			}
			return nil
		})
	}
	check("h1", []model.Port{*a, *c, *e})
	check("h2", []model.Port{*b})
	check("h3", many)
	check("compute-1.h", []model.Port{*f})
	check("", []model.Port{*d})
	check("h", []model.Port{})
	check("H1", []model.Port{})

	// Moving a port, unbinding one.
	b.BindingHostID = "h1"
	c.BindingHostID = ""
	write(t, s, func(tx store.Tx) error {
		if err := tx.UpdatePort(ctx, b); err != nil {
			return err
		}
		return tx.UpdatePort(ctx, c)
	})
	check("h1", []model.Port{*a, *b, *e})
	check("h2", []model.Port{})
	check("", []model.Port{*c, *d})
	write(t, s, func(tx store.Tx) error { return tx.DeletePort(ctx, "a") })
	check("h1", []model.Port{*b, *e})
}

// testProviderSegments: VLAN ids are allocated from the pool given, per
// physical network, until it is exhausted; a taken VLAN id, VNI or flat
// physical network is refused; local networks have no segment; the
// segment reads back.
func testProviderSegments(t *testing.T, s store.Store) {
	base(t, s)
	seg := func(id, typ, physnet string, segID int) *model.Network {
		n := network(id, "p1")
		n.NetworkType, n.PhysicalNetwork, n.SegmentationID = typ, physnet, segID
		return n
	}
	createIn := func(n *model.Network, pool []segment.Range) func(tx store.Tx) error {
		return func(tx store.Tx) error { return tx.CreateNetwork(ctx, n, pool) }
	}
	pool := []segment.Range{{Min: 100, Max: 100}, {Min: 200, Max: 201}}
	var got []int
	for i := range 3 {
		n := seg(fmt.Sprint("vlan", i), segment.VLAN, "physnet1", 0)
		write(t, s, createIn(n, pool))
		got = append(got, n.SegmentationID)
		checkGetList(t, s, n, n.ID, store.Tx.GetNetwork, listNetworks)
	}
	slices.Sort(got)
	if !slices.Equal(got, []int{100, 200, 201}) {
		t.Errorf("VLAN ids from %v: %v", pool, got)
	}
	writeErr(t, s, store.ErrExhausted, createIn(seg("vlan-more", segment.VLAN, "physnet1", 0), pool))
	writeErr(t, s, store.ErrDuplicate, createIn(seg("vlan-taken", segment.VLAN, "physnet1", 200), nil))
	other := seg("vlan-other", segment.VLAN, "physnet2", 200)
	write(t, s, createIn(other, nil))
	if other.SegmentationID != 200 {
		t.Errorf("VLAN 200 on physnet2: got %d", other.SegmentationID)
	}
	write(t, s, createIn(seg("flat1", segment.Flat, "physnet1", 0), nil))
	writeErr(t, s, store.ErrDuplicate, createIn(seg("flat1-again", segment.Flat, "physnet1", 0), nil))
	write(t, s, createIn(seg("flat2", segment.Flat, "physnet2", 0), nil))
	for _, id := range []string{"local1", "local2"} {
		n := seg(id, segment.Local, "", 0)
		write(t, s, createIn(n, nil))
		if n.SegmentationID != 0 {
			t.Errorf("local network %s got segmentation id %d", id, n.SegmentationID)
		}
		checkGetList(t, s, n, n.ID, store.Tx.GetNetwork, listNetworks)
	}
	x := seg("vx", segment.VXLAN, "", 0)
	write(t, s, createIn(x, []segment.Range{{Min: 700000, Max: 700001}}))
	if x.SegmentationID < 700000 || x.SegmentationID > 700001 {
		t.Errorf("VNI from 700000:700001: %d", x.SegmentationID)
	}
	// Deleting frees the id for the next allocation.
	write(t, s, func(tx store.Tx) error { return tx.DeleteNetwork(ctx, "vlan1") })
	again := seg("vlan-again", segment.VLAN, "physnet1", 0)
	write(t, s, createIn(again, pool))
	if !slices.Contains([]int{100, 200, 201}, again.SegmentationID) {
		t.Errorf("after a deletion: VLAN %d", again.SegmentationID)
	}

	// A multi-segment network: each segment's id from its own pool; a
	// segment another network has is a SegmentError naming it, and nothing
	// of the refused network stays; deleting frees every segment.
	m := seg("multi", segment.VLAN, "physnet2", 0)
	m.Segments = []model.Segment{{}, {NetworkType: segment.VXLAN}, {NetworkType: segment.Flat, PhysicalNetwork: "physnet3"}}
	write(t, s, func(tx store.Tx) error {
		return tx.CreateNetwork(ctx, m, []segment.Range{{Min: 300, Max: 300}}, []segment.Range{{Min: 800000, Max: 800000}}, nil)
	})
	want := []model.Segment{{NetworkType: segment.VLAN, PhysicalNetwork: "physnet2", SegmentationID: 300},
		{NetworkType: segment.VXLAN, SegmentationID: 800000}, {NetworkType: segment.Flat, PhysicalNetwork: "physnet3"}}
	if !slices.Equal(m.Segments, want) || m.NetworkType != segment.VLAN || m.SegmentationID != 300 {
		t.Errorf("multi-segment network: %s/%s/%d %v, want %v", m.NetworkType, m.PhysicalNetwork, m.SegmentationID, m.Segments, want)
	}
	checkGetList(t, s, m, m.ID, store.Tx.GetNetwork, listNetworks)
	bad := seg("bad", segment.VLAN, "physnet2", 301)
	bad.Segments = []model.Segment{{}, {NetworkType: segment.VXLAN, SegmentationID: 800000}}
	err := s.Write(ctx, createIn(bad, nil))
	var se *store.SegmentError
	if !errors.Is(err, store.ErrDuplicate) || !errors.As(err, &se) || se.Index != 1 {
		t.Errorf("taken second segment: %v, want a SegmentError of segment 1 with ErrDuplicate", err)
	}
	write(t, s, createIn(seg("vlan301", segment.VLAN, "physnet2", 301), nil))
	writeErr(t, s, store.ErrDuplicate, createIn(seg("vx-taken", segment.VXLAN, "", 800000), nil))
	write(t, s, func(tx store.Tx) error { return tx.DeleteNetwork(ctx, "multi") })
	write(t, s, createIn(seg("vx-free", segment.VXLAN, "", 800000), nil))
	write(t, s, createIn(seg("flat3", segment.Flat, "physnet3", 0), nil))
}

// testFloatingIPs: floating IPs round-trip unassociated and associated,
// filter by port, router and network, keep their ports, network and
// router from going, refuse a second floating IP for one fixed IP on the
// same external network, and dissociate by update.
func testFloatingIPs(t *testing.T, s store.Store) {
	base(t, s)
	gw := &model.RouterGateway{NetworkID: "ext"}
	vm := port("vm", "n1", "p1", fixed("s1", "10.0.0.5"), fixed("s1", "10.0.0.6"))
	write(t, s, create(port("fport1", "ext", "", fixed("sext", "203.0.113.50")),
		port("fport2", "ext", "", fixed("sext", "203.0.113.51")), port("fport3", "ext", "", fixed("sext", "203.0.113.52")),
		router("r1", "p1", gw), vm))
	free := floatingIP("f1", "p1", "fport1", "203.0.113.50")
	bound := floatingIP("f2", "p1", "fport2", "203.0.113.51")
	bound.PortID, bound.FixedIPAddress, bound.RouterID, bound.Status = "vm", addr("10.0.0.5"), "r1", model.StatusActive
	write(t, s, create(free, bound))
	checkGetList(t, s, free, "f1", store.Tx.GetFloatingIP, listFloatingIPs)
	checkGetList(t, s, bound, "f2", store.Tx.GetFloatingIP, listFloatingIPs)
	for _, tc := range []struct {
		f    store.FloatingIPFilter
		want []string
	}{
		{store.FloatingIPFilter{PortIDs: []string{"vm"}}, []string{"f2"}},
		{store.FloatingIPFilter{RouterIDs: []string{"r1"}}, []string{"f2"}},
		{store.FloatingIPFilter{FloatingNetworkID: "ext"}, []string{"f1", "f2"}},
		{store.FloatingIPFilter{Scope: store.Scope{ProjectID: "p2"}}, []string{}},
	} {
		read(t, s, func(tx store.Tx) error {
			got, err := ids(tx.ListFloatingIPs(ctx, tc.f))
			if err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("ListFloatingIPs(%+v) = %v, %v; want %v", tc.f, got, err, tc.want)
			}
			return nil
		})
	}
	// One floating IP per fixed IP and external network.
	dup := floatingIP("f3", "p1", "fport3", "203.0.113.52")
	dup.PortID, dup.FixedIPAddress, dup.RouterID = "vm", addr("10.0.0.5"), "r1"
	writeErr(t, s, store.ErrDuplicate, create(dup))
	dup.FixedIPAddress = addr("10.0.0.6")
	write(t, s, create(dup))
	// What it names stays.
	writeErr(t, s, store.ErrReferenced, func(tx store.Tx) error { return tx.DeletePort(ctx, "vm") })
	writeErr(t, s, store.ErrReferenced, func(tx store.Tx) error { return tx.DeletePort(ctx, "fport1") })
	writeErr(t, s, store.ErrReferenced, func(tx store.Tx) error { return tx.DeleteRouter(ctx, "r1") })
	missing := floatingIP("f4", "p1", "nope", "203.0.113.53")
	writeErr(t, s, store.ErrReferenced, create(missing))
	// Dissociated by update, deleted, and gone.
	bound.PortID, bound.FixedIPAddress, bound.RouterID, bound.Status, bound.RevisionNumber = "", netip.Addr{}, "", model.StatusDown, 2
	write(t, s, func(tx store.Tx) error { return tx.UpdateFloatingIP(ctx, bound) })
	checkGetList(t, s, bound, "f2", store.Tx.GetFloatingIP, listFloatingIPs)
	write(t, s, func(tx store.Tx) error { return tx.DeleteFloatingIP(ctx, "f1") })
	writeErr(t, s, store.ErrNotFound, func(tx store.Tx) error { _, err := tx.GetFloatingIP(ctx, "f1"); return err })
	writeErr(t, s, store.ErrNotFound, func(tx store.Tx) error { return tx.DeleteFloatingIP(ctx, "f1") })
	write(t, s, func(tx store.Tx) error { return tx.DeletePort(ctx, "fport1") })
}

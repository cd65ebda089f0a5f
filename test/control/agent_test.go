package control_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/neutrino-net/neutrino/internal/agent"
	"github.com/neutrino-net/neutrino/internal/bus"
	"github.com/neutrino-net/neutrino/internal/store/sqlstore/sqltest"
)

// fakeDataPlane records what the agent asks of its layers; it stands in
// for the kernel in tests of the agent's control loop.
type fakeDataPlane struct {
	mu       sync.Mutex
	applied  map[string]agentv1.Router
	deleted  []string
	swept    [][]string
	ports    []string
	failures map[string]int // router id -> Apply calls that failed
	// blockDown makes Apply of an admin-down router wait until closed;
	// failFirst makes the first two Applies of other gateway-less routers
	// (except those in settled) fail.
	blockDown chan struct{}
	failFirst bool
	settled   []string
	// invalid names routers whose Apply fails terminally; blockNet makes
	// L2's Apply wait until closed while a network of that name is wanted.
	invalid  []string
	blockNet string
	l2Gate   chan struct{}
	nets     []string // networks L2 applied last
	inFlight int      // Apply calls running
	stopped  bool     // the agent's Run returned
	late     int      // calls after Run returned
}

// terminalErr is a fake layer's error for a desired state it cannot realise.
type terminalErr struct{ error }

func (terminalErr) Terminal() bool { return true }

// enter and leave bracket each call, to prove none runs after Run ended.
func (f *fakeDataPlane) enter() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inFlight++
	if f.stopped {
		f.late++
	}
}

func (f *fakeDataPlane) leave() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inFlight--
}

func newFake() *fakeDataPlane {
	return &fakeDataPlane{applied: map[string]agentv1.Router{}, failures: map[string]int{}}
}

func (f *fakeDataPlane) Apply(ctx context.Context, r agentv1.Router) error {
	f.enter()
	defer f.leave()
	f.mu.Lock()
	wait := f.blockDown
	f.mu.Unlock()
	if wait != nil && !r.AdminStateUp {
		select {
		case <-wait:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if slices.Contains(f.invalid, r.ID) {
		f.failures[r.ID]++
		return terminalErr{errors.New("injected: cannot be realised")}
	}
	if f.failFirst && r.AdminStateUp && r.Gateway == nil && !slices.Contains(f.settled, r.ID) && f.failures[r.ID] < 2 {
		f.failures[r.ID]++
		return errors.New("injected failure")
	}
	f.applied[r.ID] = r
	return nil
}

func (f *fakeDataPlane) Delete(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.applied, id)
	f.deleted = append(f.deleted, id)
	return nil
}

func (f *fakeDataPlane) Sweep(_ context.Context, wanted []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.swept = append(f.swept, slices.Clone(wanted))
	return nil
}

type fakeL2 struct{ f *fakeDataPlane }

func (l fakeL2) Apply(ctx context.Context, networks []agentv1.Network, ports []agentv1.Port) error {
	l.f.enter()
	defer l.f.leave()
	l.f.mu.Lock()
	gate, slow := l.f.l2Gate, l.f.blockNet
	l.f.mu.Unlock()
	if gate != nil && slices.ContainsFunc(networks, func(n agentv1.Network) bool { return n.ID == slow }) {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	l.f.mu.Lock()
	defer l.f.mu.Unlock()
	l.f.ports = l.f.ports[:0]
	for _, p := range ports {
		l.f.ports = append(l.f.ports, p.PortID)
	}
	l.f.nets = l.f.nets[:0]
	for _, n := range networks {
		l.f.nets = append(l.f.nets, n.ID)
	}
	return nil
}

func (l fakeL2) NetworkReady(id string) bool {
	l.f.mu.Lock()
	defer l.f.mu.Unlock()
	return slices.Contains(l.f.nets, id)
}

func (l fakeL2) Sweep(context.Context, []agentv1.Network, []agentv1.Port) error { return nil }

func (l fakeL2) PortReady(id string) bool {
	l.f.mu.Lock()
	defer l.f.mu.Unlock()
	return slices.Contains(l.f.ports, id)
}

func (f *fakeDataPlane) has(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.applied[id]
	return ok
}

// TestAgentLoop runs the real agent against the real server over the bus,
// with the kernel replaced by a recording fake.
func TestAgentLoop(t *testing.T) {
	e := newEnv(t, "sqlite")
	sqltest.Require(t, "sqlite")
	ext := e.id("POST", "/v2.0/networks", map[string]any{"network": map[string]any{"name": "public", "router:external": true}}, "network")
	e.id("POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": ext, "ip_version": 4, "cidr": "203.0.113.0/24"}}, "subnet")
	net := e.id("POST", "/v2.0/networks", map[string]any{"network": map[string]any{"name": "a"}}, "network")
	e.id("POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": net, "ip_version": 4, "cidr": "10.0.0.0/24"}}, "subnet")
	existing := e.id("POST", "/v2.0/routers", map[string]any{"router": map[string]any{"name": "before"}}, "router")

	f := newFake()
	slow := make(chan struct{})
	a, err := agent.New(agent.Options{Endpoint: agent.Endpoint{Host: "node-1", BusURL: e.srv.BusURL(),
		Token: bus.AgentToken(secret, "node-1"), UnderlayIP: netip.MustParseAddr("192.0.2.10")}, L2: fakeL2{f}, L3: f, Heartbeat: 100 * time.Millisecond,
		Resync: 300 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
	}()

	// The router that waited for an agent is scheduled and applied; the
	// agent swept once, knowing it wanted that router.
	eventually(t, "existing router applied", func() bool { return f.has(existing) })
	f.mu.Lock()
	if len(f.swept) != 1 {
		t.Fatalf("sweeps = %v", f.swept)
	}
	f.mu.Unlock()

	// A slow router does not hold up another; a failing one is retried.
	f.mu.Lock()
	f.blockDown, f.failFirst, f.settled = slow, true, []string{existing}
	f.mu.Unlock()
	slowID := e.id("POST", "/v2.0/routers", map[string]any{"router": map[string]any{"name": "slow", "admin_state_up": false}}, "router")
	flaky := e.id("POST", "/v2.0/routers", map[string]any{"router": map[string]any{"name": "flaky"}}, "router")
	fast := e.id("POST", "/v2.0/routers", map[string]any{"router": map[string]any{"name": "fast", "external_gateway_info": map[string]any{"network_id": ext}}}, "router")
	eventually(t, "fast router applied while another is stuck", func() bool { return f.has(fast) })
	if f.has(slowID) {
		t.Fatal("slow router applied while blocked")
	}
	eventually(t, "flaky router applied after retries", func() bool { return f.has(flaky) })
	f.mu.Lock()
	if f.failures[flaky] != 2 {
		t.Fatalf("flaky router failed %d times, want 2", f.failures[flaky])
	}
	f.mu.Unlock()
	close(slow)
	eventually(t, "slow router applied once released", func() bool { return f.has(slowID) })

	// The gateway reached the data plane with its address.
	f.mu.Lock()
	gw := f.applied[fast].Gateway
	f.mu.Unlock()
	if gw == nil || len(gw.Addresses) != 1 || !netip.MustParsePrefix("203.0.113.0/24").Contains(gw.Addresses[0].Addr()) {
		t.Fatalf("gateway = %+v", gw)
	}

	// The router's ports are bound to the agent's host and ACTIVE.
	var gwPorts struct{ Ports []map[string]any }
	eventually(t, "router ports ACTIVE", func() bool {
		e.call("GET", "/v2.0/ports?device_id="+fast, nil, 200, &gwPorts)
		return len(gwPorts.Ports) == 1 && gwPorts.Ports[0]["status"] == "ACTIVE"
	})
	if p := gwPorts.Ports[0]; p["binding:host_id"] != "node-1" || p["binding:vif_type"] != "bridge" {
		t.Fatalf("gateway port = %v", p)
	}

	// A plugged port is wired and reported ACTIVE.
	port := e.id("POST", "/v2.0/ports", map[string]any{"port": map[string]any{"network_id": net, "binding:host_id": "node-1",
		"binding:profile": map[string]any{"netns": "vm"}}}, "port")
	var p struct{ Port map[string]any }
	eventually(t, "port ACTIVE", func() bool {
		e.call("GET", "/v2.0/ports/"+port, nil, 200, &p)
		return p.Port["status"] == "ACTIVE"
	})

	// Deleting a router removes it from the data plane.
	e.call("DELETE", "/v2.0/routers/"+flaky, nil, 204, nil)
	eventually(t, "router deleted", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return slices.Contains(f.deleted, flaky)
	})
	var agents agentList
	e.call("GET", "/v2.0/agents", nil, 200, &agents)
	if len(agents.Agents) != 1 || !agents.Agents[0].Alive || agents.Agents[0].Configurations["routers"] == nil {
		t.Fatalf("agents = %+v", agents)
	}

	// Losing the bus keeps the data plane as it is; when the bus returns
	// the agent resyncs and catches up with what changed meanwhile.
	addr := strings.TrimPrefix(e.srv.BusURL(), "nats://")
	e.srv.Bus().Shutdown()
	time.Sleep(700 * time.Millisecond) // several resync periods without a server
	f.mu.Lock()
	deletedDuringOutage := len(f.deleted)
	f.mu.Unlock()
	if deletedDuringOutage != 1 || !f.has(fast) || !f.has(slowID) {
		t.Fatalf("the data plane changed while the bus was down: deleted %v", f.deleted)
	}
	late := e.id("POST", "/v2.0/routers", map[string]any{"router": map[string]any{"name": "late"}}, "router")
	e.srv.StartBus(addr)
	eventually(t, "router created during the outage applied after reconnect", func() bool { return f.has(late) })
}

// TestAgentLifecycle: a router whose desired state cannot be realised is
// not retried until that state changes; a slow network delays only the
// routers plugged into it; and Run returns only once nothing of the agent
// runs any more.
func TestAgentLifecycle(t *testing.T) {
	e := newEnv(t, "sqlite")
	sqltest.Require(t, "sqlite")
	netA := e.id("POST", "/v2.0/networks", map[string]any{"network": map[string]any{"name": "a"}}, "network")
	subA := e.id("POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": netA, "ip_version": 4, "cidr": "10.0.0.0/24"}}, "subnet")
	netSlow := e.id("POST", "/v2.0/networks", map[string]any{"network": map[string]any{"name": "slow"}}, "network")
	subSlow := e.id("POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": netSlow, "ip_version": 4, "cidr": "10.1.0.0/24"}}, "subnet")

	f := newFake()
	a, err := agent.New(agent.Options{Endpoint: agent.Endpoint{Host: "node-1", BusURL: e.srv.BusURL(),
		Token: bus.AgentToken(secret, "node-1"), UnderlayIP: netip.MustParseAddr("192.0.2.10")}, L2: fakeL2{f}, L3: f, Heartbeat: 100 * time.Millisecond,
		Resync: 200 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer cancel()

	// Terminal: one attempt, none while the desired state stays the same.
	bad := e.id("POST", "/v2.0/routers", map[string]any{"router": map[string]any{"name": "bad", "admin_state_up": false}}, "router")
	eventually(t, "admin-down router applied", func() bool { return f.has(bad) })
	f.mu.Lock()
	f.invalid = []string{bad}
	f.mu.Unlock()
	e.call("PUT", "/v2.0/routers/"+bad, map[string]any{"router": map[string]any{"admin_state_up": true}}, 200, nil)
	attempts := func() int { f.mu.Lock(); defer f.mu.Unlock(); return f.failures[bad] }
	eventually(t, "terminal failure", func() bool { return attempts() == 1 })
	time.Sleep(2 * time.Second) // 0.5 s and 1 s retries would have run, and resyncs every 0.2 s
	if n := attempts(); n != 1 {
		t.Fatalf("a terminal failure was retried: %d attempts", n)
	}
	e.call("PUT", "/v2.0/routers/"+bad, map[string]any{"router": map[string]any{"admin_state_up": false}}, 200, nil)
	eventually(t, "a new desired state is tried", func() bool { return attempts() == 2 })

	// A slow network holds only the router plugged into it; that router
	// waits for it instead of failing. Routers on networks in place go on.
	onA := e.id("POST", "/v2.0/routers", map[string]any{"router": map[string]any{"name": "on-a"}}, "router")
	e.call("PUT", "/v2.0/routers/"+onA+"/add_router_interface", map[string]any{"subnet_id": subA}, 200, nil)
	eventually(t, "router on network a applied", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.applied[onA].Interfaces) == 1
	})
	gate := make(chan struct{})
	f.mu.Lock()
	f.l2Gate, f.blockNet = gate, netSlow
	f.mu.Unlock()
	onSlow := e.id("POST", "/v2.0/routers", map[string]any{"router": map[string]any{"name": "on-slow"}}, "router")
	e.call("PUT", "/v2.0/routers/"+onSlow+"/add_router_interface", map[string]any{"subnet_id": subSlow}, 200, nil)
	subA2 := e.id("POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": netA, "ip_version": 4, "cidr": "10.2.0.0/24"}}, "subnet")
	onA2 := e.id("POST", "/v2.0/routers", map[string]any{"router": map[string]any{"name": "on-a2"}}, "router")
	e.call("PUT", "/v2.0/routers/"+onA2+"/add_router_interface", map[string]any{"subnet_id": subA2}, 200, nil)
	eventually(t, "a router on a network in place goes on while another network is slow", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.applied[onA2].Interfaces) == 1
	})
	f.mu.Lock()
	slowApplied, slowFailed := len(f.applied[onSlow].Interfaces), f.failures[onSlow]
	f.mu.Unlock()
	if slowApplied != 0 || slowFailed != 0 {
		t.Fatalf("the router on the slow network: applied with %d interfaces, %d failures; want it waiting", slowApplied, slowFailed)
	}
	close(gate)
	eventually(t, "router on the slow network applied once its bridge is", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.applied[onSlow].Interfaces) == 1
	})

	// Shutdown is joined: a worker stuck in Apply ends with Run.
	block := make(chan struct{})
	defer close(block)
	f.mu.Lock()
	f.blockDown = block
	f.mu.Unlock()
	e.call("PUT", "/v2.0/routers/"+onA, map[string]any{"router": map[string]any{"admin_state_up": false}}, 200, nil)
	eventually(t, "a worker is inside Apply", func() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.inFlight > 0 })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("agent: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	f.mu.Lock()
	inFlight := f.inFlight
	f.stopped = true
	f.mu.Unlock()
	if inFlight != 0 {
		t.Fatalf("%d layer calls still running after Run returned", inFlight)
	}
	time.Sleep(700 * time.Millisecond) // a leftover worker's backoff would fire
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.late != 0 {
		t.Fatalf("%d layer calls after Run returned", f.late)
	}
}

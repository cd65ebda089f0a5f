package control_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/neutrino-net/neutrino/internal/auth"
	"github.com/neutrino-net/neutrino/internal/httpapi"
	"github.com/neutrino-net/neutrino/internal/service"
	"github.com/neutrino-net/neutrino/internal/store/sqlstore"
	"github.com/neutrino-net/neutrino/internal/store/sqlstore/sqltest"
	"github.com/neutrino-net/neutrino/internal/testenv"
)

// hostsOf returns the hosts GET /v2.0/routers/{id}/l3-agents shows.
func (e *env) hostsOf(router string) []string {
	e.t.Helper()
	var l3 agentList
	e.call("GET", "/v2.0/routers/"+router+"/l3-agents", nil, 200, &l3)
	var out []string
	for _, a := range l3.Agents {
		out = append(out, a.Host)
	}
	return out
}

// agentID returns the id of host's agent.
func (e *env) agentID(host string) string {
	e.t.Helper()
	var list agentList
	e.call("GET", "/v2.0/agents?host="+host, nil, 200, &list)
	if len(list.Agents) != 1 {
		e.t.Fatalf("agents on %s = %+v", host, list.Agents)
	}
	return list.Agents[0].ID
}

func stateRouters(st agentv1.HostState) []string {
	var out []string
	for _, r := range st.Routers {
		out = append(out, r.ID)
	}
	return out
}

func peersOf(st agentv1.HostState, network string) []string {
	for _, n := range st.Networks {
		if n.ID == network {
			var out []string
			for _, p := range n.Peers {
				out = append(out, p.String())
			}
			return out
		}
	}
	return nil
}

// TestFailover: host-a's agent stops heartbeating; within agent_down_time
// plus one check its routers are on the alive agents (spread by load), in
// their desired states and /l3-agents, the new hosts were hinted, another
// host's VXLAN peers follow, and host-a, back, gets a state without them
// while its stale report of them changes nothing.
func TestFailover(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, dialect string) {
		logs := &testenv.LogBuffer{}
		e := newEnv(t, dialect, withService(func(o *service.Options) {
			o.Logger = slog.New(slog.NewTextHandler(logs, nil))
		}))
		ctx, cancel := context.WithCancel(context.Background())
		failover := make(chan struct{})
		go func() { defer close(failover); e.svc.RunFailover(ctx, 0) }()
		t.Cleanup(func() { cancel(); <-failover })

		ext := e.id("POST", "/v2.0/networks", map[string]any{"network": map[string]any{"name": "public", "router:external": true}}, "network")
		e.id("POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": ext, "ip_version": 4, "cidr": "203.0.113.0/24"}}, "subnet")
		net := e.id("POST", "/v2.0/networks", map[string]any{"network": map[string]any{"name": "a"}}, "network")
		sub := e.id("POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": net, "ip_version": 4, "cidr": "10.0.0.0/24"}}, "subnet")

		// Agents keep beating until told to stop.
		var beatMu sync.Mutex
		beating := map[*fakeAgent]string{}
		beatCtx, stopBeats := context.WithCancel(context.Background())
		beats := make(chan struct{})
		go func() {
			defer close(beats)
			tick := time.NewTicker(200 * time.Millisecond)
			defer tick.Stop()
			for {
				beatMu.Lock()
				for a, underlay := range beating {
					data, _ := json.Marshal(agentv1.Heartbeat{Host: a.host, StartedAt: time.Now(), UnderlayIP: netip.MustParseAddr(underlay)})
					_ = a.nc.Publish(agentv1.HeartbeatSubject(a.host), data)
				}
				beatMu.Unlock()
				select {
				case <-beatCtx.Done():
					return
				case <-tick.C:
				}
			}
		}()
		t.Cleanup(func() { stopBeats(); <-beats })
		agent := func(host, underlay string) *fakeAgent {
			a := e.agent(host, underlay)
			beatMu.Lock()
			beating[a] = underlay
			beatMu.Unlock()
			return a
		}

		// host-a alone: it gets both routers.
		hA := agent("host-a", "192.0.2.1")
		eventually(t, "host-a registered", func() bool {
			var list agentList
			e.call("GET", "/v2.0/agents", nil, 200, &list)
			return len(list.Agents) == 1
		})
		r1 := e.id("POST", "/v2.0/routers", map[string]any{"router": map[string]any{"name": "r1", "external_gateway_info": map[string]any{"network_id": ext}}}, "router")
		e.call("PUT", "/v2.0/routers/"+r1+"/add_router_interface", map[string]any{"subnet_id": sub}, 200, nil)
		r2 := e.id("POST", "/v2.0/routers", map[string]any{"router": map[string]any{"name": "r2"}}, "router")
		for _, r := range []string{r1, r2} {
			if got := e.hostsOf(r); !slices.Equal(got, []string{"host-a"}) {
				t.Fatalf("router %s on %v, want host-a", r, got)
			}
		}
		// host-a runs r1: its ports are bound there.
		if err := e.svc.ReportStatus(context.Background(), agentv1.StatusReport{Host: "host-a",
			Routers: map[string]agentv1.RouterStatus{r1: {Status: "ACTIVE"}}}); err != nil {
			t.Fatal(err)
		}
		// host-b and host-c join; host-c has a VM port on r1's network, so
		// host-a is its VXLAN peer there.
		hB := agent("host-b", "192.0.2.2")
		hC := agent("host-c", "192.0.2.3")
		eventually(t, "host-b and host-c registered", func() bool {
			var list agentList
			e.call("GET", "/v2.0/agents", nil, 200, &list)
			return len(list.Agents) == 3
		})
		e.id("POST", "/v2.0/ports", map[string]any{"port": map[string]any{"network_id": net, "binding:host_id": "host-c"}}, "port")
		if got := peersOf(hC.state(), net); !slices.Equal(got, []string{"192.0.2.1"}) {
			t.Fatalf("host-c peers before failover = %v", got)
		}
		agentA, agentB := e.agentID("host-a"), e.agentID("host-b")
		for _, r := range []string{r1, r2} {
			if got := e.hostsOf(r); !slices.Equal(got, []string{"host-a"}) {
				t.Fatalf("router %s moved to %v while host-a was alive", r, got)
			}
		}

		// host-a stops beating now.
		beatMu.Lock()
		delete(beating, hA)
		hA.beat("192.0.2.1")
		stopped := time.Now()
		beatMu.Unlock()
		hB.drainHints()
		hC.drainHints()

		// The routers move: r1 to host-b (the older of two empty agents),
		// r2 to host-c (then the less loaded).
		down, period := e.svc.AgentDownTime(), e.svc.FailoverPeriod()
		deadline := stopped.Add(down + period + 2*time.Second)
		for !slices.Equal(e.hostsOf(r1), []string{"host-b"}) || !slices.Equal(e.hostsOf(r2), []string{"host-c"}) {
			if time.Now().After(deadline) {
				t.Fatalf("after %s: r1 on %v, r2 on %v; want host-b and host-c", time.Since(stopped), e.hostsOf(r1), e.hostsOf(r2))
			}
			time.Sleep(20 * time.Millisecond)
		}
		took := time.Since(stopped)
		t.Logf("routers moved %s after host-a's last heartbeat (agent_down_time %s, check every %s)", took.Round(time.Millisecond), down, period)
		if limit := down + period + 500*time.Millisecond; took > limit {
			t.Fatalf("failover took %s, want at most agent_down_time + one check period (%s)", took, limit)
		}
		hB.routerHint(r1)
		hC.routerHint(r2)
		if got := stateRouters(hB.state()); !slices.Equal(got, []string{r1}) {
			t.Fatalf("host-b routers = %v, want [%s]", got, r1)
		}
		if got := stateRouters(hC.state()); !slices.Equal(got, []string{r2}) {
			t.Fatalf("host-c routers = %v, want [%s]", got, r2)
		}
		// host-c's VM reaches its router on host-b now.
		if got := peersOf(hC.state(), net); !slices.Equal(got, []string{"192.0.2.2"}) {
			t.Fatalf("host-c peers after failover = %v", got)
		}
		var routers struct{ Routers []map[string]any }
		e.call("GET", "/v2.0/agents/"+agentA+"/l3-routers", nil, 200, &routers)
		if len(routers.Routers) != 0 {
			t.Fatalf("dead agent still hosts %v", routers.Routers)
		}
		e.call("GET", "/v2.0/agents/"+agentB+"/l3-routers", nil, 200, &routers)
		if len(routers.Routers) != 1 || routers.Routers[0]["id"] != r1 {
			t.Fatalf("host-b's l3-routers = %v", routers.Routers)
		}
		for _, m := range []struct{ router, to string }{{r1, "host-b"}, {r2, "host-c"}} {
			want := fmt.Sprintf("router=%s from_host=host-a to_host=%s", m.router, m.to)
			if !strings.Contains(logs.String(), want) {
				t.Fatalf("no log line with %q in:\n%s", want, logs.String())
			}
		}

		// host-b runs r1: its ports follow.
		if err := e.svc.ReportStatus(context.Background(), agentv1.StatusReport{Host: "host-b",
			Routers: map[string]agentv1.RouterStatus{r1: {Status: "ACTIVE"}}}); err != nil {
			t.Fatal(err)
		}
		wantPortsOn := func(host string) {
			t.Helper()
			var ps struct{ Ports []map[string]any }
			e.call("GET", "/v2.0/ports?device_id="+r1, nil, 200, &ps)
			if len(ps.Ports) != 2 {
				t.Fatalf("r1 ports = %v", ps.Ports)
			}
			for _, p := range ps.Ports {
				if p["binding:host_id"] != host || p["status"] != "ACTIVE" {
					t.Fatalf("r1 port %v: binding:host_id %v status %v, want %s ACTIVE", p["id"], p["binding:host_id"], p["status"], host)
				}
			}
		}
		wantPortsOn("host-b")

		// host-a comes back: it is told to resync, its state has no routers,
		// and its report of r1 (still running while it removes it) is
		// ignored.
		hA.drainHints()
		hA.beat("192.0.2.1")
		hA.waitHint("")
		if got := stateRouters(hA.state()); len(got) != 0 {
			t.Fatalf("host-a routers after coming back = %v", got)
		}
		if err := e.svc.ReportStatus(context.Background(), agentv1.StatusReport{Host: "host-a",
			Routers: map[string]agentv1.RouterStatus{r1: {Status: "DOWN"}}}); err != nil {
			t.Fatal(err)
		}
		wantPortsOn("host-b")
		// Nothing moves back.
		if moves, err := e.svc.RescheduleDead(context.Background()); err != nil || len(moves) != 0 {
			t.Fatalf("RescheduleDead with no dead agent = %v, %v", moves, err)
		}
	})
}

// clock is a settable time for services that share it.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// TestFailoverServersShareStore runs the failover check of two servers
// sharing one database concurrently, over more routers than one batch
// moves: every router ends on exactly one alive agent, moved once, with
// the load spread evenly.
func TestFailoverServersShareStore(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, dialect string) {
		dsn := sqltest.DSN(t, dialect)
		clk := &clock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
		var svcs []*service.Service
		for range 2 {
			db, err := sqlstore.Open(context.Background(), dsn)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			svcs = append(svcs, service.New(db, service.Options{Logger: quiet, AgentDownTime: 2 * time.Second,
				Now: clk.Now, Quotas: map[string]int{"router": -1}}))
		}
		srv := httptest.NewServer(httpapi.New(httpapi.Options{Service: svcs[0], Auth: auth.NoAuth{}, Logger: quiet}))
		t.Cleanup(srv.Close)
		e := &env{t: t, api: srv.URL, svc: svcs[0]}
		ctx := context.Background()
		beat := func(host string) {
			t.Helper()
			if _, err := svcs[0].Heartbeat(ctx, agentv1.Heartbeat{Host: host, StartedAt: clk.Now()}); err != nil {
				t.Fatal(err)
			}
		}

		const n = 120
		beat("host-a")
		var routers []string
		for i := range n {
			routers = append(routers, e.id("POST", "/v2.0/routers", map[string]any{"router": map[string]any{"name": fmt.Sprint("r", i)}}, "router"))
		}
		beat("host-b") // new agents: host-a is alive, nothing moves
		beat("host-c")
		if moves, err := svcs[1].RescheduleDead(ctx); err != nil || len(moves) != 0 {
			t.Fatalf("RescheduleDead with every agent alive = %v, %v", moves, err)
		}
		clk.set(clk.Now().Add(time.Second))
		beat("host-b")
		beat("host-c")
		clk.set(clk.Now().Add(time.Second)) // host-a is dead now
		beat("host-b")
		beat("host-c")

		var mu sync.Mutex
		moved := map[string]int{}
		perHost := map[string]int{}
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for i := range 4 {
			wg.Go(func() {
				moves, err := svcs[i%2].RescheduleDead(ctx)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				defer mu.Unlock()
				for _, m := range moves {
					moved[m.RouterID]++
					perHost[m.ToHost]++
					if m.FromHost != "host-a" {
						errs <- fmt.Errorf("move %+v not from host-a", m)
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		for _, r := range routers {
			if moved[r] != 1 {
				t.Fatalf("router %s moved %d times, want once", r, moved[r])
			}
			hosts := e.hostsOf(r)
			if len(hosts) != 1 || (hosts[0] != "host-b" && hosts[0] != "host-c") {
				t.Fatalf("router %s on %v", r, hosts)
			}
		}
		if perHost["host-b"] != n/2 || perHost["host-c"] != n/2 {
			t.Fatalf("moves per host = %v, want %d each", perHost, n/2)
		}
		for _, svc := range svcs {
			if moves, err := svc.RescheduleDead(ctx); err != nil || len(moves) != 0 {
				t.Fatalf("second check = %v, %v", moves, err)
			}
		}
	})
}

// Package control_test drives the server's agent protocol over a real
// embedded NATS bus with agents played by the test: registration,
// heartbeats, scheduling, hints, desired state and status reports.
package control_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/neutrino-net/neutrino/internal/bus"
	"github.com/neutrino-net/neutrino/internal/httpapi"
	"github.com/neutrino-net/neutrino/internal/servertest"
	"github.com/neutrino-net/neutrino/internal/service"
	"github.com/neutrino-net/neutrino/internal/store/sqlstore/sqltest"
)

var secret = []byte("control-test-secret")

type env struct {
	t   *testing.T
	srv *servertest.Server
	api string
	svc *service.Service
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// tuning adjusts a test server (servertest.Options) before it starts.
type tuning func(*servertest.Options)

// withService and withAPI adjust the service's and the API's options.
func withService(f func(*service.Options)) tuning {
	return func(o *servertest.Options) {
		prev := o.Service
		o.Service = func(so *service.Options) {
			if prev != nil {
				prev(so)
			}
			f(so)
		}
	}
}

func withAPI(f func(*httpapi.Options)) tuning {
	return func(o *servertest.Options) { o.API = f }
}

// newEnv starts a server (service, API, bus and control) with agents
// declared down after 2 s.
func newEnv(t *testing.T, dialect string, tune ...tuning) *env {
	t.Helper()
	o := servertest.Options{Dialect: dialect, Secret: secret, Logger: quiet}
	withService(func(so *service.Options) { so.AgentDownTime = 2 * time.Second })(&o)
	for _, f := range tune {
		f(&o)
	}
	srv := servertest.Start(t, o)
	return &env{t: t, srv: srv, api: srv.URL, svc: srv.Service}
}

// call sends an admin request and decodes the reply into out.
func (e *env) call(method, path string, body any, want int, out any) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		rd = bytes.NewReader(data)
	}
	req, _ := http.NewRequest(method, e.api+path, rd)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		e.t.Fatalf("%s %s = %d %s, want %d", method, path, resp.StatusCode, data, want)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			e.t.Fatalf("%s %s: %v", method, path, err)
		}
	}
}

func (e *env) id(method, path string, body any, key string) string {
	var out map[string]map[string]any
	e.call(method, path, body, 201, &out)
	return out[key]["id"].(string)
}

// fakeAgent is a test double of a Neutrino agent on the bus.
type fakeAgent struct {
	t     *testing.T
	host  string
	nc    *nats.Conn
	hints chan agentv1.Hint
}

func (e *env) agent(host, underlay string) *fakeAgent {
	e.t.Helper()
	nc, err := bus.DialAgent(context.Background(), e.srv.BusURL(), host, bus.AgentToken(secret, host), quiet)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(nc.Close)
	a := &fakeAgent{t: e.t, host: host, nc: nc, hints: make(chan agentv1.Hint, 64)}
	if _, err := nc.Subscribe(agentv1.HintSubject(host), func(m *nats.Msg) {
		var h agentv1.Hint
		json.Unmarshal(m.Data, &h)
		a.hints <- h
	}); err != nil {
		e.t.Fatal(err)
	}
	nc.Flush()
	a.beat(underlay)
	return a
}

func (a *fakeAgent) publish(subject string, v any) {
	a.t.Helper()
	data, _ := json.Marshal(v)
	if err := a.nc.Publish(subject, data); err != nil {
		a.t.Fatal(err)
	}
	a.nc.Flush()
}

func (a *fakeAgent) beat(underlay string) {
	a.publish(agentv1.HeartbeatSubject(a.host), agentv1.Heartbeat{Host: a.host, StartedAt: time.Now(),
		UnderlayIP: netip.MustParseAddr(underlay), Configurations: map[string]any{"routers": 0}})
}

func (a *fakeAgent) state() agentv1.HostState {
	a.t.Helper()
	data, _ := json.Marshal(agentv1.SyncRequest{Host: a.host})
	m, err := a.nc.Request(agentv1.SyncSubject(a.host), data, 5*time.Second)
	if err != nil {
		a.t.Fatal(err)
	}
	var st agentv1.HostState
	if err := json.Unmarshal(m.Data, &st); err != nil {
		a.t.Fatal(err)
	}
	return st
}

// waitHint waits for a hint that names router (or any full hint).
func (a *fakeAgent) waitHint(router string) {
	a.t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case h := <-a.hints:
			if h.Full || slices.Contains(h.RouterIDs, router) {
				return
			}
		case <-timeout:
			a.t.Fatalf("%s: no hint for router %s", a.host, router)
		}
	}
}

// eventually polls cond for up to five seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

type agentList struct {
	Agents []struct {
		ID, Host           string
		AgentType          string `json:"agent_type"`
		Alive              bool
		HeartbeatTimestamp string `json:"heartbeat_timestamp"`
		Configurations     map[string]any
	}
}

func TestAgentProtocol(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, dialect string) {
		e := newEnv(t, dialect)
		// Topology: external network, tenant network, router with both.
		ext := e.id("POST", "/v2.0/networks", map[string]any{"network": map[string]any{"name": "public", "router:external": true}}, "network")
		e.id("POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": ext, "ip_version": 4, "cidr": "203.0.113.0/24"}}, "subnet")
		net := e.id("POST", "/v2.0/networks", map[string]any{"network": map[string]any{"name": "a"}}, "network")
		sub := e.id("POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": net, "ip_version": 4, "cidr": "10.0.0.0/24"}}, "subnet")

		// Before any agent, routers are unscheduled.
		r0 := e.id("POST", "/v2.0/routers", map[string]any{"router": map[string]any{"name": "r0", "external_gateway_info": map[string]any{"network_id": ext}}}, "router")
		var l3 agentList
		e.call("GET", "/v2.0/routers/"+r0+"/l3-agents", nil, 200, &l3)
		if len(l3.Agents) != 0 {
			t.Fatalf("router scheduled without agents: %+v", l3)
		}

		// The first agent registers and gets the waiting router.
		h1 := e.agent("host-1", "192.0.2.1")
		var list agentList
		eventually(t, "host-1 registered", func() bool {
			e.call("GET", "/v2.0/agents", nil, 200, &list)
			return len(list.Agents) == 1 && list.Agents[0].Alive
		})
		if a := list.Agents[0]; a.Host != "host-1" || a.AgentType != "L3 agent" || a.Configurations["routers"] != float64(0) {
			t.Fatalf("agent = %+v", a)
		}
		h1.waitHint(r0)
		e.call("GET", "/v2.0/routers/"+r0+"/l3-agents", nil, 200, &l3)
		if len(l3.Agents) != 1 || l3.Agents[0].Host != "host-1" {
			t.Fatalf("l3-agents = %+v", l3)
		}

		// A second agent: the next router goes to the least loaded one.
		h2 := e.agent("host-2", "192.0.2.2")
		eventually(t, "host-2 registered", func() bool {
			e.call("GET", "/v2.0/agents", nil, 200, &list)
			return len(list.Agents) == 2
		})
		r1 := e.id("POST", "/v2.0/routers", map[string]any{"router": map[string]any{"name": "r1", "external_gateway_info": map[string]any{"network_id": ext}}}, "router")
		h2.waitHint(r1)
		e.call("PUT", "/v2.0/routers/"+r1+"/add_router_interface", map[string]any{"subnet_id": sub}, 200, nil)

		// host-2's desired state has the router with its gateway and interface.
		st := h2.state()
		if len(st.Routers) != 1 || st.Routers[0].ID != r1 {
			t.Fatalf("host-2 routers = %+v", st.Routers)
		}
		r := st.Routers[0]
		if r.Gateway == nil || !r.Gateway.SNAT || len(r.Gateway.NextHops) != 1 || r.Gateway.NextHops[0].String() != "203.0.113.1" ||
			len(r.Gateway.Addresses) != 1 || r.Gateway.Addresses[0].Bits() != 24 {
			t.Fatalf("gateway = %+v", r.Gateway)
		}
		if len(r.Interfaces) != 1 || r.Interfaces[0].Addresses[0].String() != "10.0.0.1/24" || r.Interfaces[0].NetworkID != net || r.Interfaces[0].MTU != 1450 {
			t.Fatalf("interfaces = %+v", r.Interfaces)
		}
		var vni uint32
		for _, n := range st.Networks {
			if n.ID == net {
				vni = n.VNI
			}
		}
		if vni == 0 || len(st.Networks) != 2 {
			t.Fatalf("networks = %+v", st.Networks)
		}

		// A VM port bound to host-1 (neutrino port plug does this) appears in
		// host-1's state; host-2 learns host-1 as a VXLAN peer of the network.
		port := e.id("POST", "/v2.0/ports", map[string]any{"port": map[string]any{"network_id": net,
			"binding:host_id": "host-1", "binding:profile": map[string]any{"netns": "vm1"}}}, "port")
		h1.waitHint("")
		st1 := h1.state()
		if len(st1.Ports) != 1 || st1.Ports[0].PortID != port || st1.Ports[0].Netns != "vm1" || !st1.Ports[0].PortSecurity ||
			len(st1.Ports[0].Gateways) != 1 || st1.Ports[0].Gateways[0].String() != "10.0.0.1" {
			t.Fatalf("host-1 ports = %+v", st1.Ports)
		}
		// Peers are the alive agents: both beat (the down time is short,
		// and a loaded machine may take longer than it since the last beat).
		peers := func(st agentv1.HostState) []string { return peersOf(st, net) }
		eventually(t, "host-2 learns host-1 as a VXLAN peer and host-1 host-2", func() bool {
			h1.beat("192.0.2.1")
			h2.beat("192.0.2.2")
			return slices.Equal(peers(h2.state()), []string{"192.0.2.1"}) && slices.Equal(peers(h1.state()), []string{"192.0.2.2"})
		})

		// The agent reports the port wired: it becomes ACTIVE; a report from
		// another host for it changes nothing.
		h2.publish(agentv1.StatusSubject("host-2"), agentv1.StatusReport{Ports: map[string]string{port: "DOWN"}})
		h1.publish(agentv1.StatusSubject("host-1"), agentv1.StatusReport{Ports: map[string]string{port: "ACTIVE"}})
		var p struct{ Port map[string]any }
		eventually(t, "port ACTIVE", func() bool {
			e.call("GET", "/v2.0/ports/"+port, nil, 200, &p)
			return p.Port["status"] == "ACTIVE"
		})
		if p.Port["binding:vif_type"] != "bridge" {
			t.Fatalf("port = %+v", p.Port)
		}

		// host-1 stops heartbeating: it is shown dead, then alive again once
		// it beats.
		eventually(t, "host-1 dead", func() bool {
			h2.beat("192.0.2.2")
			e.call("GET", "/v2.0/agents", nil, 200, &list)
			for _, a := range list.Agents {
				if a.Host == "host-1" {
					return !a.Alive
				}
			}
			return false
		})
		h1.beat("192.0.2.1")
		eventually(t, "host-1 alive again", func() bool {
			e.call("GET", "/v2.0/agents", nil, 200, &list)
			for _, a := range list.Agents {
				if a.Host == "host-1" {
					return a.Alive
				}
			}
			return false
		})
	})
}

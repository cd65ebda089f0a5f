package control_test

import (
	"context"
	"crypto/tls"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/neutrino-net/neutrino/internal/agent"
	"github.com/neutrino-net/neutrino/internal/bus"
	"github.com/neutrino-net/neutrino/internal/bus/bustest"
	"github.com/neutrino-net/neutrino/internal/servertest"
	"github.com/neutrino-net/neutrino/internal/store/sqlstore"
	"github.com/neutrino-net/neutrino/internal/store/sqlstore/sqltest"
)

// secureEnv is an env whose bus takes TLS only and checks agents' tokens
// against the database's token generations, as the server runs it.
type secureEnv struct {
	*env
	db     *sqlstore.DB
	agents *tls.Config // verifies the bus with the test CA
}

func newSecureEnv(t *testing.T, dialect string) *secureEnv {
	t.Helper()
	files := bustest.NewTLS(t)
	serverTLS, err := bus.ServerTLS(files.Cert, files.Key)
	if err != nil {
		t.Fatal(err)
	}
	agentTLS, err := bus.ClientTLS(files.CA)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, dialect, func(o *servertest.Options) { o.BusTLS, o.TokenGenerations = serverTLS, true })
	return &secureEnv{env: e, db: e.srv.DB, agents: agentTLS}
}

// dial connects host's fake agent with token over TLS, counting the
// connection's losses, and registers it with a heartbeat.
func (e *secureEnv) dial(host, token string) (*fakeAgent, *atomic.Int32) {
	e.t.Helper()
	var drops atomic.Int32
	nc, err := bus.DialAgent(context.Background(), e.srv.BusURL(), host, token, quiet, nats.Secure(e.agents),
		nats.RetryOnFailedConnect(false), nats.DisconnectErrHandler(func(*nats.Conn, error) { drops.Add(1) }))
	if err != nil {
		e.t.Fatalf("%s: %v", host, err)
	}
	e.t.Cleanup(nc.Close)
	a := &fakeAgent{t: e.t, host: host, nc: nc, hints: make(chan agentv1.Hint, 64)}
	a.beat("192.0.2.1")
	return a, &drops
}

// TestAgentOverTLS: the real agent, trusting the bus's CA, connects over
// TLS, registers, and builds the router the server schedules to it; the
// bus refuses it without the CA.
func TestAgentOverTLS(t *testing.T) {
	sqltest.Require(t, "sqlite")
	e := newSecureEnv(t, "sqlite")
	router := e.id("POST", "/v2.0/routers", map[string]any{"router": map[string]any{"name": "r"}}, "router")
	run := func(tlsCfg *tls.Config) (*fakeDataPlane, func()) {
		f := newFake()
		a, err := agent.New(agent.Options{Endpoint: agent.Endpoint{Host: "node-1", BusURL: e.srv.BusURL(),
			Token: bus.AgentToken(secret, "node-1"), BusTLS: tlsCfg, UnderlayIP: netip.MustParseAddr("192.0.2.10")}, L2: fakeL2{f}, L3: f,
			Heartbeat: 100 * time.Millisecond, Resync: 300 * time.Millisecond, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		return f, func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("agent: %v", err)
			}
		}
	}

	// Without the CA (the system's CAs do not know it) the agent keeps
	// retrying and never registers.
	_, stop := run(nil)
	time.Sleep(500 * time.Millisecond)
	stop()
	var list agentList
	e.call("GET", "/v2.0/agents", nil, 200, &list)
	if len(list.Agents) != 0 {
		t.Fatalf("an agent that cannot verify the bus registered: %+v", list)
	}

	f, stop := run(e.agents)
	defer stop()
	eventually(t, "the router applied over TLS", func() bool { return f.has(router) })
	e.call("GET", "/v2.0/agents", nil, 200, &list)
	if len(list.Agents) != 1 || list.Agents[0].Host != "node-1" || !list.Agents[0].Alive {
		t.Fatalf("agents = %+v", list)
	}
}

// TestAgentTokenRotation: rotating one host's token in the database, with
// the server running, refuses the old token, closes the connection made
// with it within a short time and accepts the new one; another host's
// agent stays connected and served throughout.
func TestAgentTokenRotation(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, dialect string) {
		e := newSecureEnv(t, dialect)
		h1, h1Drops := e.dial("host-1", bus.AgentToken(secret, "host-1"))
		h2, h2Drops := e.dial("host-2", bus.AgentToken(secret, "host-2"))
		var list agentList
		eventually(t, "both agents registered", func() bool {
			e.call("GET", "/v2.0/agents", nil, 200, &list)
			return len(list.Agents) == 2
		})

		gen, err := e.db.RotateAgentToken(context.Background(), "host-1")
		if err != nil || gen != 1 {
			t.Fatalf("rotate: %d, %v", gen, err)
		}
		rotated := time.Now()
		eventually(t, "the old token's connection closed", func() bool { return h1Drops.Load() > 0 })
		if took := time.Since(rotated); took > 2*time.Second {
			t.Errorf("the old token's connection was closed after %s", took)
		}
		if h1.nc.IsConnected() {
			t.Fatal("the old token reconnected")
		}
		if nc, err := bus.DialAgent(context.Background(), e.srv.BusURL(), "host-1", bus.AgentToken(secret, "host-1"), quiet,
			nats.Secure(e.agents), nats.RetryOnFailedConnect(false)); err == nil {
			nc.Close()
			t.Fatal("the old token connected after the rotation")
		}

		fresh, freshDrops := e.dial("host-1", bus.AgentTokenAt(secret, "host-1", gen))
		if st := fresh.state(); st.Host != "host-1" || st.Error != "" {
			t.Fatalf("host-1's state with the new token = %+v", st)
		}
		time.Sleep(500 * time.Millisecond) // several revocation checks
		if st := h2.state(); st.Host != "host-2" || st.Error != "" {
			t.Fatalf("host-2's state = %+v", st)
		}
		if n := h2Drops.Load(); n != 0 || !h2.nc.IsConnected() {
			t.Fatalf("host-2 lost the bus %d times during host-1's rotation", n)
		}
		if n := freshDrops.Load(); n != 0 || !fresh.nc.IsConnected() {
			t.Fatalf("the new token's connection was lost %d times", n)
		}
	})
}

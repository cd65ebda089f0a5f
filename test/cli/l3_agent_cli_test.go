package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/neutrino-net/neutrino/internal/bus"
)

// fakeL3Agent registers an L3 agent for host on srv's bus and keeps it
// alive until the test ends.
func fakeL3Agent(t *testing.T, srv *server, host string) {
	t.Helper()
	var busURL string
	for deadline := time.Now().Add(10 * time.Second); busURL == ""; time.Sleep(50 * time.Millisecond) {
		if m := regexp.MustCompile(`bus=(nats://\S+)`).FindStringSubmatch(readTail(srv.log)); m != nil {
			busURL = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("no bus URL in the server's log:\n%s", readTail(srv.log))
		}
	}
	secret, err := os.ReadFile(filepath.Join(srv.data, "bus.secret"))
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	nc, err := bus.DialAgent(context.Background(), busURL, host, bus.AgentToken(bytes.TrimSpace(secret), host), quiet)
	if err != nil {
		t.Fatal(err)
	}
	beat := func() {
		data, _ := json.Marshal(agentv1.Heartbeat{Host: host, AgentType: agentv1.AgentTypeL3, StartedAt: time.Now(),
			UnderlayIP: netip.MustParseAddr("127.0.0.1")})
		_ = nc.Publish(agentv1.HeartbeatSubject(host), data)
		_ = nc.Flush()
	}
	beat()
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(2 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				beat()
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done; nc.Close() })
}

// TestOpenstackL3AgentCLI: `openstack network agent add router --l3`,
// `network agent remove router --l3`, `router list --agent` and
// `network agent list --router` against the l3_agent_scheduler extension.
func TestOpenstackL3AgentCLI(t *testing.T) {
	t.Parallel()
	c, srv := newCLI(t)
	fakeL3Agent(t, srv, "cli-host")
	var agents []map[string]any
	for deadline := time.Now().Add(10 * time.Second); len(agents) == 0; {
		c.decode(c.run(js("network", "agent", "list", "--agent-type", "l3")...), &agents)
		if len(agents) == 0 && time.Now().After(deadline) {
			t.Fatal("the fake L3 agent never showed in `network agent list`")
		}
	}
	agent := str(t, agents[0], "ID")
	var r map[string]any
	c.decode(c.run(js("router", "create", "cli-r1")...), &r)
	router := str(t, r, "id")

	hosted := func() []string {
		t.Helper()
		var rows []map[string]any
		c.decode(c.run(js("router", "list", "--agent", agent)...), &rows)
		var ids []string
		for _, row := range rows {
			ids = append(ids, str(t, row, "ID"))
		}
		return ids
	}
	// Created with an alive agent: scheduled to it.
	if got := hosted(); len(got) != 1 || got[0] != router {
		t.Fatalf("router list --agent = %v, want [%s]", got, router)
	}
	var hosts []map[string]any
	c.decode(c.run(js("network", "agent", "list", "--router", "cli-r1")...), &hosts)
	if len(hosts) != 1 || hosts[0]["ID"] != agent || hosts[0]["Host"] != "cli-host" {
		t.Fatalf("network agent list --router = %v", hosts)
	}

	c.check(c.run("network", "agent", "remove", "router", "--l3", agent, "cli-r1"))
	if got := hosted(); len(got) != 0 {
		t.Fatalf("router list --agent after remove = %v", got)
	}
	c.check(c.run("network", "agent", "add", "router", "--l3", agent, "cli-r1"))
	if got := hosted(); len(got) != 1 || got[0] != router {
		t.Fatalf("router list --agent after add = %v, want [%s]", got, router)
	}
	// (The CLI does not check DELETE's status, so removing a router the
	// agent does not host "succeeds" there; test/api covers the 409.)
	c.check(c.run("network", "agent", "remove", "router", "--l3", agent, "cli-r1"))
	if got := hosted(); len(got) != 0 {
		t.Fatalf("router list --agent after the second remove = %v", got)
	}
	c.check(c.run("router", "delete", "cli-r1"))
}

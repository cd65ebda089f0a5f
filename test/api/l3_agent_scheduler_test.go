package api_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/agents"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/routers"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/neutrino-net/neutrino/internal/service"
	"github.com/neutrino-net/neutrino/internal/store/sqlstore/sqltest"
)

// hintLog records the service's hints.
type hintLog struct {
	mu    sync.Mutex
	hints []string // "host: r1,r2" or "host: full"
}

func (h *hintLog) record(_ context.Context, host string, m agentv1.Hint) {
	h.mu.Lock()
	defer h.mu.Unlock()
	what := "full"
	if !m.Full {
		what = strings.Join(m.RouterIDs, ",")
	}
	h.hints = append(h.hints, host+": "+what)
}

// take returns the hints so far, sorted, and forgets them.
func (h *hintLog) take() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := slices.Sorted(slices.Values(h.hints))
	h.hints = nil
	return out
}

// TestL3AgentScheduler drives the l3_agent_scheduler extension through
// gophercloud's agents package (ListL3Routers, ScheduleL3Router,
// RemoveL3Router) and raw HTTP: listing, adding, removing, the reference's
// faults, admin only, hints to the hosts involved.
func TestL3AgentScheduler(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, dialect string) {
		var clockMu sync.Mutex
		now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		hints := &hintLog{}
		e := newEnv(t, dialect, func(o *service.Options) {
			o.Now = func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return now }
			o.Hint = hints.record
		})
		beat := func(host, typ string) string {
			t.Helper()
			if _, err := e.svc.Heartbeat(ctx, agentv1.Heartbeat{Host: host, AgentType: typ}); err != nil {
				t.Fatal(err)
			}
			all := must[[]agents.Agent](t)(listAgents(e))
			for _, a := range all {
				if a.Host == host && a.AgentType == typ {
					return a.ID
				}
			}
			t.Fatalf("no %s on %s", typ, host)
			return ""
		}
		// host-dead beats once, a minute before the others.
		dead := beat("host-dead", agentv1.AgentTypeL3)
		clockMu.Lock()
		now = now.Add(time.Minute)
		clockMu.Unlock()
		agentA := beat("host-a", agentv1.AgentTypeL3)
		agentB := beat("host-b", agentv1.AgentTypeL3)
		disabled := beat("host-off", agentv1.AgentTypeL3)
		dhcp := beat("host-dhcp", "DHCP agent")
		must[*agents.Agent](t)(agents.Update(ctx, e.admin, disabled, agents.UpdateOpts{AdminStateUp: ptr(false)}).Extract())

		// Three routers spread over the two alive, enabled L3 agents.
		var rs []string
		for i := range 3 {
			r := must[*routers.Router](t)(routers.Create(ctx, e.a, routers.CreateOpts{Name: fmt.Sprint("r", i)}).Extract())
			rs = append(rs, r.ID)
		}
		r1, r2, r3 := rs[0], rs[1], rs[2]
		hostsOf := func(router string) []string {
			t.Helper()
			r := e.do("GET", "/v2.0/routers/"+router+"/l3-agents", "", nil)
			if r.status != 200 {
				t.Fatalf("l3-agents of %s = %d %s", router, r.status, r.raw)
			}
			var out []string
			for _, a := range r.body["agents"].([]any) {
				out = append(out, a.(map[string]any)["host"].(string))
			}
			return out
		}
		routersOn := func(agent string) []string {
			t.Helper()
			got := must[[]routers.Router](t)(agents.ListL3Routers(ctx, e.admin, agent).Extract())
			out := []string{}
			for _, r := range got {
				out = append(out, r.ID)
			}
			return out
		}
		if got := routersOn(agentA); !slices.Equal(got, []string{r1, r3}) {
			t.Fatalf("host-a routers = %v, want [%s %s]", got, r1, r3)
		}
		if got := routersOn(agentB); !slices.Equal(got, []string{r2}) {
			t.Fatalf("host-b routers = %v, want [%s]", got, r2)
		}
		if got := routersOn(dhcp); len(got) != 0 {
			t.Fatalf("DHCP agent routers = %v", got)
		}

		// The list shows routers as GET /v2.0/routers does, fields included.
		listed := e.do("GET", "/v2.0/agents/"+agentA+"/l3-routers", "", nil)
		shown := e.do("GET", "/v2.0/routers?id="+r1, "", nil)
		if listed.status != 200 || shown.status != 200 {
			t.Fatalf("GET = %d %s / %d %s", listed.status, listed.raw, shown.status, shown.raw)
		}
		if d := cmp.Diff(shown.body["routers"].([]any)[0], listed.body["routers"].([]any)[0]); d != "" {
			t.Fatalf("l3-routers entry differs from GET /v2.0/routers (-routers +l3-routers):\n%s", d)
		}
		if r := e.do("GET", "/v2.0/agents/"+agentA+"/l3-routers?fields=id&fields=name", "", nil); r.status != 200 ||
			!cmp.Equal(r.body["routers"].([]any)[0], map[string]any{"id": r1, "name": "r0"}) {
			t.Fatalf("fields = %d %s", r.status, r.raw)
		}
		hints.take()

		// Remove r1 from host-a: unscheduled, host-a told, others resync.
		must[struct{}](t)(struct{}{}, agents.RemoveL3Router(ctx, e.admin, agentA, r1).ExtractErr())
		if got := hostsOf(r1); len(got) != 0 {
			t.Fatalf("removed router on %v", got)
		}
		if got := routersOn(agentA); !slices.Equal(got, []string{r3}) {
			t.Fatalf("host-a routers after remove = %v", got)
		}
		wantHints := []string{"host-a: " + r1, "host-b: full", "host-dead: full", "host-dhcp: full", "host-off: full"}
		if got := hints.take(); !slices.Equal(got, wantHints) {
			t.Fatalf("hints after remove = %v, want %v", got, wantHints)
		}
		err := agents.RemoveL3Router(ctx, e.admin, agentA, r1).ExtractErr()
		wantFault(t, err, 409, "RouterNotHostedByL3Agent")
		if r := e.do("DELETE", "/v2.0/agents/"+agentA+"/l3-routers/"+r1, "", nil); !strings.Contains(r.raw,
			fmt.Sprintf("The router %s is not hosted by L3 agent %s.", r1, agentA)) {
			t.Fatalf("message = %s", r.raw)
		}

		// Add it to host-b.
		add := e.do("POST", "/v2.0/agents/"+agentB+"/l3-routers", "", map[string]any{"router_id": r1})
		if add.status != 201 || strings.TrimSpace(add.raw) != "null" {
			t.Fatalf("POST l3-routers = %d %q", add.status, add.raw)
		}
		if got := hostsOf(r1); !slices.Equal(got, []string{"host-b"}) {
			t.Fatalf("added router on %v", got)
		}
		if got := routersOn(agentB); !slices.Equal(got, []string{r1, r2}) {
			t.Fatalf("host-b routers after add = %v", got)
		}
		wantHints = []string{"host-a: full", "host-b: " + r1, "host-dead: full", "host-dhcp: full", "host-off: full"}
		if got := hints.take(); !slices.Equal(got, wantHints) {
			t.Fatalf("hints after add = %v, want %v", got, wantHints)
		}
		// Again, through gophercloud: already there, nothing changes.
		must[struct{}](t)(struct{}{}, agents.ScheduleL3Router(ctx, e.admin, agentB, agents.ScheduleL3RouterOpts{RouterID: r1}).ExtractErr())
		if got := hints.take(); len(got) != 0 {
			t.Fatalf("hints after a no-op add = %v", got)
		}
		// Hosted elsewhere: the reference's conflict.
		err = agents.ScheduleL3Router(ctx, e.admin, agentA, agents.ScheduleL3RouterOpts{RouterID: r1}).ExtractErr()
		wantFault(t, err, 409, "RouterHostedByL3Agent")
		if r := e.do("POST", "/v2.0/agents/"+agentA+"/l3-routers", "", map[string]any{"router_id": r1}); !strings.Contains(r.raw,
			fmt.Sprintf("The router %s has been already hosted by the L3 Agent %s.", r1, agentB)) {
			t.Fatalf("message = %s", r.raw)
		}

		// Not an L3 agent, or disabled: InvalidL3Agent (an AgentNotFound in
		// the reference, hence 404).
		for _, bad := range []string{dhcp, disabled} {
			must[struct{}](t)(struct{}{}, agents.RemoveL3Router(ctx, e.admin, agentB, r1).ExtractErr())
			err = agents.ScheduleL3Router(ctx, e.admin, bad, agents.ScheduleL3RouterOpts{RouterID: r1}).ExtractErr()
			wantFault(t, err, 404, "InvalidL3Agent")
			if r := e.do("POST", "/v2.0/agents/"+bad+"/l3-routers", "", map[string]any{"router_id": r1}); !strings.Contains(r.raw,
				fmt.Sprintf("Agent %s is not a L3 Agent or has been disabled", bad)) {
				t.Fatalf("message = %s", r.raw)
			}
			if got := hostsOf(r1); len(got) != 0 {
				t.Fatalf("router on %v after a refused add", got)
			}
			must[struct{}](t)(struct{}{}, agents.ScheduleL3Router(ctx, e.admin, agentB, agents.ScheduleL3RouterOpts{RouterID: r1}).ExtractErr())
		}

		// Unknown agent, unknown router.
		const missing = "00000000-0000-4000-8000-000000000000"
		_, err = agents.ListL3Routers(ctx, e.admin, missing).Extract()
		wantFault(t, err, 404, "AgentNotFound")
		err = agents.ScheduleL3Router(ctx, e.admin, missing, agents.ScheduleL3RouterOpts{RouterID: r1}).ExtractErr()
		wantFault(t, err, 404, "AgentNotFound")
		err = agents.RemoveL3Router(ctx, e.admin, missing, r1).ExtractErr()
		wantFault(t, err, 404, "AgentNotFound")
		err = agents.ScheduleL3Router(ctx, e.admin, agentA, agents.ScheduleL3RouterOpts{RouterID: missing}).ExtractErr()
		wantFault(t, err, 404, "RouterNotFound")
		err = agents.RemoveL3Router(ctx, e.admin, agentA, missing).ExtractErr()
		wantFault(t, err, 404, "RouterNotFound")
		for _, body := range []any{map[string]any{}, map[string]any{"router_id": "r1"}, map[string]any{"router_id": 7}, []any{}} {
			if r := e.do("POST", "/v2.0/agents/"+agentA+"/l3-routers", "", body); r.status != 400 {
				t.Fatalf("POST %v = %d %s", body, r.status, r.raw)
			}
		}
		if r := e.do("PUT", "/v2.0/agents/"+agentA+"/l3-routers", "", map[string]any{"router_id": r1}); r.status != 405 {
			t.Fatalf("PUT l3-routers = %d %s", r.status, r.raw)
		}

		// Non-admins: the agent does not exist for them; nothing changes.
		for _, c := range []struct {
			name string
			err  error
		}{
			{"list", agents.ListL3Routers(ctx, e.a, agentB).Err},
			{"add", agents.ScheduleL3Router(ctx, e.a, agentA, agents.ScheduleL3RouterOpts{RouterID: r3}).ExtractErr()},
			{"remove", agents.RemoveL3Router(ctx, e.a, agentA, r3).ExtractErr()},
		} {
			t.Run("member "+c.name, func(t *testing.T) { wantFault(t, c.err, 404, "AgentNotFound") })
		}
		if got := routersOn(agentA); !slices.Equal(got, []string{r3}) {
			t.Fatalf("host-a routers after members' attempts = %v", got)
		}

		// A dead agent is accepted, as in the reference; failover moves the
		// router off it at its next check.
		must[struct{}](t)(struct{}{}, agents.RemoveL3Router(ctx, e.admin, agentA, r3).ExtractErr())
		must[struct{}](t)(struct{}{}, agents.ScheduleL3Router(ctx, e.admin, dead, agents.ScheduleL3RouterOpts{RouterID: r3}).ExtractErr())
		if got := hostsOf(r3); !slices.Equal(got, []string{"host-dead"}) {
			t.Fatalf("router on %v, want host-dead", got)
		}
		moves := must[[]service.RouterMove](t)(e.svc.RescheduleDead(ctx))
		if len(moves) != 1 || moves[0].RouterID != r3 || moves[0].FromHost != "host-dead" || moves[0].ToHost != "host-a" {
			t.Fatalf("moves = %+v, want %s from host-dead to host-a (the least loaded)", moves, r3)
		}
		if got := routersOn(agentA); !slices.Equal(got, []string{r3}) {
			t.Fatalf("host-a routers after failover = %v", got)
		}

		// The extension is advertised.
		ext, err := extensions.Get(ctx, e.admin, "l3_agent_scheduler").Extract()
		if err != nil {
			t.Fatal(err)
		}
		if ext.Name != "L3 Agent Scheduler" || ext.Description != "Schedule routers among l3 agents" || ext.Updated != "2013-02-07T10:00:00-00:00" {
			t.Fatalf("extension = %+v", ext)
		}
	})
}

func listAgents(e *env) ([]agents.Agent, error) {
	pages, err := agents.List(e.admin, agents.ListOpts{}).AllPages(ctx)
	if err != nil {
		return nil, err
	}
	return agents.ExtractAgents(pages)
}

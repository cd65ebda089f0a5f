package api_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/vpnaas/services"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/vpnaas/siteconnections"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/neutrino-net/neutrino/internal/service"
	"github.com/neutrino-net/neutrino/internal/store/sqlstore/sqltest"
)

// waitConn polls a connection until cond holds, calling settle (if any)
// before each look, and fails after a generous deadline.
func waitConn(t *testing.T, e *env, id string, settle func(), cond func(*siteconnections.Connection) bool) *siteconnections.Connection {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if settle != nil {
			settle()
		}
		c := must[*siteconnections.Connection](t)(siteconnections.Get(ctx, e.a, id).Extract())
		if cond(c) {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("connection %s never reached the wanted state: %+v", id, c)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Without an alive agent on the router nothing will act on a connection:
// it is DOWN with a reason instead of PENDING_CREATE, and IaC tools may
// update it right after creating it.
func TestVPNPendingWithoutAgent(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		tp := newVPNTopo(t, e)
		ike, ipsec := mkIKE(t, e.a, "ike"), mkIPsec(t, e.a, "ipsec", "")
		svc := mkService(t, e.a, "svc", tp.router, tp.sub)
		conn := mkConn(t, e.a, legacyConn("c1", svc.ID, ike, ipsec))
		// Updated at once, as Terraform does after a create.
		upd := must[*siteconnections.Connection](t)(siteconnections.Update(ctx, e.a, conn.ID, siteconnections.UpdateOpts{
			Name: ptr("c1b"), PSK: "n3w", PeerCIDRs: []string{"192.168.20.0/24"}}).Extract())
		if upd.Name != "c1b" || upd.PSK != "n3w" || len(upd.PeerCIDRs) != 1 || upd.PeerCIDRs[0] != "192.168.20.0/24" {
			t.Fatalf("updated connection = %+v", upd)
		}
		wantReason := "no alive L3 agent hosts router " + tp.router
		got := waitConn(t, e, conn.ID, nil, func(c *siteconnections.Connection) bool { return c.Status == "DOWN" })
		raw := item(t, e.do("GET", connPath+"/"+conn.ID, projectA, nil), 200, "ipsec_site_connection")
		if reason, _ := raw["status_reason"].(string); !strings.Contains(reason, wantReason) || got.Name != "c1b" {
			t.Fatalf("connection = %v, want DOWN with a status_reason containing %q", raw, wantReason)
		}
		s := must[*services.Service](t)(services.Update(ctx, e.a, svc.ID, services.UpdateOpts{Description: ptr("changed")}).Extract())
		if s.Description != "changed" || s.Status != "DOWN" {
			t.Fatalf("updated service = %+v", s)
		}
	})
}

// A connection created while an agent hosts its router is PENDING_CREATE
// and may be updated then; when that agent dies before it reports, the
// connection becomes DOWN with a reason.
func TestVPNPendingAgentDies(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, dialect string) {
		e := newEnv(t, dialect, func(o *service.Options) { o.AgentDownTime = 2 * time.Second })
		tp := newVPNTopo(t, e)
		if _, err := e.svc.Heartbeat(ctx, agentv1.Heartbeat{Host: "vpn-agent", AgentType: agentv1.AgentTypeL3}); err != nil {
			t.Fatal(err)
		}
		ike, ipsec := mkIKE(t, e.a, "ike"), mkIPsec(t, e.a, "ipsec", "")
		svc := mkService(t, e.a, "svc", tp.router, tp.sub)
		conn := mkConn(t, e.a, legacyConn("c1", svc.ID, ike, ipsec))
		// Settling leaves a connection alone while its agent lives (the
		// agent was alive a moment ago; it is dead only 2 s after).
		if conn.Status != "PENDING_CREATE" {
			t.Fatalf("created with an alive agent: %+v", conn)
		}
		upd := must[*siteconnections.Connection](t)(siteconnections.Update(ctx, e.a, conn.ID, siteconnections.UpdateOpts{
			MTU: 1400}).Extract())
		if upd.MTU != 1400 || upd.Status != "PENDING_CREATE" {
			t.Fatalf("update while pending = %+v", upd)
		}
		settle := func() {
			if _, err := e.svc.SettleUnhostedVPN(ctx); err != nil {
				t.Fatal(err)
			}
		}
		waitConn(t, e, conn.ID, settle, func(c *siteconnections.Connection) bool { return c.Status == "DOWN" })
		raw := item(t, e.do("GET", connPath+"/"+conn.ID, projectA, nil), 200, "ipsec_site_connection")
		if reason, _ := raw["status_reason"].(string); !strings.Contains(reason, "no alive L3 agent hosts router "+tp.router) || raw["mtu"] != 1400.0 {
			t.Fatalf("connection = %v", raw)
		}
		// The agent comes back and reports: its state replaces DOWN.
		if _, err := e.svc.Heartbeat(ctx, agentv1.Heartbeat{Host: "vpn-agent", AgentType: agentv1.AgentTypeL3}); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.ReportStatus(ctx, agentv1.StatusReport{Host: "vpn-agent", VPNServices: map[string]agentv1.VPNStatus{
			svc.ID: {Status: "ACTIVE", Connections: map[string]agentv1.ConnectionStatus{conn.ID: {Status: "ACTIVE"}}}}}); err != nil {
			t.Fatal(err)
		}
		if c := must[*siteconnections.Connection](t)(siteconnections.Get(ctx, e.a, conn.ID).Extract()); c.Status != "ACTIVE" {
			t.Fatalf("after the agent's report: %+v", c)
		}
	})
}

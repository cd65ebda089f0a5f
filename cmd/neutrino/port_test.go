package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/neutrino-net/neutrino/internal/auth"
	"github.com/neutrino-net/neutrino/internal/httpapi"
	"github.com/neutrino-net/neutrino/internal/identity"
	"github.com/neutrino-net/neutrino/internal/service"
	"github.com/neutrino-net/neutrino/internal/store/sqlstore/sqltest"
)

// TestPortPlug drives `neutrino port plug` and `unplug` against a real API;
// the agent's report is played by the test.
func TestPortPlug(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := service.New(sqltest.Open(t, "sqlite"), service.Options{Logger: quiet})
	srv := httptest.NewServer(httpapi.New(httpapi.Options{Service: svc, Auth: auth.NoAuth{}, Logger: quiet}))
	defer srv.Close()
	post := func(path, body string) string {
		resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		for _, v := range out {
			return v["id"].(string)
		}
		t.Fatalf("POST %s: %d", path, resp.StatusCode)
		return ""
	}
	net := post("/v2.0/networks", `{"network": {"name": "n"}}`)
	post("/v2.0/subnets", `{"subnet": {"network_id": "`+net+`", "ip_version": 4, "cidr": "10.0.0.0/24"}}`)
	port := post("/v2.0/ports", `{"port": {"network_id": "`+net+`"}}`)
	ctx := context.Background()
	var out bytes.Buffer

	// No agent: plug binds the port, then says the agent did not wire it.
	err := portPlug(ctx, []string{port, "--netns", "vm1", "--host", "node-7", "--api", srv.URL, "--wait", "300ms"}, &out, true)
	if err == nil || !strings.Contains(err.Error(), "is the agent of host node-7 running?") {
		t.Fatalf("plug without agent: %v", err)
	}
	p, _ := svc.GetPort(adminCtx(), port)
	if p.BindingHostID != "node-7" || p.BindingProfile["netns"] != "vm1" {
		t.Fatalf("binding = %q %v", p.BindingHostID, p.BindingProfile)
	}
	// The agent reports the port wired while plug waits: plug succeeds.
	go func() {
		time.Sleep(100 * time.Millisecond)
		svc.ReportStatus(ctx, agentv1.StatusReport{Host: "node-7", Ports: map[string]string{port: "ACTIVE"}})
	}()
	out.Reset()
	if err := portPlug(ctx, []string{port, "--netns", "vm1", "--host", "node-7", "--api", srv.URL}, &out, true); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "plugged into namespace vm1 on node-7: ACTIVE") {
		t.Fatalf("output = %q", out.String())
	}
	// Unplug clears the binding; bad usage and API errors are clear.
	if err := portPlug(ctx, []string{port, "--api", srv.URL}, &out, false); err != nil {
		t.Fatal(err)
	}
	p, _ = svc.GetPort(adminCtx(), port)
	if p.BindingHostID != "" || len(p.BindingProfile) != 0 {
		t.Fatalf("after unplug: %q %v", p.BindingHostID, p.BindingProfile)
	}
	if err := portPlug(ctx, []string{port, "--api", srv.URL}, &out, true); err == nil || !strings.Contains(err.Error(), "usage") {
		t.Fatalf("plug without --netns: %v", err)
	}
	err = portPlug(ctx, []string{"00000000-0000-0000-0000-000000000000", "--netns", "x", "--api", srv.URL}, &out, true)
	if err == nil || !strings.Contains(err.Error(), "404 PortNotFound") {
		t.Fatalf("missing port: %v", err)
	}
}

func adminCtx() context.Context {
	return identity.WithIdentity(context.Background(), identity.Identity{ProjectID: "admin", Roles: []string{"admin"}})
}

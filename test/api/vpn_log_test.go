package api_test

import (
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/neutrino-net/neutrino/internal/auth"
	"github.com/neutrino-net/neutrino/internal/httpapi"
	"github.com/neutrino-net/neutrino/internal/service"
	"github.com/neutrino-net/neutrino/internal/store/sqlstore/sqltest"
	"github.com/neutrino-net/neutrino/internal/testenv"
)

// TestPSKNeverLogged creates, updates and fails connections at debug level
// with text and JSON logs and finds the PSK in no log line.
func TestPSKNeverLogged(t *testing.T) {
	const psk = "Pr3shared-Sekr1t"
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			var logs testenv.LogBuffer
			opts := &slog.HandlerOptions{Level: slog.LevelDebug}
			log := slog.New(slog.NewTextHandler(&logs, opts))
			if format == "json" {
				log = slog.New(slog.NewJSONHandler(&logs, opts))
			}
			svc := service.New(sqltest.Open(t, "sqlite"), service.Options{Logger: log})
			srv := httptest.NewServer(httpapi.New(httpapi.Options{Service: svc, Auth: auth.NoAuth{}, Logger: log}))
			defer srv.Close()
			e := &env{t: t, url: srv.URL, svc: svc}
			id := func(r reply, key string) string {
				t.Helper()
				o, ok := r.body[key].(map[string]any)
				if !ok {
					t.Fatalf("%d %s", r.status, r.raw)
				}
				return o["id"].(string)
			}
			ext := id(e.do("POST", "/v2.0/networks", "", map[string]any{"network": map[string]any{"name": "public", "router:external": true}}), "network")
			e.do("POST", "/v2.0/subnets", "", map[string]any{"subnet": map[string]any{"network_id": ext, "ip_version": 4, "cidr": "203.0.113.0/24"}})
			net := id(e.do("POST", "/v2.0/networks", projectA, map[string]any{"network": map[string]any{"name": "n"}}), "network")
			sub := id(e.do("POST", "/v2.0/subnets", projectA, map[string]any{"subnet": map[string]any{"network_id": net, "ip_version": 4, "cidr": "10.0.0.0/24"}}), "subnet")
			rtr := id(e.do("POST", "/v2.0/routers", projectA, map[string]any{"router": map[string]any{"external_gateway_info": map[string]any{"network_id": ext}}}), "router")
			e.do("PUT", "/v2.0/routers/"+rtr+"/add_router_interface", projectA, map[string]any{"subnet_id": sub})
			vpn := id(e.do("POST", "/v2.0/vpn/vpnservices", projectA, map[string]any{"vpnservice": map[string]any{"router_id": rtr, "subnet_id": sub}}), "vpnservice")
			ike := id(e.do("POST", "/v2.0/vpn/ikepolicies", projectA, map[string]any{"ikepolicy": map[string]any{}}), "ikepolicy")
			ipsec := id(e.do("POST", "/v2.0/vpn/ipsecpolicies", projectA, map[string]any{"ipsecpolicy": map[string]any{}}), "ipsecpolicy")
			conn := map[string]any{"vpnservice_id": vpn, "ikepolicy_id": ike, "ipsecpolicy_id": ipsec, "peer_address": "198.51.100.1",
				"peer_id": "198.51.100.1", "psk": psk, "peer_cidrs": []string{"192.168.1.0/24"}}
			r := e.do("POST", "/v2.0/vpn/ipsec-site-connections", projectA, map[string]any{"ipsec_site_connection": conn})
			if r.status != 201 || !strings.Contains(r.raw, psk) {
				t.Fatalf("create = %d %s (the owner gets the PSK back)", r.status, r.raw)
			}
			// Failures carrying the PSK: bad MTU, bad DPD, a PSK too long.
			for _, bad := range []map[string]any{{"mtu": 10}, {"dpd": map[string]any{"interval": 50, "timeout": 40}}, {"psk": psk + strings.Repeat("x", 300)}} {
				body := map[string]any{}
				for k, v := range conn {
					body[k] = v
				}
				for k, v := range bad {
					body[k] = v
				}
				if r := e.do("POST", "/v2.0/vpn/ipsec-site-connections", projectA, map[string]any{"ipsec_site_connection": body}); r.status != 400 || strings.Contains(r.raw, psk) {
					t.Fatalf("bad request %v = %d %s", bad, r.status, r.raw)
				}
			}
			if strings.Contains(logs.String(), psk) {
				t.Fatalf("PSK in the logs:\n%s", logs.String())
			}
			if !strings.Contains(logs.String(), "ipsec site connection created") || !strings.Contains(logs.String(), "***") {
				t.Fatalf("no redacted connection log:\n%s", logs.String())
			}
		})
	}
}

package httpapi_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/neutrino-net/neutrino/internal/auth"
	"github.com/neutrino-net/neutrino/internal/httpapi"
	"github.com/neutrino-net/neutrino/internal/service"
	"github.com/neutrino-net/neutrino/internal/store/sqlstore/sqltest"
)

// FuzzRequest sends arbitrary bodies to every write endpoint of a real API
// over a real store. Whatever the input, the answer is a success or a 4xx
// NeutronError, never a 500 or a panic.
func FuzzRequest(f *testing.F) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := service.New(sqltest.Open(f, "sqlite"), service.Options{Logger: quiet})
	api := httpapi.New(httpapi.Options{Service: svc, Auth: auth.NoAuth{}, Logger: quiet})
	call := func(method, path, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("X-Project-Id", "fuzz")
		w := httptest.NewRecorder()
		api.ServeHTTP(w, req)
		return w
	}
	id := func(w *httptest.ResponseRecorder, key string) string {
		var m map[string]map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
			f.Fatalf("seed: %s", w.Body)
		}
		return m[key]["id"].(string)
	}
	netID := id(call("POST", "/v2.0/networks", `{"network": {"name": "n"}}`), "network")
	subID := id(call("POST", "/v2.0/subnets", `{"subnet": {"network_id": "`+netID+`", "ip_version": 4, "cidr": "10.0.0.0/28"}}`), "subnet")
	rtrID := id(call("POST", "/v2.0/routers", `{"router": {}}`), "router")
	portID := id(call("POST", "/v2.0/ports", `{"port": {"network_id": "`+netID+`"}}`), "port")
	parentID := id(call("POST", "/v2.0/ports", `{"port": {"network_id": "`+netID+`"}}`), "port")
	spID := id(call("POST", "/v2.0/ports", `{"port": {"network_id": "`+netID+`"}}`), "port")
	trunkID := id(call("POST", "/v2.0/trunks", `{"trunk": {"port_id": "`+parentID+`"}}`), "trunk")
	targets := []struct{ method, path string }{
		{"POST", "/v2.0/networks"}, {"PUT", "/v2.0/networks/" + netID},
		{"POST", "/v2.0/subnets"}, {"PUT", "/v2.0/subnets/" + subID},
		{"POST", "/v2.0/ports"}, {"PUT", "/v2.0/ports/" + portID},
		{"POST", "/v2.0/routers"}, {"PUT", "/v2.0/routers/" + rtrID},
		{"PUT", "/v2.0/routers/" + rtrID + "/add_router_interface"},
		{"POST", "/v2.0/security-groups"}, {"POST", "/v2.0/security-group-rules"},
		{"PUT", "/v2.0/quotas/fuzz"}, {"GET", "/v2.0/ports?"},
		{"POST", "/v2.0/vpn/ikepolicies"}, {"POST", "/v2.0/vpn/ipsecpolicies"}, {"POST", "/v2.0/vpn/vpnservices"},
		{"POST", "/v2.0/vpn/endpoint-groups"}, {"POST", "/v2.0/vpn/ipsec-site-connections"}, {"GET", "/v2.0/vpn/ikepolicies?"},
		{"POST", "/v2.0/trunks"}, {"PUT", "/v2.0/trunks/" + trunkID},
		{"PUT", "/v2.0/trunks/" + trunkID + "/add_subports"}, {"PUT", "/v2.0/trunks/" + trunkID + "/remove_subports"},
	}
	seeds := []string{
		`{"network": {"name": "x", "mtu": "1400", "admin_state_up": "true"}}`,
		`{"subnet": {"network_id": "` + netID + `", "ip_version": "4", "cidr": "10.1.0.0/24", "allocation_pools": [{"start": "10.1.0.9", "end": "10.1.0.3"}]}}`,
		`{"subnet": {"network_id": "` + netID + `", "ip_version": 6, "cidr": "2001:db8::/64", "gateway_ip": null, "host_routes": [{"destination": "::/0", "nexthop": "2001:db8::1"}]}}`,
		`{"port": {"network_id": "` + netID + `", "fixed_ips": [{"subnet_id": "` + subID + `", "ip_address": "10.0.0.5"}], "allowed_address_pairs": [{"ip_address": "1.2.3.0/24"}]}}`,
		`{"router": {"external_gateway_info": {"network_id": "` + netID + `", "external_fixed_ips": [{"ip_address": "10.0.0.9"}]}, "routes": [{"destination": "0.0.0.0/0", "nexthop": "10.0.0.1"}]}}`,
		`{"subnet_id": "` + subID + `"}`,
		`{"security_group_rule": {"security_group_id": "x", "direction": "ingress", "protocol": 6, "port_range_min": "22"}}`,
		`{"quota": {"network": "7", "port": -1}}`,
		`sort_key=name&sort_dir=desc&limit=1&marker=x&fixed_ips=ip_address%3D10.0.0.2&page_reverse=1`,
		`{"ikepolicy": {"lifetime": {"units": "seconds", "value": "2000"}, "pfs": "group31", "encryption_algorithm": "aes-256-gcm-16"}}`,
		`{"ipsecpolicy": {"transform_protocol": "ah-esp", "lifetime": null}}`,
		`{"vpnservice": {"router_id": "` + rtrID + `", "subnet_id": "` + subID + `", "admin_state_up": "1"}}`,
		`{"endpoint_group": {"type": "cidr", "endpoints": "10.0.0.0/24"}}`,
		`{"ipsec_site_connection": {"vpnservice_id": "` + rtrID + `", "ikepolicy_id": "` + rtrID + `", "ipsecpolicy_id": "` + rtrID + `", "peer_address": "x.invalid", "peer_id": "p", "psk": "k", "dpd": {"timeout": "9"}, "peer_cidrs": "1.2.3.0/24", "mtu": "1280"}}`,
		`sort_key=name&sort_dir=asc&limit=2&name=a&id=b`,
		`{}`, `[]`, `null`, `{"network": []}`, `"`, `{"network": {"name": "\u0000"}}`,
		`{"ikepolicy": {"lifetime": {"value": 2147483648}}}`, `{"network": {"mtu": "-2147483649"}}`,
		`{"ipsec_site_connection": {"psk": "a\u0000b", "dpd": {"interval": 99999999999}}}`,
		`name=a%00b&limit=1&marker=%00`, `{"port": {"x\u0000": 1}}`,
	}
	for i, s := range seeds {
		f.Add(uint8(i), []byte(s))
	}
	// The trunk targets, each with a seed of its own.
	trunkSeeds := []string{
		`{"trunk": {"port_id": "` + spID + `", "sub_ports": [{"port_id": "` + portID + `", "segmentation_type": "vlan", "segmentation_id": "7"}]}}`,
		`{"trunk": {"name": "t", "admin_state_up": "false"}}`,
		`{"sub_ports": [{"port_id": "` + spID + `", "segmentation_type": "vlan", "segmentation_id": 4094}]}`,
		`{"sub_ports": [{"port_id": "` + spID + `"}, {"port_id": "` + spID + `"}]}`,
	}
	for i, s := range trunkSeeds {
		f.Add(uint8(len(targets)-len(trunkSeeds)+i), []byte(s))
	}
	f.Fuzz(func(t *testing.T, target uint8, body []byte) {
		tg := targets[int(target)%len(targets)]
		path := tg.path
		if tg.method == "GET" {
			path += string(body)
			body = nil
		}
		req, err := http.NewRequest(tg.method, "http://neutrino"+path, bytes.NewReader(body))
		if err != nil {
			return // not a request a client could send
		}
		req.Header.Set("X-Project-Id", "fuzz")
		w := httptest.NewRecorder()
		api.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", tg.method, path, body, w.Code, w.Body)
		}
		if w.Code >= 400 {
			var fault struct {
				NeutronError *struct{ Type, Message string }
			}
			if json.Unmarshal(w.Body.Bytes(), &fault) != nil || fault.NeutronError == nil || fault.NeutronError.Type == "" {
				t.Fatalf("%s %s: %d without a NeutronError body: %s", tg.method, path, w.Code, w.Body)
			}
		}
	})
}

package api_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/vpnaas/ipsecpolicies"

	"github.com/neutrino-net/neutrino/internal/store/sqlstore/sqltest"
)

// TestPeerConfigExport: the owner (and admins) get a connection's
// configuration for the remote site as uncached text with the PSK; others
// get 404; no format lists the formats; an unknown one is a 400 naming
// them.
func TestPeerConfigExport(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, dialect string) {
		e := newEnv(t, dialect)
		tp := newVPNTopo(t, e)
		svc := mkService(t, e.a, "svc", tp.router, tp.sub)
		conn := mkConn(t, e.a, legacyConn("office", svc.ID, mkIKE(t, e.a, "ike"), mkIPsec(t, e.a, "esp", ipsecpolicies.TransformProtocolESP)))
		get := func(project, query string) (*http.Response, string) {
			t.Helper()
			req, _ := http.NewRequest("GET", e.url+"/v2.0/vpn/ipsec-site-connections/"+conn.ID+"/peer-config"+query, nil)
			if project != "" {
				req.Header.Set("X-Project-Id", project)
				req.Header.Set("X-Roles", "member")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			return resp, string(body)
		}
		for _, who := range []string{projectA, ""} {
			resp, body := get(who, "?format=swanctl")
			if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") ||
				resp.Header.Get("Cache-Control") != "no-store" {
				t.Fatalf("export as %q: %d %v", who, resp.StatusCode, resp.Header)
			}
			for _, line := range []string{"local_addrs = 192.0.2.10", "remote_addrs = " + tp.gw4, "local_ts = 192.168.10.0/24",
				"remote_ts = 10.1.0.0/24", "secret = 0sc2VjcmV0"} {
				if !strings.Contains(body, line) {
					t.Errorf("export lacks %q:\n%s", line, body)
				}
			}
		}
		if resp, body := get(projectB, "?format=swanctl"); resp.StatusCode != 404 || strings.Contains(body, "c2VjcmV0") {
			t.Errorf("another project: %d %s", resp.StatusCode, body)
		}
		if resp, body := get(projectA, ""); resp.StatusCode != 200 || !strings.Contains(body, `"swanctl"`) {
			t.Errorf("formats: %d %s", resp.StatusCode, body)
		}
		if resp, body := get(projectA, "?format=junos"); resp.StatusCode != 400 || !strings.Contains(body, "known formats: swanctl") {
			t.Errorf("unknown format: %d %s", resp.StatusCode, body)
		}
	})
}

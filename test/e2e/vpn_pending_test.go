package e2e_test

import (
	"testing"
	"time"

	"github.com/neutrino-net/neutrino/internal/testenv"
)

// TestVPNUpdateWhilePending: Terraform updates a connection right after
// creating it, before the agent has acted. Neutrino accepts the PUT in
// PENDING_CREATE (the reference refuses it) and the agent converges to the
// newest state: moon's connection is created with a PSK that does not
// match sun's and corrected at once; both sides must come up ACTIVE, which
// they can only do with the corrected PSK in moon's charon.
func TestVPNUpdateWhilePending(t *testing.T) {
	testenv.RequireCharon(t)
	e, h := oneNode(t)
	ext := e.network("public", true)
	e.subnet(ext, "172.24.4.0/24", nil)
	moon, sun := e.newSite(h, "moon", ext, 1), e.newSite(h, "sun", ext, 2)
	ike := e.create("ikepolicy", object{"name": "ike", "ike_version": "v2", "auth_algorithm": "sha256"})["id"].(string)
	ipsec := e.create("ipsecpolicy", object{"name": "esp", "auth_algorithm": "sha256"})["id"].(string)
	moonSvc := e.vpnService(moon, "moon-vpn", moon.subnet)
	sunSvc := e.vpnService(sun, "sun-vpn", sun.subnet)

	sunConn := e.connection("sun-to-moon", sunSvc, ike, ipsec, moon.ext4, "s3cret", object{"peer_cidrs": []any{moon.cidr}})
	created := e.create("ipsec_site_connection", object{"name": "moon-to-sun", "vpnservice_id": moonSvc, "ikepolicy_id": ike,
		"ipsecpolicy_id": ipsec, "peer_address": sun.ext4, "peer_id": sun.ext4, "psk": "not-yet-right", "peer_cidrs": []any{sun.cidr}})
	moonConn := created["id"].(string)
	start := time.Now()
	upd := e.update("ipsec_site_connection", moonConn, object{"psk": "s3cret", "description": "fixed while pending"})
	if created["status"] != "PENDING_CREATE" || upd["status"] != "PENDING_CREATE" {
		t.Fatalf("the update did not happen while pending: created %v, updated %v", created["status"], upd["status"])
	}
	e.waitConn(moonConn, "ACTIVE", vpnTimeout)
	e.waitConn(sunConn, "ACTIVE", vpnTimeout)
	t.Logf("PUT while PENDING_CREATE -> both ACTIVE: %s", time.Since(start).Round(time.Millisecond))
	if c := e.get("ipsec_site_connection", moonConn); c["psk"] != "s3cret" || c["description"] != "fixed while pending" {
		t.Fatalf("connection after the agent acted: %v", c)
	}
}

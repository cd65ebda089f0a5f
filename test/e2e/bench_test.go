package e2e_test

import (
	"testing"
	"time"

	"github.com/neutrino-net/neutrino/internal/nstest"
	"github.com/neutrino-net/neutrino/internal/testenv"
)

// The figures of the outside-world issue, measured as a user sees them
// from the office on the public network (a flat provider network on a
// mapped interface). Run with a fixed count, e.g.
//
//	go test -run '^$' -bench 'FloatingIP|UnmanagedPeer' -benchtime 30x ./test/e2e/

// BenchmarkFloatingIPFirstReply: from the PUT that associates a floating
// IP with a VM's port to the first ICMP echo reply the office gets from
// that address; then the PUT that dissociates it until the pings go
// unanswered (not timed: stops waits for 300 ms of silence).
func BenchmarkFloatingIPFirstReply(b *testing.B) {
	e, h, off, pub, tenant, _ := officeSite(b, false)
	p := e.port(tenant, object{"name": "vm"})
	e.plugAll(h, []port{p}, []*vmNS{h.vm("vm")})
	e.allowIngress(e.defaultGroup(), "203.0.113.0/24")
	fip := e.create("floatingip", object{"floating_network_id": pub})
	id, addr := fip["id"].(string), fip["floating_ip_address"].(string)
	in := newPinger(b, off.gw, off.wan.Addr().String(), addr)
	var first []time.Duration
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		e.update("floatingip", id, object{"port_id": p.id})
		at, ok := in.Reach(2*time.Millisecond, reachTimeout)
		if !ok {
			b.Fatalf("no reply from the floating IP %s after %s", addr, reachTimeout)
		}
		first = append(first, at.Sub(start))
		b.StopTimer()
		e.update("floatingip", id, object{"port_id": nil})
		if _, ok := stops(in, 5*time.Second); !ok {
			b.Fatal("the floating IP still answers 5s after it was dissociated")
		}
		b.StartTimer()
	}
	b.ReportMetric(nstest.Percentile(first, 0.5), "p50-ms")
	b.ReportMetric(nstest.Percentile(first, 0.99), "p99-ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkVPNUnmanagedPeer: from the POST of an IPsec site connection to
// ACTIVE in the API against the office's own charon, which its
// administrator loads with swanctl from the connection's swanctl export
// (fetched after the POST, as a user would). The connection is deleted
// after each round, which stops the router's charon: every round starts
// it afresh, as a router's first tunnel does.
func BenchmarkVPNUnmanagedPeer(b *testing.B) {
	testenv.RequireCharon(b)
	e, _, off, _, tenant, r := officeSite(b, true)
	sub := e.get("network", tenant)["subnets"].([]any)[0].(string)
	ike := e.create("ikepolicy", object{"name": "ike", "ike_version": "v2", "auth_algorithm": "sha256"})["id"].(string)
	esp := e.create("ipsecpolicy", object{"name": "esp", "auth_algorithm": "sha256"})["id"].(string)
	svc := e.vpnService(&site{router: r}, "to-office", sub)
	var active []time.Duration
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		conn := e.connection("office", svc, ike, esp, off.wan.Addr().String(), "0ff1ce-psk",
			object{"peer_cidrs": []any{off.lan.Masked().String()}})
		off.load(b, e.peerConfig(conn, "swanctl"))
		e.waitConn(conn, "ACTIVE", vpnTimeout)
		active = append(active, time.Since(start))
		b.StopTimer()
		e.deleteConn(conn)
		b.StartTimer()
	}
	b.ReportMetric(nstest.Percentile(active, 0.5), "p50-ms")
	b.ReportMetric(nstest.Percentile(active, 0.99), "p99-ms")
	b.ReportMetric(0, "ns/op")
}

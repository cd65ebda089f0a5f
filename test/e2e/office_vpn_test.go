package e2e_test

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/neutrino-net/neutrino/internal/ipsec/strongswan"
	"github.com/neutrino-net/neutrino/internal/testenv"
)

// load loads a swanctl.conf into the office's charon with swanctl, as its
// administrator would.
func (o *office) load(t testing.TB, conf string) {
	t.Helper()
	swanctl := testenv.RequireCommand(t, "swanctl", "strongswan-swanctl")
	f := filepath.Join(o.dir, "office-swanctl.conf")
	if err := os.WriteFile(f, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(swanctl, "--load-all", "--clear", "--file", f, "--uri", "unix://"+filepath.Join(o.dir, strongswan.SocketFile)).CombinedOutput()
	if err != nil {
		t.Fatalf("swanctl --load-all: %v\n%s\n%s", err, out, conf)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	t.Logf("office: swanctl --load-all: %s", lines[len(lines)-1])
}

// peerConfig fetches the connection's export for the office in format f.
func (e *env) peerConfig(id, f string) string {
	e.t.Helper()
	code, body, err := e.do("GET", "/v2.0/vpn/ipsec-site-connections/"+id+"/peer-config?format="+f, nil)
	if err != nil || code != http.StatusOK {
		e.t.Fatalf("peer-config %s: %d %s %v", f, code, body, err)
	}
	return string(body)
}

// TestVPNUnmanagedPeer is a user's first tunnel: from a Neutrino router on
// a flat provider network, mapped to a host interface, to an office whose
// strongSwan Neutrino does not manage, configured from the connection's
// swanctl export. The VM and the office's LAN host reach each other
// through the tunnel; a PSK change on the Neutrino side takes the tunnel
// DOWN with its reason until the office loads the new export.
func TestVPNUnmanagedPeer(t *testing.T) {
	testenv.RequireCharon(t)
	e, h, off, _, tenant, r := officeSite(t, true)
	sub := e.get("network", tenant)["subnets"].([]any)[0].(string)
	vmPort := e.port(tenant, object{"name": "vm"})
	vm := h.vm("vm")
	e.plugAll(h, []port{vmPort}, []*vmNS{vm})
	e.allowIngress(e.defaultGroup(), off.lan.Masked().String())

	// Without a tunnel the VM's traffic leaves SNATed; the LAN is unreachable.
	ping := newPinger(t, vm, vmPort.ip, off.hostIP)
	if !ping.Silent(20*time.Millisecond, 500*time.Millisecond) {
		t.Fatal("the VM reaches the office LAN before any VPN")
	}

	ike := e.create("ikepolicy", object{"name": "ike", "ike_version": "v2", "auth_algorithm": "sha256"})["id"].(string)
	esp := e.create("ipsecpolicy", object{"name": "esp", "auth_algorithm": "sha256"})["id"].(string)
	svc := e.vpnService(&site{router: r}, "to-office", sub)
	start := time.Now()
	conn := e.connection("office", svc, ike, esp, off.wan.Addr().String(), "0ff1ce-psk",
		object{"peer_cidrs": []any{off.lan.Masked().String()}})
	off.load(t, e.peerConfig(conn, "swanctl"))
	e.waitConn(conn, "ACTIVE", vpnTimeout)
	t.Logf("POST of the connection -> ACTIVE against the unmanaged peer: %s", time.Since(start).Round(time.Millisecond))
	if _, ok := ping.Reach(20*time.Millisecond, reachTimeout); !ok {
		t.Fatal("the VM cannot reach the office LAN host through the tunnel")
	}
	back := newPinger(t, off.lanHost, off.hostIP, vmPort.ip)
	if _, ok := back.Reach(20*time.Millisecond, reachTimeout); !ok {
		t.Fatal("the office LAN host cannot reach the VM through the tunnel")
	}

	// A PSK change on our side: DOWN with the reason until the office
	// loads the new export.
	e.update("ipsec_site_connection", conn, object{"psk": "new-0ff1ce-psk"})
	c := e.waitConn(conn, "DOWN", vpnTimeout)
	for deadline := time.Now().Add(vpnTimeout); c["status_reason"] == nil || c["status_reason"] == ""; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("DOWN without a reason: %v", c)
		}
		c = e.get("ipsec_site_connection", conn)
	}
	t.Logf("after the PSK change: DOWN, %q", c["status_reason"])
	off.load(t, e.peerConfig(conn, "swanctl"))
	e.waitConn(conn, "ACTIVE", vpnTimeout)
	if _, ok := ping.Reach(20*time.Millisecond, reachTimeout); !ok {
		t.Fatal("no traffic after the office loaded the new export")
	}
}

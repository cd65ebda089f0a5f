package e2e_test

import (
	"bufio"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/neutrino-net/neutrino/internal/agent/dhcp"
	"github.com/neutrino-net/neutrino/internal/agent/l2"
	"github.com/neutrino-net/neutrino/internal/namespace"
	"github.com/neutrino-net/neutrino/internal/testenv"
)

// DHCP clients of the tests: busybox's udhcpc (Debian's busybox-static)
// and ISC dhclient for DHCPv6 (busybox-static has no udhcpc6).
const (
	busybox  = "/usr/bin/busybox"
	dhclient = "/usr/sbin/dhclient"
)

func requireDHCP(t *testing.T) {
	t.Helper()
	if err := dhcp.Available(""); err != nil {
		testenv.Missing(t, "needs dnsmasq (Debian package dnsmasq-base): %v", err)
	}
	if _, err := os.Stat(busybox); err != nil {
		testenv.Missing(t, "needs busybox's udhcpc (Debian package busybox-static): %v", err)
	}
}

// udhcpcScript records each event udhcpc reports, with what it got, one
// line per event, in $OUT; it configures nothing.
const udhcpcScript = `#!/bin/sh
echo "event=$1 ip=$ip mask=$mask router=$router dns=$dns mtu=$mtu staticroutes=$staticroutes lease=$lease" >> "$OUT"
`

// lease is one udhcpc event's values.
type lease map[string]string

// udhcpc is a running DHCP client in a VM.
type udhcpc struct {
	cmd *exec.Cmd
	out string
}

// startUDHCPC runs udhcpc on the VM's device of a port, in the foreground
// (it renews on SIGUSR1); once reports whether it should quit after the
// first lease or failure.
func startUDHCPC(t *testing.T, vm *vmNS, portID string, once bool) *udhcpc {
	t.Helper()
	dir := t.TempDir()
	script := filepath.Join(dir, "script")
	if err := os.WriteFile(script, []byte(udhcpcScript), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "events")
	args := []string{"udhcpc", "-f", "-i", agentv1.DeviceName(l2.NamespacePortPrefix, portID), "-s", script,
		"-O", "mtu", "-O", "staticroutes", "-t", "10", "-T", "1"}
	if once {
		args = append(args, "-q", "-n", "-t", "3")
	}
	cmd := exec.Command(busybox, args...)
	cmd.Env = []string{"OUT=" + out, "PATH=/usr/bin:/bin"}
	if err := namespace.Do(vm.ns, cmd.Start); err != nil {
		t.Fatalf("udhcpc: %v", err)
	}
	u := &udhcpc{cmd: cmd, out: out}
	if !once {
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	}
	return u
}

// events returns the events recorded so far.
func (u *udhcpc) events() []lease {
	f, err := os.Open(u.out)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []lease
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := lease{}
		for _, kv := range strings.Fields(sc.Text()) {
			k, v, _ := strings.Cut(kv, "=")
			l[k] = v
		}
		// dns and staticroutes hold spaces: take them from the raw line.
		line := sc.Text()
		l["dns"] = between(line, "dns=", " mtu=")
		l["staticroutes"] = between(line, "staticroutes=", " lease=")
		out = append(out, l)
	}
	return out
}

func between(s, from, to string) string {
	_, rest, ok := strings.Cut(s, from)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, to)
	return v
}

// waitBound waits for the n-th "bound" or "renew" event and returns it.
func (u *udhcpc) waitBound(t *testing.T, n int, timeout time.Duration) lease {
	t.Helper()
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		got := 0
		for _, ev := range u.events() {
			if ev["event"] == "bound" || ev["event"] == "renew" {
				if got++; got == n {
					return ev
				}
			}
		}
	}
	t.Fatalf("udhcpc: no lease #%d after %s; events: %v", n, timeout, u.events())
	return nil
}

// dhcpReady waits until the host's DHCP server for a network runs and
// hands out what contains says (a line of its options file).
func (h *host) dhcpReady(t *testing.T, networkID, contains string) {
	t.Helper()
	opts := filepath.Join(h.state, "dhcp", networkID, dhcp.OptsFile)
	pid := filepath.Join(h.state, "dhcp", networkID, dhcp.PidFile)
	for deadline := time.Now().Add(activeTimeout); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		b, err := os.ReadFile(opts)
		if _, perr := os.Stat(pid); err == nil && perr == nil && strings.Contains(string(b), contains) {
			return
		}
	}
	b, _ := os.ReadFile(opts)
	t.Fatalf("DHCP server of network %s not serving %q after %s; options file:\n%s", networkID, contains, activeTimeout, b)
}

// TestDHCPv4 (issue 13 item 2): a VM whose address nobody configures gets
// its fixed IP, gateway, DNS servers, MTU and host routes from the
// network's DHCP server; a MAC the API does not know gets nothing; a
// change of dns_nameservers reaches the VM at its next renewal; the DHCP
// port is ACTIVE on the host's DHCP agent; deleting the subnet removes the
// server and its namespace.
func TestDHCPv4(t *testing.T) {
	requireDHCP(t)
	e, h := oneNode(t)
	netID := e.network("dhcp-net", false)
	e.subnet(netID, "10.40.0.0/24", object{"dns_nameservers": []string{"192.0.2.53"},
		"host_routes": []object{{"destination": "198.51.100.0/24", "nexthop": "10.40.0.254"}}})

	// The DHCP port: the reference's owner and device id, bound to the host.
	var dhcpPort object
	for deadline := time.Now().Add(activeTimeout); dhcpPort == nil || dhcpPort["status"] != "ACTIVE"; time.Sleep(50 * time.Millisecond) {
		out := e.call("GET", "/v2.0/ports?device_owner=network:dhcp&network_id="+netID, nil, http.StatusOK)
		if ps, _ := out["ports"].([]any); len(ps) == 1 {
			dhcpPort = ps[0].(map[string]any)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ACTIVE DHCP port on the network after %s: %v", activeTimeout, dhcpPort)
		}
	}
	if dev, _ := dhcpPort["device_id"].(string); !strings.HasPrefix(dev, "dhcp") || !strings.HasSuffix(dev, "-"+netID) {
		t.Errorf("DHCP port device_id %q, want dhcp<host uuid>-%s", dev, netID)
	}
	if dhcpPort["binding:host_id"] != h.name {
		t.Errorf("DHCP port bound to %v, want %s", dhcpPort["binding:host_id"], h.name)
	}
	agents := e.call("GET", "/v2.0/networks/"+netID+"/dhcp-agents", nil, http.StatusOK)["agents"].([]any)
	if len(agents) != 1 || agents[0].(map[string]any)["host"] != h.name || agents[0].(map[string]any)["agent_type"] != agentv1.AgentTypeDHCP {
		t.Errorf("DHCP agents of the network: %v, want the DHCP agent of %s", agents, h.name)
	}

	p := e.port(netID, nil)
	vm := h.vm("vm-dhcp")
	e.plugAll(h, []port{p}, []*vmNS{vm})
	h.dhcpReady(t, netID, "192.0.2.53")

	start := time.Now()
	c := startUDHCPC(t, vm, p.id, false)
	got := c.waitBound(t, 1, 20*time.Second)
	t.Logf("udhcpc: lease after %s: %v", time.Since(start).Round(time.Millisecond), got)
	want := lease{"ip": p.ip, "mask": "24", "router": "10.40.0.1", "dns": "192.0.2.53", "mtu": "1450",
		"staticroutes": "198.51.100.0/24 10.40.0.254 0.0.0.0/0 10.40.0.1", "lease": "86400"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("lease %s = %q, want %q", k, got[k], v)
		}
	}

	// A change of DNS servers reaches the VM when it renews.
	e.update("subnet", e.get("port", p.id)["fixed_ips"].([]any)[0].(map[string]any)["subnet_id"].(string),
		object{"dns_nameservers": []string{"192.0.2.54", "192.0.2.55"}})
	h.dhcpReady(t, netID, "192.0.2.54,192.0.2.55")
	if err := c.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	if got := c.waitBound(t, 2, 10*time.Second); got["dns"] != "192.0.2.54 192.0.2.55" || got["ip"] != p.ip {
		t.Errorf("renewed lease: ip %q dns %q, want %s and 192.0.2.54 192.0.2.55", got["ip"], got["dns"], p.ip)
	}

	// A MAC the API does not know gets no address: a port without port
	// security (so nothing below DHCP drops its frames) whose VM changes
	// its MAC.
	q := e.port(netID, object{"port_security_enabled": false, "security_groups": []string{}})
	stranger := h.vm("vm-stranger")
	e.plugAll(h, []port{q}, []*vmNS{stranger})
	sh := stranger.handle(t)
	link := stranger.dev(t, q.id)
	mac, _ := net.ParseMAC("02:00:00:00:be:ef")
	if err := sh.LinkSetDown(link); err == nil {
		err = sh.LinkSetHardwareAddr(link, mac)
		if err == nil {
			err = sh.LinkSetUp(link)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	sh.Close()
	u := startUDHCPC(t, stranger, q.id, true)
	err := u.cmd.Wait()
	if err == nil || len(u.events()) > 0 && u.events()[len(u.events())-1]["event"] == "bound" {
		t.Errorf("an unknown MAC got a lease: %v, events %v", err, u.events())
	}

	// Turning DHCP off removes the server and its namespace.
	subnetID := e.get("port", p.id)["fixed_ips"].([]any)[0].(map[string]any)["subnet_id"].(string)
	e.update("subnet", subnetID, object{"enable_dhcp": false})
	for deadline := time.Now().Add(cleanupTimeout); ; time.Sleep(50 * time.Millisecond) {
		_, nsErr := os.Stat(filepath.Join(h.dir, agentv1.DHCPNamespace(netID)))
		ports := e.call("GET", "/v2.0/ports?device_owner=network:dhcp&network_id="+netID, nil, http.StatusOK)["ports"].([]any)
		if os.IsNotExist(nsErr) && len(ports) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after enable_dhcp=false: namespace stat %v, DHCP ports %d", nsErr, len(ports))
		}
	}
}

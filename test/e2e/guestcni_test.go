package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/neutrino-net/neutrino/internal/namespace"
	"github.com/neutrino-net/neutrino/internal/testenv"
	"github.com/neutrino-net/neutrino/internal/vmlab"
)

// guestCNIBin builds neutrino-cni and cniguest statically, once: the
// guests run them from this machine's root, shared at /host.
var guestCNIBin = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "ncni-guest")
	if err != nil {
		return "", err
	}
	for _, pkg := range []string{"github.com/neutrino-net/neutrino/cmd/neutrino-cni", "github.com/neutrino-net/neutrino/test/e2e/cniguest"} {
		cmd := exec.Command("go", "build", "-o", dir+"/", pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
	}
	return dir, os.Chmod(dir, 0o755)
})

// container is one container a guest's runtime made.
type container struct {
	g          *vmlab.Guest
	id, ns, ip string
}

// TestLabGuestCNI is issue 15's item 5: two QEMU guests whose NICs are
// Neutrino ports run neutrino-cni through libcni as a container runtime
// would (cniguest), reaching the Networking API through their router
// (SNAT to the external network, where a stand-in "outside" serves the API
// on its address). In macvlan and ipvlan mode, containers in one guest
// reach each other, a container in the other guest, and the outside
// through the router's SNAT; a spoofed source gets nothing; DEL removes
// the pair and frees the address. In ipvlan l3 mode (NOARP slaves, the
// guest routes for them), the same with routes via g1 in g2 and in the
// router (its routes attribute), and CHECK. In trunk mode, each container is a
// subport of g1's trunk, wired on g1's tap by the agent (with eBPF on this
// machine, whose kernel has no 802.1q): containers reach the other guest,
// each other and the outside, the other guest reaches them as their
// subports' groups allow, a spoofed source gets nothing, and DEL removes
// the subports.
func TestLabGuestCNI(t *testing.T) {
	vmlab.RequireGuests(t)
	bin, err := guestCNIBin()
	if err != nil {
		t.Fatal(err)
	}
	e, h := oneNode(t)
	ext := e.network("ext", true)
	e.subnet(ext, "203.0.113.0/24", nil)
	n := e.network("tenant", false)
	sn := e.subnet(n, "10.30.0.0/24", nil)
	r := e.router("r", ext)
	e.addInterface(r, sn)
	open := e.create("security_group", object{"name": "open"})["id"].(string)
	e.allowIngress(open, "10.30.0.0/24")

	// The outside: a namespace on the external network serving the API.
	po := e.port(ext, object{"name": "outside", "port_security_enabled": false, "security_groups": []any{}})
	out := h.vm("out")
	e.plugAll(h, []port{po}, []*vmNS{out})
	var ln net.Listener
	if err := namespace.Do(out.ns, func() (err error) { ln, err = net.Listen("tcp4", po.ip+":9696"); return err }); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(e.api)
	srv := &http.Server{Handler: httputil.NewSingleHostReverseProxy(u)}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	p1 := e.port(n, object{"name": "g1", "security_groups": []any{open}})
	p2 := e.port(n, object{"name": "g2", "security_groups": []any{open}})
	for _, p := range []port{p1, p2} {
		e.update("port", p.id, object{"binding:host_id": h.name})
	}
	guests := startGuestsShare(t, h, []port{p1, p2}, []string{"g1", "g2"}, true)
	g1, g2 := guests[0], guests[1]
	for i, g := range guests {
		ctx, cancel := context.WithTimeout(context.Background(), guestTimeout)
		addr, err := g.WaitIPv4(ctx, g.Ifnames[0])
		cancel()
		if err != nil || addr.Addr().String() != []port{p1, p2}[i].ip {
			t.Fatalf("%s: DHCP gave %v (%v)", g.Name, addr, err)
		}
	}

	run := func(g *vmlab.Guest, args string) (string, int) {
		t.Helper()
		return guestRun(t, g, "CNI_PATH=/host"+bin+" /host"+bin+"/cniguest "+args+" 2>&1")
	}
	// writeConf writes a conflist for the plugin in a mode, with extra
	// settings.
	writeConf := func(name, mode string, extra map[string]any) string {
		t.Helper()
		conf := filepath.Join(bin, name+".conflist")
		plugin := map[string]any{
			"type": "neutrino-cni", "endpoint": "http://" + po.ip + ":9696", "mode": mode, "stateDir": "/tmp/st-" + name,
			"auth": map[string]any{"type": "noauth", "projectId": "fake_project_id", "roles": "member"}}
		for k, v := range extra {
			plugin[k] = v
		}
		data, _ := json.Marshal(map[string]any{"cniVersion": "1.1.0", "name": "pods", "plugins": []any{plugin}})
		if err := os.WriteFile(conf, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return conf
	}
	addTo := func(t *testing.T, conf string, g *vmlab.Guest, id string) container {
		t.Helper()
		o, code := run(g, "add /host"+conf+" "+id)
		var c container
		c.g, c.id = g, id
		if _, err := fmt.Sscanf(strings.TrimSpace(o), "NS=%s IP=%s", &c.ns, &c.ip); code != 0 || err != nil {
			t.Fatalf("%s: ADD %s: %s (exit %d)", g.Name, id, o, code)
		}
		return c
	}
	reaches := func(c container, src, dst string) bool {
		_, code := run(c.g, "ping "+c.ns+" "+src+" "+dst)
		if code != 0 { // one more try: the first packet may wait for ARP
			_, code = run(c.g, "ping "+c.ns+" "+src+" "+dst)
		}
		return code == 0
	}
	for _, mode := range []string{"macvlan", "ipvlan"} {
		t.Run(mode, func(t *testing.T) {
			start := time.Now()
			conf := writeConf("pods-"+mode, mode, nil)
			add := func(g *vmlab.Guest, id string) container { return addTo(t, conf, g, id) }
			c1, c2, c3 := add(g1, "c1"), add(g1, "c2"), add(g2, "c3")
			t.Logf("%s: three ADDs in the guests: %s", mode, time.Since(start).Round(time.Millisecond))
			for _, c := range []struct {
				from container
				to   string
				what string
			}{{c1, c2.ip, "a container in the same guest"}, {c1, c3.ip, "a container in the other guest"},
				{c3, c1.ip, "a container in the other guest"}, {c2, po.ip, "the outside through SNAT"}} {
				if !reaches(c.from, c.from.ip, c.to) {
					t.Errorf("%s: %s (%s) cannot reach %s (%s)", mode, c.from.id, c.from.ip, c.what, c.to)
				}
			}
			if _, code := run(g1, "addr "+c1.ns+" eth0 10.30.0.250/24"); code != 0 {
				t.Fatal("cannot add the spoofed address")
			}
			if reaches(c1, "10.30.0.250", c3.ip) {
				t.Errorf("%s: c1 reaches c3 from 10.30.0.250, an address the plugin did not add", mode)
			}
			if o, code := run(g1, "del /host"+conf+" c2 "+c2.ns); code != 0 {
				t.Fatalf("DEL c2: %s", o)
			}
			for _, pr := range pairs(e, p1.id) {
				if strings.HasPrefix(pr, c2.ip+" ") {
					t.Errorf("%s: c2's pair %s still on g1's port after DEL", mode, pr)
				}
			}
			taken := e.create("port", object{"network_id": n, "fixed_ips": []any{object{"ip_address": c2.ip}}})
			e.call("DELETE", "/v2.0/ports/"+taken["id"].(string), nil, 204)
			for _, c := range []container{c1, c3} {
				if o, code := run(c.g, "del /host"+conf+" "+c.id+" "+c.ns); code != 0 {
					t.Fatalf("DEL %s: %s", c.id, o)
				}
			}
			if got := reservations(e); got != 0 {
				t.Errorf("%s: %d reservations after DEL of all", mode, got)
			}
			t.Logf("%s in two guests: %s", mode, time.Since(start).Round(time.Millisecond))
		})
	}

	// ipvlan l3: the slaves have NOARP and the guest routes for its
	// containers, so whatever else on the subnet reaches one needs a route
	// to its /32 via g1's address: g2 gets it from the test (as
	// TestLabCNI/IPvlanL3's neighbour does), the router through its
	// routes attribute (extraroute), as an operator would add it. A
	// negative check needs one try: the answer would not wait for ARP.
	t.Run("ipvlan-l3", func(t *testing.T) {
		start := time.Now()
		conf := writeConf("pods-ipvlan-l3", "ipvlan", map[string]any{"ipvlanMode": "l3"})
		c1, c2 := addTo(t, conf, g1, "l1"), addTo(t, conf, g1, "l2")
		t.Logf("ipvlan l3: two ADDs in g1: %s", time.Since(start).Round(time.Millisecond))
		if got, want := pairs(e, p1.id), []string{c1.ip + " " + p1.mac, c2.ip + " " + p1.mac}; strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("ipvlan l3: g1's port pairs = %v, want %v", got, want)
		}
		silent := func(c container, src, dst string) bool {
			_, code := run(c.g, "ping "+c.ns+" "+src+" "+dst)
			return code != 0
		}
		vm2 := container{g: g2, id: "g2", ns: "/proc/1/ns/net", ip: p2.ip}
		if !reaches(c1, c1.ip, c2.ip) {
			t.Errorf("ipvlan l3: l1 (%s) cannot reach l2 (%s) in the same guest", c1.ip, c2.ip)
		}
		// No ARP for a container's address: unrouted, g2 cannot reach it.
		if !silent(vm2, p2.ip, c1.ip) {
			t.Errorf("ipvlan l3: the other guest reached l1 (%s) without a route via g1", c1.ip)
		}
		const spoofed = "10.30.0.250"
		// Replies to the spoofed source are routed via g1 too: only the
		// host's anti-spoofing stands between them.
		g2Routes := []string{c1.ip, c2.ip, spoofed}
		for _, ip := range g2Routes {
			if o, code := guestRun(t, g2, "ip route add "+ip+"/32 via "+p1.ip); code != 0 {
				t.Fatalf("g2: route %s via g1: %s", ip, o)
			}
		}
		for _, c := range []struct {
			from container
			to   string
			what string
		}{{vm2, c1.ip, "container l1 routed via g1"}, {c2, p2.ip, "the other guest"}} {
			if !reaches(c.from, c.from.ip, c.to) {
				t.Errorf("ipvlan l3: %s (%s) cannot reach %s (%s)", c.from.id, c.from.ip, c.what, c.to)
			}
		}
		// The router answers SNAT's replies by ARP on the subnet: without
		// a route via g1 the container's replies are lost.
		if !silent(c1, c1.ip, po.ip) {
			t.Errorf("ipvlan l3: l1 (%s) reached the outside without a router route via g1", c1.ip)
		}
		e.update("router", r, object{"routes": []any{
			object{"destination": c1.ip + "/32", "nexthop": p1.ip}, object{"destination": c2.ip + "/32", "nexthop": p1.ip}}})
		ok := false
		for deadline := time.Now().Add(20 * time.Second); !ok && time.Now().Before(deadline); {
			ok = reaches(c1, c1.ip, po.ip)
		}
		if !ok {
			t.Errorf("ipvlan l3: l1 (%s) cannot reach the outside (%s) through SNAT with a router route via g1", c1.ip, po.ip)
		}
		if o, code := run(g1, "check /host"+conf+" l1 "+c1.ns); code != 0 {
			t.Errorf("ipvlan l3: CHECK l1: %s", o)
		}
		if _, code := run(g1, "addr "+c1.ns+" eth0 "+spoofed+"/24"); code != 0 {
			t.Fatal("cannot add the spoofed address")
		}
		if !silent(c1, spoofed, p2.ip) {
			t.Errorf("ipvlan l3: a reply to l1's spoofed source %s, want it dropped", spoofed)
		}
		if o, code := run(g1, "del /host"+conf+" l2 "+c2.ns); code != 0 {
			t.Fatalf("DEL l2: %s", o)
		}
		if got := pairs(e, p1.id); len(got) != 1 || got[0] != c1.ip+" "+p1.mac {
			t.Errorf("ipvlan l3: g1's port pairs after DEL l2 = %v", got)
		}
		taken := e.create("port", object{"network_id": n, "fixed_ips": []any{object{"ip_address": c2.ip}}})
		e.call("DELETE", "/v2.0/ports/"+taken["id"].(string), nil, 204)
		if o, code := run(g1, "del /host"+conf+" l1 "+c1.ns); code != 0 {
			t.Fatalf("DEL l1: %s", o)
		}
		if got, n := pairs(e, p1.id), reservations(e); len(got) != 0 || n != 0 {
			t.Errorf("ipvlan l3: after DEL of all: pairs %v, %d reservations", got, n)
		}
		// The operator's routes go with the containers: trunk mode may
		// hand their addresses to subports with MACs of their own.
		e.update("router", r, object{"routes": []any{}})
		for _, ip := range g2Routes {
			if o, code := guestRun(t, g2, "ip route del "+ip+"/32"); code != 0 {
				t.Fatalf("g2: route %s: %s", ip, o)
			}
		}
		t.Logf("ipvlan l3 in two guests: %s", time.Since(start).Round(time.Millisecond))
	})

	// Trunk mode: g1's port is a trunk's parent; each container gets its
	// own subport (own MAC and address, tagged by the plugin on g1's NIC),
	// which the agent wires on g1's tap: with 802.1q where the host has it,
	// with eBPF on this machine, whose kernel has none. The subport's own
	// group filters its container, as in TestLabCNI/Trunk.
	t.Run("trunk", func(t *testing.T) {
		start := time.Now()
		closed := e.create("security_group", object{"name": "closed"})["id"].(string)
		tr := e.create("trunk", object{"port_id": p1.id})["id"].(string)
		e.waitTrunk(tr, "ACTIVE")
		if testenv.Probe(testenv.VLAN) != nil && testenv.Probe(testenv.TCBPF) != nil {
			sp := e.port(n, object{"name": "sub"})
			e.call("PUT", "/v2.0/trunks/"+tr+"/add_subports", object{"sub_ports": []any{
				object{"port_id": sp.id, "segmentation_type": "vlan", "segmentation_id": 7}}}, 200)
			e.waitTrunk(tr, "DEGRADED")
			testenv.Missing(t, "the host has neither 802.1q nor eBPF tc programs for trunk mode (the trunk is DEGRADED, as it should)")
		}
		confOpen := writeConf("trunk-open", "trunk", map[string]any{"securityGroups": []string{open}})
		confClosed := writeConf("trunk-closed", "trunk", map[string]any{"securityGroups": []string{closed}})
		c1, c2 := addTo(t, confOpen, g1, "t1"), addTo(t, confClosed, g1, "t2")
		t.Logf("trunk: two ADDs in g1: %s", time.Since(start).Round(time.Millisecond))
		if subs := e.get("trunk", tr)["sub_ports"].([]any); len(subs) != 2 {
			t.Fatalf("trunk sub_ports after two ADDs: %v", subs)
		}
		e.waitTrunk(tr, "ACTIVE")
		// g2 itself, from its own namespace.
		vm2 := container{g: g2, id: "g2", ns: "/proc/1/ns/net", ip: p2.ip}
		for _, c := range []struct {
			from container
			to   string
			what string
		}{{c1, p2.ip, "the other guest"}, {vm2, c1.ip, "container t1, whose group admits it"},
			{c2, c1.ip, "the other container of its guest"}, {c1, po.ip, "the outside through SNAT"}} {
			if !reaches(c.from, c.from.ip, c.to) {
				t.Errorf("trunk: %s (%s) cannot reach %s (%s)", c.from.id, c.from.ip, c.what, c.to)
			}
		}
		// g2's port's group admits g2; t2's subport's group does not.
		if reaches(vm2, p2.ip, c2.ip) {
			t.Errorf("trunk: the other guest reaches t2 (%s), whose group has no ingress rule", c2.ip)
		}
		e.allowIngress(closed, "10.30.0.0/24")
		ok := false
		for deadline := time.Now().Add(20 * time.Second); !ok && time.Now().Before(deadline); {
			ok = reaches(vm2, p2.ip, c2.ip)
		}
		if !ok {
			t.Errorf("trunk: the other guest cannot reach t2 (%s) after its group admitted it", c2.ip)
		}
		if _, code := run(g1, "addr "+c1.ns+" eth0 10.30.0.250/24"); code != 0 {
			t.Fatal("cannot add the spoofed address")
		}
		if reaches(c1, "10.30.0.250", p2.ip) {
			t.Errorf("trunk: t1 reaches the other guest from 10.30.0.250, an address its subport does not have")
		}
		if o, code := run(g1, "del /host"+confClosed+" t2 "+c2.ns); code != 0 {
			t.Fatalf("DEL t2: %s", o)
		}
		if subs := e.get("trunk", tr)["sub_ports"].([]any); len(subs) != 1 {
			t.Fatalf("trunk sub_ports after DEL t2: %v", subs)
		}
		taken := e.create("port", object{"network_id": n, "fixed_ips": []any{object{"ip_address": c2.ip}}})
		e.call("DELETE", "/v2.0/ports/"+taken["id"].(string), nil, 204)
		if o, code := run(g1, "del /host"+confOpen+" t1 "+c1.ns); code != 0 {
			t.Fatalf("DEL t1: %s", o)
		}
		if got := reservations(e); got != 0 {
			t.Errorf("trunk: %d reservations after DEL of all", got)
		}
		e.waitTrunk(tr, "ACTIVE")
		t.Logf("trunk mode in a guest: %s", time.Since(start).Round(time.Millisecond))
	})
}

package e2e_test

import (
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/neutrino-net/neutrino/internal/namespace"
)

// tcpListen serves TCP on addr in a VM namespace: every connection gets
// "hi" and is echoed.
func tcpListen(t *testing.T, vm *vmNS, addr string) {
	t.Helper()
	var ln net.Listener
	if err := namespace.Do(vm.ns, func() (err error) { ln, err = net.Listen("tcp", addr); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = c.Write([]byte("hi\n"))
				buf := make([]byte, 512)
				for {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					_, _ = c.Write(buf[:n])
				}
			}()
		}
	}()
}

// tcpReaches reports whether a TCP connection from vm to addr gets the
// greeting within a second.
func tcpReaches(t *testing.T, vm *vmNS, addr string) bool {
	t.Helper()
	ok := false
	_ = namespace.Do(vm.ns, func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return nil
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		buf := make([]byte, 3)
		n, _ := c.Read(buf)
		ok = string(buf[:n]) == "hi\n"
		return nil
	})
	return ok
}

// TestSecurityGroups checks each kind of rule on namespace VMs, both
// directions and both IP versions: the default group, protocols by name
// and number, port ranges, ICMP type, remote_ip_prefix, remote_group_id
// with membership following ports, a rule deleted under a live flow, and
// port_security_enabled=false.
func TestSecurityGroups(t *testing.T) {
	e, h := oneNode(t)
	n := e.network("sg", false)
	e.subnet(n, "10.30.0.0/24", object{"enable_dhcp": false})
	e.subnet(n, "fd30::/64", object{"ip_version": 6, "enable_dhcp": false})
	srv := e.create("security_group", object{"name": "srv"})["id"].(string)
	rule := func(attrs object) string {
		attrs["security_group_id"] = srv
		return e.create("security_group_rule", attrs)["id"].(string)
	}
	// A client in the default group, a server in srv, an outsider in a
	// group of its own (egress only).
	pc := e.port(n, object{"name": "client"})
	def := e.defaultGroup()
	other := e.create("security_group", object{"name": "other"})["id"].(string)
	ps := e.port(n, object{"name": "server", "security_groups": []any{srv}})
	po := e.port(n, object{"name": "outsider", "security_groups": []any{other}})
	vc, vs, vo := h.vm("client"), h.vm("server"), h.vm("outsider")
	e.plugAll(h, []port{pc, ps, po}, []*vmNS{vc, vs, vo})
	ip6 := func(p port) string {
		for _, f := range e.get("port", p.id)["fixed_ips"].([]any) {
			if a := f.(map[string]any)["ip_address"].(string); net.ParseIP(a).To4() == nil {
				return a
			}
		}
		t.Fatalf("port %s has no IPv6 address", p.id)
		return ""
	}
	c6, s6, o6 := ip6(pc), ip6(ps), ip6(po)
	for _, a := range []string{ps.ip + ":22", ps.ip + ":8080", ps.ip + ":9000", "[" + s6 + "]:22", pc.ip + ":22"} {
		vm := vs
		if a == pc.ip+":22" {
			vm = vc
		}
		tcpListen(t, vm, a)
	}
	udpEcho(t, vs, ps.ip+":5353")

	type check struct {
		what   string
		reach  func() bool
		expect bool
	}
	ping := func(vm *vmNS, src, dst string) func() bool {
		return func() bool {
			_, ok := newPinger(t, vm, src, dst).Reach(50*time.Millisecond, 600*time.Millisecond)
			return ok
		}
	}
	tcp := func(vm *vmNS, addr string) func() bool { return func() bool { return tcpReaches(t, vm, addr) } }
	udp := func(vm *vmNS, src, addr string) func() bool {
		return func() bool { _, ok := udpProbe(t, vm, addr, 100*time.Millisecond, 600*time.Millisecond); return ok }
	}
	run := func(stage string, checks []check) {
		t.Helper()
		for _, c := range checks {
			// Rules apply well under a second: allow a little for the agent.
			got := c.reach()
			for deadline := time.Now().Add(2 * time.Second); got != c.expect && time.Now().Before(deadline); {
				time.Sleep(100 * time.Millisecond)
				got = c.reach()
			}
			if got != c.expect {
				t.Errorf("%s: %s: passes %v, want %v", stage, c.what, got, c.expect)
			}
		}
	}

	// srv has only the default egress rules: nothing gets in; its own
	// traffic goes out, and replies come back (stateful).
	run("no ingress rules", []check{
		{"client -> server ICMP", ping(vc, pc.ip, ps.ip), false},
		{"client -> server TCP 22", tcp(vc, ps.ip+":22"), false},
		{"server -> client ICMP (default group: same group only)", ping(vs, ps.ip, pc.ip), false},
		{"client -> outsider ICMP", ping(vc, pc.ip, po.ip), false},
		{"outsider -> client TCP 22 (not in the default group)", tcp(vo, pc.ip+":22"), false},
	})
	e.allowIngress(def, "10.30.0.0/24") // the default group now lets the subnet in
	run("default group opened", []check{
		{"server -> client ICMP", ping(vs, ps.ip, pc.ip), true},
		{"outsider -> client TCP 22", tcp(vo, pc.ip+":22"), true},
		{"client -> server ICMP", ping(vc, pc.ip, ps.ip), false},
	})

	rule(object{"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp", "port_range_min": 22, "port_range_max": 22,
		"remote_group_id": def})
	rule(object{"direction": "ingress", "ethertype": "IPv4", "protocol": "6", "port_range_min": 8000, "port_range_max": 8999,
		"remote_ip_prefix": po.ip + "/32"})
	rule(object{"direction": "ingress", "ethertype": "IPv4", "protocol": "udp", "port_range_min": 5353, "port_range_max": 5353})
	icmp := rule(object{"direction": "ingress", "ethertype": "IPv4", "protocol": "icmp", "port_range_min": 8, "port_range_max": 0,
		"remote_group_id": def})
	rule(object{"direction": "ingress", "ethertype": "IPv6", "protocol": "ipv6-icmp", "remote_group_id": def})
	rule(object{"direction": "ingress", "ethertype": "IPv6", "protocol": "tcp", "port_range_min": 22, "port_range_max": 22,
		"remote_ip_prefix": c6 + "/128"})
	run("rules", []check{
		{"client -> server TCP 22 (remote group)", tcp(vc, ps.ip+":22"), true},
		{"outsider -> server TCP 22 (not in the remote group)", tcp(vo, ps.ip+":22"), false},
		{"outsider -> server TCP 8080 (protocol 6, range, its prefix)", tcp(vo, ps.ip+":8080"), true},
		{"client -> server TCP 8080 (not the prefix)", tcp(vc, ps.ip+":8080"), false},
		{"outsider -> server TCP 9000 (outside the range)", tcp(vo, ps.ip+":9000"), false},
		{"outsider -> server UDP 5353 (from anywhere)", udp(vo, po.ip, ps.ip+":5353"), true},
		{"client -> server ICMP echo (type 8 code 0, remote group)", ping(vc, pc.ip, ps.ip), true},
		{"outsider -> server ICMP", ping(vo, po.ip, ps.ip), false},
		{"client -> server ICMPv6", ping(vc, c6, s6), true},
		{"outsider -> server ICMPv6", ping(vo, o6, s6), false},
		{"client -> server TCP 22 over IPv6 (its /128)", tcp(vc, "["+s6+"]:22"), true},
		{"outsider -> server TCP 22 over IPv6", tcp(vo, "["+s6+"]:22"), false},
		{"server -> client ICMP (egress open, the default group lets it in)", ping(vs, ps.ip, pc.ip), true},
	})

	// Membership follows ports: the outsider joins the default group.
	e.update("port", po.id, object{"security_groups": []any{other, def}})
	run("outsider joined the default group", []check{
		{"outsider -> server TCP 22", tcp(vo, ps.ip+":22"), true},
		{"outsider -> server ICMP", ping(vo, po.ip, ps.ip), true},
	})

	// A live flow (one ICMP id, one tracked connection) stops when its
	// rule goes, and comes back with it.
	live := newPinger(t, vc, pc.ip, ps.ip)
	if _, ok := live.Reach(20*time.Millisecond, reachTimeout); !ok {
		t.Fatal("no live flow")
	}
	e.call("DELETE", "/v2.0/security-group-rules/"+icmp, nil, http.StatusNoContent)
	if d, ok := stops(live, 5*time.Second); !ok {
		t.Error("the live ICMP flow still passes 5 s after its rule was deleted")
	} else {
		t.Logf("rule deleted: the live flow stopped within %s", d.Round(time.Millisecond))
	}
	start := time.Now()
	rule(object{"direction": "ingress", "ethertype": "IPv4", "protocol": "icmp", "remote_group_id": def})
	if at, ok := live.Reach(5*time.Millisecond, reachTimeout); !ok {
		t.Error("the ICMP rule is back, the flow is not")
	} else {
		t.Logf("rule created: the flow passes %s after the POST", at.Sub(start).Round(time.Millisecond))
	}

	// Port security off (no groups): the server takes anything.
	e.update("port", ps.id, object{"port_security_enabled": false, "security_groups": []any{}})
	run("port security off", []check{
		{"outsider -> server TCP 9000", tcp(vo, ps.ip+":9000"), true},
	})
	_ = fmt.Sprint
}

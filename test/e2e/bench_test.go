package e2e_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/neutrino-net/neutrino/internal/namespace"
	"github.com/neutrino-net/neutrino/internal/nstest"
	"github.com/neutrino-net/neutrino/internal/testenv"
	"github.com/neutrino-net/neutrino/internal/vmlab"
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
	reportLatencies(b, latencies{"", first})
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
	reportLatencies(b, latencies{"", active})
}

// BenchmarkTapToActive: a VM's tap appears in the host's namespace (a
// persistent TUN tap named as the compute service names it) and the port,
// bound to the host, becomes ACTIVE in the API.
func BenchmarkTapToActive(b *testing.B) {
	e, h := oneNode(b)
	n := e.network("taps", false)
	e.subnet(n, "10.40.0.0/24", object{"enable_dhcp": false})
	var ds []time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		p := e.port(n, nil)
		e.update("port", p.id, object{"binding:host_id": h.name})
		time.Sleep(100 * time.Millisecond) // the agent has the binding and waits for the tap
		name := agentv1.DeviceName(agentv1.TapPrefix, p.id)
		b.StartTimer()
		start := time.Now()
		if err := namespace.Do(h.ns, func() error {
			return netlink.LinkAdd(&netlink.Tuntap{LinkAttrs: netlink.LinkAttrs{Name: name}, Mode: netlink.TUNTAP_MODE_TAP})
		}); err != nil {
			b.Fatalf("tap %s: %v", name, err)
		}
		ds = append(ds, e.waitActive(p, start))
		b.StopTimer()
		if l, err := h.nl.LinkByName(name); err == nil {
			_ = h.nl.LinkDel(l)
		}
		b.StartTimer()
	}
	reportLatencies(b, latencies{"", ds})
}

// BenchmarkSGRuleToEffect: the POST of a security group rule letting ICMP
// in to the first echo reply a VM gets through it, and (reported apart)
// the DELETE of that rule until a running ping flow stops.
func BenchmarkSGRuleToEffect(b *testing.B) {
	e, h := oneNode(b)
	n := e.network("sg", false)
	e.subnet(n, "10.41.0.0/24", object{"enable_dhcp": false})
	g := e.create("security_group", object{"name": "bench"})["id"].(string)
	pc, ps := e.port(n, object{"name": "client"}), e.port(n, object{"name": "server", "security_groups": []any{g}})
	vc, vs := h.vm("client"), h.vm("server")
	e.plugAll(h, []port{pc, ps}, []*vmNS{vc, vs})
	ping := newPinger(b, vc, pc.ip, ps.ip)
	var on, off []time.Duration
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		id := e.create("security_group_rule", object{"security_group_id": g, "direction": "ingress",
			"ethertype": "IPv4", "protocol": "icmp", "remote_ip_prefix": pc.ip + "/32"})["id"].(string)
		at, ok := ping.Reach(2*time.Millisecond, reachTimeout)
		if !ok {
			b.Fatal("the rule let nothing through")
		}
		on = append(on, at.Sub(start))
		start = time.Now()
		e.call("DELETE", "/v2.0/security-group-rules/"+id, nil, http.StatusNoContent)
		// The first request after the deletion that goes unanswered.
		for {
			seq := ping.Send()
			time.Sleep(5 * time.Millisecond)
			if ping.RepliesSince(seq) == 0 {
				off = append(off, time.Since(start))
				break
			}
			if time.Since(start) > reachTimeout {
				b.Fatal("the flow still passes after the rule's deletion")
			}
		}
	}
	reportLatencies(b, latencies{"on-", on}, latencies{"off-", off})
}

// BenchmarkDHCPNetworks: 100 networks, each with a DHCP subnet and a VM
// port bound to the one node: the time until the node serves them all,
// and what that costs it: processes and memory (dnsmasq's resident and
// proportional sizes; the Go heap of this process, server and agent, as
// an upper bound of the agent's share). Run with -benchtime 1x.
func BenchmarkDHCPNetworks(b *testing.B) {
	const networks = 100
	for range b.N {
		e, h := oneNode(b)
		var before runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		start := time.Now()
		for i := range networks {
			n := e.network(fmt.Sprintf("dhcp-%d", i), false)
			e.subnet(n, fmt.Sprintf("10.%d.%d.0/24", 100+i/250, i%250), nil)
			p := e.port(n, nil)
			e.update("port", p.id, object{"binding:host_id": h.name})
		}
		var pids []int
		for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
			if pids = processesUnder(h.state, "dnsmasq"); len(pids) >= networks {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d networks served after 5 minutes", len(pids), networks)
			}
		}
		served := time.Since(start)
		var rss, pss int64
		for _, pid := range pids {
			r, p := memoryOf(pid)
			rss, pss = rss+r, pss+p
		}
		var after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(len(pids))/networks, "procs/network")
		b.ReportMetric(float64(pss)/networks/1024, "dnsmasq-PSS-KiB/network")
		b.ReportMetric(float64(rss)/networks/1024, "dnsmasq-RSS-KiB/network")
		b.ReportMetric((float64(after.HeapInuse)-float64(before.HeapInuse))/networks/1024, "go-heap-KiB/network")
		b.ReportMetric(served.Seconds(), "s-to-serve-all")
		b.ReportMetric(0, "ns/op")
	}
}

// processesUnder returns the pids of the named programs whose command
// line mentions dir.
func processesUnder(dir, program string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, d := range entries {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(cmd), "\x00")
		if filepath.Base(args[0]) == program && strings.Contains(string(cmd), dir) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// memoryOf returns a process's resident and proportional set sizes in
// bytes (smaps_rollup).
func memoryOf(pid int) (rss, pss int64) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "Rss:":
			rss = v * 1024
		case "Pss:":
			pss = v * 1024
		}
	}
	return rss, pss
}

// BenchmarkLabGuestBootToLease: a QEMU guest (TCG, the Debian kernel,
// busybox) started on a bound port's tap, to its command channel's first
// answer (boot) and to its DHCP lease of the port's address (lease; the
// guest polled every 200 ms).
func BenchmarkLabGuestBootToLease(b *testing.B) {
	lab := vmlab.RequireGuests(b)
	e, h := oneNode(b)
	n := e.network("guests", false)
	e.subnet(n, "10.42.0.0/24", nil)
	hostNS := fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), int(h.ns))
	var boot, lease []time.Duration
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		p := e.port(n, nil)
		e.update("port", p.id, object{"binding:host_id": h.name})
		mac, err := net.ParseMAC(p.mac)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), guestTimeout)
		g, err := lab.StartGuest(ctx, vmlab.GuestOptions{Name: fmt.Sprintf("bench-%d", i),
			NICs: []vmlab.NIC{{Tap: agentv1.DeviceName(agentv1.TapPrefix, p.id), MAC: mac, Netns: hostNS}}})
		if err != nil {
			cancel()
			b.Fatal(err)
		}
		addr, err := g.WaitIPv4(ctx, g.Ifnames[0])
		took := time.Since(start)
		cancel()
		b.StopTimer()
		g.Close()
		if err != nil || addr.Addr().String() != p.ip {
			b.Fatalf("guest lease: %v %v, want %s", addr, err, p.ip)
		}
		boot, lease = append(boot, g.BootTime), append(lease, took)
		b.StartTimer()
	}
	reportLatencies(b, latencies{"boot-", boot}, latencies{"lease-", lease})
}

// latencies is one measured series of a benchmark: its metrics are
// named prefix+"p50-ms" and prefix+"p99-ms".
type latencies struct {
	prefix string
	ds     []time.Duration
}

// reportLatencies reports each series' median and 99th percentile in
// milliseconds, and no ns/op (a round's time is not the figure).
func reportLatencies(b *testing.B, series ...latencies) {
	for _, s := range series {
		b.ReportMetric(nstest.Percentile(s.ds, 0.5), s.prefix+"p50-ms")
		b.ReportMetric(nstest.Percentile(s.ds, 0.99), s.prefix+"p99-ms")
	}
	b.ReportMetric(0, "ns/op")
}

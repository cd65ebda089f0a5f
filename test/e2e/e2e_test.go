package e2e_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/neutrino-net/neutrino/internal/agent/l2"
	"github.com/neutrino-net/neutrino/internal/bus"
)

// waitRegistered waits until the API shows the host's agent alive, so
// routers created next are scheduled to it.
func (h *host) waitRegistered() {
	e := h.e
	e.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		out := e.call("GET", "/v2.0/agents?host="+h.name, nil, http.StatusOK)
		agents, _ := out["agents"].([]any)
		for _, a := range agents {
			if m, _ := a.(map[string]any); m["host"] == h.name && m["alive"] == true {
				return
			}
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("agent of host %s not registered after 10s", h.name)
		}
	}
}

// plugAll plugs the ports into their VMs at once and waits until all are
// ACTIVE; it logs the plug-to-ACTIVE time of each.
func (e *env) plugAll(h *host, ports []port, vms []*vmNS) {
	e.t.Helper()
	start := time.Now()
	for i, p := range ports {
		e.plug(p, h, vms[i])
	}
	for i, p := range ports {
		d := e.waitActive(p, start)
		e.t.Logf("port %s (%s in %s): plug to ACTIVE %s", p.id[:8], p.ip, vms[i].name, d.Round(time.Millisecond))
		vms[i].waitUp(e.t, p.id)
	}
}

// TestRouterBetweenNetworks (a): a VM on network A reaches a VM on
// network B through a router; then (c) a 10 ms probe survives the
// agent's restart without loss.
func TestRouterBetweenNetworks(t *testing.T) {
	e, h := oneNode(t)

	netA, netB := e.network("net-a", false), e.network("net-b", false)
	subA := e.subnet(netA, "10.1.0.0/24", nil)
	subB := e.subnet(netB, "10.2.0.0/24", nil)
	r := e.router("r1", "")
	pa, pb := e.port(netA, object{"name": "vm-a"}), e.port(netB, object{"name": "vm-b"})
	vmA, vmB := h.vm("vm-a"), h.vm("vm-b")
	e.plugAll(h, []port{pa, pb}, []*vmNS{vmA, vmB})

	// Probing starts right after the interfaces are added: the VM's first
	// ARP request for its gateway may go out before the router has it,
	// and the kernel retries after a second (retrans_time_ms), so the
	// first ping also measures that; the router's readiness in the kernel
	// is measured apart.
	ping := newPinger(t, vmA, pa.ip, pb.ip)
	ready := make(chan time.Time, 1)
	start := time.Now()
	e.addInterface(r, subA)
	second := time.Now()
	e.addInterface(r, subB)
	go func() { ready <- h.waitRouterAddrs(r, []string{"10.1.0.1", "10.2.0.1"}, reachTimeout) }()
	at, ok := ping.Reach(10*time.Millisecond, reachTimeout)
	if !ok {
		t.Fatalf("VM A (%s) cannot reach VM B (%s) through the router after %s", pa.ip, pb.ip, reachTimeout)
	}
	if rd := <-ready; !rd.IsZero() {
		t.Logf("router interfaces up with their addresses in the router namespace: %s after the first add_router_interface, %s after the second",
			rd.Sub(start).Round(time.Millisecond), rd.Sub(second).Round(time.Millisecond))
	}
	t.Logf("first ping A -> B through the router: %s after the first add_router_interface, %s after the second",
		at.Sub(start).Round(time.Millisecond), at.Sub(second).Round(time.Millisecond))
	back := newPinger(t, vmB, pb.ip, pa.ip)
	if _, ok := back.Reach(50*time.Millisecond, 3*time.Second); !ok {
		t.Fatalf("VM B cannot reach VM A")
	}

	t.Run("AgentRestart", func(t *testing.T) { testAgentRestart(t, e, h, r, ping) })
}

// testAgentRestart (c) probes A -> B every 10 ms while the agent stops
// and a fresh one starts over the same host and NetnsDir, and until the
// new agent has realised the router again; no probe may be lost.
func testAgentRestart(t *testing.T, e *env, h *host, routerID string, ping *pinger) {
	nc, err := e.srv.Bus().Connect(bus.ServerUser, bus.ServerToken(e.srv.Secret))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	reports := make(chan agentv1.StatusReport, 64)
	sub, err := nc.Subscribe(agentv1.StatusSubject(h.name), func(m *nats.Msg) {
		var r agentv1.StatusReport
		if json.Unmarshal(m.Data, &r) == nil {
			select {
			case reports <- r:
			default:
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	stop := make(chan struct{})
	sent := make(chan [2]uint16, 1)
	go func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		first := ping.Send()
		last := first
		for {
			select {
			case <-stop:
				sent <- [2]uint16{first, last}
				return
			case <-tick.C:
				last = ping.Send()
			}
		}
	}()
	stopped := false
	finish := func() (uint16, uint16) {
		if !stopped {
			stopped = true
			close(stop)
		}
		r := <-sent
		return r[0], r[1]
	}
	defer func() {
		if !stopped {
			finish()
		}
	}()

	time.Sleep(300 * time.Millisecond)
	before := h.linkIndexes(routerID)
	t0 := time.Now()
	h.stopAgent()
	t.Logf("agent stopped in %s", time.Since(t0).Round(time.Millisecond))
	time.Sleep(time.Second) // traffic flows without any agent
	for len(reports) > 0 {
		<-reports
	}
	restart := time.Now()
	h.resync = time.Second // the router's status is reported on the sync after its apply
	h.startAgent()
	// Until the new agent reports the router realised.
	deadline := time.After(15 * time.Second)
wait:
	for {
		select {
		case r := <-reports:
			if r.Routers[routerID].Status == "ACTIVE" {
				t.Logf("new agent reported the router ACTIVE %s after its start", time.Since(restart).Round(time.Millisecond))
				break wait
			}
		case <-deadline:
			t.Error("the new agent did not report the router ACTIVE within 15s")
			break wait
		}
	}
	time.Sleep(500 * time.Millisecond)
	first, last := finish()
	time.Sleep(300 * time.Millisecond) // late replies
	lost := ping.Lost(first, last)
	t.Logf("continuous probe: %d sent every 10ms, %d lost", int(last-first)+1, len(lost))

	// The new agent adopts the data plane: no device is re-created.
	after := h.linkIndexes(routerID)
	var changed []string
	for name, idx := range before {
		if after[name] != idx {
			changed = append(changed, name)
		}
	}
	slices.Sort(changed)
	if len(changed) > 0 {
		t.Errorf("devices re-created by the new agent: %v", changed)
	}
	if len(lost) > 0 {
		t.Errorf("probes lost across the agent restart: %v", lost)
	}
}

// linkIndexes returns the indexes of the devices Neutrino made on the
// host: in the host namespace, in the routers' namespaces (as
// "qrouter/NAME") and in the VMs (as "VM/NAME").
func (h *host) linkIndexes(routerIDs ...string) map[string]int {
	out := map[string]int{}
	links, _ := h.nl.LinkList()
	for _, l := range links {
		name := l.Attrs().Name
		for _, p := range []string{agentv1.BridgePrefix, agentv1.TapPrefix, agentv1.RouterTapPrefix, agentv1.VXLANPrefix} {
			if strings.HasPrefix(name, p) {
				out[name] = l.Attrs().Index
			}
		}
	}
	for _, r := range routerIDs {
		ns := h.routerNamespace(r, 0)
		if !ns.IsOpen() {
			continue
		}
		if nl, err := netlink.NewHandleAt(ns); err == nil {
			links, _ := nl.LinkList()
			for _, l := range links {
				if name := l.Attrs().Name; strings.HasPrefix(name, agentv1.InternalDevicePrefix) || strings.HasPrefix(name, agentv1.GatewayDevicePrefix) {
					out["qrouter/"+name] = l.Attrs().Index
				}
			}
			nl.Close()
		}
		ns.Close()
	}
	h.mu.Lock()
	vms := slices.Clone(h.vms)
	h.mu.Unlock()
	for _, v := range vms {
		if nl, err := netlink.NewHandleAt(v.ns); err == nil {
			links, _ := nl.LinkList()
			for _, l := range links {
				if strings.HasPrefix(l.Attrs().Name, l2.NamespacePortPrefix) {
					out[v.name+"/"+l.Attrs().Name] = l.Attrs().Index
				}
			}
			nl.Close()
		}
	}
	return out
}

// TestSNAT (b): a VM reaches an "outside" namespace on the external
// network through the router's SNAT, and the outside sees the router's
// gateway IP as the source, though it has no route to the tenant subnet;
// then (c) a 10 ms ping through SNAT survives the agent's restart.
func TestSNAT(t *testing.T) {
	e, h := oneNode(t)

	// The subnet's gateway, .254, is the outside's; it lives on a port
	// with another address (.253), as a VIP of the outside router.
	ext := e.network("public", true)
	extSub := e.subnet(ext, "203.0.113.0/24", object{"gateway_ip": "203.0.113.254",
		"allocation_pools": []any{object{"start": "203.0.113.2", "end": "203.0.113.200"}}})
	tenant := e.network("tenant", false)
	sub := e.subnet(tenant, "10.0.0.0/24", nil)
	r := e.router("r1", ext)
	e.addInterface(r, sub)
	gw := e.get("router", r)["external_gateway_info"].(map[string]any)
	gwIP := gw["external_fixed_ips"].([]any)[0].(map[string]any)["ip_address"].(string)

	vmPort := e.port(tenant, object{"name": "vm"})
	outPort := e.port(ext, object{"name": "outside", "port_security_enabled": false,
		"fixed_ips": []any{object{"subnet_id": extSub, "ip_address": "203.0.113.253"}}})
	vm, outside := h.vm("vm"), h.vm("outside")
	e.plugAll(h, []port{vmPort, outPort}, []*vmNS{vm, outside})

	// The outside: the gateway address, an address beyond it on lo, and
	// no default route (the port's is via its own gateway address).
	outside.addAddr(t, outPort.id, "203.0.113.254/24")
	oh := outside.handle(t)
	defer oh.Close()
	lo, err := oh.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := oh.AddrAdd(lo, &netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP("198.51.100.1").To4(), Mask: net.CIDRMask(32, 32)}}); err != nil {
		t.Fatal(err)
	}
	routes, err := oh.RouteList(nil, unix.AF_INET)
	if err != nil {
		t.Fatal(err)
	}
	for _, rt := range routes {
		if rt.Dst == nil || rt.Dst.IP.IsUnspecified() {
			if err := oh.RouteDel(&rt); err != nil {
				t.Fatalf("outside: delete default route: %v", err)
			}
		}
	}
	if _, err := oh.RouteGet(net.ParseIP(vmPort.ip)); err == nil {
		t.Fatalf("the outside has a route to the VM %s", vmPort.ip)
	}
	udpEcho(t, outside, "203.0.113.253:7777")
	udpEcho(t, outside, "198.51.100.1:7777")

	for _, dst := range []string{"203.0.113.253", "198.51.100.1"} {
		start := time.Now()
		src, ok := udpProbe(t, vm, dst+":7777", 50*time.Millisecond, reachTimeout)
		if !ok {
			t.Errorf("VM %s: no answer from the outside %s within %s", vmPort.ip, dst, reachTimeout)
			continue
		}
		t.Logf("VM -> outside %s: answered after %s, source seen %s", dst, time.Since(start).Round(time.Millisecond), src)
		if src != gwIP {
			t.Errorf("the outside %s saw source %s, want the router's gateway IP %s", dst, src, gwIP)
		}
	}
	// ICMP too, to the address beyond the gateway.
	ping := newPinger(t, vm, vmPort.ip, "198.51.100.1")
	if _, ok := ping.Reach(50*time.Millisecond, 3*time.Second); !ok {
		t.Fatal("VM cannot ping 198.51.100.1 beyond the external gateway")
	}
	// (c) with SNAT: the translated flow survives an agent restart.
	t.Run("AgentRestart", func(t *testing.T) { testAgentRestart(t, e, h, r, ping) })
}

// TestPortSecurity (f): a VM's spoofed source address is dropped; it
// passes once an allowed address pair, and with port security off.
func TestPortSecurity(t *testing.T) {
	e, h := oneNode(t)

	n := e.network("net", false)
	e.subnet(n, "10.0.0.0/24", nil)
	// A group open to the subnet: what is tested here is anti-spoofing.
	open := e.create("security_group", object{"name": "open"})["id"].(string)
	e.allowIngress(open, "10.0.0.0/24")
	pa := e.port(n, object{"name": "vm-a", "security_groups": []any{open}})
	pb := e.port(n, object{"name": "vm-b", "security_groups": []any{open}})
	vmA, vmB := h.vm("vm-a"), h.vm("vm-b")
	e.plugAll(h, []port{pa, pb}, []*vmNS{vmA, vmB})

	if _, ok := newPinger(t, vmA, pa.ip, pb.ip).Reach(20*time.Millisecond, reachTimeout); !ok {
		t.Fatalf("VM A cannot reach VM B from its fixed IP")
	}
	const spoofed = "10.0.0.250"
	vmA.addAddr(t, pa.id, spoofed+"/24")
	ping := newPinger(t, vmA, spoofed, pb.ip)
	if !ping.Silent(100*time.Millisecond, time.Second) {
		t.Fatalf("a reply to a spoofed source %s, want it dropped", spoofed)
	}

	start := time.Now()
	e.update("port", pa.id, object{"allowed_address_pairs": []any{object{"ip_address": spoofed}}})
	if at, ok := ping.Reach(20*time.Millisecond, reachTimeout); !ok {
		t.Fatalf("%s as an allowed address pair: still dropped after %s", spoofed, reachTimeout)
	} else {
		t.Logf("allowed address pair: passes %s after the update", at.Sub(start).Round(time.Millisecond))
	}

	e.update("port", pa.id, object{"allowed_address_pairs": []any{}})
	dropped := false
	for deadline := time.Now().Add(reachTimeout); !dropped && time.Now().Before(deadline); {
		dropped = ping.Silent(50*time.Millisecond, 500*time.Millisecond)
	}
	if !dropped {
		t.Fatalf("allowed address pair removed: %s still passes after %s", spoofed, reachTimeout)
	}

	start = time.Now()
	e.update("port", pa.id, object{"port_security_enabled": false, "security_groups": []any{}})
	if at, ok := ping.Reach(20*time.Millisecond, reachTimeout); !ok {
		t.Fatalf("port security off: %s still dropped after %s", spoofed, reachTimeout)
	} else {
		t.Logf("port security off: spoofed source passes %s after the update", at.Sub(start).Round(time.Millisecond))
	}
	// A MAC other than the port's passes too now.
	if got := e.get("port", pa.id); got["port_security_enabled"] != false {
		t.Errorf("port_security_enabled = %v", got["port_security_enabled"])
	}
}

// TestDeleteLeavesNothing (d): once everything is deleted through the API
// the host holds no Neutrino namespace, link or nftables table.
func TestDeleteLeavesNothing(t *testing.T) {
	e, h := oneNode(t)

	ext := e.network("public", true)
	e.subnet(ext, "203.0.113.0/24", nil)
	netA, netB := e.network("a", false), e.network("b", false)
	subA := e.subnet(netA, "10.1.0.0/24", nil)
	subB := e.subnet(netB, "10.2.0.0/24", nil)
	r := e.router("r1", ext)
	e.addInterface(r, subA)
	e.addInterface(r, subB)
	pa, pb := e.port(netA, nil), e.port(netB, nil)
	vmA, vmB := h.vm("vm-a"), h.vm("vm-b")
	e.plugAll(h, []port{pa, pb}, []*vmNS{vmA, vmB})

	// Everything is in place before deleting.
	want := []string{
		"namespace " + agentv1.RouterNamespace(r),
		"link " + agentv1.DeviceName(agentv1.BridgePrefix, ext),
		"link " + agentv1.DeviceName(agentv1.BridgePrefix, netA),
		"link " + agentv1.DeviceName(agentv1.BridgePrefix, netB),
		"link " + agentv1.DeviceName(agentv1.TapPrefix, pa.id),
		"link " + agentv1.RouterTapPrefix, // a router port's host end
		"nftables table " + l2.TableName,
	}
	var left []string
	for deadline := time.Now().Add(reachTimeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		left = h.leftovers()
		if containsAll(left, want) && h.routerDevices(r) == 3 {
			break
		}
	}
	if !containsAll(left, want) || h.routerDevices(r) != 3 {
		t.Fatalf("topology not realised: have\n  %s\nwant at least\n  %s\nand 3 router devices, have %d",
			strings.Join(left, "\n  "), strings.Join(want, "\n  "), h.routerDevices(r))
	}
	t.Logf("before deletion:\n  %s", strings.Join(left, "\n  "))
	e.teardown()
}

// waitRouterAddrs polls until the router's namespace has the addresses on
// devices that are up, and returns when (zero after the timeout).
func (h *host) waitRouterAddrs(routerID string, addrs []string, timeout time.Duration) time.Time {
	deadline := time.Now().Add(timeout)
	ns := h.routerNamespace(routerID, timeout)
	if !ns.IsOpen() {
		return time.Time{}
	}
	defer ns.Close()
	nl, err := netlink.NewHandleAt(ns)
	if err != nil {
		return time.Time{}
	}
	defer nl.Close()
	for ; time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		have, err := nl.AddrList(nil, unix.AF_INET)
		if err != nil {
			continue
		}
		n := 0
		for _, want := range addrs {
			for _, a := range have {
				if a.IP.String() != want {
					continue
				}
				if l, err := nl.LinkByIndex(a.LinkIndex); err == nil && l.Attrs().OperState == netlink.OperUp {
					n++
				}
				break
			}
		}
		if n == len(addrs) {
			return time.Now()
		}
	}
	return time.Time{}
}

// TestDeleteAllAtOnce deletes a router and its networks in one go, as a
// stack teardown does, without waiting for the agent in between, and
// checks nothing is left. It exposes a race: the agent's router worker,
// still applying the router's previous state, re-creates (in l3's
// ensureBridge) a bridge the L2 layer has just deleted; nobody deletes it
// until the agent restarts. Twenty rounds catch it almost always.
func TestDeleteAllAtOnce(t *testing.T) {
	e := newEnv(t)
	e.fast = true
	h := e.newHost("node-1", netip.MustParseAddr("192.0.2.1"))
	h.startAgent()
	h.waitRegistered()
	for round := 1; round <= 20; round++ {
		ext := e.network("public", true)
		e.subnet(ext, "203.0.113.0/24", nil)
		n := e.network("a", false)
		sn := e.subnet(n, "10.1.0.0/24", nil)
		r := e.router("r1", ext)
		e.addInterface(r, sn)
		for deadline := time.Now().Add(reachTimeout); h.routerDevices(r) != 2; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: router not realised", round)
			}
		}
		e.deleteAll()
		var left []string
		for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if left = h.leftovers(); len(left) == 0 {
				break
			}
		}
		if len(left) == 0 {
			continue
		}
		// Remove the leftovers, so the cleanup finds the host clean.
		onlyBridges := true
		for _, l := range left {
			name, isBridge := strings.CutSuffix(strings.TrimPrefix(l, "link "), " (bridge)")
			if !isBridge || !strings.HasPrefix(l, "link "+agentv1.BridgePrefix) {
				onlyBridges = false
				continue
			}
			if br, err := h.nl.LinkByName(name); err == nil {
				_ = h.nl.LinkDel(br)
			}
		}
		msg := fmt.Sprintf("round %d: 3s after deleting a router and its networks at once, left:\n  %s", round, strings.Join(left, "\n  "))
		if onlyBridges {
			t.Fatalf("a router worker applying the router's previous state re-created a bridge L2 had just deleted: %s", msg)
		}
		t.Fatal(msg)
	}
}

// routerDevices counts the qr-/qg- devices in a router's namespace.
func (h *host) routerDevices(routerID string) int {
	ns := h.routerNamespace(routerID, 0)
	if !ns.IsOpen() {
		return 0
	}
	defer ns.Close()
	nl, err := netlink.NewHandleAt(ns)
	if err != nil {
		return 0
	}
	defer nl.Close()
	links, _ := nl.LinkList()
	n := 0
	for _, l := range links {
		if name := l.Attrs().Name; strings.HasPrefix(name, agentv1.InternalDevicePrefix) || strings.HasPrefix(name, agentv1.GatewayDevicePrefix) {
			n++
		}
	}
	return n
}

func containsAll(have, want []string) bool {
	for _, w := range want {
		found := false
		for _, h := range have {
			if strings.HasPrefix(h, w) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// TestVXLANTwoHosts (e): two hosts joined by an underlay veth, one tenant
// network with a VM on each; the VMs reach each other over VXLAN.
func TestVXLANTwoHosts(t *testing.T) {
	e := newEnv(t)
	ip1, ip2 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	h1, h2 := e.newHost("node-1", ip1), e.newHost("node-2", ip2)
	if err := h1.nl.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "ul0"}, PeerName: "ul0",
		PeerNamespace: netlink.NsFd(h2.ns)}); err != nil {
		t.Fatalf("underlay veth: %v", err)
	}
	for _, x := range []struct {
		h  *host
		ip netip.Addr
	}{{h1, ip1}, {h2, ip2}} {
		ul, err := x.h.nl.LinkByName("ul0")
		if err != nil {
			t.Fatal(err)
		}
		if err := x.h.nl.AddrAdd(ul, &netlink.Addr{IPNet: &net.IPNet{IP: x.ip.AsSlice(), Mask: net.CIDRMask(24, 32)}}); err != nil {
			t.Fatal(err)
		}
		if err := x.h.nl.LinkSetUp(ul); err != nil {
			t.Fatal(err)
		}
	}
	h1.startAgent()
	h2.startAgent()
	h1.waitRegistered()
	h2.waitRegistered()

	n := e.network("net", false)
	e.subnet(n, "10.0.0.0/24", nil)
	p1, p2 := e.port(n, object{"name": "vm-1"}), e.port(n, object{"name": "vm-2"})
	vm1, vm2 := h1.vm("vm-1"), h2.vm("vm-2")
	start := time.Now()
	e.plug(p1, h1, vm1)
	e.plug(p2, h2, vm2)
	for _, x := range []struct {
		p  port
		vm *vmNS
	}{{p1, vm1}, {p2, vm2}} {
		t.Logf("port %s on %s: plug to ACTIVE %s", x.p.ip, x.vm.name, e.waitActive(x.p, start).Round(time.Millisecond))
		x.vm.waitUp(t, x.p.id)
	}
	at, ok := newPinger(t, vm1, p1.ip, p2.ip).Reach(10*time.Millisecond, reachTimeout)
	if !ok {
		t.Fatalf("VM 1 (%s, node-1) cannot reach VM 2 (%s, node-2) over VXLAN", p1.ip, p2.ip)
	}
	t.Logf("VXLAN: first ping %s after plugging", at.Sub(start).Round(time.Millisecond))
	if _, ok := newPinger(t, vm2, p2.ip, p1.ip).Reach(50*time.Millisecond, 3*time.Second); !ok {
		t.Fatal("VM 2 cannot reach VM 1 over VXLAN")
	}
	for _, h := range []*host{h1, h2} {
		if l, err := h.nl.LinkByName(agentv1.DeviceName(agentv1.VXLANPrefix, n)); err != nil {
			t.Errorf("%s: no VXLAN device: %v", h.name, err)
		} else if vx, ok := l.(*netlink.Vxlan); !ok || vx.VxlanId == 0 {
			t.Errorf("%s: VXLAN device %+v", h.name, l)
		}
	}
}

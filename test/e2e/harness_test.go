// Package e2e_test runs Neutrino end to end: a real server (API, store,
// embedded bus and control) and real agents over the kernel data plane,
// with network namespaces standing in for hypervisors and VMs. Everything
// is driven through the Networking API.
//
// Each test builds its own throw-away "host" namespaces, each with a
// private NetnsDir, so nothing touches the machine's own interfaces or
// /var/run/netns. The tests need root and the kernel features they use
// (internal/testenv): without them they fail under CI=true and skip,
// saying why, elsewhere.
package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/neutrino-net/neutrino/internal/agent"
	"github.com/neutrino-net/neutrino/internal/agent/l2"
	"github.com/neutrino-net/neutrino/internal/agent/node"
	"github.com/neutrino-net/neutrino/internal/ipsec/strongswan"
	"github.com/neutrino-net/neutrino/internal/namespace"
	"github.com/neutrino-net/neutrino/internal/nstest"
	"github.com/neutrino-net/neutrino/internal/servertest"
	"github.com/neutrino-net/neutrino/internal/service"
	"github.com/neutrino-net/neutrino/internal/testenv"
	"github.com/neutrino-net/neutrino/internal/vmlab"
)

// Bounds of the waits, three times longer in the full-kernel lab, whose
// emulated CPU is far slower.
var (
	activeTimeout  = labSlack(15 * time.Second) // a plugged port becomes ACTIVE
	reachTimeout   = labSlack(15 * time.Second) // a path works once configured
	cleanupTimeout = labSlack(15 * time.Second) // the data plane is clean after deletion
)

func labSlack(d time.Duration) time.Duration {
	if vmlab.Inside() {
		return 3 * d
	}
	return d
}

// dataPlane is the IPsec data plane the agents use, detected once.
var dataPlane, dataPlaneWhy = strongswan.DetectDataPlane()

// env is one server and the hosts of one test.
type env struct {
	t    testing.TB
	api  string
	srv  *servertest.Server
	logs *testenv.LogBuffer
	log  *slog.Logger

	mu    sync.Mutex
	undo  []undoStep // API deletions, run in reverse
	hosts []*host
	torn  bool
	// fast deletes everything at once, without waiting for routers to go
	// before their networks.
	fast bool
}

type undoStep struct {
	what string
	fn   func() error
}

// newEnv starts a server with an embedded bus on 127.0.0.1. Its cleanup,
// registered once, runs in order: API deletions, the check that the data
// plane is clean, agents stopped, namespaces removed, server stopped.
func newEnv(t testing.TB) *env {
	t.Helper()
	return newEnvTuned(t, nil)
}

// newEnvTuned is newEnv with tune adjusting the service's options.
func newEnvTuned(t testing.TB, tune func(*service.Options)) *env {
	t.Helper()
	testenv.RequireKernel(t, testenv.Bridge, testenv.Veth, testenv.VXLAN, testenv.NFTNAT, testenv.Mounting)
	_ = t.TempDir() // registers the removal of the temp root before our cleanup, so it runs after
	logs := &testenv.LogBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e := &env{t: t, logs: logs, log: log}
	// Started first, so it stops after this test's own cleanup below.
	e.srv = servertest.Start(t, servertest.Options{Logger: log,
		Service: func(o *service.Options) {
			o.AgentDownTime = 10 * time.Second
			if tune != nil {
				tune(o)
			}
		}})
	e.api = e.srv.URL
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("NEUTRINO_E2E_LOGS") != "" {
			e.daemonLogs() // before the deletions remove them
		}
		e.teardown()
		e.mu.Lock()
		hosts := slices.Clone(e.hosts)
		e.mu.Unlock()
		for _, h := range hosts {
			h.stopAgent()
		}
		for _, h := range hosts {
			h.removeAll()
		}
		if t.Failed() || os.Getenv("NEUTRINO_E2E_LOGS") != "" {
			t.Logf("server and agent logs:\n%s", logs.String())
		}
	})
	return e
}

// daemonLogs logs every router's IKE daemon log.
func (e *env) daemonLogs() {
	e.mu.Lock()
	hosts := slices.Clone(e.hosts)
	e.mu.Unlock()
	for _, h := range hosts {
		logs, _ := filepath.Glob(filepath.Join(h.state, "ipsec", "*", strongswan.LogFile))
		for _, l := range logs {
			data, _ := os.ReadFile(l)
			e.t.Logf("host %s: %s:\n%s", h.name, l, data)
		}
	}
}

// ---- the Networking API ----

type object = map[string]any

// do sends an admin request; it returns the status and the body.
func (e *env) do(method, path string, body any) (int, []byte, error) {
	return servertest.Client{URL: e.api}.Do(method, path, body)
}

// call sends an admin request, fails the test unless the status is want,
// and returns the decoded body (nil when empty).
func (e *env) call(method, path string, body any, want int) object {
	e.t.Helper()
	out, err := servertest.Client{URL: e.api}.Try(method, path, body, want)
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// deleteCall is an undo step: success or already gone.
func (e *env) deleteCall(method, path string, body any) func() error {
	return func() error { return servertest.Client{URL: e.api}.Gone(method, path, body) }
}

func (e *env) pushUndo(what string, fn func() error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.undo = append(e.undo, undoStep{what, fn})
}

// create POSTs a resource, remembers its deletion and returns it.
func (e *env) create(kind string, attrs object) object {
	e.t.Helper()
	obj, err := servertest.Client{URL: e.api}.TryCreate(kind, attrs)
	if err != nil {
		e.t.Fatal(err)
	}
	e.pushUndo("delete "+kind+" "+obj["id"].(string), e.deleteCall("DELETE", servertest.Collection(kind)+"/"+obj["id"].(string), nil))
	return obj
}

func (e *env) get(kind, id string) object {
	e.t.Helper()
	out := e.call("GET", servertest.Collection(kind)+"/"+id, nil, http.StatusOK)
	obj, _ := out[kind].(map[string]any)
	return obj
}

func (e *env) update(kind, id string, attrs object) object {
	e.t.Helper()
	out := e.call("PUT", servertest.Collection(kind)+"/"+id, object{kind: attrs}, http.StatusOK)
	obj, _ := out[kind].(map[string]any)
	return obj
}

// defaultGroup returns the id of the project's default security group
// (the API creates it with the project's first port or group listing).
func (e *env) defaultGroup() string {
	e.t.Helper()
	out := e.call("GET", "/v2.0/security-groups?name=default", nil, http.StatusOK)
	groups, _ := out["security_groups"].([]any)
	if len(groups) != 1 {
		e.t.Fatalf("default security groups: %v", out)
	}
	return groups[0].(map[string]any)["id"].(string)
}

// allowIngress adds rules to a security group that let ICMP, TCP and UDP
// in from cidr (IPv4 or IPv6), as a user opens a VM to the world.
func (e *env) allowIngress(group, cidr string) {
	e.t.Helper()
	eth, icmp := "IPv4", "icmp"
	if strings.Contains(cidr, ":") {
		eth, icmp = "IPv6", "ipv6-icmp"
	}
	for _, proto := range []string{icmp, "tcp", "udp"} {
		e.create("security_group_rule", object{"security_group_id": group, "direction": "ingress",
			"ethertype": eth, "protocol": proto, "remote_ip_prefix": cidr})
	}
}

func (e *env) network(name string, external bool) string {
	e.t.Helper()
	attrs := object{"name": name}
	if external {
		attrs["router:external"] = true
	}
	return e.create("network", attrs)["id"].(string)
}

func (e *env) subnet(networkID, cidr string, extra object) string {
	e.t.Helper()
	attrs := object{"network_id": networkID, "ip_version": 4, "cidr": cidr}
	for k, v := range extra {
		attrs[k] = v
	}
	return e.create("subnet", attrs)["id"].(string)
}

func (e *env) router(name, extNetwork string) string {
	e.t.Helper()
	attrs := object{"name": name}
	if extNetwork != "" {
		attrs["external_gateway_info"] = object{"network_id": extNetwork}
	}
	id := e.create("router", attrs)["id"].(string)
	// Unless told not to, the deletion waits until the agents removed the
	// router before the networks go: an agent still applying the router
	// while its networks' bridges are deleted re-creates a bridge nobody
	// deletes afterwards (TestDeleteAllAtOnce).
	e.mu.Lock()
	last := &e.undo[len(e.undo)-1]
	del := last.fn
	last.fn = func() error {
		if err := del(); err != nil {
			return err
		}
		if e.fast {
			return nil
		}
		return e.waitRouterGone(id)
	}
	e.mu.Unlock()
	return id
}

// waitRouterGone waits until no host has the router's namespace.
func (e *env) waitRouterGone(id string) error {
	e.mu.Lock()
	hosts := slices.Clone(e.hosts)
	e.mu.Unlock()
	for _, h := range hosts {
		path := filepath.Join(h.dir, agentv1.RouterNamespace(id))
		for deadline := time.Now().Add(cleanupTimeout); ; time.Sleep(10 * time.Millisecond) {
			if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("router %s deleted, but its namespace is still on %s after %s", id, h.name, cleanupTimeout)
			}
		}
	}
	return nil
}

// addInterface adds a subnet to a router and remembers its removal.
func (e *env) addInterface(routerID, subnetID string) {
	e.t.Helper()
	body := object{"subnet_id": subnetID}
	e.call("PUT", "/v2.0/routers/"+routerID+"/add_router_interface", body, http.StatusOK)
	e.pushUndo("remove interface "+subnetID+" of router "+routerID,
		e.deleteCall("PUT", "/v2.0/routers/"+routerID+"/remove_router_interface", body))
}

// port is a VM port: its id and first fixed IP.
type port struct {
	id, ip, mac string
}

func (e *env) port(networkID string, extra object) port {
	e.t.Helper()
	attrs := object{"network_id": networkID}
	for k, v := range extra {
		attrs[k] = v
	}
	p := e.create("port", attrs)
	return port{id: p["id"].(string), ip: firstIP(e.t, p), mac: p["mac_address"].(string)}
}

func firstIP(t testing.TB, p object) string {
	t.Helper()
	ips, _ := p["fixed_ips"].([]any)
	if len(ips) == 0 {
		t.Fatalf("port %v has no fixed IP", p["id"])
	}
	return ips[0].(map[string]any)["ip_address"].(string)
}

// plug binds a port to a host with its VIF in a VM namespace, as
// `neutrino port plug` does.
func (e *env) plug(p port, h *host, vm *vmNS) {
	e.t.Helper()
	e.update("port", p.id, object{"binding:host_id": h.name, "binding:profile": object{"netns": vm.name}})
}

// waitActive polls until the port is ACTIVE and returns how long it took.
func (e *env) waitActive(p port, since time.Time) time.Duration {
	e.t.Helper()
	deadline := time.Now().Add(activeTimeout)
	for {
		got := e.get("port", p.id)
		if got["status"] == "ACTIVE" {
			return time.Since(since)
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("port %s not ACTIVE after %s: status %v, binding:vif_type %v", p.id, activeTimeout, got["status"], got["binding:vif_type"])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// teardown deletes everything the test created through the API, newest
// first, then checks that every host's data plane is clean. It runs once:
// from the test body, or else from the cleanup. Failures are errors, and
// everything is still attempted.
func (e *env) teardown() {
	e.mu.Lock()
	if e.torn {
		e.mu.Unlock()
		return
	}
	e.torn = true
	hosts := slices.Clone(e.hosts)
	e.mu.Unlock()
	e.deleteAll()
	for _, h := range hosts {
		if h.agentRunning() {
			h.waitClean()
		}
	}
}

// deleteAll deletes what the test created through the API, newest first.
func (e *env) deleteAll() {
	e.mu.Lock()
	undo := e.undo
	e.undo = nil
	e.mu.Unlock()
	for i := len(undo) - 1; i >= 0; i-- {
		if err := undo[i].fn(); err != nil {
			e.t.Errorf("delete: %s: %v", undo[i].what, err)
		}
	}
}

// ---- namespaces ----

// vmNS is a named namespace in a host's NetnsDir: a VM.
type vmNS struct {
	name, path string
	ns         netns.NsHandle
}

// ---- hosts and agents ----

// host is one simulated hypervisor: an unnamed namespace (its "root"),
// its NetnsDir, and an agent whose netlink handles point into it.
type host struct {
	e        *env
	name     string
	ns       netns.NsHandle
	nl       *netlink.Handle
	dir      string
	rmDir    func()
	underlay netip.Addr
	// resync is the agent's full-resync period (default 5s).
	resync time.Duration
	// state is the agent's state dir (IKE daemons); it outlives restarts.
	state string
	// vpn is the running agent's strongSwan driver (nil without charon).
	vpn *strongswan.Driver
	// mappings are the agent's physical interface mappings.
	mappings map[string]string

	mu      sync.Mutex
	vms     []*vmNS
	cancel  context.CancelFunc
	done    chan error
	closeDP func()
}

// newHost makes a host namespace and its NetnsDir; startAgent runs its
// agent.
func (e *env) newHost(name string, underlay netip.Addr) *host {
	e.t.Helper()
	dir, rm := nstest.Dir(e.t, "neutrino-e2e")
	ns, err := namespace.New()
	if err != nil {
		rm()
		e.t.Fatalf("cannot create a network namespace: %v", err)
	}
	h := &host{e: e, name: name, ns: ns, dir: dir, rmDir: rm, underlay: underlay, state: e.t.TempDir()}
	e.mu.Lock()
	e.hosts = append(e.hosts, h)
	e.mu.Unlock()
	if h.nl, err = netlink.NewHandleAt(ns); err != nil {
		e.t.Fatal(err)
	}
	lo, err := h.nl.LinkByName("lo")
	if err == nil {
		err = h.nl.LinkSetUp(lo)
	}
	if err != nil {
		e.t.Fatalf("host %s: lo up: %v", name, err)
	}
	return h
}

// startAgent builds an agent as cmd/neutrino does (package node), over
// this host's namespace, NetnsDir and state dir, and runs it.
func (h *host) startAgent() {
	t := h.e.t
	t.Helper()
	resync := h.resync
	if resync == 0 {
		resync = 5 * time.Second
	}
	n, err := node.New(node.Options{Endpoint: agent.Endpoint{Host: h.name, BusURL: h.e.srv.BusURL(),
		Token: h.e.srv.AgentToken(h.name), UnderlayIP: h.underlay}, HostNS: h.ns, NetnsDir: h.dir, StateDir: h.state, DataPlane: dataPlane,
		PhysicalInterfaceMappings: h.mappings, Heartbeat: 500 * time.Millisecond, Resync: resync, Logger: h.e.log.With("host", h.name)})
	if err != nil {
		t.Fatalf("agent: %v", err)
	}
	a := n.Agent
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	h.mu.Lock()
	h.cancel, h.done, h.closeDP = cancel, done, n.Close
	h.vpn = n.VPN
	h.mu.Unlock()
}

func (h *host) agentRunning() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cancel != nil
}

// oneNode starts a server and one host, node-1 (192.0.2.1), with its
// agent registered.
func oneNode(t testing.TB) (*env, *host) {
	t.Helper()
	e := newEnv(t)
	h := e.newHost("node-1", netip.MustParseAddr("192.0.2.1"))
	h.startAgent()
	h.waitRegistered()
	return e, h
}

// stopAgent stops the agent (bounded) and releases its handles; the data
// plane stays as it is.
func (h *host) stopAgent() {
	h.mu.Lock()
	cancel, done, closeDP := h.cancel, h.done, h.closeDP
	h.cancel, h.done, h.closeDP = nil, nil, nil
	h.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			h.e.t.Errorf("agent %s: %v", h.name, err)
		}
	case <-time.After(10 * time.Second):
		h.e.t.Errorf("agent %s did not stop within 10s", h.name)
	}
	closeDP()
}

// vm makes a VM namespace in the host's NetnsDir, as `ip netns add` would.
func (h *host) vm(name string) *vmNS {
	h.e.t.Helper()
	ns, path := nstest.VM(h.e.t, h.dir, name)
	v := &vmNS{name: name, path: path, ns: ns}
	h.mu.Lock()
	h.vms = append(h.vms, v)
	h.mu.Unlock()
	return v
}

// removeAll removes the VM namespaces and whatever is left in the
// NetnsDir (e.g. router namespaces an agent failed to delete), then the
// host namespace. The kernel destroys namespaces, and their links, when
// the last reference goes.
func (h *host) removeAll() {
	h.mu.Lock()
	vms := h.vms
	h.vms = nil
	h.mu.Unlock()
	for _, v := range vms {
		v.ns.Close()
	}
	nstest.Clear(h.dir)
	if h.nl != nil {
		h.nl.Close()
	}
	h.ns.Close()
	h.rmDir()
}

// ---- the data plane as the tests see it ----

// handle opens a netlink handle in a VM namespace.
func (v *vmNS) handle(t testing.TB) *netlink.Handle {
	t.Helper()
	h, err := netlink.NewHandleAt(v.ns)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// dev returns the VM's device of a port, or nil.
func (v *vmNS) dev(t testing.TB, portID string) netlink.Link {
	t.Helper()
	h := v.handle(t)
	defer h.Close()
	l, err := h.LinkByName(agentv1.DeviceName(l2.NamespacePortPrefix, portID))
	if err != nil {
		return nil
	}
	return l
}

// waitUp waits until the VM's device of a port is operationally up.
func (v *vmNS) waitUp(t testing.TB, portID string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if l := v.dev(t, portID); l != nil && l.Attrs().OperState == netlink.OperUp {
			return
		}
	}
	t.Fatalf("VM %s: device of port %s not operationally up after 5s", v.name, portID)
}

// addAddr adds an address in the VM, as its workload would.
func (v *vmNS) addAddr(t testing.TB, portID, prefix string) {
	t.Helper()
	h := v.handle(t)
	defer h.Close()
	l, err := h.LinkByName(agentv1.DeviceName(l2.NamespacePortPrefix, portID))
	if err != nil {
		t.Fatalf("VM %s: %v", v.name, err)
	}
	p := netip.MustParsePrefix(prefix)
	a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
	if err := h.AddrAdd(l, a); err != nil {
		t.Fatalf("VM %s: addr add %s: %v", v.name, prefix, err)
	}
}

// leftovers lists what Neutrino owns and is still on the host: links in
// the host namespace, namespaces in the NetnsDir, nftables tables, and
// port devices in the VMs.
func (h *host) leftovers() []string {
	var left []string
	links, err := h.nl.LinkList()
	if err != nil {
		return []string{"list links: " + err.Error()}
	}
	for _, l := range links {
		name := l.Attrs().Name
		for _, p := range []string{agentv1.BridgePrefix, agentv1.TapPrefix, agentv1.RouterTapPrefix, agentv1.VXLANPrefix,
			agentv1.InternalDevicePrefix, agentv1.GatewayDevicePrefix, l2.SubportBPFPrefix} {
			if strings.HasPrefix(name, p) {
				left = append(left, "link "+name+" ("+l.Type()+")")
				break
			}
		}
		// The eBPF trunk datapath's programs, on any device (a VM's tap
		// stays when its port goes).
		filters, _ := h.nl.FilterList(l, netlink.HANDLE_MIN_INGRESS)
		for _, f := range filters {
			if b, ok := f.(*netlink.BpfFilter); ok && strings.HasPrefix(b.Name, "neutrino-") {
				left = append(left, "tc filter "+b.Name+" on "+name)
			}
		}
	}
	entries, err := os.ReadDir(h.dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		left = append(left, "read "+h.dir+": "+err.Error())
	}
	for _, ent := range entries {
		if strings.HasPrefix(ent.Name(), agentv1.RouterNamespacePrefix) || strings.HasPrefix(ent.Name(), agentv1.DHCPNamespacePrefix) {
			left = append(left, "namespace "+ent.Name())
		}
	}
	dhcpDirs, _ := os.ReadDir(filepath.Join(h.state, "dhcp"))
	for _, ent := range dhcpDirs {
		left = append(left, "DHCP server state of network "+ent.Name())
	}
	vpnDirs, _ := os.ReadDir(filepath.Join(h.state, "ipsec"))
	for _, ent := range vpnDirs {
		left = append(left, "IKE daemon state of router "+ent.Name())
	}
	c, err := nftables.New(nftables.WithNetNSFd(int(h.ns)))
	if err != nil {
		return append(left, "nftables: "+err.Error())
	}
	tables, err := c.ListTables()
	if err != nil {
		left = append(left, "list nftables tables: "+err.Error())
	}
	for _, tb := range tables {
		if strings.HasPrefix(tb.Name, "neutrino") {
			left = append(left, fmt.Sprintf("nftables table %s (family %d)", tb.Name, tb.Family))
		}
	}
	h.mu.Lock()
	vms := slices.Clone(h.vms)
	h.mu.Unlock()
	for _, v := range vms {
		vh, err := netlink.NewHandleAt(v.ns)
		if err != nil {
			continue
		}
		links, _ := vh.LinkList()
		vh.Close()
		for _, l := range links {
			if strings.HasPrefix(l.Attrs().Name, l2.NamespacePortPrefix) {
				left = append(left, "VM "+v.name+" device "+l.Attrs().Name)
			}
		}
	}
	slices.Sort(left)
	return left
}

// waitClean polls until nothing Neutrino owns is left on the host.
func (h *host) waitClean() {
	h.e.t.Helper()
	start := time.Now()
	var left []string
	for deadline := start.Add(cleanupTimeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if left = h.leftovers(); len(left) == 0 {
			h.e.t.Logf("host %s: data plane clean %s after the API deletions", h.name, time.Since(start).Round(time.Millisecond))
			return
		}
	}
	h.e.t.Errorf("host %s: %s after deleting everything through the API, still left:\n  %s",
		h.name, cleanupTimeout, strings.Join(left, "\n  "))
}

// routerNamespace returns the router's namespace on the host, once the
// agent made it (nil after the timeout).
func (h *host) routerNamespace(routerID string, timeout time.Duration) netns.NsHandle {
	for deadline := time.Now().Add(timeout); ; time.Sleep(20 * time.Millisecond) {
		if ns, err := netns.GetFromPath(filepath.Join(h.dir, agentv1.RouterNamespace(routerID))); err == nil {
			return ns
		}
		if !time.Now().Before(deadline) {
			return netns.None()
		}
	}
}

package bench_test

// The agent benchmarks run a real server (SQLite store, HTTP API, embedded
// bus and control) and the real agent over the kernel data plane (l2, l3,
// built as cmd/neutrino builds them) in a throw-away "host" network
// namespace with a private NetnsDir; nothing touches the machine's own
// namespace or /var/run/netns. They need root and the kernel features
// they use (internal/testenv): without them they fail under CI=true and
// skip, saying why, elsewhere. Everything is driven
// through the Networking API, and removed again at the end (routers
// deleted through the API, their namespaces awaited, then the host
// namespace dropped), on failure too.
//
//	go test -run '^$' -bench AgentResync -benchtime=1x ./test/bench/
//	go test -run '^$' -bench InterfaceToPing -benchtime=5x ./test/bench/
//
// BenchmarkAgentResync creates resyncRouters routers, each with a gateway
// on one shared external /16 and an interface on a tenant network of its
// own, then starts the agent and reports
//   - cold-s: from agent start until every router's first successful
//     L3 Apply (a decorator of the real L3 records it), after which the
//     kernel state is checked (a namespace per router with its qr- and
//     qg- devices);
//   - resync-s: per iteration the agent is stopped and a fresh one (new
//     l2 and l3 over the same host namespace and NetnsDir) started; the
//     time until it has applied (adopted) every router;
//   - recreated: router namespaces, qr-/qg- devices, bridges and taps
//     whose identity (inode, ifindex) the restart changed; it must be 0;
//   - resync-writes: L3 kernel writes the restart made (0 expected).
//
// One iteration (-benchtime=1x) is the measurement.
//
// BenchmarkInterfaceToPing builds a router with a gateway and an interface
// on network A, a VM namespace plugged on A and one on B (binding:host_id
// and binding:profile netns, as `neutrino port plug` does); each iteration
// times add_router_interface of B's subnet until VM A's first ICMP echo
// to VM B is answered (a probe every 10 ms, at most 10 s), then removes the
// interface again, untimed, waiting for the agent to finish with it, and
// flushes VM B's neighbour cache (the re-added gateway has a new MAC and
// nothing announces it: without the flush the next iteration waits for
// the stale ARP entry to age out, about 25 s). It
// reports p50-ms and p99-ms, and the p50 of where the time goes: api-ms
// (the PUT), to-apply-ms (PUT sent to the router's L3 Apply starting:
// hint, state fetch, L2 Apply, worker), in-apply-ms (Apply start to the
// first answer: the path works before the Apply has returned; the 10 ms
// probe period quantises it), apply-ms (the whole L3 Apply).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

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
)

const (
	resyncRouters = 100                   // routers of BenchmarkAgentResync
	agentHostName = "bench-node"          // the agent's host on the bus
	probeInterval = 10 * time.Millisecond // ICMP probe period
	probeBound    = 10 * time.Second      // a path must answer within this
	realiseBound  = 2 * time.Minute       // all routers applied within this
	goneBound     = time.Minute           // namespaces gone after deletion
	activeBound   = 15 * time.Second      // a plugged port becomes ACTIVE
	agentStopWait = 15 * time.Second      // the agent stops within this
	createClients = 4                     // concurrent API clients of setups
	maxLogLines   = 300                   // warnings kept for a failure report
	agentUnderlay = "192.0.2.10"          // no peers: no VXLAN device is made
	extCIDR16     = "100.64.0.0/16"       // the shared external network
	pingExtCIDR   = "203.0.113.0/24"      // BenchmarkInterfaceToPing's one
)

type jsonObj = map[string]any

// ---- logs: warnings for failure reports, L3 kernel writes counted ----

// agentLog collects warnings and errors of the server and the agent, and
// counts the L3's "kernel write" debug records and the links the L2's
// start-up sweep removed.
type agentLog struct {
	writes atomic.Int64
	swept  atomic.Int64
	mu     sync.Mutex
	lines  []string
	ops    []string // the last kernel writes' ops
}

func (l *agentLog) logger(min slog.Level) *slog.Logger {
	return slog.New(agentLogHandler{l: l, min: min})
}

func (l *agentLog) dump() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// takeOps returns the ops of the kernel writes since the last call.
func (l *agentLog) takeOps() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	ops := l.ops
	l.ops = nil
	return ops
}

type agentLogHandler struct {
	l     *agentLog
	min   slog.Level
	attrs []slog.Attr
}

func (h agentLogHandler) Enabled(_ context.Context, lv slog.Level) bool { return lv >= h.min }

func (h agentLogHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "leftover removed" {
		h.l.swept.Add(1)
	}
	if r.Message == "kernel write" {
		h.l.writes.Add(1)
		var op string
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "op" {
				op = a.Value.String()
			}
			return true
		})
		h.l.mu.Lock()
		if len(h.l.ops) < maxLogLines {
			h.l.ops = append(h.l.ops, op)
		}
		h.l.mu.Unlock()
	}
	if r.Level < slog.LevelWarn {
		return nil
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s %s %s", r.Time.Format("15:04:05.000"), r.Level, r.Message)
	for _, a := range h.attrs {
		fmt.Fprintf(&sb, " %s=%v", a.Key, a.Value)
	}
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&sb, " %s=%v", a.Key, a.Value)
		return true
	})
	h.l.mu.Lock()
	defer h.l.mu.Unlock()
	if len(h.l.lines) >= maxLogLines {
		h.l.lines = h.l.lines[1:]
	}
	h.l.lines = append(h.l.lines, sb.String())
	return nil
}

func (h agentLogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	h.attrs = append(slices.Clip(h.attrs), as...)
	return h
}

func (h agentLogHandler) WithGroup(string) slog.Handler { return h }

// ---- the L3 decorator ----

// appliedL3 wraps the real L3 and records when each router's Apply
// succeeded, first and every time.
type appliedL3 struct {
	agent.L3
	failures atomic.Int64
	notify   chan struct{}

	mu     sync.Mutex
	first  map[string]time.Time
	events []applyEvent
}

// applyEvent is one successful Apply of an admin-up router.
type applyEvent struct {
	router     string
	interfaces int
	start, end time.Time
}

func newAppliedL3(inner agent.L3) *appliedL3 {
	return &appliedL3{L3: inner, notify: make(chan struct{}, 1), first: map[string]time.Time{}}
}

func (d *appliedL3) Apply(ctx context.Context, r agentv1.Router) error {
	start := time.Now()
	err := d.L3.Apply(ctx, r)
	end := time.Now()
	if err != nil {
		d.failures.Add(1)
		return err
	}
	if !r.AdminStateUp {
		return nil
	}
	d.mu.Lock()
	if _, ok := d.first[r.ID]; !ok {
		d.first[r.ID] = end
	}
	d.events = append(d.events, applyEvent{router: r.ID, interfaces: len(r.Interfaces), start: start, end: end})
	d.mu.Unlock()
	select {
	case d.notify <- struct{}{}:
	default:
	}
	return nil
}

// waitApplied waits until every router was applied and returns when the
// last one first was.
func (d *appliedL3) waitApplied(routers []string, timeout time.Duration) (time.Time, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		d.mu.Lock()
		var last time.Time
		missing := 0
		for _, id := range routers {
			at, ok := d.first[id]
			if !ok {
				missing++
			} else if at.After(last) {
				last = at
			}
		}
		d.mu.Unlock()
		if missing == 0 {
			return last, nil
		}
		select {
		case <-d.notify:
		case <-tick.C:
		case <-deadline.C:
			return time.Time{}, fmt.Errorf("%d of %d routers not applied after %s (%d failed Applies)",
				missing, len(routers), timeout, d.failures.Load())
		}
	}
}

// firstApplied returns the first Apply of router with n interfaces that
// started at or after since.
func (d *appliedL3) firstApplied(router string, n int, since time.Time) (applyEvent, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, ev := range d.events {
		if ev.router == router && ev.interfaces == n && !ev.start.Before(since) {
			return ev, true
		}
	}
	return applyEvent{}, false
}

// timedL2 wraps the real L2 and records when its Applies ran.
type timedL2 struct {
	agent.L2
	mu     sync.Mutex
	events []applyEvent // router and interfaces unset
}

func (d *timedL2) Apply(ctx context.Context, networks []agentv1.Network, ports []agentv1.Port) error {
	start := time.Now()
	err := d.L2.Apply(ctx, networks, ports)
	d.mu.Lock()
	d.events = append(d.events, applyEvent{start: start, end: time.Now()})
	d.mu.Unlock()
	return err
}

// lastBefore returns the last Apply that started before t.
func (d *timedL2) lastBefore(t time.Time) (applyEvent, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := len(d.events) - 1; i >= 0; i-- {
		if d.events[i].start.Before(t) {
			return d.events[i], true
		}
	}
	return applyEvent{}, false
}

// ---- the world: server, bus, host namespace, agent ----

// kernelEnv is a server with an embedded bus, and one host namespace with
// its NetnsDir where the agent runs.
type kernelEnv struct {
	b     *testing.B
	api   string
	srv   *servertest.Server
	logs  *agentLog
	host  netns.NsHandle
	dir   string
	state string // the agent's state dir (IKE daemons)
	// dataPlane is the agents' IPsec data plane ("" detects it).
	dataPlane string

	mu    sync.Mutex
	undo  []undoAction
	vms   []*benchVM
	agent *agentRun
	torn  bool
}

type undoAction struct {
	what string
	fn   func() error
}

// agentRun is one run of the agent.
type agentRun struct {
	l2      *timedL2
	l3      *appliedL3
	vpn     *strongswan.Driver // nil without charon
	started time.Time
	cancel  context.CancelFunc
	done    chan error
	closeDP func()
}

// benchVM is a named namespace in the NetnsDir: a VM.
type benchVM struct {
	name, path string
	ns         netns.NsHandle
}

// newKernelEnv builds the world. Its cleanups run: API deletions (and the
// wait for the router namespaces to go), the agent stopped, the server and
// bus stopped, the namespaces removed.
func newKernelEnv(b *testing.B) *kernelEnv {
	b.Helper()
	testenv.RequireKernel(b, testenv.Bridge, testenv.Veth, testenv.NFTNAT, testenv.Mounting)
	host, err := namespace.New()
	if err != nil {
		b.Fatalf("cannot create a network namespace: %v", err)
	}
	dir, rmDir := nstest.Dir(b, "neutrino-bench")
	b.Cleanup(rmDir)
	e := &kernelEnv{b: b, host: host, dir: dir, state: b.TempDir(), logs: &agentLog{}}
	b.Cleanup(e.removeNamespaces)
	nl, err := netlink.NewHandleAt(host)
	if err == nil {
		var lo netlink.Link
		if lo, err = nl.LinkByName("lo"); err == nil {
			err = nl.LinkSetUp(lo)
		}
		nl.Close()
	}
	if err != nil {
		b.Fatalf("host namespace: lo up: %v", err)
	}

	quiet := e.logs.logger(slog.LevelWarn)
	e.srv = servertest.Start(b, servertest.Options{Logger: quiet, Service: func(o *service.Options) {
		o.Quotas = map[string]int{"network": -1, "subnet": -1, "port": -1, "router": -1}
	}})
	e.api = e.srv.URL
	b.Cleanup(func() {
		e.teardown()
		e.stopAgent()
		if b.Failed() {
			b.Logf("warnings and errors of the server and agent:\n%s", e.logs.dump())
		}
	})
	return e
}

// startAgent builds an agent as cmd/neutrino does (package node, default
// heartbeat and resync periods), over the host namespace, NetnsDir and
// state dir, with L2 and L3 decorated, and runs it.
func (e *kernelEnv) startAgent() *agentRun {
	e.b.Helper()
	started := time.Now()
	log := e.logs.logger(slog.LevelDebug).With("host", agentHostName)
	var dec *appliedL3
	var sw2 *timedL2
	n, err := node.New(node.Options{Endpoint: agent.Endpoint{Host: agentHostName, BusURL: e.srv.BusURL(),
		Token: e.srv.AgentToken(agentHostName), UnderlayIP: netip.MustParseAddr(agentUnderlay)}, HostNS: e.host, NetnsDir: e.dir, StateDir: e.state, DataPlane: e.dataPlane, Logger: log,
		WrapL2: func(l agent.L2) agent.L2 { sw2 = &timedL2{L2: l}; return sw2 },
		WrapL3: func(l agent.L3) agent.L3 { dec = newAppliedL3(l); return dec }})
	if err != nil {
		e.b.Fatalf("agent: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	run := &agentRun{l2: sw2, l3: dec, vpn: n.VPN, started: started, cancel: cancel, done: make(chan error, 1),
		closeDP: n.Close}
	a := n.Agent
	e.mu.Lock()
	e.agent = run
	e.mu.Unlock()
	go func() { run.done <- a.Run(ctx) }()
	return run
}

// stopAgent stops the running agent (bounded) and releases its handles;
// the data plane stays as it is.
func (e *kernelEnv) stopAgent() {
	e.mu.Lock()
	run := e.agent
	e.agent = nil
	e.mu.Unlock()
	if run == nil {
		return
	}
	run.cancel()
	select {
	case err := <-run.done:
		if err != nil {
			e.b.Errorf("agent: %v", err)
		}
		run.closeDP()
	case <-time.After(agentStopWait):
		e.b.Errorf("agent did not stop within %s", agentStopWait) // its handles stay open
	}
}

func (e *kernelEnv) pushUndo(what string, fn func() error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.undo = append(e.undo, undoAction{what, fn})
}

// teardown runs the API deletions, newest first, and then, if the agent
// runs, waits for the router namespaces to go. It runs once.
func (e *kernelEnv) teardown() {
	e.mu.Lock()
	if e.torn {
		e.mu.Unlock()
		return
	}
	e.torn = true
	undo := slices.Clone(e.undo)
	running := e.agent != nil
	e.mu.Unlock()
	for i := len(undo) - 1; i >= 0; i-- {
		if err := undo[i].fn(); err != nil {
			e.b.Errorf("cleanup: %s: %v", undo[i].what, err)
		}
	}
	if !running {
		return
	}
	var left []string
	for deadline := time.Now().Add(goneBound); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if left = e.routerNamespaces(); len(left) == 0 {
			return
		}
	}
	e.b.Errorf("cleanup: %d router namespaces left %s after deleting the routers", len(left), goneBound)
}

// removeNamespaces removes the VMs, whatever is left in the NetnsDir and
// the host namespace; the kernel destroys them, with their links, when
// the last reference goes.
func (e *kernelEnv) removeNamespaces() {
	e.mu.Lock()
	vms := e.vms
	e.vms = nil
	e.mu.Unlock()
	for _, v := range vms {
		v.ns.Close()
	}
	nstest.Clear(e.dir)
	e.host.Close()
}

// routerNamespaces lists the router namespace files in the NetnsDir.
func (e *kernelEnv) routerNamespaces() []string {
	entries, _ := os.ReadDir(e.dir)
	var out []string
	for _, ent := range entries {
		if id, ok := strings.CutPrefix(ent.Name(), agentv1.RouterNamespacePrefix); ok {
			out = append(out, id)
		}
	}
	return out
}

// vm makes a VM namespace in the NetnsDir, as `ip netns add` would.
func (e *kernelEnv) vm(name string) *benchVM {
	e.b.Helper()
	ns, path := nstest.VM(e.b, e.dir, name)
	v := &benchVM{name: name, path: path, ns: ns}
	e.mu.Lock()
	e.vms = append(e.vms, v)
	e.mu.Unlock()
	return v
}

// ---- the Networking API ----

// do sends an admin request and returns the status and body.
func (e *kernelEnv) do(method, path string, body any) (int, []byte, error) {
	return e.client().Do(method, path, body)
}

func (e *kernelEnv) client() servertest.Client {
	return servertest.Client{URL: e.api, Timeout: 2 * time.Minute}
}

// try sends an admin request and decodes the reply; a status other than
// want is an error.
func (e *kernelEnv) try(method, path string, body any, want int) (jsonObj, error) {
	return e.client().Try(method, path, body, want)
}

// call is try that fails the benchmark.
func (e *kernelEnv) call(method, path string, body any, want int) jsonObj {
	e.b.Helper()
	out, err := e.try(method, path, body, want)
	if err != nil {
		e.b.Fatal(err)
	}
	return out
}

// tryCreate POSTs a resource and returns it.
func (e *kernelEnv) tryCreate(kind string, attrs jsonObj) (jsonObj, error) {
	return e.client().TryCreate(kind, attrs)
}

func (e *kernelEnv) create(kind string, attrs jsonObj) jsonObj {
	e.b.Helper()
	obj, err := e.tryCreate(kind, attrs)
	if err != nil {
		e.b.Fatal(err)
	}
	return obj
}

// gone tolerates a deletion of what is already gone.
func (e *kernelEnv) gone(method, path string, body any) error {
	return e.client().Gone(method, path, body)
}

// fanOut runs fn(i) for i in [0, n) on workers goroutines; it returns the
// first error and stops handing out work after it.
func fanOut(workers, n int, fn func(i int) error) error {
	var next atomic.Int64
	var once sync.Once
	var first error
	var failed atomic.Bool
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n && !failed.Load(); i = int(next.Add(1) - 1) {
				if err := fn(i); err != nil {
					once.Do(func() { first = err })
					failed.Store(true)
				}
			}
		})
	}
	wg.Wait()
	return first
}

// waitAgentAlive waits until the agent shows alive in /v2.0/agents.
func (e *kernelEnv) waitAgentAlive() {
	e.b.Helper()
	for deadline := time.Now().Add(activeBound); ; time.Sleep(20 * time.Millisecond) {
		var list struct {
			Agents []struct {
				Host  string
				Alive bool
			}
		}
		code, data, err := e.do("GET", "/v2.0/agents", nil)
		if err == nil && code == http.StatusOK && json.Unmarshal(data, &list) == nil {
			for _, a := range list.Agents {
				if a.Host == agentHostName && a.Alive {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			e.b.Fatalf("agent %s not alive after %s", agentHostName, activeBound)
		}
	}
}

// waitActive waits until a port is ACTIVE.
func (e *kernelEnv) waitActive(portID string) {
	e.b.Helper()
	for deadline := time.Now().Add(activeBound); ; time.Sleep(20 * time.Millisecond) {
		p := e.call("GET", "/v2.0/ports/"+portID, nil, http.StatusOK)["port"].(map[string]any)
		if p["status"] == "ACTIVE" {
			return
		}
		if time.Now().After(deadline) {
			e.b.Fatalf("port %s not ACTIVE after %s: %v", portID, activeBound, p["status"])
		}
	}
}

// ---- the kernel as the benchmarks see it ----

// kernelIdentities returns the identity of what an adoption must leave in
// place: each router namespace's inode and its qr-/qg- ifindexes, and the
// host's bridge and tap ifindexes. problems lists routers without their
// namespace or without exactly one qr- and one qg- device up.
func (e *kernelEnv) kernelIdentities(routers []string) (ids map[string]uint64, problems []string) {
	ids = map[string]uint64{}
	for _, id := range routers {
		path := filepath.Join(e.dir, agentv1.RouterNamespace(id))
		var st unix.Stat_t
		if err := unix.Stat(path, &st); err != nil {
			problems = append(problems, fmt.Sprintf("router %s: %v", id, err))
			continue
		}
		ids["netns "+id] = st.Ino
		ns, err := netns.GetFromPath(path)
		if err != nil {
			problems = append(problems, fmt.Sprintf("router %s: %v", id, err))
			continue
		}
		h, err := netlink.NewHandleAt(ns)
		if err != nil {
			ns.Close()
			problems = append(problems, fmt.Sprintf("router %s: %v", id, err))
			continue
		}
		links, err := h.LinkList()
		h.Close()
		ns.Close()
		if err != nil {
			problems = append(problems, fmt.Sprintf("router %s: list links: %v", id, err))
			continue
		}
		qr, qg := 0, 0
		for _, l := range links {
			name, up := l.Attrs().Name, l.Attrs().Flags&net.FlagUp != 0
			switch {
			case strings.HasPrefix(name, agentv1.InternalDevicePrefix):
				qr++
			case strings.HasPrefix(name, agentv1.GatewayDevicePrefix):
				qg++
			default:
				continue
			}
			ids[id+" "+name] = uint64(l.Attrs().Index)
			if !up {
				problems = append(problems, fmt.Sprintf("router %s: %s is down", id, name))
			}
		}
		if qr != 1 || qg != 1 {
			problems = append(problems, fmt.Sprintf("router %s: %d qr- and %d qg- devices, want 1 and 1", id, qr, qg))
		}
	}
	h, err := netlink.NewHandleAt(e.host)
	if err != nil {
		return ids, append(problems, "host namespace: "+err.Error())
	}
	defer h.Close()
	links, err := h.LinkList()
	if err != nil {
		return ids, append(problems, "host namespace: list links: "+err.Error())
	}
	for _, l := range links {
		if name := l.Attrs().Name; strings.HasPrefix(name, agentv1.BridgePrefix) || strings.HasPrefix(name, agentv1.TapPrefix) || strings.HasPrefix(name, agentv1.RouterTapPrefix) {
			ids["host "+name] = uint64(l.Attrs().Index)
		}
	}
	return ids, problems
}

// waitVMDevice waits until the VM's device of a port is operationally up
// with the port's address.
// vmPort is a port plugged into a VM namespace.
type vmPort struct {
	id, ip string
	vm     *benchVM
}

// plugVM creates a port on network and plugs it into a new VM namespace
// of that name, as `neutrino port plug` does.
func (e *kernelEnv) plugVM(network, name string) vmPort {
	e.b.Helper()
	p := e.create("port", jsonObj{"network_id": network})
	vp := vmPort{id: p["id"].(string), ip: p["fixed_ips"].([]any)[0].(map[string]any)["ip_address"].(string), vm: e.vm(name)}
	e.pushUndo("delete port "+vp.id, func() error { return e.gone("DELETE", "/v2.0/ports/"+vp.id, nil) })
	e.call("PUT", "/v2.0/ports/"+vp.id, jsonObj{"port": jsonObj{"binding:host_id": agentHostName,
		"binding:profile": jsonObj{"netns": name}}}, http.StatusOK)
	return vp
}

func waitVMDevice(b *testing.B, v *benchVM, portID, ip string) {
	b.Helper()
	h, err := netlink.NewHandleAt(v.ns)
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	name := agentv1.DeviceName(l2.NamespacePortPrefix, portID)
	want := net.ParseIP(ip)
	for deadline := time.Now().Add(activeBound); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		l, err := h.LinkByName(name)
		if err != nil || l.Attrs().OperState != netlink.OperUp {
			continue
		}
		addrs, _ := h.AddrList(l, unix.AF_INET)
		if slices.ContainsFunc(addrs, func(a netlink.Addr) bool { return a.IP.Equal(want) }) {
			return
		}
	}
	b.Fatalf("VM %s: %s not up with %s after %s", v.name, name, ip, activeBound)
}

// flushNeighbours deletes the IPv4 neighbour entries of a namespace.
func flushNeighbours(b *testing.B, h *netlink.Handle) {
	b.Helper()
	neighs, err := h.NeighList(0, netlink.FAMILY_V4)
	if err != nil {
		b.Fatalf("list neighbours: %v", err)
	}
	for _, n := range neighs {
		if err := h.NeighDel(&n); err != nil && !errors.Is(err, unix.ENOENT) {
			b.Fatalf("delete neighbour %s: %v", n.IP, err)
		}
	}
}

// ---- helpers of the reports ----

func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func fmtMillis(ds []time.Duration) string {
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = fmt.Sprintf("%.1f", millis(d))
	}
	return strings.Join(s, " ")
}

// ---- the benchmarks ----

func BenchmarkAgentResync(b *testing.B) {
	e := newKernelEnv(b)
	ext := e.create("network", jsonObj{"name": "public", "router:external": true})["id"].(string)
	e.create("subnet", jsonObj{"network_id": ext, "ip_version": 4, "cidr": extCIDR16})

	// The routers wait, unscheduled, for an agent.
	routers := make([]string, resyncRouters)
	subnets := make([]string, resyncRouters)
	t0 := time.Now()
	err := fanOut(createClients, resyncRouters, func(i int) error {
		n, err := e.tryCreate("network", jsonObj{"name": fmt.Sprintf("t%d", i)})
		if err != nil {
			return err
		}
		s, err := e.tryCreate("subnet", jsonObj{"network_id": n["id"], "ip_version": 4, "cidr": fmt.Sprintf("10.%d.%d.0/24", i/256, i%256)})
		if err != nil {
			return err
		}
		r, err := e.tryCreate("router", jsonObj{"name": fmt.Sprintf("r%d", i), "external_gateway_info": jsonObj{"network_id": ext}})
		if err != nil {
			return err
		}
		routers[i], subnets[i] = r["id"].(string), s["id"].(string)
		_, err = e.try("PUT", "/v2.0/routers/"+routers[i]+"/add_router_interface", jsonObj{"subnet_id": subnets[i]}, http.StatusOK)
		return err
	})
	e.pushUndo("delete the routers", func() error {
		return fanOut(createClients, resyncRouters, func(i int) error {
			if routers[i] == "" {
				return nil
			}
			return errors.Join(
				e.gone("PUT", "/v2.0/routers/"+routers[i]+"/remove_router_interface", jsonObj{"subnet_id": subnets[i]}),
				e.gone("DELETE", "/v2.0/routers/"+routers[i], nil))
		})
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("created %d routers (network, subnet, router with gateway, interface) through the API in %s",
		resyncRouters, time.Since(t0).Round(time.Millisecond))

	// Cold start.
	w0 := e.logs.writes.Load()
	run := e.startAgent()
	last, err := run.l3.waitApplied(routers, realiseBound)
	if err != nil {
		b.Fatalf("cold start: %v", err)
	}
	cold := last.Sub(run.started)
	var firstAt time.Time
	run.l3.mu.Lock()
	for _, at := range run.l3.first {
		if firstAt.IsZero() || at.Before(firstAt) {
			firstAt = at
		}
	}
	run.l3.mu.Unlock()
	b.Logf("cold start: first router applied after %s, all %d after %s; %d L3 kernel writes, %d failed Applies",
		firstAt.Sub(run.started).Round(time.Millisecond), resyncRouters, cold.Round(time.Millisecond),
		e.logs.writes.Load()-w0, run.l3.failures.Load())
	before, problems := e.kernelIdentities(routers)
	if n := len(e.routerNamespaces()); n != resyncRouters {
		problems = append(problems, fmt.Sprintf("%d router namespaces, want %d", n, resyncRouters))
	}
	if len(problems) > 0 {
		b.Fatalf("kernel state after the cold start:\n  %s", strings.Join(problems, "\n  "))
	}
	e.logs.takeOps()

	// Restarts: a fresh agent adopts what the previous one built.
	var resync time.Duration
	var recreated, writes int64
	restarts := 0
	for b.Loop() {
		e.stopAgent()
		w, sw := e.logs.writes.Load(), e.logs.swept.Load()
		run = e.startAgent()
		last, err := run.l3.waitApplied(routers, realiseBound)
		if err != nil {
			b.Fatalf("restart: %v", err)
		}
		took := last.Sub(run.started)
		resync += took
		restarts++
		n := e.logs.writes.Load() - w
		writes += n
		after, problems := e.kernelIdentities(routers)
		var changed []string
		for k, v := range before {
			if after[k] != v {
				changed = append(changed, fmt.Sprintf("%s: %d -> %d", k, v, after[k]))
			}
		}
		recreated += int64(len(changed))
		b.Logf("restart %d: all %d routers adopted after %s; %d L3 kernel writes, %d links removed by the L2 sweep, %d identities changed, %d failed Applies",
			restarts, resyncRouters, took.Round(time.Millisecond), n, e.logs.swept.Load()-sw, len(changed), run.l3.failures.Load())
		if ops := e.logs.takeOps(); len(ops) > 0 {
			b.Logf("restart %d: L3 kernel writes: %s", restarts, strings.Join(ops[:min(len(ops), 20)], "; "))
		}
		if len(changed) > 0 || len(problems) > 0 {
			slices.Sort(changed)
			b.Errorf("restart %d disturbed the data plane:\n  %s", restarts,
				strings.Join(append(problems, changed[:min(len(changed), 20)]...), "\n  "))
		}
	}

	b.ReportMetric(cold.Seconds(), "cold-s")
	b.ReportMetric(resync.Seconds()/float64(max(restarts, 1)), "resync-s")
	b.ReportMetric(float64(recreated), "recreated")
	b.ReportMetric(float64(writes)/float64(max(restarts, 1)), "resync-writes")
	b.ReportMetric(0, "ns/op") // the metrics above say it
	if recreated > 0 {
		b.Fatalf("the restarts recreated %d namespaces or devices, want 0", recreated)
	}

	t1 := time.Now()
	e.teardown()
	b.Logf("teardown: %d routers deleted through the API and their namespaces gone in %s",
		resyncRouters, time.Since(t1).Round(time.Millisecond))
}

func BenchmarkInterfaceToPing(b *testing.B) {
	e := newKernelEnv(b)
	run := e.startAgent()
	e.waitAgentAlive()

	ext := e.create("network", jsonObj{"name": "public", "router:external": true})["id"].(string)
	e.create("subnet", jsonObj{"network_id": ext, "ip_version": 4, "cidr": pingExtCIDR})
	netA := e.create("network", jsonObj{"name": "a"})["id"].(string)
	subA := e.create("subnet", jsonObj{"network_id": netA, "ip_version": 4, "cidr": "10.1.0.0/24"})
	netB := e.create("network", jsonObj{"name": "b"})["id"].(string)
	subB := e.create("subnet", jsonObj{"network_id": netB, "ip_version": 4, "cidr": "10.2.0.0/24"})["id"].(string)
	rtr := e.create("router", jsonObj{"name": "r", "external_gateway_info": jsonObj{"network_id": ext}})["id"].(string)
	e.pushUndo("delete router", func() error { return e.gone("DELETE", "/v2.0/routers/"+rtr, nil) })
	ifA := jsonObj{"subnet_id": subA["id"]}
	e.call("PUT", "/v2.0/routers/"+rtr+"/add_router_interface", ifA, http.StatusOK)
	e.pushUndo("remove interface A", func() error { return e.gone("PUT", "/v2.0/routers/"+rtr+"/remove_router_interface", ifA) })
	ifB := jsonObj{"subnet_id": subB}
	e.pushUndo("remove interface B", func() error { return e.gone("PUT", "/v2.0/routers/"+rtr+"/remove_router_interface", ifB) })

	// A VM on each network, plugged as `neutrino port plug` does.
	vmA, vmB := e.plugVM(netA, "vm-a"), e.plugVM(netB, "vm-b")
	for _, vp := range []vmPort{vmA, vmB} {
		e.waitActive(vp.id)
		waitVMDevice(b, vp.vm, vp.id, vp.ip)
	}
	if _, err := run.l3.waitApplied([]string{rtr}, realiseBound); err != nil {
		b.Fatal(err)
	}
	gwA := netip.MustParseAddr(subA["gateway_ip"].(string))
	if _, ok := nstest.NewPinger(b, vmA.vm.ns, "0.0.0.0", gwA.String()).Reach(probeInterval, probeBound); !ok {
		b.Fatalf("VM A cannot reach its router at %s", gwA)
	}
	rns, err := netns.GetFromPath(filepath.Join(e.dir, agentv1.RouterNamespace(rtr)))
	if err != nil {
		b.Fatal(err)
	}
	defer rns.Close()
	rnl, err := netlink.NewHandleAt(rns)
	if err != nil {
		b.Fatal(err)
	}
	defer rnl.Close()
	dstB := netip.MustParseAddr(vmB.ip)
	prober := nstest.NewPinger(b, vmA.vm.ns, "0.0.0.0", dstB.String())
	vmBnl, err := netlink.NewHandleAt(vmB.vm.ns)
	if err != nil {
		b.Fatal(err)
	}
	defer vmBnl.Close()

	var total, api, toApply, apply, inApply, removal []time.Duration
	for b.Loop() {
		t0 := time.Now()
		out := e.call("PUT", "/v2.0/routers/"+rtr+"/add_router_interface", ifB, http.StatusOK)
		tAPI := time.Now()
		at, ok := prober.Reach(probeInterval, probeBound)
		b.StopTimer()
		if !ok {
			b.Fatalf("iteration %d: VM B (%s) did not answer VM A within %s of add_router_interface", len(total)+1, dstB, probeBound)
		}
		total, api = append(total, at.Sub(t0)), append(api, tAPI.Sub(t0))
		// The path may work before the Apply that makes it has returned.
		ev, ok := run.l3.firstApplied(rtr, 2, t0)
		for deadline := time.Now().Add(probeBound); !ok && time.Now().Before(deadline); ev, ok = run.l3.firstApplied(rtr, 2, t0) {
			time.Sleep(time.Millisecond)
		}
		if !ok {
			b.Fatalf("iteration %d: answered, but no L3 Apply of the router with both interfaces was seen", len(total))
		}
		l2ev, _ := run.l2.lastBefore(ev.start)
		toApply, apply, inApply = append(toApply, ev.start.Sub(t0)), append(apply, ev.end.Sub(ev.start)), append(inApply, at.Sub(ev.start))
		if ms := func(t time.Time) float64 { return millis(t.Sub(t0)) }; len(total) <= 10 {
			b.Logf("iteration %d: first answer at %.1f ms; API reply %.1f; L2 Apply %.1f-%.1f; L3 Apply %.1f-%.1f",
				len(total), ms(at), ms(tAPI), ms(l2ev.start), ms(l2ev.end), ms(ev.start), ms(ev.end))
		}

		// Untimed: take the interface away again and wait until the agent
		// is done with it (the Apply returns well after the device is gone
		// from the namespace: deleting a veth waits for the kernel's RCU).
		tRemove := time.Now()
		e.call("PUT", "/v2.0/routers/"+rtr+"/remove_router_interface", ifB, http.StatusOK)
		rm, ok := run.l3.firstApplied(rtr, 1, tRemove)
		for deadline := time.Now().Add(probeBound); !ok && time.Now().Before(deadline); rm, ok = run.l3.firstApplied(rtr, 1, tRemove) {
			time.Sleep(time.Millisecond)
		}
		if !ok {
			b.Fatalf("iteration %d: no L3 Apply of the router without interface B within %s", len(total), probeBound)
		}
		removal = append(removal, rm.end.Sub(rm.start))
		dev := agentv1.DeviceName(agentv1.InternalDevicePrefix, out["port_id"].(string))
		if _, err := rnl.LinkByName(dev); err == nil {
			b.Fatalf("iteration %d: %s still in the router after it was applied without it", len(total), dev)
		}
		// The next add makes a new port: same gateway address, new MAC.
		// Neutrino sends no gratuitous ARP, so VM B would keep sending to
		// the old MAC until its neighbour entry ages out (15-45 s, then 5 s
		// of probes): forget it, so every iteration starts as the first.
		flushNeighbours(b, vmBnl)
		b.StartTimer()
	}

	b.Logf("add_router_interface to first answer, ms: %v", fmtMillis(total))
	b.Logf("L3 Apply removing the interface (untimed), ms: %v", fmtMillis(removal))
	b.ReportMetric(nstest.Percentile(total, 0.50), "p50-ms")
	b.ReportMetric(nstest.Percentile(total, 0.99), "p99-ms")
	b.ReportMetric(nstest.Percentile(api, 0.50), "api-ms")
	b.ReportMetric(nstest.Percentile(toApply, 0.50), "to-apply-ms")
	b.ReportMetric(nstest.Percentile(apply, 0.50), "apply-ms")
	b.ReportMetric(nstest.Percentile(inApply, 0.50), "in-apply-ms")
	b.ReportMetric(0, "ns/op") // the metrics above say it
}

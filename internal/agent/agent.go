// Package agent is the process on each network node: it keeps the host's
// data plane equal to the desired state the server publishes, with one
// independent reconcile worker per router, and reports what it realised.
// It never touches the store: everything comes over the bus.
package agent

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/neutrino-net/neutrino/internal/bus"
)

// L2 realises networks and VM ports on the host.
type L2 interface {
	Apply(ctx context.Context, networks []agentv1.Network, ports []agentv1.Port) error
	Sweep(ctx context.Context, networks []agentv1.Network, ports []agentv1.Port) error
	PortReady(portID string) bool
	// NetworkReady reports whether routers can plug into the network.
	NetworkReady(networkID string) bool
}

// L2Problems is an L2 that says why it could not wire a port (for the
// reason of a DEGRADED trunk).
type L2Problems interface {
	PortProblem(portID string) string
}

// L2Changes is an L2 that notices, between states, that it should apply
// the current one again (a VM's tap appeared).
type L2Changes interface {
	Changes() <-chan struct{}
}

// IsTerminal reports whether retrying cannot fix err: every error joined
// in it has a Terminal() bool method that says true (the layers' errors
// for a desired state that cannot be realised as given). A worker records
// a terminal error in the router's status and waits for a new desired
// state instead of retrying.
func IsTerminal(err error) bool {
	if err == nil {
		return false
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return !slices.ContainsFunc(j.Unwrap(), func(e error) bool { return e != nil && !IsTerminal(e) })
	}
	var t interface{ Terminal() bool }
	return errors.As(err, &t) && t.Terminal()
}

// L3 realises one router at a time.
type L3 interface {
	Apply(ctx context.Context, r agentv1.Router) error
	Delete(ctx context.Context, routerID string) error
	Sweep(ctx context.Context, wanted []string) error
}

// VPN is a device driver (strongSwan, Libreswan): it realises the VPN
// services of one router at a time and tells their state.
type VPN interface {
	// Apply makes the router's VPN exactly these services (those of this
	// driver; none: stop the router's daemon and remove its files).
	Apply(ctx context.Context, routerID string, services []agentv1.VPNService) error
	Delete(ctx context.Context, routerID string) error
	// Sweep removes what the driver runs for routers not in wanted.
	Sweep(ctx context.Context, wanted []string) error
	Status(routerID string) map[string]agentv1.VPNStatus
}

// Endpoint is who an agent is and how it reaches the server.
type Endpoint struct {
	Host       string
	BusURL     string
	Token      string
	BusTLS     *tls.Config // nil: plain; else TLS verifying the bus server (a CA, or a pinned certificate)
	UnderlayIP netip.Addr
}

// Options configure an agent.
type Options struct {
	Endpoint
	L2 L2
	L3 L3
	// VPN maps a device driver name ("strongswan") to the driver. A VPN
	// service of a driver the agent lacks is reported in ERROR.
	VPN map[string]VPN
	// Heartbeat is the heartbeat period (default 10s); Resync the period
	// of full state fetches (default 30s).
	Heartbeat, Resync time.Duration
	// Configurations are shown in /v2.0/agents.
	Configurations map[string]any
	// DHCP says the agent serves DHCP (its L2 runs the DHCP servers): it
	// then also registers as a DHCP agent, with DHCPConfigurations.
	DHCP               bool
	DHCPConfigurations map[string]any
	Logger             *slog.Logger
}

// Agent is a running agent.
type Agent struct {
	opts    Options
	log     *slog.Logger
	nc      *nats.Conn
	kick    chan struct{}
	started time.Time

	// wg joins every goroutine Run starts: heartbeats, the L2 worker and
	// the router workers, retiring ones included.
	wg sync.WaitGroup
	l2 *l2Worker

	mu       sync.Mutex
	workers  map[string]*worker
	retiring map[string]*worker // deleting; a new worker for the id waits
	status   map[string]agentv1.RouterStatus
	last     *agentv1.HostState // the newest desired state, for reports
	gen      uint64             // numbers the desired states handed out
	swept    bool
}

// New returns an agent; Run starts it.
func New(opts Options) (*Agent, error) {
	if !bus.ValidHost(opts.Host) {
		return nil, fmt.Errorf("agent: host %q cannot name bus subjects (letters, digits, - and _ only)", opts.Host)
	}
	if opts.Heartbeat == 0 {
		opts.Heartbeat = 10 * time.Second
	}
	if opts.Resync == 0 {
		opts.Resync = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Agent{opts: opts, log: opts.Logger.With("host", opts.Host), kick: make(chan struct{}, 1),
		workers: map[string]*worker{}, retiring: map[string]*worker{}, status: map[string]agentv1.RouterStatus{}}, nil
}

// Run connects to the bus and reconciles until ctx ends, then returns once
// every goroutine it started has ended. Losing the bus leaves the data
// plane as it is; on reconnect the agent resyncs.
func (a *Agent) Run(ctx context.Context) error {
	a.started = time.Now()
	dialOpts := []nats.Option{nats.ReconnectHandler(func(*nats.Conn) { a.log.Info("bus: reconnected, resyncing"); a.trigger() })}
	if a.opts.BusTLS != nil {
		dialOpts = append(dialOpts, nats.Secure(a.opts.BusTLS))
	}
	nc, err := bus.DialAgent(ctx, a.opts.BusURL, a.opts.Host, a.opts.Token, a.log, dialOpts...)
	if err != nil {
		return err
	}
	a.nc = nc
	defer nc.Close()
	sub, err := nc.Subscribe(agentv1.HintSubject(a.opts.Host), func(*nats.Msg) { a.trigger() })
	if err != nil {
		return fmt.Errorf("agent: subscribe hints: %w", err)
	}
	defer sub.Unsubscribe()
	ctx, stop := context.WithCancel(ctx)
	defer func() {
		stop()
		a.wg.Wait()
	}()
	a.l2 = newL2Worker()
	a.wg.Add(2)
	go func() { defer a.wg.Done(); a.heartbeats(ctx) }()
	go func() { defer a.wg.Done(); a.runL2(ctx) }()
	if c, ok := a.opts.L2.(L2Changes); ok && c.Changes() != nil {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case <-c.Changes():
					a.l2.again()
				}
			}
		}()
	}
	a.trigger()
	resync := time.NewTicker(a.opts.Resync)
	defer resync.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-resync.C:
		case <-a.kick:
		}
		if err := a.sync(ctx); err != nil {
			a.log.Warn("sync failed; keeping the data plane as it is", "error", err)
		}
	}
}

// trigger asks for a sync; triggers coalesce.
func (a *Agent) trigger() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

func (a *Agent) heartbeats(ctx context.Context) {
	t := time.NewTicker(a.opts.Heartbeat)
	defer t.Stop()
	for {
		a.mu.Lock()
		conf := map[string]any{"routers": len(a.workers)}
		a.mu.Unlock()
		for k, v := range a.opts.Configurations {
			conf[k] = v
		}
		data, _ := json.Marshal(agentv1.Heartbeat{Host: a.opts.Host, AgentType: agentv1.AgentTypeL3,
			StartedAt: a.started, UnderlayIP: a.opts.UnderlayIP, Configurations: conf})
		if err := a.nc.Publish(agentv1.HeartbeatSubject(a.opts.Host), data); err != nil {
			a.log.Warn("heartbeat not sent", "error", err)
		}
		if a.opts.DHCP {
			data, _ := json.Marshal(agentv1.Heartbeat{Host: a.opts.Host, AgentType: agentv1.AgentTypeDHCP,
				StartedAt: a.started, UnderlayIP: a.opts.UnderlayIP, Configurations: a.opts.DHCPConfigurations})
			if err := a.nc.Publish(agentv1.HeartbeatSubject(a.opts.Host), data); err != nil {
				a.log.Warn("DHCP agent heartbeat not sent", "error", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// fetch asks the server for the host's desired state.
func (a *Agent) fetch(ctx context.Context) (*agentv1.HostState, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, _ := json.Marshal(agentv1.SyncRequest{Host: a.opts.Host})
	m, err := a.nc.RequestWithContext(ctx, agentv1.SyncSubject(a.opts.Host), req)
	if err != nil {
		return nil, fmt.Errorf("fetch state: %w", err)
	}
	var st agentv1.HostState
	if err := json.Unmarshal(m.Data, &st); err != nil {
		return nil, fmt.Errorf("decode state: %w", err)
	}
	if st.Error != "" {
		return nil, errors.New("server: " + st.Error)
	}
	return &st, nil
}

// sync fetches the desired state and hands it to the L2 worker and each
// router's worker. A router waits for L2 only while a network it plugs
// into is not in place yet, so a slow bridge delays only its routers.
func (a *Agent) sync(ctx context.Context) error {
	st, err := a.fetch(ctx)
	if err != nil {
		return err
	}
	wanted := make([]string, len(st.Routers))
	for i, r := range st.Routers {
		wanted[i] = r.ID
	}
	if !a.swept {
		// Adopt what exists; remove only leftovers Neutrino owns.
		err := errors.Join(a.opts.L2.Sweep(ctx, st.Networks, st.Ports), a.opts.L3.Sweep(ctx, wanted))
		for name, drv := range a.opts.VPN {
			var with []string
			for _, r := range st.Routers {
				if len(vpnOf(r, name)) > 0 {
					with = append(with, r.ID)
				}
			}
			err = errors.Join(err, drv.Sweep(ctx, with))
		}
		if err != nil {
			a.log.Warn("sweep on start", "error", err)
		}
		a.swept = true
	}
	a.mu.Lock()
	a.gen++
	gen := a.gen
	a.last = st
	a.l2.set(st.Networks, st.Ports, gen)
	for _, r := range st.Routers {
		w := a.workers[r.ID]
		if w == nil {
			w = a.newWorker(ctx, r.ID)
			a.workers[r.ID] = w
		}
		w.set(&r, gen)
	}
	for id, w := range a.workers {
		if !slices.Contains(wanted, id) {
			w.set(nil, gen)
			delete(a.workers, id)
			a.retiring[id] = w
		}
	}
	a.mu.Unlock()
	a.report()
	return nil
}

// report tells the server which ports of the newest desired state are
// wired and how its routers are.
func (a *Agent) report() {
	a.mu.Lock()
	st := a.last
	a.mu.Unlock()
	if st == nil {
		return
	}
	r := agentv1.StatusReport{Host: a.opts.Host, Ports: map[string]string{}, Routers: map[string]agentv1.RouterStatus{},
		VPNServices: map[string]agentv1.VPNStatus{}}
	for _, p := range st.Ports {
		r.Ports[p.PortID] = "DOWN"
		if p.AdminStateUp && a.opts.L2.PortReady(p.PortID) {
			r.Ports[p.PortID] = "ACTIVE"
		}
	}
	if len(st.Trunks) > 0 {
		r.Trunks = a.trunkStatus(st)
	}
	a.mu.Lock()
	for id, s := range a.status {
		r.Routers[id] = s
	}
	a.mu.Unlock()
	for _, rt := range st.Routers {
		maps.Copy(r.VPNServices, a.vpnStatus(rt.ID))
	}
	data, _ := json.Marshal(r)
	if err := a.nc.Publish(agentv1.StatusSubject(a.opts.Host), data); err != nil {
		a.log.Warn("status not sent", "error", err)
	}
}

// trunkStatus is the state of the host's trunks, as the reference's
// linuxbridge trunk driver sets it: DOWN while the parent is not wired (no
// VM tap yet, or down), ACTIVE when it and every subport are, DEGRADED
// when some subport could not be wired (with L2's reasons, e.g. a kernel
// with neither 802.1q nor eBPF tc programs). Subports that are administratively down count as
// wired.
func (a *Agent) trunkStatus(st *agentv1.HostState) map[string]agentv1.TrunkStatus {
	ports := make(map[string]*agentv1.Port, len(st.Ports))
	for i := range st.Ports {
		ports[st.Ports[i].PortID] = &st.Ports[i]
	}
	problems, _ := a.opts.L2.(L2Problems)
	out := make(map[string]agentv1.TrunkStatus, len(st.Trunks))
	for _, t := range st.Trunks {
		s := agentv1.TrunkStatus{Status: agentv1.TrunkDown}
		if !a.opts.L2.PortReady(t.PortID) {
			out[t.ID] = s
			continue
		}
		var why []string
		pending := false
		for _, id := range t.SubPortIDs {
			p := ports[id]
			switch {
			case p != nil && (a.opts.L2.PortReady(id) || !p.AdminStateUp):
			case p == nil:
				why = append(why, "subport "+id+": not in this host's state")
			case problems != nil && problems.PortProblem(id) != "":
				why = append(why, "subport "+id+": "+problems.PortProblem(id))
			default:
				pending = true // being wired
			}
		}
		switch {
		case len(why) > 0:
			s.Status = agentv1.TrunkDegraded
		case !pending:
			s.Status = agentv1.TrunkActive
		}
		s.Reason = strings.Join(why, "; ")
		out[t.ID] = s
	}
	return out
}

// VPNChanged sends the VPN state of one router to the server now. Device
// drivers call it when an SA comes up or goes down, so the API shows it
// within milliseconds rather than at the next periodic report.
func (a *Agent) VPNChanged(routerID string) {
	st := a.vpnStatus(routerID)
	if len(st) == 0 || a.nc == nil {
		return
	}
	data, _ := json.Marshal(agentv1.StatusReport{Host: a.opts.Host, VPNServices: st})
	if err := a.nc.Publish(agentv1.StatusSubject(a.opts.Host), data); err != nil {
		a.log.Warn("VPN status not sent", "router", routerID, "error", err)
	}
}

// vpnStatus is the state of a router's VPN services: what its drivers
// report, and ERROR for services whose driver this agent lacks.
func (a *Agent) vpnStatus(routerID string) map[string]agentv1.VPNStatus {
	out := map[string]agentv1.VPNStatus{}
	for _, drv := range a.opts.VPN {
		maps.Copy(out, drv.Status(routerID))
	}
	a.mu.Lock()
	w := a.workers[routerID]
	a.mu.Unlock()
	if w == nil {
		return out
	}
	w.mu.Lock()
	desired := w.desired
	w.mu.Unlock()
	if desired == nil {
		return out
	}
	for _, s := range desired.VPNServices {
		if _, ok := a.opts.VPN[s.Driver]; ok {
			continue
		}
		st := agentv1.VPNStatus{Status: "ERROR", Connections: map[string]agentv1.ConnectionStatus{}}
		for _, c := range s.Connections {
			st.Connections[c.ID] = agentv1.ConnectionStatus{Status: "ERROR",
				Reason: fmt.Sprintf("device driver %q (provider %s) is not available on agent %s", s.Driver, s.Provider, a.opts.Host)}
		}
		out[s.ID] = st
	}
	return out
}

// vpnOf returns the router's VPN services of one device driver; none when
// the router is administratively down.
func vpnOf(r agentv1.Router, driver string) []agentv1.VPNService {
	if !r.AdminStateUp {
		return nil
	}
	var out []agentv1.VPNService
	for _, s := range r.VPNServices {
		if s.Driver == driver {
			out = append(out, s)
		}
	}
	return out
}

func (a *Agent) setStatus(id string, s *agentv1.RouterStatus) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if s == nil {
		delete(a.status, id)
	} else {
		a.status[id] = *s
	}
}

// wakeWaiting wakes the router workers, after L2 applied a state: those
// waiting for a network go on, the others find nothing to do.
func (a *Agent) wakeWaiting() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, w := range a.workers {
		w.poke()
	}
}

// l2Worker holds the newest L2 desired state for the L2 goroutine.
type l2Worker struct {
	mu       sync.Mutex
	networks []agentv1.Network
	ports    []agentv1.Port
	gen      uint64 // of networks and ports; 0: nothing yet
	wake     chan struct{}
	// tried is the generation of the last state L2 finished applying,
	// whether it worked or not.
	tried atomic.Uint64
	force atomic.Bool // apply even an applied generation again
}

func newL2Worker() *l2Worker { return &l2Worker{wake: make(chan struct{}, 1)} }

// again makes the L2 goroutine apply the current state once more.
func (l *l2Worker) again() {
	l.force.Store(true)
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

func (l *l2Worker) set(networks []agentv1.Network, ports []agentv1.Port, gen uint64) {
	l.mu.Lock()
	l.networks, l.ports, l.gen = networks, ports, gen
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// runL2 applies each new L2 state (every sync hands one, so drift is
// repaired at every resync), retrying with backoff, and reports ports as
// soon as they are wired.
func (a *Agent) runL2(ctx context.Context) {
	l := a.l2
	var backoff time.Duration
	var done uint64 // generation applied without error
	for waitTurn(ctx, l.wake, backoff) {
		l.mu.Lock()
		networks, ports, gen := l.networks, l.ports, l.gen
		l.mu.Unlock()
		if gen == 0 || (gen == done && backoff == 0 && !l.force.Swap(false)) {
			continue
		}
		err := a.opts.L2.Apply(ctx, networks, ports)
		l.tried.Store(gen)
		a.wakeWaiting()
		a.report()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			a.log.Warn("networks and ports not all applied; retrying", "error", err)
			backoff = next(backoff)
			continue
		}
		done, backoff = gen, 0
	}
}

// waitsForL2 reports whether a router's state of generation gen must wait
// for L2: a network it plugs into is not in place and L2 has not yet
// tried the state that brings it.
func (a *Agent) waitsForL2(r *agentv1.Router, gen uint64) bool {
	if a.l2.tried.Load() >= gen {
		return false
	}
	for _, in := range r.Interfaces {
		if !a.opts.L2.NetworkReady(in.NetworkID) {
			return true
		}
	}
	return r.Gateway != nil && !a.opts.L2.NetworkReady(r.Gateway.NetworkID)
}

// worker reconciles one router: level-triggered on the latest desired
// state, never two reconciles of one router at once, backoff on error. A
// slow or failing router never stalls another.
type worker struct {
	id      string
	mu      sync.Mutex
	desired *agentv1.Router
	gen     uint64 // of desired
	deleted bool
	wake    chan struct{}
	done    chan struct{}
}

// newWorker starts a router's worker; it first waits for a previous worker
// of the same router that is still deleting. The caller holds a.mu.
func (a *Agent) newWorker(ctx context.Context, id string) *worker {
	w := &worker{id: id, wake: make(chan struct{}, 1), done: make(chan struct{})}
	old := a.retiring[id]
	delete(a.retiring, id)
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		if old != nil {
			select {
			case <-old.done:
			case <-ctx.Done():
				close(w.done)
				return
			}
		}
		a.run(ctx, w)
	}()
	return w
}

// set hands the worker a new desired state of generation gen (nil:
// delete the router).
func (w *worker) set(r *agentv1.Router, gen uint64) {
	w.mu.Lock()
	if r == nil {
		w.deleted = true
	} else {
		c := *r
		w.desired, w.gen = &c, gen
	}
	w.mu.Unlock()
	w.poke()
}

func (w *worker) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (a *Agent) run(ctx context.Context, w *worker) {
	defer close(w.done)
	backoff := time.Duration(0)
	var applied *agentv1.Router
	for waitTurn(ctx, w.wake, backoff) {
		w.mu.Lock()
		desired, gen, deleted := w.desired, w.gen, w.deleted
		w.mu.Unlock()
		if deleted {
			var err error
			for _, drv := range a.opts.VPN {
				err = errors.Join(err, drv.Delete(ctx, w.id))
			}
			if err == nil {
				err = a.opts.L3.Delete(ctx, w.id)
			}
			if err == nil {
				a.setStatus(w.id, nil)
				a.log.Info("router removed", "router", w.id)
				a.mu.Lock()
				if a.retiring[w.id] == w {
					delete(a.retiring, w.id)
				}
				a.mu.Unlock()
				return
			}
			if IsTerminal(err) {
				a.log.Warn("router cannot be deleted as asked; giving up", "router", w.id, "error", err)
				a.setStatus(w.id, nil)
				return
			}
			a.log.Warn("router delete failed; retrying", "router", w.id, "error", err)
			backoff = next(backoff)
			continue
		}
		if desired == nil || (applied != nil && backoff == 0 && sameRouter(applied, desired)) {
			continue
		}
		if a.waitsForL2(desired, gen) {
			continue // the L2 worker wakes us when it has tried
		}
		if err := a.opts.L3.Apply(ctx, *desired); err != nil {
			if ctx.Err() != nil {
				return
			}
			a.setStatus(w.id, &agentv1.RouterStatus{Status: "ERROR", Reason: err.Error()})
			if IsTerminal(err) {
				a.log.Warn("router cannot be applied as asked; waiting for a new desired state", "router", w.id, "error", err)
				applied, backoff = desired, 0
				continue
			}
			a.log.Warn("router apply failed; retrying", "router", w.id, "error", err)
			backoff = next(backoff)
			continue
		}
		a.setStatus(w.id, &agentv1.RouterStatus{Status: "ACTIVE"})
		// The VPN after L3: its daemon binds to the gateway's address.
		var vpnErr error
		for name, drv := range a.opts.VPN {
			vpnErr = errors.Join(vpnErr, drv.Apply(ctx, w.id, vpnOf(*desired, name)))
		}
		a.VPNChanged(w.id) // sends nothing for a router without VPN
		if IsTerminal(vpnErr) {
			a.log.Warn("router VPN cannot be applied as asked; waiting for a new desired state", "router", w.id, "error", vpnErr)
		} else if vpnErr != nil {
			if ctx.Err() != nil {
				return
			}
			a.log.Warn("router VPN apply failed; retrying", "router", w.id, "error", vpnErr)
			backoff = next(backoff)
			continue
		}
		applied, backoff = desired, 0
	}
}

// waitTurn waits for a wake-up or, when backoff is set, for the retry
// after it (with jitter); it is false once ctx has ended.
func waitTurn(ctx context.Context, wake <-chan struct{}, backoff time.Duration) bool {
	var retry <-chan time.Time
	if backoff > 0 {
		t := time.NewTimer(jitter(backoff))
		defer t.Stop()
		retry = t.C
	}
	select {
	case <-ctx.Done():
		return false
	case <-wake:
	case <-retry:
	}
	return true
}

// next is the backoff after d: 0.5 s, doubling up to 30 s.
func next(d time.Duration) time.Duration {
	if d == 0 {
		return 500 * time.Millisecond
	}
	return min(2*d, 30*time.Second)
}

// jitter spreads a backoff over [0.8d, 1.2d), so routers that failed
// together do not retry in lockstep.
func jitter(d time.Duration) time.Duration {
	return d*8/10 + rand.N(d*4/10)
}

// sameRouter compares whole states, PSKs included (they are not in a
// router's JSON).
func sameRouter(x, y *agentv1.Router) bool { return reflect.DeepEqual(x, y) }

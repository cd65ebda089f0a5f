package strongswan

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/strongswan/govici/vici"
)

// DriverName is the device driver name providers select
// (service_provider = VPN:<name>:strongswan).
const DriverName = "strongswan"

// loadedFile records, in a router's state dir, what the driver loaded into
// that router's charon (connection id -> digest of config and key), so a
// restarted agent knows what is current without reloading anything.
const loadedFile = "neutrino-loaded.json"

// callTimeout bounds a VICI call. Every call that can wait on the
// network (initiate, terminate) is made with timeout -1, so charon
// answers at once; a call that still times out means charon is stuck.
var callTimeout = 10 * time.Second

// DriverOptions configure the strongSwan device driver of one agent.
type DriverOptions struct {
	// StateDir holds one directory per router with VPN: its charon's
	// strongswan.conf, VICI socket, pid file and log.
	StateDir string
	// NetnsDir is where the routers' named network namespaces are.
	NetnsDir string
	// DataPlane is DataPlaneXFRM or DataPlaneLibipsec (resolved, not auto).
	DataPlane string
	// Charon is the daemon binary; default DefaultCharon.
	Charon string
	Logger *slog.Logger
	// OnChange is called when a router's VPN status may have changed (an
	// SA came up or went down, a negotiation failed, charon died). It is
	// called without the driver's locks held and must not block long.
	OnChange func(routerID string)
	// Poll is the period of the safety net: a list-sas refresh, a liveness
	// check and a new attempt for bi-directional connections that are
	// down. Default 10s.
	Poll time.Duration
}

// Driver is the strongSwan device driver: one charon per router with VPN
// services, configured only over VICI, status from VICI events.
type Driver struct {
	opts    DriverOptions
	log     *slog.Logger
	metrics *driverMetrics

	// base ends when the driver is closed; crash recovery runs under it.
	base   context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	routers map[string]*routerVPN
	closed  bool
}

// NewDriver returns a driver; it starts nothing until Apply.
func NewDriver(opts DriverOptions) (*Driver, error) {
	if opts.StateDir == "" || opts.NetnsDir == "" {
		return nil, errors.New("strongswan: driver needs StateDir and NetnsDir")
	}
	if opts.DataPlane != DataPlaneXFRM && opts.DataPlane != DataPlaneLibipsec {
		return nil, fmt.Errorf("strongswan: data plane %q: want %s or %s", opts.DataPlane, DataPlaneXFRM, DataPlaneLibipsec)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Poll == 0 {
		opts.Poll = 10 * time.Second
	}
	if err := os.MkdirAll(opts.StateDir, 0o700); err != nil {
		return nil, err
	}
	base, cancel := context.WithCancel(context.Background())
	return &Driver{opts: opts, log: opts.Logger.With("driver", DriverName), routers: map[string]*routerVPN{},
		metrics: newDriverMetrics(), base: base, cancel: cancel}, nil
}

func (d *Driver) router(id string) *routerVPN {
	d.mu.Lock()
	defer d.mu.Unlock()
	r := d.routers[id]
	if r == nil {
		r = &routerVPN{d: d, id: id, log: d.log.With("router", id), status: map[string]agentv1.VPNStatus{},
			reasons: map[string]string{}, errs: map[string]string{}, opts: DaemonOptions{
				Dir:       filepath.Join(d.opts.StateDir, id),
				Netns:     filepath.Join(d.opts.NetnsDir, agentv1.RouterNamespace(id)),
				DataPlane: d.opts.DataPlane,
				Charon:    d.opts.Charon,
				Logger:    d.log,
			}}
		d.routers[id] = r
	}
	return r
}

// Apply makes the router's charon run exactly the given services'
// connections (all of them handled by this driver): it starts or adopts
// the daemon, loads what is new or changed, unloads what is gone and
// leaves everything else, including established SAs, alone. With no
// connection to run it stops the daemon and removes its files.
func (d *Driver) Apply(ctx context.Context, routerID string, services []agentv1.VPNService) error {
	r := d.router(routerID)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.desired = cloneServices(services)
	r.smu.Lock()
	r.services = r.desired
	r.smu.Unlock()
	err := r.apply(ctx)
	r.refresh(ctx)
	return err
}

// cloneServices copies the services deeply: the driver keeps them while
// its watchers read them, and the caller may reuse its own.
func cloneServices(in []agentv1.VPNService) []agentv1.VPNService {
	out := slices.Clone(in)
	for i := range out {
		conns := slices.Clone(out[i].Connections)
		for j := range conns {
			conns[j].LocalCIDRs = slices.Clone(conns[j].LocalCIDRs)
			conns[j].PeerCIDRs = slices.Clone(conns[j].PeerCIDRs)
		}
		out[i].Connections = conns
	}
	return out
}

// Delete stops the router's charon and removes its state dir.
func (d *Driver) Delete(ctx context.Context, routerID string) error {
	r := d.router(routerID)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.desired = nil
	r.smu.Lock()
	r.services = nil
	r.smu.Unlock()
	if err := r.stop(ctx); err != nil {
		return err
	}
	d.mu.Lock()
	delete(d.routers, routerID)
	d.mu.Unlock()
	return nil
}

// Sweep stops the charons of routers this agent no longer has VPN for
// (left over from before a restart) and removes their state dirs. Routers
// in wanted are left alone: Apply adopts them.
func (d *Driver) Sweep(ctx context.Context, wanted []string) error {
	entries, err := os.ReadDir(d.opts.StateDir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if !e.IsDir() || slices.Contains(wanted, e.Name()) {
			continue
		}
		d.log.Info("removing VPN state of a router this host no longer has", "router", e.Name())
		errs = append(errs, d.Delete(ctx, e.Name()))
	}
	return errors.Join(errs...)
}

// Status returns the last known state of the router's services.
func (d *Driver) Status(routerID string) map[string]agentv1.VPNStatus {
	d.mu.Lock()
	r := d.routers[routerID]
	d.mu.Unlock()
	if r == nil {
		return nil
	}
	r.smu.Lock()
	defer r.smu.Unlock()
	out := make(map[string]agentv1.VPNStatus, len(r.status))
	for id, s := range r.status {
		out[id] = s
	}
	return out
}

// Pid returns the pid of the router's charon (0 if none runs).
func (d *Driver) Pid(routerID string) int {
	d.mu.Lock()
	r := d.routers[routerID]
	d.mu.Unlock()
	if r == nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.daemon == nil || !r.daemon.Alive() {
		return 0
	}
	return r.daemon.Pid()
}

// IKESAs returns, per connection, the unique ids of the IKE_SAs the
// router's charon has for it: a change elsewhere must leave them as they
// are (no rekey, no re-negotiation).
func (d *Driver) IKESAs(ctx context.Context, routerID string) (map[string][]string, error) {
	d.mu.Lock()
	r := d.routers[routerID]
	d.mu.Unlock()
	if r == nil {
		return nil, nil
	}
	dm := r.currentDaemon()
	if dm == nil || dm.Client() == nil {
		return nil, nil
	}
	sas, err := listSAs(ctx, dm.Client())
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for name, sa := range sas {
		out[name] = sa.ikeIDs
	}
	return out, nil
}

// Close stops watching and leaves every charon running with its tunnels
// (agent shutdown or restart).
func (d *Driver) Close() {
	d.mu.Lock()
	d.closed = true
	d.cancel()
	routers := make([]*routerVPN, 0, len(d.routers))
	for _, r := range d.routers {
		routers = append(routers, r)
	}
	d.mu.Unlock()
	for _, r := range routers {
		r.mu.Lock()
		r.detach()
		r.mu.Unlock()
	}
}

func (d *Driver) isClosed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.closed
}

func (d *Driver) changed(routerID string) {
	if d.opts.OnChange != nil {
		d.opts.OnChange(routerID)
	}
}

// routerVPN is one router's charon and what is loaded into it.
type routerVPN struct {
	d    *Driver
	id   string
	log  *slog.Logger
	opts DaemonOptions

	mu      sync.Mutex // serialises apply, stop and crash recovery
	desired []agentv1.VPNService
	daemon  *Daemon
	stopMon chan struct{}
	loaded  map[string]string // connection id -> digest; "" = unknown (adopted)

	// smu guards what status refreshes read; they never wait for r.mu.
	smu      sync.Mutex
	live     *Daemon              // = daemon
	services []agentv1.VPNService // = desired
	status   map[string]agentv1.VPNStatus
	reasons  map[string]string // connection id -> last negotiation failure
	errs     map[string]string // connection id -> why it cannot be loaded (ERROR)
	conns    map[string]connInfo
}

// setDaemon sets the daemon. The caller holds r.mu.
func (r *routerVPN) setDaemon(d *Daemon) {
	r.daemon = d
	r.smu.Lock()
	r.live = d
	r.smu.Unlock()
}

// connInfo is what the status refresh needs to know of a connection.
type connInfo struct {
	initiator string
}

// wanted is one connection to run.
type wanted struct {
	cfg    Config
	digest string
}

// digest identifies a connection's whole configuration, key included, so
// any change to it is seen. It is a SHA-256 over the PSK among the rest;
// the file holding it is readable by root only.
func digest(c Config) string {
	h := sha256.New()
	b, _ := json.Marshal(c.Conn)
	h.Write(b)
	h.Write([]byte{0})
	h.Write([]byte(c.Shared.Data))
	h.Write([]byte{0})
	h.Write([]byte(strings.Join(c.Shared.Owners, ",")))
	return hex.EncodeToString(h.Sum(nil))
}

// plan maps the desired services to the connections to run and the
// per-connection mapping errors.
func (r *routerVPN) plan() (run map[string]wanted, errs map[string]string, info map[string]connInfo) {
	run, errs, info = map[string]wanted{}, map[string]string{}, map[string]connInfo{}
	for _, s := range r.desired {
		for _, c := range s.Connections {
			info[c.ID] = connInfo{initiator: c.Initiator}
			if !s.AdminStateUp || !c.AdminStateUp {
				continue
			}
			if s.Driver != "" && s.Driver != DriverName {
				errs[c.ID] = fmt.Sprintf("service provider %q uses device driver %q, not %s", s.Provider, s.Driver, DriverName)
				continue
			}
			cfg, err := Conn(c)
			if err != nil {
				errs[c.ID] = err.Error()
				continue
			}
			run[c.ID] = wanted{cfg: cfg, digest: digest(cfg)}
		}
	}
	return run, errs, info
}

// apply realises r.desired. The caller holds r.mu.
func (r *routerVPN) apply(ctx context.Context) error {
	run, errs, info := r.plan()
	r.smu.Lock()
	r.conns, r.errs = info, errs
	for id := range r.reasons {
		if _, ok := run[id]; !ok {
			delete(r.reasons, id)
		}
	}
	r.smu.Unlock()
	if len(run) == 0 {
		return r.stop(ctx)
	}
	if err := r.ensureDaemon(ctx); err != nil {
		return err
	}
	sess := r.daemon.Client()
	if sess == nil {
		return errors.New("strongswan: no VICI session")
	}
	var failures []error
	// Gone or changed: take the SA down and the config out.
	for id, dg := range r.loaded {
		if w, ok := run[id]; ok && (w.digest == dg || dg == "") {
			continue
		}
		r.unload(ctx, sess, id)
		delete(r.loaded, id)
	}
	// New, changed, or adopted without a record: load. Loading a config
	// equal to the one charon has changes nothing and keeps its SAs.
	for _, id := range sortedKeys(run) {
		w := run[id]
		if dg, ok := r.loaded[id]; ok && dg == w.digest {
			continue
		}
		cfg, deferred := deferInitiation(w.cfg)
		if err := r.load(ctx, sess, cfg); err != nil {
			failures = append(failures, fmt.Errorf("connection %s: %w", id, err))
			r.setReason(id, err.Error())
			continue
		}
		r.setReason(id, "")
		r.loaded[id] = w.digest
		if deferred {
			time.AfterFunc(InitiationDelay, func() { r.initiateIfIdle(id) })
		}
		r.log.Info("connection loaded", "connection", id, "start_action", cfg.Conn.Children[id].StartAction)
	}
	if err := r.saveLoaded(); err != nil {
		failures = append(failures, err)
	}
	return errors.Join(failures...)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func (r *routerVPN) setReason(id, reason string) {
	r.smu.Lock()
	defer r.smu.Unlock()
	if reason == "" {
		delete(r.reasons, id)
	} else {
		r.reasons[id] = reason
	}
}

// call runs one VICI command and turns a failed command into an error
// naming it.
func call(ctx context.Context, sess *Client, cmd string, in *vici.Message) (*vici.Message, error) {
	m, err := sess.Call(ctx, cmd, in)
	if err != nil {
		return nil, fmt.Errorf("vici %s: %w", cmd, err)
	}
	return m, nil
}

func msg(kv ...any) *vici.Message {
	m := vici.NewMessage()
	for i := 0; i+1 < len(kv); i += 2 {
		_ = m.Set(kv[i].(string), kv[i+1])
	}
	return m
}

// load loads the key first, then the connection, whose start action
// (trap|start for bi-directional) initiates it.
func (r *routerVPN) load(ctx context.Context, sess *Client, cfg Config) error {
	shared, err := cfg.LoadShared()
	if err != nil {
		return err
	}
	if _, err := call(ctx, sess, "load-shared", shared); err != nil {
		return err
	}
	conn, err := cfg.LoadConn()
	if err != nil {
		return err
	}
	_, err = call(ctx, sess, "load-conn", conn)
	return err
}

// unload terminates a connection's IKE_SA (and so its CHILD_SAs), then
// removes its config and key. Errors for things already gone are
// expected and ignored.
func (r *routerVPN) unload(ctx context.Context, sess *Client, id string) {
	// Every IKE_SA of the connection, by unique id: when both sides
	// initiated at once there are two, and the one left behind would keep
	// the peer's CHILD_SA (and our status) up on the old configuration.
	// timeout -1: charon answers at once and deletes on its own.
	sas, _ := listSAs(ctx, sess)
	for _, ikeID := range sas[id].ikeIDs {
		_, err := call(ctx, sess, "terminate", msg("ike-id", ikeID, "timeout", "-1"))
		if err != nil && !strings.Contains(err.Error(), "no matching") {
			r.log.Info("terminate", "connection", id, "ike_sa", ikeID, "result", err)
		}
	}
	if _, err := call(ctx, sess, "unload-conn", msg("name", id)); err != nil && !strings.Contains(err.Error(), "not found") {
		r.log.Warn("unload-conn", "connection", id, "error", err)
	}
	if _, err := call(ctx, sess, "unload-shared", msg("id", SharedID(id))); err != nil && !strings.Contains(err.Error(), "not found") {
		r.log.Warn("unload-shared", "connection", id, "error", err)
	}
	r.setReason(id, "")
	r.log.Info("connection unloaded", "connection", id)
}

// ensureDaemon adopts the router's running charon or starts one, and
// watches it. The caller holds r.mu.
func (r *routerVPN) ensureDaemon(ctx context.Context) error {
	if r.daemon != nil && r.daemon.Alive() && r.daemon.Client() != nil {
		return nil
	}
	if r.daemon != nil { // dead: start over
		r.log.Warn("charon is gone; starting a new one", "pid", r.daemon.Pid())
		r.discard(ctx)
	}
	d, err := Adopt(ctx, r.opts)
	adopted := err == nil
	if errors.Is(err, ErrNotRunning) {
		d, err = StartDaemon(ctx, r.opts)
	}
	if err != nil {
		return err
	}
	r.setDaemon(d)
	r.loaded = map[string]string{}
	if adopted {
		r.loaded = r.adoptLoaded(ctx, d.Client())
	}
	return r.watch(d)
}

// discard drops a dead daemon so that the next apply starts a new one.
// Its VICI socket closes before the process is gone: Stop makes sure it
// is, and removes its files, before a new one starts in the same dir. The
// caller holds r.mu.
func (r *routerVPN) discard(ctx context.Context) {
	r.detach()
	if err := r.daemon.Stop(ctx); err != nil {
		r.log.Warn("stopping the dead charon", "error", err)
	}
	r.setDaemon(nil)
	r.loaded = nil
	r.d.metrics.restart(r.id)
}

// adoptLoaded is what an adopted charon has loaded: its connections, with
// the digests recorded when they were loaded ("" when unrecorded).
func (r *routerVPN) adoptLoaded(ctx context.Context, sess *Client) map[string]string {
	out := map[string]string{}
	m, err := call(ctx, sess, "get-conns", nil)
	if err != nil {
		r.log.Warn("adopted charon: get-conns", "error", err)
		return out
	}
	var names struct {
		Conns []string `vici:"conns"`
	}
	_ = vici.UnmarshalMessage(m, &names)
	recorded := map[string]string{}
	if data, err := os.ReadFile(filepath.Join(r.opts.Dir, loadedFile)); err == nil {
		_ = json.Unmarshal(data, &recorded)
	}
	for _, n := range names.Conns {
		out[n] = recorded[n]
	}
	return out
}

func (r *routerVPN) saveLoaded() error {
	data, _ := json.Marshal(r.loaded)
	return writeFileAtomic(filepath.Join(r.opts.Dir, loadedFile), data, 0o600)
}

// stop stops the router's charon and removes its state dir. The caller
// holds r.mu.
func (r *routerVPN) stop(ctx context.Context) error {
	r.detach()
	d := r.daemon
	if d == nil {
		var err error
		d, err = Adopt(ctx, r.opts)
		if errors.Is(err, ErrNotRunning) {
			d = nil
		} else if err != nil {
			return err
		}
	}
	if d != nil {
		if err := d.Stop(ctx); err != nil {
			return err
		}
	}
	r.setDaemon(nil)
	r.loaded = nil
	if err := os.RemoveAll(r.opts.Dir); err != nil {
		return err
	}
	r.smu.Lock()
	clear(r.reasons)
	r.smu.Unlock()
	return nil
}

// detach stops the monitor and drops the VICI session, leaving charon
// running. The caller holds r.mu.
func (r *routerVPN) detach() {
	if r.stopMon != nil {
		close(r.stopMon)
		r.stopMon = nil
	}
	if r.daemon != nil {
		r.daemon.Close()
	}
}

// events the monitor subscribes to.
var events = []string{"ike-updown", "child-updown", "ike-rekey", "child-rekey", "log"}

// watch subscribes to the daemon's events and starts its monitor. The
// caller holds r.mu.
func (r *routerVPN) watch(d *Daemon) error {
	ch := make(chan vici.Event, 256)
	if err := d.Client().Subscribe(ch, events...); err != nil {
		return fmt.Errorf("strongswan: subscribe to events: %w", err)
	}
	stop := make(chan struct{})
	r.stopMon = stop
	go r.monitor(d, ch, stop)
	return nil
}

// monitor turns events into status refreshes, polls as a safety net and
// restarts a charon that died.
func (r *routerVPN) monitor(d *Daemon, ch <-chan vici.Event, stop <-chan struct{}) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { <-stop; cancel() }()
	tick := time.NewTicker(r.d.opts.Poll)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case ev, ok := <-ch:
			if !ok { // the session ended: charon died (or we closed it)
				select {
				case <-stop:
					return
				default:
				}
				r.recover(d)
				return
			}
			refresh := r.event(ev)
			// Take whatever else is queued before one refresh.
			for more := true; more; {
				select {
				case ev, ok := <-ch:
					if !ok {
						more = false
						break
					}
					refresh = r.event(ev) || refresh
				default:
					more = false
				}
			}
			if refresh && r.refresh(ctx) {
				r.d.changed(r.id)
			}
		case <-tick.C:
			if !d.Alive() {
				r.recover(d)
				return
			}
			if r.refresh(ctx) {
				r.d.changed(r.id)
			}
			r.retryDown(ctx, d)
		}
	}
}

// recover restarts the router's charon after it died and reloads its
// connections, retrying with backoff until it works or the router's VPN
// goes away.
func (r *routerVPN) recover(dead *Daemon) {
	ctx := r.d.base
	if r.d.isClosed() {
		return
	}
	r.log.Warn("charon died; restarting it", "pid", dead.Pid())
	r.markDaemonDown()
	r.d.changed(r.id)
	r.mu.Lock()
	if r.daemon != dead || ctx.Err() != nil { // replaced, stopped or closed meanwhile
		r.mu.Unlock()
		return
	}
	r.discard(ctx)
	r.mu.Unlock()
	backoff := 200 * time.Millisecond
	for {
		r.mu.Lock()
		if r.daemon != nil || ctx.Err() != nil { // an Apply got there first, or closed
			r.mu.Unlock()
			return
		}
		err := r.apply(ctx)
		r.mu.Unlock()
		if err == nil {
			if r.refresh(ctx) {
				r.d.changed(r.id)
			}
			return
		}
		r.log.Warn("charon restart failed; retrying", "error", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

// markDaemonDown sets every service and connection DOWN (no daemon).
func (r *routerVPN) markDaemonDown() {
	r.smu.Lock()
	defer r.smu.Unlock()
	for id, s := range r.status {
		n := agentv1.VPNStatus{Status: "DOWN", Connections: map[string]agentv1.ConnectionStatus{}}
		for c, cs := range s.Connections {
			if cs.Status == "ACTIVE" {
				cs = agentv1.ConnectionStatus{Status: "DOWN", Reason: "IKE daemon died; restarting it"}
			}
			n.Connections[c] = cs
		}
		r.status[id] = n
	}
}

// InitiationDelay is how long the side with the higher address waits
// before it initiates a bi-directional connection itself (see
// deferInitiation).
var InitiationDelay = 150 * time.Millisecond

// deferInitiation keeps two Neutrino sites from initiating at the same
// moment, which leaves each charon with an IKE_SA whose peer is gone
// (strongSwan destroys a duplicate without notice on INITIAL_CONTACT):
// for a bi-directional connection, the side whose address is higher
// loads it with start_action trap only and initiates after
// InitiationDelay unless the peer did first. Traffic still triggers it
// at once.
func deferInitiation(cfg Config) (Config, bool) {
	child, ok := cfg.Conn.Children[cfg.Name]
	if !ok || child.StartAction != "trap|start" || len(cfg.Conn.LocalAddrs) == 0 || len(cfg.Conn.RemoteAddrs) == 0 {
		return cfg, false
	}
	local, err1 := netip.ParseAddr(cfg.Conn.LocalAddrs[0])
	peer, err2 := netip.ParseAddr(cfg.Conn.RemoteAddrs[0])
	if err1 != nil || err2 != nil || local.Compare(peer) <= 0 {
		return cfg, false
	}
	child.StartAction = "trap"
	out := cfg
	out.Conn.Children = map[string]ChildConn{cfg.Name: child}
	return out, true
}

// initiateIfIdle initiates a connection that has no IKE_SA yet.
func (r *routerVPN) initiateIfIdle(id string) {
	d := r.currentDaemon()
	if d == nil || d.Client() == nil || r.d.isClosed() {
		return
	}
	ctx := r.d.base
	sas, err := listSAs(ctx, d.Client())
	if err != nil {
		return
	}
	if _, busy := sas[id]; busy {
		return
	}
	r.smu.Lock()
	_, wanted := r.conns[id]
	r.smu.Unlock()
	if !wanted {
		return
	}
	if _, err := call(ctx, d.Client(), "initiate", msg("child", id, "ike", id, "timeout", "-1")); err != nil {
		r.log.Debug("initiate", "connection", id, "error", err)
	}
}

// retryDown initiates bi-directional connections that have no IKE_SA at
// all (the peer was not there yet, or gave up), without waiting.
func (r *routerVPN) retryDown(ctx context.Context, d *Daemon) {
	r.smu.Lock()
	var ids []string
	for _, s := range r.status {
		for id, cs := range s.Connections {
			if cs.Status == "DOWN" && r.conns[id].initiator == "bi-directional" {
				ids = append(ids, id)
			}
		}
	}
	r.smu.Unlock()
	if len(ids) == 0 {
		return
	}
	sess := d.Client()
	if sess == nil {
		return
	}
	sas, err := listSAs(ctx, sess)
	if err != nil {
		return
	}
	for _, id := range ids {
		if _, busy := sas[id]; busy {
			continue
		}
		if _, err := call(ctx, sess, "initiate", msg("child", id, "ike", id, "timeout", "-1")); err != nil {
			r.log.Debug("initiate", "connection", id, "error", err)
		}
	}
}

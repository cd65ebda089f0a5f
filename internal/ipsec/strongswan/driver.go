package strongswan

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/neutrino-net/neutrino/api/agentv1"
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

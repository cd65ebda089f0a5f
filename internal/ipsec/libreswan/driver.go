package libreswan

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/neutrino-net/neutrino/api/agentv1"
)

// DriverName is the device driver name providers select
// (service_provider = VPN:<name>:libreswan).
const DriverName = "libreswan"

// loadedFile records, in a router's pluto dir, what the driver loaded
// (connection id -> digest of its config and key), so that a restarted
// agent adopting the pluto knows what is current without reloading.
const loadedFile = "neutrino-loaded.json"

// DriverOptions configure the Libreswan device driver of one agent.
type DriverOptions struct {
	// StateDir holds one directory per router with Libreswan VPN
	// services: its pluto's config, secrets, NSS database, control
	// socket and log (see Options.Dir).
	StateDir string
	// NetnsDir is where the routers' named network namespaces are.
	NetnsDir string
	// Root is the tree holding Libreswan's programs (usr/libexec/ipsec);
	// default "/".
	Root string
	// Unavailable, when set, is why this host cannot run Libreswan's
	// data plane (the kernel has no ESP): every connection is reported
	// ERROR with it and no pluto runs.
	Unavailable string
	Logger      *slog.Logger
	// OnChange is called when a router's VPN status may have changed. It
	// is called without the driver's locks held and must not block long.
	OnChange func(routerID string)
	// Poll is the period of the safety-net status refresh (default 10s);
	// LogPoll how often pluto's log and liveness are checked (default
	// 200ms: a tunnel shows ACTIVE well within a second of its SA).
	Poll, LogPoll time.Duration
	// Debug is pluto's plutodebug= ("" none).
	Debug string
}

// Driver is the Libreswan device driver: one pluto per router with
// services of a libreswan provider, in the router's namespace and a
// private mount namespace; connections are added and removed one by one
// with addconn and whack; status comes from pluto's reports and log.
type Driver struct {
	opts    DriverOptions
	log     *slog.Logger
	metrics *driverMetrics
	base    context.Context
	cancel  context.CancelFunc

	mu      sync.Mutex
	routers map[string]*router
	closed  bool
}

// NewDriver returns a driver; it starts nothing until Apply.
func NewDriver(opts DriverOptions) (*Driver, error) {
	if opts.StateDir == "" || opts.NetnsDir == "" {
		return nil, errors.New("libreswan: driver needs StateDir and NetnsDir")
	}
	if opts.Root == "" {
		opts.Root = "/"
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Poll == 0 {
		opts.Poll = 10 * time.Second
	}
	if opts.LogPoll == 0 {
		opts.LogPoll = 200 * time.Millisecond
	}
	if err := os.MkdirAll(opts.StateDir, 0o700); err != nil {
		return nil, err
	}
	base, cancel := context.WithCancel(context.Background())
	return &Driver{opts: opts, log: opts.Logger.With("driver", DriverName), metrics: newDriverMetrics(),
		base: base, cancel: cancel, routers: map[string]*router{}}, nil
}

func (d *Driver) router(id string) *router {
	d.mu.Lock()
	defer d.mu.Unlock()
	r := d.routers[id]
	if r == nil {
		r = &router{d: d, id: id, log: d.log.With("router", id), status: map[string]agentv1.VPNStatus{},
			reasons: map[string]reason{}, errs: map[string]string{},
			opts: Options{Dir: filepath.Join(d.opts.StateDir, id), Root: d.opts.Root,
				Netns: filepath.Join(d.opts.NetnsDir, agentv1.RouterNamespace(id)), Debug: d.opts.Debug, Logger: d.log}}
		d.routers[id] = r
	}
	return r
}

// Apply makes the router's pluto run exactly the given services'
// connections: it starts or adopts the pluto, adds what is new or
// changed, deletes what is gone and leaves everything else, established
// SAs included, alone. With nothing to run it stops the pluto and
// removes its directory.
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

// Delete stops the router's pluto and removes its directory.
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

// Sweep stops the plutos of routers not in wanted (left from before a
// restart) and removes their directories; routers in wanted are left for
// Apply to adopt.
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
		d.log.Info("removing Libreswan state of a router this host no longer has", "router", e.Name())
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

// Pid returns the pid of the router's pluto (0 if none runs).
func (d *Driver) Pid(routerID string) int {
	d.mu.Lock()
	r := d.routers[routerID]
	d.mu.Unlock()
	if r == nil {
		return 0
	}
	if p := r.current(); p != nil && p.Alive() {
		return p.Pid()
	}
	return 0
}

// SAs returns, per connection, the serial numbers of the states (IKE and
// IPsec SAs) the router's pluto has: a change elsewhere must leave them
// as they are.
func (d *Driver) SAs(ctx context.Context, routerID string) (map[string][]int, error) {
	d.mu.Lock()
	r := d.routers[routerID]
	d.mu.Unlock()
	if r == nil {
		return nil, nil
	}
	p := r.current()
	if p == nil {
		return nil, nil
	}
	out, err := p.ShowStates(ctx)
	if err != nil {
		return nil, err
	}
	sas := map[string][]int{}
	for _, s := range ParseShowStates(out) {
		sas[s.Conn] = append(sas[s.Conn], s.Serial)
	}
	return sas, nil
}

// Close stops watching and leaves every pluto running with its tunnels
// (agent shutdown or restart).
func (d *Driver) Close() {
	d.mu.Lock()
	d.closed = true
	d.cancel()
	routers := make([]*router, 0, len(d.routers))
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

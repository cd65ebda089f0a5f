package strongswan

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/strongswan/govici/vici"
)

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

	scraping atomic.Bool // a metrics scrape's list-sas is running
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
	shared, err := LoadShared(cfg)
	if err != nil {
		return err
	}
	if _, err := call(ctx, sess, "load-shared", shared); err != nil {
		return err
	}
	conn, err := LoadConn(cfg)
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
	sas, _ := listSAs(ctx, sess)
	r.terminate(ctx, sess, id, sas[id].ikeIDs)
	if _, err := call(ctx, sess, "unload-conn", msg("name", id)); err != nil && !errors.Is(err, ErrGone) {
		r.log.Warn("unload-conn", "connection", id, "error", err)
	}
	if _, err := call(ctx, sess, "unload-shared", msg("id", SharedID(id))); err != nil && !errors.Is(err, ErrGone) {
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
		// A charon that died left its SAs and policies in the kernel.
		if r.opts.DataPlane == DataPlaneXFRM {
			if err := FlushXFRM(r.opts.Netns); err != nil {
				return err
			}
		}
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

// terminate has charon delete a connection's IKE_SAs (and so their
// CHILD_SAs) by unique id, sending the peer its DELETE. timeout -1:
// charon answers at once and deletes on its own. Errors for SAs already
// gone are expected.
func (r *routerVPN) terminate(ctx context.Context, sess *Client, conn string, ikeIDs []string) {
	for _, ikeID := range ikeIDs {
		_, err := call(ctx, sess, "terminate", msg("ike-id", ikeID, "timeout", "-1"))
		if err != nil && !errors.Is(err, ErrGone) {
			r.log.Info("terminate", "connection", conn, "ike_sa", ikeID, "result", err)
		}
	}
}

// deleteAll terminates every IKE_SA before charon stops and waits up to
// deleteGrace for them to go (the peers' answers to the DELETEs). A peer
// that is not told keeps its SAs until DPD gives up, and its traffic
// meanwhile goes to SAs nobody holds (seen in the lab when a VPN service
// went admin down and up: the peer's tunnel stayed dead until then).
func (r *routerVPN) deleteAll(ctx context.Context, sess *Client) {
	sas, err := listSAs(ctx, sess)
	if err != nil || len(sas) == 0 {
		return
	}
	for conn, sa := range sas {
		r.terminate(ctx, sess, conn, sa.ikeIDs)
	}
	wait, cancel := context.WithTimeout(ctx, deleteGrace)
	defer cancel()
	for {
		left, err := listSAs(wait, sess)
		if err != nil || len(left) == 0 {
			return
		}
		select {
		case <-wait.Done():
			r.log.Info("IKE_SAs still deleting at charon's stop", "left", len(left))
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// deleteGrace bounds deleteAll's wait: the DELETEs are sent at once, and
// an unreachable peer would hold its IKE_SA for the whole retransmission
// schedule.
const deleteGrace = time.Second

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
		if sess := d.Client(); sess != nil && d.Alive() {
			r.deleteAll(ctx, sess)
		}
		if err := d.Stop(ctx); err != nil {
			return err
		}
	}
	// Only a router where a charon ran (its state dir is there) has
	// charon's states to flush: another driver (Libreswan's pluto) may
	// own the namespace's XFRM states of a router without strongSwan
	// services, and an Apply with none must leave them alone.
	_, statErr := os.Stat(r.opts.Dir)
	if r.opts.DataPlane == DataPlaneXFRM && (d != nil || statErr == nil) {
		if err := FlushXFRM(r.opts.Netns); err != nil {
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

package libreswan

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/neutrino-net/neutrino/internal/ipsec/lsconf"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// router is one router's pluto and what is loaded into it.
type router struct {
	d    *Driver
	id   string
	log  *slog.Logger
	opts Options

	mu      sync.Mutex // serialises apply, stop and crash recovery
	desired []agentv1.VPNService
	pluto   *Pluto
	loaded  map[string]string // connection id -> digest
	stopMon chan struct{}

	// smu guards what status refreshes read; they never wait for mu.
	smu      sync.Mutex
	live     *Pluto               // = pluto
	services []agentv1.VPNService // = desired
	status   map[string]agentv1.VPNStatus
	reasons  map[string]reason // connection id -> last negotiation failure
	errs     map[string]string // connection id -> why it cannot run (ERROR)
	conns    map[string]connInfo

	scraping atomic.Bool
}

// reason is a connection's last negotiation failure, from the state
// serial (0: none) whose line set it; fresh says a new attempt started
// since it was set (any failure then replaces it).
type reason struct {
	text   string
	rank   int
	serial int
	fresh  bool
}

// nextReason is a connection's reason after ev, given its current one
// (had says it has one), and whether it has one then. A new attempt, the
// connection initiating again or a failure of a newer state than the
// reason's (the peer's next try, which we answer), takes any failure;
// within one attempt a more telling reason is kept over a less telling
// one (a timeout after NO_PROPOSAL_CHOSEN is still "no proposal chosen");
// an established IPsec SA clears it.
func nextReason(cur reason, had bool, ev LogEvent) (reason, bool) {
	switch {
	case ev.Initiating:
		if had {
			cur.fresh = true
		}
		return cur, had
	case ev.Reason != "":
		newer := ev.Serial != 0 && cur.serial != 0 && ev.Serial > cur.serial
		if !had || cur.fresh || newer || ev.Rank >= cur.rank {
			return reason{text: ev.Reason, rank: ev.Rank, serial: ev.Serial}, true
		}
	case ev.Up && ev.Child:
		return reason{}, false
	}
	return cur, had
}

type connInfo struct {
	initiator string
	peer      string // peer address as pluto logs it
}

// wanted is one connection to run.
type wanted struct {
	conn   lsconf.Conn
	digest string
}

// digest identifies a connection's whole configuration, its key
// included (SHA-256; the file holding it is readable by root only).
func digest(c lsconf.Conn) string {
	h := sha256.Sum256([]byte(c.Conf + "\x00" + c.Secrets))
	return hex.EncodeToString(h[:])
}

func (r *router) setPluto(p *Pluto) {
	r.pluto = p
	r.smu.Lock()
	r.live = p
	r.smu.Unlock()
}

func (r *router) current() *Pluto {
	r.smu.Lock()
	defer r.smu.Unlock()
	return r.live
}

// plan maps the desired services to the connections to run and the
// per-connection errors.
func (r *router) plan() (run map[string]wanted, errs map[string]string, info map[string]connInfo) {
	run, errs, info = map[string]wanted{}, map[string]string{}, map[string]connInfo{}
	for _, s := range r.desired {
		for _, c := range s.Connections {
			info[c.ID] = connInfo{initiator: c.Initiator, peer: c.PeerAddress}
			if !s.AdminStateUp || !c.AdminStateUp {
				continue
			}
			if s.Driver != "" && s.Driver != DriverName {
				errs[c.ID] = fmt.Sprintf("service provider %q uses device driver %q, not %s", s.Provider, s.Driver, DriverName)
				continue
			}
			if r.d.opts.Unavailable != "" {
				errs[c.ID] = r.d.opts.Unavailable
				continue
			}
			lc, err := lsconf.Render(c)
			if err != nil {
				errs[c.ID] = err.Error()
				continue
			}
			run[c.ID] = wanted{conn: lc, digest: digest(lc)}
		}
	}
	return run, errs, info
}

// apply realises r.desired. The caller holds r.mu.
func (r *router) apply(ctx context.Context) error {
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
	if err := r.ensurePluto(ctx); err != nil {
		return err
	}
	p := r.pluto
	var failures []error
	for _, id := range slices.Sorted(maps.Keys(r.loaded)) {
		if w, ok := run[id]; ok && w.digest == r.loaded[id] {
			continue
		}
		if _, ok := run[id]; !ok {
			// Gone. A changed one is replaced by Load below.
			if err := p.Delete(ctx, id); err != nil {
				r.log.Info("whack --delete", "connection", id, "result", err)
			}
			r.log.Info("connection deleted", "connection", id)
		}
		delete(r.loaded, id)
	}
	for _, id := range slices.Sorted(maps.Keys(run)) {
		w := run[id]
		if dg, ok := r.loaded[id]; ok && dg == w.digest {
			continue
		}
		// Load deletes the old connection of this name (its SAs go), then
		// adds the new one; only this connection is touched.
		if err := p.Load(ctx, id, w.conn.Conf, w.conn.Secrets); err != nil {
			failures = append(failures, fmt.Errorf("connection %s: %w", id, err))
			// pluto refused what lsconf rendered: the connection cannot run.
			r.smu.Lock()
			r.errs[id] = "pluto refused the connection: " + err.Error()
			r.smu.Unlock()
			continue
		}
		r.clearReason(id)
		r.loaded[id] = w.digest
		if w.conn.Initiate {
			if err := p.Initiate(ctx, id); err != nil {
				failures = append(failures, fmt.Errorf("connection %s: %w", id, err))
			}
		}
		r.log.Info("connection added", "connection", id, "initiate", w.conn.Initiate)
	}
	if err := r.saveLoaded(); err != nil {
		failures = append(failures, err)
	}
	return errors.Join(failures...)
}

func (r *router) clearReason(id string) {
	r.smu.Lock()
	defer r.smu.Unlock()
	delete(r.reasons, id)
}

// ensurePluto adopts the router's running pluto or starts one, and
// watches it. The caller holds r.mu.
func (r *router) ensurePluto(ctx context.Context) error {
	if r.pluto != nil && r.pluto.Alive() {
		return nil
	}
	died := false
	if r.pluto != nil {
		r.log.Warn("pluto is gone; starting a new one", "pid", r.pluto.Pid())
		r.discard(ctx)
		died = true
	}
	p, err := Adopt(ctx, r.opts)
	adopted := err == nil
	if errors.Is(err, ErrNotRunning) {
		// A pluto that died (seen now, or before an agent restart: its
		// pid file is left) left its SAs and policies in the kernel. A
		// first start flushes nothing: another driver may own states
		// in the namespace.
		if _, serr := os.Stat(filepath.Join(r.opts.Dir, PidFile)); died || serr == nil {
			if err := flushXFRM(r.opts.Netns); err != nil {
				return err
			}
		}
		p, err = Start(ctx, r.opts)
	}
	if err != nil {
		return err
	}
	r.setPluto(p)
	r.loaded = map[string]string{}
	if adopted {
		r.loaded = r.adoptLoaded(ctx, p)
	}
	r.watch(p)
	return nil
}

// discard drops a dead pluto so that a new one starts. The caller holds
// r.mu.
func (r *router) discard(ctx context.Context) {
	r.detach()
	if err := r.pluto.Stop(ctx); err != nil {
		r.log.Warn("stopping the dead pluto", "error", err)
	}
	r.setPluto(nil)
	r.loaded = nil
	r.d.metrics.restart(r.id)
}

// adoptLoaded is what an adopted pluto has of what was recorded: the
// recorded digests of the connections pluto still lists.
func (r *router) adoptLoaded(ctx context.Context, p *Pluto) map[string]string {
	out := map[string]string{}
	st, err := p.Status(ctx)
	if err != nil {
		r.log.Warn("adopted pluto: whack --status", "error", err)
		return out
	}
	recorded := map[string]string{}
	if data, err := os.ReadFile(filepath.Join(r.opts.Dir, loadedFile)); err == nil {
		_ = json.Unmarshal(data, &recorded)
	}
	for _, n := range ParseConnNames(st) {
		if dg, ok := recorded[n]; ok {
			out[n] = dg
		}
	}
	return out
}

func (r *router) saveLoaded() error {
	data, _ := json.Marshal(r.loaded)
	return writeFile(filepath.Join(r.opts.Dir, loadedFile), string(data))
}

// stop stops the router's pluto and removes its directory. The caller
// holds r.mu.
func (r *router) stop(ctx context.Context) error {
	r.detach()
	p := r.pluto
	if p == nil {
		if _, err := os.Stat(r.opts.Dir); os.IsNotExist(err) {
			// Never ran here (a router without Libreswan services): the
			// agent calls every driver for every router.
			return nil
		}
	}
	if p == nil {
		var err error
		p, err = Adopt(ctx, r.opts)
		if errors.Is(err, ErrNotRunning) {
			p = nil
		} else if err != nil {
			return err
		}
	}
	if p != nil {
		if err := p.Stop(ctx); err != nil {
			return err
		}
		// pluto removes its own SAs on shutdown; larval states of
		// packets that hit its policies linger.
		if err := flushXFRM(r.opts.Netns); err != nil {
			return err
		}
	}
	r.setPluto(nil)
	r.loaded = nil
	if err := os.RemoveAll(r.opts.Dir); err != nil {
		return err
	}
	r.smu.Lock()
	clear(r.reasons)
	r.smu.Unlock()
	return nil
}

// detach stops the monitor, leaving pluto running. The caller holds r.mu.
func (r *router) detach() {
	if r.stopMon != nil {
		close(r.stopMon)
		r.stopMon = nil
	}
	if r.pluto != nil {
		r.pluto.Release()
	}
}

// flushXFRM removes the XFRM states and policies of the router namespace
// at netnsPath (a namespace that is gone has none).
func flushXFRM(netnsPath string) error {
	ns, err := netns.GetFromPath(netnsPath)
	if err != nil {
		return nil
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_XFRM)
	if err != nil {
		return fmt.Errorf("libreswan: xfrm in %s: %w", netnsPath, err)
	}
	defer h.Close()
	if err := h.XfrmPolicyFlush(); err != nil {
		return fmt.Errorf("libreswan: flush xfrm policies in %s: %w", netnsPath, err)
	}
	if err := h.XfrmStateFlush(0); err != nil {
		return fmt.Errorf("libreswan: flush xfrm states in %s: %w", netnsPath, err)
	}
	return nil
}

// snapshot is one reading of pluto's reports.
type snapshot struct {
	alive   bool
	states  []State
	traffic []Traffic
}

func (r *router) read(ctx context.Context) snapshot {
	p := r.current()
	if p == nil || !p.Alive() {
		return snapshot{}
	}
	ss, err := p.ShowStates(ctx)
	if err != nil {
		r.log.Debug("whack --showstates", "error", err)
		return snapshot{}
	}
	ts, err := p.TrafficStatus(ctx)
	if err != nil {
		r.log.Debug("whack --trafficstatus", "error", err)
		return snapshot{}
	}
	return snapshot{alive: true, states: ParseShowStates(ss), traffic: ParseTrafficStatus(ts)}
}

// refresh recomputes the router's status from pluto's reports and says
// whether it changed.
func (r *router) refresh(ctx context.Context) bool {
	snap := r.read(ctx)
	up := map[string]bool{}
	ike := map[string]string{}
	for _, s := range snap.states {
		if s.Child && s.Established {
			up[s.Conn] = true
		} else if !s.Child && ike[s.Conn] == "" {
			ike[s.Conn] = s.Name
		}
	}
	for _, t := range snap.traffic {
		up[t.Conn] = true
	}
	r.smu.Lock()
	defer r.smu.Unlock()
	next := map[string]agentv1.VPNStatus{}
	for _, s := range r.services {
		vs := agentv1.VPNStatus{Status: "DOWN", Connections: map[string]agentv1.ConnectionStatus{}}
		for _, c := range s.Connections {
			cs := agentv1.ConnectionStatus{Status: "DOWN"}
			switch {
			case r.errs[c.ID] != "":
				cs = agentv1.ConnectionStatus{Status: "ERROR", Reason: r.errs[c.ID]}
			case !s.AdminStateUp || !c.AdminStateUp:
			case snap.alive && up[c.ID]:
				cs.Status = "ACTIVE"
				delete(r.reasons, c.ID)
			case r.reasons[c.ID].text != "":
				cs.Reason = r.reasons[c.ID].text
			case !snap.alive:
				cs.Reason = "IKE daemon (pluto) not running"
			case ike[c.ID] != "":
				cs.Reason = "negotiating (" + strings.ToLower(strings.TrimPrefix(ike[c.ID], "STATE_")) + ")"
			case r.conns[c.ID].initiator == "response-only":
				cs.Reason = "waiting for the peer to initiate (initiator response-only)"
			}
			if cs.Status == "ACTIVE" && s.AdminStateUp {
				vs.Status = "ACTIVE"
			}
			vs.Connections[c.ID] = cs
		}
		next[s.ID] = vs
	}
	changed := !maps.EqualFunc(next, r.status, func(a, b agentv1.VPNStatus) bool {
		return a.Status == b.Status && maps.Equal(a.Connections, b.Connections)
	})
	r.status = next
	return changed
}

// logEvent applies one parsed log line; it returns whether the status
// may have changed.
func (r *router) logEvent(ev LogEvent) bool {
	r.smu.Lock()
	ids := []string{}
	if ev.Conn != "" {
		if _, ok := r.conns[ev.Conn]; ok {
			ids = append(ids, ev.Conn)
		}
	} else if ev.Peer != "" {
		for id, ci := range r.conns {
			if ci.peer == ev.Peer {
				ids = append(ids, id)
			}
		}
	}
	changed := false
	for _, id := range ids {
		cur, had := r.reasons[id]
		next, has := nextReason(cur, had, ev)
		switch {
		case !has:
			delete(r.reasons, id)
		case next != cur:
			if ev.Reason != "" && next.text != cur.text {
				r.log.Info("negotiation failed", "connection", id, "reason", next.text)
			}
			r.reasons[id] = next
		}
		changed = changed || ev.Up || ev.Down || has != had || next.text != cur.text
	}
	r.smu.Unlock()
	for _, id := range ids {
		if ev.Up || ev.Down {
			sa := "ike"
			if ev.Child {
				sa = "child"
			}
			r.d.metrics.event(r.id, id, sa, ev.Up)
			if ev.Rekey {
				r.d.metrics.rekey(r.id, id, sa)
			}
		}
	}
	return changed
}

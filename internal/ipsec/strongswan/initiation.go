package strongswan

import (
	"context"
	"net/netip"
	"time"
)

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

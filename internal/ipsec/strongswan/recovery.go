package strongswan

import (
	"time"

	"github.com/neutrino-net/neutrino/api/agentv1"
)

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

package strongswan

import (
	"context"
	"maps"
	"strconv"
	"strings"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/strongswan/govici/vici"
)

// saInfo is one connection's SAs as list-sas shows them.
type saInfo struct {
	ikeState  string   // ESTABLISHED, CONNECTING, ...
	ikeIDs    []string // unique ids of all its IKE_SAs
	half      []string // ... of our initiations the peer never answered
	installed bool     // a CHILD_SA of the connection is INSTALLED
	encap     bool     // ... and its ESP is UDP-encapsulated (NAT detected)
	traffic   childTraffic
}

// childTraffic sums the counters of a connection's CHILD_SAs.
type childTraffic struct {
	bytesIn, bytesOut, packetsIn, packetsOut uint64
}

// listSAs returns the SAs of every connection (by IKE config name).
func listSAs(ctx context.Context, sess *Client) (map[string]saInfo, error) {
	out := map[string]saInfo{}
	err := sess.Stream(ctx, "list-sas", "list-sa", nil, func(m *vici.Message) {
		for _, name := range m.Keys() {
			ike, ok := m.Get(name).(*vici.Message)
			if !ok {
				continue
			}
			info := out[name]
			id, _ := ike.Get("uniqueid").(string)
			if id != "" {
				info.ikeIDs = append(info.ikeIDs, id)
			}
			st, _ := ike.Get("state").(string)
			if st == "CONNECTING" && ike.Get("initiator") == "yes" {
				// Unanswered: the peer holds no state for it.
				if spi, _ := ike.Get("responder-spi").(string); strings.Trim(spi, "0") == "" {
					info.half = append(info.half, id)
				}
			}
			if info.ikeState != "ESTABLISHED" {
				info.ikeState = st
			}
			if children, ok := ike.Get("child-sas").(*vici.Message); ok {
				for _, k := range children.Keys() {
					c, ok := children.Get(k).(*vici.Message)
					if !ok {
						continue
					}
					if st, _ := c.Get("state").(string); st == "INSTALLED" && c.Get("name") == name {
						info.installed = true
						info.encap = info.encap || c.Get("encap") == "yes"
					}
					info.traffic.bytesIn += counter(c, "bytes-in")
					info.traffic.bytesOut += counter(c, "bytes-out")
					info.traffic.packetsIn += counter(c, "packets-in")
					info.traffic.packetsOut += counter(c, "packets-out")
				}
			}
			out[name] = info
		}
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func counter(m *vici.Message, key string) uint64 {
	s, _ := m.Get(key).(string)
	n, _ := strconv.ParseUint(s, 10, 64)
	return n
}

// refresh recomputes the router's status from list-sas and reports
// whether it changed. Without a live daemon every connection is DOWN.
func (r *routerVPN) refresh(ctx context.Context) bool {
	var sas map[string]saInfo
	alive := false
	r.smu.Lock()
	conns := r.conns
	r.smu.Unlock()
	if d := r.currentDaemon(); d != nil && d.Alive() {
		if sess := d.Client(); sess != nil {
			var err error
			sas, err = listSAs(ctx, sess)
			alive = err == nil
			if err != nil {
				r.log.Debug("list-sas", "error", err)
			}
		}
	}
	if alive {
		r.dropHalfOpen(ctx, sas)
	}
	r.smu.Lock()
	defer r.smu.Unlock()
	next := map[string]agentv1.VPNStatus{}
	for _, s := range r.services {
		vs := agentv1.VPNStatus{Status: "DOWN", Connections: map[string]agentv1.ConnectionStatus{}}
		for _, c := range s.Connections {
			cs := agentv1.ConnectionStatus{Status: "DOWN"}
			sa := sas[c.ID]
			switch {
			case r.errs[c.ID] != "":
				cs = agentv1.ConnectionStatus{Status: "ERROR", Reason: r.errs[c.ID]}
			case !s.AdminStateUp || !c.AdminStateUp:
			case alive && sa.installed:
				cs.Status = "ACTIVE"
				delete(r.reasons, c.ID)
			case r.reasons[c.ID] != "":
				cs.Reason = r.reasons[c.ID]
			case !alive:
				cs.Reason = "IKE daemon not running"
			case sa.ikeState != "":
				cs.Reason = "negotiating (IKE_SA " + strings.ToLower(sa.ikeState) + ")"
			case conns[c.ID].initiator == "response-only":
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

// dropHalfOpen terminates our own initiations that the peer never
// answered, of connections that are up. When the first side's connection
// is loaded before the peer has one, its IKE_SA_INIT goes unanswered and
// is retransmitted; the peer's own initiation meanwhile brings the tunnel
// up, and the late retransmission would make a second IKE_SA. An
// initiation the peer answered is left to finish: the peer holds state
// for it.
func (r *routerVPN) dropHalfOpen(ctx context.Context, sas map[string]saInfo) {
	d := r.currentDaemon()
	if d == nil || d.Client() == nil {
		return
	}
	for name, sa := range sas {
		if !sa.installed {
			continue
		}
		for _, id := range sa.half {
			// The list may be old by now: an answer that arrived since
			// makes the peer hold state, and destroying our side then
			// (strongSwan sends no notification for a CONNECTING IKE_SA)
			// would leave the peer sending into a CHILD_SA we no longer
			// have. Look again, skipping an IKE_SA that is busy (being
			// answered), right before terminating.
			if !stillHalfOpen(ctx, d.Client(), id) {
				continue
			}
			if _, err := call(ctx, d.Client(), "terminate", msg("ike-id", id, "timeout", "-1")); err == nil {
				r.log.Debug("pending initiation dropped: the connection is up", "connection", name, "ike_sa", id)
			}
		}
	}
}

// stillHalfOpen reports whether our initiation ike-id is, now, still
// unanswered; a busy IKE_SA (noblock skips it) is not.
func stillHalfOpen(ctx context.Context, sess *Client, id string) bool {
	half := false
	err := sess.Stream(ctx, "list-sas", "list-sa", msg("ike-id", id, "noblock", "yes"), func(m *vici.Message) {
		for _, name := range m.Keys() {
			ike, ok := m.Get(name).(*vici.Message)
			if !ok || ike.Get("uniqueid") != id {
				continue
			}
			spi, _ := ike.Get("responder-spi").(string)
			half = ike.Get("state") == "CONNECTING" && strings.Trim(spi, "0") == ""
		}
	})
	return err == nil && half
}

// currentDaemon returns the daemon without waiting for r.mu when it is
// held by a long apply: refresh is called both under r.mu and from the
// monitor.
func (r *routerVPN) currentDaemon() *Daemon {
	r.smu.Lock()
	defer r.smu.Unlock()
	return r.live
}

// failures maps charon log messages of a failed negotiation to the reason
// a connection shows. The first match wins; the messages are those of
// strongSwan 5.9 at log level 1.
var failures = []struct{ match, reason string }{
	{"MAC mismatched", "authentication failed: the pre-shared keys differ"},
	{"AUTHENTICATION_FAILED", "authentication failed: the peer rejected our pre-shared key or identity"},
	{"no shared key found", "authentication failed: no pre-shared key for these identities (check local_id and peer_id)"},
	{"NO_PROPOSAL_CHOSEN", "no proposal chosen: the peer accepts none of our algorithms"},
	{"no acceptable proposal found", "no proposal chosen: none of the peer's algorithms matches the policies"},
	{"TS_UNACCEPTABLE", "traffic selectors unacceptable: local and peer CIDRs do not match the peer's"},
	{"no matching peer config found", "no matching peer config: the peer's identity or address matches no connection"},
	{"giving up after", "peer unreachable: no answer to IKE messages"},
	{"INVALID_SYNTAX", "IKE negotiation failed: invalid syntax"},
}

// event handles one VICI event; it returns whether the status may have
// changed.
func (r *routerVPN) event(ev vici.Event) bool {
	m := ev.Message
	switch ev.Name {
	case "log":
		name, _ := m.Get("ikesa-name").(string)
		text, _ := m.Get("msg").(string)
		if name == "" || text == "" {
			return false
		}
		for _, f := range failures {
			if strings.Contains(text, f.match) {
				r.smu.Lock()
				_, known := r.conns[name]
				prev := r.reasons[name]
				if known {
					r.reasons[name] = f.reason
				}
				r.smu.Unlock()
				if known && prev != f.reason {
					r.log.Info("negotiation failed", "connection", name, "reason", f.reason)
				}
				return known && prev != f.reason
			}
		}
		return false
	case "ike-updown", "child-updown":
		up := m.Get("up") == "yes"
		for _, name := range m.Keys() {
			if _, ok := m.Get(name).(*vici.Message); ok {
				r.d.metrics.event(r.id, name, strings.TrimSuffix(ev.Name, "-updown"), up)
				if up && ev.Name == "child-updown" {
					r.setReason(name, "")
				}
			}
		}
		return true
	case "ike-rekey", "child-rekey":
		for _, name := range m.Keys() {
			if _, ok := m.Get(name).(*vici.Message); ok {
				r.d.metrics.rekey(r.id, name, strings.TrimSuffix(ev.Name, "-rekey"))
			}
		}
		return true
	}
	return false
}

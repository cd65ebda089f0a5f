package libreswan

import (
	"context"
	"io"
	"os"
	"strings"
	"time"

	"github.com/neutrino-net/neutrino/api/agentv1"
)

// watch starts the router's monitor for p. The caller holds r.mu.
func (r *router) watch(p *Pluto) {
	stop := make(chan struct{})
	r.stopMon = stop
	var from int64
	if fi, err := os.Stat(p.LogPath()); err == nil {
		from = fi.Size() // what happened before is not news
	}
	go r.monitor(p, from, stop)
}

// monitor follows pluto's log (failures, SAs coming and going: a refresh
// from whack's reports at once), polls as a safety net and restarts a
// pluto that died.
func (r *router) monitor(p *Pluto, offset int64, stop <-chan struct{}) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { <-stop; cancel() }()
	logTick := time.NewTicker(r.d.opts.LogPoll)
	defer logTick.Stop()
	poll := time.NewTicker(r.d.opts.Poll)
	defer poll.Stop()
	var partial string
	for {
		select {
		case <-stop:
			return
		case <-p.done:
			select {
			case <-stop:
				return
			default:
			}
			r.recover(p)
			return
		case <-logTick.C:
			var lines []string
			lines, offset, partial = readLog(p.LogPath(), offset, partial)
			refresh := false
			for _, l := range lines {
				refresh = r.logEvent(ParseLogLine(l)) || refresh
			}
			if refresh && r.refresh(ctx) {
				r.d.changed(r.id)
			}
		case <-poll.C:
			if r.refresh(ctx) {
				r.d.changed(r.id)
			}
		}
	}
}

// readLog returns the complete lines appended to path since offset, the
// new offset and an incomplete last line to prepend next time. A log
// that shrank (rotated) is read from its start.
func readLog(path string, offset int64, partial string) ([]string, int64, string) {
	f, err := os.Open(path)
	if err != nil {
		return nil, offset, partial
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() == offset {
		return nil, offset, partial
	}
	if fi.Size() < offset {
		offset, partial = 0, ""
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return nil, offset, partial
	}
	const max = 1 << 20
	buf := make([]byte, min(fi.Size()-offset, max))
	n, _ := io.ReadFull(f, buf)
	offset += int64(n)
	text := partial + string(buf[:n])
	lines := strings.Split(text, "\n")
	return lines[:len(lines)-1], offset, lines[len(lines)-1]
}

// recover restarts the router's pluto after it died and loads its
// connections again, retrying with backoff until it works or the
// router's VPN goes away.
func (r *router) recover(dead *Pluto) {
	ctx := r.d.base
	if r.d.isClosed() {
		return
	}
	r.log.Warn("pluto died; restarting it", "pid", dead.Pid())
	r.markDown()
	r.d.changed(r.id)
	r.mu.Lock()
	if r.pluto != dead || ctx.Err() != nil {
		r.mu.Unlock()
		return
	}
	r.discard(ctx)
	r.mu.Unlock()
	backoff := 200 * time.Millisecond
	for {
		r.mu.Lock()
		if r.pluto != nil || ctx.Err() != nil {
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
		r.log.Warn("pluto restart failed; retrying", "error", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

// markDown sets every ACTIVE connection DOWN (no daemon).
func (r *router) markDown() {
	r.smu.Lock()
	defer r.smu.Unlock()
	for id, s := range r.status {
		n := agentv1.VPNStatus{Status: "DOWN", Connections: map[string]agentv1.ConnectionStatus{}}
		for c, cs := range s.Connections {
			if cs.Status == "ACTIVE" {
				cs = agentv1.ConnectionStatus{Status: "DOWN", Reason: "IKE daemon (pluto) died; restarting it"}
			}
			n.Connections[c] = cs
		}
		r.status[id] = n
	}
}

package strongswan

import (
	"context"
	"fmt"
	"time"

	"github.com/strongswan/govici/vici"
)

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

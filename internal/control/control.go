// Package control is the server's side of the bus: it answers agents'
// state requests, takes their heartbeats and status reports to the service
// layer, and publishes the service's hints.
package control

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/neutrino-net/neutrino/internal/bus"
	"github.com/neutrino-net/neutrino/internal/service"
)

// queue spreads agents' messages over every server sharing the bus.
const queue = "neutrino-servers"

// Control serves agents for one server.
type Control struct {
	svc  *service.Service
	nc   *nats.Conn
	log  *slog.Logger
	subs []*nats.Subscription
}

// New subscribes to the agents' subjects on nc.
func New(svc *service.Service, nc *nats.Conn, log *slog.Logger) (*Control, error) {
	c := &Control{svc: svc, nc: nc, log: log}
	for subject, handle := range map[string]func(context.Context, string, *nats.Msg) error{
		agentv1.HeartbeatSubject("*"): c.heartbeat,
		agentv1.SyncSubject("*"):      c.sync,
		agentv1.StatusSubject("*"):    c.status,
	} {
		sub, err := nc.QueueSubscribe(subject, queue, func(m *nats.Msg) {
			host := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := handle(ctx, host, m); err != nil {
				c.log.Error("bus: agent message failed", "subject", m.Subject, "error", err)
			}
		})
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("control: subscribe %s: %w", subject, err)
		}
		c.subs = append(c.subs, sub)
	}
	return c, nc.Flush()
}

// Close stops serving.
func (c *Control) Close() {
	for _, s := range c.subs {
		_ = s.Unsubscribe()
	}
}

// Hint publishes a hint to host (service.Options.Hint).
func (c *Control) Hint(_ context.Context, host string, h agentv1.Hint) {
	if !bus.ValidHost(host) {
		return
	}
	data, _ := json.Marshal(h)
	if err := c.nc.Publish(agentv1.HintSubject(host), data); err != nil {
		c.log.Warn("bus: hint not sent", "host", host, "error", err)
	}
}

// The host in the subject is trusted, not the one in the payload: the
// bus's permissions let an agent publish only on its own host's subjects.

func (c *Control) heartbeat(ctx context.Context, host string, m *nats.Msg) error {
	var hb agentv1.Heartbeat
	if err := json.Unmarshal(m.Data, &hb); err != nil {
		return fmt.Errorf("heartbeat from %s: %w", host, err)
	}
	hb.Host = host
	hosts, err := c.svc.Heartbeat(ctx, hb)
	if err != nil {
		return err
	}
	for _, h := range hosts {
		c.Hint(ctx, h, agentv1.Hint{Full: true})
	}
	return nil
}

func (c *Control) sync(ctx context.Context, host string, m *nats.Msg) error {
	st, err := c.svc.HostState(ctx, host)
	if err != nil {
		c.log.Error("bus: host state failed", "host", host, "error", err)
		st = &agentv1.HostState{Host: host, Error: "the server could not build the state; retry later"}
	}
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return m.Respond(data)
}

func (c *Control) status(ctx context.Context, host string, m *nats.Msg) error {
	var r agentv1.StatusReport
	if err := json.Unmarshal(m.Data, &r); err != nil {
		return fmt.Errorf("status from %s: %w", host, err)
	}
	r.Host = host
	return c.svc.ReportStatus(ctx, r)
}

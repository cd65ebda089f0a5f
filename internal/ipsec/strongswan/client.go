package strongswan

import (
	"context"
	"sync"

	"github.com/strongswan/govici/vici"
)

// Client is a VICI session whose commands never overlap. govici releases
// its lock once a streamed command (list-sas) has started, so a command
// sent while a stream is being read can have its reply taken by the
// stream, and then times out; every use of one session goes through here.
type Client struct {
	mu sync.Mutex
	s  *vici.Session
}

// Call runs one command with a deadline of callTimeout at most.
func (c *Client) Call(ctx context.Context, cmd string, in *vici.Message) (*vici.Message, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.s.Call(ctx, cmd, in)
}

// Stream runs a streamed command and hands each event message to fn.
func (c *Client) Stream(ctx context.Context, cmd, event string, in *vici.Message, fn func(*vici.Message)) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	c.mu.Lock()
	defer c.mu.Unlock()
	for m, err := range c.s.CallStreaming(ctx, cmd, event, in) {
		if err != nil {
			return err
		}
		if m != nil {
			fn(m)
		}
	}
	return nil
}

// Subscribe registers events and a channel that receives them; the
// channel is closed when the session ends (charon died).
func (c *Client) Subscribe(ch chan<- vici.Event, events ...string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.s.Subscribe(events...); err != nil {
		return err
	}
	c.s.NotifyEvents(ch)
	return nil
}

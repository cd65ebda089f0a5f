package strongswan

import (
	"context"
	"errors"
	"strings"
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

// ErrGone matches (errors.Is) charon's refusal of a command for something
// that is not there: an unload of a connection or secret never loaded, a
// terminate of an IKE_SA already gone.
var ErrGone = errors.New("not there")

// CommandError is charon refusing a command, with its errmsg.
type CommandError struct{ Cmd, Msg string }

func (e *CommandError) Error() string { return e.Cmd + " refused: " + e.Msg }

// Is reports whether the refusal is ErrGone. charon says so only in text
// ("... not found", "no matching SAs ..."); this is the one place that
// reads it.
func (e *CommandError) Is(target error) bool {
	return target == ErrGone && (strings.Contains(e.Msg, "not found") || strings.Contains(e.Msg, "no matching"))
}

// Call runs one command with a deadline of callTimeout at most. A command
// charon refuses gives a *CommandError.
func (c *Client) Call(ctx context.Context, cmd string, in *vici.Message) (*vici.Message, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	c.mu.Lock()
	defer c.mu.Unlock()
	m, err := c.s.Call(ctx, cmd, in)
	if err != nil && m != nil { // govici returns the reply with a refusal
		msg, _ := m.Get("errmsg").(string)
		return m, &CommandError{Cmd: cmd, Msg: msg}
	}
	return m, err
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
	// The channel first: events held back during the registration are
	// dispatched as soon as it returns.
	c.s.NotifyEvents(ch)
	if err := subscribeGated(c.s, func() error { return c.s.Subscribe(events...) }); err != nil {
		c.s.StopEvents(ch)
		return err
	}
	return nil
}

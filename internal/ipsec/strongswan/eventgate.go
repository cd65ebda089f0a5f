package strongswan

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"

	"github.com/strongswan/govici/vici"
)

// VICI packet types (strongSwan's libcharon/plugins/vici/vici_socket.h).
const (
	viciEventRegister = 3
	viciEventConfirm  = 5
	viciEvent         = 7
	// viciMaxPacket bounds one packet, as charon does (512 KiB).
	viciMaxPacket = 512 * 1024
)

// eventGate wraps the VICI connection of a govici Session and holds back
// event packets while Client.Subscribe registers events.
//
// govici v0.8.2 registers events with its event lock held until charon
// has confirmed every one; its reader takes the same lock to dispatch an
// event. An event that charon sends before the last confirmation (a "log"
// event from a busy, adopted charon does) blocked the reader on that lock,
// so the confirmation was never read: the agent hung in Subscribe. Events
// read during a registration are held and delivered, in their order, once
// it returned. Nothing else is gated: streamed command results (events
// before a command's response, e.g. list-sas) pass as they come, and no
// stream runs during a registration (govici serialises them).
type eventGate struct {
	net.Conn

	mu      sync.Mutex
	holding bool
	wake    chan struct{} // a release while the reader waits

	// The reader side (one goroutine: govici's listener).
	pkts <-chan packetOrErr
	out  []byte   // bytes of the packet being delivered
	held [][]byte // events read while holding
}

type packetOrErr struct {
	pkt []byte
	err error
}

// gates maps each session dialled through an eventGate to it.
var gates sync.Map // *vici.Session → *eventGate

// newGatedSession opens a session on charon's socket through an eventGate.
func newGatedSession(path string) (*vici.Session, error) {
	var gate *eventGate
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		gate = newEventGate(c)
		return gate, nil
	}
	s, err := vici.NewSession(vici.WithSocketPath(path), vici.WithDialContext(dial))
	if err != nil {
		return nil, err
	}
	gates.Store(s, gate)
	return s, nil
}

func newEventGate(c net.Conn) *eventGate {
	pkts := make(chan packetOrErr, 64)
	g := &eventGate{Conn: c, pkts: pkts, wake: make(chan struct{}, 1)}
	go func() {
		for {
			pkt, err := readPacket(c)
			pkts <- packetOrErr{pkt, err}
			if err != nil {
				return
			}
		}
	}()
	return g
}

// subscribe runs register (a Session.Subscribe) with events held back.
func subscribeGated(s *vici.Session, register func() error) error {
	v, ok := gates.Load(s)
	if !ok {
		return register()
	}
	g := v.(*eventGate)
	g.mu.Lock()
	g.holding = true
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.holding = false
		g.mu.Unlock()
		select {
		case g.wake <- struct{}{}:
		default:
		}
	}()
	return register()
}

// Read delivers charon's packets, events held back while holding.
func (g *eventGate) Read(p []byte) (int, error) {
	for len(g.out) == 0 {
		g.mu.Lock()
		holding := g.holding
		g.mu.Unlock()
		if !holding && len(g.held) > 0 {
			g.out, g.held = g.held[0], g.held[1:]
			break
		}
		select {
		case r := <-g.pkts:
			if r.err != nil {
				return 0, r.err
			}
			g.mu.Lock()
			hold := g.holding && r.pkt[4] == viciEvent
			g.mu.Unlock()
			if hold || len(g.held) > 0 && r.pkt[4] == viciEvent {
				g.held = append(g.held, r.pkt) // keep the events' order
				continue
			}
			g.out = r.pkt
		case <-g.wake:
		}
	}
	n := copy(p, g.out)
	g.out = g.out[n:]
	return n, nil
}

// Close closes the connection and forgets its session.
func (g *eventGate) Close() error {
	gates.Range(func(k, v any) bool {
		if v == g {
			gates.Delete(k)
		}
		return true
	})
	return g.Conn.Close()
}

// readPacket reads one whole packet, its length prefix included.
func readPacket(r io.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 || n > viciMaxPacket {
		return nil, fmt.Errorf("vici: packet of %d bytes", n)
	}
	pkt := make([]byte, 4+n)
	copy(pkt, hdr[:])
	if _, err := io.ReadFull(r, pkt[4:]); err != nil {
		return nil, err
	}
	return pkt, nil
}

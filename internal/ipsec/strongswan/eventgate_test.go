package strongswan

import (
	"encoding/binary"
	"io"
	"net"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/strongswan/govici/vici"
)

// fakeCharon answers event registrations over a unix socket the way a busy
// charon can: an event of the type just registered first, the
// confirmation after it. It is a fake because the real charon's timing
// cannot be forced.
func fakeCharon(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "charon.vici")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		for {
			var hdr [4]byte
			if _, err := io.ReadFull(c, hdr[:]); err != nil {
				return
			}
			pkt := make([]byte, binary.BigEndian.Uint32(hdr[:]))
			if _, err := io.ReadFull(c, pkt); err != nil {
				return
			}
			if pkt[0] != viciEventRegister {
				continue
			}
			name := string(pkt[2 : 2+int(pkt[1])])
			for _, body := range [][]byte{append([]byte{viciEvent, byte(len(name))}, name...), {viciEventConfirm}} {
				out := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
				if _, err := c.Write(append(out, body...)); err != nil {
					return
				}
			}
		}
	}()
	return path
}

// TestEventGate subscribes through the gate to a charon that sends each
// event type's first event before confirming its registration. Without
// the gate, govici v0.8.2 hangs in Subscribe (its reader waits for the
// lock Subscribe holds while waiting for the confirmation the reader
// would read): an agent adopting a busy charon hung so in CI.
func TestEventGate(t *testing.T) {
	path := fakeCharon(t)
	s, err := newGatedSession(path)
	if err != nil {
		t.Fatal(err)
	}
	c := &Client{s: s}
	ch := make(chan vici.Event, 16)
	done := make(chan error, 1)
	go func() { done <- c.Subscribe(ch, events...) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Subscribe: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Subscribe hung: an event before its registration's confirmation blocked the reader")
	}
	var got []string
	for len(got) < len(events) {
		select {
		case ev := <-ch:
			got = append(got, ev.Name)
		case <-time.After(5 * time.Second):
			t.Fatalf("events delivered %v, want %v", got, events)
		}
	}
	if !slices.Equal(got, events) {
		t.Fatalf("events delivered %v, want %v in order", got, events)
	}
	s.Close()
	if _, ok := gates.Load(s); ok {
		t.Error("a closed session's gate is still registered")
	}
}

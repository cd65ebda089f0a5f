package nstest

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/neutrino-net/neutrino/internal/namespace"
)

// Pinger sends ICMP (or ICMPv6) echo requests from an address inside a
// namespace to one destination and records the replies. Its raw socket is
// opened in the namespace and stays there; it is closed when the test ends.
type Pinger struct {
	c   net.PacketConn
	dst netip.Addr
	id  uint16

	mu    sync.Mutex
	seq   uint16
	got   map[uint16]time.Time
	reply chan struct{} // signalled on every reply
	done  chan struct{}
}

// NewPinger opens a pinger in ns from src ("0.0.0.0" or "::": any) to dst.
func NewPinger(tb testing.TB, ns netns.NsHandle, src, dst string) *Pinger {
	tb.Helper()
	proto := "ip4:icmp"
	if netip.MustParseAddr(dst).Is6() {
		proto = "ip6:ipv6-icmp" // the kernel computes ICMPv6 checksums
	}
	var c net.PacketConn
	if err := namespace.Do(ns, func() (err error) {
		c, err = net.ListenPacket(proto, src)
		return err
	}); err != nil {
		tb.Fatalf("icmp socket on %s in namespace: %v", src, err)
	}
	p := &Pinger{c: c, dst: netip.MustParseAddr(dst), id: uint16(rand.Uint32()),
		got: map[uint16]time.Time{}, reply: make(chan struct{}, 1), done: make(chan struct{})}
	go p.read()
	tb.Cleanup(p.Close)
	return p
}

// Close closes the socket and waits for the reader.
func (p *Pinger) Close() {
	p.c.Close()
	<-p.done
}

func (p *Pinger) read() {
	defer close(p.done)
	reply := byte(0) // echo reply
	if p.dst.Is6() {
		reply = 129
	}
	buf := make([]byte, 1500)
	for {
		n, from, err := p.c.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		ip, _ := from.(*net.IPAddr)
		if n < 8 || buf[0] != reply || binary.BigEndian.Uint16(buf[4:]) != p.id || ip == nil || !ip.IP.Equal(p.dst.AsSlice()) {
			continue
		}
		seq := binary.BigEndian.Uint16(buf[6:])
		p.mu.Lock()
		if _, ok := p.got[seq]; !ok {
			p.got[seq] = time.Now()
		}
		p.mu.Unlock()
		select {
		case p.reply <- struct{}{}:
		default:
		}
	}
}

// Send sends the next echo request and returns its sequence number.
func (p *Pinger) Send() uint16 {
	p.mu.Lock()
	p.seq++
	seq := p.seq
	p.mu.Unlock()
	request := byte(8)
	if p.dst.Is6() {
		request = 128
	}
	msg := binary.BigEndian.AppendUint16([]byte{request, 0, 0, 0}, p.id)
	msg = binary.BigEndian.AppendUint16(msg, seq)
	msg = append(msg, "neutrino-test"...)
	if !p.dst.Is6() {
		binary.BigEndian.PutUint16(msg[2:], checksum(msg))
	}
	_, _ = p.c.WriteTo(msg, &net.IPAddr{IP: p.dst.AsSlice()}) // an unreachable path is a missing reply
	return seq
}

// RepliesSince counts the replies to requests from seq on.
func (p *Pinger) RepliesSince(seq uint16) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for s := range p.got {
		if s >= seq {
			n++
		}
	}
	return n
}

// Reach sends a request every interval until one from now on is answered
// or timeout passes; it returns when the first answer came.
func (p *Pinger) Reach(interval, timeout time.Duration) (time.Time, bool) {
	first := p.Send()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		select {
		case <-p.reply:
			p.mu.Lock()
			var at time.Time
			for s, when := range p.got {
				if s >= first && (at.IsZero() || when.Before(at)) {
					at = when
				}
			}
			p.mu.Unlock()
			if !at.IsZero() {
				return at, true
			}
		case <-tick.C:
			p.Send()
		case <-deadline.C:
			return time.Time{}, false
		}
	}
}

// Silent sends requests every interval for d and reports whether none was
// answered (late answers included).
func (p *Pinger) Silent(interval, d time.Duration) bool {
	first := p.Send()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(interval) {
		p.Send()
	}
	time.Sleep(interval)
	return p.RepliesSince(first) == 0
}

// Lost returns the requests in [from, to] without a reply.
func (p *Pinger) Lost(from, to uint16) []uint16 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var l []uint16
	for s := from; s <= to; s++ {
		if _, ok := p.got[s]; !ok {
			l = append(l, s)
		}
	}
	return l
}

func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

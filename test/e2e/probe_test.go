package e2e_test

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/neutrino-net/neutrino/internal/namespace"
)

// pinger sends ICMP (or ICMPv6) echo requests from an address inside a VM
// namespace to one destination and records the replies. Its raw socket is
// opened in the namespace and stays there.
type pinger struct {
	t   *testing.T
	c   net.PacketConn
	dst netip.Addr
	id  uint16

	mu    sync.Mutex
	seq   uint16
	sent  map[uint16]time.Time
	got   map[uint16]time.Time
	reply chan struct{} // signalled on every reply
	done  chan struct{}
}

func newPinger(t *testing.T, vm *vmNS, src, dst string) *pinger {
	t.Helper()
	var c net.PacketConn
	proto := "ip4:icmp"
	if netip.MustParseAddr(dst).Is6() {
		proto = "ip6:ipv6-icmp" // the kernel computes ICMPv6 checksums
	}
	if err := namespace.Do(vm.ns, func() (err error) {
		c, err = net.ListenPacket(proto, src)
		return err
	}); err != nil {
		t.Fatalf("VM %s: icmp socket on %s: %v", vm.name, src, err)
	}
	p := &pinger{t: t, c: c, dst: netip.MustParseAddr(dst), id: uint16(rand.Uint32()),
		sent: map[uint16]time.Time{}, got: map[uint16]time.Time{}, reply: make(chan struct{}, 1), done: make(chan struct{})}
	go p.read()
	t.Cleanup(p.close)
	return p
}

func (p *pinger) close() {
	p.c.Close()
	<-p.done
}

func (p *pinger) read() {
	defer close(p.done)
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
		reply := byte(0) // echo reply
		if p.dst.Is6() {
			reply = 129
		}
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

// send sends the next echo request and returns its sequence number.
func (p *pinger) send() uint16 {
	p.mu.Lock()
	p.seq++
	seq := p.seq
	p.sent[seq] = time.Now()
	p.mu.Unlock()
	request := byte(8)
	if p.dst.Is6() {
		request = 128
	}
	msg := binary.BigEndian.AppendUint16([]byte{request, 0, 0, 0}, p.id)
	msg = binary.BigEndian.AppendUint16(msg, seq)
	msg = append(msg, "neutrino-e2e"...)
	if !p.dst.Is6() {
		binary.BigEndian.PutUint16(msg[2:], checksum(msg))
	}
	_, _ = p.c.WriteTo(msg, &net.IPAddr{IP: p.dst.AsSlice()}) // an unreachable path is a missing reply
	return seq
}

// repliesSince counts the replies to requests from seq on.
func (p *pinger) repliesSince(seq uint16) int {
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

// reach sends a request every interval until one from now on is answered
// or timeout passes; it returns when the first answer came.
func (p *pinger) reach(interval, timeout time.Duration) (time.Time, bool) {
	first := p.send()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	deadline := time.After(timeout)
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
			p.send()
		case <-deadline:
			return time.Time{}, false
		}
	}
}

// silent sends requests every interval for d and reports whether none was
// answered (late answers included).
func (p *pinger) silent(interval, d time.Duration) bool {
	first := p.send()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(interval) {
		p.send()
	}
	time.Sleep(interval)
	return p.repliesSince(first) == 0
}

// lost returns the requests in [from, to] without a reply.
func (p *pinger) lost(from, to uint16) []uint16 {
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

// udpEcho serves UDP in a namespace: it answers each datagram with the
// source address it saw.
func udpEcho(t *testing.T, vm *vmNS, addr string) {
	t.Helper()
	var c net.PacketConn
	if err := namespace.Do(vm.ns, func() (err error) {
		c, err = net.ListenPacket("udp4", addr)
		return err
	}); err != nil {
		t.Fatalf("%s: udp listen %s: %v", vm.name, addr, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			_, from, err := c.ReadFrom(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			ua := from.(*net.UDPAddr)
			_, _ = c.WriteTo([]byte(ua.IP.String()), from)
		}
	}()
	t.Cleanup(func() { c.Close(); <-done })
}

// udpProbe sends a datagram from a VM to dst every interval until an
// answer comes or timeout passes; it returns the source address the
// server saw.
func udpProbe(t *testing.T, vm *vmNS, dst string, interval, timeout time.Duration) (string, bool) {
	t.Helper()
	var c net.PacketConn
	if err := namespace.Do(vm.ns, func() (err error) {
		c, err = net.ListenPacket("udp4", ":0")
		return err
	}); err != nil {
		t.Fatalf("%s: udp socket: %v", vm.name, err)
	}
	defer c.Close()
	to, err := net.ResolveUDPAddr("udp4", dst)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); {
		_, _ = c.WriteTo([]byte("probe"), to)
		_ = c.SetReadDeadline(time.Now().Add(interval))
		n, from, err := c.ReadFrom(buf)
		if err == nil && from.(*net.UDPAddr).IP.Equal(to.IP) {
			return strings.TrimSpace(string(buf[:n])), true
		}
	}
	return "", false
}

package e2e_test

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/neutrino-net/neutrino/internal/namespace"
	"github.com/neutrino-net/neutrino/internal/nstest"
)

// newPinger pings dst from src inside a VM namespace (nstest.Pinger).
func newPinger(t testing.TB, vm *vmNS, src, dst string) *pinger {
	t.Helper()
	return nstest.NewPinger(t, vm.ns, src, dst)
}

type pinger = nstest.Pinger

// udpEcho serves UDP in a namespace: it answers each datagram with the
// source address it saw.
func udpEcho(t testing.TB, vm *vmNS, addr string) {
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
func udpProbe(t testing.TB, vm *vmNS, dst string, interval, timeout time.Duration) (string, bool) {
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

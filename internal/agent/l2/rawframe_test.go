package l2

// Raw Ethernet frames, 802.1Q-tagged or not, sent and sniffed with
// AF_PACKET sockets: a "VM" namespace on a kernel without 802.1q links
// tags its frames itself.

import (
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/neutrino-net/neutrino/internal/namespace"
)

// frame is a decoded Ethernet frame; VLAN is -1 for an untagged one.
type frame struct {
	Dst, Src  net.HardwareAddr
	VLAN      int
	EtherType uint16
	Payload   []byte
}

// ethFrame encodes an Ethernet frame, tagged unless vlan is negative.
func ethFrame(dst, src string, vlan int, etherType uint16, payload []byte) []byte {
	d, _ := net.ParseMAC(dst)
	s, _ := net.ParseMAC(src)
	b := append(append([]byte{}, d...), s...)
	if vlan >= 0 {
		b = binary.BigEndian.AppendUint16(b, unix.ETH_P_8021Q)
		b = binary.BigEndian.AppendUint16(b, uint16(vlan))
	}
	b = binary.BigEndian.AppendUint16(b, etherType)
	return append(b, payload...)
}

// arpPayload is an ARP request (op 1) or reply (op 2) for IPv4.
func arpPayload(op uint16, sha string, spa, tpa string, tha string) []byte {
	s, _ := net.ParseMAC(sha)
	t, _ := net.ParseMAC(tha)
	b := []byte{0, 1, 8, 0, 6, 4}
	b = binary.BigEndian.AppendUint16(b, op)
	b = append(b, s...)
	b = append(b, netip.MustParseAddr(spa).AsSlice()...)
	b = append(b, t...)
	return append(b, netip.MustParseAddr(tpa).AsSlice()...)
}

func checksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// ipv4Packet is an IPv4 packet of protocol proto around l4.
func ipv4Packet(src, dst string, proto byte, l4 []byte) []byte {
	h := make([]byte, 20)
	h[0], h[8], h[9] = 0x45, 64, proto
	binary.BigEndian.PutUint16(h[2:], uint16(20+len(l4)))
	copy(h[12:], netip.MustParseAddr(src).AsSlice())
	copy(h[16:], netip.MustParseAddr(dst).AsSlice())
	binary.BigEndian.PutUint16(h[10:], checksum(h))
	return append(h, l4...)
}

// icmpEcho is an ICMP echo request (typ 8) or reply (0).
func icmpEcho(typ byte, id, seq uint16) []byte {
	b := []byte{typ, 0, 0, 0}
	b = binary.BigEndian.AppendUint16(b, id)
	b = binary.BigEndian.AppendUint16(b, seq)
	b = append(b, "neutrino trunk test"...)
	binary.BigEndian.PutUint16(b[2:], checksum(b))
	return b
}

// udpDatagram is a UDP datagram without checksum.
func udpDatagram(sport, dport uint16, data string) []byte {
	b := binary.BigEndian.AppendUint16(nil, sport)
	b = binary.BigEndian.AppendUint16(b, dport)
	b = binary.BigEndian.AppendUint16(b, uint16(8+len(data)))
	b = append(b, 0, 0)
	return append(b, data...)
}

// ipv4 returns a frame's IPv4 source, destination, protocol and payload.
func (f frame) ipv4() (src, dst netip.Addr, proto byte, l4 []byte, ok bool) {
	p := f.Payload
	if f.EtherType != unix.ETH_P_IP || len(p) < 20 {
		return src, dst, 0, nil, false
	}
	ihl := int(p[0]&0x0f) * 4
	if len(p) < ihl {
		return src, dst, 0, nil, false
	}
	src, _ = netip.AddrFromSlice(p[12:16])
	dst, _ = netip.AddrFromSlice(p[16:20])
	return src, dst, p[9], p[ihl:], true
}

// isEcho says whether f is an ICMP echo of type typ with id.
func (f frame) isEcho(typ byte, id uint16) bool {
	_, _, proto, l4, ok := f.ipv4()
	return ok && proto == 1 && len(l4) >= 8 && l4[0] == typ && binary.BigEndian.Uint16(l4[4:]) == id
}

// isUDP says whether f is a UDP datagram to port.
func (f frame) isUDP(port uint16) bool {
	_, _, proto, l4, ok := f.ipv4()
	return ok && proto == 17 && len(l4) >= 8 && binary.BigEndian.Uint16(l4[2:]) == port
}

// arp returns an ARP frame's op, sender address and target address.
func (f frame) arp() (op uint16, spa, tpa netip.Addr, ok bool) {
	p := f.Payload
	if f.EtherType != unix.ETH_P_ARP || len(p) < 28 {
		return 0, spa, tpa, false
	}
	spa, _ = netip.AddrFromSlice(p[14:18])
	tpa, _ = netip.AddrFromSlice(p[24:28])
	return binary.BigEndian.Uint16(p[6:]), spa, tpa, true
}

// rawSock is an AF_PACKET socket on one device of a namespace; it sees
// every frame the device receives, with the VLAN tag the kernel took off
// (PACKET_AUXDATA).
type rawSock struct {
	t     *testing.T
	fd    int
	index int

	mu     sync.Mutex
	frames []frame
	done   chan struct{}
}

func openRaw(t *testing.T, ns netns.NsHandle, dev string) *rawSock {
	t.Helper()
	r := &rawSock{t: t, fd: -1, done: make(chan struct{})}
	err := namespace.Do(ns, func() error {
		ifi, err := net.InterfaceByName(dev)
		if err != nil {
			return err
		}
		r.index = ifi.Index
		proto := int(htons(unix.ETH_P_ALL))
		if r.fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto); err != nil {
			return err
		}
		if err := unix.SetsockoptInt(r.fd, unix.SOL_PACKET, unix.PACKET_AUXDATA, 1); err != nil {
			return err
		}
		tv := unix.NsecToTimeval(int64(100 * time.Millisecond))
		if err := unix.SetsockoptTimeval(r.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return err
		}
		return unix.Bind(r.fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: r.index})
	})
	if err != nil {
		if r.fd >= 0 {
			unix.Close(r.fd)
		}
		t.Fatalf("packet socket on %s: %v", dev, err)
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		r.read()
	}()
	t.Cleanup(func() {
		close(r.done)
		<-stopped
		unix.Close(r.fd)
	})
	return r
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (r *rawSock) read() {
	buf := make([]byte, 65536)
	oob := make([]byte, 512)
	for {
		select {
		case <-r.done:
			return
		default:
		}
		n, oobn, _, from, err := unix.Recvmsg(r.fd, buf, oob, 0)
		if err != nil {
			continue // timeout: look at done again
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		if n < 14 {
			continue
		}
		f := frame{Dst: append(net.HardwareAddr{}, buf[:6]...), Src: append(net.HardwareAddr{}, buf[6:12]...), VLAN: -1}
		rest := buf[12:n]
		if binary.BigEndian.Uint16(rest) == unix.ETH_P_8021Q && len(rest) >= 6 {
			f.VLAN = int(binary.BigEndian.Uint16(rest[2:]) & 0x0fff)
			rest = rest[4:]
		} else if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
			for _, m := range msgs {
				if m.Header.Level != unix.SOL_PACKET || m.Header.Type != unix.PACKET_AUXDATA ||
					len(m.Data) < int(unsafe.Sizeof(unix.TpacketAuxdata{})) {
					continue
				}
				aux := (*unix.TpacketAuxdata)(unsafe.Pointer(&m.Data[0]))
				if aux.Status&unix.TP_STATUS_VLAN_VALID != 0 {
					f.VLAN = int(aux.Vlan_tci & 0x0fff)
				}
			}
		}
		f.EtherType = binary.BigEndian.Uint16(rest)
		f.Payload = append([]byte{}, rest[2:]...)
		r.mu.Lock()
		r.frames = append(r.frames, f)
		r.mu.Unlock()
	}
}

func (r *rawSock) send(b []byte) {
	r.t.Helper()
	if err := unix.Sendto(r.fd, b, 0, &unix.SockaddrLinklayer{Ifindex: r.index, Protocol: htons(unix.ETH_P_ALL)}); err != nil {
		r.t.Fatalf("send frame: %v", err)
	}
}

// clear forgets the frames seen so far.
func (r *rawSock) clear() {
	r.mu.Lock()
	r.frames = nil
	r.mu.Unlock()
}

// seen returns the first frame seen that matches.
func (r *rawSock) seen(match func(frame) bool) (frame, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, f := range r.frames {
		if match(f) {
			return f, true
		}
	}
	return frame{}, false
}

// waitSeen is seen, waiting for it at most for d.
func (r *rawSock) waitSeen(match func(frame) bool, d time.Duration) (frame, bool) {
	for deadline := time.Now().Add(d); ; time.Sleep(10 * time.Millisecond) {
		if f, ok := r.seen(match); ok || time.Now().After(deadline) {
			return f, ok
		}
	}
}

// exchange sends b every 200ms until a frame that matches is seen by
// watch, at most for d.
func exchange(r *rawSock, b []byte, watch *rawSock, match func(frame) bool, d time.Duration) (frame, bool) {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); {
		r.send(b)
		for end := time.Now().Add(200 * time.Millisecond); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
			if f, ok := watch.seen(match); ok {
				return f, true
			}
		}
	}
	return frame{}, false
}

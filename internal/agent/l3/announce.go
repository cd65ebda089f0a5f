package l3

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	"github.com/neutrino-net/neutrino/internal/namespace"
)

// A router address that appears (a new device, a new address, a device
// whose MAC changed) is announced on its device, as the reference L3
// agent does with arping -U and -A: a VM whose neighbour entry for it is
// INCOMPLETE (or, for IPv4, FAILED: Linux ignores an advertisement for a
// FAILED IPv6 entry) sends at once instead of at its next ARP retry (a
// second later), and one that holds an old MAC learns the new one
// instead of losing its traffic until the entry ages out. IPv4 addresses
// get gratuitous ARPs (an announcement request and a reply, sender =
// target = the address), IPv6 ones an unsolicited neighbour advertisement
// to all nodes with the override and router flags. The frames go out of
// an AF_PACKET socket opened inside the router namespace: the first round
// during Apply, the rest from a goroutine. Announcing is best effort:
// failures are logged and never fail an Apply, and announcements are no
// kernel writes (an unchanged router sends none).
const announceCount = 3 // rounds per address

var announceInterval = 50 * time.Millisecond // between rounds; tests change it

// announcement is one address of a router device to announce.
type announcement struct {
	dev     string
	ifindex int
	mac     net.HardwareAddr
	addr    netip.Addr
	left    int       // rounds to go
	due     time.Time // of the next round
}

// announcer sends the rounds of a router's announcements after the first.
type announcer struct {
	cancel context.CancelFunc
	done   chan struct{}
	rest   []announcement // what was not sent when cancelled; set once done
}

// stopAnnounce stops the router's background announcements and returns
// those still to send. The router is locked.
func (rt *router) stopAnnounce() []announcement {
	a := rt.announcer
	if a == nil {
		return nil
	}
	rt.announcer = nil
	a.cancel()
	<-a.done
	return a.rest
}

// linkState is a router device as reconcile left it: what its
// announcements must match.
type linkState struct {
	ifindex int
	mac     net.HardwareAddr
	addrs   []netip.Prefix // the wanted addresses it holds
}

// newAnnouncements lists the addresses of a device to announce now.
func newAnnouncements(dev string, st linkState, addrs []netip.Prefix, now time.Time) []announcement {
	if len(st.mac) != 6 {
		return nil // not Ethernet
	}
	var out []announcement
	for _, p := range addrs {
		a := p.Addr()
		if a.IsMulticast() || a.IsUnspecified() {
			continue
		}
		out = append(out, announcement{dev: dev, ifindex: st.ifindex, mac: st.mac, addr: a, left: announceCount, due: now})
	}
	return out
}

// carryOver keeps the announcements a stopped announcer had left that
// still match their device (same index and MAC, address still held) and
// that fresh does not supersede; they keep their schedule.
func carryOver(rest []announcement, links map[string]linkState, fresh []announcement) []announcement {
	var out []announcement
	for _, c := range rest {
		st, ok := links[c.dev]
		if !ok || st.ifindex != c.ifindex || !slices.Equal(st.mac, c.mac) ||
			!slices.ContainsFunc(st.addrs, func(p netip.Prefix) bool { return p.Addr() == c.addr }) ||
			slices.ContainsFunc(fresh, func(f announcement) bool { return f.dev == c.dev && f.addr == c.addr }) {
			continue
		}
		out = append(out, c)
	}
	return out
}

// announce sends the due announcements at once and leaves the others to
// a goroutine; the router is locked and has no announcer.
func (l *L3) announce(log *slog.Logger, rt *router, items []announcement) {
	if len(items) == 0 {
		return
	}
	fd := -1
	err := namespace.Do(rt.ns, func() error {
		var err error
		// Protocol 0: the socket sends and receives nothing.
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		return err
	})
	if err != nil {
		log.Warn("cannot announce router addresses: packet socket", "err", err)
		return
	}
	items = l.sendDue(log, fd, items, time.Now())
	if len(items) == 0 {
		go unix.Close(fd) // see below
		return
	}
	// Bounded: the rounds take (announceCount-1) intervals.
	ctx, cancel := context.WithTimeout(context.Background(), announceCount*announceInterval+time.Second)
	a := &announcer{cancel: cancel, done: make(chan struct{})}
	rt.announcer = a
	go func() {
		// Closing a packet socket waits for an RCU grace period (tens of
		// ms): the next Apply, which waits for done, does not.
		defer unix.Close(fd)
		defer close(a.done)
		defer cancel()
		for len(items) > 0 {
			next := slices.MinFunc(items, func(x, y announcement) int { return x.due.Compare(y.due) }).due
			t := time.NewTimer(time.Until(next))
			select {
			case <-ctx.Done():
				t.Stop()
				if errors.Is(ctx.Err(), context.Canceled) {
					a.rest = items // stopped by a newer Apply: it may go on
				} else {
					log.Warn("router address announcements unfinished", "left", len(items))
				}
				return
			case <-t.C:
			}
			items = l.sendDue(log, fd, items, time.Now())
		}
	}()
}

// sendDue sends one round of the announcements that are due and returns
// those with rounds left.
func (l *L3) sendDue(log *slog.Logger, fd int, items []announcement, now time.Time) []announcement {
	out := items[:0]
	for _, it := range items {
		if it.due.After(now) {
			out = append(out, it)
			continue
		}
		for _, f := range it.frames() {
			op := fmt.Sprintf("%s %s dev %s lladdr %s", f.op, it.addr, it.dev, it.mac)
			sa := &unix.SockaddrLinklayer{Protocol: htons(f.proto), Ifindex: it.ifindex, Halen: 6}
			copy(sa.Addr[:], f.b[:6])
			if err := unix.Sendto(fd, f.b, 0, sa); err != nil {
				level := slog.LevelWarn
				if errors.Is(err, unix.ENXIO) || errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENETDOWN) {
					level = slog.LevelDebug // the device went meanwhile
				}
				log.Log(context.Background(), level, "router address announcement failed", "op", op, "err", err)
				continue
			}
			l.announces.Add(1)
			if l.onAnnounce != nil {
				l.onAnnounce(op)
			}
			log.Debug("router address announced", "op", op)
		}
		if it.left--; it.left > 0 {
			it.due = now.Add(announceInterval)
			out = append(out, it)
		}
	}
	clear(items[len(out):])
	return out
}

// frame is one Ethernet frame of an announcement.
type frame struct {
	op    string // for logs
	proto uint16 // its EtherType
	b     []byte
}

// frames are the frames of one round of an announcement.
func (it announcement) frames() []frame {
	if it.addr.Is4() {
		return []frame{
			{"gratuitous arp request", unix.ETH_P_ARP, garpFrame(it.mac, it.addr, arpRequest)},
			{"gratuitous arp reply", unix.ETH_P_ARP, garpFrame(it.mac, it.addr, arpReply)},
		}
	}
	return []frame{{"unsolicited na", unix.ETH_P_IPV6, naFrame(it.mac, it.addr)}}
}

func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}

// ARP operations.
const (
	arpRequest = 1
	arpReply   = 2
)

var broadcast = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// garpFrame is a gratuitous ARP of ip at mac, broadcast: a request (the
// target MAC zero, as RFC 5227 announces) or a reply (the target MAC the
// sender's, which Linux requires of a gratuitous reply).
func garpFrame(mac net.HardwareAddr, ip netip.Addr, op uint16) []byte {
	b := make([]byte, 60) // the Ethernet minimum, zero-padded
	copy(b[0:6], broadcast)
	copy(b[6:12], mac)
	binary.BigEndian.PutUint16(b[12:14], unix.ETH_P_ARP)
	arp := b[14:]
	binary.BigEndian.PutUint16(arp[0:2], 1) // Ethernet
	binary.BigEndian.PutUint16(arp[2:4], unix.ETH_P_IP)
	arp[4], arp[5] = 6, 4
	binary.BigEndian.PutUint16(arp[6:8], op)
	a4 := ip.As4()
	copy(arp[8:14], mac)
	copy(arp[14:18], a4[:])
	if op == arpReply {
		copy(arp[18:24], mac)
	}
	copy(arp[24:28], a4[:])
	return b
}

// naFrame is an unsolicited neighbour advertisement of ip at mac to all
// nodes (RFC 4861 7.2.6): from ip, hop limit 255, router and override
// flags, with the target link-layer address option.
func naFrame(mac net.HardwareAddr, ip netip.Addr) []byte {
	const icmpLen = 24 + 8
	allNodes := netip.MustParseAddr("ff02::1")
	b := make([]byte, 14+40+icmpLen)
	copy(b[0:6], net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1})
	copy(b[6:12], mac)
	binary.BigEndian.PutUint16(b[12:14], unix.ETH_P_IPV6)
	ip6 := b[14:54]
	ip6[0] = 6 << 4
	binary.BigEndian.PutUint16(ip6[4:6], icmpLen)
	ip6[6], ip6[7] = unix.IPPROTO_ICMPV6, 255
	src, dst := ip.As16(), allNodes.As16()
	copy(ip6[8:24], src[:])
	copy(ip6[24:40], dst[:])
	icmp := b[54:]
	icmp[0] = 136  // neighbour advertisement
	icmp[4] = 0xa0 // router, override
	copy(icmp[8:24], src[:])
	icmp[24], icmp[25] = 2, 1 // target link-layer address, 8 octets
	copy(icmp[26:32], mac)
	// The checksum covers the pseudo-header and the message.
	var sum uint32
	add := func(p []byte) {
		for i := 0; i+1 < len(p); i += 2 {
			sum += uint32(binary.BigEndian.Uint16(p[i:]))
		}
	}
	add(src[:])
	add(dst[:])
	sum += icmpLen + unix.IPPROTO_ICMPV6
	add(icmp)
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(icmp[2:4], ^uint16(sum))
	return b
}

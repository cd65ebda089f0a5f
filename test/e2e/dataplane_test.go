package e2e_test

import (
	"encoding/binary"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/neutrino-net/neutrino/internal/ipsec/strongswan"
	"github.com/neutrino-net/neutrino/internal/namespace"
)

// wire counts the IP packets seen on a link by what they carry.
type wire struct {
	esp, natt, ike, other int
}

func (w wire) String() string {
	return fmt.Sprintf("ESP %d, UDP 4500 %d, IKE (UDP 500) %d, other %d", w.esp, w.natt, w.ike, w.other)
}

// capture counts the packets entering the ports of a bridge, in
// namespace ns, while during runs (and for at least 300 ms). Frames the
// bridge forwards between its ports never reach the bridge device itself.
func capture(t *testing.T, ns netns.NsHandle, bridge string, during func()) wire {
	t.Helper()
	proto := htons(unix.ETH_P_ALL)
	var fd int
	ports := map[int]bool{}
	err := namespace.Do(ns, func() error {
		br, err := netlink.LinkByName(bridge)
		if err != nil {
			return err
		}
		links, err := netlink.LinkList()
		if err != nil {
			return err
		}
		for _, l := range links {
			if l.Attrs().MasterIndex == br.Attrs().Index {
				ports[l.Attrs().Index] = true
			}
		}
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(proto))
		if err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto})
	})
	if err != nil {
		t.Fatalf("capture on %s: %v", bridge, err)
	}
	tv := unix.NsecToTimeval(int64(50 * time.Millisecond))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		w    wire
		stop = make(chan struct{})
		done = make(chan struct{})
	)
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			select {
			case <-stop:
				return
			default:
			}
			n, from, err := unix.Recvfrom(fd, buf, 0)
			if err != nil {
				continue
			}
			if ll, ok := from.(*unix.SockaddrLinklayer); !ok || !ports[ll.Ifindex] || ll.Pkttype == unix.PACKET_OUTGOING {
				continue // another link, or the way out of a packet counted on its way in
			}
			mu.Lock()
			w.add(buf[:n])
			mu.Unlock()
		}
	}()
	start := time.Now()
	during()
	if d := 300*time.Millisecond - time.Since(start); d > 0 {
		time.Sleep(d)
	}
	close(stop)
	<-done
	unix.Close(fd)
	mu.Lock()
	defer mu.Unlock()
	return w
}

// add classifies one IP packet (no link-layer header).
func (w *wire) add(p []byte) {
	if len(p) < 1 {
		return
	}
	var proto byte
	var l4 []byte
	switch p[0] >> 4 {
	case 4:
		if len(p) < 20 {
			return
		}
		proto, l4 = p[9], p[int(p[0]&0x0f)*4:]
	case 6:
		if len(p) < 40 {
			return
		}
		proto, l4 = p[6], p[40:]
	default:
		return
	}
	switch {
	case proto == unix.IPPROTO_ESP:
		w.esp++
	case proto == unix.IPPROTO_UDP && len(l4) >= 4:
		src, dst := binary.BigEndian.Uint16(l4), binary.BigEndian.Uint16(l4[2:])
		switch {
		case src == 4500 || dst == 4500:
			w.natt++
		case src == 500 || dst == 500:
			w.ike++
		default:
			w.other++
		}
	default:
		w.other++
	}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// xfrmState counts the XFRM states and policies of a namespace.
func xfrmState(t *testing.T, ns netns.NsHandle) (states, policies int) {
	t.Helper()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_XFRM)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ss, err := h.XfrmStateList(netlink.FAMILY_ALL)
	if err != nil {
		t.Fatalf("xfrm states: %v", err)
	}
	ps, err := h.XfrmPolicyList(netlink.FAMILY_ALL)
	if err != nil {
		t.Fatalf("xfrm policies: %v", err)
	}
	return len(ss), len(ps)
}

// hasLink reports whether a namespace has a link of that name.
func hasLink(t *testing.T, ns netns.NsHandle, name string) bool {
	t.Helper()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	_, err = h.LinkByName(name)
	return err == nil
}

// checkDataPlane checks, with moon and sun's tunnel up, where the IPsec
// data plane detected on this kernel puts the traffic. On xfrm: ESP
// states and policies in both router namespaces and none in the host's,
// no ipsec0, ESP (not UDP 4500) between the gateways on the external
// network. On libipsec: ipsec0 in the routers and no kernel states.
// Either way the tunnelled traffic keeps its addresses (NAT bypass)
// while other traffic to the external network is still SNATed.
func checkDataPlane(t *testing.T, e *env, h *host, ext string, moon, sun *site, ping *pinger) {
	for _, s := range []*site{moon, sun} {
		ns := h.routerNamespace(s.router, time.Second)
		if !ns.IsOpen() {
			t.Fatalf("%s: no router namespace", s.name)
		}
		states, policies := xfrmState(t, ns)
		ipsec0 := hasLink(t, ns, "ipsec0")
		ns.Close()
		t.Logf("%s's router: %d XFRM states, %d policies, ipsec0 %v", s.name, states, policies, ipsec0)
		switch dataPlane {
		case strongswan.DataPlaneXFRM:
			if states < 2 || policies < 2 || ipsec0 {
				t.Errorf("%s's router on xfrm: %d states, %d policies, ipsec0 %v; want ESP states and policies, no ipsec0",
					s.name, states, policies, ipsec0)
			}
		default:
			if states != 0 || !ipsec0 {
				t.Errorf("%s's router on %s: %d kernel states, ipsec0 %v; want ipsec0 and no kernel states",
					s.name, dataPlane, states, ipsec0)
			}
		}
	}
	if states, policies := xfrmState(t, h.ns); states != 0 || policies != 0 {
		t.Errorf("the host's namespace has %d XFRM states and %d policies; IPsec belongs in the routers'", states, policies)
	}

	bridge := agentv1.DeviceName(agentv1.BridgePrefix, ext)
	w := capture(t, h.ns, bridge, func() {
		for range 5 {
			if _, ok := ping.Reach(20*time.Millisecond, reachTimeout); !ok {
				t.Error("no traffic through the tunnel while capturing")
				return
			}
		}
	})
	t.Logf("on the external network (%s) while pinging through the tunnel: %s", dataPlane, w)
	if dataPlane == strongswan.DataPlaneXFRM && (w.esp == 0 || w.natt != 0) {
		t.Errorf("xfrm without NAT: %s; want ESP (IP protocol 50) and no UDP 4500", w)
	}

	// NAT bypass: sun's VM sees moon's VM's own address through the
	// tunnel; an outside host on the external network sees moon's
	// gateway address.
	udpEcho(t, sun.vm, sun.vmPort.ip+":7777")
	if src, ok := udpProbe(t, moon.vm, sun.vmPort.ip+":7777", 50*time.Millisecond, reachTimeout); !ok {
		t.Error("no UDP answer from sun's VM through the tunnel")
	} else if src != moon.vmPort.ip {
		t.Errorf("sun's VM saw source %s through the tunnel, want moon's VM %s (VPN traffic must not be SNATed)", src, moon.vmPort.ip)
	}
	outPort := e.port(ext, object{"name": "outside", "port_security_enabled": false,
		"fixed_ips": []any{object{"ip_address": "172.24.4.250"}}})
	outside := h.vm("outside")
	e.plugAll(h, []port{outPort}, []*vmNS{outside})
	outside.waitUp(t, outPort.id)
	udpEcho(t, outside, "172.24.4.250:7777")
	if src, ok := udpProbe(t, moon.vm, "172.24.4.250:7777", 50*time.Millisecond, reachTimeout); !ok {
		t.Error("no UDP answer from the outside host on the external network")
	} else if src != moon.ext4 {
		t.Errorf("the outside host saw source %s, want moon's gateway %s (other traffic is SNATed)", src, moon.ext4)
	}
}

// checkXFRMGone checks that the routers' namespaces (where they still
// exist) hold no XFRM state any more.
func checkXFRMGone(t *testing.T, h *host, routers ...string) {
	t.Helper()
	for _, r := range routers {
		ns := h.routerNamespace(r, 0)
		if !ns.IsOpen() {
			continue
		}
		var states, policies int
		for deadline := time.Now().Add(vpnTimeout); ; time.Sleep(50 * time.Millisecond) {
			if states, policies = xfrmState(t, ns); states+policies == 0 || time.Now().After(deadline) {
				break
			}
		}
		ns.Close()
		if states+policies != 0 {
			t.Errorf("router %s: %d XFRM states and %d policies left after its connections were deleted", r[:8], states, policies)
			logXFRM(t, h, r)
		}
	}
}

// logXFRM logs a router namespace's XFRM states and policies, to tell
// what a failed check saw.
func logXFRM(t *testing.T, h *host, router string) {
	t.Helper()
	ns := h.routerNamespace(router, 0)
	if !ns.IsOpen() {
		t.Logf("router %s: no namespace", router[:8])
		return
	}
	defer ns.Close()
	nh, err := netlink.NewHandleAt(ns, unix.NETLINK_XFRM)
	if err != nil {
		t.Logf("router %s: %v", router[:8], err)
		return
	}
	defer nh.Close()
	ss, _ := nh.XfrmStateList(netlink.FAMILY_ALL)
	for _, st := range ss {
		t.Logf("router %s: state %s -> %s proto %d spi %#x mode %d reqid %d sel %v", router[:8], st.Src, st.Dst, st.Proto, st.Spi, st.Mode, st.Reqid, st.Selector)
	}
	ps, _ := nh.XfrmPolicyList(netlink.FAMILY_ALL)
	for _, p := range ps {
		t.Logf("router %s: policy %v -> %v dir %d prio %d tmpls %d", router[:8], p.Src, p.Dst, p.Dir, p.Priority, len(p.Tmpls))
	}
}

package strongswan

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/neutrino-net/neutrino/internal/namespace"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// site is one side of the moon/sun topology: a router namespace (named
// as the agent names it) with a gateway on the shared "external" veth,
// and a VM namespace behind it.
type site struct {
	routerID string
	router   netns.NsHandle
	vm       netns.NsHandle
	extIP    string // the router's external address
	lan      string // the VM subnet
	vmIP     string
}

// topology builds moon (10.1.0.0/24 behind 192.0.2.1) and sun
// (10.2.0.0/24 behind 192.0.2.2), joined by one veth.
type topology struct {
	netnsDir, stateDir string
	moon, sun          *site
}

func link(t *testing.T, a, b netns.NsHandle, nameA, nameB string) {
	t.Helper()
	err := namespace.Do(a, func() error {
		v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: nameA}, PeerName: nameB, PeerNamespace: netlink.NsFd(b)}
		return netlink.LinkAdd(v)
	})
	if err != nil {
		t.Fatalf("veth %s-%s: %v", nameA, nameB, err)
	}
}

func addr(t *testing.T, ns netns.NsHandle, dev, cidr, gw string) {
	t.Helper()
	err := namespace.Do(ns, func() error {
		l, err := netlink.LinkByName(dev)
		if err != nil {
			return err
		}
		a, err := netlink.ParseAddr(cidr)
		if err != nil {
			return err
		}
		a.Flags = unix.IFA_F_NODAD
		if err := netlink.AddrAdd(l, a); err != nil {
			return err
		}
		if err := netlink.LinkSetUp(l); err != nil {
			return err
		}
		if gw != "" {
			return netlink.RouteAdd(&netlink.Route{Gw: net.ParseIP(gw)})
		}
		return nil
	})
	if err != nil {
		t.Fatalf("address %s on %s: %v", cidr, dev, err)
	}
}

func forwarding(t *testing.T, ns netns.NsHandle) {
	t.Helper()
	err := namespace.Do(ns, func() error {
		for _, f := range []string{"/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding"} {
			if err := os.WriteFile(f, []byte("1"), 0o644); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("forwarding: %v", err)
	}
}

func newTopology(t *testing.T) *topology {
	t.Helper()
	base := t.TempDir()
	tp := &topology{netnsDir: filepath.Join(base, "netns"), stateDir: filepath.Join(base, "vpn")}
	if namespace.PrepareDir(tp.netnsDir) == nil {
		t.Cleanup(func() { unix.Unmount(tp.netnsDir, unix.MNT_DETACH) })
	}
	mk := func(name string) netns.NsHandle {
		r := newRouter(t, base, name)
		return r.ns
	}
	tp.moon = &site{routerID: "aaaaaaaa-0000-4000-8000-000000000001", extIP: "192.0.2.1", lan: "10.1.0.0/24", vmIP: "10.1.0.10"}
	tp.sun = &site{routerID: "bbbbbbbb-0000-4000-8000-000000000002", extIP: "192.0.2.2", lan: "10.2.0.0/24", vmIP: "10.2.0.10"}
	for _, s := range []*site{tp.moon, tp.sun} {
		s.router = mk(agentv1.RouterNamespace(s.routerID))
		s.vm = mk("vm-" + s.routerID[:8])
		forwarding(t, s.router)
	}
	link(t, tp.moon.router, tp.sun.router, "qg-moon", "qg-sun")
	addr(t, tp.moon.router, "qg-moon", "192.0.2.1/24", "")
	addr(t, tp.sun.router, "qg-sun", "192.0.2.2/24", "")
	for i, s := range []*site{tp.moon, tp.sun} {
		link(t, s.router, s.vm, fmt.Sprintf("qr-%d", i), "eth0")
		gw := fmt.Sprintf("10.%d.0.1", i+1)
		addr(t, s.router, fmt.Sprintf("qr-%d", i), gw+"/24", "")
		addr(t, s.vm, "eth0", s.vmIP+"/24", gw)
	}
	return tp
}

// driver returns a driver for one site whose OnChange is counted.
func (tp *topology) driver(t *testing.T, name string, changes chan<- string) *Driver {
	t.Helper()
	d, err := NewDriver(DriverOptions{
		StateDir: filepath.Join(tp.stateDir, name), NetnsDir: tp.netnsDir, DataPlane: DataPlaneLibipsec,
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil)), Poll: time.Second,
		OnChange: func(id string) {
			select {
			case changes <- id:
			default:
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func service(id, connID string, local, peer *site, psk string) agentv1.VPNService {
	return agentv1.VPNService{ID: id, Provider: "strongswan", Driver: DriverName, AdminStateUp: true,
		ExternalV4IP: local.extIP, Connections: []agentv1.IPsecConnection{{
			ID: connID, LocalAddress: local.extIP, PeerAddress: peer.extIP, PeerID: peer.extIP, PSK: agentv1.Secret(psk),
			LocalCIDRs: []string{local.lan}, PeerCIDRs: []string{peer.lan},
			IKE: agentv1.IKEPolicy{AuthAlgorithm: "sha256", EncryptionAlgorithm: "aes-128", Phase1NegotiationMode: "main",
				IKEVersion: "v2", PFS: "group14", LifetimeSeconds: 3600},
			IPsec: agentv1.IPsecPolicy{TransformProtocol: "esp", AuthAlgorithm: "sha256", EncryptionAlgorithm: "aes-128",
				EncapsulationMode: "tunnel", PFS: "group14", LifetimeSeconds: 3600},
			DPD:       agentv1.DPD{Action: "hold", Interval: 30, Timeout: 120},
			Initiator: "bi-directional", AdminStateUp: true, MTU: 1500,
		}}}
}

// udpReach reports whether a UDP datagram from the moon VM reaches an
// echo server in the sun VM and comes back.
func udpReach(t *testing.T, from, to *site) bool {
	t.Helper()
	var srv net.PacketConn
	if err := namespace.Do(to.vm, func() (err error) {
		srv, err = net.ListenPacket("udp4", to.vmIP+":0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 64)
		for {
			n, a, err := srv.ReadFrom(buf)
			if err != nil {
				return
			}
			srv.WriteTo(buf[:n], a)
		}
	}()
	defer wg.Wait()
	defer srv.Close()
	var c net.PacketConn
	if err := namespace.Do(from.vm, func() (err error) {
		c, err = net.ListenPacket("udp4", from.vmIP+":0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 3 {
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if _, err := c.WriteTo([]byte("ping"), srv.LocalAddr()); err != nil {
			continue
		}
		buf := make([]byte, 64)
		if n, _, err := c.ReadFrom(buf); err == nil && string(buf[:n]) == "ping" {
			return true
		}
	}
	return false
}

func waitStatus(t *testing.T, d *Driver, routerID, svc, conn, want string, within time.Duration) agentv1.ConnectionStatus {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		st := d.Status(routerID)[svc]
		cs := st.Connections[conn]
		if cs.Status == want {
			return cs
		}
		if time.Now().After(deadline) {
			t.Fatalf("router %s connection %s: status %+v (service %s), want %s within %v", routerID[:8], conn, cs, st.Status, want, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestDriverMoonSun(t *testing.T) {
	needCharon(t)
	tp := newTopology(t)
	changes := make(chan string, 64)
	moonD, sunD := tp.driver(t, "moon", changes), tp.driver(t, "sun", changes)
	ctx := t.Context()
	t.Cleanup(func() {
		moonD.Delete(context.Background(), tp.moon.routerID)
		sunD.Delete(context.Background(), tp.sun.routerID)
	})
	t.Cleanup(func() { // runs first: the deletions remove the logs
		if t.Failed() {
			logs, _ := filepath.Glob(filepath.Join(tp.stateDir, "*", "*", LogFile))
			for _, l := range logs {
				data, _ := os.ReadFile(l)
				t.Logf("%s:\n%s", l, data)
			}
		}
	})

	if udpReach(t, tp.moon, tp.sun) {
		t.Fatal("the VMs reach each other before any VPN")
	}
	moonSvc := service("svc-moon", "conn-moon", tp.moon, tp.sun, "right-key")
	sunSvc := service("svc-sun", "conn-sun", tp.sun, tp.moon, "right-key")
	if err := moonD.Apply(ctx, tp.moon.routerID, []agentv1.VPNService{moonSvc}); err != nil {
		t.Fatalf("apply moon: %v", err)
	}
	begin := time.Now()
	if err := sunD.Apply(ctx, tp.sun.routerID, []agentv1.VPNService{sunSvc}); err != nil {
		t.Fatalf("apply sun: %v", err)
	}
	waitStatus(t, sunD, tp.sun.routerID, "svc-sun", "conn-sun", "ACTIVE", 5*time.Second)
	waitStatus(t, moonD, tp.moon.routerID, "svc-moon", "conn-moon", "ACTIVE", 5*time.Second)
	t.Logf("second side applied -> both ACTIVE in %v", time.Since(begin).Round(time.Millisecond))
	if s := moonD.Status(tp.moon.routerID)["svc-moon"].Status; s != "ACTIVE" {
		t.Errorf("moon service %s, want ACTIVE", s)
	}
	if !udpReach(t, tp.moon, tp.sun) {
		t.Fatal("no traffic through the tunnel")
	}
	// kernel-libipsec needs ESP in UDP (charon fakes a NAT for it); with
	// XFRM and no NAT between the routers there must be none.
	sas, err := listSAs(ctx, moonD.routers[tp.moon.routerID].daemon.Client())
	if err != nil || !sas["conn-moon"].installed || sas["conn-moon"].encap != (moonD.opts.DataPlane == DataPlaneLibipsec) {
		t.Errorf("moon's SA on %s: %+v (%v), want installed, UDP-encapsulated only with libipsec", moonD.opts.DataPlane, sas["conn-moon"], err)
	}

	// Metrics count the tunnel's packets.
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(moonD)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var packetsOut, up float64
	for _, mf := range mfs {
		if mf.GetName() == "neutrino_vpn_connection_up" {
			up = mf.GetMetric()[0].GetGauge().GetValue()
		}
		if mf.GetName() == "neutrino_vpn_connection_packets_total" {
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "direction" && l.GetValue() == "out" {
						packetsOut = m.GetCounter().GetValue()
					}
				}
			}
		}
	}
	if up != 1 {
		t.Errorf("neutrino_vpn_connection_up = %v, want 1", up)
	}
	if packetsOut < 1 {
		t.Errorf("packets out %v after traffic, want > 0", packetsOut)
	}

	// A charon that does not answer cannot hold a scrape: moon's is
	// stopped; the scrape ends after scrapeTimeout without its
	// connection's metrics, and still counts its daemon.
	moonPid := moonD.Pid(tp.moon.routerID)
	if err := syscall.Kill(moonPid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(moonPid, syscall.SIGCONT)
	oldTimeout := scrapeTimeout
	scrapeTimeout = 300 * time.Millisecond
	scrapeStart := time.Now()
	mfs, err = reg.Gather()
	took := time.Since(scrapeStart)
	scrapeTimeout = oldTimeout
	if err := syscall.Kill(moonPid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if err != nil || took > 2*time.Second {
		t.Fatalf("scrape with a stopped charon took %s (%v), want about 300ms", took, err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "neutrino_vpn_connection_up" {
			t.Errorf("a charon that did not answer still has connection metrics: %v", mf)
		}
		if mf.GetName() == "neutrino_vpn_daemons" && mf.GetMetric()[0].GetGauge().GetValue() != 1 {
			t.Errorf("neutrino_vpn_daemons = %v, want 1", mf.GetMetric()[0].GetGauge().GetValue())
		}
	}
	t.Logf("scrape with a stopped charon: %s", took.Round(time.Millisecond))

	// A PSK change on one side reaches its charon: DOWN with a reason.
	sunPid := sunD.Pid(tp.sun.routerID)
	sunSvc.Connections[0].PSK = "wrong-key"
	if err := sunD.Apply(ctx, tp.sun.routerID, []agentv1.VPNService{sunSvc}); err != nil {
		t.Fatal(err)
	}
	cs := waitStatus(t, sunD, tp.sun.routerID, "svc-sun", "conn-sun", "DOWN", 5*time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(cs.Reason, "authentication failed") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		cs = sunD.Status(tp.sun.routerID)["svc-sun"].Connections["conn-sun"]
	}
	if !strings.Contains(cs.Reason, "authentication failed") {
		t.Errorf("wrong PSK: reason %q, want authentication failed", cs.Reason)
	}
	if moonD.Pid(tp.moon.routerID) != moonPid || sunD.Pid(tp.sun.routerID) != sunPid {
		t.Error("a PSK change restarted a charon")
	}
	if udpReach(t, tp.moon, tp.sun) {
		t.Error("traffic passes with mismatched PSKs")
	}

	// Fixed again: back up, no restart.
	sunSvc.Connections[0].PSK = "right-key"
	if err := sunD.Apply(ctx, tp.sun.routerID, []agentv1.VPNService{sunSvc}); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, sunD, tp.sun.routerID, "svc-sun", "conn-sun", "ACTIVE", 5*time.Second)
	waitStatus(t, moonD, tp.moon.routerID, "svc-moon", "conn-moon", "ACTIVE", 5*time.Second)

	// Agent restart: Close leaves charon and the tunnel; a new driver
	// adopts without reloading anything.
	sunD.Close()
	sunD2 := tp.driver(t, "sun", changes)
	if err := sunD2.Sweep(ctx, []string{tp.sun.routerID}); err != nil {
		t.Fatal(err)
	}
	if err := sunD2.Apply(ctx, tp.sun.routerID, []agentv1.VPNService{sunSvc}); err != nil {
		t.Fatal(err)
	}
	if sunD2.Pid(tp.sun.routerID) != sunPid {
		t.Errorf("adopted pid %d, want %d", sunD2.Pid(tp.sun.routerID), sunPid)
	}
	waitStatus(t, sunD2, tp.sun.routerID, "svc-sun", "conn-sun", "ACTIVE", time.Second)
	if !udpReach(t, tp.moon, tp.sun) {
		t.Error("no traffic after the adoption")
	}
	sunD = sunD2

	// A charon that dies is restarted and its tunnel comes back.
	unix.Kill(sunPid, unix.SIGKILL)
	deadline = time.Now().Add(15 * time.Second)
	for sunD.Pid(tp.sun.routerID) == 0 || sunD.Pid(tp.sun.routerID) == sunPid {
		if time.Now().After(deadline) {
			t.Fatal("killed charon not restarted")
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitStatus(t, sunD, tp.sun.routerID, "svc-sun", "conn-sun", "ACTIVE", 15*time.Second)
	waitStatus(t, moonD, tp.moon.routerID, "svc-moon", "conn-moon", "ACTIVE", 15*time.Second)
	if !udpReach(t, tp.moon, tp.sun) {
		t.Error("no traffic after the charon restart")
	}

	// Removing the last service stops charon and removes its files.
	dir := filepath.Join(tp.stateDir, "sun", tp.sun.routerID)
	pid := sunD.Pid(tp.sun.routerID)
	if err := sunD.Apply(ctx, tp.sun.routerID, nil); err != nil {
		t.Fatal(err)
	}
	if err := unix.Kill(pid, 0); err == nil {
		t.Errorf("charon %d still runs without services", pid)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("state dir %s left: %v", dir, err)
	}
	waitStatus(t, moonD, tp.moon.routerID, "svc-moon", "conn-moon", "DOWN", 15*time.Second)
}

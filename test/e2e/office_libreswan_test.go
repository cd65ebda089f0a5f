package e2e_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/neutrino-net/neutrino/internal/ipsec/libreswan"
	"github.com/neutrino-net/neutrino/internal/testenv"
)

// envCapture, when set, makes vpnUnmanagedLibreswan log pluto's status
// reports and its log lines for the failures a status parser must know
// (authentication failed, no proposal chosen, peer unreachable) between
// "=== capture <name>" and "=== end <name>" lines: the lab's guest writes
// nothing back, so internal/ipsec/libreswan/testdata is cut from the
// test's output.
const envCapture = "NEUTRINO_LIBRESWAN_CAPTURE"

// plutoOffice is the office's own Libreswan, loaded as its administrator
// would from the connection's libreswan export.
type plutoOffice struct {
	*office
	pluto *libreswan.Pluto
}

func startPlutoOffice(t *testing.T, off *office) *plutoOffice {
	t.Helper()
	root := testenv.RequireLibreswan(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := libreswan.Start(ctx, libreswan.Options{Dir: filepath.Join(off.dir, "pluto"), Root: root, Netns: off.gw.path})
	if err != nil {
		t.Fatalf("office pluto: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if t.Failed() {
			t.Logf("office pluto log:%s", p.LogTail(60))
		}
		_ = p.Stop(ctx)
	})
	return &plutoOffice{office: off, pluto: p}
}

// load splits the export into the conn and secrets files, replaces the
// connection and brings it up, as "ipsec auto --replace" and "--up" would.
// It returns the connection's name.
func (o *plutoOffice) load(t *testing.T, export string) string {
	t.Helper()
	name, conf, secrets, err := libreswan.SplitExport(export)
	if err != nil {
		t.Fatalf("%v\n%s", err, export)
	}
	ctx := context.Background()
	if err := o.pluto.Load(ctx, name, conf, secrets); err != nil {
		t.Fatalf("office: %v\n%s", err, conf)
	}
	if err := o.pluto.Initiate(ctx, name); err != nil {
		t.Fatalf("office: %v", err)
	}
	return name
}

// plutoCapture logs a report under a marker when envCapture is set.
func plutoCapture(t *testing.T, name, text string) {
	if os.Getenv(envCapture) != "" {
		t.Logf("\n=== capture %s\n%s=== end %s", name, text, name)
	}
}

// logSince is pluto's log from byte offset at on.
func logSince(t *testing.T, p *libreswan.Pluto, at int) string {
	b, err := os.ReadFile(p.LogPath())
	if err != nil {
		t.Fatal(err)
	}
	if at > len(b) {
		at = 0
	}
	return string(b[at:])
}

func logSize(p *libreswan.Pluto) int {
	fi, err := os.Stat(p.LogPath())
	if err != nil {
		return 0
	}
	return int(fi.Size())
}

// vpnUnmanagedLibreswan: a Libreswan router (the libreswan provider)
// against Libreswan's pluto at an office Neutrino does not manage, loaded
// from the connection's libreswan peer-config export: IKEv2 and IKEv1,
// each with pings both ways through the tunnel, ACTIVE in the API, DOWN
// with a reason after a PSK change on the Neutrino side and ACTIVE again
// once the office loads the new export, and a delete that stops traffic.
// pluto needs the kernel's ESP: it runs in TestLabKernel only.
func vpnUnmanagedLibreswan(t *testing.T) {
	lswReady(t)
	e, h, off0, _, tenant, r := officeSite(t, false)
	h.plutoLogs(t)
	off := startPlutoOffice(t, off0)
	sub := e.get("network", tenant)["subnets"].([]any)[0].(string)
	vmPort := e.port(tenant, object{"name": "vm"})
	vm := h.vm("vm")
	e.plugAll(h, []port{vmPort}, []*vmNS{vm})
	e.allowIngress(e.defaultGroup(), off.lan.Masked().String())
	ping := newPinger(t, vm, vmPort.ip, off.hostIP)
	if !ping.Silent(20*time.Millisecond, 500*time.Millisecond) {
		t.Fatal("the VM reaches the office LAN before any VPN")
	}
	esp := e.create("ipsecpolicy", object{"name": "esp", "auth_algorithm": "sha256"})["id"].(string)
	svc := e.lswService(&site{router: r, subnet: sub}, "to-office")
	ctx := context.Background()

	for _, version := range []string{"v2", "v1"} {
		ike := e.create("ikepolicy", object{"name": "ike-" + version, "ike_version": version, "auth_algorithm": "sha256"})["id"].(string)
		start := time.Now()
		conn := e.connection("office-"+version, svc, ike, esp, off.wan.Addr().String(), "0ff1ce-psk-"+version,
			object{"peer_cidrs": []any{off.lan.Masked().String()}})
		name := off.load(t, e.peerConfig(conn, "libreswan"))
		e.waitConn(conn, "ACTIVE", vpnTimeout)
		t.Logf("IKE%s: POST of the connection -> ACTIVE against the unmanaged pluto: %s", version, time.Since(start).Round(time.Millisecond))
		if _, ok := ping.Reach(20*time.Millisecond, reachTimeout); !ok {
			t.Fatalf("IKE%s: the VM cannot reach the office LAN host through the tunnel", version)
		}
		back := newPinger(t, off.lanHost, off.hostIP, vmPort.ip)
		if _, ok := back.Reach(20*time.Millisecond, reachTimeout); !ok {
			t.Fatalf("IKE%s: the office LAN host cannot reach the VM through the tunnel", version)
		}
		// pluto itself says the tunnel is up and carries traffic.
		traffic, err := off.pluto.TrafficStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`"` + regexp.QuoteMeta(name) + `".*inBytes=[1-9]`).MatchString(traffic) {
			t.Errorf("IKE%s: whack --trafficstatus shows no traffic on %s:\n%s", version, name, traffic)
		}
		for _, rep := range []struct {
			name string
			f    func(context.Context) (string, error)
		}{{"status", off.pluto.Status}, {"trafficstatus", off.pluto.TrafficStatus},
			{"briefstatus", off.pluto.BriefStatus}, {"showstates", off.pluto.ShowStates}} {
			out, err := rep.f(ctx)
			if err != nil {
				t.Fatal(err)
			}
			plutoCapture(t, "ike"+version+"-established-"+rep.name, out)
		}

		// A PSK change on our side: DOWN with the reason until the
		// office loads the new export.
		logAt := logSize(off.pluto)
		e.update("ipsec_site_connection", conn, object{"psk": "new-0ff1ce-psk-" + version})
		c := e.waitConn(conn, "DOWN", vpnTimeout)
		for deadline := time.Now().Add(vpnTimeout); c["status_reason"] == nil || c["status_reason"] == ""; time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("IKE%s: DOWN without a reason: %v", version, c)
			}
			c = e.get("ipsec_site_connection", conn)
		}
		t.Logf("IKE%s after the PSK change: DOWN, %q", version, c["status_reason"])
		plutoCapture(t, "ike"+version+"-auth-failed.log", logSince(t, off.pluto, logAt))
		off.load(t, e.peerConfig(conn, "libreswan"))
		e.waitConn(conn, "ACTIVE", vpnTimeout)
		if _, ok := ping.Reach(20*time.Millisecond, reachTimeout); !ok {
			t.Fatalf("IKE%s: no traffic after the office loaded the new export", version)
		}
		if os.Getenv(envCapture) != "" {
			captureFailures(t, off, e.peerConfig(conn, "libreswan"), version)
		}
		if err := off.pluto.Delete(ctx, name); err != nil {
			t.Fatal(err)
		}
		e.deleteConn(conn)
		if _, ok := stops(ping, reachTimeout); !ok {
			t.Fatalf("IKE%s: traffic still flows after both sides deleted the connection", version)
		}
	}
}

// captureFailures replaces the office's connection with variants of the
// export to record pluto's log for a proposal Neutrino does not accept
// and for a peer that does not answer, and checks that pluto says so.
func captureFailures(t *testing.T, off *plutoOffice, export, version string) {
	ctx := context.Background()
	name, conf, secrets, err := libreswan.SplitExport(export)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		what string
		want *regexp.Regexp
		edit func(string) string
	}{
		{"no-proposal-chosen", regexp.MustCompile(`NO_PROPOSAL_CHOSEN`), func(c string) string {
			return regexp.MustCompile(`(?m)^\tike=.*$`).ReplaceAllString(c, "\tike=aes256-sha2_512;modp4096")
		}},
		{"peer-unreachable", regexp.MustCompile(`(?i)timeout exceeded|giving up|no response`), func(c string) string {
			c = regexp.MustCompile(`(?m)^\tright=.*$`).ReplaceAllString(c, "\tright=203.0.113.99")
			return strings.Replace(c, "\tauto=start\n", "\tauto=start\n\tretransmit-timeout=3s\n\tkeyingtries=1\n", 1)
		}},
	} {
		at := logSize(off.pluto)
		if err := off.pluto.Load(ctx, name, f.edit(conf), secrets); err != nil {
			t.Fatal(err)
		}
		if err := off.pluto.Initiate(ctx, name); err != nil {
			t.Fatal(err)
		}
		var log string
		for deadline := time.Now().Add(vpnTimeout); ; time.Sleep(200 * time.Millisecond) {
			log = logSince(t, off.pluto, at)
			if f.want.MatchString(log) || time.Now().After(deadline) {
				break
			}
		}
		time.Sleep(time.Second) // what pluto logs right after
		log = logSince(t, off.pluto, at)
		plutoCapture(t, "ike"+version+"-"+f.what+".log", log)
		if !f.want.MatchString(log) {
			t.Errorf("IKE%s %s: pluto's log does not match %q:\n%s", version, f.what, f.want, log)
		}
	}
}

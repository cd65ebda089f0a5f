package strongswan

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/neutrino-net/neutrino/internal/namespace"
	"github.com/neutrino-net/neutrino/internal/testenv"
)

// needCharon ends the test (testenv) unless it can run real daemons:
// root, an installed charon and bind-mountable namespaces.
func needCharon(t *testing.T) {
	t.Helper()
	testenv.RequireCharon(t)
	testenv.RequireKernel(t, testenv.Mounting)
}

// router is one router namespace plus its state dir.
type router struct {
	name string
	opts DaemonOptions
	ns   netns.NsHandle
}

// newRouter creates a named namespace under base/netns with lo up.
func newRouter(t *testing.T, base, name string) *router {
	t.Helper()
	path := filepath.Join(base, "netns", name)
	if err := namespace.CreateNamed(path); err != nil {
		t.Fatalf("create netns %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := namespace.RemoveNamed(path); err != nil {
			t.Errorf("remove netns %s: %v", name, err)
		}
	})
	ns, err := netns.GetFromPath(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	err = namespace.Do(ns, func() error {
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		return netlink.LinkSetUp(lo)
	})
	if err != nil {
		t.Fatalf("lo up in %s: %v", name, err)
	}
	return &router{name: name, ns: ns, opts: DaemonOptions{
		Dir:    filepath.Join(base, "routers", name),
		Netns:  path,
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil)),
	}}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// start starts the router's daemon and makes sure it is stopped at the end.
func (r *router) start(t *testing.T) *Daemon {
	t.Helper()
	begin := time.Now()
	d, err := StartDaemon(t.Context(), r.opts)
	if err != nil {
		t.Fatalf("start %s: %v", r.name, err)
	}
	t.Logf("%s: charon pid %d, start to VICI ready %v", r.name, d.Pid(), time.Since(begin).Round(time.Millisecond))
	t.Cleanup(func() {
		if err := d.Stop(context.Background()); err != nil {
			t.Errorf("cleanup stop %s: %v", r.name, err)
		}
	})
	return d
}

func hasLink(ns netns.NsHandle, name string) (bool, error) {
	found := false
	err := namespace.Do(ns, func() error {
		_, err := net.InterfaceByName(name)
		found = err == nil
		return nil
	})
	return found, err
}

// eventually polls cond for up to 5s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func checkVICI(t *testing.T, name string, d *Daemon) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	v, err := d.Session().Call(ctx, "version", nil)
	if err != nil {
		t.Fatalf("%s: version: %v", name, err)
	}
	if v.Get("daemon") != "charon" {
		t.Errorf("%s: version answered by %v", name, v.Get("daemon"))
	}
	n := 0
	for m, err := range d.Session().CallStreaming(ctx, "list-sas", "list-sa", nil) {
		if err != nil {
			t.Fatalf("%s: list-sas: %v", name, err)
		}
		if m != nil {
			n++
		}
	}
	if n != 0 {
		t.Errorf("%s: list-sas returned %d SAs, want none", name, n)
	}
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

func TestDaemonTwoRouters(t *testing.T) {
	needCharon(t)
	hostPidFiles := []string{"/run/charon.pid", "/var/run/charon.pid"}
	before := map[string]bool{}
	for _, p := range hostPidFiles {
		before[p] = exists(p)
	}
	_, hostErr := net.InterfaceByName("ipsec0")
	hostHadIpsec0 := hostErr == nil

	base := t.TempDir()
	// As the agent does: the netns dir is a shared mount, so charon's
	// slave copies of it see later unmounts (checked at the end).
	shared := namespace.PrepareDir(filepath.Join(base, "netns")) == nil
	if shared {
		t.Cleanup(func() { unix.Unmount(filepath.Join(base, "netns"), unix.MNT_DETACH) })
	}
	r1, r2 := newRouter(t, base, "r1"), newRouter(t, base, "r2")
	d1, d2 := r1.start(t), r2.start(t)

	if d1.Pid() == d2.Pid() || d1.Pid() <= 0 || d2.Pid() <= 0 {
		t.Fatalf("pids %d and %d, want distinct", d1.Pid(), d2.Pid())
	}
	for _, x := range []struct {
		r *router
		d *Daemon
	}{{r1, d1}, {r2, d2}} {
		checkVICI(t, x.r.name, x.d)
		if pid, err := readPid(x.r.opts); err != nil || pid != x.d.Pid() {
			t.Errorf("%s: pid file %d (%v), want %d", x.r.name, pid, err, x.d.Pid())
		}
		if err := sameNetns(x.d.Pid(), x.r.opts.Netns); err != nil {
			t.Errorf("%s: %v", x.r.name, err)
		}
		ok, err := hasLink(x.r.ns, "ipsec0")
		if err != nil || !ok {
			t.Errorf("%s: no ipsec0 in the router namespace (%v)", x.r.name, err)
		}
		conf, err := os.ReadFile(filepath.Join(x.r.opts.Dir, ConfFile))
		if err != nil || !strings.Contains(string(conf), "kdf kernel-libipsec") {
			t.Errorf("%s: strongswan.conf without the explicit plugin list: %v\n%s", x.r.name, err, conf)
		}
	}
	if !hostHadIpsec0 {
		if _, err := net.InterfaceByName("ipsec0"); err == nil {
			t.Errorf("ipsec0 appeared in the test's own namespace")
		}
	}
	for _, p := range hostPidFiles {
		if !before[p] && exists(p) {
			t.Errorf("%s created on the host", p)
		}
	}

	// A second start for a live router is refused; Adopt reconnects.
	if _, err := StartDaemon(t.Context(), r1.opts); !errors.Is(err, ErrRunning) {
		t.Errorf("second start: %v, want ErrRunning", err)
	}
	a1, err := Adopt(t.Context(), r1.opts)
	if err != nil {
		t.Fatalf("adopt: %v", err)
	}
	if a1.Pid() != d1.Pid() {
		t.Errorf("adopted pid %d, want %d", a1.Pid(), d1.Pid())
	}
	checkVICI(t, "r1 adopted", a1)
	if err := a1.Close(); err != nil {
		t.Errorf("close adopted: %v", err)
	}
	if !d1.Alive() {
		t.Fatal("Close of the adopted daemon stopped charon")
	}
	if _, err := Adopt(t.Context(), DaemonOptions{Dir: r1.opts.Dir, Netns: r2.opts.Netns}); err == nil {
		t.Error("adopt with the wrong namespace succeeded")
	}

	// Stop removes process and files, keeps the log; again is harmless.
	pid1 := d1.Pid()
	begin := time.Now()
	if err := d1.Stop(t.Context()); err != nil {
		t.Fatalf("stop: %v", err)
	}
	t.Logf("r1: stop took %v", time.Since(begin).Round(time.Millisecond))
	if err := unix.Kill(pid1, 0); !errors.Is(err, unix.ESRCH) {
		t.Errorf("pid %d still exists after Stop: %v", pid1, err)
	}
	if d1.Alive() || d1.Session() != nil {
		t.Error("stopped daemon still Alive or has a session")
	}
	for _, f := range []string{SocketFile, PidFile, ConfFile} {
		if exists(filepath.Join(r1.opts.Dir, f)) {
			t.Errorf("%s left after Stop", f)
		}
	}
	if !exists(filepath.Join(r1.opts.Dir, LogFile)) {
		t.Error("Stop removed the log")
	}
	if err := d1.Stop(t.Context()); err != nil {
		t.Errorf("second stop: %v", err)
	}
	if _, err := Adopt(t.Context(), r1.opts); !errors.Is(err, ErrNotRunning) {
		t.Errorf("adopt after stop: %v, want ErrNotRunning", err)
	}
	eventually(t, "ipsec0 gone from r1", func() bool { ok, _ := hasLink(r1.ns, "ipsec0"); return !ok })
	checkVICI(t, "r2 after r1 stopped", d2)

	// charon's mount namespace: the router dir is its run dir, and
	// deleting r1's namespace on the host does not leave it pinned there
	// (slave mounts, and the kernel drops mounts on unlinked files).
	mi, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", d2.Pid()))
	if err != nil {
		t.Fatal(err)
	}
	run, _ := runDir()
	if !hasMount(string(mi), r2.opts.Dir, run) {
		t.Errorf("%s is not bind-mounted on %s for r2's charon:\n%s", r2.opts.Dir, run, mi)
	}
	if shared {
		if err := namespace.RemoveNamed(r1.opts.Netns); err != nil {
			t.Fatal(err)
		}
		mi, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", d2.Pid()))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(mi), r1.opts.Netns) {
			t.Errorf("r1's netns mount still held in r2's charon mount namespace")
		}
	}
}

// hasMount reports whether mountinfo has root (within its filesystem,
// assumed to be mounted at /) mounted at point.
func hasMount(mountinfo, root, point string) bool {
	for _, l := range strings.Split(mountinfo, "\n") {
		f := strings.Fields(l)
		if len(f) > 4 && strings.HasSuffix(root, f[3]) && f[4] == point {
			return true
		}
	}
	return false
}

func TestDaemonKilledIsDetected(t *testing.T) {
	needCharon(t)
	base := t.TempDir()
	r := newRouter(t, base, "rk")
	d := r.start(t)
	a, err := Adopt(t.Context(), r.opts) // how a restarted agent sees it
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()

	if err := unix.Kill(d.Pid(), unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, "Alive false for the started daemon", func() bool { return !d.Alive() })
	eventually(t, "Alive false for the adopted daemon", func() bool { return !a.Alive() })
	if _, err := Adopt(t.Context(), r.opts); !errors.Is(err, ErrNotRunning) {
		t.Errorf("adopt of a killed daemon: %v, want ErrNotRunning", err)
	}
	eventually(t, "ipsec0 gone", func() bool { ok, _ := hasLink(r.ns, "ipsec0"); return !ok })

	// A supervisor restarts it in the same dir despite the stale pid file.
	if !exists(filepath.Join(r.opts.Dir, PidFile)) {
		t.Log("note: no stale pid file left by the killed charon")
	}
	d2 := r.start(t)
	if d2.Pid() == d.Pid() {
		t.Errorf("restarted daemon has the old pid %d", d.Pid())
	}
	checkVICI(t, "restarted", d2)
	if err := d.Stop(t.Context()); err != nil { // the dead one: harmless
		t.Errorf("stop of the killed daemon: %v", err)
	}
	for _, f := range []string{SocketFile, PidFile, ConfFile} {
		if !exists(filepath.Join(r.opts.Dir, f)) {
			t.Errorf("stopping the dead daemon removed its successor's %s", f)
		}
	}
	if a2, err := Adopt(t.Context(), r.opts); err != nil || a2.Pid() != d2.Pid() {
		t.Errorf("adopt of the restarted daemon: %v", err)
	} else {
		a2.Close()
	}
	if err := d2.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestConfPaths(t *testing.T) {
	c := Conf("/run", DataPlaneLibipsec)
	if x := Conf("/run", DataPlaneXFRM); strings.Contains(x, "kernel-libipsec") || !strings.Contains(x, " kdf ") {
		t.Errorf("xfrm conf must load kdf and not kernel-libipsec:\n%s", x)
	}
	for _, want := range []string{
		"load_modular = no",
		"load = " + strings.Join(Plugins(DataPlaneLibipsec), " "),
		"socket = unix:///run/charon.vici",
		"path = /run/charon.log",
		"install_routes = yes",
		"kdf kernel-libipsec kernel-netlink",
	} {
		if !strings.Contains(c, want) {
			t.Errorf("conf lacks %q:\n%s", want, c)
		}
	}
}

package vmlab

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/neutrino-net/neutrino/internal/namespace"
)

// TestCPIO: busybox's cpio reads back what the writer wrote, with odd
// name and data lengths (the format pads both to 4 bytes).
func TestCPIO(t *testing.T) {
	var buf bytes.Buffer
	c := &cpioWriter{w: &buf}
	c.Dir("d")
	c.File("d/a", 0o644, []byte("x"))
	c.File("/d/bc", 0o755, []byte("hello, world\n"))
	c.Symlink("d/link", "a")
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if buf.Len()%4 != 0 {
		t.Fatalf("archive of %d bytes, not a multiple of 4", buf.Len())
	}
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatalf("busybox (Debian busybox-static) is needed to read the archive back: %v", err)
	}
	dir := t.TempDir()
	cmd := exec.Command(bb, "cpio", "-i", "-d")
	cmd.Dir, cmd.Stdin = dir, &buf
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("busybox cpio -i: %v\n%s", err, out)
	}
	if data, err := os.ReadFile(filepath.Join(dir, "d", "bc")); err != nil || string(data) != "hello, world\n" {
		t.Fatalf("d/bc = %q, %v", data, err)
	}
	if st, err := os.Stat(filepath.Join(dir, "d", "bc")); err != nil || st.Mode().Perm() != 0o755 {
		t.Fatalf("d/bc mode: %v %v", st, err)
	}
	if data, err := os.ReadFile(filepath.Join(dir, "d", "link")); err != nil || string(data) != "x" {
		t.Fatalf("d/link -> %q, %v", data, err)
	}
}

func TestParseMarker(t *testing.T) {
	for _, tc := range []struct {
		line string
		code int
		ok   bool
	}{
		{"vmlab-ab exit=0\r\n", 0, true},
		{"[   12.3] some kernel message vmlab-ab exit=137\n", 137, true},
		{"vmlab-ab exit=\n", 0, false},
		{"vmlab-cd exit=3\n", 0, false},
		{"exit=3 vmlab-ab\n", 0, false},
	} {
		code, ok := parseMarker(tc.line, "vmlab-ab")
		if code != tc.code || ok != tc.ok {
			t.Errorf("%q: %d %v, want %d %v", tc.line, code, ok, tc.code, tc.ok)
		}
	}
}

// TestLabRunExitStatus: the command runs on the lab's kernel with the
// environment given (quoting intact), in the directory given; its output
// comes back without the console's carriage returns and its exit status
// is Run's.
func TestLabRunExitStatus(t *testing.T) {
	l := Require(t)
	var out bytes.Buffer
	start := time.Now()
	code, err := l.Run(t.Context(), Run{Args: []string{"sh", "-c", `echo "hi $1"; uname -r; echo "$NEUTRINO_VMLAB_GUEST|$FOO"; pwd; exit 7`, "sh", "there"},
		Env: []string{"FOO=it's \"quoted\" $HOME"}, Dir: "/usr/share", Stdout: &out})
	t.Logf("a trivial run took %s", time.Since(start).Round(time.Millisecond))
	if err != nil || code != 7 {
		t.Fatalf("status %d, %v; want 7\n%s", code, err, out.String())
	}
	want := "hi there\n" + l.KVer + "\n1|it's \"quoted\" $HOME\n/usr/share\n"
	if out.String() != want {
		t.Fatalf("output %q, want %q", out.String(), want)
	}
}

// TestLabRunDeadline: a command that outlives its context is cut, the error
// says so, and no QEMU process is left.
func TestLabRunDeadline(t *testing.T) {
	l := Require(t)
	before := qemus(t)
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	start := time.Now()
	code, err := l.Run(ctx, Run{Args: []string{"sleep", "600"}})
	if err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("status %d, %v; want a timeout", code, err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("Run returned %s after its 15 s deadline", d-15*time.Second)
	}
	if after := qemus(t); after > before {
		t.Fatalf("%d QEMU processes after the run, %d before", after, before)
	}
}

// qemus counts the running qemu-system processes.
func qemus(t *testing.T) int {
	t.Helper()
	n := 0
	procs, _ := filepath.Glob("/proc/[0-9]*/comm")
	for _, p := range procs {
		if data, err := os.ReadFile(p); err == nil && strings.HasPrefix(string(data), "qemu-system") {
			n++
		}
	}
	return n
}

// TestLabKernelFeatures runs in the lab: its kernel is the lab's, and it
// has what this machine's kernel lacks: ESP states in a namespace, ipvlan
// and 802.1q links.
func TestLabKernelFeatures(t *testing.T) {
	if !Enter(t) {
		return
	}
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	if rel := unix.ByteSliceToString(u.Release[:]); rel != os.Getenv(EnvKVer) {
		t.Fatalf("kernel %s, want the lab's %s", rel, os.Getenv(EnvKVer))
	}
	for _, m := range []string{"esp4", "esp6", "ipvlan", "8021q", "xfrm_user"} {
		if out, err := exec.Command("modprobe", m).CombinedOutput(); err != nil {
			t.Errorf("modprobe %s: %v %s", m, err, out)
		}
	}
	err := namespace.OnThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return err
		}
		parent := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "p0"}, PeerName: "p1"}
		if err := netlink.LinkAdd(parent); err != nil {
			return err
		}
		p0, err := netlink.LinkByName("p0")
		if err != nil {
			return err
		}
		if err := netlink.LinkAdd(&netlink.IPVlan{LinkAttrs: netlink.LinkAttrs{Name: "ipvl0", ParentIndex: p0.Attrs().Index},
			Mode: netlink.IPVLAN_MODE_L2}); err != nil {
			t.Errorf("ipvlan link: %v", err)
		}
		if err := netlink.LinkAdd(&netlink.Vlan{LinkAttrs: netlink.LinkAttrs{Name: "p0.100", ParentIndex: p0.Attrs().Index},
			VlanId: 100}); err != nil {
			t.Errorf("802.1q link: %v", err)
		}
		st := &netlink.XfrmState{Src: net.ParseIP("192.0.2.1"), Dst: net.ParseIP("192.0.2.2"),
			Proto: netlink.XFRM_PROTO_ESP, Mode: netlink.XFRM_MODE_TUNNEL, Spi: 0x100,
			Auth:  &netlink.XfrmStateAlgo{Name: "hmac(sha256)", Key: make([]byte, 32), TruncateLen: 128},
			Crypt: &netlink.XfrmStateAlgo{Name: "cbc(aes)", Key: make([]byte, 16)}}
		if err := netlink.XfrmStateAdd(st); err != nil {
			t.Errorf("ESP state: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

package vmlab

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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

// TestRelay: the console reaches the writer line by line without carriage
// returns; the marker line is not forwarded, its status is sent, and the
// power-off chatter after it is dropped.
func TestRelay(t *testing.T) {
	console := "hi\r\nsecond line\r\nvmlab-ab exit=7\r\n[ 3.1] reboot: Power down\r\n"
	var out bytes.Buffer
	exit := make(chan int, 1)
	if err := relay(strings.NewReader(console), &out, "vmlab-ab", exit); err != nil {
		t.Fatal(err)
	}
	if out.String() != "hi\nsecond line\n" {
		t.Errorf("forwarded %q", out.String())
	}
	select {
	case code := <-exit:
		if code != 7 {
			t.Errorf("status %d, want 7", code)
		}
	default:
		t.Error("no status")
	}
}

// TestModule: boot modules are found through modules.dep and come out
// decompressed whatever the kernel package's compression.
func TestModule(t *testing.T) {
	dir := t.TempDir()
	plain := []byte("\x7fELF a module")
	write := func(name string, data []byte) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	compress := func(tool string) []byte {
		t.Helper()
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed to make a compressed module: %v", tool, err)
		}
		cmd := exec.Command(tool, "-c")
		cmd.Stdin = bytes.NewReader(plain)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s -c: %v", tool, err)
		}
		return out
	}
	write("kernel/a/plain.ko", plain)
	write("kernel/a/virtio_xz.ko.xz", compress("xz"))
	write("kernel/b/ninep.ko.zst", compress("zstd"))
	write("kernel/b/over.ko.gz", compress("gzip"))
	write("modules.dep", []byte("kernel/a/plain.ko:\nkernel/a/virtio_xz.ko.xz: kernel/a/plain.ko\n"+
		"kernel/b/ninep.ko.zst:\nkernel/b/over.ko.gz:\n"))
	l := &Lab{Modules: dir}
	for _, m := range []string{"plain", "virtio_xz", "ninep", "over"} {
		if data, err := l.module(m); err != nil || !bytes.Equal(data, plain) {
			t.Errorf("%s: %q, %v", m, data, err)
		}
	}
	if _, err := l.module("virtio"); err == nil {
		t.Error("a module missing from modules.dep was found")
	}
}

func TestVersionLess(t *testing.T) {
	sorted := []string{"6.1.0-9-amd64", "6.1.0-57-amd64", "6.1.0-100-amd64", "6.12.0-1-amd64"}
	for i := range sorted {
		for j := range sorted {
			if got := versionLess(sorted[i], sorted[j]); got != (i < j) {
				t.Errorf("versionLess(%s, %s) = %v", sorted[i], sorted[j], got)
			}
		}
	}
}

// TestResult: Enter's reading of the inner run's verbose output.
func TestResult(t *testing.T) {
	for _, tc := range []struct {
		out             string
		skipped, failed bool
	}{
		{"=== RUN   TestA\n--- PASS: TestA (1.00s)\nPASS\n", false, false},
		{"=== RUN   TestA\n    x_test.go:9: no postgres\n--- SKIP: TestA (0.00s)\nPASS\n", true, false},
		{"testing: warning: no tests to run\nPASS\n", false, true},
		{"=== RUN   TestA\n--- FAIL: TestA (0.10s)\nFAIL\n", false, true},
		{"=== RUN   TestAB\n--- PASS: TestAB (1.00s)\nPASS\n", false, true}, // another test
		{"=== RUN   TestA\npanic: test timed out after 5m0s\n", false, true},
	} {
		skipped, err := Result(tc.out, "TestA")
		if skipped != tc.skipped || (err != nil) != tc.failed {
			t.Errorf("%q: skipped %v, err %v", tc.out, skipped, err)
		}
	}
	if _, err := Result("=== RUN   TestA/b_c\n    --- PASS: TestA/b_c (0.00s)\n", "TestA/b_c"); err != nil {
		t.Errorf("subtest: %v", err)
	}
}

func TestRunPatternAndEnv(t *testing.T) {
	if got := runPattern("TestA/x.y(1)"); got != `TestA$/^x\.y\(1\)` {
		t.Errorf("runPattern: %s", got)
	}
	if got := withSystemPath("/usr/local/go/bin:/usr/bin"); got != "/usr/local/go/bin:/usr/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/sbin:/bin" {
		t.Errorf("withSystemPath: %s", got)
	}
	if got := innerTimeout(10 * time.Minute); got != 9*time.Minute+40*time.Second {
		t.Errorf("innerTimeout(10m) = %s", got)
	}
	if got := innerTimeout(30 * time.Second); got != 15*time.Second {
		t.Errorf("innerTimeout(30s) = %s", got)
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

// TestLabRunDeadline: a command that outlives its deadline is cut, the
// error says so, and no QEMU process is left. The deadline is Run.Timeout,
// which starts when the lab is ours: go test runs the lab tests of other
// packages at the same time, and one of those may hold the lab for minutes.
func TestLabRunDeadline(t *testing.T) {
	l := Require(t)
	// Watch for QEMU children of ours: the check after the run must be
	// able to see one.
	var firstSeen time.Time
	stop, watched := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watched)
		for {
			if firstSeen.IsZero() && len(ourQEMUs()) > 0 {
				firstSeen = time.Now()
			}
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	code, err := l.Run(t.Context(), Run{Args: []string{"sleep", "600"}, Timeout: 6 * time.Second})
	close(stop)
	<-watched
	if err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("status %d, %v; want a timeout", code, err)
	}
	if firstSeen.IsZero() {
		t.Fatal("no QEMU child of this process seen during the run")
	}
	if d := time.Since(firstSeen); d > 11*time.Second {
		t.Errorf("Run returned %s after QEMU started, with a 6 s deadline", d.Round(time.Millisecond))
	}
	if left := ourQEMUs(); len(left) > 0 {
		t.Fatalf("QEMU processes left after the run: %v", left)
	}
}

// ourQEMUs lists the qemu-system processes (zombies included) whose
// parent is this process: other packages' lab VMs are not ours.
func ourQEMUs() []string {
	var out []string
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range stats {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		s := string(data)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open {
			continue
		}
		comm, rest := s[open+1:end], strings.Fields(s[end+1:])
		if strings.HasPrefix(comm, "qemu-system") && len(rest) > 1 && rest[1] == strconv.Itoa(os.Getpid()) {
			out = append(out, strings.TrimSpace(s[:open])+" "+rest[0])
		}
	}
	return out
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
	// The static device nodes are there and load their module when
	// opened, as on a real host.
	var st unix.Stat_t
	if err := unix.Stat("/dev/net/tun", &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR ||
		unix.Major(st.Rdev) != 10 || unix.Minor(st.Rdev) != 200 {
		t.Errorf("/dev/net/tun: %+v, %v; want the character device 10:200", st, err)
	} else if f, err := os.OpenFile("/dev/net/tun", os.O_RDWR, 0); err != nil {
		t.Errorf("open /dev/net/tun (loads tun): %v", err)
	} else {
		f.Close()
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

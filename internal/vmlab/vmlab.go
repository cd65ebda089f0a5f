// Package vmlab is the full-kernel lab: it boots Debian's own kernel in
// QEMU (TCG emulation; no KVM needed) over this machine's root file system,
// shared read-only by virtio-9p with a tmpfs overlay on top, runs one
// command there (typically the calling test binary) and returns its
// output and exit status. Tests that need what the build machine's kernel
// lacks (ESP, ipvlan, 802.1q) run themselves inside it with Enter.
//
// scripts/ci/vmlab.sh installs QEMU and busybox-static and fetches the
// kernel into the cache directory.
package vmlab

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/neutrino-net/neutrino/internal/testenv"
)

// DefaultDir is the kernel cache when NEUTRINO_VMLAB_DIR is unset.
const DefaultDir = "/var/cache/neutrino/vmlab"

// Environment variables.
const (
	// EnvDir names the kernel cache directory.
	EnvDir = "NEUTRINO_VMLAB_DIR"
	// EnvGuest is set to 1 for the command run inside the lab.
	EnvGuest = "NEUTRINO_VMLAB_GUEST"
	// EnvKVer is the lab kernel's release, for the command inside.
	EnvKVer = "NEUTRINO_VMLAB_KVER"
)

// systemPath is the command's PATH unless Run.Env sets one.
const systemPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Setup is what to run to get the lab's parts.
const Setup = "sudo bash scripts/ci/vmlab.sh"

// bootModules are what the initramfs loads, in dependency order (busybox
// insmod resolves none), to mount the shared root and the overlay.
var bootModules = []string{"virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev", "virtio_pci",
	"netfs", "fscache", "9pnet", "9pnet_virtio", "9p", "overlay"}

// Lab is a kernel ready to boot.
type Lab struct {
	QEMU    string // qemu-system-x86_64
	Busybox string // a static busybox, the initramfs's only program
	KVer    string // the kernel release
	Kernel  string // what QEMU boots: its vmlinux (PVH) if extracted, else its vmlinuz
	Modules string // its lib/modules/<kver>, with modules.dep
}

// Find locates QEMU, busybox and the newest cached kernel.
func Find() (*Lab, error) {
	l := &Lab{}
	var err error
	if l.QEMU, err = exec.LookPath("qemu-system-x86_64"); err != nil {
		return nil, fmt.Errorf("no qemu-system-x86_64 (Debian qemu-system-x86); run %s", Setup)
	}
	l.Busybox = "/bin/busybox"
	if data, err := os.ReadFile(l.Busybox); err != nil || bytes.Contains(data, []byte("/lib64/ld-linux")) {
		return nil, fmt.Errorf("no static %s (Debian busybox-static); run %s", l.Busybox, Setup)
	}
	dir := os.Getenv(EnvDir)
	if dir == "" {
		dir = DefaultDir
	}
	entries, _ := os.ReadDir(dir)
	var kvers []string
	for _, e := range entries {
		k := e.Name()
		if e.IsDir() && !strings.HasPrefix(k, ".") && fileExists(filepath.Join(dir, k, "boot", "vmlinuz-"+k)) &&
			fileExists(filepath.Join(dir, k, "lib", "modules", k, "modules.dep")) {
			kvers = append(kvers, k)
		}
	}
	if len(kvers) == 0 {
		return nil, fmt.Errorf("no kernel in %s; run %s", dir, Setup)
	}
	sort.Slice(kvers, func(i, j int) bool { return versionLess(kvers[i], kvers[j]) })
	l.KVer = kvers[len(kvers)-1]
	l.Kernel = filepath.Join(dir, l.KVer, "boot", "vmlinuz-"+l.KVer)
	// The uncompressed kernel, if vmlab.sh extracted it, boots through
	// QEMU's PVH entry point without the bzImage's decompression (about
	// 6 s under TCG).
	if vmlinux := filepath.Join(dir, l.KVer, "boot", "vmlinux-"+l.KVer); isELF(vmlinux) {
		l.Kernel = vmlinux
	}
	l.Modules = filepath.Join(dir, l.KVer, "lib", "modules", l.KVer)
	return l, nil
}

// versionLess orders kernel releases by their numbers (6.1.0-9 before
// 6.1.0-57), then as strings.
func versionLess(a, b string) bool {
	num := regexp.MustCompile(`\d+|\D+`)
	pa, pb := num.FindAllString(a, -1), num.FindAllString(b, -1)
	for i := 0; i < len(pa) && i < len(pb); i++ {
		if pa[i] == pb[i] {
			continue
		}
		na, ea := strconv.Atoi(pa[i])
		nb, eb := strconv.Atoi(pb[i])
		if ea == nil && eb == nil {
			return na < nb
		}
		return pa[i] < pb[i]
	}
	return len(pa) < len(pb)
}

func isELF(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	magic := make([]byte, 4)
	_, err = io.ReadFull(f, magic)
	return err == nil && string(magic) == "\x7fELF"
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Size() > 0
}

// Inside reports whether this process runs inside the lab.
func Inside() bool { return os.Getenv(EnvGuest) == "1" }

// Run is one command to run in the lab.
type Run struct {
	// Args is the command and its arguments.
	Args []string
	// Env is added to the command's environment (PATH, HOME, the guest
	// marker and the kernel release are set already).
	Env []string
	// Dir is the command's working directory ("/" if empty).
	Dir string
	// Stdout receives the command's output (stdout and stderr), line by
	// line as it comes; nil discards it.
	Stdout io.Writer
	// MemoryMiB and CPUs size the VM (2048 and 2 if zero).
	MemoryMiB, CPUs int
	// Timeout, if not zero, limits the VM's run from when the lab is
	// ours: waiting for another process's VM does not count (ctx bounds
	// both).
	Timeout time.Duration
}

// Run boots the lab, runs r's command and returns its exit status. An
// error means the command's status is unknown: the VM did not start,
// ctx ended first (the error says so), or it stopped without reporting.
// QEMU is killed on every path; nothing is left but what the command
// wrote to the host (the shared root is read-only, so nothing).
func (l *Lab) Run(ctx context.Context, r Run) (int, error) {
	if len(r.Args) == 0 {
		return -1, errors.New("vmlab: no command")
	}
	tmp, err := os.MkdirTemp("", "vmlab-")
	if err != nil {
		return -1, err
	}
	defer os.RemoveAll(tmp)
	marker := newMarker()
	initrd := filepath.Join(tmp, "initrd.cpio")
	if err := l.initramfs(initrd, r, marker); err != nil {
		return -1, fmt.Errorf("vmlab: initramfs: %w", err)
	}
	unlock, err := lockLab(ctx)
	if err != nil {
		return -1, err
	}
	defer unlock()
	if r.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.Timeout)
		defer cancel()
	}

	mem, cpus := r.MemoryMiB, r.CPUs
	if mem == 0 {
		mem = 2048
	}
	if cpus == 0 {
		cpus = 2
	}
	cmd := exec.Command(l.QEMU, "-machine", "q35,accel=tcg", "-cpu", "max", "-smp", strconv.Itoa(cpus),
		"-m", strconv.Itoa(mem), "-display", "none", "-monitor", "none", "-serial", "stdio", "-no-reboot", "-nic", "none",
		"-kernel", l.Kernel, "-initrd", initrd,
		"-append", "console=ttyS0 quiet loglevel=1 panic=-1 softlockup_panic=1 rdinit=/init",
		"-virtfs", "local,path=/,mount_tag=root,security_model=none,readonly=on,multidevs=remap",
		"-virtfs", "local,path="+l.Modules+",mount_tag=modules,security_model=none,readonly=on,multidevs=remap")
	cmd.Stdin = nil
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// The console's pipe is ours: Wait, called as QEMU exits (see
	// startPinned), would close exec's before the relay has read it all.
	out, outW, err := os.Pipe()
	if err != nil {
		return -1, err
	}
	defer out.Close()
	cmd.Stdout = outW
	var qemuErr testenv.LogBuffer
	cmd.Stderr = &qemuErr
	qemuWaited, err := startPinned(cmd)
	outW.Close()
	if err != nil {
		return -1, fmt.Errorf("vmlab: start qemu: %w", err)
	}
	kill := func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	exit := make(chan int, 1)
	copied := make(chan error, 1)
	go func() { copied <- relay(out, r.Stdout, marker, exit) }()
	waited := make(chan error, 1)
	go func() {
		err := <-copied
		if werr := <-qemuWaited; err == nil {
			err = werr
		}
		waited <- err
	}()
	select {
	case <-ctx.Done():
		kill()
		<-waited
		return -1, fmt.Errorf("vmlab: %s timed out: %w", strings.Join(r.Args, " "), ctx.Err())
	case err := <-waited:
		kill()
		select {
		case code := <-exit:
			return code, nil
		default:
		}
		if msg := strings.TrimSpace(qemuErr.String()); msg != "" {
			return -1, fmt.Errorf("vmlab: the VM stopped without the command's status (%v): %s", err, msg)
		}
		return -1, fmt.Errorf("vmlab: the VM stopped without the command's status (%v)", err)
	}
}

func newMarker() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "vmlab-" + hex.EncodeToString(b)
}

// relay copies the console to w line by line, without carriage returns,
// up to the marker line, whose status it sends on exit (what follows is
// the power-off).
func relay(r io.Reader, w io.Writer, marker string, exit chan<- int) error {
	br := bufio.NewReaderSize(r, 64<<10)
	done := false
	for {
		line, err := br.ReadString('\n')
		if line != "" && !done {
			if code, ok := parseMarker(line, marker); ok {
				done = true
				select {
				case exit <- code:
				default:
				}
			} else if w != nil {
				_, _ = io.WriteString(w, strings.TrimRight(line, "\r\n")+"\n")
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// parseMarker reads "<marker> exit=<n>" anywhere in a console line (a
// kernel message may share it).
func parseMarker(line, marker string) (int, bool) {
	i := strings.Index(line, marker+" exit=")
	if i < 0 {
		return 0, false
	}
	m := regexp.MustCompile(`^exit=(\d+)`).FindStringSubmatch(line[i+len(marker)+1:])
	if m == nil {
		return 0, false
	}
	n, err := strconv.Atoi(m[1])
	return n, err == nil
}

// lockLab takes the machine-wide lab lock: one VM at a time, since go
// test runs packages in parallel and TCG wants every core.
func lockLab(ctx context.Context) (func(), error) {
	path := filepath.Join(os.TempDir(), "neutrino-vmlab.lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
			// Who holds the lab, for those waiting.
			_ = f.Truncate(0)
			_, _ = f.WriteAt([]byte(fmt.Sprintf("pid %d: %s\n", os.Getpid(), strings.Join(os.Args, " "))), 0)
			return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
		}
		select {
		case <-ctx.Done():
			holder, _ := os.ReadFile(path)
			f.Close()
			return nil, fmt.Errorf("vmlab: timed out waiting for another VM (%s held by %s): %w",
				path, strings.TrimSpace(string(holder)), ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// quote is s as one shell word.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// initramfs writes the archive the kernel starts from: busybox, the boot
// modules, /init (mount the shared root under a tmpfs overlay and switch
// into it) and the command's script.
func (l *Lab) initramfs(path string, r Run, marker string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	c := &cpioWriter{w: bw}
	for _, d := range []string{"bin", "dev", "proc", "sys", "lower", "upper", "newroot", "lib", "lib/vmlab"} {
		c.Dir(d)
	}
	bb, err := os.ReadFile(l.Busybox)
	if err != nil {
		return err
	}
	c.File("bin/busybox", 0o755, bb)
	c.Symlink("bin/sh", "busybox")
	for _, m := range bootModules {
		data, err := l.module(m)
		if err != nil {
			return err
		}
		c.File("lib/vmlab/"+m+".ko", 0o644, data)
	}
	c.File("init", 0o755, []byte(l.initScript(marker)))
	c.File("command.sh", 0o755, []byte(commandScript(r, l.KVer, marker)))
	if err := c.Close(); err != nil {
		return err
	}
	return bw.Flush()
}

// module returns a module's object as insmod wants it: found through
// modules.dep and decompressed when the kernel package ships it compressed
// (Debian 12's modules are plain .ko; Debian 13's are .ko.xz, and busybox's
// insmod may not read those).
func (l *Lab) module(name string) ([]byte, error) {
	dep, err := os.ReadFile(filepath.Join(l.Modules, "modules.dep"))
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(string(dep), "\n") {
		file, _, _ := strings.Cut(line, ":")
		base := filepath.Base(file)
		for _, ext := range []string{".ko", ".ko.xz", ".ko.zst", ".ko.gz"} {
			if base == name+ext {
				return readModule(filepath.Join(l.Modules, file))
			}
		}
	}
	return nil, fmt.Errorf("module %s not in %s", name, filepath.Join(l.Modules, "modules.dep"))
}

// readModule reads a module file, decompressing .xz (xz), .zst (zstd) and
// .gz.
func readModule(path string) ([]byte, error) {
	var tool string
	switch filepath.Ext(path) {
	case ".ko":
		return os.ReadFile(path)
	case ".gz":
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return io.ReadAll(zr)
	case ".xz":
		tool = "xz"
	case ".zst":
		tool = "zstd"
	default:
		return nil, fmt.Errorf("%s: unknown module compression", path)
	}
	bin, err := exec.LookPath(tool)
	if err != nil {
		return nil, fmt.Errorf("%s is compressed and %s is not on PATH (Debian package %s): %w", path, tool, map[string]string{"xz": "xz-utils", "zstd": "zstd"}[tool], err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "-dc", path)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s -dc %s: %w: %s", tool, path, err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

type devNode struct {
	name         string // under /dev
	kind         string // c or b
	major, minor int
}

// devNodes reads modules.devname ("tun net/tun c10:200" lines); a
// missing or odd file gives fewer nodes, not an error.
func (l *Lab) devNodes() []devNode {
	data, _ := os.ReadFile(filepath.Join(l.Modules, "modules.devname"))
	var out []devNode
	re := regexp.MustCompile(`^\S+\s+([A-Za-z0-9_./+-]+)\s+([cb])(\d+):(\d+)\s*$`)
	for _, line := range strings.Split(string(data), "\n") {
		m := re.FindStringSubmatch(line)
		if m == nil || strings.Contains(m[1], "..") {
			continue
		}
		major, _ := strconv.Atoi(m[3])
		minor, _ := strconv.Atoi(m[4])
		out = append(out, devNode{name: m[1], kind: m[2], major: major, minor: minor})
	}
	return out
}

func (l *Lab) initScript(marker string) string {
	var b strings.Builder
	b.WriteString("#!/bin/busybox sh\n")
	b.WriteString("export PATH=/bin\n")
	b.WriteString("fail() { echo \"vmlab: $*\"; echo " + marker + " exit=125; echo o > /proc/sysrq-trigger; sleep 5; }\n")
	b.WriteString("busybox mount -t proc proc /proc\nbusybox mount -t sysfs sys /sys\nbusybox mount -t devtmpfs dev /dev\n")
	for _, m := range bootModules {
		fmt.Fprintf(&b, "busybox insmod /lib/vmlab/%s.ko || fail 'insmod %s'\n", m, m)
	}
	b.WriteString("busybox mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=loose,ro root /lower || fail 'mount the shared root'\n")
	b.WriteString("busybox mount -t tmpfs -o mode=0755 upper /upper && busybox mkdir -p /upper/data /upper/work\n")
	b.WriteString("busybox mount -t overlay -o lowerdir=/lower,upperdir=/upper/data,workdir=/upper/work overlay /newroot || fail 'mount the overlay'\n")
	fmt.Fprintf(&b, "busybox mkdir -p /newroot/lib/modules/%s\n", l.KVer)
	fmt.Fprintf(&b, "busybox mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=loose,ro modules /newroot/lib/modules/%s || fail 'mount the modules'\n", l.KVer)
	b.WriteString("for d in proc sys dev run; do busybox mkdir -p /newroot/$d; done\n")
	b.WriteString("busybox mount -t proc proc /newroot/proc\nbusybox mount -t sysfs sys /newroot/sys\n")
	b.WriteString("busybox mount -t devtmpfs dev /newroot/dev\nbusybox mkdir -p /newroot/dev/pts /newroot/dev/shm\n")
	b.WriteString("busybox mount -t devpts devpts /newroot/dev/pts\nbusybox mount -t tmpfs shm /newroot/dev/shm\n")
	// The static device nodes that load their module when opened
	// (/dev/net/tun...), as systemd-tmpfiles makes them on a real host.
	// Made here by busybox from the initramfs: done after switch_root by
	// the shared root's programs, each exec through 9p, they took 9 s.
	for _, n := range l.devNodes() {
		fmt.Fprintf(&b, "busybox mkdir -p %s; busybox mknod %s %s %d %d 2>/dev/null\n",
			quote(filepath.Dir("/newroot/dev/"+n.name)), quote("/newroot/dev/"+n.name), n.kind, n.major, n.minor)
	}
	b.WriteString("busybox hostname vmlab; busybox ip link set lo up\n")
	// /tmp stays the overlay's: the host's /tmp holds the test binaries.
	b.WriteString("busybox mount -t tmpfs -o mode=0755 run /newroot/run\n")
	b.WriteString("busybox mount -t cgroup2 cgroup2 /newroot/sys/fs/cgroup 2>/dev/null\n")
	b.WriteString("busybox cp /command.sh /newroot/run/vmlab-command.sh\n")
	b.WriteString("exec busybox switch_root /newroot /bin/sh /run/vmlab-command.sh\n")
	return b.String()
}

// commandScript runs as PID 1 of the switched root: it sets up the
// environment, runs the command, reports its status and powers off.
func commandScript(r Run, kver, marker string) string {
	var b strings.Builder
	b.WriteString("#!/bin/sh\n")
	env := []string{"PATH=" + systemPath, "HOME=/root", "TMPDIR=/tmp",
		EnvGuest + "=1", EnvKVer + "=" + kver}
	env = append(env, r.Env...)
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`).MatchString(k) {
			continue
		}
		fmt.Fprintf(&b, "export %s=%s\n", k, quote(v))
	}
	dir := r.Dir
	if dir == "" {
		dir = "/"
	}
	// What a Neutrino host loads at boot (modules-load.d): security
	// groups need br_netfilter, which nothing loads on demand.
	b.WriteString("modprobe -q br_netfilter 2>/dev/null\n")
	fmt.Fprintf(&b, "cd %s || { echo 'vmlab: no directory %s'; echo %s exit=126; echo o > /proc/sysrq-trigger; sleep 5; }\n",
		quote(dir), dir, marker)
	args := make([]string, len(r.Args))
	for i, a := range r.Args {
		args[i] = quote(a)
	}
	fmt.Fprintf(&b, "%s </dev/null 2>&1\n", strings.Join(args, " "))
	fmt.Fprintf(&b, "echo %s exit=$?\n", marker)
	b.WriteString("sync\necho o > /proc/sysrq-trigger\nsleep 10\n")
	return b.String()
}

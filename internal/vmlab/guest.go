package vmlab

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/neutrino-net/neutrino/internal/namespace"
	"github.com/neutrino-net/neutrino/internal/testenv"
)

// A guest is a small VM that behaves like a cloud user's: Debian's kernel
// and busybox from an initramfs, a virtio-net NIC on each tap device it is
// given, with the port's MAC, configured from the network (udhcpc for
// IPv4, the kernel's SLAAC for IPv6), and a command channel on which a
// test runs shell commands and reads their output and status.
//
// Unlike Lab.Run, guests take no machine-wide lock: several run at once
// (one emulated CPU and 160 MiB each by default).

// guestModules are loaded at boot, with their dependencies: the NIC, the
// command channel, and what containers inside a guest use (ipvlan,
// macvlan, 802.1q, veth).
var guestModules = []string{"virtio_pci", "virtio_net", "virtio_console", "ipvlan", "macvlan", "8021q", "veth"}

// hostShareModules mount the host's root at /host.
var hostShareModules = []string{"9pnet_virtio", "9p"}

// cmdPort is the virtio-serial port's name.
const cmdPort = "vmlab.cmd"

// NIC is one virtio-net NIC of a guest.
type NIC struct {
	// Tap is the tap device the NIC sits on, as QEMU's
	// -netdev tap,ifname=: opened when it exists (an agent's or a test's
	// persistent tap), created otherwise (it goes with the guest, as
	// QEMU's would). It is set up.
	Tap string
	// MAC is the guest's address (the port's).
	MAC net.HardwareAddr
	// Netns is the path of the network namespace holding Tap ("": this
	// process's).
	Netns string
}

// GuestOptions describe a guest.
type GuestOptions struct {
	// Name is the guest's host name (and its log prefix); "guest" if
	// empty.
	Name string
	// NICs become eth0, eth1... in this order.
	NICs []NIC
	// MemoryMiB and CPUs size the VM (160 and 1 if zero).
	MemoryMiB, CPUs int
	// NoDHCP leaves the NICs unconfigured (up, no udhcpc); IPv6 SLAAC
	// still runs (the kernel's accept_ra).
	NoDHCP bool
	// ShareHost mounts this machine's / read-only at /host (virtio-9p),
	// with the host's libraries linked so its dynamically linked programs
	// run as /host/usr/bin/...: slow to start (every read crosses 9p).
	ShareHost bool
	// Modules are loaded at boot (with their dependencies) besides the
	// NIC's and ipvlan, macvlan, 8021q and veth.
	Modules []string
	// Console, if not nil, receives the serial console (the kernel's and
	// init's messages) line by line.
	Console io.Writer
}

// Guest is a running guest VM.
type Guest struct {
	Name string
	// Ifnames are the guest's names of the NICs, in GuestOptions.NICs
	// order (eth0, eth1...).
	Ifnames []string
	// BootTime is from StartGuest's call to the command channel's first
	// message.
	BootTime time.Duration

	cmd     *exec.Cmd
	tmp     string
	conn    net.Conn
	exited  chan struct{} // QEMU exited (after cmd.Wait)
	console *ring
	qemuErr testenv.LogBuffer // QEMU's standard error, read while QEMU may write
	drained chan struct{}     // the console reader is done

	sem      chan struct{} // one command at a time
	mu       sync.Mutex
	nextID   int
	pending  map[int]chan reply
	readErr  error
	dead     chan struct{} // the channel is closed
	ready    chan string   // the guest's first message
	closeOne sync.Once
}

type reply struct {
	exit int
	out  string
}

// StartGuest boots a guest with the lab's kernel (Find).
func StartGuest(ctx context.Context, opts GuestOptions) (*Guest, error) {
	l, err := Find()
	if err != nil {
		return nil, err
	}
	return l.StartGuest(ctx, opts)
}

// StartGuest boots a guest and returns when its command channel answers.
// On error nothing is left running.
func (l *Lab) StartGuest(ctx context.Context, opts GuestOptions) (g *Guest, err error) {
	start := time.Now()
	if opts.Name == "" {
		opts.Name = "guest"
	}
	if !regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{0,62}$`).MatchString(opts.Name) {
		return nil, fmt.Errorf("vmlab: guest name %q is not a host name", opts.Name)
	}
	if opts.MemoryMiB == 0 {
		opts.MemoryMiB = 160
	}
	if opts.CPUs == 0 {
		opts.CPUs = 1
	}
	for i, n := range opts.NICs {
		if len(n.MAC) != 6 || n.MAC[0]&1 != 0 {
			return nil, fmt.Errorf("vmlab: NIC %d: %q is not a unicast Ethernet address", i, n.MAC)
		}
	}
	g = &Guest{Name: opts.Name, exited: make(chan struct{}), drained: make(chan struct{}), console: &ring{max: 64 << 10},
		sem: make(chan struct{}, 1), pending: map[int]chan reply{}, dead: make(chan struct{}), ready: make(chan string, 1)}
	if g.tmp, err = os.MkdirTemp("", "vmlab-guest-"); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			console := g.console.String()
			g.Close()
			err = fmt.Errorf("vmlab: guest %s: %w\nconsole:\n%s", opts.Name, err, console)
		}
	}()
	initrd := filepath.Join(g.tmp, "initrd.cpio")
	if err := l.guestInitramfs(initrd, opts); err != nil {
		return g, fmt.Errorf("initramfs: %w", err)
	}
	sock := filepath.Join(g.tmp, "cmd.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		return g, err
	}
	defer ln.Close()

	taps := make([]*os.File, len(opts.NICs))
	defer func() {
		for _, f := range taps {
			if f != nil {
				f.Close() // QEMU holds its own copy
			}
		}
	}()
	args := []string{"-nodefaults", "-no-user-config", "-machine", "q35", "-accel", "tcg,tb-size=64",
		"-cpu", "max", "-smp", strconv.Itoa(opts.CPUs), "-m", strconv.Itoa(opts.MemoryMiB),
		"-display", "none", "-monitor", "none", "-serial", "stdio", "-no-reboot",
		"-kernel", l.Kernel, "-initrd", initrd,
		"-append", "console=ttyS0 quiet mitigations=off loglevel=3 panic=-1 rdinit=/sbin/init",
		"-device", "virtio-serial-pci,id=vs,bus=pcie.0,addr=0x8",
		"-chardev", "socket,id=cmd,path=" + sock,
		"-device", "virtserialport,bus=vs.0,chardev=cmd,name=" + cmdPort}
	if opts.ShareHost {
		args = append(args, "-virtfs", "local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap")
	}
	for i, n := range opts.NICs {
		if taps[i], err = openTap(n.Tap, n.Netns); err != nil {
			return g, fmt.Errorf("NIC %d: %w", i, err)
		}
		// Fixed PCI slots in NICs order: the kernel probes them in bus
		// order, so NICs[i] is eth<i> (checked below).
		args = append(args, "-netdev", fmt.Sprintf("tap,id=n%d,fd=%d", i, 3+i),
			"-device", fmt.Sprintf("virtio-net-pci,netdev=n%d,mac=%s,bus=pcie.0,addr=0x%x", i, n.MAC, 0x10+i))
	}
	g.cmd = exec.Command(l.QEMU, args...)
	g.cmd.ExtraFiles = taps
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	g.cmd.Stderr = &g.qemuErr
	// The console's pipe is ours, not exec's: Wait would close it before
	// the reader has the last lines.
	out, outW, err := os.Pipe()
	if err != nil {
		return g, err
	}
	defer outW.Close()
	g.cmd.Stdout = outW
	waited, err := startPinned(g.cmd)
	outW.Close()
	if err == nil {
		go func() { <-waited; close(g.exited) }()
	}
	if err != nil {
		g.cmd = nil
		out.Close()
		close(g.drained)
		return g, fmt.Errorf("start qemu: %w", err)
	}
	go func() {
		g.readConsole(out, opts.Console)
		out.Close()
		close(g.drained)
	}()

	// QEMU connects to the channel's socket as it starts.
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	select {
	case g.conn = <-accepted:
	case <-g.exited:
		return g, fmt.Errorf("qemu exited: %s", strings.TrimSpace(g.qemuErr.String()))
	case <-ctx.Done():
		return g, fmt.Errorf("waiting for QEMU: %w", ctx.Err())
	}
	go g.readChannel()
	var hello string
	select {
	case hello = <-g.ready:
	case <-g.dead:
		return g, fmt.Errorf("the command channel closed before the guest was ready: %v %s", g.readErr, strings.TrimSpace(g.qemuErr.String()))
	case <-ctx.Done():
		return g, fmt.Errorf("waiting for the guest to boot: %w", ctx.Err())
	}
	g.BootTime = time.Since(start)
	macs := parseHello(hello)
	for i, n := range opts.NICs {
		name := fmt.Sprintf("eth%d", i)
		if got := macs[name]; got != n.MAC.String() {
			return g, fmt.Errorf("NIC %d: %s has MAC %q, want %s (guest says %q)", i, name, got, n.MAC, hello)
		}
		g.Ifnames = append(g.Ifnames, name)
	}
	return g, nil
}

// startPinned starts cmd and waits for it from a goroutine locked to its
// OS thread until cmd exits; the channel gets Wait's error. Pdeathsig
// belongs to the thread that forks, not the process, and the Go runtime
// ends a thread when a goroutine locked to it (a namespace change,
// namespace.Do) returns: an unpinned thread that had forked QEMU may be
// handed to one, and QEMU killed with it. Pinned, QEMU dies with this
// process, never before.
func startPinned(cmd *exec.Cmd) (<-chan error, error) {
	started, waited := make(chan error, 1), make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		waited <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return waited, nil
}

// parseHello reads the guest's "ready eth0=<mac> eth1=<mac>" line.
func parseHello(s string) map[string]string {
	out := map[string]string{}
	for _, f := range strings.Fields(s)[1:] {
		if k, v, ok := strings.Cut(f, "="); ok {
			out[k] = v
		}
	}
	return out
}

// tunSetIff is TUNSETIFF's ifreq: a name and flags.
type ifreqFlags struct {
	name  [unix.IFNAMSIZ]byte
	flags uint16
	_     [22]byte
}

// openTap opens (or creates) the tap device name in the namespace at
// nsPath and sets it up, as QEMU's -netdev tap,ifname= would; the file is
// what QEMU gets as -netdev tap,fd=.
func openTap(name, nsPath string) (*os.File, error) {
	if name == "" || len(name) >= unix.IFNAMSIZ {
		return nil, fmt.Errorf("tap name %q: empty or longer than %d", name, unix.IFNAMSIZ-1)
	}
	var f *os.File
	open := func() error {
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open /dev/net/tun: %w", err)
		}
		var req ifreqFlags
		copy(req.name[:], name)
		req.flags = unix.IFF_TAP | unix.IFF_NO_PI | unix.IFF_VNET_HDR
		if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TUNSETIFF, uintptr(unsafe.Pointer(&req))); errno != 0 {
			unix.Close(fd)
			return fmt.Errorf("TUNSETIFF %s: %w", name, errno)
		}
		f = os.NewFile(uintptr(fd), "/dev/net/tun:"+name)
		link, err := netlink.LinkByName(name)
		if err == nil {
			err = netlink.LinkSetUp(link)
		}
		if err != nil {
			f.Close()
			return fmt.Errorf("set %s up: %w", name, err)
		}
		return nil
	}
	if nsPath == "" {
		err := namespace.OnThread(open)
		return f, err
	}
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		return nil, fmt.Errorf("netns %s: %w", nsPath, err)
	}
	defer ns.Close()
	err = namespace.Do(ns, open)
	return f, err
}

// readConsole keeps the console's last lines and copies them to w.
func (g *Guest) readConsole(r io.Reader, w io.Writer) {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			line = strings.TrimRight(line, "\r\n") + "\n"
			g.console.Write([]byte(line))
			if w != nil {
				_, _ = io.WriteString(w, line)
			}
		}
		if err != nil {
			return
		}
	}
}

// readChannel dispatches the guest's messages: "ready ..." once, then
// "r <id> <exit> <base64 output>" replies.
func (g *Guest) readChannel() {
	br := bufio.NewReaderSize(g.conn, 64<<10)
	var err error
	for {
		var line string
		line, err = br.ReadString('\n')
		if err != nil {
			break
		}
		line = strings.TrimRight(line, "\r\n")
		if strings.HasPrefix(line, "ready") {
			select {
			case g.ready <- line:
			default:
			}
			continue
		}
		id, rep, ok := parseReply(line)
		if !ok {
			continue
		}
		g.mu.Lock()
		ch := g.pending[id]
		delete(g.pending, id)
		g.mu.Unlock()
		if ch != nil {
			ch <- rep
		}
	}
	g.mu.Lock()
	g.readErr = err
	g.mu.Unlock()
	close(g.dead)
}

// parseReply reads "r <id> <exit> <base64 output>".
func parseReply(line string) (int, reply, bool) {
	f := strings.Fields(line)
	if len(f) < 3 || len(f) > 4 || f[0] != "r" {
		return 0, reply{}, false
	}
	id, err1 := strconv.Atoi(f[1])
	exit, err2 := strconv.Atoi(f[2])
	var out []byte
	var err3 error
	if len(f) == 4 {
		out, err3 = base64.StdEncoding.DecodeString(f[3])
	}
	if err1 != nil || err2 != nil || err3 != nil {
		return 0, reply{}, false
	}
	return id, reply{exit: exit, out: string(out)}, true
}

// Run runs a shell script (busybox sh) in the guest, with standard input
// from /dev/null, and returns its output (standard output and error
// together) and exit status. Commands run one at a time, in the order
// they got the channel. When ctx has a deadline the guest kills the
// command when it passes (busybox timeout -s KILL; status 137); an error
// means the status is unknown. A process meant to outlive the command
// must redirect its output and go to the background (cmd >/tmp/x 2>&1 &).
func (g *Guest) Run(ctx context.Context, script string) (string, int, error) {
	select {
	case g.sem <- struct{}{}:
	case <-ctx.Done():
		return "", -1, fmt.Errorf("vmlab: %s: waiting for the channel: %w", g.Name, ctx.Err())
	case <-g.dead:
		return "", -1, g.deadErr()
	}
	defer func() { <-g.sem }()
	secs := 86400
	if d, ok := ctx.Deadline(); ok {
		secs = int(time.Until(d)/time.Second) + 1
	}
	g.mu.Lock()
	g.nextID++
	id := g.nextID
	ch := make(chan reply, 1)
	g.pending[id] = ch
	g.mu.Unlock()
	msg := fmt.Sprintf("c %d %d %s\n", id, secs, base64.StdEncoding.EncodeToString([]byte(script)))
	if _, err := io.WriteString(g.conn, msg); err != nil {
		return "", -1, fmt.Errorf("vmlab: %s: send: %w", g.Name, err)
	}
	select {
	case r := <-ch:
		return r.out, r.exit, nil
	case <-ctx.Done():
		g.mu.Lock()
		delete(g.pending, id)
		g.mu.Unlock()
		return "", -1, fmt.Errorf("vmlab: %s: %q: %w", g.Name, script, ctx.Err())
	case <-g.dead:
		return "", -1, g.deadErr()
	}
}

func (g *Guest) deadErr() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return fmt.Errorf("vmlab: %s: the command channel is closed (%v)", g.Name, g.readErr)
}

// MustRun is Run that wants status 0.
func (g *Guest) MustRun(ctx context.Context, script string) (string, error) {
	out, code, err := g.Run(ctx, script)
	if err == nil && code != 0 {
		err = fmt.Errorf("vmlab: %s: %q exited %d: %s", g.Name, script, code, strings.TrimSpace(out))
	}
	return out, err
}

// Lease returns what udhcpc last received on ifname (its script's
// environment: ip, mask, router, dns, domain, mtu, staticroutes,
// serverid, lease...), once the script has configured it; nil if no lease
// yet.
func (g *Guest) Lease(ctx context.Context, ifname string) (map[string]string, error) {
	out, code, err := g.Run(ctx, "cat /run/udhcpc/"+quote(ifname)+".lease 2>/dev/null")
	if err != nil || code != 0 {
		return nil, err
	}
	lease := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			lease[k] = v
		}
	}
	return lease, nil
}

// WaitIPv4 waits until udhcpc has configured ifname and returns its
// address.
func (g *Guest) WaitIPv4(ctx context.Context, ifname string) (netip.Prefix, error) {
	for {
		lease, err := g.Lease(ctx, ifname)
		if err != nil {
			return netip.Prefix{}, err
		}
		if lease != nil {
			bits, _ := strconv.Atoi(lease["mask"])
			addr, err := netip.ParseAddr(lease["ip"])
			if err != nil || !addr.Is4() {
				return netip.Prefix{}, fmt.Errorf("vmlab: %s: lease on %s has ip %q", g.Name, ifname, lease["ip"])
			}
			return netip.PrefixFrom(addr, bits), nil
		}
		if err := sleepCtx(ctx, 200*time.Millisecond); err != nil {
			return netip.Prefix{}, fmt.Errorf("vmlab: %s: no DHCP lease on %s: %w", g.Name, ifname, err)
		}
	}
}

// WaitIPv6 waits until ifname has a global IPv6 address that passed
// duplicate address detection (SLAAC, or one added by a command) and
// returns it.
func (g *Guest) WaitIPv6(ctx context.Context, ifname string) (netip.Prefix, error) {
	for {
		out, err := g.MustRun(ctx, "cat /proc/net/if_inet6")
		if err != nil {
			return netip.Prefix{}, err
		}
		if addrs := globalIPv6(out, ifname); len(addrs) > 0 {
			return addrs[0], nil
		}
		if err := sleepCtx(ctx, 200*time.Millisecond); err != nil {
			return netip.Prefix{}, fmt.Errorf("vmlab: %s: no global IPv6 address on %s: %w", g.Name, ifname, err)
		}
	}
}

// globalIPv6 reads /proc/net/if_inet6 ("<addr> <ifindex> <plen> <scope>
// <flags> <ifname>", hex) for ifname's global addresses that are neither
// tentative nor failed DAD, sorted.
func globalIPv6(ifInet6, ifname string) []netip.Prefix {
	var out []netip.Prefix
	for _, line := range strings.Split(ifInet6, "\n") {
		f := strings.Fields(line)
		if len(f) != 6 || f[5] != ifname || len(f[0]) != 32 {
			continue
		}
		plen, err1 := strconv.ParseUint(f[2], 16, 8)
		scope, err2 := strconv.ParseUint(f[3], 16, 8)
		flags, err3 := strconv.ParseUint(f[4], 16, 8)
		raw, err4 := hexBytes(f[0])
		if err1 != nil || err2 != nil || err3 != nil || err4 != nil || scope != 0 ||
			flags&(unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED) != 0 {
			continue
		}
		out = append(out, netip.PrefixFrom(netip.AddrFrom16([16]byte(raw)), int(plen)))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Addr().Less(out[j].Addr()) })
	return out
}

func hexBytes(s string) ([]byte, error) {
	out := make([]byte, len(s)/2)
	for i := range out {
		v, err := strconv.ParseUint(s[2*i:2*i+2], 16, 8)
		if err != nil {
			return nil, err
		}
		out[i] = byte(v)
	}
	return out, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// PID is QEMU's process id (0 if it did not start).
func (g *Guest) PID() int {
	if g.cmd == nil || g.cmd.Process == nil {
		return 0
	}
	return g.cmd.Process.Pid
}

// RSS is QEMU's resident memory in bytes.
func (g *Guest) RSS() (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", g.PID()))
	if err != nil {
		return 0, err
	}
	m := regexp.MustCompile(`(?m)^VmRSS:\s+(\d+) kB`).FindSubmatch(data)
	if m == nil {
		return 0, errors.New("no VmRSS")
	}
	kb, err := strconv.ParseInt(string(m[1]), 10, 64)
	return kb << 10, err
}

// Console returns the console's last 64 KiB.
func (g *Guest) Console() string { return g.console.String() }

// Close kills QEMU (its process group), waits for it and removes the
// guest's files. Taps the guest created go with it; others stay. It is
// safe to call more than once and on a failed start.
func (g *Guest) Close() error {
	g.closeOne.Do(func() {
		if g.cmd != nil && g.cmd.Process != nil {
			_ = syscall.Kill(-g.cmd.Process.Pid, syscall.SIGKILL)
			<-g.exited
		}
		if g.conn != nil {
			g.conn.Close()
		}
		<-g.drained
		if g.tmp != "" {
			_ = os.RemoveAll(g.tmp)
		}
	})
	return nil
}

// ring keeps the last max bytes written.
type ring struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (r *ring) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf = append(r.buf, p...)
	if over := len(r.buf) - r.max; over > 0 {
		r.buf = append(r.buf[:0], r.buf[over:]...)
	}
	return len(p), nil
}

func (r *ring) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return string(r.buf)
}

// moduleOrder returns names and their dependencies (from modules.dep) in
// an order insmod can load them: every module after its dependencies.
func moduleOrder(modulesDep string, names []string) ([]string, error) {
	deps := map[string][]string{}
	for _, line := range strings.Split(modulesDep, "\n") {
		file, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		var ds []string
		for _, d := range strings.Fields(rest) {
			ds = append(ds, moduleName(d))
		}
		deps[moduleName(file)] = ds
	}
	var out []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(string) error
	visit = func(m string) error {
		switch state[m] {
		case 1:
			return fmt.Errorf("module dependency cycle at %s", m)
		case 2:
			return nil
		}
		ds, ok := deps[m]
		if !ok {
			return fmt.Errorf("module %s not in modules.dep", m)
		}
		state[m] = 1
		for _, d := range ds {
			if err := visit(d); err != nil {
				return err
			}
		}
		state[m] = 2
		out = append(out, m)
		return nil
	}
	for _, n := range names {
		if err := visit(n); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// moduleName is a module's name from its modules.dep path.
func moduleName(path string) string {
	base := filepath.Base(path)
	for _, ext := range []string{".ko.xz", ".ko.zst", ".ko.gz", ".ko"} {
		if strings.HasSuffix(base, ext) {
			return strings.TrimSuffix(base, ext)
		}
	}
	return base
}

// guestInitramfs writes a guest's whole root file system: busybox and its
// applet links, the modules, busybox init's inittab, the boot script, the
// command server and udhcpc's script.
func (l *Lab) guestInitramfs(path string, opts GuestOptions) error {
	dep, err := os.ReadFile(filepath.Join(l.Modules, "modules.dep"))
	if err != nil {
		return err
	}
	want := append(append([]string{}, guestModules...), opts.Modules...)
	if opts.ShareHost {
		want = append(want, hostShareModules...)
	}
	mods, err := moduleOrder(string(dep), want)
	if err != nil {
		return err
	}
	applets, err := exec.Command(l.Busybox, "--list-full").Output()
	if err != nil {
		return fmt.Errorf("%s --list-full: %w", l.Busybox, err)
	}
	bb, err := os.ReadFile(l.Busybox)
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	c := &cpioWriter{w: bw}
	for _, d := range []string{"bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "etc/init.d", "dev", "proc", "sys",
		"run", "tmp", "root", "host", "lib", "lib/vmlab"} {
		c.Dir(d)
	}
	c.File("bin/busybox", 0o755, bb)
	for _, a := range strings.Fields(string(applets)) {
		if a == "bin/busybox" || strings.Contains(a, "..") {
			continue
		}
		c.Symlink(a, "/bin/busybox")
	}
	if opts.ShareHost {
		// The host's dynamically linked programs find their loader and
		// libraries (Debian's merged /usr) through these.
		c.Symlink("lib64", "/host/usr/lib64")
		c.Symlink("lib/x86_64-linux-gnu", "/host/usr/lib/x86_64-linux-gnu")
		c.Dir("usr/lib")
		c.Symlink("usr/lib/x86_64-linux-gnu", "/host/usr/lib/x86_64-linux-gnu")
		c.Symlink("usr/lib64", "/host/usr/lib64")
	}
	for _, m := range mods {
		data, err := l.module(m)
		if err != nil {
			return err
		}
		c.File("lib/vmlab/"+m+".ko", 0o644, data)
	}
	c.File("etc/inittab", 0o644, []byte("::sysinit:/etc/init.d/rcS\n::respawn:/sbin/vmlab-cmd\n"))
	c.File("etc/init.d/rcS", 0o755, []byte(guestRCS(opts, mods)))
	c.File("sbin/vmlab-cmd", 0o755, []byte(guestCmdServer))
	c.File("etc/udhcpc.sh", 0o755, []byte(udhcpcScript))
	c.File("etc/hostname", 0o644, []byte(opts.Name+"\n"))
	c.File("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\n"))
	c.File("etc/group", 0o644, []byte("root:x:0:\n"))
	c.File("etc/resolv.conf", 0o644, nil)
	if err := c.Close(); err != nil {
		return err
	}
	return bw.Flush()
}

// guestRCS is busybox init's sysinit: mounts, modules, NICs up, udhcpc.
func guestRCS(opts GuestOptions, mods []string) string {
	var b strings.Builder
	b.WriteString("#!/bin/sh\n")
	b.WriteString("mount -t proc proc /proc\nmount -t sysfs sys /sys\nmount -t devtmpfs dev /dev\n")
	b.WriteString("mkdir -p /dev/pts /dev/shm\nmount -t devpts devpts /dev/pts\nmount -t tmpfs shm /dev/shm\n")
	b.WriteString("mount -t tmpfs -o mode=0755 run /run\nmount -t tmpfs -o mode=1777 tmp /tmp\n")
	b.WriteString("mkdir -p /run/vmlab /run/udhcpc /run/netns\n")
	b.WriteString("mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null\n")
	for _, m := range mods {
		fmt.Fprintf(&b, "insmod /lib/vmlab/%s.ko || echo 'vmlab-guest: insmod %s failed'\n", m, m)
	}
	fmt.Fprintf(&b, "hostname %s\nip link set lo up\n", opts.Name)
	if opts.ShareHost {
		b.WriteString("mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=loose,ro host /host || echo 'vmlab-guest: no /host'\n")
	}
	for i := range opts.NICs {
		ifname := fmt.Sprintf("eth%d", i)
		fmt.Fprintf(&b, "ip link set %s up\n", ifname)
		if !opts.NoDHCP {
			// Discover every second, five times, then pause two
			// seconds, for ever: a test's DHCP server may start late.
			fmt.Fprintf(&b, "udhcpc -f -i %[1]s -s /etc/udhcpc.sh -t 5 -T 1 -A 2 -O mtu -O staticroutes -O search -x hostname:%[2]s >/run/udhcpc/%[1]s.log 2>&1 &\n",
				ifname, opts.Name)
		}
	}
	return b.String()
}

// guestCmdServer serves the command channel: it says "ready" with the
// NICs' MACs, then runs each "c <id> <seconds> <base64 script>" and
// answers "r <id> <status> <base64 output>". Kernel messages go to the
// serial console, never here.
const guestCmdServer = `#!/bin/sh
port=
for d in /sys/class/virtio-ports/*; do
	[ "$(cat "$d/name" 2>/dev/null)" = ` + cmdPort + ` ] && port=/dev/${d##*/}
done
if [ -z "$port" ]; then
	echo "vmlab-guest: no command port" >/dev/console
	sleep 5
	exit 1
fi
exec 3<>"$port"
nics=
for n in /sys/class/net/eth*; do
	[ -e "$n" ] && nics="$nics ${n##*/}=$(cat "$n/address")"
done
echo "ready$nics" >&3
while read -r kind id secs b64 <&3; do
	[ "$kind" = c ] || continue
	echo "$b64" | base64 -d >/run/vmlab/cmd.sh
	timeout -s KILL "$secs" sh /run/vmlab/cmd.sh </dev/null >/run/vmlab/out 2>&1 3>&-
	rc=$?
	echo "r $id $rc $(base64 -w 0 /run/vmlab/out)" >&3
done
`

// udhcpcScript configures what udhcpc received: the address, MTU (option
// 26), routes (classless static routes, option 121, replace the router
// option when present, as RFC 3442 says), DNS (resolv.conf), and keeps
// the options in /run/udhcpc/<if>.lease, written last.
const udhcpcScript = `#!/bin/sh
d=/run/udhcpc
f=$d/$interface
echo "$(date +%s) $1 ${ip:-}" >>"$f.events"
routes() {
	metric=$((100 + $(cat /sys/class/net/$interface/ifindex)))
	if [ -n "$staticroutes" ]; then
		set -- $staticroutes
		while [ $# -ge 2 ]; do
			if [ "$2" = 0.0.0.0 ]; then
				ip route replace "$1" dev "$interface" metric $metric
			else
				ip route replace "$1" via "$2" dev "$interface" metric $metric
			fi
			shift 2
		done
	elif [ -n "$router" ]; then
		set -- $router
		ip route replace default via "$1" dev "$interface" metric $metric
	fi
}
case "$1" in
deconfig)
	ip -4 addr flush dev "$interface"
	ip link set "$interface" up
	rm -f "$f.lease" "$f.dns"
	cat $d/*.dns >/etc/resolv.conf 2>/dev/null
	;;
bound|renew)
	[ -n "$mask" ] || mask=$(ipcalc -p "$ip" "$subnet" | sed 's/^PREFIX=//')
	if [ "$1" = bound ]; then
		ip -4 addr flush dev "$interface"
	fi
	ip addr replace "$ip/$mask" ${broadcast:+broadcast $broadcast} dev "$interface"
	[ -n "$mtu" ] && ip link set dev "$interface" mtu "$mtu"
	routes
	{
		[ -n "$search" ] && echo "search $search"
		[ -z "$search" ] && [ -n "$domain" ] && echo "search $domain"
		for s in $dns; do echo "nameserver $s"; done
	} >"$f.dns"
	cat $d/*.dns >/etc/resolv.conf 2>/dev/null
	env | grep -v -e '^PWD=' -e '^SHLVL=' -e '^PATH=' -e '^HOME=' -e '^_=' | sort >"$f.lease.new"
	echo "mask=$mask" >>"$f.lease.new"
	mv "$f.lease.new" "$f.lease"
	;;
esac
exit 0
`

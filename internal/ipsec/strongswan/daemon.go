package strongswan

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/neutrino-net/neutrino/internal/namespace"
	"github.com/strongswan/govici/vici"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// DefaultCharon is where Debian installs the charon daemon.
const DefaultCharon = "/usr/lib/ipsec/charon"

// Files of one router's charon, all in DaemonOptions.Dir.
const (
	ConfFile   = "strongswan.conf"
	SocketFile = "charon.vici"
	PidFile    = "charon.pid"
	LogFile    = "charon.log"
)

// Plugins is the explicit plugin list a charon loads for a data plane
// (architecture §6): no modular loading, so a package that drops a plugin
// in plugins/ cannot change what runs. kdf provides IKE key derivation
// (prf+) and must be listed explicitly. For DataPlaneLibipsec,
// kernel-libipsec (before kernel-netlink, whose IPsec part it replaces)
// gives userspace ESP over the TUN device ipsec0.
func Plugins(plane string) []string {
	p := []string{"random", "nonce", "openssl", "aes", "sha1", "sha2", "hmac", "gmp", "xcbc",
		"pem", "pkcs1", "x509", "revocation", "constraints", "pubkey", "kdf"}
	if plane == DataPlaneLibipsec {
		p = append(p, "kernel-libipsec")
	}
	return append(p, "kernel-netlink", "socket-default", "vici", "updown")
}

// Errors of StartDaemon and Adopt.
var (
	// ErrRunning: StartDaemon found a live charon for this Dir; Adopt it.
	ErrRunning = errors.New("charon already running for this router")
	// ErrNotRunning: Adopt found no live charon for this Dir; start one.
	ErrNotRunning = errors.New("no charon running for this router")
)

// Timeouts; each wait is also bounded by the caller's context.
var (
	StartTimeout = 15 * time.Second // start until VICI answers
	StopGrace    = 5 * time.Second  // SIGTERM until SIGKILL
	killTimeout  = 5 * time.Second  // SIGKILL until gone
	pollInterval = 20 * time.Millisecond
)

// DaemonOptions say where one router's charon lives.
type DaemonOptions struct {
	// Dir is the router's state dir: strongswan.conf, charon.vici,
	// charon.pid and charon.log live here. charon sees it as its /run.
	Dir string
	// Netns is the path of the router's named network namespace file.
	Netns string
	// DataPlane is DataPlaneXFRM or DataPlaneLibipsec (the default).
	DataPlane string
	// Charon is the daemon binary; default DefaultCharon.
	Charon string
	// Logger; default slog.Default().
	Logger *slog.Logger
}

// Daemon is one router's charon: a process in the router's network
// namespace and in a private mount namespace of its own, and a VICI
// session to it.
type Daemon struct {
	opts  DaemonOptions
	log   *slog.Logger
	pid   int
	start uint64 // process start time (/proc/<pid>/stat), guards pid reuse

	proc *os.Process   // set when we started it (our child)
	done chan struct{} // closed when our child has exited and been reaped

	mu      sync.Mutex
	sess    *vici.Session
	client  *Client
	stopped bool
}

func (o DaemonOptions) withDefaults() (DaemonOptions, error) {
	if o.Dir == "" || o.Netns == "" {
		return o, errors.New("strongswan: DaemonOptions need Dir and Netns")
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return o, err
	}
	o.Dir = dir
	if o.Charon == "" {
		o.Charon = DefaultCharon
	}
	switch o.DataPlane {
	case "":
		o.DataPlane = DataPlaneLibipsec
	case DataPlaneXFRM, DataPlaneLibipsec:
	default:
		return o, fmt.Errorf("strongswan: unknown data plane %q", o.DataPlane)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o, nil
}

func (o DaemonOptions) path(name string) string { return filepath.Join(o.Dir, name) }

// runDir is the directory charon's hard-coded pid file /var/run/charon.pid
// really lands in (on Debian /var/run is a symlink to /run).
func runDir() (string, error) {
	d, err := filepath.EvalSymlinks("/var/run")
	if err != nil {
		return "", fmt.Errorf("resolve /var/run: %w", err)
	}
	return d, nil
}

// Conf renders strongswan.conf. inDir is where the state dir is seen from
// inside charon's mount namespace (its run dir), so every path is valid
// there wherever Dir is on the host. With kernel-libipsec, routes to the
// peers' networks in charon's own table (220) of the router's namespace
// send traffic into ipsec0. With the kernel's XFRM, policies alone select
// the traffic and charon installs no routes: its route to a peer network
// would send whatever no policy covers (a subnet just taken out of an
// endpoint group) straight to the peer's gateway in clear, where it
// belongs on the router's default route like any other traffic. The log shows
// IKE and configuration at level 1; "log" events over VICI carry the
// negotiation failures the driver turns into status reasons.
func Conf(inDir, plane string) string {
	return fmt.Sprintf(`# Written by neutrino; charon sees the router's state dir as %[1]s.
charon {
  load_modular = no
  load = %[2]s
  install_routes = %[5]s
  retransmit_timeout = 1.0
  retransmit_tries = 5
  plugins {
    vici {
      socket = unix://%[1]s/%[3]s
    }
  }
  filelog {
    log {
      path = %[1]s/%[4]s
      time_format = %%F %%T
      flush_line = yes
      ike_name = yes
      default = 1
    }
  }
  syslog {
    daemon {
      default = -1
    }
  }
}
`, inDir, strings.Join(Plugins(plane), " "), SocketFile, LogFile, map[bool]string{true: "no", false: "yes"}[plane == DataPlaneXFRM])
}

// StartDaemon starts the router's charon and returns once its VICI socket
// answers "version". It refuses (ErrRunning) when a charon for Dir is
// already alive: Adopt that one instead. Stale files of a dead one are
// removed.
//
// The process is forked from a throw-away OS thread that has joined the
// router's network namespace and unshared a mount namespace in which all
// mounts are slaves of the host's (so the agent's later unmounts, e.g. of
// deleted router namespaces, still reach it, while nothing mounted here
// leaks out) and Dir is bind-mounted on the run dir. charon's hard-coded
// /var/run/charon.pid therefore is Dir/charon.pid, and no two routers'
// daemons can see each other's pid file, socket or config.
func StartDaemon(ctx context.Context, opts DaemonOptions) (*Daemon, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(opts.Charon); err != nil {
		return nil, fmt.Errorf("strongswan: charon: %w", err)
	}
	run, err := runDir()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, err
	}
	if pid, ok := livePid(opts); ok {
		return nil, fmt.Errorf("%w (pid %d, dir %s)", ErrRunning, pid, opts.Dir)
	}
	removeFiles(opts, PidFile, SocketFile)
	if err := writeFileAtomic(opts.path(ConfFile), []byte(Conf(run, opts.DataPlane)), 0o600); err != nil {
		return nil, err
	}

	ns, err := netns.GetFromPath(opts.Netns)
	if err != nil {
		return nil, fmt.Errorf("strongswan: open netns %s: %w", opts.Netns, err)
	}
	defer ns.Close()

	logf, err := os.OpenFile(opts.path(LogFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()

	cmd := exec.Command(opts.Charon)
	cmd.Env = []string{
		"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
		"STRONGSWAN_CONF=" + filepath.Join(run, ConfFile),
	}
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = logf, logf
	// Own session: signals to the agent's process group do not reach it,
	// and it outlives an agent restart. No Pdeathsig: it is tied to the
	// forking thread, which exits right after the fork.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}

	begin := time.Now()
	err = namespace.Do(ns, func() error {
		// Thread-local from here on (unshare(CLONE_NEWNS) also unshares
		// CLONE_FS); namespace.Do throws the thread away afterwards.
		if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
			return fmt.Errorf("unshare mount namespace: %w", err)
		}
		if err := unix.Mount("", "/", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("make mounts slaves: %w", err)
		}
		if err := unix.Mount(opts.Dir, run, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind %s on %s: %w", opts.Dir, run, err)
		}
		return cmd.Start()
	})
	if err != nil {
		return nil, fmt.Errorf("strongswan: start charon in %s: %w", opts.Netns, err)
	}
	d := &Daemon{opts: opts, log: opts.Logger, pid: cmd.Process.Pid, proc: cmd.Process, done: make(chan struct{})}
	d.start, _ = startTime(d.pid)
	go func() { cmd.Wait(); close(d.done) }()

	if err := d.waitReady(ctx); err != nil {
		d.kill()
		removeFiles(opts, PidFile, SocketFile, ConfFile)
		return nil, fmt.Errorf("strongswan: charon (pid %d) not ready: %w%s", d.pid, err, logTail(opts))
	}
	d.log.Info("charon started", "dir", opts.Dir, "netns", opts.Netns, "pid", d.pid,
		"ready_after", time.Since(begin).Round(time.Millisecond))
	return d, nil
}

// waitReady waits until VICI answers "version" and charon has written its
// pid file with our child's pid.
func (d *Daemon) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, StartTimeout)
	defer cancel()
	var last error
	for {
		if !d.Alive() {
			return errors.New("charon exited")
		}
		if d.sess == nil {
			d.sess, last = dial(ctx, d.opts)
		}
		if d.sess != nil {
			pid, err := readPid(d.opts)
			switch {
			case err != nil:
				last = err
			case pid != d.pid:
				return fmt.Errorf("pid file says %d, started %d", pid, d.pid)
			default:
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), last)
		case <-d.done:
		case <-time.After(pollInterval):
		}
	}
}

// dial connects to the VICI socket and checks that it answers "version".
func dial(ctx context.Context, opts DaemonOptions) (*vici.Session, error) {
	s, err := newGatedSession(opts.path(SocketFile))
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := s.Call(cctx, "version", nil); err != nil {
		s.Close()
		return nil, fmt.Errorf("vici version: %w", err)
	}
	return s, nil
}

// Adopt reconnects to the charon already running for Dir (after an agent
// restart) without disturbing it: the pid file must name a live charon in
// the router's network namespace, and VICI must answer. ErrNotRunning when
// there is none; the caller then starts one.
func Adopt(ctx context.Context, opts DaemonOptions) (*Daemon, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	pid, ok := livePid(opts)
	if !ok {
		return nil, fmt.Errorf("%w (dir %s)", ErrNotRunning, opts.Dir)
	}
	if err := sameNetns(pid, opts.Netns); err != nil {
		return nil, fmt.Errorf("strongswan: adopt pid %d: %w", pid, err)
	}
	d := &Daemon{opts: opts, log: opts.Logger, pid: pid}
	d.start, err = startTime(pid)
	if err != nil {
		return nil, fmt.Errorf("%w (pid %d gone)", ErrNotRunning, pid)
	}
	// Bounded retry: a charon that is itself just starting may not listen yet.
	ctx, cancel := context.WithTimeout(ctx, StartTimeout)
	defer cancel()
	for {
		d.sess, err = dial(ctx, opts)
		if err == nil {
			break
		}
		if !d.Alive() {
			return nil, fmt.Errorf("%w (pid %d exited)", ErrNotRunning, pid)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("strongswan: adopt pid %d: vici: %w", pid, err)
		case <-time.After(pollInterval):
		}
	}
	d.log.Info("charon adopted", "dir", opts.Dir, "pid", pid)
	return d, nil
}

// Session is the VICI session to this charon (nil after Stop or Close).
// Callers that share it use Client instead.
func (d *Daemon) Session() *vici.Session {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.sess
}

// Client is the session with its commands serialised (nil after Stop or
// Close).
func (d *Daemon) Client() *Client {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.sess == nil {
		return nil
	}
	if d.client == nil || d.client.s != d.sess {
		d.client = &Client{s: d.sess}
	}
	return d.client
}

// Pid is charon's process id (in the agent's pid namespace).
func (d *Daemon) Pid() int { return d.pid }

// Dir is the router's state dir.
func (d *Daemon) Dir() string { return d.opts.Dir }

// Alive reports whether this charon process still runs. A supervisor polls
// it (or VICI errors) to notice a crash and start a new daemon.
func (d *Daemon) Alive() bool {
	if d.done != nil {
		select {
		case <-d.done:
			return false
		default:
			return true
		}
	}
	st, err := startTime(d.pid) // fails for gone processes and zombies
	return err == nil && st == d.start
}

// Close drops the VICI session and leaves charon running (agent shutdown).
func (d *Daemon) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.sess == nil {
		return nil
	}
	err := d.sess.Close()
	d.sess = nil
	return err
}

// Stop terminates charon: SIGTERM, SIGKILL after StopGrace (or when ctx
// ends), then removes socket, pid file and config; the log stays. Calling
// it again is harmless.
func (d *Daemon) Stop(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped {
		return nil
	}
	if d.sess != nil {
		d.sess.Close()
		d.sess = nil
	}
	var err error
	if d.Alive() {
		d.signal(unix.SIGTERM)
		gctx, cancel := context.WithTimeout(ctx, StopGrace)
		graceful := d.waitGone(gctx)
		cancel()
		if !graceful {
			d.log.Warn("charon ignored SIGTERM, killing", "pid", d.pid, "dir", d.opts.Dir)
			err = d.kill()
		}
	}
	if err != nil {
		return fmt.Errorf("strongswan: stop charon pid %d: %w", d.pid, err)
	}
	// A stale Daemon (its charon died and a supervisor started another in
	// the same Dir) must not delete its successor's files.
	if pid, ok := livePid(d.opts); ok && pid != d.pid {
		d.log.Info("charon dir taken over by a newer charon; files kept", "dir", d.opts.Dir, "pid", pid)
	} else {
		removeFiles(d.opts, PidFile, SocketFile, ConfFile)
	}
	d.stopped = true
	d.log.Info("charon stopped", "dir", d.opts.Dir, "pid", d.pid)
	return nil
}

func (d *Daemon) signal(sig unix.Signal) {
	if d.proc != nil {
		d.proc.Signal(sig) // pidfd-based: cannot hit a reused pid
		return
	}
	if st, err := startTime(d.pid); err == nil && st == d.start {
		unix.Kill(d.pid, sig)
	}
}

// kill sends SIGKILL and waits (bounded) until the process is gone.
func (d *Daemon) kill() error {
	d.signal(unix.SIGKILL)
	ctx, cancel := context.WithTimeout(context.Background(), killTimeout)
	defer cancel()
	if !d.waitGone(ctx) {
		return errors.New("still alive after SIGKILL")
	}
	return nil
}

func (d *Daemon) waitGone(ctx context.Context) bool {
	for d.Alive() {
		select {
		case <-ctx.Done():
			return !d.Alive()
		case <-d.done: // nil (blocks forever) for adopted daemons
		case <-time.After(pollInterval):
		}
	}
	return true
}

// livePid returns the pid from Dir's pid file if that process is a live
// charon (same binary, not a zombie).
func livePid(opts DaemonOptions) (int, bool) {
	pid, err := readPid(opts)
	if err != nil {
		return 0, false
	}
	if _, err := startTime(pid); err != nil {
		return 0, false
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return 0, false
	}
	exe = strings.TrimSuffix(exe, " (deleted)") // package upgraded under it
	want, err := filepath.EvalSymlinks(opts.Charon)
	if err != nil {
		want = opts.Charon
	}
	return pid, exe == want || exe == opts.Charon
}

func readPid(opts DaemonOptions) (int, error) {
	b, err := os.ReadFile(opts.path(PidFile))
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("bad pid file %q", b)
	}
	return pid, nil
}

// startTime returns the process's start time (field 22 of /proc/<pid>/stat);
// an error for gone processes and zombies.
func startTime(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("bad stat")
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state)
	if len(f) < 20 {
		return 0, errors.New("bad stat")
	}
	if f[0] == "Z" || f[0] == "X" {
		return 0, errors.New("zombie")
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// sameNetns checks that pid runs in the network namespace bound at path.
func sameNetns(pid int, path string) error {
	var want, got unix.Stat_t
	if err := unix.Stat(path, &want); err != nil {
		return fmt.Errorf("netns %s: %w", path, err)
	}
	if err := unix.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &got); err != nil {
		return err
	}
	if want.Dev != got.Dev || want.Ino != got.Ino {
		return fmt.Errorf("runs in another network namespace than %s", path)
	}
	return nil
}

func removeFiles(opts DaemonOptions, names ...string) {
	for _, n := range names {
		if err := os.Remove(opts.path(n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			opts.Logger.Warn("remove charon file", "path", opts.path(n), "err", err)
		}
	}
}

func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, perm); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// logTail returns the end of charon's log for error messages.
func logTail(opts DaemonOptions) string {
	b, err := os.ReadFile(opts.path(LogFile))
	if err != nil || len(b) == 0 {
		return ""
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return "\ncharon.log:\n" + string(b)
}

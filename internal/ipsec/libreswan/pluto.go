// Package libreswan runs Libreswan's pluto (Debian 12: 4.10) as a private
// daemon: one pluto per directory, with its own control socket, NSS
// database, config, secrets, ipsec.d, log and pid file, optionally in a
// network namespace, always in a private mount namespace. Nothing is
// shared with the host's own Libreswan or with another pluto. It is the
// process layer of the Libreswan device driver (issue 14) and what the
// tests use as an unmanaged peer.
//
// Libreswan is driven the way its administrator drives it: addconn reads
// a connection from ipsec.conf text, whack initiates, deletes, rereads
// secrets and reports status, each against this pluto's control socket.
//
// Debian's libreswan package conflicts with strongSwan's, so the tests use
// an unpacked copy (scripts/ci/libreswan.sh): Options.Root names the tree
// holding usr/libexec/ipsec. Where pluto or its scripts hard-code
// /usr/libexec/ipsec (the _updown script execs _updown.xfrm by that
// path), the private mount namespace shows Root's usr/libexec there.
// Every other path pluto would take from /etc, /run or /var/lib is given
// by a flag.
package libreswan

import (
	"context"
	"errors"
	"fmt"
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
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Where Debian's libreswan puts its programs, relative to Options.Root.
const (
	ExecDir = "usr/libexec/ipsec"
	SbinDir = "usr/sbin"
)

// Files and directories of one pluto, all in Options.Dir.
const (
	ConfFile    = "ipsec.conf"    // config setup; pluto --config
	SecretsFile = "ipsec.secrets" // includes secrets.d/*.secrets
	LogFile     = "pluto.log"
	NSSDir      = "nss"       // NSS database (certutil -N)
	IPsecDir    = "ipsec.d"   // pluto --ipsecdir
	RunDir      = "run"       // pluto --rundir: pluto.ctl, pluto.pid
	ConnsDir    = "conns"     // one <name>.conf per loaded connection
	SecretsDir  = "secrets.d" // one <name>.secrets per loaded connection
	CtlSocket   = RunDir + "/pluto.ctl"
	PidFile     = RunDir + "/pluto.pid"
)

// Timeouts.
var (
	StartTimeout = 45 * time.Second // start until whack answers (NSS and self-tests take seconds on a busy or emulated CPU)
	StopGrace    = 5 * time.Second  // whack --shutdown / SIGTERM until SIGKILL
	CmdTimeout   = 15 * time.Second // one whack or addconn run
	pollInterval = 20 * time.Millisecond
)

// Options say where one pluto lives.
type Options struct {
	// Dir holds everything of this pluto (see the file constants).
	// Created 0700 if missing.
	Dir string
	// Root is the tree holding usr/libexec/ipsec and usr/sbin/ipsec;
	// default "/" (an installed libreswan).
	Root string
	// Netns is the path of a named network namespace to run pluto in;
	// empty: the caller's.
	Netns string
	// Debug is pluto's plutodebug= value ("" for none), e.g. "all".
	Debug string
	// Logger; default slog.Default().
	Logger *slog.Logger
}

func (o Options) withDefaults() (Options, error) {
	if o.Dir == "" {
		return o, errors.New("libreswan: Options need Dir")
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return o, err
	}
	o.Dir = dir
	if o.Root == "" {
		o.Root = "/"
	}
	if o.Root, err = filepath.Abs(o.Root); err != nil {
		return o, err
	}
	if strings.ContainsAny(o.Debug, "\n\"") {
		return o, fmt.Errorf("libreswan: bad plutodebug %q", o.Debug)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o, nil
}

func (o Options) path(name string) string { return filepath.Join(o.Dir, name) }

// Program is the path of one of Libreswan's programs (pluto, whack,
// addconn, _updown, ...) under root.
func Program(root, name string) string { return filepath.Join(root, ExecDir, name) }

// Find checks that root holds the programs this package runs and returns
// pluto's version line ("Libreswan 4.10").
func Find(root string) (string, error) {
	for _, p := range []string{"pluto", "whack", "addconn", "_updown", "_updown.xfrm"} {
		if _, err := os.Stat(Program(root, p)); err != nil {
			return "", fmt.Errorf("libreswan: %w", err)
		}
	}
	out, err := exec.Command(Program(root, "pluto"), "--version").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("libreswan: pluto --version: %v: %s", err, out)
	}
	return strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0]), nil
}

// Conf renders the ipsec.conf pluto reads at start (config setup only;
// connections are added with addconn from their own files). Logging goes
// to the log file with times; DNSSEC is off (no resolver is involved:
// peers are addresses).
func Conf(o Options) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by neutrino for the pluto of %s.\nconfig setup\n", o.Dir)
	fmt.Fprintf(&b, "\tlogfile=%s\n\tlogappend=yes\n\tlogtime=yes\n", o.path(LogFile))
	// pluto 4.10 drops IKEv1 unless told to accept it.
	b.WriteString("\tdnssec-enable=no\n\tuniqueids=yes\n\tikev1-policy=accept\n")
	if o.Debug != "" {
		fmt.Fprintf(&b, "\tplutodebug=\"%s\"\n", o.Debug)
	}
	return b.String()
}

// Pluto is one running pluto, started by Start.
type Pluto struct {
	opts Options
	log  *slog.Logger
	pid  int
	proc *os.Process
	done chan struct{} // closed when the process has been reaped

	mu      sync.Mutex // serialises whack/addconn runs and file changes
	stopped bool
	// release ends the liveness watch of an adopted pluto (not our child).
	release chan struct{}
	relOnce sync.Once
}

// ErrNotRunning is Adopt's answer when no pluto runs for the directory.
var ErrNotRunning = errors.New("libreswan: no pluto runs for this directory")

// Adopt takes over the pluto that runs for opts.Dir (started by an
// earlier agent): its pid file names a live process called pluto and it
// answers whack on its control socket. It returns ErrNotRunning when there
// is none; a pluto that is there but does not answer is an error. The
// adopted pluto is watched by polling (it is not our child).
func Adopt(ctx context.Context, opts Options) (*Pluto, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	pid, ok := livePid(opts)
	if !ok {
		return nil, ErrNotRunning
	}
	proc, err := os.FindProcess(pid) // a pidfd: signals cannot hit a reused pid
	if err != nil {
		return nil, ErrNotRunning
	}
	p := &Pluto{opts: opts, log: opts.Logger, pid: pid, proc: proc, done: make(chan struct{}), release: make(chan struct{})}
	go p.watchAdopted()
	if _, err := p.whack(ctx, "--status"); err != nil {
		p.Release()
		return nil, fmt.Errorf("libreswan: pluto pid %d runs for %s but does not answer: %w", pid, opts.Dir, err)
	}
	p.log.Info("pluto adopted", "dir", opts.Dir, "pid", pid)
	return p, nil
}

// watchAdopted closes done when the adopted process is gone.
func (p *Pluto) watchAdopted() {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.release:
			return
		case <-t.C:
			if err := p.proc.Signal(syscall.Signal(0)); err != nil {
				close(p.done)
				return
			}
		}
	}
}

// Release stops watching an adopted pluto, leaving it running (it then
// no longer reports its death). For a started pluto it does nothing.
func (p *Pluto) Release() {
	if p.release != nil {
		p.relOnce.Do(func() { close(p.release) })
	}
}

// Start prepares Dir (config, empty secrets, NSS database) and starts
// pluto in the foreground (--nofork, so it is our child), in Netns when
// set, in a private mount namespace whose mounts are slaves of the host's.
// It returns when pluto answers whack on its control socket and lists the
// namespace's addresses as its interfaces.
func Start(ctx context.Context, opts Options) (*Pluto, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	// sun_path holds 108 bytes with its NUL: pluto cannot bind a longer
	// control socket path and would never answer.
	if n := len(opts.path(CtlSocket)); n > 107 {
		return nil, fmt.Errorf("libreswan: control socket path %s is %d bytes, longer than a unix socket allows (107)", opts.path(CtlSocket), n)
	}
	if _, err := Find(opts.Root); err != nil {
		return nil, err
	}
	for _, d := range []string{"", NSSDir, IPsecDir, RunDir, ConnsDir, SecretsDir} {
		if err := os.MkdirAll(opts.path(d), 0o700); err != nil {
			return nil, err
		}
	}
	if p, ok := livePid(opts); ok {
		return nil, fmt.Errorf("libreswan: a pluto (pid %d) already runs for %s", p, opts.Dir)
	}
	os.Remove(opts.path(PidFile))
	os.Remove(opts.path(CtlSocket))
	if err := writeFile(opts.path(ConfFile), Conf(opts)); err != nil {
		return nil, err
	}
	if err := writeFile(opts.path(SecretsFile), secretsMain(opts)); err != nil {
		return nil, err
	}
	if err := initNSS(opts.path(NSSDir)); err != nil {
		return nil, err
	}

	logf, err := os.OpenFile(opts.path(LogFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(Program(opts.Root, "pluto"),
		"--config", opts.path(ConfFile),
		"--nofork",
		"--rundir", opts.path(RunDir),
		"--secretsfile", opts.path(SecretsFile),
		"--ipsecdir", opts.path(IPsecDir),
		"--nssdir", opts.path(NSSDir),
		"--logfile", opts.path(LogFile),
		"--dumpdir", opts.path(RunDir),
	)
	cmd.Env = env(opts)
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = logf, logf
	// Own session: it outlives the caller's process group's signals.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}

	begin := time.Now()
	start := func() error {
		// namespace.OnThread throws this thread away afterwards.
		if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
			return fmt.Errorf("unshare mount namespace: %w", err)
		}
		if err := unix.Mount("", "/", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("make mounts slaves: %w", err)
		}
		if opts.Root != "/" {
			// _updown execs /usr/libexec/ipsec/_updown.<stack>.
			src := filepath.Join(opts.Root, "usr/libexec")
			if err := unix.Mount(src, "/usr/libexec", "", unix.MS_BIND, ""); err != nil {
				return fmt.Errorf("bind %s on /usr/libexec: %w", src, err)
			}
		}
		return cmd.Start()
	}
	if opts.Netns != "" {
		ns, err := netns.GetFromPath(opts.Netns)
		if err != nil {
			return nil, fmt.Errorf("libreswan: open netns %s: %w", opts.Netns, err)
		}
		defer ns.Close()
		err = namespace.Do(ns, start)
	} else {
		err = namespace.OnThread(start)
	}
	if err != nil {
		return nil, fmt.Errorf("libreswan: start pluto for %s: %w", opts.Dir, err)
	}
	p := &Pluto{opts: opts, log: opts.Logger, pid: cmd.Process.Pid, proc: cmd.Process, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	if err := p.waitReady(ctx); err != nil {
		p.kill()
		return nil, fmt.Errorf("libreswan: pluto (pid %d) not ready: %w%s", p.pid, err, p.LogTail(20))
	}
	p.log.Info("pluto started", "dir", opts.Dir, "netns", opts.Netns, "pid", p.pid,
		"ready_after", time.Since(begin).Round(time.Millisecond))
	return p, nil
}

// env is the environment of pluto and of the scripts it runs: the ipsec
// script (updown=ipsec _updown) is found on PATH and takes its
// directories from IPSEC_*.
func env(o Options) []string {
	return []string{
		"PATH=" + filepath.Join(o.Root, SbinDir) + ":/usr/sbin:/usr/bin:/sbin:/bin",
		"IPSEC_EXECDIR=/usr/libexec/ipsec",
		"IPSEC_SBINDIR=" + filepath.Join(o.Root, SbinDir),
		"IPSEC_CONF=" + o.path(ConfFile),
		"IPSEC_CONFDDIR=" + o.path(IPsecDir),
		"IPSEC_NSSDIR=" + o.path(NSSDir),
		"IPSEC_RUNDIR=" + o.path(RunDir),
	}
}

// secretsMain is ipsec.secrets: every connection's own file.
func secretsMain(o Options) string {
	return fmt.Sprintf("# Written by neutrino: one file per connection.\ninclude %s/*.secrets\n", o.path(SecretsDir))
}

// initNSS creates an empty NSS database without a password, as
// "ipsec initnss" does, unless one exists.
func initNSS(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, "cert9.db")); err == nil {
		return nil
	}
	certutil, err := exec.LookPath("certutil")
	if err != nil {
		return fmt.Errorf("libreswan: certutil (libnss3-tools) for the NSS database: %w", err)
	}
	if out, err := exec.Command(certutil, "-N", "-d", "sql:"+dir, "--empty-password").CombinedOutput(); err != nil {
		return fmt.Errorf("libreswan: certutil -N -d %s: %v: %s", dir, err, out)
	}
	return nil
}

func (p *Pluto) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, StartTimeout)
	defer cancel()
	var last error
	for {
		if !p.Alive() {
			return errors.New("pluto exited")
		}
		if _, err := os.Stat(p.opts.path(CtlSocket)); err == nil {
			var st string
			// Ready once it has found its interfaces (it listens on
			// every address, lo's at least) after opening the socket.
			if st, last = p.whack(ctx, "--status"); last == nil && !strings.Contains(st, "000 interface ") {
				last = errors.New("no interfaces listed yet")
			} else if last == nil {
				if pid, err := readPid(p.opts); err != nil || pid != p.pid {
					last = fmt.Errorf("pid file: %d, %v (started %d)", pid, err, p.pid)
				} else {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), last)
		case <-p.done:
		case <-time.After(pollInterval):
		}
	}
}

// Pid is pluto's process id.
func (p *Pluto) Pid() int { return p.pid }

// Dir is pluto's directory.
func (p *Pluto) Dir() string { return p.opts.Dir }

// LogPath is pluto's log file.
func (p *Pluto) LogPath() string { return p.opts.path(LogFile) }

// Socket is pluto's control socket.
func (p *Pluto) Socket() string { return p.opts.path(CtlSocket) }

// Alive reports whether pluto still runs.
func (p *Pluto) Alive() bool {
	select {
	case <-p.done:
		return false
	default:
	}
	if p.release != nil && p.proc.Signal(syscall.Signal(0)) != nil {
		return false // adopted and no longer watched: ask the process
	}
	return true
}

// waitGone waits until pluto has exited or d has passed; it reports
// whether it exited.
func (p *Pluto) waitGone(d time.Duration) bool {
	deadline := time.After(d)
	for p.Alive() {
		select {
		case <-p.done:
			return true
		case <-deadline:
			return false
		case <-time.After(pollInterval):
		}
	}
	return true
}

// LogTail returns the last n lines of pluto's log, prefixed for an error.
func (p *Pluto) LogTail(n int) string {
	b, err := os.ReadFile(p.opts.path(LogFile))
	if err != nil || len(b) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "\npluto.log:\n" + strings.Join(lines, "\n")
}

// logAbout returns the last n lines of the log from offset at on that
// name connection name.
func (p *Pluto) logAbout(name string, at int64, n int) string {
	b, err := os.ReadFile(p.opts.path(LogFile))
	if err != nil {
		return ""
	}
	if at <= int64(len(b)) {
		b = b[at:]
	}
	var hits []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, `"`+name+`"`) || strings.Contains(l, `"`+name+`/`) {
			hits = append(hits, l)
		}
	}
	if len(hits) > n {
		hits = hits[len(hits)-n:]
	}
	if len(hits) == 0 {
		return ""
	}
	return ": pluto.log: " + strings.Join(hits, "; ")
}

// validName: a connection name is used as a file name and a whack argument.
func validName(name string) error {
	if name == "" || len(name) > 64 || strings.Trim(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") != "" || name[0] == '.' || name[0] == '-' {
		return fmt.Errorf("libreswan: bad connection name %q", name)
	}
	return nil
}

// Load adds connection name from conf (ipsec.conf text holding "conn
// name") and its secrets (ipsec.secrets lines), replacing a connection of
// that name: the old one is deleted (its SAs go down), the secrets are
// reread and the new one is added with addconn. It does not initiate;
// a conn with auto=start is initiated by Initiate, as "ipsec auto --add"
// would leave it too.
func (p *Pluto) Load(ctx context.Context, name, conf, secrets string) error {
	if err := validName(name); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	cf := filepath.Join(p.opts.path(ConnsDir), name+".conf")
	if err := writeFile(cf, conf); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(p.opts.path(SecretsDir), name+".secrets"), secrets); err != nil {
		return err
	}
	// Deleting an unknown connection is no error worth reporting.
	p.whackLocked(ctx, "--name", name, "--delete")
	if _, err := p.whackLocked(ctx, "--rereadsecrets"); err != nil {
		return err
	}
	var logAt int64
	if fi, err := os.Stat(p.LogPath()); err == nil {
		logAt = fi.Size()
	}
	out, err := p.run(ctx, "addconn", "--config", cf, "--ctlsocket", p.Socket(), name)
	if err != nil {
		// addconn prints little; pluto logs why it refused.
		return fmt.Errorf("libreswan: addconn %s: %w%s", name, err, p.logAbout(name, logAt, 3))
	}
	if bad := addconnFailed(out); bad != "" {
		return fmt.Errorf("libreswan: addconn %s: %s", name, bad)
	}
	return nil
}

// addconnFailed finds the complaints addconn prints without failing.
func addconnFailed(out string) string {
	for _, l := range strings.Split(out, "\n") {
		low := strings.ToLower(l)
		if strings.Contains(low, "error") || strings.Contains(low, "failed") ||
			strings.Contains(low, "not found") || strings.Contains(low, "rejected") {
			return strings.TrimSpace(l)
		}
	}
	return ""
}

// Initiate starts connection name's negotiation and returns at once
// (whack --initiate --asynchronous); its outcome shows in the status and
// the log.
func (p *Pluto) Initiate(ctx context.Context, name string) error {
	if err := validName(name); err != nil {
		return err
	}
	_, err := p.whack(ctx, "--name", name, "--initiate", "--asynchronous")
	return err
}

// Delete removes connection name (its SAs go down) and its files.
func (p *Pluto) Delete(ctx context.Context, name string) error {
	if err := validName(name); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	_, err := p.whackLocked(ctx, "--name", name, "--delete")
	os.Remove(filepath.Join(p.opts.path(ConnsDir), name+".conf"))
	os.Remove(filepath.Join(p.opts.path(SecretsDir), name+".secrets"))
	if _, rerr := p.whackLocked(ctx, "--rereadsecrets"); err == nil {
		err = rerr
	}
	return err
}

// RereadSecrets makes pluto reread its secrets (whack --rereadsecrets).
func (p *Pluto) RereadSecrets(ctx context.Context) error {
	_, err := p.whack(ctx, "--rereadsecrets")
	return err
}

// Status is whack --status: connections and states, in full.
func (p *Pluto) Status(ctx context.Context) (string, error) { return p.whack(ctx, "--status") }

// TrafficStatus is whack --trafficstatus: one line per established IPsec
// SA with its byte counters.
func (p *Pluto) TrafficStatus(ctx context.Context) (string, error) {
	return p.whack(ctx, "--trafficstatus")
}

// BriefStatus is whack --briefstatus: the SA counts.
func (p *Pluto) BriefStatus(ctx context.Context) (string, error) {
	return p.whack(ctx, "--briefstatus")
}

// ShowStates is whack --showstates: one line per IKE and IPsec state.
func (p *Pluto) ShowStates(ctx context.Context) (string, error) {
	return p.whack(ctx, "--showstates")
}

// Whack runs whack with args against this pluto's control socket.
func (p *Pluto) Whack(ctx context.Context, args ...string) (string, error) {
	return p.whack(ctx, args...)
}

func (p *Pluto) whack(ctx context.Context, args ...string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.whackLocked(ctx, args...)
}

func (p *Pluto) whackLocked(ctx context.Context, args ...string) (string, error) {
	out, err := p.run(ctx, "whack", append([]string{"--ctlsocket", p.Socket()}, args...)...)
	if err != nil {
		return out, fmt.Errorf("libreswan: whack %s: %w", strings.Join(args, " "), err)
	}
	return out, nil
}

// run runs one of Libreswan's programs with pluto's environment; an exit
// status other than 0 is an error holding the output.
func (p *Pluto) run(ctx context.Context, prog string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, CmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, Program(p.opts.Root, prog), args...)
	cmd.Env = env(p.opts)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%v: %s", err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// Stop shuts pluto down (whack --shutdown, SIGKILL after StopGrace) and
// removes its socket and pid file; the rest of Dir stays. Calling it again
// is harmless.
func (p *Pluto) Stop(ctx context.Context) error {
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return nil
	}
	p.stopped = true
	p.mu.Unlock()
	if p.Alive() {
		sctx, cancel := context.WithTimeout(ctx, StopGrace)
		// whack --shutdown waits for pluto to go; a SIGTERM does the same.
		if _, err := p.run(sctx, "whack", "--ctlsocket", p.Socket(), "--shutdown"); err != nil {
			p.proc.Signal(unix.SIGTERM)
		}
		cancel()
		p.waitGone(StopGrace)
	}
	if p.Alive() {
		p.log.Warn("pluto ignored its shutdown, killing", "pid", p.pid, "dir", p.opts.Dir)
		if err := p.kill(); err != nil {
			return err
		}
	}
	p.Release()
	os.Remove(p.opts.path(PidFile))
	os.Remove(p.opts.path(CtlSocket))
	p.log.Info("pluto stopped", "dir", p.opts.Dir, "pid", p.pid)
	return nil
}

func (p *Pluto) kill() error {
	p.proc.Signal(unix.SIGKILL) // pidfd-based: cannot hit a reused pid
	if p.waitGone(StopGrace) {
		return nil
	}
	return fmt.Errorf("libreswan: pluto pid %d still alive after SIGKILL", p.pid)
}

func readPid(o Options) (int, error) {
	b, err := os.ReadFile(o.path(PidFile))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// livePid reports a running process named pluto whose pid is in Dir's
// pid file.
func livePid(o Options) (int, bool) {
	pid, err := readPid(o)
	if err != nil || pid <= 0 {
		return 0, false
	}
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return pid, err == nil && strings.TrimSpace(string(comm)) == "pluto"
}

// writeFile writes data to path (mode 0600: secrets live here) atomically.
func writeFile(path, data string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

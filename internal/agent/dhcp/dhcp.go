// Package dhcp runs the DHCP servers of the networks a host serves: one
// dnsmasq per network, in the network's qdhcp-<id> namespace, on the
// network's DHCP port. The port itself is wired by L2 like any VM port
// (its namespace is DHCPNamespace(network)); this layer makes the
// namespace before L2 wires it, runs dnsmasq once the port is in place, and
// removes both when the network no longer has DHCP here.
//
// dnsmasq is started daemonised, in its own session, so it outlives an
// agent restart; the agent adopts it from its pid file and command line.
// Changes of ports and options rewrite its hosts and options files and
// SIGHUP it; changes of subnets restart it. Other networks' servers are
// never touched.
package dhcp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/neutrino-net/neutrino/internal/agent"
	"github.com/neutrino-net/neutrino/internal/namespace"
)

// NamespaceDevicePrefix is the DHCP port's device in its namespace, as L2
// names every port's namespace end.
const NamespaceDevicePrefix = "ns-"

// Options configure the DHCP layer.
type Options struct {
	// NetnsDir is where the qdhcp- namespaces live.
	NetnsDir string
	// StateDir holds StateDir/<network id>/ for each network's dnsmasq.
	StateDir string
	// Dnsmasq is the binary; default DefaultDnsmasq.
	Dnsmasq string
	Logger  *slog.Logger
}

// Layer is an agent.L2 that adds the DHCP servers to another L2.
type Layer struct {
	agent.L2
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	applied map[string]string // network id -> what its dnsmasq runs with (args + files)
}

// Changes passes on the wrapped L2's signals (agent.L2Changes).
func (l *Layer) Changes() <-chan struct{} {
	if c, ok := l.L2.(agent.L2Changes); ok {
		return c.Changes()
	}
	return nil
}

// PortProblem passes on the wrapped L2's reasons (agent.L2Problems).
func (l *Layer) PortProblem(portID string) string {
	if p, ok := l.L2.(agent.L2Problems); ok {
		return p.PortProblem(portID)
	}
	return ""
}

// Available reports whether the dnsmasq binary is there.
func Available(bin string) error {
	if bin == "" {
		bin = DefaultDnsmasq
	}
	_, err := os.Stat(bin)
	return err
}

// Wrap returns inner with the DHCP servers added.
func Wrap(inner agent.L2, opts Options) *Layer {
	if opts.Dnsmasq == "" {
		opts.Dnsmasq = DefaultDnsmasq
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Layer{L2: inner, opts: opts, log: opts.Logger.With("component", "dhcp"), applied: map[string]string{}}
}

// Apply implements agent.L2.
func (l *Layer) Apply(ctx context.Context, networks []agentv1.Network, ports []agentv1.Port) error {
	return l.reconcile(ctx, networks, ports, false)
}

// Sweep implements agent.L2: it forgets what it remembers, adopts the
// servers that run as wanted and removes those of other networks.
func (l *Layer) Sweep(ctx context.Context, networks []agentv1.Network, ports []agentv1.Port) error {
	l.mu.Lock()
	clear(l.applied)
	l.mu.Unlock()
	return l.reconcile(ctx, networks, ports, true)
}

func (l *Layer) nsPath(networkID string) string {
	return filepath.Join(l.opts.NetnsDir, agentv1.DHCPNamespace(networkID))
}

func (l *Layer) dir(networkID string) string { return filepath.Join(l.opts.StateDir, networkID) }

func (l *Layer) reconcile(ctx context.Context, networks []agentv1.Network, ports []agentv1.Port, sweep bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	want := map[string]agentv1.Network{}
	for _, n := range networks {
		if n.DHCP != nil && n.DHCP.PortID != "" && len(n.DHCP.Subnets) > 0 {
			want[n.ID] = n
		}
	}
	var errs []error
	for id := range want {
		if err := l.ensureNamespace(id); err != nil {
			errs = append(errs, fmt.Errorf("dhcp namespace of network %s: %w", id, err))
		}
	}
	var err error
	if sweep {
		err = l.L2.Sweep(ctx, networks, ports)
	} else {
		err = l.L2.Apply(ctx, networks, ports)
	}
	errs = append(errs, err)
	for _, id := range slices.Sorted(mapsKeys(want)) {
		n := want[id]
		if !l.L2.PortReady(n.DHCP.PortID) {
			continue // wired by a later Apply; L2 reports why
		}
		if err := l.ensureServer(ctx, n); err != nil {
			errs = append(errs, fmt.Errorf("dhcp server of network %s: %w", id, err))
		}
	}
	// Remove what is not wanted: remembered, or (sweep) found on disk.
	gone := map[string]bool{}
	for id := range l.applied {
		gone[id] = true
	}
	if sweep {
		for _, id := range l.found() {
			gone[id] = true
		}
	}
	for _, id := range slices.Sorted(mapsKeys(gone)) {
		if _, ok := want[id]; ok {
			continue
		}
		if err := l.remove(id); err != nil {
			errs = append(errs, fmt.Errorf("remove dhcp server of network %s: %w", id, err))
			continue
		}
		delete(l.applied, id)
		l.log.InfoContext(ctx, "dhcp server removed", "network", id)
	}
	return errors.Join(errs...)
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// found lists the networks with a qdhcp- namespace or a state dir.
func (l *Layer) found() []string {
	var out []string
	if ents, err := os.ReadDir(l.opts.NetnsDir); err == nil {
		for _, e := range ents {
			if id, ok := strings.CutPrefix(e.Name(), agentv1.DHCPNamespacePrefix); ok {
				out = append(out, id)
			}
		}
	}
	if ents, err := os.ReadDir(l.opts.StateDir); err == nil {
		for _, e := range ents {
			if e.IsDir() {
				out = append(out, e.Name())
			}
		}
	}
	return out
}

// dhcpSysctls: the DHCP port's addresses are static, so no DAD delay (the
// server answers at once) and no autoconfiguration from router
// advertisements on the network.
var dhcpSysctls = [][2]string{
	{"net/ipv6/conf/default/accept_dad", "0"},
	{"net/ipv6/conf/all/accept_dad", "0"},
	{"net/ipv6/conf/default/accept_ra", "0"},
	{"net/ipv6/conf/all/accept_ra", "0"},
	{"net/ipv6/conf/default/autoconf", "0"},
	{"net/ipv6/conf/all/autoconf", "0"},
}

func (l *Layer) ensureNamespace(networkID string) error {
	path := l.nsPath(networkID)
	ns, err := netns.GetFromPath(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := namespace.CreateNamed(path); err != nil {
			return err
		}
		ns, err = netns.GetFromPath(path)
	}
	if err != nil {
		return err
	}
	defer ns.Close()
	return namespace.Do(ns, func() error {
		var errs []error
		for _, s := range dhcpSysctls {
			file := "/proc/sys/" + s[0]
			if b, err := os.ReadFile(file); err == nil && strings.TrimSpace(string(b)) == s[1] {
				continue
			}
			errs = append(errs, os.WriteFile(file, []byte(s[1]+"\n"), 0o644))
		}
		return errors.Join(errs...)
	})
}

// ensureServer makes the network's dnsmasq run with what n says: started
// (or adopted) when absent, restarted when its command line changes,
// SIGHUPed when only its files do.
func (l *Layer) ensureServer(ctx context.Context, n agentv1.Network) error {
	dir := l.dir(n.ID)
	device := agentv1.DeviceName(NamespaceDevicePrefix, n.DHCP.PortID)
	args := Args(dir, device, n.MTU, n.DHCP)
	hosts, opts := Hosts(n.DHCP), Opts(n.DHCP)
	sig := strings.Join(args, "\n") + "\x00" + hosts + "\x00" + opts
	pid, running := l.livePid(n.ID)
	if running && l.applied[n.ID] == sig {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	filesChanged := false
	for name, content := range map[string]string{HostsFile: hosts, OptsFile: opts} {
		changed, err := writeIfChanged(filepath.Join(dir, name), content)
		if err != nil {
			return err
		}
		filesChanged = filesChanged || changed
	}
	argsText := strings.Join(args, "\n") + "\n"
	if running {
		old, _ := os.ReadFile(filepath.Join(dir, ArgsFile))
		if string(old) == argsText {
			if filesChanged {
				if err := unix.Kill(pid, unix.SIGHUP); err != nil {
					return fmt.Errorf("reload dnsmasq (pid %d): %w", pid, err)
				}
				l.log.InfoContext(ctx, "dhcp server reloaded", "network", n.ID, "pid", pid)
			} else if l.applied[n.ID] == "" {
				l.log.InfoContext(ctx, "dhcp server adopted", "network", n.ID, "pid", pid)
			}
			l.applied[n.ID] = sig
			return nil
		}
		if err := stop(pid); err != nil {
			return err
		}
	}
	if _, err := writeIfChanged(filepath.Join(dir, ArgsFile), argsText); err != nil {
		return err
	}
	if err := l.start(n.ID, args); err != nil {
		return err
	}
	l.applied[n.ID] = sig
	return nil
}

func writeIfChanged(path, content string) (bool, error) {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, []byte(content)) {
		return false, nil
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		return false, err
	}
	return true, os.Rename(tmp, path)
}

// start runs dnsmasq in the network's namespace. dnsmasq daemonises and its
// first process exits only once the daemon has set up (or failed), so a
// zero exit means it serves.
func (l *Layer) start(networkID string, args []string) error {
	ns, err := netns.GetFromPath(l.nsPath(networkID))
	if err != nil {
		return err
	}
	defer ns.Close()
	dir := l.dir(networkID)
	os.Remove(filepath.Join(dir, PidFile))
	var out bytes.Buffer
	cmd := exec.Command(l.opts.Dnsmasq, args...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	begin := time.Now()
	if err := namespace.Do(ns, cmd.Run); err != nil {
		return fmt.Errorf("dnsmasq: %w: %s", err, strings.TrimSpace(out.String()))
	}
	pid, ok := l.livePid(networkID)
	if !ok {
		return fmt.Errorf("dnsmasq exited after starting: %s", strings.TrimSpace(out.String()))
	}
	l.log.Info("dhcp server started", "network", networkID, "pid", pid, "after", time.Since(begin).Round(time.Millisecond))
	return nil
}

// livePid returns the pid of the network's dnsmasq when its pid file names
// a live dnsmasq whose command line uses this network's state dir.
func (l *Layer) livePid(networkID string) (int, bool) {
	dir := l.dir(networkID)
	b, err := os.ReadFile(filepath.Join(dir, PidFile))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !bytes.Contains(cmdline, []byte("--pid-file="+dir+"/"+PidFile+"\x00")) {
		return 0, false
	}
	return pid, true
}

// stop ends a dnsmasq: SIGTERM, then SIGKILL after 5 s.
func stop(pid int) error {
	if err := unix.Kill(pid, unix.SIGTERM); err != nil && !errors.Is(err, unix.ESRCH) {
		return err
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if unix.Kill(pid, 0) != nil {
			return nil
		}
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && bytes.Contains(b, []byte(") Z ")) {
			return nil // a zombie of ours (tests); gone for the network's purposes
		}
	}
	if err := unix.Kill(pid, unix.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
		return err
	}
	return nil
}

// remove stops the network's dnsmasq and removes its state and namespace.
func (l *Layer) remove(networkID string) error {
	if pid, ok := l.livePid(networkID); ok {
		if err := stop(pid); err != nil {
			return err
		}
	}
	if err := os.RemoveAll(l.dir(networkID)); err != nil {
		return err
	}
	return namespace.RemoveNamed(l.nsPath(networkID))
}

// Running returns the pid of the network's dnsmasq (tests and metrics).
func (l *Layer) Running(networkID string) (int, bool) { return l.livePid(networkID) }

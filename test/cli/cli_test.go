// Package cli_test is a smoke test that drives the real `openstack` CLI
// (python3-openstackclient) against a real `neutrino up` server without
// Keystone (OS_AUTH_TYPE=none). See docs/dev/openstack-cli-wire.md for what
// the CLI sends for each command.
//
// Without `openstack` on PATH the tests fail under CI=true and skip
// elsewhere (internal/testenv).
package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/neutrino-net/neutrino/internal/testenv"
)

const (
	// cliTimeout bounds every single `openstack` invocation.
	cliTimeout = 60 * time.Second
	// readyTimeout bounds the wait for the server to answer GET /.
	readyTimeout = 30 * time.Second
)

var (
	// openstackPath is the CLI found on PATH ("" when missing).
	openstackPath string
	// serverBin is the neutrino binary TestMain built ("" when not built).
	serverBin string
)

// TestMain builds the server once, but only when the CLI is there to use it.
func TestMain(m *testing.M) {
	openstackPath, _ = exec.LookPath("openstack")
	if openstackPath == "" {
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "neutrino-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "cli test:", err)
		os.Exit(1)
	}
	serverBin = filepath.Join(dir, "neutrino")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	build := exec.CommandContext(ctx, "go", "build", "-o", serverBin, "github.com/neutrino-net/neutrino/cmd/neutrino")
	out, err := build.CombinedOutput()
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "cli test: %s: %v\n%s", strings.Join(build.Args, " "), err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	if os.Getenv("NEUTRINO_CLI_EXEC") == "" {
		stop, err := startZygote(dir)
		if err != nil {
			fmt.Fprintln(os.Stderr, "cli test:", err)
			os.RemoveAll(dir)
			os.Exit(1)
		}
		defer stop()
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// zygoteSock is the socket of test/cli/oszygote.py ("" when every call
// runs the openstack script itself, NEUTRINO_CLI_EXEC=1).
var zygoteSock string

// startZygote starts oszygote.py with the openstack script's own Python:
// the CLI imported once, each call a child forked from it that runs the
// script's main() (about 0.3 s a call instead of 2).
func startZygote(dir string) (func(), error) {
	script, err := os.ReadFile(openstackPath)
	if err != nil {
		return nil, err
	}
	first, _, _ := strings.Cut(string(script), "\n")
	python := strings.TrimSpace(strings.TrimPrefix(first, "#!"))
	if !strings.HasPrefix(first, "#!") || python == "" || strings.Contains(python, " ") {
		return nil, fmt.Errorf("%s: no interpreter line to run the CLI's Python with: %q", openstackPath, first)
	}
	sock := filepath.Join(dir, "zygote.sock")
	cmd := exec.Command(python, "oszygote.py", sock)
	cmd.Stderr = os.Stderr
	setProcAttr(cmd)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		ready <- line
	}()
	select {
	case line := <-ready:
		if strings.TrimSpace(line) != "ready" {
			cmd.Process.Kill()
			cmd.Wait()
			return nil, fmt.Errorf("oszygote.py did not start (%q)", line)
		}
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		cmd.Wait()
		return nil, errors.New("oszygote.py not ready within a minute")
	}
	zygoteSock = sock
	return func() { cmd.Process.Kill(); cmd.Wait() }, nil
}

// newCLI starts a server and returns a CLI pointed at it that logs its
// calls at the end; without the CLI the test fails under CI and skips
// elsewhere (testenv).
func newCLI(t *testing.T) (*cli, *server) {
	t.Helper()
	return newCLIOn(t, "")
}

// newCLIOn is newCLI with the server on the database dsn ("": SQLite in
// its data directory).
func newCLIOn(t *testing.T, dsn string) (*cli, *server) {
	t.Helper()
	testenv.RequireCommand(t, "openstack", "python3-openstackclient python3-neutronclient")
	start := time.Now()
	srv := startServer(t, dsn)
	c := &cli{t: t, env: cliEnv(srv.url)}
	t.Cleanup(c.dumpOnFailure)
	t.Cleanup(func() { t.Logf("%d CLI calls in %s", len(c.log), time.Since(start).Round(time.Millisecond)) })
	return c, srv
}

func TestOpenstackCLI(t *testing.T) {
	t.Parallel()
	c, _ := newCLI(t)

	// The CLI spends 1-2 s starting Python for every call, so commands that
	// do not depend on each other run concurrently; each step waits for the
	// previous one.
	var net1, public, r1 map[string]any
	rs := c.parallel(
		js("network", "create", "net1"),
		js("network", "create", "--external", "public"), // noauth is admin
		js("router", "create", "r1"),
	)
	c.decode(rs[0], &net1)
	c.decode(rs[1], &public)
	c.decode(rs[2], &r1)
	net1ID, publicID, r1ID := str(t, net1, "id"), str(t, public, "id"), str(t, r1, "id")
	wantFields(t, "network create net1", net1, map[string]any{
		"name": "net1", "admin_state_up": true, "router:external": false, "shared": false, "status": "ACTIVE",
	})
	wantFields(t, "network create --external public", public, map[string]any{"name": "public", "router:external": true})
	wantFields(t, "router create r1", r1, map[string]any{"name": "r1", "admin_state_up": true, "external_gateway_info": nil})

	var shown, sub1, pubSub map[string]any
	rs = c.parallel(
		js("network", "show", "net1"), // by name: GET by id 404s, then ?name=
		js("subnet", "create", "--network", "net1", "--subnet-range", "10.0.0.0/24", "sub1"),
		js("subnet", "create", "--network", "public", "--subnet-range", "203.0.113.0/24", "public-sub"),
	)
	c.decode(rs[0], &shown)
	c.decode(rs[1], &sub1)
	c.decode(rs[2], &pubSub)
	wantFields(t, "network show net1", shown, map[string]any{
		"id": net1ID, "name": "net1", "admin_state_up": true, "router:external": false, "status": "ACTIVE",
	})
	if p, _ := shown["project_id"].(string); p == "" {
		t.Errorf("network show net1: project_id = %#v, want a non-empty string", shown["project_id"])
	}
	sub1ID, pubSubID := str(t, sub1, "id"), str(t, pubSub, "id")
	wantFields(t, "subnet create sub1", sub1, map[string]any{
		"name": "sub1", "network_id": net1ID, "cidr": "10.0.0.0/24", "ip_version": float64(4),
		"gateway_ip": "10.0.0.1", "enable_dhcp": true,
	})
	wantPools(t, "subnet create sub1", sub1, "10.0.0.2", "10.0.0.254")
	wantFields(t, "subnet create public-sub", pubSub, map[string]any{
		"name": "public-sub", "network_id": publicID, "cidr": "203.0.113.0/24", "gateway_ip": "203.0.113.1",
	})
	wantPools(t, "subnet create public-sub", pubSub, "203.0.113.2", "203.0.113.254")

	var p1 map[string]any
	rs = c.parallel(
		[]string{"router", "set", "--external-gateway", "public", "r1"},
		js("port", "create", "--network", "net1", "p1"),
	)
	c.check(rs[0])
	c.decode(rs[1], &p1)
	p1ID := str(t, p1, "id")

	c.check(c.run("router", "add", "subnet", "r1", "sub1"))

	var rports, ports, nets, sgs []map[string]any
	var router, port map[string]any
	rs = c.parallel(
		js("router", "show", "r1"),
		js("port", "list", "--device-id", r1ID),
		js("port", "show", "p1"),
		js("port", "list"),
		js("network", "list"),
		js("security", "group", "list"),
	)
	c.decode(rs[0], &router)
	c.decode(rs[1], &rports)
	c.decode(rs[2], &port)
	c.decode(rs[3], &ports)
	c.decode(rs[4], &nets)
	c.decode(rs[5], &sgs)

	gw, ok := router["external_gateway_info"].(map[string]any)
	if !ok {
		t.Fatalf("router show r1 after set --external-gateway: external_gateway_info = %#v, want an object", router["external_gateway_info"])
	}
	if gw["network_id"] != publicID {
		t.Errorf("router show r1: external_gateway_info.network_id = %v, want %s (public)", gw["network_id"], publicID)
	}
	gwIPs := fixedIPs(gw["external_fixed_ips"])
	if len(gwIPs) != 1 || !in(gwIPs[0].ip, "203.0.113.0/24") || gwIPs[0].subnet != pubSubID {
		t.Errorf("router show r1: external_fixed_ips = %#v, want one IP from 203.0.113.0/24 on public-sub %s", gw["external_fixed_ips"], pubSubID)
	}
	// router show builds interfaces_info from GET /v2.0/ports?device_id=<router>.
	if ifs := fixedIPs(router["interfaces_info"]); !slices.Contains(ifs, fixedIP{"10.0.0.1", sub1ID}) {
		t.Errorf("router show r1 after add subnet: interfaces_info = %#v, want 10.0.0.1 on sub1 %s", router["interfaces_info"], sub1ID)
	}
	if !slices.ContainsFunc(rports, func(p map[string]any) bool {
		return slices.Contains(fixedIPs(p["Fixed IP Addresses"]), fixedIP{"10.0.0.1", sub1ID})
	}) {
		t.Errorf("port list --device-id %s: no port with 10.0.0.1 on sub1 %s: %v", r1ID, sub1ID, rports)
	}
	if !slices.ContainsFunc(rports, func(p map[string]any) bool {
		ips := fixedIPs(p["Fixed IP Addresses"])
		return len(gwIPs) == 1 && slices.Contains(ips, gwIPs[0])
	}) {
		t.Errorf("port list --device-id %s: no gateway port with %v: %v", r1ID, gwIPs, rports)
	}

	wantFields(t, "port show p1", port, map[string]any{"id": p1ID, "name": "p1", "network_id": net1ID, "admin_state_up": true})
	if mac, _ := port["mac_address"].(string); !regexp.MustCompile(`^([0-9a-f]{2}:){5}[0-9a-f]{2}$`).MatchString(mac) {
		t.Errorf("port show p1: mac_address = %q", mac)
	}
	p1IPs := fixedIPs(port["fixed_ips"])
	if len(p1IPs) != 1 || !in(p1IPs[0].ip, "10.0.0.0/24") || p1IPs[0].ip == "10.0.0.1" || p1IPs[0].subnet != sub1ID {
		t.Errorf("port show p1: fixed_ips = %#v, want one IP from 10.0.0.0/24 (not the gateway) on sub1 %s", port["fixed_ips"], sub1ID)
	}

	if !slices.ContainsFunc(ports, func(p map[string]any) bool { return p["ID"] == p1ID && p["Name"] == "p1" }) {
		t.Errorf("port list: p1 (%s) missing: %v", p1ID, ports)
	}
	for name, id := range map[string]string{"net1": net1ID, "public": publicID} {
		if !slices.ContainsFunc(nets, func(n map[string]any) bool { return n["ID"] == id && n["Name"] == name }) {
			t.Errorf("network list: %s (%s) missing: %v", name, id, nets)
		}
	}
	if !slices.ContainsFunc(sgs, func(g map[string]any) bool { return g["Name"] == "default" }) {
		t.Errorf("security group list: no group named default: %v", sgs)
	}

	// Deleting a network that still has ports is a conflict. (That net1
	// survived is shown by its successful delete at the end.)
	r := c.fails("network", "delete", "net1")
	if out := r.stdout + r.stderr; !strings.Contains(out, "409") && !strings.Contains(out, "Conflict") {
		t.Errorf("%s: output does not mention the conflict (409/Conflict):\n%s", r.cmd(), r)
	}

	// Cleanup, in order; each resource must be gone afterwards (checked
	// alongside the next step).
	c.check(c.run("port", "delete", "p1"))
	rs = c.parallel(
		[]string{"port", "show", "p1"},
		[]string{"router", "remove", "subnet", "r1", "sub1"},
	)
	c.gone(rs[0], "Port", "p1")
	c.check(rs[1])
	c.check(c.run("router", "unset", "--external-gateway", "r1"))
	c.decode(c.run(js("router", "show", "r1")...), &router)
	if router["external_gateway_info"] != nil {
		t.Errorf("router show r1 after unset --external-gateway: external_gateway_info = %#v, want null", router["external_gateway_info"])
	}
	if ii, ok := router["interfaces_info"].([]any); !ok || len(ii) != 0 {
		t.Errorf("router show r1 after remove subnet: interfaces_info = %#v, want []", router["interfaces_info"])
	}
	c.check(c.run("router", "delete", "r1"))
	rs = c.parallel(
		[]string{"router", "show", "r1"},
		[]string{"subnet", "delete", "sub1"},
	)
	c.gone(rs[0], "Router", "r1")
	c.check(rs[1])
	rs = c.parallel(
		[]string{"subnet", "show", "sub1"},
		[]string{"network", "delete", "net1"},
	)
	c.gone(rs[0], "Subnet", "sub1")
	c.check(rs[1])
	c.gone(c.run("network", "show", "net1"), "Network", "net1")
}

// server is a running `neutrino up`.
type server struct {
	url  string
	log  string // path of its combined stdout/stderr
	data string // its data_dir
}

// startServer runs `neutrino up` on a free loopback port with a temporary
// data dir, waits until GET / answers, and stops it when the test ends
// (pass or fail).
func startServer(t *testing.T, dsn string) *server {
	t.Helper()
	var lastErr error
	for attempt := 1; attempt <= 3; attempt++ { // the free port may be taken before the server binds it
		s, err := tryStartServer(t, dsn)
		if err == nil {
			return s
		}
		lastErr = err
		t.Logf("starting neutrino (attempt %d): %v", attempt, err)
	}
	t.Fatalf("could not start neutrino: %v", lastErr)
	return nil
}

func tryStartServer(t *testing.T, dsn string) (*server, error) {
	dir := t.TempDir()
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "neutrino.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child keeps its own descriptor
	args := []string{"up", "--listen", addr, "--data-dir", filepath.Join(dir, "data"), "--bus-listen", "127.0.0.1:0", "--agent", "false"}
	if dsn != "" {
		args = append(args, "--database", dsn)
	}
	cmd := exec.Command(serverBin, args...)
	// Settings meant for other tests (NEUTRINO_DATABASE, NEUTRINO_AUTH, ...)
	// must not leak into this server.
	cmd.Env = filterEnv(os.Environ(), "NEUTRINO_")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	stop := func() {
		select {
		case <-exited:
			return
		default:
		}
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			t.Logf("neutrino did not stop within 10s of SIGINT; killing it")
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	s := &server{url: "http://" + addr, log: logPath, data: filepath.Join(dir, "data")}

	deadline := time.Now().Add(readyTimeout)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		select {
		case <-exited:
			return nil, fmt.Errorf("neutrino exited before answering GET / (%v); log:\n%s", waitErr, readTail(logPath))
		default:
		}
		if resp, err := client.Get(s.url + "/"); err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && bytes.Contains(body, []byte(`"versions"`)) {
				break
			}
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("neutrino at %s did not answer GET / within %s; log:\n%s", s.url, readyTimeout, readTail(logPath))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("neutrino log (%s):\n%s", logPath, readTail(logPath))
		}
	})
	return s, nil
}

// freeAddr returns a loopback address with a port that was free just now.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// readTail returns the last 16 KiB of a file.
func readTail(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(data) > 16<<10 {
		data = append([]byte("...\n"), data[len(data)-16<<10:]...)
	}
	return string(data)
}

// filterEnv drops the variables whose names start with prefix.
func filterEnv(env []string, prefix string) []string {
	return slices.DeleteFunc(slices.Clone(env), func(kv string) bool { return strings.HasPrefix(kv, prefix) })
}

// cliEnv is the environment of every `openstack` call: no Keystone, the
// server root as endpoint, and no OS_* settings from the caller's cloud.
func cliEnv(url string) []string {
	return append(filterEnv(os.Environ(), "OS_"), "OS_AUTH_TYPE=none", "OS_ENDPOINT="+url)
}

// cli runs `openstack` commands for a test.
type cli struct {
	t   *testing.T
	env []string

	mu  sync.Mutex
	log []result // every call, for dumpOnFailure
}

// result is one finished `openstack` call.
type result struct {
	args           []string
	stdout, stderr string
	exitCode       int   // -1 when it did not run to completion
	err            error // from exec (start failure, timeout, non-zero exit)
	timedOut       bool
	took           time.Duration
}

func (r result) cmd() string { return "openstack " + strings.Join(r.args, " ") }

func (r result) String() string {
	status := fmt.Sprintf("exit %d, %v, %s", r.exitCode, r.err, r.took.Round(time.Millisecond))
	if r.timedOut {
		status += ", TIMED OUT"
	}
	return fmt.Sprintf("$ %s\n(%s)\n--- stdout ---\n%s\n--- stderr ---\n%s",
		r.cmd(), status, r.stdout, r.stderr)
}

// js appends `-f json` to a command.
func js(args ...string) []string { return append(args, "-f", "json") }

// run executes `openstack args...` with a bounded timeout. It is safe to
// call from several goroutines.
func (c *cli) run(args ...string) result {
	timeout := cliTimeout
	if d, ok := c.t.Deadline(); ok && time.Until(d)-5*time.Second < timeout {
		timeout = max(time.Until(d)-5*time.Second, time.Second)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var r result
	if zygoteSock != "" {
		r = c.forked(ctx, args)
	} else {
		cmd := exec.CommandContext(ctx, openstackPath, args...)
		cmd.Env = c.env
		cmd.WaitDelay = 5 * time.Second
		setProcAttr(cmd)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		began := time.Now()
		err := cmd.Run()
		r = result{
			args: args, stdout: stdout.String(), stderr: stderr.String(), err: err,
			exitCode: cmd.ProcessState.ExitCode(), took: time.Since(began),
		}
	}
	r.timedOut = ctx.Err() != nil
	c.t.Logf("$ %s  (exit %d, %s)", r.cmd(), r.exitCode, r.took.Round(time.Millisecond))
	c.mu.Lock()
	c.log = append(c.log, r)
	c.mu.Unlock()
	return r
}

// forked runs one call in a child of the zygote: the script's main() with
// args, the call's environment and its output in files.
func (c *cli) forked(ctx context.Context, args []string) (r result) {
	r = result{args: args, exitCode: -1}
	began := time.Now()
	defer func() { r.took = time.Since(began) }()
	dir, err := os.MkdirTemp("", "openstack-call-")
	if err != nil {
		r.err = err
		return r
	}
	defer os.RemoveAll(dir)
	env := map[string]string{}
	for _, kv := range c.env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	stdout, stderr := filepath.Join(dir, "stdout"), filepath.Join(dir, "stderr")
	req, _ := json.Marshal(map[string]any{"argv": args, "env": env, "stdout": stdout, "stderr": stderr})
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", zygoteSock)
	if err != nil {
		r.err = err
		return r
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	if _, err := conn.Write(append(req, '\n')); err != nil {
		r.err = err
		return r
	}
	rd := bufio.NewReader(conn)
	var pid, code int
	if _, err := fmt.Fscanf(rd, "%d\n", &pid); err != nil {
		r.err = fmt.Errorf("zygote: no child: %v", err)
		return r
	}
	_, err = fmt.Fscanf(rd, "%d\n", &code)
	if err != nil {
		syscall.Kill(pid, syscall.SIGKILL)
		r.err = fmt.Errorf("openstack call (pid %d) ended without an exit code: %v", pid, err)
	}
	out, _ := os.ReadFile(stdout)
	errOut, _ := os.ReadFile(stderr)
	r.stdout, r.stderr = string(out), string(errOut)
	if err == nil {
		r.exitCode = code
		if code != 0 {
			r.err = fmt.Errorf("exit status %d", code)
		}
	}
	return r
}

// dumpOnFailure logs every command with its full output if the test failed.
func (c *cli) dumpOnFailure() {
	if !c.t.Failed() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	for _, r := range c.log {
		fmt.Fprintf(&b, "%s\n\n", r)
	}
	c.t.Logf("all %d CLI calls with their output:\n%s", len(c.log), b.String())
}

// parallel runs independent commands concurrently and returns their
// results in order; check them with check, decode or gone.
func (c *cli) parallel(cmds ...[]string) []result {
	out := make([]result, len(cmds))
	var wg sync.WaitGroup
	for i, args := range cmds {
		wg.Go(func() { out[i] = c.run(args...) })
	}
	wg.Wait()
	return out
}

// check fails the test unless r succeeded, and returns its stdout.
func (c *cli) check(r result) string {
	c.t.Helper()
	if r.err != nil {
		c.t.Fatalf("command failed:\n%s", r)
	}
	return r.stdout
}

// decode checks r and decodes its `-f json` output into v.
func (c *cli) decode(r result, v any) {
	c.t.Helper()
	out := c.check(r)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		c.t.Fatalf("output is not the expected JSON (%v):\n%s", err, r)
	}
}

// failed fails the test unless r exited non-zero (and not by timing out).
func (c *cli) failed(r result) {
	c.t.Helper()
	switch {
	case r.err == nil:
		c.t.Fatalf("command succeeded, want a failure:\n%s", r)
	case r.timedOut || r.exitCode <= 0:
		c.t.Fatalf("command did not run to completion:\n%s", r)
	}
}

// fails runs a command that must exit non-zero.
func (c *cli) fails(args ...string) result {
	c.t.Helper()
	r := c.run(args...)
	c.failed(r)
	return r
}

// gone asserts that r, an `openstack <kind> show <name>`, failed with
// "No <Kind> found for <name>".
func (c *cli) gone(r result, kind, name string) {
	c.t.Helper()
	c.failed(r)
	if want := fmt.Sprintf("No %s found for %s", kind, name); !strings.Contains(r.stdout+r.stderr, want) {
		c.t.Errorf("%s: output does not say %q:\n%s", r.cmd(), want, r)
	}
}

// str returns obj[key] as a non-empty string or fails the test.
func str(t *testing.T, obj map[string]any, key string) string {
	t.Helper()
	s, _ := obj[key].(string)
	if s == "" {
		t.Fatalf("%q = %#v, want a non-empty string in %v", key, obj[key], obj)
	}
	return s
}

// wantFields asserts obj has the given values (JSON numbers as float64).
func wantFields(t *testing.T, what string, obj map[string]any, want map[string]any) {
	t.Helper()
	for k, v := range want {
		got, ok := obj[k]
		if !ok {
			t.Errorf("%s: field %q missing, want %#v", what, k, v)
		} else if got != v {
			t.Errorf("%s: %s = %#v, want %#v", what, k, got, v)
		}
	}
}

// wantPools asserts a subnet has exactly one allocation pool start-end.
func wantPools(t *testing.T, what string, subnet map[string]any, start, end string) {
	t.Helper()
	pools, _ := subnet["allocation_pools"].([]any)
	if len(pools) == 1 {
		if p, _ := pools[0].(map[string]any); p["start"] == start && p["end"] == end {
			return
		}
	}
	t.Errorf("%s: allocation_pools = %#v, want [{start: %s, end: %s}]", what, subnet["allocation_pools"], start, end)
}

// fixedIP is one entry of a port's fixed_ips.
type fixedIP struct{ ip, subnet string }

var fixedIPString = regexp.MustCompile(`ip_address='([^']*)', subnet_id='([^']*)'`)

// fixedIPs reads fixed_ips as the CLI prints them in JSON: a list of
// objects (osc >= 5.5), or a "ip_address='..', subnet_id='..'" string
// (older osc).
func fixedIPs(v any) []fixedIP {
	var out []fixedIP
	switch v := v.(type) {
	case []any:
		for _, e := range v {
			m, _ := e.(map[string]any)
			ip, _ := m["ip_address"].(string)
			sub, _ := m["subnet_id"].(string)
			out = append(out, fixedIP{ip, sub})
		}
	case string:
		for _, m := range fixedIPString.FindAllStringSubmatch(v, -1) {
			out = append(out, fixedIP{m[1], m[2]})
		}
	}
	return out
}

// in reports whether ip is an address inside prefix.
func in(ip, prefix string) bool {
	a, err := netip.ParseAddr(ip)
	return err == nil && netip.MustParsePrefix(prefix).Contains(a)
}

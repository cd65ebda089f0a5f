package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/vishvananda/netns"

	"github.com/neutrino-net/neutrino/internal/agent"
	"github.com/neutrino-net/neutrino/internal/agent/node"
	"github.com/neutrino-net/neutrino/internal/app"
	"github.com/neutrino-net/neutrino/internal/bus"
	"github.com/neutrino-net/neutrino/internal/config"
	"github.com/neutrino-net/neutrino/internal/ipsec/strongswan"
	"github.com/neutrino-net/neutrino/internal/namespace"
	"github.com/neutrino-net/neutrino/internal/segment"
	"github.com/neutrino-net/neutrino/internal/store/sqlstore"
)

// envDefault returns the environment's value for key, or def.
func envDefault(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// defaultHost is the host name in the bus's alphabet.
func defaultHost() string {
	h, _ := os.Hostname()
	h, _, _ = strings.Cut(h, ".")
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '-'
	}, h)
}

// agentFlags are the agent's settings: flags, else NEUTRINO_<NAME>.
type agentFlags struct {
	host, busURL, token, underlay, netnsDir, logLevel string
	stateDir, dataPlane, metricsListen, charon        string
	libreswan                                         string
	busTLSCA, mappings                                string
	resync                                            time.Duration
	// busTLS, when set, verifies the bus server instead of busTLSCA
	// (neutrino up's local agent pins the embedded server's certificate).
	busTLS *tls.Config
}

func (f *agentFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.host, "host", envDefault("NEUTRINO_HOST", defaultHost()), "this host's name on the bus (NEUTRINO_HOST)")
	fs.StringVar(&f.busURL, "bus", envDefault("NEUTRINO_BUS", "nats://127.0.0.1:4222"), "the bus URL (NEUTRINO_BUS)")
	fs.StringVar(&f.busTLSCA, "bus-tls-ca", envDefault("NEUTRINO_BUS_TLS_CA", ""), "CA certificates (PEM) that verify the bus server's TLS certificate; set: the agent connects only over TLS (NEUTRINO_BUS_TLS_CA)")
	fs.StringVar(&f.token, "token", envDefault("NEUTRINO_AGENT_TOKEN", ""), "this host's bus token, from `neutrino agent-token HOST` (NEUTRINO_AGENT_TOKEN)")
	fs.StringVar(&f.underlay, "underlay-ip", envDefault("NEUTRINO_UNDERLAY_IP", "127.0.0.1"), "address other hosts reach this host's VXLAN on (NEUTRINO_UNDERLAY_IP)")
	fs.StringVar(&f.netnsDir, "netns-dir", envDefault("NEUTRINO_NETNS_DIR", "/var/run/netns"), "where named network namespaces live (NEUTRINO_NETNS_DIR)")
	fs.StringVar(&f.logLevel, "log-level", envDefault("NEUTRINO_LOG_LEVEL", "info"), "debug, info, warn or error")
	fs.StringVar(&f.stateDir, "state-dir", envDefault("NEUTRINO_STATE_DIR", "/var/lib/neutrino/agent"), "per-router state: IKE daemons' config, sockets, pid files and logs (NEUTRINO_STATE_DIR)")
	fs.StringVar(&f.dataPlane, "ipsec-dataplane", envDefault("NEUTRINO_IPSEC_DATAPLANE", "auto"), "IPsec data plane: auto (detect), xfrm (kernel ESP) or libipsec (userspace ESP over TUN) (NEUTRINO_IPSEC_DATAPLANE)")
	fs.StringVar(&f.metricsListen, "metrics-listen", envDefault("NEUTRINO_METRICS_LISTEN", ""), "address for Prometheus /metrics, e.g. 127.0.0.1:9697; empty: off (NEUTRINO_METRICS_LISTEN)")
	fs.StringVar(&f.charon, "charon", envDefault("NEUTRINO_CHARON", strongswan.DefaultCharon), "the strongSwan charon binary (NEUTRINO_CHARON)")
	fs.StringVar(&f.libreswan, "libreswan-dir", envDefault("NEUTRINO_LIBRESWAN_DIR", "/"), "the root of the Libreswan installation (its usr/libexec/ipsec/pluto) (NEUTRINO_LIBRESWAN_DIR)")
	fs.StringVar(&f.mappings, "physical-interface-mappings", envDefault("NEUTRINO_PHYSICAL_INTERFACE_MAPPINGS", ""), "physnet:interface,... the host interfaces that carry flat and VLAN networks (NEUTRINO_PHYSICAL_INTERFACE_MAPPINGS)")
	fs.DurationVar(&f.resync, "resync", 30*time.Second, "period of full state fetches")
}

// serveMetrics serves Prometheus /metrics until ctx ends; it returns the
// address it listens on.
func serveMetrics(ctx context.Context, addr string, log *slog.Logger, cs ...prometheus.Collector) (string, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(cs...)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("--metrics-listen: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { <-ctx.Done(); srv.Close() }()
	go srv.Serve(ln)
	log.Info("agent metrics", "url", "http://"+ln.Addr().String()+"/metrics")
	return ln.Addr().String(), nil
}

// newAgent builds an agent over the real kernel data plane, in the
// namespace of the calling thread.
func newAgent(ctx context.Context, f agentFlags, log *slog.Logger) (*agent.Agent, func(), error) {
	underlay, err := netip.ParseAddr(f.underlay)
	if err != nil {
		return nil, nil, fmt.Errorf("--underlay-ip: %w", err)
	}
	if err := namespace.PrepareDir(f.netnsDir); err != nil {
		return nil, nil, err
	}
	mappings, err := segment.ParseMappings(f.mappings)
	if err != nil {
		return nil, nil, fmt.Errorf("--physical-interface-mappings: %w", err)
	}
	busTLS := f.busTLS
	if busTLS == nil && f.busTLSCA != "" {
		if busTLS, err = bus.ClientTLS(f.busTLSCA); err != nil {
			return nil, nil, fmt.Errorf("--bus-tls-ca: %w", err)
		}
	}
	runtime.LockOSThread() // remember this thread's namespace as the host's
	host, err := netns.Get()
	runtime.UnlockOSThread()
	if err != nil {
		return nil, nil, fmt.Errorf("agent: open the host namespace: %w", err)
	}
	n, err := node.New(node.Options{Endpoint: agent.Endpoint{Host: f.host, BusURL: f.busURL, Token: f.token, BusTLS: busTLS,
		UnderlayIP: underlay}, HostNS: host, NetnsDir: f.netnsDir, StateDir: f.stateDir, DataPlane: f.dataPlane, Charon: f.charon,
		Libreswan:                 f.libreswan,
		PhysicalInterfaceMappings: mappings, Resync: f.resync, Logger: log})
	if err == nil && f.metricsListen != "" {
		if _, err = serveMetrics(ctx, f.metricsListen, log, n.Collectors...); err != nil {
			n.Close()
		}
	}
	if err != nil {
		host.Close()
		return nil, nil, err
	}
	return n.Agent, func() { n.Close(); host.Close() }, nil
}

func runAgent(ctx context.Context, args []string, stderr io.Writer) error {
	var f agentFlags
	fs := flag.NewFlagSet("neutrino agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("the agent manages network namespaces and must run as root")
	}
	if f.token == "" {
		return fmt.Errorf("no bus token: run `neutrino agent-token %s` on a server and pass it with --token", f.host)
	}
	var level slog.Level
	_ = level.UnmarshalText([]byte(f.logLevel))
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	a, closeFn, err := newAgent(ctx, f, log)
	if err != nil {
		return err
	}
	defer closeFn()
	log.Info("agent starting", "host", f.host, "bus", f.busURL, "bus_tls", f.busTLSCA != "", "underlay", f.underlay)
	return a.Run(ctx)
}

// agentToken prints the bus token of a host at its current generation,
// or, with --rotate, moves the host to a new token and prints it: the old
// one is refused from then on, and the embedded bus closes connections
// made with it.
func agentToken(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const usage = "usage: neutrino agent-token [--rotate] [server flags: --config FILE, --data-dir DIR, --database URL, ...] HOST"
	if len(args) == 0 || !bus.ValidHost(args[len(args)-1]) {
		return fmt.Errorf("%s (HOST: letters, digits, - and _)", usage)
	}
	host, rotate := args[len(args)-1], false
	var cfgArgs []string
	for _, a := range args[:len(args)-1] {
		if a == "--rotate" || a == "-rotate" {
			rotate = true
		} else {
			cfgArgs = append(cfgArgs, a)
		}
	}
	cfg, err := config.Load("neutrino agent-token", cfgArgs, os.Getenv)
	if err != nil {
		return fmt.Errorf("%w\n%s", err, usage)
	}
	secret, err := app.LoadSecret(cfg.SecretFile())
	if err != nil {
		return err
	}
	if cfg.Database == "" {
		if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
			return err
		}
	}
	db, err := sqlstore.Open(ctx, cfg.DatabaseURL(), sqlstore.WithLogger(app.Logger(cfg, stderr)))
	if err != nil {
		return err
	}
	defer db.Close()
	var gen uint64
	if rotate {
		gen, err = db.RotateAgentToken(ctx, host)
	} else {
		gen, err = db.AgentTokenGeneration(ctx, host)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, bus.AgentTokenAt(secret, host, gen))
	if rotate {
		fmt.Fprintf(stderr, "neutrino: %s's token is now generation %d; the previous one is refused, and the embedded bus closes its connections within seconds\n", host, gen)
	}
	return nil
}

// portPlug binds a port to this host with a VIF in a named namespace (or
// unbinds it): seed 002's plug(vnic, port), through the API.
func portPlug(ctx context.Context, args []string, stdout io.Writer, plug bool) error {
	name := "neutrino port unplug"
	if plug {
		name = "neutrino port plug"
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	nsName := fs.String("netns", "", "the network namespace that gets the VIF")
	host := fs.String("host", envDefault("NEUTRINO_HOST", defaultHost()), "the agent host (NEUTRINO_HOST)")
	api := fs.String("api", "", "the Networking API (NEUTRINO_API, OS_ENDPOINT, else the catalog's, else "+defaultAPI+")")
	token := fs.String("token", "", "a Keystone token when the API uses Keystone (OS_TOKEN)")
	cloud := fs.String("os-cloud", "", "a cloud of clouds.yaml (OS_CLOUD)")
	wait := fs.Duration("wait", 30*time.Second, "how long to wait for the port to become ACTIVE (0: do not wait)")
	// Accept PORT before or after the flags.
	var port string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		port, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if port == "" && fs.NArg() == 1 {
		port = fs.Arg(0)
	}
	if port == "" || (plug && *nsName == "") {
		return fmt.Errorf("usage: %s PORT --netns NS [--host HOST] [--api URL] [--os-cloud CLOUD | --token TOKEN]", name)
	}
	target, err := resolveAPI(ctx, clientAuth{api: *api, token: *token, cloud: *cloud}, os.Getenv)
	if err != nil {
		return err
	}
	body := map[string]any{"binding:host_id": *host, "binding:profile": map[string]any{"netns": *nsName}}
	if !plug {
		body = map[string]any{"binding:host_id": "", "binding:profile": map[string]any{}}
	}
	var out struct {
		Port map[string]any `json:"port"`
	}
	if err := apiCall(ctx, target, "PUT", "/v2.0/ports/"+port, map[string]any{"port": body}, &out); err != nil {
		return err
	}
	if !plug || *wait == 0 {
		fmt.Fprintf(stdout, "port %s %s\n", port, map[bool]string{true: "plugged", false: "unplugged"}[plug])
		return nil
	}
	deadline := time.Now().Add(*wait)
	for out.Port["status"] != "ACTIVE" {
		if time.Now().After(deadline) {
			return fmt.Errorf("port %s is bound to %s but not ACTIVE after %s: is the agent of host %s running?", port, *host, *wait, *host)
		}
		time.Sleep(200 * time.Millisecond)
		if err := apiCall(ctx, target, "GET", "/v2.0/ports/"+port, nil, &out); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "port %s plugged into namespace %s on %s: ACTIVE\n", port, *nsName, *host)
	return nil
}

func apiCall(ctx context.Context, t *apiTarget, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(t.base, "/")+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if t.token != "" {
		req.Header.Set("X-Auth-Token", t.token)
	}
	resp, err := t.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		var fault struct {
			NeutronError struct{ Type, Message string }
		}
		if json.Unmarshal(data, &fault) == nil && fault.NeutronError.Message != "" {
			return fmt.Errorf("%s %s (%s): %d %s: %s", method, path, t.how, resp.StatusCode, fault.NeutronError.Type, fault.NeutronError.Message)
		}
		return fmt.Errorf("%s %s (%s): %s", method, path, t.how, resp.Status)
	}
	return json.Unmarshal(data, out)
}

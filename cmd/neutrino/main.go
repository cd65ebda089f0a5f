// Command neutrino is the OpenStack Networking API server with IPsec VPN as
// a service. Run "neutrino up" for an all-in-one server with embedded
// defaults.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/neutrino-net/neutrino/internal/app"
	"github.com/neutrino-net/neutrino/internal/config"
	"github.com/neutrino-net/neutrino/internal/ipsec/strongswan"
	"github.com/neutrino-net/neutrino/internal/store/sqlstore"
)

const usage = `neutrino: OpenStack Networking API with IPsec VPN as a service

Usage:
  neutrino up [flags]              all-in-one server with embedded defaults
  neutrino server [flags]          the API server (for deployments)
  neutrino agent [flags]           the L3 agent of this network node (root)
  neutrino agent-token [--rotate] HOST   print (--rotate: replace) the bus token of HOST's agent
  neutrino port plug PORT --netns NS   give namespace NS a VIF bound to PORT
  neutrino port unplug PORT        unbind PORT from this host
  neutrino config example          print a commented configuration file
  neutrino db upgrade [flags]      apply database migrations and exit
  neutrino version

Flags (every one also as NEUTRINO_<KEY> and as "key = value" in --config):
  --config FILE  --listen ADDR  --data-dir DIR  --database URL  --auth noauth|keystone
  --keystone-url URL  --public-url URL  --log-level LEVEL  --log-format text|json
Run "neutrino config example" for every option with its default.
`

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "neutrino:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("no command given")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch args[0] {
	case "up", "server":
		cfg, err := config.Load("neutrino "+args[0], args[1:], os.Getenv)
		if err != nil {
			return err
		}
		log := app.Logger(cfg, stderr)
		srv, err := app.Start(ctx, cfg, log)
		if err != nil {
			return err
		}
		agentLine := "none (neutrino server runs none; see neutrino agent)"
		if args[0] == "up" {
			if agentLine, err = localAgent(ctx, cfg, srv, log); err != nil {
				srv.Close()
				return err
			}
			printBanner(stdout, cfg, srv, agentLine)
		}
		return srv.Wait(ctx)
	case "agent":
		return runAgent(ctx, args[1:], stderr)
	case "agent-token":
		return agentToken(ctx, args[1:], stdout, stderr)
	case "port":
		if len(args) < 2 || (args[1] != "plug" && args[1] != "unplug") {
			return fmt.Errorf("usage: neutrino port plug|unplug PORT [--netns NS]")
		}
		return portPlug(ctx, args[2:], stdout, args[1] == "plug")
	case "config":
		if len(args) != 2 || args[1] != "example" {
			return fmt.Errorf("usage: neutrino config example")
		}
		config.Example(stdout)
		return nil
	case "db":
		if len(args) < 2 || args[1] != "upgrade" {
			return fmt.Errorf("usage: neutrino db upgrade [flags]")
		}
		cfg, err := config.Load("neutrino db upgrade", args[2:], os.Getenv)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
			return err
		}
		db, err := sqlstore.Open(ctx, cfg.DatabaseURL(), sqlstore.WithLogger(app.Logger(cfg, stderr)))
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, "database schema is up to date:", db.Dialect())
		return db.Close()
	case "version", "--version":
		fmt.Fprintln(stdout, "neutrino", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}

// localAgent starts the all-in-one agent of neutrino up when it should run,
// and says what it did.
func localAgent(ctx context.Context, cfg *config.Config, srv *app.Server, log *slog.Logger) (string, error) {
	root := os.Geteuid() == 0
	switch {
	case cfg.Agent == "false":
		return "none (agent = false)", nil
	case cfg.Agent == "auto" && !root:
		log.Warn("not running as root: no local agent, so routers and ports stay unrealised (run as root, or run `neutrino agent` elsewhere)")
		return "NONE: not root, so nothing is wired into the kernel", nil
	case !root:
		return "", fmt.Errorf("agent = true needs root")
	case srv.BusURL == "":
		return "", fmt.Errorf("the local agent needs the bus to listen (bus_listen is empty)")
	}
	token, err := srv.AgentToken(ctx, defaultHost())
	if err != nil {
		return "", err
	}
	f := agentFlags{host: defaultHost(), busURL: srv.BusURL, token: token, busTLS: srv.BusTLS,
		underlay: "127.0.0.1", netnsDir: "/var/run/netns", resync: 30 * time.Second,
		stateDir: filepath.Join(cfg.DataDir, "agent"), dataPlane: cfg.IPsecDataPlane, metricsListen: cfg.AgentMetrics,
		charon: strongswan.DefaultCharon, libreswan: envDefault("NEUTRINO_LIBRESWAN_DIR", "/"), mappings: mappingsFlag(cfg.PhysicalInterfaceMappings)}
	a, closeFn, err := newAgent(ctx, f, log)
	if err != nil {
		return "", err
	}
	go func() {
		defer closeFn()
		if err := a.Run(ctx); err != nil {
			log.Error("local agent stopped", "error", err)
		}
	}()
	return "host " + f.host + " (routers in qrouter-* namespaces, ports via `neutrino port plug`)", nil
}

func printBanner(w io.Writer, cfg *config.Config, srv *app.Server, agentLine string) {
	endpoint := "http://" + srv.Addr
	fmt.Fprintf(w, `
Neutrino is up.
  Networking API:  %s/v2.0/
  Database:        %s
  Auth:            %s
  Bus:             %s
  Agent:           %s

Try it:
  curl -s %s/v2.0/networks -H 'X-Project-Id: demo'
  openstack --os-auth-type none --os-endpoint %s network list

Stop with Ctrl-C.
`, endpoint, redact(cfg.DatabaseURL()), cfg.Auth, busLine(cfg, srv.BusURL), agentLine, endpoint, endpoint)
}

// redact hides a password in a database URL.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparsable database URL)"
	}
	return u.Redacted()
}

func busLine(cfg *config.Config, url string) string {
	switch {
	case cfg.Bus != "":
		return cfg.Bus
	case url == "":
		return "embedded NATS, in-process only"
	}
	return "embedded NATS on " + url + " (agent tokens: neutrino agent-token HOST)"
}

// mappingsFlag writes physical interface mappings back in the flag's form.
func mappingsFlag(m map[string]string) string {
	var parts []string
	for _, p := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, p+":"+m[p])
	}
	return strings.Join(parts, ",")
}

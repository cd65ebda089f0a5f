// Command neutrino is the OpenStack Networking API server with IPsec VPN as
// a service. Run "neutrino up" for an all-in-one server with embedded
// defaults.
package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"syscall"

	"github.com/neutrino-net/neutrino/internal/app"
	"github.com/neutrino-net/neutrino/internal/config"
	"github.com/neutrino-net/neutrino/internal/store/sqlstore"
)

const usage = `neutrino: OpenStack Networking API with IPsec VPN as a service

Usage:
  neutrino up [flags]              all-in-one server with embedded defaults
  neutrino server [flags]          the API server (for deployments)
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
		if args[0] == "up" {
			printBanner(stdout, cfg, srv.Addr)
		}
		return srv.Wait(ctx)
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
		db, err := sqlstore.Open(ctx, cfg.DatabaseURL())
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

func printBanner(w io.Writer, cfg *config.Config, addr string) {
	endpoint := "http://" + addr
	fmt.Fprintf(w, `
Neutrino is up.
  Networking API:  %s/v2.0/
  Database:        %s
  Auth:            %s
  Agent:           none yet (the L3/VPN agent arrives in a later release)

Try it:
  curl -s %s/v2.0/networks -H 'X-Project-Id: demo'
  openstack --os-auth-type none --os-endpoint %s network list

Stop with Ctrl-C.
`, endpoint, redact(cfg.DatabaseURL()), cfg.Auth, endpoint, endpoint)
}

// redact hides a password in a database URL.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparsable database URL)"
	}
	return u.Redacted()
}

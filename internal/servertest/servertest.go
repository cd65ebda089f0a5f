// Package servertest runs a whole Neutrino server inside a test: a fresh
// store, the service, the embedded bus with the server's side of it
// (control) and the HTTP API on a loopback listener, assembled as the
// server is. The end-to-end tests, the agent benchmarks and the control
// tests share it instead of wiring the parts by hand.
package servertest

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/neutrino-net/neutrino/internal/auth"
	"github.com/neutrino-net/neutrino/internal/bus"
	"github.com/neutrino-net/neutrino/internal/control"
	"github.com/neutrino-net/neutrino/internal/httpapi"
	"github.com/neutrino-net/neutrino/internal/service"
	"github.com/neutrino-net/neutrino/internal/store/sqlstore"
	"github.com/neutrino-net/neutrino/internal/store/sqlstore/sqltest"
)

// Options shape a Server; the zero value is SQLite, noauth, a bus on a
// free loopback port and no logs.
type Options struct {
	// Dialect is the store: "sqlite" (default) or "postgres".
	Dialect string
	// Logger receives the server's logs (components "service", "bus",
	// "control", "api").
	Logger *slog.Logger
	// Service and API adjust the service's and the API's options; the
	// Hint of the service is the server's own, to the bus.
	Service func(*service.Options)
	API     func(*httpapi.Options)
	// BusListen is where agents reach the bus ("127.0.0.1:0" if empty).
	BusListen string
	// Secret signs the bus credentials (random if empty).
	Secret []byte
	// BusTLS, when set, makes the bus TLS-only (see bus.ServerTLS).
	BusTLS *tls.Config
	// TokenGenerations makes the bus accept only each host's current
	// token generation, read from the server's database, and close
	// connections made with a rotated one within RevocationCheck (100 ms
	// if zero), as the server does.
	TokenGenerations bool
	RevocationCheck  time.Duration
}

// Server is a running server. Everything it started stops when the test
// ends, after the cleanups the test registers later.
type Server struct {
	// URL is the API's base URL.
	URL string
	// Service is the server's service (the rules and the store).
	Service *service.Service
	// Secret signs the bus credentials.
	Secret []byte
	// DB is the server's database.
	DB *sqlstore.DB

	tb   testing.TB
	log  *slog.Logger
	opts Options
	bus  atomic.Pointer[bus.Embedded]
	ctrl atomic.Pointer[control.Control]
}

// Start starts a server.
func Start(tb testing.TB, o Options) *Server {
	tb.Helper()
	if o.Dialect == "" {
		o.Dialect = "sqlite"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.BusListen == "" {
		o.BusListen = "127.0.0.1:0"
	}
	if o.Secret == nil {
		o.Secret = fmt.Appendf(nil, "test-secret-%x", rand.Uint64())
	}
	if o.TokenGenerations && o.RevocationCheck == 0 {
		o.RevocationCheck = 100 * time.Millisecond
	}
	s := &Server{tb: tb, log: o.Logger, Secret: o.Secret, opts: o}
	opts := service.Options{Logger: o.Logger.With("component", "service")}
	if o.Service != nil {
		o.Service(&opts)
	}
	opts.Hint = func(ctx context.Context, host string, h agentv1.Hint) {
		if c := s.ctrl.Load(); c != nil {
			c.Hint(ctx, host, h)
		}
	}
	s.DB = sqltest.OpenDB(tb, o.Dialect)
	s.Service = service.New(s.DB, opts)
	s.StartBus(o.BusListen)
	apiOpts := httpapi.Options{Auth: auth.NoAuth{}, Logger: o.Logger.With("component", "api")}
	if o.API != nil {
		o.API(&apiOpts)
	}
	apiOpts.Service = s.Service
	srv := httptest.NewServer(httpapi.New(apiOpts))
	tb.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// StartBus starts the embedded bus on addr with the server's side of it;
// after Bus().Shutdown() it brings the bus back, as a restarted server
// would.
func (s *Server) StartBus(addr string) {
	s.tb.Helper()
	bo := bus.EmbeddedOptions{Listen: addr, Secret: s.Secret, TLS: s.opts.BusTLS, Logger: s.log.With("component", "bus")}
	if s.opts.TokenGenerations {
		bo.Generations, bo.RevocationCheck = s.DB, s.opts.RevocationCheck
	}
	b, err := bus.StartEmbedded(bo)
	if err != nil {
		s.tb.Fatal(err)
	}
	s.tb.Cleanup(b.Shutdown)
	nc, err := b.Connect(bus.ServerUser, bus.ServerToken(s.Secret))
	if err != nil {
		s.tb.Fatal(err)
	}
	s.tb.Cleanup(nc.Close)
	c, err := control.New(s.Service, nc, s.log.With("component", "control"))
	if err != nil {
		s.tb.Fatal(err)
	}
	s.tb.Cleanup(c.Close)
	s.bus.Store(b)
	s.ctrl.Store(c)
}

// Bus is the embedded bus.
func (s *Server) Bus() *bus.Embedded { return s.bus.Load() }

// BusURL is where agents connect.
func (s *Server) BusURL() string { return s.Bus().URL() }

// AgentToken is the bus credential of host's agent.
func (s *Server) AgentToken(host string) string { return bus.AgentToken(s.Secret, host) }

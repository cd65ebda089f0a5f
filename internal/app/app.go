// Package app wires Neutrino's server together from its configuration:
// store, service, authentication and the HTTP API.
package app

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/neutrino-net/neutrino/internal/auth"
	"github.com/neutrino-net/neutrino/internal/bus"
	"github.com/neutrino-net/neutrino/internal/config"
	"github.com/neutrino-net/neutrino/internal/control"
	"github.com/neutrino-net/neutrino/internal/httpapi"
	"github.com/neutrino-net/neutrino/internal/metrics"
	"github.com/neutrino-net/neutrino/internal/service"
	"github.com/neutrino-net/neutrino/internal/store/sqlstore"
)

// Logger builds the process logger from the configuration.
func Logger(cfg *config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// Server is a running Networking API.
type Server struct {
	Addr    string // the address actually listened on
	BusURL  string // where agents connect ("" when the bus is in-process only)
	Service *service.Service
	// BusTLS is the TLS configuration of an agent in this process (nil:
	// plain connections): it trusts exactly the embedded bus's
	// certificate, or bus_tls_ca for an external bus.
	BusTLS *tls.Config
	// Metrics are the server's Prometheus metrics (GET /metrics).
	Metrics *metrics.Server
	db      *sqlstore.DB
	http    *http.Server
	ln      net.Listener
	log     *slog.Logger
	errCh   chan error
	closers []func()
	secret  []byte // the bus secret
}

// LoadSecret reads the bus secret, creating a random one (mode 0600) the
// first time.
func LoadSecret(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		if s := bytes.TrimSpace(data); len(s) >= 16 {
			return s, nil
		}
		return nil, fmt.Errorf("bus secret %s: too short (want at least 16 bytes)", path)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("bus secret: %w", err)
	}
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return nil, err
	}
	secret := []byte(hex.EncodeToString(buf))
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("bus secret: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return LoadSecret(path) // another server created it first
	} else if err != nil {
		return nil, fmt.Errorf("bus secret: %w", err)
	}
	defer f.Close()
	if _, err := f.Write(append(secret, '\n')); err != nil {
		return nil, fmt.Errorf("bus secret: %w", err)
	}
	return secret, nil
}

// startBus starts the embedded NATS server (or dials the external one)
// and serves agents on it.
func (s *Server) startBus(ctx context.Context, cfg *config.Config, secret []byte, hint *hinter) error {
	var nc *nats.Conn
	if cfg.Bus == "" {
		opts := bus.EmbeddedOptions{Listen: cfg.BusListen, Secret: secret, Generations: s.db, Logger: s.log}
		if cfg.BusTLSCert != "" {
			var err error
			if opts.TLS, err = bus.ServerTLS(cfg.BusTLSCert, cfg.BusTLSKey); err != nil {
				return err
			}
		} else if cfg.BusListen != "" && !loopback(cfg.BusListen) {
			s.log.Warn("bus: listening beyond loopback without TLS: agent tokens and desired state, VPN pre-shared keys included, cross the network in clear; set bus_tls_cert and bus_tls_key",
				"bus_listen", cfg.BusListen)
		}
		e, err := bus.StartEmbedded(opts)
		if err != nil {
			return err
		}
		s.closers = append(s.closers, e.Shutdown)
		s.BusURL, s.BusTLS = e.URL(), e.AgentTLS()
		if nc, err = e.Connect(bus.ServerUser, bus.ServerToken(secret)); err != nil {
			return fmt.Errorf("bus: %w", err)
		}
	} else {
		var extra []nats.Option
		if cfg.BusTLSCA != "" {
			var err error
			if s.BusTLS, err = bus.ClientTLS(cfg.BusTLSCA); err != nil {
				return err
			}
			extra = append(extra, nats.Secure(s.BusTLS))
		}
		var err error
		if nc, err = bus.DialServer(ctx, cfg.Bus, bus.ServerToken(secret), s.log, extra...); err != nil {
			return err
		}
		s.BusURL = cfg.Bus
	}
	s.closers = append(s.closers, nc.Close)
	ctrl, err := control.New(s.Service, nc, s.log)
	if err != nil {
		return err
	}
	s.closers = append(s.closers, ctrl.Close)
	hint.set(ctrl.Hint)
	return nil
}

// loopback reports whether addr (host:port) listens on loopback only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// AgentToken is the bus token of host's agent at its current token
// generation (neutrino up's local agent uses it).
func (s *Server) AgentToken(ctx context.Context, host string) (string, error) {
	gen, err := s.db.AgentTokenGeneration(ctx, host)
	if err != nil {
		return "", err
	}
	return bus.AgentTokenAt(s.secret, host, gen), nil
}

// hinter forwards the service's hints to the bus once it is up.
type hinter struct {
	mu sync.Mutex
	fn func(context.Context, string, agentv1.Hint)
}

func (h *hinter) set(fn func(context.Context, string, agentv1.Hint)) {
	h.mu.Lock()
	h.fn = fn
	h.mu.Unlock()
}

func (h *hinter) hint(ctx context.Context, host string, m agentv1.Hint) {
	h.mu.Lock()
	fn := h.fn
	h.mu.Unlock()
	if fn != nil {
		fn(ctx, host, m)
	}
}

// Start opens the store (applying migrations), and starts serving.
func Start(ctx context.Context, cfg *config.Config, log *slog.Logger) (*Server, error) {
	dsn := cfg.DatabaseURL()
	if strings.HasPrefix(dsn, "sqlite://") {
		if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
			return nil, fmt.Errorf("data dir: %w", err)
		}
	}
	db, err := sqlstore.Open(ctx, dsn, sqlstore.WithLogger(log))
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	secret, err := LoadSecret(cfg.SecretFile())
	if err != nil {
		db.Close()
		return nil, err
	}
	hint := &hinter{}
	// The service hints the hosts of a router whose VPN changed itself
	// (Options.Hint), so the drivers need no notifier of their own.
	providers, err := service.NewProviders(cfg.ServiceProviders, service.DriverKinds(nil))
	if err != nil {
		db.Close()
		return nil, err
	}
	m := metrics.New()
	svc := service.New(db, service.Options{PhysnetMTU: cfg.PhysnetMTU, MACPrefix: cfg.MACPrefix, Segments: &cfg.Segments, Logger: log,
		Providers: providers, Hint: hint.hint, AgentDownTime: cfg.AgentDownTime, ObserveReport: m.ObserveReport,
		DHCPAgentsPerNetwork: cfg.DHCPAgentsPerNetwork, DHCPLeaseDuration: cfg.DHCPLeaseDuration,
		MaxAllowedAddressPairs: cfg.MaxAllowedAddressPairs})
	var authn auth.Authenticator = auth.NoAuth{}
	if cfg.Auth == "keystone" {
		ks := auth.NewKeystone(cfg.KeystoneURL, cfg.KeystoneCacheTTL)
		ks.MaxConcurrency = cfg.KeystoneInFlight
		authn = ks
	}
	api := httpapi.New(httpapi.Options{Service: svc, Auth: authn, Logger: log, PublicURL: cfg.PublicURL,
		Observe: m.ObserveRequest, Metrics: m.Handler()})
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("listen: %w", err)
	}
	ln = httpapi.Listener(ln)
	s := &Server{
		Addr: ln.Addr().String(), Service: svc, Metrics: m, db: db, secret: secret, ln: ln, log: log,
		errCh: make(chan error, 1),
		http: &http.Server{Handler: api, ReadHeaderTimeout: min(10*time.Second, cfg.APIReadTimeout),
			ReadTimeout: cfg.APIReadTimeout, IdleTimeout: cfg.APIIdleTimeout, MaxHeaderBytes: cfg.APIMaxHeader},
	}
	if err := s.startBus(ctx, cfg, secret, hint); err != nil {
		ln.Close()
		s.Close()
		return nil, err
	}
	if cfg.L3AgentFailover {
		s.startFailover()
	}
	s.startSettleVPN()
	go func() {
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.errCh <- err
		}
		close(s.errCh)
	}()
	log.Info("networking API listening", "addr", s.Addr, "database", db.Dialect(), "auth", cfg.Auth, "bus", s.BusURL)
	return s, nil
}

// startFailover runs the check that moves dead L3 agents' routers until
// the server closes (before the bus and the store go).
func (s *Server) startFailover() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Service.RunFailover(ctx, 0)
	}()
	s.closers = append(s.closers, func() { cancel(); <-done })
	s.log.Info("L3 agent failover on", "agent_down_time", s.Service.AgentDownTime(), "check_every", s.Service.FailoverPeriod())
}

// startSettleVPN runs the check that turns pending VPN resources of
// routers without an alive agent DOWN, until the server closes.
func (s *Server) startSettleVPN() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Service.RunSettleVPN(ctx, 0)
	}()
	s.closers = append(s.closers, func() { cancel(); <-done })
}

// Wait blocks until ctx ends or the server fails, then shuts down.
func (s *Server) Wait(ctx context.Context) error {
	var err error
	select {
	case <-ctx.Done():
	case err = <-s.errCh:
	}
	return errors.Join(err, s.Close())
}

// Close stops the server gracefully and closes the store.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := s.http.Shutdown(ctx)
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
	return errors.Join(err, s.db.Close())
}

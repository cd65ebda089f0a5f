// Package app wires Neutrino's server together from its configuration:
// store, service, authentication and the HTTP API.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/neutrino-net/neutrino/internal/auth"
	"github.com/neutrino-net/neutrino/internal/config"
	"github.com/neutrino-net/neutrino/internal/httpapi"
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
	Addr  string // the address actually listened on
	db    *sqlstore.DB
	http  *http.Server
	ln    net.Listener
	log   *slog.Logger
	errCh chan error
}

// Start opens the store (applying migrations), and starts serving.
func Start(ctx context.Context, cfg *config.Config, log *slog.Logger) (*Server, error) {
	dsn := cfg.DatabaseURL()
	if strings.HasPrefix(dsn, "sqlite://") {
		if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
			return nil, fmt.Errorf("data dir: %w", err)
		}
	}
	db, err := sqlstore.Open(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	providers, err := service.NewProviders(cfg.ServiceProviders, service.DriverKinds(nil))
	if err != nil {
		db.Close()
		return nil, err
	}
	svc := service.New(db, service.Options{PhysnetMTU: cfg.PhysnetMTU, MACPrefix: cfg.MACPrefix, Logger: log, Providers: providers})
	var authn auth.Authenticator = auth.NoAuth{}
	if cfg.Auth == "keystone" {
		authn = auth.NewKeystone(cfg.KeystoneURL, cfg.KeystoneCacheTTL)
	}
	api := httpapi.New(httpapi.Options{Service: svc, Auth: authn, Logger: log, PublicURL: cfg.PublicURL})
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("listen: %w", err)
	}
	s := &Server{
		Addr: ln.Addr().String(), db: db, ln: ln, log: log, errCh: make(chan error, 1),
		http: &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second},
	}
	go func() {
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.errCh <- err
		}
		close(s.errCh)
	}()
	log.Info("networking API listening", "addr", s.Addr, "database", db.Dialect(), "auth", cfg.Auth)
	return s, nil
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
	return errors.Join(err, s.db.Close())
}

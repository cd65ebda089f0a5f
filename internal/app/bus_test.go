package app_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/neutrino-net/neutrino/internal/app"
	"github.com/neutrino-net/neutrino/internal/bus"
	"github.com/neutrino-net/neutrino/internal/bus/bustest"
	"github.com/neutrino-net/neutrino/internal/config"
)

// TestLocalAgentOverTLS: with bus_tls_cert the embedded bus listens for
// TLS, and what neutrino up hands its local agent (the pinned TLS
// configuration and the host's current token) connects.
func TestLocalAgentOverTLS(t *testing.T) {
	files := bustest.NewTLS(t)
	srv := start(t, "--bus-tls-cert", files.Cert, "--bus-tls-key", files.Key)
	if !strings.HasPrefix(srv.BusURL, "tls://") || srv.BusTLS == nil {
		t.Fatalf("bus %q, TLS %v", srv.BusURL, srv.BusTLS)
	}
	ctx := context.Background()
	token, err := srv.AgentToken(ctx, "local")
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	nc, err := bus.DialAgent(ctx, srv.BusURL, "local", token, quiet, nats.Secure(srv.BusTLS), nats.RetryOnFailedConnect(false))
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
	if _, err := bus.DialAgent(ctx, srv.BusURL, "local", token, quiet, nats.RetryOnFailedConnect(false)); err == nil {
		t.Fatal("an agent that cannot verify the bus's certificate connected")
	}
}

// TestPlaintextBusWarning: a bus beyond loopback without TLS is a warning
// at start; on loopback or with TLS it is not.
func TestPlaintextBusWarning(t *testing.T) {
	files := bustest.NewTLS(t)
	for _, tc := range []struct {
		flags []string
		warn  bool
	}{
		{[]string{"--bus-listen", "0.0.0.0:0"}, true},
		{[]string{"--bus-listen", "127.0.0.1:0"}, false},
		{[]string{"--bus-listen", "0.0.0.0:0", "--bus-tls-cert", files.Cert, "--bus-tls-key", files.Key}, false},
	} {
		args := append([]string{"--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--agent", "false"}, tc.flags...)
		cfg, err := config.Load("up", args, func(string) string { return "" })
		if err != nil {
			t.Fatal(err)
		}
		var logs bytes.Buffer
		srv, err := app.Start(context.Background(), cfg, slog.New(slog.NewTextHandler(&logs, nil)))
		if err != nil {
			t.Fatal(err)
		}
		srv.Close()
		if got := strings.Contains(logs.String(), "cross the network in clear"); got != tc.warn {
			t.Errorf("%v: warning %v, want %v:\n%s", tc.flags, got, tc.warn, logs.String())
		}
	}
}

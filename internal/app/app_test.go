package app_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/neutrino-net/neutrino/internal/app"
	"github.com/neutrino-net/neutrino/internal/config"
)

// start runs the real server (SQLite, noauth, embedded bus, no agent) with
// extra flags.
func start(t *testing.T, flags ...string) *app.Server {
	t.Helper()
	args := append([]string{"--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--bus-listen", "127.0.0.1:0",
		"--agent", "false", "--allow-automatic-l3agent-failover", "false"}, flags...)
	cfg, err := config.Load("up", args, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	srv, err := app.Start(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// closedWithin reports how long the server took to close c (reads return
// EOF or a reset), failing after limit.
func closedWithin(t *testing.T, c net.Conn, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	c.SetReadDeadline(start.Add(limit))
	buf := make([]byte, 4096)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue // a reply (the 400 of a cut-off body) before the close
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("the server kept the connection open for %s", limit)
		}
		return time.Since(start)
	}
}

// TestSlowClientsAreCut: a body that never completes and an idle
// keep-alive connection are both closed by the server.
func TestSlowClientsAreCut(t *testing.T) {
	srv := start(t, "--api-read-timeout", "300ms", "--api-idle-timeout", "300ms")

	c, err := net.Dial("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /v2.0/networks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"net")
	if d := closedWithin(t, c, 5*time.Second); d > 2*time.Second {
		t.Fatalf("a never-finished body held the connection %s", d)
	}

	c2, err := net.Dial("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	fmt.Fprintf(c2, "GET /v2.0/networks HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c2), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("keep-alive request: %v %v", resp, err)
	}
	io.Copy(io.Discard, resp.Body)
	if d := closedWithin(t, c2, 5*time.Second); d > 2*time.Second {
		t.Fatalf("an idle connection stayed %s", d)
	}
}

// TestPreHandlerErrorsAreJSON: what net/http refuses before any handler
// runs still answers with a NeutronError.
func TestPreHandlerErrorsAreJSON(t *testing.T) {
	srv := start(t, "--api-max-header-bytes", "4096")
	for _, tc := range []struct {
		name, request string
		status        int
		typ           string
	}{
		{"oversized header", "GET /v2.0/networks HTTP/1.1\r\nHost: x\r\nX-Auth-Token: " + strings.Repeat("t", 64<<10) + "\r\n\r\n",
			431, "HTTPRequestHeaderFieldsTooLarge"},
		{"no host", "GET /v2.0/networks HTTP/1.1\r\n\r\n", 400, "HTTPBadRequest"},
		{"garbage", "HELLO\r\n\r\n", 400, "HTTPBadRequest"},
		{"transfer encoding", "POST /v2.0/networks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501, "HTTPNotImplemented"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", srv.Addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			go io.WriteString(c, tc.request) // the server may answer before it has read it all
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct {
				NeutronError struct{ Type, Message, Detail string }
			}
			data, _ := io.ReadAll(resp.Body)
			if err := json.Unmarshal(data, &body); err != nil || resp.StatusCode != tc.status ||
				resp.Header.Get("Content-Type") != "application/json" || body.NeutronError.Type != tc.typ ||
				body.NeutronError.Message == "" {
				t.Fatalf("got %d %q %s, want %d with a %s NeutronError", resp.StatusCode, resp.Header.Get("Content-Type"), data, tc.status, tc.typ)
			}
		})
	}
	// Headers within the limit are served as usual.
	req, _ := http.NewRequest("GET", "http://"+srv.Addr+"/v2.0/networks", nil)
	req.Header.Set("X-Auth-Token", strings.Repeat("t", 2000))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("a normal request: %v %v", resp, err)
	}
	resp.Body.Close()
}

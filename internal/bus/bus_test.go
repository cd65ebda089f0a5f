package bus

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/neutrino-net/neutrino/internal/bus/bustest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func start(t *testing.T) (*Embedded, []byte) {
	t.Helper()
	secret := []byte("test-secret")
	e, err := StartEmbedded(EmbeddedOptions{Listen: "127.0.0.1:0", Secret: secret, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Shutdown)
	return e, secret
}

// TestAgentsUseOnlyTheirOwnSubjects: a token works for its host only, and
// an agent can neither publish as another host nor read another's hints.
func TestAgentsUseOnlyTheirOwnSubjects(t *testing.T) {
	e, secret := start(t)
	ctx := context.Background()
	if !strings.HasPrefix(e.URL(), "nats://127.0.0.1:") {
		t.Fatalf("url %q", e.URL())
	}
	srv, err := e.Connect(ServerUser, ServerToken(secret))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	// A token is good for its own host only; a forged one is refused, for
	// agents and for servers.
	if _, err := DialServer(ctx, e.URL(), "forged", quiet); err == nil {
		t.Fatal("a forged server token was accepted")
	}
	if _, err := DialAgent(ctx, e.URL(), "h2", AgentToken(secret, "h1"), quiet, nats.RetryOnFailedConnect(false)); err == nil {
		t.Fatal("h1's token let h2 in")
	}
	if _, err := DialAgent(ctx, e.URL(), "bad.host", "x", quiet); err == nil {
		t.Fatal("a host with a dot was accepted")
	}
	var mu sync.Mutex
	var denied []string
	h1, err := DialAgent(ctx, e.URL(), "h1", AgentToken(secret, "h1"), quiet, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		mu.Lock()
		denied = append(denied, err.Error())
		mu.Unlock()
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer h1.Close()

	// The server sees h1's heartbeat but not a heartbeat h1 forges for h2.
	beats, err := srv.SubscribeSync("neutrino.server.heartbeat.*")
	if err != nil {
		t.Fatal(err)
	}
	srv.Flush()
	h1.Publish(agentv1.HeartbeatSubject("h2"), []byte("forged"))
	h1.Publish(agentv1.HeartbeatSubject("h1"), []byte("real"))
	h1.Flush()
	m, err := beats.NextMsg(2 * time.Second)
	if err != nil || string(m.Data) != "real" || m.Subject != agentv1.HeartbeatSubject("h1") {
		t.Fatalf("first heartbeat = %v, %v", m, err)
	}
	if m, err := beats.NextMsg(200 * time.Millisecond); err == nil {
		t.Fatalf("forged heartbeat delivered: %s", m.Data)
	}
	// h1 cannot read h2's hints; its own arrive.
	if _, err := h1.SubscribeSync(agentv1.HintSubject("h2")); err != nil {
		t.Fatal(err)
	}
	own, _ := h1.SubscribeSync(agentv1.HintSubject("h1"))
	h1.Flush()
	srv.Publish(agentv1.HintSubject("h1"), []byte("mine"))
	if m, err := own.NextMsg(2 * time.Second); err != nil || string(m.Data) != "mine" {
		t.Fatalf("own hint = %v, %v", m, err)
	}
	// Request/reply through the host's own inbox works.
	srv.Subscribe(agentv1.SyncSubject("h1"), func(m *nats.Msg) { m.Respond([]byte("state")) })
	srv.Flush()
	reply, err := h1.Request(agentv1.SyncSubject("h1"), nil, 2*time.Second)
	if err != nil || string(reply.Data) != "state" {
		t.Fatalf("sync = %v, %v", reply, err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		mu.Lock()
		d := strings.Join(denied, "\n")
		mu.Unlock()
		if strings.Count(d, "Permissions Violation") >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("permission violations not reported: %q", d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestEmbeddedInProcessOnly(t *testing.T) {
	e, err := StartEmbedded(EmbeddedOptions{Secret: []byte("s"), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Shutdown()
	if e.URL() != "" {
		t.Fatalf("in-process server listens on %q", e.URL())
	}
	nc, err := e.Connect(ServerUser, ServerToken([]byte("s")))
	if err != nil {
		t.Fatalf("in-process server connection: %v", err)
	}
	nc.Close()
	if _, err := StartEmbedded(EmbeddedOptions{}); err == nil {
		t.Fatal("empty secret accepted")
	}
}

func startTLS(t *testing.T, gens Generations) (*Embedded, []byte, bustest.TLSFiles) {
	t.Helper()
	files := bustest.NewTLS(t)
	cfg, err := ServerTLS(files.Cert, files.Key)
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("test-secret")
	e, err := StartEmbedded(EmbeddedOptions{Listen: "127.0.0.1:0", Secret: secret, TLS: cfg, Generations: gens,
		RevocationCheck: 50 * time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Shutdown)
	return e, secret, files
}

// TestTLS: with a certificate the bus takes TLS only. An agent that trusts
// the CA connects and talks to the server; a plaintext client, a client
// that trusts another CA and one that trusts only the system's CAs are
// refused; the pinned configuration of an in-process agent trusts this
// server's certificate and no other.
func TestTLS(t *testing.T) {
	e, secret, files := startTLS(t, nil)
	ctx := context.Background()
	if !strings.HasPrefix(e.URL(), "tls://127.0.0.1:") {
		t.Fatalf("url %q", e.URL())
	}
	srv, err := e.Connect(ServerUser, ServerToken(secret)) // in-process: no TLS needed
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	beats, err := srv.SubscribeSync("neutrino.server.heartbeat.*")
	if err != nil {
		t.Fatal(err)
	}
	srv.Flush()

	caTLS, err := ClientTLS(files.CA)
	if err != nil {
		t.Fatal(err)
	}
	for name, cfg := range map[string]*tls.Config{"CA": caTLS, "pinned": e.AgentTLS()} {
		// The URL as agents are told it (tls://) and as they are often
		// configured (nats://): the server's INFO requires TLS either way.
		for _, url := range []string{e.URL(), strings.Replace(e.URL(), "tls://", "nats://", 1)} {
			h1, err := DialAgent(ctx, url, "h1", AgentToken(secret, "h1"), quiet, nats.Secure(cfg), nats.RetryOnFailedConnect(false))
			if err != nil {
				t.Fatalf("%s, %s: %v", name, url, err)
			}
			if !h1.TLSRequired() {
				t.Errorf("%s, %s: connection without TLS", name, url)
			}
			h1.Publish(agentv1.HeartbeatSubject("h1"), []byte(name))
			h1.Flush()
			if m, err := beats.NextMsg(2 * time.Second); err != nil || string(m.Data) != name {
				t.Fatalf("%s, %s: heartbeat = %v, %v", name, url, m, err)
			}
			h1.Close()
		}
	}

	other := bustest.NewTLS(t)
	otherTLS, err := ClientTLS(other.CA)
	if err != nil {
		t.Fatal(err)
	}
	for name, opts := range map[string][]nats.Option{
		"another CA":    {nats.Secure(otherTLS)},
		"system CAs":    nil,
		"no TLS config": {nats.Secure(&tls.Config{MinVersion: tls.VersionTLS12})},
	} {
		opts = append(opts, nats.RetryOnFailedConnect(false))
		if nc, err := DialAgent(ctx, e.URL(), "h1", AgentToken(secret, "h1"), quiet, opts...); err == nil {
			nc.Close()
			t.Errorf("%s: connected", name)
		} else if !strings.Contains(err.Error(), "certificate") {
			t.Errorf("%s: %v, want a certificate error", name, err)
		}
	}

	// A plaintext client speaks the protocol without TLS: the server
	// announces that TLS is required and never answers.
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(e.URL(), "tls://"), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	rd := bufio.NewReader(conn)
	info, err := rd.ReadString('\n')
	if err != nil || !strings.Contains(info, `"tls_required":true`) {
		t.Fatalf("INFO = %q, %v", info, err)
	}
	fmt.Fprintf(conn, "CONNECT {\"user\":\"agent:h1\",\"pass\":%q,\"verbose\":false,\"pedantic\":false}\r\nPING\r\n", AgentToken(secret, "h1"))
	rest, err := io.ReadAll(rd)
	if strings.Contains(string(rest), "PONG") || os.IsTimeout(err) {
		t.Fatalf("plaintext client: %q, %v; want the connection closed unanswered", rest, err)
	}

	// The pinned configuration refuses a server with another certificate.
	e2, _, _ := startTLS(t, nil)
	if nc, err := DialAgent(ctx, e2.URL(), "h1", AgentToken(secret, "h1"), quiet, nats.Secure(e.AgentTLS()), nats.RetryOnFailedConnect(false)); err == nil {
		nc.Close()
		t.Fatal("the pinned configuration trusted another server's certificate")
	}
	plain, _ := start(t)
	if plain.AgentTLS() != nil {
		t.Fatal("a server without TLS has an agent TLS configuration")
	}
}

// fakeGenerations is a Generations in memory.
type fakeGenerations struct {
	mu   sync.Mutex
	gens map[string]uint64
}

func (f *fakeGenerations) AgentTokenGeneration(_ context.Context, host string) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gens[host], nil
}

func (f *fakeGenerations) AgentTokenGenerations(context.Context) (map[string]uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.gens), nil
}

func (f *fakeGenerations) rotate(host string) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gens[host]++
	return f.gens[host]
}

// watch dials host and counts the connection's disconnections.
func watch(t *testing.T, e *Embedded, token, host string, tlsCfg *tls.Config) (*nats.Conn, *atomic.Int32) {
	t.Helper()
	var drops atomic.Int32
	nc, err := DialAgent(context.Background(), e.URL(), host, token, quiet, nats.Secure(tlsCfg), nats.RetryOnFailedConnect(false),
		nats.DisconnectErrHandler(func(*nats.Conn, error) { drops.Add(1) }))
	if err != nil {
		t.Fatalf("%s: %v", host, err)
	}
	t.Cleanup(nc.Close)
	return nc, &drops
}

// TestRotatedToken: after a host's token is rotated its old token is
// refused, the connection made with it is closed, and the new token works
// and stays connected; another host's connection is never touched.
func TestRotatedToken(t *testing.T) {
	gens := &fakeGenerations{gens: map[string]uint64{}}
	e, secret, _ := startTLS(t, gens)
	pin := e.AgentTLS()
	old, oldDrops := watch(t, e, AgentToken(secret, "h1"), "h1", pin)
	h2, h2Drops := watch(t, e, AgentToken(secret, "h2"), "h2", pin)

	gen := gens.rotate("h1")
	deadline := time.Now().Add(2 * time.Second)
	for oldDrops.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the connection with the rotated token is still up: %v", old.Status())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if old.IsConnected() {
		t.Fatalf("the rotated token reconnected: %v", old.Status())
	}
	if nc, err := DialAgent(context.Background(), e.URL(), "h1", AgentToken(secret, "h1"), quiet, nats.Secure(pin), nats.RetryOnFailedConnect(false)); err == nil {
		nc.Close()
		t.Fatal("the rotated token connected")
	}
	fresh, freshDrops := watch(t, e, AgentTokenAt(secret, "h1", gen), "h1", pin)
	time.Sleep(300 * time.Millisecond) // several revocation checks
	for _, c := range []struct {
		name, host string
		nc         *nats.Conn
		drops      *atomic.Int32
	}{{"new token", "h1", fresh, freshDrops}, {"h2", "h2", h2, h2Drops}} {
		if !c.nc.IsConnected() || c.drops.Load() != 0 {
			t.Errorf("%s: connected %v, %d disconnections", c.name, c.nc.IsConnected(), c.drops.Load())
		}
		if err := c.nc.Publish(agentv1.HeartbeatSubject(c.host), nil); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		if err := c.nc.FlushTimeout(2 * time.Second); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

// TestDeploymentDocListsAgentPermissions: the subject list in
// docs/deployment.md is the one AgentPermissions enforces.
func TestDeploymentDocListsAgentPermissions(t *testing.T) {
	doc, err := os.ReadFile("../../docs/deployment.md")
	if err != nil {
		t.Fatal(err)
	}
	const marker = "<!-- agent permissions: internal/bus TestDeploymentDocListsAgentPermissions checks this block -->"
	_, after, ok := strings.Cut(string(doc), marker)
	if !ok {
		t.Fatalf("docs/deployment.md lacks the marker %q", marker)
	}
	_, block, ok := strings.Cut(after, "```text\n")
	if ok {
		block, _, ok = strings.Cut(block, "```")
	}
	if !ok {
		t.Fatal("no ```text block after the marker")
	}
	p := AgentPermissions("<host>")
	if p.Publish.Deny != nil || p.Subscribe.Deny != nil || p.Response != nil {
		t.Fatalf("permissions the doc does not describe: %+v", p)
	}
	var want strings.Builder
	for _, s := range p.Publish.Allow {
		fmt.Fprintf(&want, "publish    %s\n", s)
	}
	for _, s := range p.Subscribe.Allow {
		fmt.Fprintf(&want, "subscribe  %s\n", s)
	}
	if block != want.String() {
		t.Fatalf("docs/deployment.md lists\n%s\nthe code enforces\n%s", block, want.String())
	}
}

// TestStale: a connection older than its host's generation is stale; one
// newer than the generations read (its host rotated meanwhile) is not; a
// closed one is forgotten.
func TestStale(t *testing.T) {
	a := &authenticator{conns: map[uint64]agentConn{
		1: {host: "h1", generation: 0}, 2: {host: "h1", generation: 2}, 3: {host: "h2", generation: 0}, 4: {host: "h3", generation: 0},
	}}
	got := a.stale(map[string]uint64{"h1": 1}, func(cid uint64) bool { return cid != 4 })
	if len(got) != 1 || got[1] != (agentConn{host: "h1", generation: 0}) {
		t.Fatalf("stale = %v", got)
	}
	if len(a.conns) != 2 || a.conns[2].generation != 2 || a.conns[3].host != "h2" {
		t.Fatalf("kept %v", a.conns)
	}
}

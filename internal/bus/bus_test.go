package bus

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/neutrino-net/neutrino/api/agentv1"
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

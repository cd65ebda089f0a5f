package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/neutrino-net/neutrino/internal/bus"
)

// TestAgentToken: agent-token prints the host's current token; --rotate
// prints the next generation's, which agent-token prints from then on,
// and leaves other hosts' tokens alone.
func TestAgentToken(t *testing.T) {
	dir := t.TempDir()
	token := func(args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		if err := run(append([]string{"agent-token", "--data-dir", dir}, args...), &out, &errOut); err != nil {
			t.Fatalf("agent-token %v: %v\n%s", args, err, errOut.String())
		}
		return strings.TrimSpace(out.String())
	}
	first := token("h1")
	data, err := os.ReadFile(filepath.Join(dir, "bus.secret"))
	if err != nil {
		t.Fatal(err)
	}
	secret := bytes.TrimSpace(data)
	if first != bus.AgentToken(secret, "h1") {
		t.Fatalf("token %q is not generation 0's", first)
	}
	rotated := token("--rotate", "h1")
	if rotated == first || rotated != bus.AgentTokenAt(secret, "h1", 1) {
		t.Fatalf("rotated token %q, want generation 1's", rotated)
	}
	if again := token("h1"); again != rotated {
		t.Fatalf("after the rotation agent-token prints %q, want %q", again, rotated)
	}
	if token("--rotate", "h1") != bus.AgentTokenAt(secret, "h1", 2) {
		t.Fatal("second rotation is not generation 2")
	}
	if token("h2") != bus.AgentToken(secret, "h2") {
		t.Fatal("h1's rotation changed h2's token")
	}
	for _, args := range [][]string{{"agent-token"}, {"agent-token", "bad.host"}, {"agent-token", "--nope", "h1"}} {
		if err := run(args, &bytes.Buffer{}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "usage: neutrino agent-token") {
			t.Errorf("%v: %v, want the usage", args, err)
		}
	}
}

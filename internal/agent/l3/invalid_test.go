package l3

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/neutrino-net/neutrino/api/agentv1"
)

// TestInvalidIsTerminal: what no retry can fix says so to the agent.
func TestInvalidIsTerminal(t *testing.T) {
	var term interface{ Terminal() bool }
	if err := validID("../etc"); !errors.As(err, &term) || !term.Terminal() {
		t.Fatalf("validID(../etc) = %v, want a terminal error", err)
	}
	r := agentv1.Router{ID: "r1", AdminStateUp: true, Routes: []agentv1.Route{{
		Destination: netip.MustParsePrefix("10.9.0.0/16"), NextHop: netip.MustParseAddr("2001:db8::1")}}}
	if _, err := desired(r, nil); err == nil {
		t.Fatal("a v4 route via a v6 next hop was accepted")
	}
	if err := validID("r1"); err != nil {
		t.Fatalf("validID(r1) = %v", err)
	}
}

package vmlab

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/neutrino-net/neutrino/internal/testenv"
)

// RequireGuests returns the lab for guests, or ends the test through
// testenv (a failure under CI): guests need root, TUN, Linux bridges (for
// the taps' other side), QEMU and the lab's kernel.
func RequireGuests(tb testing.TB) *Lab {
	tb.Helper()
	testenv.RequireKernel(tb, testenv.Bridge)
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		testenv.Missing(tb, "no /dev/net/tun (the tun module): %v", err)
	}
	return Require(tb)
}

// StartTestGuest boots a guest for a test (RequireGuests first), within
// three minutes; the guest is closed when the test ends, and its console
// is logged if the test failed.
func StartTestGuest(tb testing.TB, opts GuestOptions) *Guest {
	tb.Helper()
	l := RequireGuests(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	g, err := l.StartGuest(ctx, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("%s's console:\n%s", g.Name, g.Console())
		}
		g.Close()
	})
	tb.Logf("guest %s answered %s after start", g.Name, g.BootTime.Round(time.Millisecond))
	return g
}

package agent

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

type term struct{ error }

func (term) Terminal() bool { return true }

func TestIsTerminal(t *testing.T) {
	plain := errors.New("netlink: busy")
	bad := term{errors.New("invalid route")}
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{plain, false},
		{bad, true},
		{fmt.Errorf("router r1: %w", bad), true},
		{errors.Join(bad, term{errors.New("clash")}), true},
		{errors.Join(bad, plain), false}, // a retry may fix the other part
		{errors.Join(nil, fmt.Errorf("vpn: %w", bad)), true},
	} {
		if got := IsTerminal(tc.err); got != tc.want {
			t.Errorf("IsTerminal(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	var seq []time.Duration
	for d := time.Duration(0); len(seq) < 9; {
		d = next(d)
		seq = append(seq, d)
	}
	if seq[0] != 500*time.Millisecond || seq[1] != time.Second || seq[len(seq)-1] != 30*time.Second {
		t.Fatalf("backoff %v: want 0.5 s doubling to 30 s", seq)
	}
	seen := map[time.Duration]bool{}
	for range 1000 {
		j := jitter(time.Second)
		if j < 800*time.Millisecond || j >= 1200*time.Millisecond {
			t.Fatalf("jitter(1s) = %v, want within [0.8s, 1.2s)", j)
		}
		seen[j] = true
	}
	if len(seen) < 100 {
		t.Fatalf("jitter gave %d distinct values in 1000, want spread", len(seen))
	}
}

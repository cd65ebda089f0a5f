package strongswan

import (
	"errors"
	"testing"
)

// TestRefusalsAreTyped: a real charon's refusals of unload and terminate
// for what is not loaded are ErrGone; a refusal of something else is a
// *CommandError that is not.
func TestRefusalsAreTyped(t *testing.T) {
	needCharon(t)
	base := t.TempDir()
	d := newRouter(t, base, "r1").start(t)
	sess := d.Client()
	for _, tc := range []struct {
		cmd  string
		in   []any
		gone bool
	}{
		{"unload-conn", []any{"name", "never-loaded"}, true},
		{"terminate", []any{"ike-id", "4242", "timeout", "-1"}, true},
		{"initiate", []any{"child", "never-loaded", "timeout", "-1"}, true},
		{"load-shared", []any{"type", "bogus", "data", "x"}, false},
	} {
		_, err := call(t.Context(), sess, tc.cmd, msg(tc.in...))
		var ce *CommandError
		if !errors.As(err, &ce) || ce.Cmd != tc.cmd || ce.Msg == "" {
			t.Fatalf("%s: got %v, want a *CommandError with charon's message", tc.cmd, err)
		}
		t.Logf("%s: %s", tc.cmd, ce.Msg)
		if errors.Is(err, ErrGone) != tc.gone {
			t.Errorf("%s: %q: errors.Is(ErrGone) = %v, want %v", tc.cmd, ce.Msg, !tc.gone, tc.gone)
		}
	}
}

package testenv

import (
	"fmt"
	"testing"
)

// recorder is a testing.TB that records how a test ended.
type recorder struct {
	testing.TB
	ended string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.ended = "fail: " + fmt.Sprintf(format, args...)
}
func (r *recorder) Skip(args ...any) { r.ended = "skip: " + fmt.Sprint(args...) }

func TestMissingFailsUnderCI(t *testing.T) {
	for _, tc := range []struct {
		ci, want string
	}{
		{"true", "fail: requirement missing under CI=true (a skip would hide this test): no frob 7"},
		{"1", "fail: requirement missing under CI=true (a skip would hide this test): no frob 7"},
		{"", "skip: no frob 7"},
		{"false", "skip: no frob 7"},
	} {
		t.Setenv("CI", tc.ci)
		t.Setenv("NEUTRINO_REQUIRE_ALL", "")
		r := &recorder{TB: t}
		Missing(r, "no frob %d", 7)
		if r.ended != tc.want {
			t.Errorf("CI=%q: got %q, want %q", tc.ci, r.ended, tc.want)
		}
	}
}

func TestRequirePostgresUnset(t *testing.T) {
	t.Setenv("CI", "true")
	t.Setenv(EnvPostgres, "")
	r := &recorder{TB: t}
	RequirePostgres(r)
	if r.ended == "" || r.ended[:5] != "fail:" {
		t.Fatalf("an unset %s under CI must fail, got %q", EnvPostgres, r.ended)
	}
}

// TestProbes: the basics every data-plane test needs are there (as root),
// and each probe answers the same twice.
func TestProbes(t *testing.T) {
	RequireKernel(t, Bridge, Veth)
	for _, f := range []Feature{Netns, Bridge, Veth, VXLAN, Macvlan, IPVLAN, VLAN, NFTNAT, ESP, Mounting, TCBPF} {
		first := Probe(f)
		if again := Probe(f); fmt.Sprint(again) != fmt.Sprint(first) {
			t.Errorf("%s: probe changed its answer: %v then %v", f, first, again)
		}
		t.Logf("%-26s %v", f, first)
	}
	for _, f := range []Feature{Netns, Bridge, Veth, NFTNAT} {
		if err := Probe(f); err != nil {
			t.Errorf("%s missing on a kernel that passed RequireKernel: %v", f, err)
		}
	}
}

package cni

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLoadConf(t *testing.T) {
	good := `{"cniVersion":"1.1.0","name":"pods","type":"neutrino-cni","endpoint":"http://api:9696","auth":{"type":"noauth","projectId":"p1"}}`
	c, err := LoadConf([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if c.Mode != ModeMacvlan || c.IPvlanMode != "l2" || c.StateDir != DefaultStateDir || c.Auth.Roles != "member" || c.TimeoutSeconds != 30 {
		t.Fatalf("defaults = %+v", c)
	}
	for _, tc := range []struct{ name, conf, want string }{
		{"mode", `{"name":"n","endpoint":"http://a","mode":"bridge","auth":{"projectId":"p"}}`, `mode "bridge"`},
		{"ipvlan mode", `{"name":"n","endpoint":"http://a","mode":"ipvlan","ipvlanMode":"l3s","auth":{"projectId":"p"}}`, `ipvlanMode "l3s"`},
		{"no project", `{"name":"n","endpoint":"http://a"}`, "noauth needs projectId"},
		{"token file", `{"name":"n","endpoint":"http://a","auth":{"type":"token"}}`, "needs tokenFile"},
		{"cloud", `{"name":"n","auth":{"type":"cloud"}}`, "needs cloud"},
		{"no endpoint", `{"name":"n","auth":{"projectId":"p"}}`, "endpoint is required"},
		{"endpoint scheme", `{"name":"n","endpoint":"ftp://a","auth":{"projectId":"p"}}`, "want http://"},
		{"groups", `{"name":"n","endpoint":"http://a","securityGroups":["g"],"auth":{"projectId":"p"}}`, "trunk mode only"},
		{"name", `{"name":"a/b","endpoint":"http://a","auth":{"projectId":"p"}}`, "network name"},
		{"json", `{"name":`, "parse network configuration"},
	} {
		_, err := LoadConf([]byte(tc.conf))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
	// A cloud needs no endpoint: the catalog has it.
	if _, err := LoadConf([]byte(`{"name":"n","auth":{"type":"cloud","cloud":"c"}}`)); err != nil {
		t.Errorf("cloud without endpoint: %v", err)
	}
}

func TestPortNames(t *testing.T) {
	a := Attachment{ContainerID: strings.Repeat("f", 64), IfName: "eth0"}
	name := portName("pods", a)
	if len(name) > 255 {
		t.Fatalf("name too long: %d", len(name))
	}
	if got, ok := parsePortName("pods", name); !ok || got != a {
		t.Fatalf("parse(%q) = %+v %v", name, got, ok)
	}
	for _, bad := range []string{"cni/other/" + a.ContainerID + "/eth0", "cni/pods/x", "cni/pods//eth0", "cni/pods/x/a/b", "vm-1"} {
		if _, ok := parsePortName("pods", bad); ok {
			t.Errorf("parse(%q) accepted", bad)
		}
	}
	if got := vmPortOf(marker("port-1", "pods")); got != "port-1" {
		t.Errorf("vmPortOf = %q", got)
	}
}

func TestPairs(t *testing.T) {
	ps := []Pair{{IP: "10.0.0.5", MAC: "fa:16:3e:00:00:01"}}
	got, changed := withPair(ps, Pair{IP: "10.0.0.6", MAC: "fa:16:3e:00:00:02"})
	if !changed || len(got) != 2 || len(ps) != 1 {
		t.Fatalf("add = %v %v (input %v)", got, changed, ps)
	}
	if _, changed := withPair(got, Pair{IP: "10.0.0.6/32", MAC: "FA:16:3E:00:00:02"}); changed {
		t.Errorf("the same pair again changed the list")
	}
	moved, changed := withPair(got, Pair{IP: "10.0.0.6", MAC: "fa:16:3e:00:00:03"})
	if !changed || len(moved) != 2 || moved[1].MAC != "fa:16:3e:00:00:03" {
		t.Errorf("new MAC for an address = %v %v", moved, changed)
	}
	left, changed := withoutPair(moved, "10.0.0.5")
	if !changed || !slices.Equal(left, []Pair{{IP: "10.0.0.6", MAC: "fa:16:3e:00:00:03"}}) {
		t.Errorf("remove = %v %v", left, changed)
	}
	if _, changed := withoutPair(left, "10.0.0.5"); changed {
		t.Errorf("removing an absent pair changed the list")
	}
	// A CIDR pair is not one container's address.
	if _, changed := withoutPair([]Pair{{IP: "10.0.0.0/24"}}, "10.0.0.0"); changed {
		t.Errorf("a /24 pair was taken for a container address")
	}
}

func TestFreeVLAN(t *testing.T) {
	if got := freeVLAN(nil); got != 1 {
		t.Errorf("free of none = %d", got)
	}
	if got := freeVLAN([]int{1, 2, 4}); got != 3 {
		t.Errorf("free of 1,2,4 = %d", got)
	}
	all := make([]int, 4094)
	for i := range all {
		all[i] = i + 1
	}
	if got := freeVLAN(all); got != 0 {
		t.Errorf("free of all = %d", got)
	}
}

func TestOrphans(t *testing.T) {
	ports := map[string]string{
		"p1": portName("pods", Attachment{"c1", "eth0"}),
		"p2": portName("pods", Attachment{"c2", "eth0"}),
		"p3": portName("pods", Attachment{"c1", "net1"}),
		"p4": portName("other", Attachment{"c9", "eth0"}), // another network's: never touched
		"p5": "hand-made",
	}
	got := orphans("pods", ports, []Attachment{{"c1", "eth0"}})
	if !slices.Equal(got, []string{"p2", "p3"}) {
		t.Fatalf("orphans = %v", got)
	}
}

func TestReadToken(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/token"
	if err := os.WriteFile(path, []byte("gAAAA-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if tok, err := readToken(path); err != nil || tok != "gAAAA-secret" {
		t.Fatalf("readToken = %q, %v", tok, err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := readToken(path)
	if err == nil || !strings.Contains(err.Error(), "readable by others") || strings.Contains(err.Error(), "secret") {
		t.Fatalf("a world-readable token file: %v", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readToken(path); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("an empty token file: %v", err)
	}
}

func TestFlockWaitsThenGivesUp(t *testing.T) {
	path := t.TempDir() + "/lock"
	a, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.OpenFile(path, os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := flock(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := flock(ctx, b); err == nil || !strings.Contains(err.Error(), "holds it") {
		t.Fatalf("second lock while held: %v", err)
	}
	a.Close() // releases it
	if err := flock(context.Background(), b); err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	b.Close()
}

package libreswan

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/neutrino-net/neutrino/internal/namespace"
	"github.com/neutrino-net/neutrino/internal/testenv"
)

// newNetns creates a named namespace with lo up.
func newNetns(t *testing.T, base, name string) (string, netns.NsHandle) {
	t.Helper()
	path := filepath.Join(base, "netns", name)
	if err := namespace.CreateNamed(path); err != nil {
		t.Fatalf("create netns %s: %v", name, err)
	}
	t.Cleanup(func() { namespace.RemoveNamed(path) })
	ns, err := netns.GetFromPath(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	err = namespace.Do(ns, func() error {
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		return netlink.LinkSetUp(lo)
	})
	if err != nil {
		t.Fatal(err)
	}
	return path, ns
}

// wire links namespaces a and b with a veth "wan0" on each side and
// gives them 198.51.100.1/24 and .2/24.
func wire(t *testing.T, a, b netns.NsHandle) {
	t.Helper()
	err := namespace.Do(a, func() error {
		return netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "wan0"},
			PeerName: "wan0", PeerNamespace: netlink.NsFd(int(b))})
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, ns := range []netns.NsHandle{a, b} {
		err := namespace.Do(ns, func() error {
			l, err := netlink.LinkByName("wan0")
			if err != nil {
				return err
			}
			addr, _ := netlink.ParseAddr(fmt.Sprintf("198.51.100.%d/24", i+1))
			if err := netlink.AddrAdd(l, addr); err != nil {
				return err
			}
			return netlink.LinkSetUp(l)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func startPluto(t *testing.T, root, dir, nsPath string) *Pluto {
	t.Helper()
	p, err := Start(context.Background(), Options{Dir: dir, Root: root, Netns: nsPath})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return p
}

const testConn = `conn %[1]s
	left=%[2]s
	leftid=@%[1]s-left
	leftsubnet=10.1.0.0/24
	right=192.0.2.99
	rightid=@%[1]s-right
	rightsubnet=10.2.0.0/24
	authby=secret
	ikev2=insist
	ike=aes256-sha2_256;modp2048
	phase2alg=aes256-sha2_256;modp2048
	auto=add
`

// TestTwoPlutosSeparate starts two plutos in two network namespaces and
// checks that nothing is shared: their own pids, sockets, NSS databases,
// logs and listening addresses; a connection loaded into one is unknown
// to the other; stopping one leaves the other running. It needs no ESP:
// no SA is negotiated.
func TestTwoPlutosSeparate(t *testing.T) {
	root := testenv.RequireLibreswan(t)
	testenv.RequireKernel(t, testenv.Mounting)
	ver, err := Find(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s from %s", ver, root)
	base := t.TempDir()
	nsA, hA := newNetns(t, base, "a")
	nsB, hB := newNetns(t, base, "b")
	wire(t, hA, hB)
	a := startPluto(t, root, filepath.Join(base, "a"), nsA)
	b := startPluto(t, root, filepath.Join(base, "b"), nsB)
	if a.Pid() == b.Pid() || a.Socket() == b.Socket() {
		t.Fatalf("shared process or socket: %d %s / %d %s", a.Pid(), a.Socket(), b.Pid(), b.Socket())
	}
	ctx := context.Background()
	for _, p := range []*Pluto{a, b} {
		for _, f := range []string{"nss/cert9.db", CtlSocket, PidFile, LogFile} {
			if _, err := os.Stat(filepath.Join(p.Dir(), f)); err != nil {
				t.Errorf("pluto %d: %v", p.Pid(), err)
			}
		}
		if fi, err := os.Stat(filepath.Join(p.Dir(), SecretsFile)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("secrets file: %v %v", fi, err)
		}
	}
	// Each listens on its own namespace's address only.
	for _, c := range []struct {
		p         *Pluto
		own, peer string
	}{{a, "198.51.100.1:500", "198.51.100.2"}, {b, "198.51.100.2:500", "198.51.100.1"}} {
		st, err := c.p.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(st, "interface wan0 UDP "+c.own) || strings.Contains(st, c.peer) {
			t.Errorf("pluto %d's interfaces:\n%s", c.p.Pid(), st)
		}
	}
	conf := strings.ReplaceAll(strings.ReplaceAll(testConn, "%[1]s", "only-a"), "%[2]s", "198.51.100.1")
	if err := a.Load(ctx, "only-a", conf, `@only-a-left @only-a-right : PSK "test-psk-a"`+"\n"); err != nil {
		t.Fatal(err)
	}
	sa, err := a.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := b.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sa, `"only-a":`) {
		t.Errorf("pluto a does not show its connection:\n%s", sa)
	}
	if strings.Contains(sb, "only-a") {
		t.Errorf("pluto b shows a's connection:\n%s", sb)
	}
	// Replace: loading again keeps one connection of that name.
	if err := a.Load(ctx, "only-a", strings.ReplaceAll(conf, "aes256", "aes128"), `@only-a-left @only-a-right : PSK "test-psk-a2"`+"\n"); err != nil {
		t.Fatal(err)
	}
	if sa, _ = a.Status(ctx); !strings.Contains(sa, "AES_CBC_128") || strings.Contains(sa, "AES_CBC_256") {
		t.Errorf("replaced connection:\n%s", sa)
	}
	// A bad config is an error, not a silent no-op.
	if err := a.Load(ctx, "broken", "conn broken\n\tleft=198.51.100.1\n\tright=192.0.2.1\n\tike=nonsense-cipher\n\tauthby=secret\n", ""); err == nil {
		t.Error("addconn accepted ike=nonsense-cipher")
	} else {
		t.Logf("bad config: %v", err)
		if !strings.Contains(err.Error(), "nonsense") {
			t.Errorf("the error does not say what is wrong: %v", err)
		}
	}
	if err := a.Delete(ctx, "only-a"); err != nil {
		t.Fatal(err)
	}
	if sa, _ = a.Status(ctx); strings.Contains(sa, `"only-a"`) {
		t.Errorf("deleted connection still there:\n%s", sa)
	}

	if err := a.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if a.Alive() || !b.Alive() {
		t.Fatalf("after stopping a: a alive %v, b alive %v", a.Alive(), b.Alive())
	}
	if _, err := b.BriefStatus(ctx); err != nil {
		t.Fatalf("pluto b after a stopped: %v", err)
	}
	if _, err := os.Stat(a.Socket()); err == nil {
		t.Error("a's socket left behind")
	}
}

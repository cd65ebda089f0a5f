// Package nstest holds what the tests that build network namespaces
// share (the end-to-end tests and the benchmarks).
package nstest

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/neutrino-net/neutrino/internal/namespace"
	"github.com/neutrino-net/neutrino/internal/testenv"
)

// Dir returns an empty directory where namespaces can be bind-mounted, as
// a NetnsDir: a temporary one when bind mounts work there, else a fresh
// one named prefix-<random> under /run. Without one the test ends
// (testenv.Missing). The returned function removes the /run one.
func Dir(tb testing.TB, prefix string) (string, func()) {
	tb.Helper()
	dir := tb.TempDir()
	probe := filepath.Join(dir, ".probe")
	if err := os.WriteFile(probe, nil, 0o600); err == nil {
		err := unix.Mount("/proc/self/ns/net", probe, "", unix.MS_BIND, "")
		_ = unix.Unmount(probe, unix.MNT_DETACH)
		_ = os.Remove(probe)
		if err == nil {
			return dir, func() {}
		}
	}
	dir = fmt.Sprintf("/run/%s-%08x", prefix, rand.Uint32())
	if err := os.Mkdir(dir, 0o700); err != nil {
		testenv.Missing(tb, "no directory for namespaces: %v", err)
	}
	return dir, func() { _ = os.RemoveAll(dir) }
}

// VM makes a namespace standing for a VM and bind-mounts it at dir/name,
// as `ip netns add` would; the caller closes the handle and removes the
// mount (Clear).
func VM(tb testing.TB, dir, name string) (netns.NsHandle, string) {
	tb.Helper()
	ns, err := namespace.New()
	if err != nil {
		tb.Fatalf("vm %s: %v", name, err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, nil, 0o444); err != nil {
		ns.Close()
		tb.Fatal(err)
	}
	if err := unix.Mount(fmt.Sprintf("/proc/self/fd/%d", int(ns)), path, "", unix.MS_BIND, ""); err != nil {
		ns.Close()
		tb.Fatalf("bind namespace to %s: %v", path, err)
	}
	return ns, path
}

// Clear unmounts and removes whatever is in a NetnsDir (VMs, router
// namespaces an agent failed to delete). The kernel destroys a namespace,
// with its links, when its last reference goes.
func Clear(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, ent := range entries {
		p := filepath.Join(dir, ent.Name())
		_ = unix.Unmount(p, unix.MNT_DETACH)
		_ = os.Remove(p)
	}
}

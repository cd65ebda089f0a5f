package namespace_test

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/neutrino-net/neutrino/internal/namespace"
	"github.com/neutrino-net/neutrino/internal/testenv"
)

// TestPrepareDir: after PrepareDir, an iproute2-style shared
// bind of the directory (what `ip netns add` does) no longer stacks over
// router namespaces, so they stay removable.
func TestPrepareDir(t *testing.T) {
	testenv.RequireKernel(t, testenv.Mounting)
	dir := filepath.Join(t.TempDir(), "netns")
	if err := namespace.PrepareDir(dir); err != nil {
		testenv.Missing(t, "cannot make a shared mount here: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	if err := namespace.PrepareDir(dir); err != nil { // idempotent
		t.Fatal(err)
	}
	path := filepath.Join(dir, "qrouter-test")
	if err := namespace.CreateNamed(path); err != nil {
		t.Fatal(err)
	}
	// What `ip netns add` does to its directory when it is already a mount.
	if err := unix.Mount("", dir, "none", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		t.Fatal(err)
	}
	if err := namespace.RemoveNamed(path); err != nil {
		t.Fatalf("remove after a second shared mount: %v", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("namespace file still there: %v", err)
	}
}

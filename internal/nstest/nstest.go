// Package nstest holds what the tests that build network namespaces
// share (the end-to-end tests and the benchmarks).
package nstest

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

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

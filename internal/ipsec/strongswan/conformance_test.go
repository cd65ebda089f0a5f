package strongswan

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/neutrino-net/neutrino/internal/ipsec/drivertest"
	"github.com/neutrino-net/neutrino/internal/testenv"
)

// TestConformance runs the device driver conformance suite against real
// charons in router namespaces (libipsec: the host's kernel has no ESP).
func TestConformance(t *testing.T) {
	charon := testenv.RequireCharon(t)
	drivertest.Run(t, drivertest.Setup{
		Driver: DriverName,
		New: func(t *testing.T, env drivertest.Env) drivertest.Driver {
			d, err := NewDriver(DriverOptions{StateDir: filepath.Join(env.StateDir, "ipsec"), NetnsDir: env.NetnsDir,
				DataPlane: DataPlaneLibipsec, Charon: charon, Logger: env.Logger, OnChange: env.OnChange, Poll: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			return d
		},
		RouterDir: func(env drivertest.Env, id string) string { return filepath.Join(env.StateDir, "ipsec", id) },
	})
}

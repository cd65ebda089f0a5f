package libreswan

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/neutrino-net/neutrino/internal/ipsec/drivertest"
	"github.com/neutrino-net/neutrino/internal/testenv"
)

// TestConformance runs the device driver conformance suite against real
// plutos in router namespaces (the host's kernel needs no ESP for it).
func TestConformance(t *testing.T) {
	root := testenv.RequireLibreswan(t)
	drivertest.Run(t, drivertest.Setup{
		Driver: DriverName,
		New: func(t *testing.T, env drivertest.Env) drivertest.Driver {
			d, err := NewDriver(DriverOptions{StateDir: filepath.Join(env.StateDir, "libreswan"), NetnsDir: env.NetnsDir,
				Root: root, Logger: env.Logger, OnChange: env.OnChange, Poll: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			return d
		},
		RouterDir: func(env drivertest.Env, id string) string { return filepath.Join(env.StateDir, "libreswan", id) },
	})
}

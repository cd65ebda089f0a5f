package libreswan

import (
	"os"
	"path/filepath"
	"strings"
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

// TestNoServicesTouchesNothing: the agent calls every driver for every
// router; a router without Libreswan services costs nothing and cannot
// fail, however long the state dir's path.
func TestNoServicesTouchesNothing(t *testing.T) {
	state := filepath.Join(t.TempDir(), strings.Repeat("long-", 20))
	d, err := NewDriver(DriverOptions{StateDir: state, NetnsDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	const id = "a70e16cb-fc22-4351-a256-fb571e312941"
	for i := 0; i < 2; i++ {
		if err := d.Apply(t.Context(), id, nil); err != nil {
			t.Fatalf("apply none: %v", err)
		}
	}
	if err := d.Delete(t.Context(), id); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if entries, _ := os.ReadDir(state); len(entries) != 0 {
		t.Errorf("state dir holds %d entries for a router without services", len(entries))
	}
	if st := d.Status(id); len(st) != 0 {
		t.Errorf("status %v", st)
	}
}

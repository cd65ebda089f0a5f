package drivertest

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/neutrino-net/neutrino/internal/ipsec/libreswan"
	"github.com/neutrino-net/neutrino/internal/ipsec/strongswan"
	"github.com/neutrino-net/neutrino/internal/testenv"
)

// TestShared: both drivers on one agent, as node builds
// them: a strongSwan router and a Libreswan router side by side, each
// with its own daemon and dir, and both collectors in one registry (the
// per-connection families they share must agree in help and labels).
func TestShared(t *testing.T) {
	charon := testenv.RequireCharon(t)
	root := testenv.RequireLibreswan(t)
	base := t.TempDir()
	netnsDir, state := filepath.Join(base, "netns"), filepath.Join(base, "state")
	topology(t, netnsDir)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	sw, err := strongswan.NewDriver(strongswan.DriverOptions{StateDir: filepath.Join(state, "ipsec"), NetnsDir: netnsDir,
		DataPlane: strongswan.DataPlaneLibipsec, Charon: charon, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ls, err := libreswan.NewDriver(libreswan.DriverOptions{StateDir: filepath.Join(state, "libreswan"), NetnsDir: netnsDir,
		Root: root, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	defer func() {
		sw.Delete(ctx, Moon)
		ls.Delete(ctx, Sun)
		sw.Close()
		ls.Close()
	}()
	swSetup, lsSetup := Setup{Driver: strongswan.DriverName}, Setup{Driver: libreswan.DriverName}
	moonSvc := swSetup.service("51000000-0000-4000-8000-000000000001", moon, conn("c1000000-0000-4000-8000-000000000001", moon, sun, "k"))
	sunSvc := lsSetup.service("52000000-0000-4000-8000-000000000002", sun, conn("c2000000-0000-4000-8000-000000000002", sun, moon, "k"))
	// The agent hands each driver its own services; the other gets none.
	for _, step := range []struct {
		d   Driver
		id  string
		svc []agentv1.VPNService
	}{{sw, Moon, []agentv1.VPNService{moonSvc}}, {ls, Moon, nil}, {ls, Sun, []agentv1.VPNService{sunSvc}}, {sw, Sun, nil}} {
		if err := step.d.Apply(ctx, step.id, step.svc); err != nil {
			t.Fatalf("apply %s: %v", step.id, err)
		}
	}
	if sw.Pid(Moon) == 0 || ls.Pid(Sun) == 0 || sw.Pid(Sun) != 0 || ls.Pid(Moon) != 0 {
		t.Fatalf("charon moon %d sun %d, pluto moon %d sun %d: want a charon on moon and a pluto on sun only",
			sw.Pid(Moon), sw.Pid(Sun), ls.Pid(Moon), ls.Pid(Sun))
	}
	reg := prometheus.NewPedanticRegistry()
	for _, c := range []prometheus.Collector{sw, ls} {
		if err := reg.Register(c); err != nil {
			t.Fatalf("register: %v", err)
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather both drivers: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "neutrino_vpn_connection_up" && len(mf.GetMetric()) != 2 {
			t.Errorf("neutrino_vpn_connection_up: %d series, want one per driver's connection", len(mf.GetMetric()))
		}
	}
}

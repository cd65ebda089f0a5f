package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/neutrino-net/neutrino/internal/auth"
	"github.com/neutrino-net/neutrino/internal/httpapi"
	"github.com/neutrino-net/neutrino/internal/model"
	"github.com/neutrino-net/neutrino/internal/service"
	"github.com/neutrino-net/neutrino/internal/store/sqlstore/sqltest"
	"github.com/neutrino-net/neutrino/internal/testenv"
)

// osVars are the variables resolveAPI reads; each test starts with none.
var osVars = []string{"OS_CLOUD", "OS_CLIENT_CONFIG_FILE", "OS_AUTH_URL", "OS_USERNAME", "OS_USER_ID", "OS_PASSWORD",
	"OS_PROJECT_NAME", "OS_PROJECT_ID", "OS_USER_DOMAIN_NAME", "OS_USER_DOMAIN_ID", "OS_PROJECT_DOMAIN_NAME",
	"OS_PROJECT_DOMAIN_ID", "OS_DOMAIN_NAME", "OS_DOMAIN_ID", "OS_TOKEN", "OS_ENDPOINT", "OS_AUTH_TYPE",
	"OS_REGION_NAME", "OS_INTERFACE", "NEUTRINO_API"}

func clearOSEnv(t *testing.T) {
	t.Helper()
	for _, k := range osVars {
		t.Setenv(k, "")
	}
	// No clouds.yaml of the machine's may leak in.
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	t.Chdir(home)
}

// plugServer is an API with authn in front of a fresh store, with one
// port (created by the service as admin).
func plugServer(t *testing.T, authn auth.Authenticator) (*service.Service, string, string) {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := service.New(sqltest.Open(t, "sqlite"), service.Options{Logger: quiet})
	srv := httptest.NewServer(httpapi.New(httpapi.Options{Service: svc, Auth: authn, Logger: quiet}))
	t.Cleanup(srv.Close)
	ctx := adminCtx()
	n, err := svc.CreateNetwork(ctx, model.Network{Name: "n", AdminStateUp: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := svc.CreatePort(ctx, service.PortCreate{Port: model.Port{NetworkID: n.ID, AdminStateUp: true}})
	if err != nil {
		t.Fatal(err)
	}
	return svc, srv.URL, p.ID
}

// wantBound checks the port's binding after a plug (host "" after unplug).
func wantBound(t *testing.T, svc *service.Service, port, host string) {
	t.Helper()
	p, err := svc.GetPort(adminCtx(), port)
	if err != nil {
		t.Fatal(err)
	}
	if p.BindingHostID != host {
		t.Fatalf("binding:host_id = %q, want %q", p.BindingHostID, host)
	}
}

// TestPortPlugNoauthEnv: as the openstack CLI without Keystone,
// OS_AUTH_TYPE=none and OS_ENDPOINT name the API; --api still wins.
func TestPortPlugNoauthEnv(t *testing.T) {
	clearOSEnv(t)
	svc, url, port := plugServer(t, auth.NoAuth{})
	var out bytes.Buffer
	ctx := context.Background()
	t.Setenv("OS_AUTH_TYPE", "none")
	t.Setenv("OS_ENDPOINT", url)
	if err := portPlug(ctx, []string{port, "--netns", "vm1", "--host", "node-1", "--wait", "0"}, &out, true); err != nil {
		t.Fatal(err)
	}
	wantBound(t, svc, port, "node-1")
	t.Setenv("OS_ENDPOINT", "http://127.0.0.1:1") // nothing listens there
	if err := portPlug(ctx, []string{port, "--api", url}, &out, false); err != nil {
		t.Fatalf("--api over OS_ENDPOINT: %v", err)
	}
	wantBound(t, svc, port, "")
	if err := portPlug(ctx, []string{port}, &out, false); err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("unplug against a dead OS_ENDPOINT: %v", err)
	}
}

// TestPortPlugKeystone authenticates port plug and unplug against the real
// Keystone the suite uses: OS_* password credentials, clouds.yaml (with
// the password in secure.yaml), a raw OS_TOKEN, and the catalog's network
// endpoint when none is named.
func TestPortPlugKeystone(t *testing.T) {
	ksURL := testenv.RequireKeystone(t)
	clearOSEnv(t)
	svc, url, port := plugServer(t, auth.NewKeystone(ksURL, time.Minute))
	ctx := context.Background()
	var out bytes.Buffer

	// Without credentials the API refuses, and says so.
	t.Setenv("OS_ENDPOINT", url)
	if err := portPlug(ctx, []string{port, "--netns", "vm1", "--host", "node-1", "--wait", "0"}, &out, true); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("plug without credentials: %v", err)
	}
	wantBound(t, svc, port, "")

	// OS_* variables, as an openrc file sets them.
	for k, v := range map[string]string{"OS_AUTH_URL": ksURL, "OS_USERNAME": "admin", "OS_PASSWORD": "adminpass",
		"OS_PROJECT_NAME": "admin", "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default"} {
		t.Setenv(k, v)
	}
	if err := portPlug(ctx, []string{port, "--netns", "vm1", "--host", "node-1", "--wait", "0"}, &out, true); err != nil {
		t.Fatalf("plug with OS_* credentials: %v", err)
	}
	wantBound(t, svc, port, "node-1")
	t.Setenv("OS_PASSWORD", "wrong-secret-73")
	err := portPlug(ctx, []string{port}, &out, false)
	if err == nil || !strings.Contains(err.Error(), "keystone authentication") || strings.Contains(err.Error(), "wrong-secret-73") {
		t.Fatalf("unplug with a wrong password: %v", err)
	}
	wantBound(t, svc, port, "node-1")
	for _, k := range osVars {
		if k != "OS_ENDPOINT" {
			t.Setenv(k, "")
		}
	}

	// clouds.yaml in ~/.config/openstack, the password in secure.yaml.
	dir := filepath.Join(os.Getenv("XDG_CONFIG_HOME"), "openstack")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "clouds.yaml"), "clouds:\n  lab:\n    auth:\n      auth_url: "+ksURL+
		"\n      username: admin\n      project_name: admin\n      user_domain_name: Default\n      project_domain_name: Default\n    region_name: RegionOne\n")
	writeFile(t, filepath.Join(dir, "secure.yaml"), "clouds:\n  lab:\n    auth:\n      password: adminpass\n")
	t.Setenv("OS_CLOUD", "lab")
	if err := portPlug(ctx, []string{port}, &out, false); err != nil {
		t.Fatalf("unplug with OS_CLOUD: %v", err)
	}
	wantBound(t, svc, port, "")
	t.Setenv("OS_CLOUD", "")
	if err := portPlug(ctx, []string{port, "--os-cloud", "lab", "--netns", "vm2", "--host", "node-2", "--wait", "0"}, &out, true); err != nil {
		t.Fatalf("plug with --os-cloud: %v", err)
	}
	wantBound(t, svc, port, "node-2")
	if err := portPlug(ctx, []string{port, "--os-cloud", "nope"}, &out, false); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Fatalf("unknown cloud: %v", err)
	}

	// Without an endpoint, the catalog's network endpoint is the API.
	t.Setenv("OS_ENDPOINT", "")
	target, err := resolveAPI(ctx, clientAuth{cloud: "lab"}, os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	if target.base != "http://127.0.0.1:9696" || target.token == "" {
		t.Fatalf("catalog endpoint = %q (token set: %v), want scripts/ci/keystone.sh's http://127.0.0.1:9696", target.base, target.token != "")
	}

	// A raw token (OS_TOKEN) with OS_ENDPOINT, as before.
	t.Setenv("OS_ENDPOINT", url)
	t.Setenv("OS_TOKEN", target.token)
	if err := portPlug(ctx, []string{port}, &out, false); err != nil {
		t.Fatalf("unplug with OS_TOKEN: %v", err)
	}
	wantBound(t, svc, port, "")
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

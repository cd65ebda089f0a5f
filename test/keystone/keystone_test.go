// Package keystone_test runs Neutrino's API behind a real Keystone v3
// (Debian's keystone package, started by scripts/ci/keystone.sh) and
// drives it with Keystone-authenticated gophercloud clients.
package keystone_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"

	"github.com/neutrino-net/neutrino/internal/auth"
	"github.com/neutrino-net/neutrino/internal/httpapi"
	"github.com/neutrino-net/neutrino/internal/service"
	"github.com/neutrino-net/neutrino/internal/store/sqlstore/sqltest"
	"github.com/neutrino-net/neutrino/internal/testenv"
)

var ctx = context.Background()

// keystoneURL returns the Keystone under test (testenv: a failure under
// CI, which installs one, a skip elsewhere).
func keystoneURL(t *testing.T) string { return testenv.RequireKeystone(t) }

// login authenticates as user in project (Default domain).
func login(t *testing.T, ksURL, user, password, project string) *gophercloud.ProviderClient {
	t.Helper()
	pc, err := openstack.AuthenticatedClient(ctx, gophercloud.AuthOptions{
		IdentityEndpoint: ksURL, Username: user, Password: password, DomainName: "Default",
		Scope: &gophercloud.AuthScope{ProjectName: project, DomainName: "Default"},
	})
	if err != nil {
		t.Fatalf("keystone login %s: %v", user, err)
	}
	return pc
}

// networkClient points a Keystone-authenticated provider at our server.
func networkClient(pc *gophercloud.ProviderClient, url string) *gophercloud.ServiceClient {
	return &gophercloud.ServiceClient{ProviderClient: pc, Endpoint: url + "/", ResourceBase: url + "/v2.0/", Type: "network"}
}

func status(t *testing.T, err error) int {
	t.Helper()
	var ec gophercloud.ErrUnexpectedResponseCode
	if err == nil {
		return 200
	}
	if !errors.As(err, &ec) {
		t.Fatalf("not an HTTP error: %v", err)
	}
	return ec.Actual
}

func TestKeystoneAuth(t *testing.T) {
	ksURL := keystoneURL(t)
	// Count Keystone token validations through a proxy to see the cache.
	ksCounted, validations := countingKeystone(t, ksURL)

	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := service.New(sqltest.Open(t, "sqlite"), service.Options{Logger: quiet})
	ks := auth.NewKeystone(ksCounted, 5*time.Minute)
	srv := httptest.NewServer(httpapi.New(httpapi.Options{Service: svc, Auth: ks, Logger: quiet}))
	defer srv.Close()

	demoPC := login(t, ksURL, "demo", "demopass", "demo")
	demo := networkClient(demoPC, srv.URL)
	reader := networkClient(login(t, ksURL, "reader", "readerpass", "demo"), srv.URL)
	admin := networkClient(login(t, ksURL, "admin", "adminpass", "admin"), srv.URL)

	// No token and a bad token are 401 NeutronErrors; the version document is open.
	for _, token := range []string{"", "not-a-token"} {
		req, _ := http.NewRequest("GET", srv.URL+"/v2.0/networks", nil)
		if token != "" {
			req.Header.Set("X-Auth-Token", token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 401 || !strings.Contains(string(body), `"HTTPUnauthorized"`) {
			t.Fatalf("token %q: %d %s", token, resp.StatusCode, body)
		}
	}
	if resp, err := http.Get(srv.URL + "/"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET / without token: %v %v", resp, err)
	}

	// The token's project owns what its user creates.
	n, err := networks.Create(ctx, demo, networks.CreateOpts{Name: "demo-net"}).Extract()
	if err != nil {
		t.Fatalf("member create: %v", err)
	}
	before := validations.Load()
	for range 5 {
		if _, err := networks.Get(ctx, demo, n.ID).Extract(); err != nil {
			t.Fatal(err)
		}
	}
	if got := validations.Load() - before; got != 0 {
		t.Fatalf("cached token validated %d more times", got)
	}
	// A reader reads but cannot write; an admin sees every project.
	pages, err := networks.List(reader, nil).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if list, _ := networks.ExtractNetworks(pages); len(list) != 1 || list[0].ID != n.ID {
		t.Fatalf("reader sees %v", list)
	}
	_, err = networks.Create(ctx, reader, networks.CreateOpts{Name: "nope"}).Extract()
	if code := status(t, err); code != 403 {
		t.Fatalf("reader create = %d", code)
	}
	if code := status(t, networks.Delete(ctx, reader, n.ID).ExtractErr()); code != 403 {
		t.Fatalf("reader delete = %d", code)
	}
	if _, err := networks.Get(ctx, admin, n.ID).Extract(); err != nil {
		t.Fatalf("admin get: %v", err)
	}
	adminNet, err := networks.Create(ctx, admin, networks.CreateOpts{Name: "admin-net"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := networks.Get(ctx, demo, adminNet.ID).Extract(); status(t, err) != 404 {
		t.Fatalf("demo sees admin's network: %v", err)
	}
	if adminNet.ProjectID == n.ProjectID || n.ProjectID == "" {
		t.Fatalf("projects: demo %q admin %q", n.ProjectID, adminNet.ProjectID)
	}

	// Past the token's expiry the cache is not trusted: Keystone is asked again.
	ks.Now = func() time.Time { return time.Now().Add(48 * time.Hour) }
	before = validations.Load()
	if _, err := networks.Get(ctx, demo, n.ID).Extract(); err != nil {
		t.Fatalf("revalidated token: %v", err)
	}
	if validations.Load() == before {
		t.Fatal("expired cache entry was used without asking Keystone")
	}
	ks.Now = time.Now

	// With no caching, a revoked token is refused at once.
	ks0 := auth.NewKeystone(ksURL, 0)
	srv0 := httptest.NewServer(httpapi.New(httpapi.Options{Service: svc, Auth: ks0, Logger: quiet}))
	defer srv0.Close()
	pc := login(t, ksURL, "demo", "demopass", "demo")
	token := pc.Token()
	c := networkClient(pc, srv0.URL)
	if _, err := networks.Get(ctx, c, n.ID).Extract(); err != nil {
		t.Fatalf("fresh token: %v", err)
	}
	identity, err := openstack.NewIdentityV3(demoPC, gophercloud.EndpointOpts{})
	if err != nil {
		t.Fatal(err)
	}
	if err := tokens.Revoke(ctx, identity, token).Err; err != nil {
		t.Fatalf("revoke: %v", err)
	}
	pc.ReauthFunc = nil
	req, _ := http.NewRequest("GET", srv0.URL+"/v2.0/networks", nil)
	req.Header.Set("X-Auth-Token", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("revoked token: %d", resp.StatusCode)
	}
}

// countingKeystone puts a proxy before Keystone that counts its token
// validations; it returns the proxy's identity URL and the count.
func countingKeystone(t *testing.T, ksURL string) (string, *atomic.Int64) {
	t.Helper()
	target, err := url.Parse(ksURL)
	if err != nil {
		t.Fatal(err)
	}
	var validations atomic.Int64
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: target.Scheme, Host: target.Host})
	counting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/auth/tokens") {
			validations.Add(1)
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(counting.Close)
	return counting.URL + target.Path, &validations
}

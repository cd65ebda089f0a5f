//go:build tfcompat

package tfcompat

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/external"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"

	"github.com/neutrino-net/neutrino/internal/auth"
	"github.com/neutrino-net/neutrino/internal/httpapi"
	"github.com/neutrino-net/neutrino/internal/service"
	"github.com/neutrino-net/neutrino/internal/store/sqlstore/sqltest"
	"github.com/neutrino-net/neutrino/internal/testenv"
)

// Environment the script sets.
const (
	envTofu        = "NEUTRINO_TOFU"              // the tofu binary
	envProviderDir = "NEUTRINO_TOFU_PROVIDER_DIR" // holds terraform-provider-openstack
	envDialect     = "NEUTRINO_TFCOMPAT_STORE"    // sqlite (default) or postgres
)

var ctx = context.Background()

type fixture struct {
	t        *testing.T
	tofu     string
	rc       string // the CLI configuration with the dev override
	ksURL    string
	apiURL   string
	admin    *gophercloud.ServiceClient
	demo     *gophercloud.ServiceClient
	external string
}

func require(t *testing.T, env, what string) string {
	t.Helper()
	v := os.Getenv(env)
	if v == "" {
		t.Fatalf("%s is not set: %s (scripts/tfcompat.sh sets it)", env, what)
	}
	return v
}

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

func newFixture(t *testing.T) *fixture {
	tofu := require(t, envTofu, "the OpenTofu binary")
	providerDir := require(t, envProviderDir, "the directory of terraform-provider-openstack")
	if _, err := os.Stat(filepath.Join(providerDir, "terraform-provider-openstack")); err != nil {
		t.Fatalf("%s: %v", envProviderDir, err)
	}
	ksURL := testenv.RequireKeystone(t)
	dialect := os.Getenv(envDialect)
	if dialect == "" {
		dialect = "sqlite"
	}
	// The server's log, shown when the test fails (a 500 names its cause
	// only there).
	var logBuf testenv.LogBuffer
	logger := slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelWarn}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log (warnings and errors):\n%s", logBuf.String())
		}
	})
	svc := service.New(sqltest.Open(t, dialect), service.Options{Logger: logger})
	srv := httptest.NewServer(httpapi.New(httpapi.Options{Service: svc, Auth: auth.NewKeystone(ksURL, 5*time.Minute), Logger: logger}))
	t.Cleanup(srv.Close)

	client := func(pc *gophercloud.ProviderClient) *gophercloud.ServiceClient {
		return &gophercloud.ServiceClient{ProviderClient: pc, Endpoint: srv.URL + "/", ResourceBase: srv.URL + "/v2.0/", Type: "network"}
	}
	f := &fixture{t: t, tofu: tofu, ksURL: ksURL, apiURL: srv.URL + "/v2.0/",
		admin: client(login(t, ksURL, "admin", "adminpass", "admin")),
		demo:  client(login(t, ksURL, "demo", "demopass", "demo"))}

	// The CLI configuration: the provider from providerDir, no registry.
	f.rc = filepath.Join(t.TempDir(), "tofurc")
	rc := fmt.Sprintf("provider_installation {\n  dev_overrides {\n    %q = %q\n  }\n  direct {}\n}\n",
		"registry.opentofu.org/terraform-provider-openstack/openstack", providerDir)
	if err := os.WriteFile(f.rc, []byte(rc), 0o600); err != nil {
		t.Fatal(err)
	}

	// What an operator provides: an external network users attach
	// routers and floating IPs to.
	up := true
	ext, err := networks.Create(ctx, f.admin, external.CreateOptsExt{
		CreateOptsBuilder: networks.CreateOpts{Name: "tf-public", AdminStateUp: &up},
		External:          &up,
	}).Extract()
	if err != nil {
		t.Fatalf("create the external network: %v", err)
	}
	if _, err := subnets.Create(ctx, f.admin, subnets.CreateOpts{NetworkID: ext.ID, CIDR: "203.0.113.0/24", IPVersion: 4}).Extract(); err != nil {
		t.Fatalf("create the external subnet: %v", err)
	}
	f.external = ext.ID
	return f
}

// scenario is one configuration in its own working directory.
type scenario struct {
	f   *fixture
	dir string
}

func (f *fixture) scenario(name string) *scenario {
	dir := f.t.TempDir()
	for _, src := range []string{"testdata/provider.tf", filepath.Join("testdata", name, "main.tf")} {
		b, err := os.ReadFile(src)
		if err != nil {
			f.t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(filepath.Dir(src))+"-"+filepath.Base(src)), b, 0o600); err != nil {
			f.t.Fatal(err)
		}
	}
	return &scenario{f: f, dir: dir}
}

// tofu runs one command in the scenario's directory; it returns the exit
// code and the combined output.
func (s *scenario) tofu(t *testing.T, suffix string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, s.f.tofu, args...)
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(),
		"TF_CLI_CONFIG_FILE="+s.f.rc,
		"TF_IN_AUTOMATION=1",
		"TF_INPUT=0",
		"CHECKPOINT_DISABLE=1",
		"HOME="+s.dir,
		"OS_AUTH_URL="+s.f.ksURL,
		"OS_USERNAME=demo", "OS_PASSWORD=demopass", "OS_PROJECT_NAME=demo",
		"OS_USER_DOMAIN_NAME=Default", "OS_PROJECT_DOMAIN_NAME=Default", "OS_REGION_NAME=RegionOne",
		"TF_VAR_network_url="+s.f.apiURL,
		"TF_VAR_external_network_id="+s.f.external,
		"TF_VAR_suffix="+suffix,
	)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	t.Logf("tofu %s (suffix %s): %.1f s", args[0], suffix, time.Since(start).Seconds())
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("tofu %s: %v", strings.Join(args, " "), err)
		}
		code = ee.ExitCode()
	}
	return code, out.String()
}

// apply applies suffix and fails the test on any error.
func (s *scenario) apply(t *testing.T, suffix string) {
	t.Helper()
	if code, out := s.tofu(t, suffix, "apply", "-auto-approve", "-no-color"); code != 0 {
		t.Fatalf("apply (%s) exited %d:\n%s", suffix, code, out)
	}
}

// planChanges plans suffix and returns the planned actions by resource
// address (no-ops left out).
func (s *scenario) planChanges(t *testing.T, suffix string) map[string][]string {
	t.Helper()
	plan := filepath.Join(s.dir, "plan.bin")
	code, out := s.tofu(t, suffix, "plan", "-no-color", "-detailed-exitcode", "-out="+plan)
	if code != 0 && code != 2 {
		t.Fatalf("plan (%s) exited %d:\n%s", suffix, code, out)
	}
	code, js := s.tofu(t, suffix, "show", "-json", plan)
	if code != 0 {
		t.Fatalf("show -json exited %d:\n%s", code, js)
	}
	var p struct {
		ResourceChanges []struct {
			Address string `json:"address"`
			Change  struct {
				Actions []string `json:"actions"`
			} `json:"change"`
		} `json:"resource_changes"`
	}
	// tofu may print warnings (the dev override) before the document.
	if i := strings.Index(js, "{"); i > 0 {
		js = js[i:]
	}
	if err := json.Unmarshal([]byte(js), &p); err != nil {
		t.Fatalf("plan JSON: %v\n%s", err, js)
	}
	changes := map[string][]string{}
	for _, rc := range p.ResourceChanges {
		if !slices.Equal(rc.Change.Actions, []string{"no-op"}) && !slices.Equal(rc.Change.Actions, []string{"read"}) {
			changes[rc.Address] = rc.Change.Actions
		}
	}
	return changes
}

// noChanges fails unless a plan of suffix is empty: what apply wrote
// reads back exactly (no drift from defaults, ordering or formats).
func (s *scenario) noChanges(t *testing.T, suffix string) {
	t.Helper()
	if c := s.planChanges(t, suffix); len(c) != 0 {
		t.Fatalf("plan after apply (%s) wants changes: %v", suffix, c)
	}
}

// list returns the names of collection's resources the demo project sees
// (those whose names start with tf-).
func (f *fixture) list(t *testing.T, collection string) []string {
	t.Helper()
	key := strings.ReplaceAll(strings.TrimPrefix(collection, "vpn/"), "-", "_")
	var body map[string][]map[string]any
	resp, err := f.demo.Get(ctx, f.demo.ServiceURL(collection), &body, nil)
	if err != nil {
		t.Fatalf("list %s: %v", collection, err)
	}
	resp.Body.Close()
	var names []string
	for _, r := range body[key] {
		if n, _ := r["name"].(string); strings.HasPrefix(n, "tf-") && n != "tf-public" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

func (f *fixture) get(t *testing.T, collection, key, query string) map[string]any {
	t.Helper()
	var body map[string][]map[string]any
	resp, err := f.demo.Get(ctx, f.demo.ServiceURL(collection)+"?"+query, &body, nil)
	if err != nil {
		t.Fatalf("get %s?%s: %v", collection, query, err)
	}
	resp.Body.Close()
	if len(body[key]) != 1 {
		t.Fatalf("%s?%s: %d found, want 1", collection, query, len(body[key]))
	}
	return body[key][0]
}

// lifecycle is every scenario's path; check looks at the API after each
// apply, the update's plan must change every resource in expectUpdated
// in place and replace nothing.
func lifecycle(t *testing.T, s *scenario, collections []string, expectUpdated []string, check func(t *testing.T, suffix string)) {
	s.apply(t, "one")
	check(t, "one")
	s.noChanges(t, "one")

	changes := s.planChanges(t, "two")
	for addr, actions := range changes {
		if !slices.Equal(actions, []string{"update"}) {
			t.Errorf("update plans %v for %s, want an in-place update", actions, addr)
		}
	}
	for _, addr := range expectUpdated {
		if _, ok := changes[addr]; !ok {
			t.Errorf("update does not change %s", addr)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	s.apply(t, "two")
	check(t, "two")
	s.noChanges(t, "two")

	if code, out := s.tofu(t, "two", "destroy", "-auto-approve", "-no-color"); code != 0 {
		t.Fatalf("destroy exited %d:\n%s", code, out)
	}
	for _, c := range collections {
		if left := s.f.list(t, c); len(left) != 0 {
			t.Errorf("after destroy, %s still has %v", c, left)
		}
	}
}

func TestTerraform(t *testing.T) {
	f := newFixture(t)

	t.Run("Network", func(t *testing.T) {
		s := f.scenario("network")
		lifecycle(t, s,
			[]string{"networks", "subnets", "ports", "routers", "security-groups", "subnetpools", "address-scopes", "trunks"},
			[]string{
				"openstack_networking_network_v2.net", "openstack_networking_subnet_v2.sub",
				"openstack_networking_port_v2.vm", "openstack_networking_router_v2.router",
				"openstack_networking_secgroup_v2.web", "openstack_networking_floatingip_v2.vm",
				"openstack_networking_subnetpool_v2.pool", "openstack_networking_trunk_v2.trunk",
				"openstack_networking_addressscope_v2.scope",
			},
			func(t *testing.T, suffix string) {
				quota := map[string]string{"one": "1024", "two": "2048"}[suffix]
				if p := f.get(t, "subnetpools", "subnetpools", "name=tf-pool-"+suffix); fmt.Sprint(p["default_quota"]) != quota {
					t.Errorf("pool default_quota = %v, want %v", p["default_quota"], quota)
				}
				gw := f.get(t, "ports", "ports", "name=tf-gateway-"+suffix)
				if gw["device_owner"] != "network:router_interface" {
					t.Errorf("gateway port is not a router interface: %v", gw["device_owner"])
				}
				if ips, _ := gw["fixed_ips"].([]any); len(ips) != 1 || ips[0].(map[string]any)["ip_address"] != "10.50.0.1" {
					t.Errorf("gateway port fixed_ips = %v", gw["fixed_ips"])
				}
				tr := f.get(t, "trunks", "trunks", "name=tf-trunk-"+suffix)
				if subs, _ := tr["sub_ports"].([]any); len(subs) != 1 {
					t.Errorf("trunk sub_ports = %v", tr["sub_ports"])
				}
				net := f.get(t, "networks", "networks", "name=tf-net-"+suffix)
				if tags := fmt.Sprint(net["tags"]); tags != fmt.Sprint([]any{suffix, "tf"}) && tags != fmt.Sprint([]any{"tf", suffix}) {
					t.Errorf("network tags = %v", net["tags"])
				}
			})
	})

	t.Run("Extras", func(t *testing.T) {
		s := f.scenario("extras")
		lifecycle(t, s,
			[]string{"networks", "subnets", "ports", "routers", "floatingips"},
			[]string{
				"openstack_networking_network_v2.net", "openstack_networking_subnet_v2.v4",
				"openstack_networking_subnet_v2.v6", "openstack_networking_router_v2.router",
				"openstack_networking_port_v2.vm", "openstack_networking_port_v2.appliance",
				"openstack_networking_floatingip_v2.fip",
			},
			func(t *testing.T, suffix string) {
				vm := f.get(t, "ports", "ports", "name=tf-x-vm-"+suffix)
				if ips, _ := vm["fixed_ips"].([]any); len(ips) != 2 {
					t.Errorf("vm port fixed_ips = %v, want an IPv4 and a SLAAC address", vm["fixed_ips"])
				}
				v4 := f.get(t, "subnets", "subnets", "name=tf-x-v4-"+suffix)
				if routes := fmt.Sprint(v4["host_routes"]); !strings.Contains(routes, "10.99.0.0/16") {
					t.Errorf("subnet host_routes = %v", v4["host_routes"])
				}
				r := f.get(t, "routers", "routers", "name=tf-x-router-"+suffix)
				if routes := fmt.Sprint(r["routes"]); !strings.Contains(routes, "10.98.0.0/16") {
					t.Errorf("router routes = %v", r["routes"])
				}
				fip := f.get(t, "floatingips", "floatingips", "description=x+"+suffix)
				if fip["port_id"] != vm["id"] {
					t.Errorf("floating IP's port = %v, want %v", fip["port_id"], vm["id"])
				}
			})
	})

	t.Run("VPN", func(t *testing.T) {
		s := f.scenario("vpn")
		lifecycle(t, s,
			[]string{"vpn/ikepolicies", "vpn/ipsecpolicies", "vpn/vpnservices", "vpn/endpoint-groups", "vpn/ipsec-site-connections", "routers", "networks"},
			[]string{
				"openstack_vpnaas_ike_policy_v2.spare", "openstack_vpnaas_ipsec_policy_v2.spare",
				"openstack_vpnaas_service_v2.vpn", "openstack_vpnaas_endpoint_group_v2.local",
				"openstack_vpnaas_endpoint_group_v2.peer", "openstack_vpnaas_site_connection_v2.office",
			},
			func(t *testing.T, suffix string) {
				c := f.get(t, "vpn/ipsec-site-connections", "ipsec_site_connections", "name=tf-office-"+suffix)
				if c["psk"] != "tf-secret-"+suffix {
					t.Errorf("connection psk not updated (%s)", suffix)
				}
				// No agent hosts the router: the connection says so at
				// once instead of staying PENDING_CREATE.
				if c["status"] == "PENDING_CREATE" || c["status"] == "PENDING_UPDATE" {
					t.Errorf("connection status = %v", c["status"])
				}
				ike := f.get(t, "vpn/ikepolicies", "ikepolicies", "name=tf-ike-spare-"+suffix)
				if want := map[string]string{"one": "sha256", "two": "sha384"}[suffix]; ike["auth_algorithm"] != want {
					t.Errorf("ike auth_algorithm = %v, want %s", ike["auth_algorithm"], want)
				}
			})
	})
}

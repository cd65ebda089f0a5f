// Package bench_test measures the Networking API's throughput and latency
// through the real HTTP stack (httptest server on TCP loopback, noauth,
// real SQLite or PostgreSQL store): for each store × resource (networks;
// ports on a shared network with a /16 subnet) × operation × number of
// concurrent clients it reports ops/s and p50/p99 latency.
//
//	go test -run '^$' -bench . -benchtime=300x ./test/bench/
//
// (test/bench/run.sh runs it and prints a table.) Each sub-benchmark run
// gets a fresh store and server with unlimited quotas; c goroutines pull
// the b.N requests. Creates go to one project per client; show, update and
// list cycle over one project holding listSize objects; delete removes b.N
// objects made beforehand. Setup is untimed. Any unexpected HTTP status
// fails the benchmark.
package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/neutrino-net/neutrino/internal/auth"
	"github.com/neutrino-net/neutrino/internal/httpapi"
	"github.com/neutrino-net/neutrino/internal/metrics"
	"github.com/neutrino-net/neutrino/internal/service"
	"github.com/neutrino-net/neutrino/internal/store/sqlstore/sqltest"
)

const listSize = 100 // objects per project for the list operation

var (
	resources   = []string{"networks", "ports", "ikepolicies", "connections"}
	operations  = []string{"create", "show", "list", "update", "delete"}
	concurrency = []int{1, 8, 32}
)

func BenchmarkAPI(b *testing.B) {
	for _, dialect := range sqltest.Dialects {
		b.Run(dialect, func(b *testing.B) {
			sqltest.Require(b, dialect)
			for _, res := range resources {
				for _, op := range operations {
					for _, c := range concurrency {
						b.Run(fmt.Sprintf("%s/%s/c%d", res, op, c), func(b *testing.B) { bench(b, dialect, res, op, c) })
					}
				}
			}
		})
	}
}

// paths and singular keys of the benchmarked resources.
var (
	paths = map[string]string{"networks": "/v2.0/networks", "ports": "/v2.0/ports",
		"ikepolicies": "/v2.0/vpn/ikepolicies", "connections": "/v2.0/vpn/ipsec-site-connections"}
	singulars = map[string]string{"networks": "network", "ports": "port", "ikepolicies": "ikepolicy",
		"connections": "ipsec_site_connection"}
)

// env is one API server over a fresh store, and an HTTP client for it.
type env struct {
	b      *testing.B
	url    string
	hc     *http.Client
	svc    *service.Service
	res    string // a key of paths
	netID  string // ports: the shared network (with a /16 subnet) they go on
	extID  string // connections: the external network of every router
	serial atomic.Int64

	mu  sync.Mutex
	vpn map[string]vpnSetup // connections: per project
}

// vpnSetup is what a project's connections reference.
type vpnSetup struct{ service, ike, ipsec string }

func newEnv(b *testing.B, dialect, res string) *env {
	quiet := slog.New(slog.DiscardHandler)
	// Unlimited quotas: per-project counts must not fail creates.
	// As in a server: metrics on every request, hints after VPN changes
	// (to no agent here, but the hosts are looked up).
	m := metrics.New()
	svc := service.New(sqltest.Open(b, dialect), service.Options{Logger: quiet,
		Quotas: map[string]int{"network": -1, "subnet": -1, "port": -1, "security_group": -1, "security_group_rule": -1},
		Hint:   func(context.Context, string, agentv1.Hint) {}, ObserveReport: m.ObserveReport})
	srv := httptest.NewServer(httpapi.New(httpapi.Options{Service: svc, Auth: auth.NoAuth{}, Logger: quiet,
		Observe: m.ObserveRequest, Metrics: m.Handler()}))
	b.Cleanup(srv.Close)
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, MaxConnsPerHost: 0, IdleConnTimeout: time.Minute}
	b.Cleanup(tr.CloseIdleConnections)
	e := &env{b: b, url: srv.URL, hc: &http.Client{Transport: tr, Timeout: time.Minute}, svc: svc, res: res, vpn: map[string]vpnSetup{}}
	if res == "ports" {
		var net, sub struct{ Network, Subnet struct{ ID string } }
		e.must(e.decode(&net)(e.do("admin", "POST", "/v2.0/networks", `{"network":{"name":"bench","shared":true}}`, 201)))
		e.netID = net.Network.ID
		e.must(e.decode(&sub)(e.do("admin", "POST", "/v2.0/subnets",
			`{"subnet":{"network_id":"`+e.netID+`","cidr":"10.0.0.0/16","ip_version":4}}`, 201)))
	}
	if res == "connections" {
		e.extID = e.id(e.do("admin", "POST", "/v2.0/networks", `{"network":{"name":"public","router:external":true}}`, 201))
		e.id(e.do("admin", "POST", "/v2.0/subnets", `{"subnet":{"network_id":"`+e.extID+`","cidr":"100.64.0.0/16","ip_version":4}}`, 201))
	}
	return e
}

// id returns the id in a create response, failing the benchmark on error.
func (e *env) id(data []byte, err error) string {
	e.b.Helper()
	var out map[string]struct{ ID string }
	e.must(e.decode(&out)(data, err))
	for _, v := range out {
		return v.ID
	}
	e.b.Fatalf("no id in %s", data)
	return ""
}

// setupVPN gives a project what its connections need: a router with a
// gateway and an interface, a legacy-mode VPN service and two policies.
func (e *env) setupVPN(project string) {
	do := func(path, body string) string { return e.id(e.do(project, "POST", path, body, 201)) }
	net := do("/v2.0/networks", `{"network":{"name":"vpn"}}`)
	sub := do("/v2.0/subnets", `{"subnet":{"network_id":"`+net+`","cidr":"10.1.0.0/24","ip_version":4}}`)
	rtr := do("/v2.0/routers", `{"router":{"name":"r","external_gateway_info":{"network_id":"`+e.extID+`"}}}`)
	_, err := e.do(project, "PUT", "/v2.0/routers/"+rtr+"/add_router_interface", `{"subnet_id":"`+sub+`"}`, 200)
	e.must(err)
	v := vpnSetup{
		service: do("/v2.0/vpn/vpnservices", `{"vpnservice":{"router_id":"`+rtr+`","subnet_id":"`+sub+`"}}`),
		ike:     do("/v2.0/vpn/ikepolicies", `{"ikepolicy":{"name":"ike"}}`),
		ipsec:   do("/v2.0/vpn/ipsecpolicies", `{"ipsecpolicy":{"name":"ipsec"}}`),
	}
	e.mu.Lock()
	e.vpn[project] = v
	e.mu.Unlock()
}

// do sends one request as project ("admin": the admin role) and returns the
// body, or an error if the status is not want.
func (e *env) do(project, method, path, body string, want int) ([]byte, error) {
	var rd io.Reader
	if body != "" {
		rd = bytes.NewReader([]byte(body))
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		return nil, err
	}
	roles := "member"
	if project == "admin" {
		roles = "admin"
	}
	req.Header.Set("X-Project-Id", project)
	req.Header.Set("X-User-Id", "user-"+project)
	req.Header.Set("X-Roles", roles)
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil && resp.StatusCode != want {
		err = fmt.Errorf("%s %s as %s: HTTP %d, want %d: %.300s", method, path, project, resp.StatusCode, want, data)
	}
	return data, err
}

func (e *env) decode(v any) func([]byte, error) error {
	return func(data []byte, err error) error {
		if err != nil {
			return err
		}
		return json.Unmarshal(data, v)
	}
}

func (e *env) must(err error) {
	if err != nil {
		e.b.Helper()
		e.b.Fatal(err)
	}
}

// createBody is the POST body of a new object with a unique name.
func (e *env) createBody(project string) string {
	n := e.serial.Add(1)
	name := fmt.Sprintf("bench-%d", n)
	switch e.res {
	case "ports":
		return `{"port":{"network_id":"` + e.netID + `","name":"` + name + `"}}`
	case "ikepolicies":
		return `{"ikepolicy":{"name":"` + name + `","encryption_algorithm":"aes-256","auth_algorithm":"sha256","pfs":"group14","lifetime":{"value":7200}}}`
	case "connections":
		e.mu.Lock()
		v := e.vpn[project]
		e.mu.Unlock()
		return fmt.Sprintf(`{"ipsec_site_connection":{"name":"%s","vpnservice_id":"%s","ikepolicy_id":"%s","ipsecpolicy_id":"%s",`+
			`"peer_address":"198.51.%d.%d","peer_id":"peer-%d","psk":"secret-%d","peer_cidrs":["192.168.%d.0/24"],"dpd":{"interval":10,"timeout":40}}}`,
			name, v.service, v.ike, v.ipsec, n/250%250, n%250+1, n, n, n%250)
	}
	return `{"network":{"name":"` + name + `"}}`
}

// create makes one object as project and returns its id.
func (e *env) create(project string) (string, error) {
	var out map[string]struct{ ID string }
	err := e.decode(&out)(e.do(project, "POST", paths[e.res], e.createBody(project), 201))
	return out[singulars[e.res]].ID, err
}

type item struct{ project, id string }

// populate creates n objects, the i-th in projects[i%len(projects)], with
// 8 untimed clients.
func (e *env) populate(projects []string, n int) []item {
	items := make([]item, n)
	_, err := pool(8, n, func(_, i int) (err error) {
		p := projects[i%len(projects)]
		items[i].project = p
		items[i].id, err = e.create(p)
		return err
	})
	e.must(err)
	return items
}

// pool runs fn(worker, i) for i in [0, n) on exactly c goroutines pulling
// work items, and returns each call's latency. It stops at the first error.
func pool(c, n int, fn func(w, i int) error) ([]time.Duration, error) {
	var next atomic.Int64
	var failed atomic.Bool
	var once sync.Once
	var first error
	lat := make([][]time.Duration, c)
	var wg sync.WaitGroup
	for w := range c {
		wg.Go(func() {
			lat[w] = make([]time.Duration, 0, n/c+1)
			for i := int(next.Add(1) - 1); i < n && !failed.Load(); i = int(next.Add(1) - 1) {
				t0 := time.Now()
				err := fn(w, i)
				lat[w] = append(lat[w], time.Since(t0))
				if err != nil {
					once.Do(func() { first = err })
					failed.Store(true)
				}
			}
		})
	}
	wg.Wait()
	return slices.Concat(lat...), first
}

func bench(b *testing.B, dialect, res, op string, c int) {
	e := newEnv(b, dialect, res)
	projects := make([]string, c)
	for i := range projects {
		projects[i] = uuid.NewString()
		if res == "ports" { // make the project's default security group now
			_, err := e.do(projects[i], "GET", "/v2.0/security-groups", "", 200)
			e.must(err)
		}
		if res == "connections" {
			e.setupVPN(projects[i])
		}
	}
	path := paths[res]
	var items []item
	switch op {
	case "show", "update", "list": // one project holding listSize objects
		items = e.populate([]string{projects[0]}, listSize)
		var out map[string][]json.RawMessage
		e.must(e.decode(&out)(e.do(projects[0], "GET", path, "", 200)))
		key := res // the collection key of the list body
		if res == "connections" {
			key = "ipsec_site_connections"
		}
		if got := len(out[key]); got != listSize {
			b.Fatalf("list returned %d %s, want %d", got, res, listSize)
		}
		if res == "connections" { // settle PENDING_CREATE so PUT is allowed
			report := service.VPNServiceStatus{ID: e.vpn[projects[0]].service, Status: "ACTIVE", Connections: map[string]service.ConnectionStatus{}}
			for _, it := range items {
				report.Connections[it.id] = service.ConnectionStatus{Status: "ACTIVE", UpdatedPendingStatus: true}
			}
			e.must(e.svc.UpdateVPNStatus(context.Background(), []service.VPNServiceStatus{report}))
		}
	case "delete":
		items = e.populate(projects, b.N)
	}
	singular := singulars[res]
	run := map[string]func(w, i int) error{
		"create": func(w, _ int) error { _, err := e.create(projects[w]); return err },
		"show": func(_, i int) error {
			it := items[i%len(items)]
			_, err := e.do(it.project, "GET", path+"/"+it.id, "", 200)
			return err
		},
		"list": func(_, _ int) error { _, err := e.do(projects[0], "GET", path, "", 200); return err },
		"update": func(_, i int) error {
			it, body := items[i%len(items)], fmt.Sprintf(`{"%s":{"name":"renamed-%d"}}`, singular, i)
			_, err := e.do(it.project, "PUT", path+"/"+it.id, body, 200)
			return err
		},
		"delete": func(_, i int) error {
			_, err := e.do(items[i].project, "DELETE", path+"/"+items[i].id, "", 204)
			return err
		},
	}[op]

	b.ResetTimer()
	start := time.Now()
	lat, err := pool(c, b.N, run)
	elapsed := time.Since(start)
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		i := max(int(math.Ceil(p*float64(len(lat))))-1, 0)
		return float64(lat[i]) / float64(time.Millisecond)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "ops/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(0, "ns/op") // ops/s says it, for c clients
}

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

	"github.com/neutrino-net/neutrino/internal/auth"
	"github.com/neutrino-net/neutrino/internal/httpapi"
	"github.com/neutrino-net/neutrino/internal/service"
	"github.com/neutrino-net/neutrino/internal/store/sqlstore/sqltest"
)

const listSize = 100 // objects per project for the list operation

var (
	resources   = []string{"networks", "ports"}
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

// env is one API server over a fresh store, and an HTTP client for it.
type env struct {
	b      *testing.B
	url    string
	hc     *http.Client
	res    string // "networks" or "ports"
	netID  string // ports: the shared network (with a /16 subnet) they go on
	serial atomic.Int64
}

func newEnv(b *testing.B, dialect, res string) *env {
	quiet := slog.New(slog.DiscardHandler)
	// Unlimited quotas: per-project counts must not fail creates.
	svc := service.New(sqltest.Open(b, dialect), service.Options{Logger: quiet,
		Quotas: map[string]int{"network": -1, "subnet": -1, "port": -1, "security_group": -1, "security_group_rule": -1}})
	srv := httptest.NewServer(httpapi.New(httpapi.Options{Service: svc, Auth: auth.NoAuth{}, Logger: quiet}))
	b.Cleanup(srv.Close)
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, MaxConnsPerHost: 0, IdleConnTimeout: time.Minute}
	b.Cleanup(tr.CloseIdleConnections)
	e := &env{b: b, url: srv.URL, hc: &http.Client{Transport: tr, Timeout: time.Minute}, res: res}
	if res == "ports" {
		var net, sub struct{ Network, Subnet struct{ ID string } }
		e.must(e.decode(&net)(e.do("admin", "POST", "/v2.0/networks", `{"network":{"name":"bench","shared":true}}`, 201)))
		e.netID = net.Network.ID
		e.must(e.decode(&sub)(e.do("admin", "POST", "/v2.0/subnets",
			`{"subnet":{"network_id":"`+e.netID+`","cidr":"10.0.0.0/16","ip_version":4}}`, 201)))
	}
	return e
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
func (e *env) createBody() string {
	name := fmt.Sprintf("bench-%d", e.serial.Add(1))
	if e.res == "ports" {
		return `{"port":{"network_id":"` + e.netID + `","name":"` + name + `"}}`
	}
	return `{"network":{"name":"` + name + `"}}`
}

// create makes one object as project and returns its id.
func (e *env) create(project string) (string, error) {
	var out struct{ Network, Port struct{ ID string } }
	err := e.decode(&out)(e.do(project, "POST", "/v2.0/"+e.res, e.createBody(), 201))
	return out.Network.ID + out.Port.ID, err
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
	}
	path := "/v2.0/" + res
	var items []item
	switch op {
	case "show", "update", "list": // one project holding listSize objects
		items = e.populate([]string{projects[0]}, listSize)
		var out map[string][]json.RawMessage
		e.must(e.decode(&out)(e.do(projects[0], "GET", path, "", 200)))
		if got := len(out[res]); got != listSize {
			b.Fatalf("list returned %d %s, want %d", got, res, listSize)
		}
	case "delete":
		items = e.populate(projects, b.N)
	}
	singular := res[:len(res)-1]
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

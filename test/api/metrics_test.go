package api_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/neutrino-net/neutrino/internal/auth"
	"github.com/neutrino-net/neutrino/internal/httpapi"
	"github.com/neutrino-net/neutrino/internal/identity"
	"github.com/neutrino-net/neutrino/internal/metrics"
	"github.com/neutrino-net/neutrino/internal/service"
	"github.com/neutrino-net/neutrino/internal/store/sqlstore/sqltest"
)

// tokenAuth wants X-Auth-Token "good" and otherwise behaves as noauth.
type tokenAuth struct{}

func (tokenAuth) Authenticate(r *http.Request) (identity.Identity, error) {
	if r.Header.Get("X-Auth-Token") != "good" {
		return identity.Identity{}, auth.ErrUnauthorized
	}
	return auth.NoAuth{}.Authenticate(r)
}

// TestMetrics scrapes GET /metrics after some requests: counts and
// latency histograms by method, route template and status code, never by
// raw id, and no token needed to scrape.
func TestMetrics(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, dialect string) {
		quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
		m := metrics.New()
		svc := service.New(sqltest.Open(t, dialect), service.Options{Logger: quiet})
		srv := httptest.NewServer(httpapi.New(httpapi.Options{Service: svc, Auth: tokenAuth{}, Logger: quiet,
			Observe: m.ObserveRequest, Metrics: m.Handler()}))
		defer srv.Close()
		// exchange sends a request and returns the status and the body.
		exchange := func(method, path, token string, body string) (int, []byte) {
			t.Helper()
			req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
			if token != "" {
				req.Header.Set("X-Auth-Token", token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			data, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, data
		}
		send := func(method, path, token string, body string) int {
			t.Helper()
			code, _ := exchange(method, path, token, body)
			return code
		}
		var ids []string
		for i := 0; i < 2; i++ {
			code, data := exchange("POST", "/v2.0/networks", "good", `{"network": {"name": "n"}}`)
			id := regexp.MustCompile(`"id": ?"([0-9a-f-]{36})"`).FindSubmatch(data)
			if code != 201 || id == nil {
				t.Fatalf("POST network = %d %s", code, data)
			}
			ids = append(ids, string(id[1]))
		}
		for _, id := range ids {
			if c := send("GET", "/v2.0/networks/"+id, "good", ""); c != 200 {
				t.Fatalf("GET network = %d", c)
			}
		}
		for path, want := range map[string]int{
			"/v2.0/networks/" + ids[0] + ".json": 200, // normalised like any path
			"/v2.0/no-such-thing":                404,
			"/v2.0/networks/nope":                404,
		} {
			if c := send("GET", path, "good", ""); c != want {
				t.Fatalf("GET %s = %d, want %d", path, c, want)
			}
		}
		if c := send("GET", "/v2.0/networks", "", ""); c != 401 {
			t.Fatalf("GET without a token = %d", c)
		}
		if c := send("POST", "/metrics", "", ""); c != 405 {
			t.Fatalf("POST /metrics = %d", c)
		}
		// /metrics is not a resource.
		if code, data := exchange("GET", "/v2.0", "good", ""); code != 200 || strings.Contains(string(data), "metrics") {
			t.Fatalf("GET /v2.0 = %d %s", code, data)
		}

		// Scraping needs no token.
		resp, err := http.Get(srv.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		text := string(data)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
			t.Fatalf("GET /metrics = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		for _, line := range []string{
			`neutrino_api_requests_total{code="201",method="POST",route="/v2.0/networks"} 2`,
			`neutrino_api_requests_total{code="200",method="GET",route="/v2.0/networks/{id}"} 3`,
			`neutrino_api_requests_total{code="404",method="GET",route="/v2.0/networks/{id}"} 1`,
			`neutrino_api_requests_total{code="404",method="GET",route="unmatched"} 1`,
			`neutrino_api_requests_total{code="401",method="GET",route="none"} 1`,
			`neutrino_api_requests_total{code="405",method="POST",route="/metrics"} 1`,
			`neutrino_api_request_duration_seconds_count{code="200",method="GET",route="/v2.0/networks/{id}"} 3`,
			`neutrino_api_request_duration_seconds_bucket{code="201",method="POST",route="/v2.0/networks",le="+Inf"} 2`,
			`neutrino_agent_status_reports_total{result="applied"} 0`,
		} {
			if !strings.Contains(text, line+"\n") {
				t.Errorf("metrics lack %q", line)
			}
		}
		for _, id := range ids {
			if strings.Contains(text, id) {
				t.Errorf("metrics carry the raw id %s", id)
			}
		}
		if !strings.Contains(text, "\ngo_goroutines ") || !strings.Contains(text, "\nprocess_resident_memory_bytes ") {
			t.Errorf("runtime and process collectors missing")
		}
		if t.Failed() {
			t.Logf("metrics:\n%s", text)
		}
	})
}

// TestMetricsOff: without a metrics handler /metrics is an unknown path,
// answered as before.
func TestMetricsOff(t *testing.T) {
	e := newEnv(t, "sqlite")
	r := e.do("GET", "/metrics", "", nil)
	if typ, _ := r.fault(); r.status != 404 || typ != "HTTPNotFound" {
		t.Fatalf("GET /metrics without metrics = %d %s", r.status, r.raw)
	}
}

package keystone_test

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/neutrino-net/neutrino/internal/auth"
	"github.com/neutrino-net/neutrino/internal/httpapi"
	"github.com/neutrino-net/neutrino/internal/service"
	"github.com/neutrino-net/neutrino/internal/store/sqlstore/sqltest"
	"github.com/neutrino-net/neutrino/internal/testenv"
)

// burstServer runs the API behind a Keystone authenticator configured as
// the server configures it by default (5 min cache, default concurrency).
func burstServer(tb testing.TB, ksURL string) *httptest.Server {
	tb.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := service.New(sqltest.Open(tb, "sqlite"), service.Options{Logger: quiet})
	srv := httptest.NewServer(httpapi.New(httpapi.Options{Service: svc, Auth: auth.NewKeystone(ksURL, 5*time.Minute), Logger: quiet}))
	tb.Cleanup(srv.Close)
	return srv
}

// burstToken issues a new project-scoped token for demo/demopass on
// project demo, so that no cache anywhere in Neutrino knows it yet.
func burstToken(tb testing.TB, ksURL string) string {
	tb.Helper()
	body := `{"auth":{"identity":{"methods":["password"],"password":{"user":` +
		`{"name":"demo","domain":{"name":"Default"},"password":"demopass"}}},` +
		`"scope":{"project":{"name":"demo","domain":{"name":"Default"}}}}}`
	resp, err := http.Post(strings.TrimRight(ksURL, "/")+"/auth/tokens", "application/json", bytes.NewBufferString(body))
	if err != nil {
		tb.Fatalf("issue token: %v", err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	token := resp.Header.Get("X-Subject-Token")
	if resp.StatusCode != http.StatusCreated || token == "" {
		tb.Fatalf("issue token: %s", resp.Status)
	}
	return token
}

// burstResult is what one cold burst saw.
type burstResult struct {
	latencies []time.Duration
	statuses  map[int]int // status (0: transport error) -> count
}

func (r burstResult) errors() int {
	n := 0
	for code, c := range r.statuses {
		if code != http.StatusOK {
			n += c
		}
	}
	return n
}

// coldBurst sends clients concurrent GET /v2.0/networks carrying token,
// released together, and waits for every answer.
func coldBurst(client *http.Client, base, token string, clients int) burstResult {
	res := burstResult{latencies: make([]time.Duration, clients), statuses: map[int]int{}}
	codes := make([]int, clients)
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	ready.Add(clients)
	done.Add(clients)
	for i := range clients {
		go func() {
			defer done.Done()
			req, _ := http.NewRequest(http.MethodGet, base+"/v2.0/networks", nil)
			req.Header.Set("X-Auth-Token", token)
			ready.Done()
			<-start
			t0 := time.Now()
			resp, err := client.Do(req)
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				codes[i] = resp.StatusCode
			}
			res.latencies[i] = time.Since(t0)
		}()
	}
	ready.Wait()
	close(start)
	done.Wait()
	for _, c := range codes {
		res.statuses[c]++
	}
	return res
}

// burstClient keeps a connection per concurrent client, so a burst
// measures authentication, not connection churn.
func burstClient(tb testing.TB) *http.Client {
	tr := &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 512}
	tb.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 60 * time.Second}
}

// TestKeystoneColdBurst: concurrent requests carrying one token that
// Neutrino has never seen all succeed, and Keystone validates it once.
func TestKeystoneColdBurst(t *testing.T) {
	ksURL := testenv.RequireKeystone(t)
	ksCounted, validations := countingKeystone(t, ksURL)
	srv := burstServer(t, ksCounted)
	client := burstClient(t)
	for _, clients := range []int{32, 128} {
		t.Run(fmt.Sprintf("clients=%d", clients), func(t *testing.T) {
			token := burstToken(t, ksURL)
			before := validations.Load()
			res := coldBurst(client, srv.URL, token, clients)
			if res.statuses[http.StatusOK] != clients {
				t.Fatalf("statuses of %d cold requests (0: no answer): %v", clients, res.statuses)
			}
			if got := validations.Load() - before; got != 1 {
				t.Errorf("Keystone validated one token %d times for %d concurrent requests", got, clients)
			}
		})
	}
}

// BenchmarkKeystoneColdBurst measures bursts of concurrent API requests
// that all carry one new token (one per iteration), against the real
// Keystone: p99-ms is the 99th percentile request latency over every
// request of every burst, errors the mean number of non-200 answers per
// burst. Run it with e.g. -benchtime=5x.
func BenchmarkKeystoneColdBurst(b *testing.B) {
	ksURL := testenv.RequireKeystone(b)
	srv := burstServer(b, ksURL)
	for _, clients := range []int{32, 128} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			client := burstClient(b)
			var all []time.Duration
			errs := 0
			for b.Loop() {
				b.StopTimer()
				token := burstToken(b, ksURL)
				b.StartTimer()
				res := coldBurst(client, srv.URL, token, clients)
				all = append(all, res.latencies...)
				errs += res.errors()
			}
			slices.Sort(all)
			p99 := all[(len(all)*99+99)/100-1]
			b.ReportMetric(float64(p99)/float64(time.Millisecond), "p99-ms")
			b.ReportMetric(float64(errs)/float64(b.N), "errors")
		})
	}
}

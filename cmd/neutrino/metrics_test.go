package main

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestAgentMetrics: the agent's /metrics serves its collectors in the
// Prometheus text format, with the Go runtime's beside them.
func TestAgentMetrics(t *testing.T) {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "neutrino_test_total", Help: "a test counter"})
	c.Add(3)
	addr, err := serveMetrics(t.Context(), "127.0.0.1:0", slog.New(slog.DiscardHandler), c)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics = %d", resp.StatusCode)
	}
	for _, want := range []string{"neutrino_test_total 3", "go_goroutines "} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if r, err := http.Post("http://"+addr+"/metrics", "text/plain", nil); err == nil {
		r.Body.Close()
		if r.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("POST /metrics = %d, want 405", r.StatusCode)
		}
	}
}

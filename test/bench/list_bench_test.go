package bench_test

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/neutrino-net/neutrino/internal/store/sqlstore/sqltest"
)

const bigList = 10000 // networks in the listed project

// BenchmarkList measures listing a project's 10,000 networks on each
// store: the first page of 100, a page of 100 after a marker in the middle
// (sorted by name), and the whole list, each at 1 and 32 clients, with
// ops/s and p50/p99 latency.
//
//	go test -run '^$' -bench BenchmarkList -benchtime=100x ./test/bench/
func BenchmarkList(b *testing.B) {
	for _, dialect := range sqltest.Dialects {
		b.Run(dialect, func(b *testing.B) {
			sqltest.Require(b, dialect)
			e := newEnv(b, dialect, "networks")
			project := uuid.NewString()
			_, err := pool(8, bigList, func(_, i int) error {
				_, err := e.do(project, "POST", "/v2.0/networks", fmt.Sprintf(`{"network":{"name":"n%05d"}}`, i), 201)
				return err
			})
			e.must(err)
			var mid struct{ Networks []struct{ ID string } }
			e.must(e.decode(&mid)(e.do(project, "GET", "/v2.0/networks?sort_key=name&sort_dir=asc&limit=1&name=n05000", "", 200)))
			if len(mid.Networks) != 1 {
				b.Fatalf("no network n05000: %+v", mid)
			}
			for _, tc := range []struct {
				name, query string
				want        int
			}{
				{"first100", "?limit=100", 100},
				{"marker100", "?limit=100&sort_key=name&sort_dir=asc&marker=" + mid.Networks[0].ID, 100},
				{"all", "", bigList},
			} {
				for _, c := range []int{1, 32} {
					b.Run(fmt.Sprintf("%s/c%d", tc.name, c), func(b *testing.B) {
						var out map[string][]json.RawMessage
						e.must(e.decode(&out)(e.do(project, "GET", "/v2.0/networks"+tc.query, "", 200)))
						if got := len(out["networks"]); got != tc.want {
							b.Fatalf("listed %d networks, want %d", got, tc.want)
						}
						b.ResetTimer()
						start := time.Now()
						lat, err := pool(c, b.N, func(_, _ int) error {
							_, err := e.do(project, "GET", "/v2.0/networks"+tc.query, "", 200)
							return err
						})
						elapsed := time.Since(start)
						b.StopTimer()
						e.must(err)
						slices.Sort(lat)
						pct := func(p float64) float64 {
							return float64(lat[max(int(math.Ceil(p*float64(len(lat))))-1, 0)]) / float64(time.Millisecond)
						}
						b.ReportMetric(float64(b.N)/elapsed.Seconds(), "ops/s")
						b.ReportMetric(pct(0.50), "p50-ms")
						b.ReportMetric(pct(0.99), "p99-ms")
						b.ReportMetric(0, "ns/op")
					})
				}
			}
		})
	}
}

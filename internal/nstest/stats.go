package nstest

import (
	"math"
	"slices"
	"time"
)

// Percentile returns the p-quantile (nearest rank) of ds in milliseconds,
// NaN for none: the figure benchmarks report as p50/p99.
func Percentile(ds []time.Duration, p float64) float64 {
	if len(ds) == 0 {
		return math.NaN()
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return float64(s[max(int(math.Ceil(p*float64(len(s))))-1, 0)]) / float64(time.Millisecond)
}

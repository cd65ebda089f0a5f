package ipam

import (
	"net/netip"
	"slices"
	"testing"
)

func TestAllocatePrefix(t *testing.T) {
	p := netip.MustParsePrefix
	for _, c := range []struct {
		name  string
		pools []string
		used  []string
		bits  int
		want  string // "" none
	}{
		{"empty pool", []string{"10.0.0.0/16"}, nil, 24, "10.0.0.0/24"},
		{"skips used", []string{"10.0.0.0/16"}, []string{"10.0.0.0/24", "10.0.1.0/24"}, 24, "10.0.2.0/24"},
		{"skips a larger used block", []string{"10.0.0.0/16"}, []string{"10.0.0.0/22"}, 24, "10.0.4.0/24"},
		{"skips past a smaller used block", []string{"10.0.0.0/16"}, []string{"10.0.0.128/26"}, 24, "10.0.1.0/24"},
		{"fills a hole", []string{"10.0.0.0/16"}, []string{"10.0.0.0/24", "10.0.2.0/24"}, 24, "10.0.1.0/24"},
		{"next pool", []string{"10.0.0.0/24", "10.1.0.0/24"}, []string{"10.0.0.0/25", "10.0.0.128/25"}, 25, "10.1.0.0/25"},
		{"full", []string{"10.0.0.0/24"}, []string{"10.0.0.0/24"}, 26, ""},
		{"too large for the pool", []string{"10.0.0.0/24"}, nil, 16, ""},
		{"v6", []string{"fd00::/48"}, []string{"fd00::/64"}, 64, "fd00:0:0:1::/64"},
		{"top of the address space", []string{"255.255.255.0/24"}, []string{"255.255.255.0/25"}, 25, "255.255.255.128/25"},
		{"top full", []string{"255.255.255.0/24"}, []string{"255.255.255.0/25", "255.255.255.128/25"}, 25, ""},
	} {
		var pools, used []netip.Prefix
		for _, s := range c.pools {
			pools = append(pools, p(s))
		}
		for _, s := range c.used {
			used = append(used, p(s))
		}
		got, ok := AllocatePrefix(pools, used, c.bits)
		if c.want == "" {
			if ok {
				t.Errorf("%s: got %s, want none", c.name, got)
			}
			continue
		}
		if !ok || got != p(c.want) {
			t.Errorf("%s: got %s %v, want %s", c.name, got, ok, c.want)
		}
	}
}

func TestMergeSubtractPrefixes(t *testing.T) {
	p := netip.MustParsePrefix
	got := MergePrefixes([]netip.Prefix{p("10.0.1.0/24"), p("10.0.0.0/24"), p("10.0.0.128/25"), p("10.0.2.0/24"), p("10.0.3.0/24"), p("10.9.0.0/16")})
	if want := []netip.Prefix{p("10.0.0.0/22"), p("10.9.0.0/16")}; !slices.Equal(got, want) {
		t.Errorf("MergePrefixes = %v, want %v", got, want)
	}
	got = SubtractPrefix(p("10.0.0.0/22"), p("10.0.1.0/24"))
	if want := []netip.Prefix{p("10.0.0.0/24"), p("10.0.2.0/23")}; !slices.Equal(got, want) {
		t.Errorf("SubtractPrefix = %v, want %v", got, want)
	}
	if got := SubtractPrefix(p("10.0.0.0/24"), p("10.0.0.0/16")); len(got) != 0 {
		t.Errorf("SubtractPrefix of a holder = %v", got)
	}
	if got := SubtractPrefix(p("10.0.0.0/24"), p("10.1.0.0/24")); !slices.Equal(got, []netip.Prefix{p("10.0.0.0/24")}) {
		t.Errorf("SubtractPrefix disjoint = %v", got)
	}
}

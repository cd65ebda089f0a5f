package ipam

import (
	"net/netip"
	"testing"

	"github.com/neutrino-net/neutrino/internal/model"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func addr(s string) netip.Addr  { return netip.MustParseAddr(s) }
func pool(a, b string) model.AllocationPool {
	return model.AllocationPool{Start: addr(a), End: addr(b)}
}

func TestDefaultPools(t *testing.T) {
	for _, tc := range []struct {
		cidr, gw string
		want     []model.AllocationPool
	}{
		{"10.0.0.0/24", "10.0.0.1", []model.AllocationPool{pool("10.0.0.2", "10.0.0.254")}},
		{"10.0.0.0/24", "10.0.0.100", []model.AllocationPool{pool("10.0.0.1", "10.0.0.99"), pool("10.0.0.101", "10.0.0.254")}},
		{"10.0.0.0/24", "10.0.0.254", []model.AllocationPool{pool("10.0.0.1", "10.0.0.253")}},
		{"10.0.0.0/24", "", []model.AllocationPool{pool("10.0.0.1", "10.0.0.254")}},
		{"10.0.0.0/30", "10.0.0.1", []model.AllocationPool{pool("10.0.0.2", "10.0.0.2")}},
		{"10.0.0.0/31", "10.0.0.0", []model.AllocationPool{}},
		{"10.0.0.5/32", "", []model.AllocationPool{pool("10.0.0.5", "10.0.0.5")}},
		{"2001:db8::/64", "2001:db8::1", []model.AllocationPool{pool("2001:db8::2", "2001:db8::ffff:ffff:ffff:ffff")}},
		{"2001:db8::/126", "", []model.AllocationPool{pool("2001:db8::1", "2001:db8::3")}},
	} {
		var gw netip.Addr
		if tc.gw != "" {
			gw = addr(tc.gw)
		}
		got := DefaultPools(pfx(tc.cidr), gw)
		if len(got) != len(tc.want) {
			t.Fatalf("%s gw %s: got %v, want %v", tc.cidr, tc.gw, got, tc.want)
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Fatalf("%s gw %s: got %v, want %v", tc.cidr, tc.gw, got, tc.want)
			}
		}
	}
}

func TestCheckPools(t *testing.T) {
	p := pfx("10.0.0.0/24")
	for _, tc := range []struct {
		gw    string
		pools []model.AllocationPool
		kind  string
	}{
		{"10.0.0.1", []model.AllocationPool{pool("10.0.0.2", "10.0.0.254")}, ""},
		{"10.0.0.1", []model.AllocationPool{pool("10.0.0.0", "10.0.0.10")}, "out-of-bounds"},
		{"10.0.0.1", []model.AllocationPool{pool("10.0.0.2", "10.0.0.255")}, "out-of-bounds"},
		{"10.0.0.1", []model.AllocationPool{pool("10.0.0.9", "10.0.0.2")}, "invalid"},
		{"10.0.0.1", []model.AllocationPool{pool("2001:db8::1", "2001:db8::2")}, "invalid"},
		{"10.0.0.1", []model.AllocationPool{pool("10.0.0.2", "10.0.0.9"), pool("10.0.0.9", "10.0.0.20")}, "overlap"},
		{"10.0.0.5", []model.AllocationPool{pool("10.0.0.2", "10.0.0.9")}, "gateway"},
	} {
		err := CheckPools(p, addr(tc.gw), tc.pools)
		kind := ""
		if pe, ok := err.(*PoolError); ok {
			kind = pe.Kind
		}
		if kind != tc.kind {
			t.Errorf("%v gw %s: got %v, want %q", tc.pools, tc.gw, err, tc.kind)
		}
	}
}

func TestNextFree(t *testing.T) {
	pools := []model.AllocationPool{pool("10.0.0.20", "10.0.0.22"), pool("10.0.0.2", "10.0.0.3")}
	taken := map[netip.Addr]bool{addr("10.0.0.2"): true}
	var got []string
	for {
		a, ok := NextFree(pools, func(a netip.Addr) bool { return taken[a] })
		if !ok {
			break
		}
		got = append(got, a.String())
		taken[a] = true
	}
	want := []string{"10.0.0.3", "10.0.0.20", "10.0.0.21", "10.0.0.22"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}

func TestEUI64AndMAC(t *testing.T) {
	a, err := EUI64(pfx("2001:db8::/64"), "fa:16:3e:12:34:56")
	if err != nil || a != addr("2001:db8::f816:3eff:fe12:3456") {
		t.Fatalf("EUI64 = %v, %v", a, err)
	}
	if _, err := EUI64(pfx("2001:db8::/64"), "nonsense"); err == nil {
		t.Fatal("bad MAC accepted")
	}
	seen := map[string]bool{}
	for range 100 {
		m := RandomMAC("fa:16:3e")
		if len(m) != 17 || m[:9] != "fa:16:3e:" {
			t.Fatalf("mac %q", m)
		}
		seen[m] = true
	}
	if len(seen) < 95 {
		t.Fatalf("only %d distinct MACs in 100", len(seen))
	}
}

// Package ipam holds the address arithmetic behind subnets and ports:
// default gateways and pools, pool checks, free-address search, EUI-64 and
// MAC generation. It knows nothing about storage.
package ipam

import (
	"crypto/rand"
	"fmt"
	"math/big"
	"net/netip"
	"slices"

	"github.com/neutrino-net/neutrino/internal/model"
)

// First returns the network address of p.
func First(p netip.Prefix) netip.Addr { return p.Masked().Addr() }

// Last returns the last address of p (the broadcast address for IPv4).
func Last(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr()
	b := a.AsSlice()
	bits := p.Bits()
	for i := range b {
		for j := 0; j < 8; j++ {
			if i*8+j >= bits {
				b[i] |= 0x80 >> j
			}
		}
	}
	out, _ := netip.AddrFromSlice(b)
	return out
}

// DefaultGateway returns the first host address of p.
func DefaultGateway(p netip.Prefix) netip.Addr {
	first := First(p)
	if first == Last(p) {
		return first
	}
	return first.Next()
}

// HostRange returns the first and last addresses that may be allocated on p:
// the network address is excluded, and for IPv4 the broadcast address too.
// ok is false when no host address exists.
func HostRange(p netip.Prefix) (first, last netip.Addr, ok bool) {
	lo, hi := First(p), Last(p)
	if lo == hi {
		return lo, hi, true
	}
	first = lo.Next()
	last = hi
	if p.Addr().Is4() {
		last = hi.Prev()
	}
	if first.Compare(last) >= 0 {
		return first, last, false
	}
	return first, last, true
}

// DefaultPools returns every host address of p except the gateway, as
// ranges, in the reference's order.
func DefaultPools(p netip.Prefix, gateway netip.Addr) []model.AllocationPool {
	first, last, ok := HostRange(p)
	if !ok {
		return []model.AllocationPool{}
	}
	if !gateway.IsValid() || gateway.Compare(first) < 0 || gateway.Compare(last) > 0 {
		return []model.AllocationPool{{Start: first, End: last}}
	}
	var pools []model.AllocationPool
	if gateway != first {
		pools = append(pools, model.AllocationPool{Start: first, End: gateway.Prev()})
	}
	if gateway != last {
		pools = append(pools, model.AllocationPool{Start: gateway.Next(), End: last})
	}
	if pools == nil {
		pools = []model.AllocationPool{}
	}
	return pools
}

// PoolString formats a pool as the reference does: "start-end".
func PoolString(p model.AllocationPool) string { return p.Start.String() + "-" + p.End.String() }

// PoolError says what is wrong with a set of pools.
type PoolError struct {
	Kind   string // "invalid", "out-of-bounds", "overlap", "gateway"
	Pool   model.AllocationPool
	Other  model.AllocationPool // for overlap
	Reason string
}

func (e *PoolError) Error() string { return e.Kind + ": " + PoolString(e.Pool) }

// CheckPools validates pools against the subnet p and its gateway in the
// reference's order: each pool well formed and inside the host range, then
// no two overlapping, then the gateway outside every pool.
func CheckPools(p netip.Prefix, gateway netip.Addr, pools []model.AllocationPool) error {
	lo, hi := First(p), Last(p)
	if lo != hi {
		lo = lo.Next()
		if p.Addr().Is4() {
			hi = hi.Prev()
		}
	}
	for _, pool := range pools {
		if pool.Start.BitLen() != p.Addr().BitLen() || pool.End.BitLen() != p.Addr().BitLen() || pool.End.Compare(pool.Start) < 0 {
			return &PoolError{Kind: "invalid", Pool: pool}
		}
		if pool.Start.Compare(lo) < 0 || pool.End.Compare(hi) > 0 {
			return &PoolError{Kind: "out-of-bounds", Pool: pool}
		}
	}
	sorted := slices.Clone(pools)
	slices.SortFunc(sorted, func(a, b model.AllocationPool) int { return a.Start.Compare(b.Start) })
	for i := 1; i < len(sorted); i++ {
		if sorted[i].Start.Compare(sorted[i-1].End) <= 0 {
			return &PoolError{Kind: "overlap", Pool: sorted[i-1], Other: sorted[i]}
		}
	}
	if gateway.IsValid() {
		for _, pool := range pools {
			if pool.Contains(gateway) {
				return &PoolError{Kind: "gateway", Pool: pool}
			}
		}
	}
	return nil
}

// NextFree returns the lowest address in pools for which taken is false.
func NextFree(pools []model.AllocationPool, taken func(netip.Addr) bool) (netip.Addr, bool) {
	sorted := slices.Clone(pools)
	slices.SortFunc(sorted, func(a, b model.AllocationPool) int { return a.Start.Compare(b.Start) })
	for _, pool := range sorted {
		for a := pool.Start; a.IsValid() && a.Compare(pool.End) <= 0; a = a.Next() {
			if !taken(a) {
				return a, true
			}
		}
	}
	return netip.Addr{}, false
}

// EUI64 derives the SLAAC address of mac on the /64 prefix p.
func EUI64(p netip.Prefix, mac string) (netip.Addr, error) {
	var m [6]byte
	if _, err := fmt.Sscanf(mac, "%02x:%02x:%02x:%02x:%02x:%02x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]); err != nil {
		return netip.Addr{}, fmt.Errorf("parse mac %q: %w", mac, err)
	}
	b := p.Masked().Addr().As16()
	b[8] = m[0] ^ 0x02
	b[9], b[10], b[11], b[12] = m[1], m[2], 0xff, 0xfe
	b[13], b[14], b[15] = m[3], m[4], m[5]
	return netip.AddrFrom16(b), nil
}

// RandomMAC returns a MAC with the given three-byte prefix ("fa:16:3e").
func RandomMAC(prefix string) string {
	n, err := rand.Int(rand.Reader, big.NewInt(1<<24))
	if err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	v := n.Int64()
	return fmt.Sprintf("%s:%02x:%02x:%02x", prefix, v>>16&0xff, v>>8&0xff, v&0xff)
}

// Overlaps reports whether two prefixes share any address.
func Overlaps(a, b netip.Prefix) bool { return a.Overlaps(b) }

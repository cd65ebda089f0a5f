package ipam

import (
	"net/netip"
	"slices"
)

// AllocatePrefix returns the first prefix of length bits, in the order of
// pools and then of addresses, that lies inside one of pools and overlaps
// none of used; false if there is none.
func AllocatePrefix(pools, used []netip.Prefix, bits int) (netip.Prefix, bool) {
	for _, pool := range pools {
		pool = pool.Masked()
		if bits < pool.Bits() || bits > pool.Addr().BitLen() {
			continue
		}
		in := slices.DeleteFunc(slices.Clone(used), func(u netip.Prefix) bool { return !u.Overlaps(pool) })
		cand := netip.PrefixFrom(pool.Addr(), bits)
		for pool.Contains(cand.Addr()) {
			i := slices.IndexFunc(in, func(u netip.Prefix) bool { return u.Overlaps(cand) })
			if i < 0 {
				return cand, true
			}
			// Skip past the blocking prefix, or the candidate if the
			// blocking one is smaller.
			end := Last(in[i].Masked())
			if in[i].Bits() > bits {
				end = Last(cand)
			}
			next := end.Next()
			if !next.IsValid() || !pool.Contains(next) {
				break
			}
			cand = netip.PrefixFrom(next, bits).Masked()
			if cand.Addr() != next { // not aligned: the next aligned one
				n := Last(cand).Next()
				if !n.IsValid() {
					break
				}
				cand = netip.PrefixFrom(n, bits)
			}
		}
	}
	return netip.Prefix{}, false
}

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

// MergePrefixes returns prefixes without those inside others and with
// every pair of sibling prefixes joined into their parent, sorted.
func MergePrefixes(prefixes []netip.Prefix) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(prefixes))
	for _, p := range prefixes {
		out = append(out, p.Masked())
	}
	for changed := true; changed; {
		changed = false
		slices.SortFunc(out, func(a, b netip.Prefix) int {
			if c := a.Addr().Compare(b.Addr()); c != 0 {
				return c
			}
			return a.Bits() - b.Bits()
		})
		out = slices.Compact(out)
		for i := 0; i+1 < len(out); i++ {
			a, b := out[i], out[i+1]
			switch {
			case a.Overlaps(b): // sorted: a holds b
				out = slices.Delete(out, i+1, i+2)
				changed = true
			case a.Bits() == b.Bits() && a.Bits() > 0 &&
				netip.PrefixFrom(a.Addr(), a.Bits()-1).Masked() == netip.PrefixFrom(b.Addr(), b.Bits()-1).Masked():
				out[i] = netip.PrefixFrom(a.Addr(), a.Bits()-1).Masked()
				out = slices.Delete(out, i+1, i+2)
				changed = true
			}
			if changed {
				break
			}
		}
	}
	return out
}

// SubtractPrefix returns what of a is outside b, as prefixes.
func SubtractPrefix(a, b netip.Prefix) []netip.Prefix {
	a, b = a.Masked(), b.Masked()
	switch {
	case !a.Overlaps(b):
		return []netip.Prefix{a}
	case b.Bits() <= a.Bits(): // b holds a
		return nil
	}
	lo := netip.PrefixFrom(a.Addr(), a.Bits()+1)
	hi := netip.PrefixFrom(Last(lo).Next(), a.Bits()+1)
	return append(SubtractPrefix(lo, b), SubtractPrefix(hi, b)...)
}

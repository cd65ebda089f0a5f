// Package segment holds the network segment vocabulary of the provider
// extension (network types, physical networks, VLAN and VNI ranges) and
// parses the options that configure it: the server's flat_networks,
// network_vlan_ranges, vni_ranges and tenant_network_types, and the
// agent's physical_interface_mappings. It is pure.
package segment

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Network types.
const (
	Flat  = "flat"
	VLAN  = "vlan"
	VXLAN = "vxlan"
	Local = "local"
)

// Types lists the network types, in the order errors name them.
var Types = []string{Flat, Local, VLAN, VXLAN}

// Limits of segmentation ids.
const (
	MinVLAN = 1
	MaxVLAN = 4094
	MinVNI  = 1
	MaxVNI  = 1<<24 - 1
)

// Range is an inclusive range of segmentation ids.
type Range struct{ Min, Max int }

// Size is how many ids r holds.
func (r Range) Size() int { return r.Max - r.Min + 1 }

func (r Range) String() string { return fmt.Sprintf("%d:%d", r.Min, r.Max) }

// Config is what the server allows: physical networks for flat networks
// ("*" allows any), VLAN ranges per physical network (a physical network
// with no range takes admin-chosen VLANs only), VNI ranges for tenant
// VXLAN networks, and the types tenant networks get, in order of
// preference.
type Config struct {
	Flat        []string
	VLAN        map[string][]Range
	VNI         []Range
	TenantTypes []string
}

// physnet is a physical network name: what ML2 accepts in practice.
var physnet = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// ValidPhysnet reports whether name can be a physical network.
func ValidPhysnet(name string) bool { return physnet.MatchString(name) }

func list(v string) []string {
	var out []string
	for _, e := range strings.Split(v, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// ParseFlat parses flat_networks: physical network names, or "*".
func ParseFlat(v string) ([]string, error) {
	out := list(v)
	for _, p := range out {
		if p != "*" && !ValidPhysnet(p) {
			return nil, fmt.Errorf("not a physical network name: %q", p)
		}
	}
	return out, nil
}

func parseRange(lo, hi string, min, max int) (Range, error) {
	a, err1 := strconv.Atoi(lo)
	b, err2 := strconv.Atoi(hi)
	if err1 != nil || err2 != nil || a < min || b > max || a > b {
		return Range{}, fmt.Errorf("not a range within %d:%d: %s:%s", min, max, lo, hi)
	}
	return Range{a, b}, nil
}

// ParseVLANRanges parses network_vlan_ranges: physnet[:min:max],...
func ParseVLANRanges(v string) (map[string][]Range, error) {
	out := map[string][]Range{}
	for _, e := range list(v) {
		f := strings.Split(e, ":")
		if !ValidPhysnet(f[0]) || (len(f) != 1 && len(f) != 3) {
			return nil, fmt.Errorf("not physnet or physnet:min:max: %q", e)
		}
		if _, ok := out[f[0]]; !ok {
			out[f[0]] = []Range{}
		}
		if len(f) == 3 {
			r, err := parseRange(f[1], f[2], MinVLAN, MaxVLAN)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f[0], err)
			}
			out[f[0]] = append(out[f[0]], r)
		}
	}
	return out, nil
}

// ParseVNIRanges parses vni_ranges: min:max,...
func ParseVNIRanges(v string) ([]Range, error) {
	var out []Range
	for _, e := range list(v) {
		lo, hi, ok := strings.Cut(e, ":")
		if !ok {
			return nil, fmt.Errorf("not min:max: %q", e)
		}
		r, err := parseRange(lo, hi, MinVNI, MaxVNI)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// ParseTenantTypes parses tenant_network_types.
func ParseTenantTypes(v string) ([]string, error) {
	out := list(v)
	if len(out) == 0 {
		return nil, fmt.Errorf("at least one type is needed")
	}
	for _, t := range out {
		if !slices.Contains([]string{VXLAN, VLAN, Local}, t) {
			return nil, fmt.Errorf("tenant networks can be vxlan, vlan or local, not %q", t)
		}
	}
	return out, nil
}

// ParseMappings parses physical_interface_mappings: physnet:interface,...
// A physical network and an interface may each appear once.
func ParseMappings(v string) (map[string]string, error) {
	out := map[string]string{}
	used := map[string]bool{}
	for _, e := range list(v) {
		p, iface, ok := strings.Cut(e, ":")
		if !ok || !ValidPhysnet(p) || !validIfname(iface) {
			return nil, fmt.Errorf("not physnet:interface: %q", e)
		}
		if _, dup := out[p]; dup {
			return nil, fmt.Errorf("physical network %s mapped twice", p)
		}
		if used[iface] {
			return nil, fmt.Errorf("interface %s mapped twice", iface)
		}
		out[p], used[iface] = iface, true
	}
	return out, nil
}

// validIfname: what the kernel takes as a link name, minus the odd
// characters.
func validIfname(s string) bool {
	return len(s) > 0 && len(s) < 16 && regexp.MustCompile(`^[A-Za-z0-9_.@-]+$`).MatchString(s) && s != "." && s != ".."
}

// FlatAllowed reports whether a flat network may use physnet.
func (c Config) FlatAllowed(physnet string) bool {
	return slices.Contains(c.Flat, "*") || slices.Contains(c.Flat, physnet)
}

package httpapi

import (
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/neutrino-net/neutrino/api/neutron"
	"github.com/neutrino-net/neutrino/internal/store"
)

// An attribute converter validates and normalises one value from a request
// body. It returns a *reasonError for validator failures and an *opError
// for conversion failures, mirroring the reference's two message shapes.
type converter func(v any) (any, error)

// reasonError renders as "Invalid input for <attr>. Reason: <msg>."
type reasonError struct{ msg string }

func (e *reasonError) Error() string { return e.msg }

// opError renders as "Invalid input for operation: <msg>."
type opError struct{ msg string }

func (e *opError) Error() string { return e.msg }

func reason(format string, args ...any) error { return &reasonError{fmt.Sprintf(format, args...)} }

// attrError turns a converter error into the wire error for attr.
func attrError(attr string, err error) error {
	switch e := err.(type) {
	case *opError:
		return neutron.BadRequest("Invalid input for operation: %s.", e.msg)
	case *reasonError:
		return neutron.InvalidInput(attr, e.msg)
	default:
		return err
	}
}

// filterKind says how a query-string filter on an attribute compares.
type filterKind int

const (
	noFilter   filterKind = iota
	fString               // exact string match
	fBool                 // convert_to_boolean on both sides
	fInt                  // integer match
	fFixedIPs             // fixed_ips=ip_address=...
	fListValue            // the list attribute contains the value
	fTags                 // tags, tags-any, not-tags, not-tags-any (tags.go)
)

// attr is one attribute of a resource, as in the reference's
// RESOURCE_ATTRIBUTE_MAP.
type attr struct {
	name      string
	post, put bool
	required  bool
	conv      converter
	filter    filterKind
	sort      bool
	adminOnly bool // visible (and filterable) only to admins
}

// resource describes one collection of the API.
type resource struct {
	singular, plural string
	attrs            []attr
	byName           map[string]*attr
}

// newResource describes a collection; a tagged one (store.TagKinds) gets
// the tag attributes and filters too.
func newResource(singular, plural string, attrs ...attr) *resource {
	if slices.Contains(store.TagKinds, plural) {
		attrs = append(slices.Clone(attrs), tagAttrs(plural == "ports")...)
	}
	r := &resource{singular: singular, plural: plural, attrs: attrs, byName: map[string]*attr{}}
	for i := range r.attrs {
		if _, dup := r.byName[r.attrs[i].name]; dup {
			panic("duplicate attribute " + r.attrs[i].name)
		}
		r.byName[r.attrs[i].name] = &r.attrs[i]
	}
	return r
}

// Attribute building blocks shared by every resource.
func idAttr() attr { return attr{name: "id", filter: fString, sort: true} }
func projectAttrs() []attr {
	return []attr{
		{name: "tenant_id", post: true, conv: str(255), filter: fString, sort: true},
		{name: "project_id", post: true, conv: str(255), filter: fString, sort: true},
	}
}
func nameAttr() attr {
	return attr{name: "name", post: true, put: true, conv: nameString, filter: fString, sort: true}
}
func descriptionAttr() attr {
	return attr{name: "description", post: true, put: true, conv: str(255), filter: fString, sort: true}
}
func standardAttrs() []attr {
	return []attr{
		{name: "created_at", filter: fString, sort: true},
		{name: "updated_at", filter: fString, sort: true},
		{name: "revision_number", filter: fInt, sort: true},
	}
}

func common(extra ...attr) []attr {
	out := []attr{idAttr(), nameAttr(), descriptionAttr()}
	out = append(out, projectAttrs()...)
	out = append(out, standardAttrs()...)
	return append(out, extra...)
}

// quote renders a value as the reference's messages do.
func quote(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return "None"
	case bool:
		if x {
			return "True"
		}
		return "False"
	case json.Number:
		return x.String()
	default:
		b, _ := json.Marshal(x)
		return string(b)
	}
}

func str(max int) converter {
	return func(v any) (any, error) {
		s, ok := v.(string)
		if !ok {
			return nil, reason("'%s' is not a valid string", quote(v))
		}
		if max > 0 && len(s) > max {
			return nil, reason("'%s' exceeds maximum length of %d", s, max)
		}
		return s, nil
	}
}

func nameString(v any) (any, error) {
	out, err := str(255)(v)
	if err != nil {
		return nil, err
	}
	s := out.(string)
	if s != "" {
		first, last := []rune(s)[0], []rune(s)[len([]rune(s))-1]
		if !unicode.IsPrint(first) || !unicode.IsPrint(last) {
			return nil, reason("'%s' contains leading or trailing non-printable characters", s)
		}
	}
	return s, nil
}

// toBool is convert_to_boolean.
func toBool(v any) (any, error) {
	switch x := v.(type) {
	case bool:
		return x, nil
	case json.Number:
		switch x.String() {
		case "0":
			return false, nil
		case "1":
			return true, nil
		}
	case string:
		switch strings.ToLower(x) {
		case "true", "1":
			return true, nil
		case "false", "0":
			return false, nil
		}
	}
	return nil, &opError{fmt.Sprintf("'%s' cannot be converted to boolean", quote(v))}
}

// toInt is convert_to_int.
func toInt(v any) (any, error) {
	var s string
	switch x := v.(type) {
	case json.Number:
		s = x.String()
	case string:
		s = x
	case bool:
		if x {
			return 1, nil
		}
		return 0, nil
	default:
		return nil, &opError{fmt.Sprintf("'%s' is not an integer", quote(v))}
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return nil, &opError{fmt.Sprintf("'%s' is not an integer", s)}
	}
	// Every integer attribute is a 32-bit column on both stores, as in the
	// reference's schema (where larger values fail in the database).
	if n > math.MaxInt32 || n < math.MinInt32 {
		return nil, &opError{fmt.Sprintf("'%s' is out of range (%d to %d)", s, math.MinInt32, math.MaxInt32)}
	}
	return n, nil
}

func intRange(min, max int) converter {
	return func(v any) (any, error) {
		out, err := toInt(v)
		if err != nil {
			return nil, err
		}
		n := out.(int)
		if n < min {
			return nil, reason("'%d' is too small - must be at least '%d'", n, min)
		}
		if max >= min && n > max {
			return nil, reason("'%d' is too large - must be no larger than '%d'", n, max)
		}
		return n, nil
	}
}

func intOrNone(min, max int) converter {
	return func(v any) (any, error) {
		if v == nil {
			return nil, nil
		}
		return intRange(min, max)(v)
	}
}

func oneOf(values ...string) converter {
	return func(v any) (any, error) {
		s, ok := v.(string)
		if !ok || !slices.Contains(values, s) {
			return nil, reason("%s is not in valid_values", quote(v))
		}
		return s, nil
	}
}

func orNone(c converter) converter {
	return func(v any) (any, error) {
		if v == nil {
			return nil, nil
		}
		return c(v)
	}
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$`)

func uuidConv(v any) (any, error) {
	s, ok := v.(string)
	if !ok || !uuidRE.MatchString(s) {
		return nil, reason("'%s' is not a valid UUID", quote(v))
	}
	return s, nil
}

// cidrConv is validate_subnet plus convert_cidr_to_canonical_format: a
// prefix length is required and the result is canonical.
func cidrConv(v any) (any, error) {
	s, ok := v.(string)
	if !ok {
		return nil, reason("'%s' is not a valid IP subnet", quote(v))
	}
	p, err := parseCIDR(s)
	if err != nil {
		if a, aerr := netip.ParseAddr(s); aerr == nil {
			return nil, reason("'%s' isn't a recognized IP subnet cidr, '%s/%d' is recommended", s, s, a.BitLen())
		}
		return nil, reason("'%s' is not a valid IP subnet", s)
	}
	return p.Masked(), nil
}

// parseCIDR accepts the reference's spellings: IPv4 in dotted quad only.
func parseCIDR(s string) (netip.Prefix, error) {
	if strings.TrimSpace(s) != s {
		return netip.Prefix{}, fmt.Errorf("whitespace")
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if p.Addr().Zone() != "" || p.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("unsupported form")
	}
	return p, nil
}

func ipConv(v any) (any, error) {
	s, ok := v.(string)
	if !ok {
		return nil, reason("'%s' is not a valid IP address", quote(v))
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" || a.Is4In6() {
		return nil, reason("'%s' is not a valid IP address", s)
	}
	return a, nil
}

func macConv(v any) (any, error) {
	s, ok := v.(string)
	if !ok {
		return nil, reason("'%s' is not a valid MAC address", quote(v))
	}
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 || hw[0]&1 == 1 || s == "00:00:00:00:00:00" {
		return nil, reason("'%s' is not a valid MAC address", s)
	}
	return hw.String(), nil
}

func dictConv(v any) (any, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, reason("'%s' is not a dictionary", quote(v))
	}
	return m, nil
}

// toList is convert_to_list: a scalar becomes a one-element list.
func toList(v any) []any {
	switch x := v.(type) {
	case nil:
		return []any{}
	case []any:
		return x
	default:
		return []any{x}
	}
}

func listOf(item converter) converter {
	return func(v any) (any, error) {
		l, ok := v.([]any)
		if !ok {
			return nil, reason("'%s' is not a list", quote(v))
		}
		out := make([]any, len(l))
		for i, x := range l {
			c, err := item(x)
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	}
}

// uniqueListOf is listOf that first refuses repeated items, as the
// reference's list validators (uuid_list and others) do, naming each
// repeated item once in order of first appearance.
func uniqueListOf(item converter) converter {
	return func(v any) (any, error) {
		if l, ok := v.([]any); ok {
			seen := map[string]int{}
			var dups []string
			for _, x := range l {
				if s, ok := x.(string); ok {
					if seen[s]++; seen[s] == 2 {
						dups = append(dups, s)
					}
				}
			}
			if len(dups) > 0 {
				return nil, reason("Duplicate items in the list: '%s'", strings.Join(dups, ", "))
			}
		}
		return listOf(item)(v)
	}
}

// dictSpec checks a dictionary's keys: required ones must be present and no
// other keys may appear; each present key is converted.
func dictSpec(required []string, keys map[string]converter) converter {
	return func(v any) (any, error) {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, reason("'%s' is not a dictionary", quote(v))
		}
		var unexpected []string
		for k := range m {
			if _, ok := keys[k]; !ok {
				unexpected = append(unexpected, k)
			}
		}
		if len(unexpected) > 0 {
			slices.Sort(unexpected)
			return nil, reason("Unexpected keys supplied: %s", strings.Join(unexpected, ", "))
		}
		for _, k := range required {
			if _, ok := m[k]; !ok {
				return nil, reason("Validation of dictionary's keys failed. Expected keys: %s Provided keys: %s",
					keyList(required), keyList(sortedKeys(m)))
			}
		}
		out := make(map[string]any, len(m))
		for k, x := range m {
			c, err := keys[k](x)
			if op, ok := err.(*opError); ok {
				// Inside a dictionary the reference's validators, not its
				// converters, run: their message names the attribute.
				err = reason("%s", op.msg)
			}
			if err != nil {
				return nil, err
			}
			out[k] = c
		}
		return out, nil
	}
}

func keyList(keys []string) string {
	q := make([]string, len(keys))
	for i, k := range keys {
		q[i] = "'" + k + "'"
	}
	return "{" + strings.Join(q, ", ") + "}"
}

func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// ipOrCIDR accepts an address or a prefix (allowed address pairs).
func ipOrCIDR(v any) (any, error) {
	s, ok := v.(string)
	if !ok {
		return nil, reason("'%s' is not a valid IP address", quote(v))
	}
	if strings.Contains(s, "/") {
		if _, err := parseCIDR(s); err != nil {
			return nil, reason("'%s' is not a valid IP subnet", s)
		}
		return s, nil
	}
	if _, err := ipConv(s); err != nil {
		return nil, err
	}
	return s, nil
}

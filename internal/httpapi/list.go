package httpapi

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/neutrino-net/neutrino/api/neutron"
	"github.com/neutrino-net/neutrino/internal/store"
)

// object is a resource in wire form.
type object = map[string]any

var reservedQuery = map[string]bool{
	"fields": true, "sort_key": true, "sort_dir": true, "limit": true, "marker": true, "page_reverse": true, "verbose": true,
}

// listQuery is a parsed collection query.
type listQuery struct {
	filters  map[string][]string
	fields   []string
	sortKeys []string
	sortAsc  []bool
	limit    int
	marker   string
	reverse  bool
}

func parseListQuery(q url.Values, res *resource, admin bool) (*listQuery, error) {
	lq := &listQuery{filters: map[string][]string{}, fields: q["fields"]}
	for k, vs := range q {
		if strings.ContainsRune(k, 0) || slices.ContainsFunc(vs, func(v string) bool { return strings.ContainsRune(v, 0) }) {
			return nil, errNUL
		}
	}
	for k, vs := range q {
		if reservedQuery[k] {
			continue
		}
		if k == "tenant_id" {
			k = "project_id"
		}
		a := res.byName[k]
		if a == nil || a.filter == noFilter || (a.adminOnly && !admin) {
			continue // the reference ignores keys it cannot filter on
		}
		for _, v := range vs {
			if err := checkFilterValue(a, v); err != nil {
				return nil, err
			}
		}
		lq.filters[k] = append(lq.filters[k], vs...)
	}
	keys, dirs := q["sort_key"], q["sort_dir"]
	if len(keys) != len(dirs) {
		return nil, neutron.BadRequest("The number of sort_keys and sort_dirs must be same")
	}
	var badKeys, badDirs []string
	for i, k := range keys {
		if a := res.byName[k]; a == nil || !a.sort {
			badKeys = append(badKeys, "'"+k+"'")
		}
		switch dirs[i] {
		case "asc", "desc":
		default:
			badDirs = append(badDirs, "'"+dirs[i]+"'")
		}
		lq.sortKeys = append(lq.sortKeys, k)
		lq.sortAsc = append(lq.sortAsc, dirs[i] != "desc")
	}
	if len(badKeys) > 0 {
		return nil, neutron.BadRequest("[%s] is invalid attribute for sort_keys", strings.Join(badKeys, ", "))
	}
	if len(badDirs) > 0 {
		return nil, neutron.BadRequest("[%s] is invalid value for sort_dirs, valid value is 'asc' and 'desc'", strings.Join(badDirs, ", "))
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 0 {
			return nil, neutron.BadRequest("Limit must be an integer 0 or greater and not '%s'", l)
		}
		lq.limit = n
	}
	lq.marker = q.Get("marker")
	if pr := q.Get("page_reverse"); pr != "" {
		b, err := toBool(pr)
		if err != nil {
			return nil, attrError("page_reverse", err)
		}
		lq.reverse = b.(bool)
	}
	return lq, nil
}

func checkFilterValue(a *attr, v string) error {
	switch a.filter {
	case fBool:
		if _, err := toBool(v); err != nil {
			return attrError(a.name, err)
		}
	case fInt:
		if _, err := toInt(v); err != nil {
			return attrError(a.name, err)
		}
	}
	return nil
}

// match reports whether o passes every filter.
func (lq *listQuery) match(res *resource, o object) bool {
	for k, want := range lq.filters {
		if res.byName[k].filter == fTags {
			if !matchTags(k, o["tags"], want) {
				return false
			}
			continue
		}
		if !matchAttr(res.byName[k], o[k], want) {
			return false
		}
	}
	return true
}

func matchAttr(a *attr, got any, want []string) bool {
	switch a.filter {
	case fFixedIPs:
		return matchFixedIPs(got, want)
	case fListValue:
		l, _ := got.([]string)
		return slices.ContainsFunc(want, func(w string) bool { return slices.Contains(l, w) })
	case fBool:
		b, ok := got.(bool)
		return ok && slices.ContainsFunc(want, func(w string) bool { v, _ := toBool(w); return v == b })
	case fInt:
		n, ok := got.(int)
		return ok && slices.ContainsFunc(want, func(w string) bool { v, _ := toInt(w); return v == n })
	default:
		s, ok := scalarString(got)
		return ok && slices.Contains(want, s)
	}
}

func scalarString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case fmt.Stringer:
		return x.String(), true
	case nil:
		return "", false
	default:
		return fmt.Sprint(x), true
	}
}

// matchFixedIPs implements fixed_ips=ip_address=X&fixed_ips=subnet_id=Y:
// a port matches when one of its addresses satisfies every key given.
func matchFixedIPs(got any, want []string) bool {
	conds := map[string][]string{}
	for _, w := range want {
		k, v, ok := strings.Cut(w, "=")
		if !ok {
			continue
		}
		conds[k] = append(conds[k], v)
	}
	ips, _ := got.([]object)
	for _, ip := range ips {
		ok := true
		for k, vs := range conds {
			var s string
			switch k {
			case "ip_address", "subnet_id":
				s, _ = ip[k].(string)
				ok = ok && slices.Contains(vs, s)
			case "ip_address_substr":
				s, _ = ip["ip_address"].(string)
				ok = ok && slices.ContainsFunc(vs, func(sub string) bool { return strings.Contains(s, sub) })
			}
		}
		if ok {
			return true
		}
	}
	return len(ips) == 0 && len(conds) == 0
}

func compareValues(a, b any) int {
	switch x := a.(type) {
	case string:
		y, _ := b.(string)
		return cmp.Compare(x, y)
	case int:
		y, _ := b.(int)
		return cmp.Compare(x, y)
	case bool:
		y, _ := b.(bool)
		switch {
		case x == y:
			return 0
		case !x:
			return -1
		default:
			return 1
		}
	case nil:
		if b == nil {
			return 0
		}
		return -1
	default:
		sa, _ := scalarString(a)
		sb, _ := scalarString(b)
		return cmp.Compare(sa, sb)
	}
}

// listing is a collection's rows, turned into wire objects one at a time
// so that a long list is never held whole in wire form.
type listing struct {
	n    int
	item func(i int) object
}

// wireList lists items, converting each with fn when it is needed.
func wireList[T any](items []T, fn func(*T) object) listing {
	return listing{n: len(items), item: func(i int) object { return fn(&items[i]) }}
}

func objects(objs []object) listing {
	return listing{n: len(objs), item: func(i int) object { return objs[i] }}
}

// each yields the items in order.
func (l listing) each(emit func(object)) error {
	for i := range l.n {
		emit(l.item(i))
	}
	return nil
}

func (l listing) all() []object {
	out := make([]object, l.n)
	for i := range out {
		out[i] = l.item(i)
	}
	return out
}

// order is the walk order of a page: the sort keys, then id to break ties
// (as in the reference), every direction flipped for page_reverse. Only
// pages and sorted lists have one.
func (lq *listQuery) order() (keys []string, asc []bool) {
	keys, asc = lq.sortKeys, lq.sortAsc
	if lq.limit == 0 && len(keys) == 0 {
		return nil, nil
	}
	if !slices.Contains(keys, "id") {
		keys = append(slices.Clone(keys), "id")
		asc = append(slices.Clone(asc), len(asc) == 0 || asc[0])
	}
	if lq.reverse {
		asc = slices.Clone(asc)
		for i := range asc {
			asc[i] = !asc[i]
		}
	}
	return keys, asc
}

// storePage is what of lq the store does: the filters on attributes it
// stores as shown (store.PageAttrs), and, when no filter is left for
// memory and every sort key is such an attribute, the order, marker and
// limit too (pushed). Filters on lists, computed attributes and values the
// store could not compare stay in memory.
func (lq *listQuery) storePage(res *resource) (p store.Page, pushed bool) {
	can := store.PageAttrs[res.plural]
	if len(can) == 0 {
		return p, false
	}
	memory := false
	for k, vs := range lq.filters {
		a := res.byName[k]
		vals, ok := storeValues(a, vs)
		if !ok || !slices.Contains(can, k) {
			memory = true
			continue
		}
		if p.Eq == nil {
			p.Eq = map[string][]any{}
		}
		p.Eq[k] = vals
	}
	keys, asc := lq.order()
	if memory || (lq.marker != "" && len(keys) == 0) || slices.ContainsFunc(keys, func(k string) bool { return !slices.Contains(can, k) }) {
		return p, false // a marker alone walks creation order, in memory
	}
	for i, k := range keys {
		p.Order = append(p.Order, store.SortKey{Attr: k, Desc: !asc[i]})
	}
	p.After, p.Limit = lq.marker, lq.limit
	return p, true
}

// storeValues converts filter values to what the store compares: bools,
// ints or strings. A string with a NUL byte is never sent to a database.
func storeValues(a *attr, vs []string) ([]any, bool) {
	out := make([]any, 0, len(vs))
	for _, v := range vs {
		switch a.filter {
		case fBool:
			b, err := toBool(v)
			if err != nil {
				return nil, false
			}
			out = append(out, b)
		case fInt:
			n, err := toInt(v)
			if err != nil {
				return nil, false
			}
			out = append(out, n)
		case fFixedIPs, fListValue, fTags:
			return nil, false
		default:
			if strings.ContainsRune(v, 0) {
				return nil, false
			}
			out = append(out, v)
		}
	}
	return out, true
}

// apply filters, sorts and pages what the store left to do (pushed: the
// store already filtered, ordered and cut it), returning the page and its
// links.
func (lq *listQuery) apply(r *http.Request, base string, res *resource, l listing, pushed bool) (listing, []object) {
	if pushed {
		var links []object
		if lq.limit > 0 {
			links = lq.links(r, base, l)
		}
		if lq.reverse {
			n, item := l.n, l.item
			l.item = func(i int) object { return item(n - 1 - i) }
		}
		return l, links
	}
	objs := l.all()
	out := objs[:0:0]
	for _, o := range objs {
		if lq.match(res, o) {
			out = append(out, o)
		}
	}
	if keys, asc := lq.order(); len(keys) > 0 {
		slices.SortStableFunc(out, func(a, b object) int {
			for i, k := range keys {
				if c := compareValues(a[k], b[k]); c != 0 {
					if !asc[i] {
						return -c
					}
					return c
				}
			}
			return 0
		})
	}
	if lq.marker != "" {
		i := slices.IndexFunc(out, func(o object) bool { return o["id"] == lq.marker })
		if i < 0 {
			out = nil
		} else {
			out = out[i+1:]
		}
	}
	if lq.limit > 0 && len(out) > lq.limit {
		out = out[:lq.limit]
	}
	var links []object
	if lq.limit > 0 {
		links = lq.links(r, base, objects(out))
	}
	if lq.reverse {
		slices.Reverse(out)
	}
	return objects(out), links
}

// links builds the reference's next/previous links for a page (items are
// in walk order, before a reverse page is flipped back).
func (lq *listQuery) links(r *http.Request, base string, items listing) []object {
	var links []object
	if items.n == 0 {
		return links
	}
	short := items.n < lq.limit
	first, last := items.item(0)["id"].(string), items.item(items.n - 1)["id"].(string)
	if lq.reverse {
		first, last = last, first
	}
	href := func(marker string, reverse bool) string {
		q := r.URL.Query()
		q.Set("marker", marker)
		q.Del("page_reverse")
		if reverse {
			q.Set("page_reverse", "True")
		}
		return base + r.URL.Path + "?" + q.Encode()
	}
	if !(short && !lq.reverse) {
		links = append(links, object{"rel": "next", "href": href(last, false)})
	}
	if !(short && lq.reverse) {
		links = append(links, object{"rel": "previous", "href": href(first, true)})
	}
	return links
}

// selectFields keeps only the requested fields of o.
func selectFields(o object, fields []string) object {
	if len(fields) == 0 {
		return o
	}
	out := make(object, len(fields))
	for _, f := range fields {
		if v, ok := o[f]; ok {
			out[f] = v
		}
	}
	return out
}

// listChunk is how many rows a whole list reads from the store at a time.
const listChunk = 500

// streamList writes a whole list (no limit; filters and order done by the
// store) reading it from the store listChunk rows at a time, each chunk
// in its own read after the last row written, so that the server holds
// one chunk however long the list. Should the row a chunk starts after be
// deleted in between, the walk starts over from the beginning and skips
// what it has written, so concurrent deletes never cut the list short.
func (a *API) streamList(w http.ResponseWriter, r *http.Request, c crud, p store.Page, fields []string) {
	start := p.After
	p.Limit = listChunk
	page, err := c.list(r, p)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	written := map[string]struct{}{}
	writeList(w, c.res.plural, func(emit func(object)) error {
		for {
			last := ""
			for i := range page.n {
				o := page.item(i)
				id, _ := o["id"].(string)
				last = id
				if _, dup := written[id]; dup {
					continue
				}
				written[id] = struct{}{}
				emit(o)
			}
			switch {
			case page.n == listChunk:
				p.After = last
			case page.n > 0 || p.After == start:
				return nil // a short chunk: the end
			default:
				// Nothing after a full chunk's last row: the end, unless
				// that row is gone.
				here, err := c.list(r, store.Page{Eq: map[string][]any{"id": {p.After}}, Limit: 1})
				if err != nil {
					a.log.ErrorContext(r.Context(), "list cut short", "request_id", requestID(r), "error", err)
					return err
				}
				if here.n > 0 {
					return nil
				}
				p.After = start
			}
			if page, err = c.list(r, p); err != nil {
				a.log.ErrorContext(r.Context(), "list cut short", "request_id", requestID(r), "error", err)
				return err
			}
		}
	}, fields, nil)
}

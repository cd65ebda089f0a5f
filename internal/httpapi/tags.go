package httpapi

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"github.com/neutrino-net/neutrino/api/neutron"
	"github.com/neutrino-net/neutrino/internal/service"
	"github.com/neutrino-net/neutrino/internal/store"
)

// The standard-attr-tag extension: a tags attribute on every tagged
// resource (settable on POST for ports only, as in the reference), the
// filters tags, tags-any, not-tags and not-tags-any, and the sub-resource
// {collection}/{id}/tags[/{tag}].

// tagFilters are the query keys filtering on tags.
var tagFilters = []string{"tags", "tags-any", "not-tags", "not-tags-any"}

// tagAttrs are the tag attributes of a tagged resource; post allows tags
// on POST.
func tagAttrs(post bool) []attr {
	var attrs []attr
	for _, k := range tagFilters {
		a := attr{name: k, filter: fTags}
		if k == "tags" && post {
			a.post, a.conv = true, tagListConv
		}
		attrs = append(attrs, a)
	}
	return attrs
}

// isTagged reports whether a collection carries tags.
func isTagged(res *resource) bool { return slices.Contains(store.TagKinds, res.plural) }

// tagListConv checks a list of unique strings of at most 255 bytes each.
func tagListConv(v any) (any, error) {
	l, ok := v.([]any)
	if !ok {
		return nil, reason("'%s' is not a list", quote(v))
	}
	out := make([]string, 0, len(l))
	for _, e := range l {
		s, ok := e.(string)
		if !ok {
			return nil, reason("'%s' is not a valid string", quote(e))
		}
		if len(s) > service.MaxTagLen {
			return nil, reason("'%s' exceeds maximum length of %d", s, service.MaxTagLen)
		}
		if slices.Contains(out, s) {
			return nil, reason("Duplicate items in the list: '%s'", s)
		}
		out = append(out, s)
	}
	return out, nil
}

// tagValues splits the values of a tag filter at commas, as the reference
// does (?tags=a,b and ?tags=a&tags=b are the same).
func tagValues(vs []string) []string {
	var out []string
	for _, v := range vs {
		for t := range strings.SplitSeq(v, ",") {
			if t != "" {
				out = append(out, t)
			}
		}
	}
	return out
}

// matchTags applies one tag filter: tags (all given), tags-any (one of
// them), not-tags (not all of them), not-tags-any (none of them).
func matchTags(key string, got any, want []string) bool {
	have, _ := got.([]string)
	want = tagValues(want)
	if len(want) == 0 {
		return true
	}
	has := func(t string) bool { return slices.Contains(have, t) }
	switch key {
	case "tags":
		return !slices.ContainsFunc(want, func(t string) bool { return !has(t) })
	case "tags-any":
		return slices.ContainsFunc(want, has)
	case "not-tags":
		return slices.ContainsFunc(want, func(t string) bool { return !has(t) })
	default: // not-tags-any
		return !slices.ContainsFunc(want, has)
	}
}

// withTags makes c show each resource's tags, and set them from a POST
// body where the resource allows it.
func (a *API) withTags(c crud) crud {
	kind := c.res.plural
	decorate := func(r *http.Request, objs []object) error {
		ids := make([]string, 0, len(objs))
		for _, o := range objs {
			if id, ok := o["id"].(string); ok {
				ids = append(ids, id)
			}
		}
		if len(ids) == 0 {
			return nil
		}
		tags, err := a.svc.Tags(r.Context(), kind, ids)
		if err != nil {
			return err
		}
		for _, o := range objs {
			id, _ := o["id"].(string)
			t := tags[id]
			if t == nil {
				t = []string{}
			}
			o["tags"] = t
		}
		return nil
	}
	one := func(r *http.Request, o object, err error) (object, error) {
		if err != nil {
			return nil, err
		}
		return o, decorate(r, []object{o})
	}
	list, show, create, update := c.list, c.show, c.create, c.update
	c.list = func(r *http.Request, p store.Page) (listing, error) {
		l, err := list(r, p)
		if err != nil {
			return l, err
		}
		objs := l.all()
		return objects(objs), decorate(r, objs)
	}
	c.show = func(r *http.Request, id string) (object, error) {
		o, err := show(r, id)
		return one(r, o, err)
	}
	if create != nil {
		// A resource created with tags gets them in its own transaction.
		c.create = func(r *http.Request, v values) (object, error) {
			tags, set := v["tags"].([]string)
			if !set || len(tags) == 0 {
				o, err := create(r, v)
				return one(r, o, err)
			}
			var o object
			err := a.svc.Batch(r.Context(), func(ctx context.Context) error {
				rc := r.WithContext(ctx)
				var err error
				if o, err = create(rc, v); err != nil {
					return err
				}
				id, _ := o["id"].(string)
				project, _ := o["project_id"].(string)
				if _, err := a.svc.TagNew(ctx, kind, id, project, tags); err != nil {
					return err
				}
				o, err = one(rc, o, nil)
				return err
			})
			return o, err
		}
	}
	if update != nil {
		c.update = func(r *http.Request, id string, v values) (object, error) {
			o, err := update(r, id, v)
			return one(r, o, err)
		}
	}
	return c
}

// mountTags serves path/{id}/tags and path/{id}/tags/{tag} for c.
func (a *API) mountTags(path string, c crud) {
	kind := c.res.plural
	// owner shows the resource (a 404 when the caller may not see it) and
	// returns its project and tags.
	owner := func(r *http.Request) (string, []string, error) {
		o, err := c.show(r, r.PathValue("id"))
		if err != nil {
			return "", nil, err
		}
		project, _ := o["project_id"].(string)
		tags, _ := o["tags"].([]string)
		return project, tags, nil
	}
	edit := func(w http.ResponseWriter, r *http.Request, verb string, fn service.TagEdit) ([]string, bool) {
		project, _, err := owner(r)
		if err != nil {
			a.fail(w, r, err)
			return nil, false
		}
		tags, err := a.svc.EditTags(r.Context(), kind, r.PathValue("id"), project, verb, fn)
		if err != nil {
			a.fail(w, r, err)
			return nil, false
		}
		return tags, true
	}
	a.mux.HandleFunc(path+"/{id}/tags", func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet:
			_, tags, err := owner(r)
			if err != nil {
				a.fail(w, r, err)
				return
			}
			writeJSON(w, http.StatusOK, object{"tags": tags})
		case http.MethodPut, http.MethodPost: // replace all; add (tag-creation)
			body, err := tagsBody(r)
			if err != nil {
				a.fail(w, r, err)
				return
			}
			status, verb := http.StatusOK, "update"
			fn := func([]string) ([]string, error) { return body, nil }
			if r.Method == http.MethodPost {
				status, verb = http.StatusCreated, "create"
				fn = func(old []string) ([]string, error) {
					out := slices.Clone(old)
					for _, t := range body {
						if !slices.Contains(out, t) {
							out = append(out, t)
						}
					}
					return out, nil
				}
			}
			tags, ok := edit(w, r, verb, fn)
			if ok {
				writeJSON(w, status, object{"tags": tags})
			}
		case http.MethodDelete:
			if _, ok := edit(w, r, "delete", func([]string) ([]string, error) { return nil, nil }); ok {
				w.WriteHeader(http.StatusNoContent)
			}
		default:
			methodNotAllowed(w, r)
		}
	})
	a.mux.HandleFunc(path+"/{id}/tags/{tag}", func(w http.ResponseWriter, r *http.Request) {
		tag := r.PathValue("tag")
		if err := service.CheckTag(tag); err != nil {
			a.fail(w, r, err)
			return
		}
		switch r.Method {
		case http.MethodGet:
			_, tags, err := owner(r)
			if err != nil {
				a.fail(w, r, err)
				return
			}
			if !slices.Contains(tags, tag) {
				a.fail(w, r, service.ErrTagNotFound(tag))
				return
			}
			w.WriteHeader(http.StatusNoContent)
		case http.MethodPut:
			if _, ok := edit(w, r, "update", func(old []string) ([]string, error) {
				if slices.Contains(old, tag) {
					return old, nil
				}
				return append(slices.Clone(old), tag), nil
			}); ok {
				w.WriteHeader(http.StatusCreated)
			}
		case http.MethodDelete:
			if _, ok := edit(w, r, "delete", func(old []string) ([]string, error) {
				i := slices.Index(old, tag)
				if i < 0 {
					return nil, service.ErrTagNotFound(tag)
				}
				return slices.Delete(slices.Clone(old), i, i+1), nil
			}); ok {
				w.WriteHeader(http.StatusNoContent)
			}
		default:
			methodNotAllowed(w, r)
		}
	})
}

// tagsBody reads {"tags": [...]}, refusing anything else as the reference
// does.
func tagsBody(r *http.Request) ([]string, error) {
	body, err := readJSON(r)
	if err != nil {
		return nil, err
	}
	m, ok := body.(map[string]any)
	if !ok {
		return nil, neutron.Typed(http.StatusBadRequest, "InvalidInput", "Invalid input for operation: Invalid tags body.")
	}
	raw, ok := m["tags"]
	if !ok {
		return nil, neutron.Typed(http.StatusBadRequest, "InvalidInput", "Invalid input for operation: Invalid tags body.")
	}
	l, ok := raw.([]any)
	if !ok {
		return nil, neutron.Typed(http.StatusBadRequest, "InvalidInput", "Invalid input for operation: '%s' is not a list.", quote(raw))
	}
	out := make([]string, 0, len(l))
	for _, e := range l {
		s, ok := e.(string)
		if !ok {
			return nil, neutron.Typed(http.StatusBadRequest, "InvalidInput", "Invalid input for operation: '%s' is not a valid string.", quote(e))
		}
		out = append(out, s)
	}
	return out, service.CheckTags(out)
}

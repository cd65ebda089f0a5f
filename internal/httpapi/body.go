package httpapi

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/neutrino-net/neutrino/api/neutron"
)

// MaxBodyBytes is the largest request body accepted (the reference's
// max_request_body_size).
const MaxBodyBytes = 1 << 20

var errTooLarge = &neutron.Error{Status: http.StatusRequestEntityTooLarge, Type: "HTTPRequestEntityTooLarge", Message: "Request is too large."}

// readJSON decodes a request body into a generic value, keeping numbers as
// json.Number so integers and strings stay distinguishable.
// readObject reads a body that must be a JSON object (the bodies without
// a resource envelope: add_router_interface, l3-agent scheduling).
func readObject(r *http.Request) (map[string]any, error) {
	body, err := readJSON(r)
	if err != nil {
		return nil, err
	}
	m, ok := body.(map[string]any)
	if !ok {
		return nil, neutron.BadRequest("Malformed request body")
	}
	return m, nil
}

func readJSON(r *http.Request) (any, error) {
	data, err := io.ReadAll(r.Body)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, errTooLarge
	}
	if err != nil {
		return nil, neutron.BadRequest("Malformed request body")
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, neutron.BadRequest("Resource body required")
	}
	return decodeJSON(data)
}

func decodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, neutron.BadRequest("Malformed request body")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, neutron.BadRequest("Malformed request body")
	}
	if hasNUL(v) {
		return nil, errNUL
	}
	return v, nil
}

// errNUL refuses a NUL character in a request: no attribute can hold one,
// and PostgreSQL refuses it in text.
var errNUL = neutron.BadRequest("Invalid input: strings must not contain NUL characters.")

// hasNUL reports whether a decoded JSON value has a NUL in any string or key.
func hasNUL(v any) bool {
	switch x := v.(type) {
	case string:
		return strings.ContainsRune(x, 0)
	case []any:
		for _, e := range x {
			if hasNUL(e) {
				return true
			}
		}
	case map[string]any:
		for k, e := range x {
			if strings.ContainsRune(k, 0) || hasNUL(e) {
				return true
			}
		}
	}
	return false
}

// values are the converted attributes of a request, only those given.
type values map[string]any

func (v values) has(k string) bool { _, ok := v[k]; return ok }

func (v values) str(k string) string { s, _ := v[k].(string); return s }

func (v values) boolean(k string, def bool) bool {
	if b, ok := v[k].(bool); ok {
		return b
	}
	return def
}

// parseBody checks the envelope and every attribute of a POST (put=false)
// or PUT (put=true) body for res, in the reference's order: unknown
// attributes, attributes not allowed, required ones, then each converter.
func parseBody(r *http.Request, res *resource, put bool) (values, error) {
	body, err := readJSON(r)
	if err != nil {
		return nil, err
	}
	return parseEnvelope(body, res, put)
}

func parseEnvelope(body any, res *resource, put bool) (values, error) {
	top, ok := body.(map[string]any)
	if !ok {
		return nil, neutron.BadRequest("Unable to find '%s' in request body", res.singular)
	}
	raw, ok := top[res.singular]
	if !ok {
		if _, bulk := top[res.plural]; bulk {
			return nil, neutron.BadRequest("Bulk operation not supported")
		}
		return nil, neutron.BadRequest("Unable to find '%s' in request body", res.singular)
	}
	in, ok := raw.(map[string]any)
	if !ok {
		return nil, neutron.BadRequest("Unable to find '%s' in request body", res.singular)
	}
	return parseAttrs(in, res, put)
}

func parseAttrs(in map[string]any, res *resource, put bool) (values, error) {
	var unknown []string
	for k := range in {
		if res.byName[k] == nil {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return nil, neutron.BadRequest("Unrecognized attribute(s) '%s'", strings.Join(unknown, ", "))
	}
	for _, a := range res.attrs {
		if _, ok := in[a.name]; !ok {
			continue
		}
		if put && !a.put {
			return nil, neutron.BadRequest("Cannot update read-only attribute %s", a.name)
		}
		if !put && !a.post {
			return nil, neutron.BadRequest("Attribute '%s' not allowed in POST", a.name)
		}
	}
	if !put {
		for _, a := range res.attrs {
			if _, ok := in[a.name]; a.required && !ok {
				return nil, neutron.BadRequest("Failed to parse request. Required attribute '%s' not specified", a.name)
			}
		}
	}
	out := make(values, len(in))
	for _, a := range res.attrs {
		v, ok := in[a.name]
		if !ok {
			continue
		}
		if a.conv != nil {
			c, err := a.conv(v)
			if err != nil {
				return nil, attrError(a.name, err)
			}
			v = c
		}
		out[a.name] = v
	}
	if err := reconcileProject(out); err != nil {
		return nil, err
	}
	return out, nil
}

// reconcileProject merges tenant_id and project_id into project_id.
func reconcileProject(v values) error {
	t, hasT := v["tenant_id"]
	p, hasP := v["project_id"]
	if hasT && hasP && t != p {
		return neutron.BadRequest("'project_id' and 'tenant_id' do not match")
	}
	if hasT && !hasP {
		v["project_id"] = t
	}
	delete(v, "tenant_id")
	return nil
}

// writeJSON writes v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// writeList streams a collection: {"<plural>": [...], "<plural>_links":
// [...]}, one object at a time through a buffer, so a long list is never
// held whole in wire form or as one JSON document. each yields the items;
// an error from it, once the status is sent, can only cut the reply
// short: writeList aborts the connection (net/http.ErrAbortHandler) so
// that the client never takes a truncated list for a whole one.
func writeList(w http.ResponseWriter, plural string, each func(emit func(object)) error, fields []string, links []object) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 32<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	name, _ := json.Marshal(plural)
	bw.WriteString("{")
	bw.Write(name)
	bw.WriteString(": [")
	first := true
	err := each(func(o object) {
		if !first {
			bw.WriteString(", ")
		}
		first = false
		_ = enc.Encode(selectFields(o, fields)) // Encode ends each value with a newline
	})
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	bw.WriteString("]")
	if links != nil {
		name, _ := json.Marshal(plural + "_links")
		bw.WriteString(", ")
		bw.Write(name)
		bw.WriteString(": ")
		_ = enc.Encode(links)
	}
	bw.WriteString("}\n")
	_ = bw.Flush()
}

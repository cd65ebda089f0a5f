// Package httpapi is Neutrino's OpenStack Networking v2.0 wire layer:
// routes, envelopes, attribute validation, filters, fields, sorting,
// pagination, extensions and NeutronError bodies. Rules live in the
// service layer; this package only translates.
package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/neutrino-net/neutrino/api/neutron"
	"github.com/neutrino-net/neutrino/internal/auth"
	"github.com/neutrino-net/neutrino/internal/identity"
	"github.com/neutrino-net/neutrino/internal/service"
	"github.com/neutrino-net/neutrino/internal/store"
)

// Options configure the API handler.
type Options struct {
	Service *service.Service
	Auth    auth.Authenticator
	Logger  *slog.Logger
	// PublicURL is the base of links (e.g. "http://api.example:9696");
	// empty means derived from each request's Host.
	PublicURL string
	// Observe, if set, is called after each request with its method, its
	// route template (e.g. "/v2.0/ports/{id}"; "unmatched" for a path no
	// route serves, "none" for a request refused before routing), status
	// and duration (metrics). Routes are templates, never raw ids, so
	// their number is bounded.
	Observe func(method, route string, status int, d time.Duration)
	// Metrics, if set, is served at GET /metrics without authentication
	// (Prometheus scrapes). It is not a resource: /v2.0 does not list it.
	Metrics http.Handler
}

// API is the HTTP handler of the Networking API.
type API struct {
	opts Options
	svc  *service.Service
	log  *slog.Logger
	mux  *http.ServeMux
}

// New returns the API handler.
func New(opts Options) *API {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Auth == nil {
		opts.Auth = auth.NoAuth{}
	}
	a := &API{opts: opts, svc: opts.Service, log: opts.Logger, mux: http.NewServeMux()}
	a.routes()
	return a
}

type ctxKey int

const requestIDKey ctxKey = 0

// requestID is the id ServeHTTP gave r.
func requestID(r *http.Request) string {
	id, _ := r.Context().Value(requestIDKey).(string)
	return id
}

// ServeHTTP implements http.Handler: request id, body limit, path
// normalisation, authentication, recovery and access logging.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	reqID := "req-" + uuid.NewString()
	w.Header().Set("X-Openstack-Request-Id", reqID)
	sw := &statusWriter{ResponseWriter: w}
	ctx := context.WithValue(r.Context(), requestIDKey, reqID)
	r = r.WithContext(ctx)
	scrape := false
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler { // a reply cut short on purpose, already logged
				panic(p)
			}
			a.log.ErrorContext(ctx, "panic serving request", "request_id", reqID, "panic", p)
			if sw.status == 0 {
				writeError(sw, neutron.Internal())
			}
		}
		if sw.status == 0 {
			sw.status = http.StatusOK // what net/http sends for an empty reply
		}
		d := time.Since(start)
		a.log.InfoContext(ctx, "request", "request_id", reqID, "method", r.Method, "path", r.URL.Path,
			"status", sw.status, "duration_ms", float64(d.Microseconds())/1000)
		if a.opts.Observe != nil {
			a.opts.Observe(r.Method, routeOf(r, scrape), sw.status, d)
		}
	}()
	if r.ContentLength > MaxBodyBytes {
		writeError(sw, errTooLarge)
		return
	}
	r.Body = http.MaxBytesReader(sw, r.Body, MaxBodyBytes)
	r.URL.Path = normalizePath(r.URL.Path)
	if strings.ContainsRune(r.URL.Path, 0) { // no id or route has one
		writeError(sw, neutron.NotFound("HTTPNotFound", "The resource could not be found."))
		return
	}
	if r.URL.Path == metricsPath && a.opts.Metrics != nil {
		scrape = true
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			methodNotAllowed(sw, r)
			return
		}
		a.opts.Metrics.ServeHTTP(sw, r)
		return
	}
	if r.URL.Path != "/" {
		id, err := a.opts.Auth.Authenticate(r)
		if err != nil {
			a.authError(sw, r, err)
			return
		}
		r = r.WithContext(identity.WithIdentity(ctx, id))
	}
	a.mux.ServeHTTP(sw, r)
}

// metricsPath serves Options.Metrics.
const metricsPath = "/metrics"

// routeOf is the route template that served r, without the method that
// some patterns start with.
func routeOf(r *http.Request, scrape bool) string {
	switch p := r.Pattern; {
	case scrape:
		return metricsPath
	case p == "":
		return "none" // refused before routing: body too large, authentication
	case p == "/" && r.URL.Path != "/":
		return "unmatched" // the catch-all's 404
	default:
		if i := strings.IndexByte(p, ' '); i >= 0 {
			p = p[i+1:]
		}
		return p
	}
}

func (a *API) authError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, auth.ErrUnauthorized) {
		w.Header().Set("WWW-Authenticate", "Keystone uri='"+a.opts.PublicURL+"'")
		writeError(w, &neutron.Error{Status: http.StatusUnauthorized, Type: "HTTPUnauthorized", Message: "Authentication required"})
		return
	}
	a.log.ErrorContext(r.Context(), "authentication backend failed", "error", err)
	writeError(w, &neutron.Error{Status: http.StatusServiceUnavailable, Type: "ServiceUnavailable", Message: "The identity service is not available."})
}

// normalizePath drops a ".json" suffix and a trailing slash, as the
// reference accepts both.
func normalizePath(p string) string {
	p = strings.TrimSuffix(p, ".json")
	if len(p) > 1 {
		p = strings.TrimRight(p, "/")
	}
	if p == "" {
		return "/"
	}
	return p
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func writeError(w http.ResponseWriter, e *neutron.Error) {
	writeJSON(w, e.Status, e.Body())
}

// statusOf is the HTTP status of each kind of refusal of the service.
var statusOf = map[service.Kind]int{
	service.Invalid:            http.StatusBadRequest,
	service.Forbidden:          http.StatusForbidden,
	service.NotFound:           http.StatusNotFound,
	service.Conflict:           http.StatusConflict,
	service.Unavailable:        http.StatusServiceUnavailable,
	service.PreconditionFailed: http.StatusPreconditionFailed,
}

// fail renders err: a refusal of the service with its kind's status and a
// NeutronError body, a *neutron.Error of this layer as itself, anything
// else as the reference's opaque 500 (logged with the request id).
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	var se *service.Error
	if errors.As(err, &se) {
		if status, ok := statusOf[se.Kind]; ok {
			writeError(w, neutron.Typed(status, se.Type, "%s", se.Message))
			return
		}
	}
	var ne *neutron.Error
	if errors.As(err, &ne) {
		writeError(w, ne)
		return
	}
	if errors.Is(err, context.Canceled) {
		writeError(w, &neutron.Error{Status: 499, Type: "HTTPClientClosedRequest", Message: "Client closed the request."})
		return
	}
	reqID, _ := r.Context().Value(requestIDKey).(string)
	a.log.ErrorContext(r.Context(), "request failed", "request_id", reqID, "error", err)
	writeError(w, neutron.Internal())
}

// baseURL is the scheme and host that links start with.
func (a *API) baseURL(r *http.Request) string {
	if a.opts.PublicURL != "" {
		return strings.TrimRight(a.opts.PublicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func notFoundRoute(w http.ResponseWriter, _ *http.Request) {
	writeError(w, neutron.NotFound("HTTPNotFound", "The resource could not be found."))
}

func methodNotAllowed(w http.ResponseWriter, _ *http.Request) {
	writeError(w, &neutron.Error{Status: http.StatusMethodNotAllowed, Type: "HTTPMethodNotAllowed", Message: "The method is not allowed for this resource."})
}

// crud wires one collection to the service.
type crud struct {
	res    *resource
	list   func(r *http.Request, p store.Page) (listing, error)
	show   func(r *http.Request, id string) (object, error)
	create func(r *http.Request, v values) (object, error)
	update func(r *http.Request, id string, v values) (object, error)
	remove func(r *http.Request, id string) error
}

func isAdmin(r *http.Request) bool { return identity.FromContext(r.Context()).Admin() }

// mount registers path and path/{id} for c.
func (a *API) mount(path string, c crud) {
	if isTagged(c.res) {
		c = a.withTags(c)
		a.mountTags(path, c)
	}
	a.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet:
			lq, err := parseListQuery(r.URL.Query(), c.res, isAdmin(r))
			if err != nil {
				a.fail(w, r, err)
				return
			}
			sp, pushed := lq.storePage(c.res)
			if pushed && sp.Limit == 0 && !lq.reverse {
				a.streamList(w, r, c, sp, lq.fields)
				return
			}
			l, err := c.list(r, sp)
			if err != nil {
				a.fail(w, r, err)
				return
			}
			page, links := lq.apply(r, a.baseURL(r), c.res, l, pushed)
			writeList(w, c.res.plural, page.each, lq.fields, links)
		case http.MethodPost:
			if c.create == nil {
				methodNotAllowed(w, r)
				return
			}
			body, err := readJSON(r)
			if err != nil {
				a.fail(w, r, err)
				return
			}
			if items, ok := bulkItems(body, c.res); ok {
				a.bulkCreate(w, r, c, items)
				return
			}
			v, err := parseEnvelope(body, c.res, false)
			if err != nil {
				a.fail(w, r, err)
				return
			}
			o, err := c.create(r, v)
			if err != nil {
				a.fail(w, r, err)
				return
			}
			writeJSON(w, http.StatusCreated, object{c.res.singular: o})
		default:
			methodNotAllowed(w, r)
		}
	})
	a.mux.HandleFunc(path+"/{id}", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if r.Method == http.MethodPut || r.Method == http.MethodDelete {
			var err error
			if r, err = withIfMatch(r, c.res.plural, id); err != nil {
				a.fail(w, r, err)
				return
			}
		}
		switch r.Method {
		case http.MethodGet:
			o, err := c.show(r, id)
			if err != nil {
				a.fail(w, r, err)
				return
			}
			writeJSON(w, http.StatusOK, object{c.res.singular: selectFields(o, r.URL.Query()["fields"])})
		case http.MethodPut:
			if c.update == nil {
				methodNotAllowed(w, r)
				return
			}
			v, err := parseBody(r, c.res, true)
			if err != nil {
				a.fail(w, r, err)
				return
			}
			o, err := c.update(r, id, v)
			if err != nil {
				a.fail(w, r, err)
				return
			}
			writeJSON(w, http.StatusOK, object{c.res.singular: o})
		case http.MethodDelete:
			if err := c.remove(r, id); err != nil {
				a.fail(w, r, err)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		default:
			methodNotAllowed(w, r)
		}
	})
}

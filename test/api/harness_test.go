// Package api_test drives Neutrino's Networking API end to end with real
// clients (gophercloud, plain HTTP) against a real server and store, on
// SQLite and, when configured, PostgreSQL.
package api_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/neutrino-net/neutrino/internal/auth"
	"github.com/neutrino-net/neutrino/internal/httpapi"
	"github.com/neutrino-net/neutrino/internal/service"
	"github.com/neutrino-net/neutrino/internal/store/sqlstore/sqltest"
)

const (
	projectA = "8a5c3e1f0b6d4c2aa1e2f3a4b5c6d7e8"
	projectB = "1b2c3d4e5f60718293a4b5c6d7e8f901"
)

// env is one running API with clients for an admin and two projects.
type env struct {
	t       *testing.T
	url     string
	svc     *service.Service
	admin   *gophercloud.ServiceClient
	a, b    *gophercloud.ServiceClient
	readerA *gophercloud.ServiceClient
}

// newEnv starts an API on a fresh store of dialect; tune adjusts the
// service's options.
func newEnv(t *testing.T, dialect string, tune ...func(*service.Options)) *env {
	t.Helper()
	st := sqltest.Open(t, dialect)
	opts := service.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, f := range tune {
		f(&opts)
	}
	svc := service.New(st, opts)
	api := httpapi.New(httpapi.Options{Service: svc, Auth: auth.NoAuth{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return &env{
		t: t, url: srv.URL, svc: svc,
		admin:   client(srv.URL, "admin-project", "admin"),
		a:       client(srv.URL, projectA, "member"),
		b:       client(srv.URL, projectB, "member"),
		readerA: client(srv.URL, projectA, "reader"),
	}
}

// client is a noauth gophercloud client acting as project with roles.
func client(url, project, roles string) *gophercloud.ServiceClient {
	return &gophercloud.ServiceClient{
		ProviderClient: &gophercloud.ProviderClient{},
		Endpoint:       url + "/",
		ResourceBase:   url + "/v2.0/",
		Type:           "network",
		MoreHeaders:    map[string]string{"X-Project-Id": project, "X-Roles": roles, "X-User-Id": "user-" + project},
	}
}

// forEachStore runs fn against a fresh API on every configured store.
func forEachStore(t *testing.T, fn func(t *testing.T, e *env)) {
	sqltest.Run(t, func(t *testing.T, dialect string) { fn(t, newEnv(t, dialect)) })
}

// reply is a raw HTTP response.
type reply struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

// do sends a raw request as project (empty: noauth admin) and decodes the
// JSON reply.
func (e *env) do(method, path, project string, body any) reply {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if project != "" {
		req.Header.Set("X-Project-Id", project)
		req.Header.Set("X-Roles", "member")
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, header: resp.Header, raw: string(data)}
	if len(data) > 0 {
		_ = json.Unmarshal(data, &r.body)
	}
	return r
}

// fault returns the NeutronError type and message of a reply.
func (r reply) fault() (typ, msg string) {
	ne, _ := r.body["NeutronError"].(map[string]any)
	typ, _ = ne["type"].(string)
	msg, _ = ne["message"].(string)
	return typ, msg
}

// must fails the test on err.
func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return v
	}
}

// wantStatus asserts err is a gophercloud error with the HTTP status code.
func wantStatus(t *testing.T, err error, code int) {
	t.Helper()
	var ec gophercloud.ErrUnexpectedResponseCode
	if err == nil {
		t.Fatalf("got success, want HTTP %d", code)
	}
	if !errors.As(err, &ec) {
		t.Fatalf("got %v, want HTTP %d", err, code)
	}
	if ec.Actual != code {
		t.Fatalf("got HTTP %d (%s), want %d", ec.Actual, ec.Body, code)
	}
}

// wantFault asserts err is an HTTP error whose NeutronError has type typ.
func wantFault(t *testing.T, err error, code int, typ string) {
	t.Helper()
	wantStatus(t, err, code)
	var ec gophercloud.ErrUnexpectedResponseCode
	errors.As(err, &ec)
	var body struct {
		NeutronError struct{ Type, Message string }
	}
	if json.Unmarshal(ec.Body, &body) != nil || body.NeutronError.Type != typ {
		t.Fatalf("got fault %s, want type %s", ec.Body, typ)
	}
}

// faultCase is one bad request and the NeutronError it must get.
type faultCase struct {
	name, method, path string
	body               any
	status             int
	typ, msg           string // msg is a substring
}

// runFaultCases sends each case as project A and checks status, fault type,
// message and body shape; no reply may contain secret (when set), and
// snapshot must be unchanged afterwards: rejected requests write nothing.
func runFaultCases(t *testing.T, e *env, cases []faultCase, snapshot func(*env) string, secret string) {
	t.Helper()
	before := snapshot(e)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(tc.method, tc.path, projectA, tc.body)
			if secret != "" && strings.Contains(r.raw, secret) {
				t.Fatalf("the reply echoes the secret: %s", r.raw)
			}
			typ, msg := r.fault()
			if r.status != tc.status || typ != tc.typ || !strings.Contains(msg, tc.msg) {
				t.Fatalf("got %d %s %q, want %d %s containing %q", r.status, typ, msg, tc.status, tc.typ, tc.msg)
			}
			if ne, ok := r.body["NeutronError"].(map[string]any); !ok || ne["detail"] != "" {
				t.Fatalf("body is not a NeutronError: %s", r.raw)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Fatalf("content type = %q", ct)
			}
		})
	}
	if after := snapshot(e); after != before {
		t.Fatalf("rejected requests changed state:\nbefore %s\nafter  %s", before, after)
	}
}

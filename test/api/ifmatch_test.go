package api_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"

	"github.com/neutrino-net/neutrino/internal/service"
)

// rawIfMatch sends method path as project A with an If-Match header and
// body, returning the status and the NeutronError type.
func rawIfMatch(t *testing.T, e *env, method, path, ifMatch, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Project-Id", projectA)
	req.Header.Set("X-Roles", "member")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("If-Match", ifMatch)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, raw: string(data)}
	_ = json.Unmarshal(data, &r.body)
	typ, _ := r.fault()
	return r.status, typ
}

func TestIfMatch(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		n := must[*networks.Network](t)(networks.Create(ctx, e.a, networks.CreateOpts{Name: "n"}).Extract())
		must[*subnets.Subnet](t)(subnets.Create(ctx, e.a, subnets.CreateOpts{NetworkID: n.ID, IPVersion: 4, CIDR: "10.60.0.0/24"}).Extract())
		p := must[*ports.Port](t)(ports.Create(ctx, e.a, ports.CreateOpts{NetworkID: n.ID, Name: "p0"}).Extract())
		rev := p.RevisionNumber

		// The current revision lets the write through and bumps it.
		up := must[*ports.Port](t)(ports.Update(ctx, e.a, p.ID, ports.UpdateOpts{Name: ptr("p1"), RevisionNumber: &rev}).Extract())
		if up.Name != "p1" || up.RevisionNumber != rev+1 {
			t.Fatalf("conditional update = %q rev %d, want p1 rev %d", up.Name, up.RevisionNumber, rev+1)
		}
		// A stale one is refused and changes nothing.
		_, err := ports.Update(ctx, e.a, p.ID, ports.UpdateOpts{Name: ptr("p2"), RevisionNumber: &rev}).Extract()
		wantFault(t, err, 412, "RevisionNumberConstraintFailed")
		if got := must[*ports.Port](t)(ports.Get(ctx, e.a, p.ID).Extract()); got.Name != "p1" || got.RevisionNumber != rev+1 {
			t.Fatalf("after a refused update: %q rev %d", got.Name, got.RevisionNumber)
		}
		// Header forms: other tags are ignored, quotes allowed; two
		// revision tags or a non-integer are bad requests.
		body := `{"port": {"name": "p3"}}`
		cases := []struct {
			header string
			status int
			typ    string
		}{
			{`"abc"`, 200, ""},
			{fmt.Sprintf(`"revision_number=%d"`, rev), 412, "RevisionNumberConstraintFailed"},
			{fmt.Sprintf(`revision_number=%d, revision_number=%d`, rev+2, rev+2), 400, "HTTPBadRequest"},
			{`revision_number=x`, 400, "HTTPBadRequest"},
			{`revision_number=-1`, 400, "HTTPBadRequest"},
		}
		for _, c := range cases {
			status, typ := rawIfMatch(t, e, "PUT", "/v2.0/ports/"+p.ID, c.header, body)
			if status != c.status || typ != c.typ {
				t.Fatalf("If-Match %s: got %d %s, want %d %s", c.header, status, typ, c.status, c.typ)
			}
		}
		cur := must[*ports.Port](t)(ports.Get(ctx, e.a, p.ID).Extract())
		if cur.Name != "p3" || cur.RevisionNumber != rev+2 {
			t.Fatalf("after header forms: %q rev %d, want p3 rev %d", cur.Name, cur.RevisionNumber, rev+2)
		}
		// Another project's port stays a 404, whatever the revision.
		if status, typ := rawIfMatch(t, e, "PUT", "/v2.0/ports/"+mustPortOf(t, e), "revision_number=0", body); status != 404 || typ != "PortNotFound" {
			t.Fatalf("other project's port: %d %s", status, typ)
		}
		// Other resources with revision numbers: networks.
		if status, typ := rawIfMatch(t, e, "PUT", "/v2.0/networks/"+n.ID, "revision_number=99", `{"network": {"name": "x"}}`); status != 412 || typ != "RevisionNumberConstraintFailed" {
			t.Fatalf("stale network update: %d %s", status, typ)
		}
		// VPN resources show no revision number, so none can be matched.
		if status, typ := rawIfMatch(t, e, "PUT", "/v2.0/vpn/ikepolicies/"+p.ID, "revision_number=1", `{"ikepolicy": {"name": "x"}}`); status != 400 || typ != "HTTPBadRequest" {
			t.Fatalf("ikepolicy with If-Match: %d %s", status, typ)
		}
		// DELETE is conditional too.
		if status, typ := rawIfMatch(t, e, "DELETE", "/v2.0/ports/"+p.ID, fmt.Sprintf("revision_number=%d", rev), ""); status != 412 || typ != "RevisionNumberConstraintFailed" {
			t.Fatalf("stale delete: %d %s", status, typ)
		}
		if status, _ := rawIfMatch(t, e, "DELETE", "/v2.0/ports/"+p.ID, fmt.Sprintf("revision_number=%d", rev+2), ""); status != 204 {
			t.Fatalf("conditional delete: %d", status)
		}
		if _, err := ports.Get(ctx, e.a, p.ID).Extract(); !gophercloud.ResponseCodeIs(err, 404) {
			t.Fatalf("port after delete: %v", err)
		}
		r := e.do("GET", "/v2.0/extensions/revision-if-match", projectA, nil)
		if r.status != 200 {
			t.Fatalf("extension revision-if-match: %d %s", r.status, r.raw)
		}
	})
}

// mustPortOf creates a network and port of project B and returns the port's id.
func mustPortOf(t *testing.T, e *env) string {
	n := must[*networks.Network](t)(networks.Create(ctx, e.b, networks.CreateOpts{Name: "b"}).Extract())
	return must[*ports.Port](t)(ports.Create(ctx, e.b, ports.CreateOpts{NetworkID: n.ID}).Extract()).ID
}

// TestIfMatchRace has ten clients add one allowed address pair each to
// the same port by read-modify-write, retrying on 412, as the CNI plugin
// does: no update may be lost.
func TestIfMatchRace(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		n := must[*networks.Network](t)(networks.Create(ctx, e.a, networks.CreateOpts{Name: "n"}).Extract())
		must[*subnets.Subnet](t)(subnets.Create(ctx, e.a, subnets.CreateOpts{NetworkID: n.ID, IPVersion: 4, CIDR: "10.61.0.0/24"}).Extract())
		p := must[*ports.Port](t)(ports.Create(ctx, e.a, ports.CreateOpts{NetworkID: n.ID}).Extract())
		const clients = 10
		var wg sync.WaitGroup
		var mu sync.Mutex
		conflicts := 0
		errs := make([]error, clients)
		for i := range clients {
			wg.Go(func() {
				ip := fmt.Sprintf("10.61.0.%d", 100+i)
				for {
					cur, err := ports.Get(ctx, e.a, p.ID).Extract()
					if err != nil {
						errs[i] = err
						return
					}
					pairs := append(slices.Clone(cur.AllowedAddressPairs), ports.AddressPair{IPAddress: ip})
					rev := cur.RevisionNumber
					_, err = ports.Update(ctx, e.a, p.ID, ports.UpdateOpts{AllowedAddressPairs: &pairs, RevisionNumber: &rev}).Extract()
					if gophercloud.ResponseCodeIs(err, http.StatusPreconditionFailed) {
						mu.Lock()
						conflicts++
						mu.Unlock()
						continue
					}
					errs[i] = err
					return
				}
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		got := must[*ports.Port](t)(ports.Get(ctx, e.a, p.ID).Extract())
		if len(got.AllowedAddressPairs) != clients {
			t.Fatalf("%d pairs after %d concurrent adds (%d conflicts retried): %+v", len(got.AllowedAddressPairs), clients, conflicts, got.AllowedAddressPairs)
		}
		if got.RevisionNumber != p.RevisionNumber+clients {
			t.Fatalf("revision %d, want %d", got.RevisionNumber, p.RevisionNumber+clients)
		}
		t.Logf("%d clients, %d conflicts retried", clients, conflicts)
	})
}

// TestMaxPairs: max_allowed_address_pair raises the reference's limit of
// ten pairs per port (a CNI VM needs one per container), on create and
// on update alike.
func TestMaxPairs(t *testing.T) {
	e := newEnv(t, "sqlite", func(o *service.Options) { o.MaxAllowedAddressPairs = 12 })
	n := must[*networks.Network](t)(networks.Create(ctx, e.a, networks.CreateOpts{Name: "n"}).Extract())
	var pairs []ports.AddressPair
	for i := range 12 {
		pairs = append(pairs, ports.AddressPair{IPAddress: fmt.Sprintf("10.62.0.%d", i+1)})
	}
	p := must[*ports.Port](t)(ports.Create(ctx, e.a, ports.CreateOpts{NetworkID: n.ID, AllowedAddressPairs: pairs}).Extract())
	if len(p.AllowedAddressPairs) != 12 {
		t.Fatalf("%d pairs", len(p.AllowedAddressPairs))
	}
	more := append(slices.Clone(pairs), ports.AddressPair{IPAddress: "10.62.0.99"})
	_, err := ports.Update(ctx, e.a, p.ID, ports.UpdateOpts{AllowedAddressPairs: &more}).Extract()
	wantFault(t, err, 400, "AllowedAddressPairExhausted")
	_, err = ports.Create(ctx, e.a, ports.CreateOpts{NetworkID: n.ID, AllowedAddressPairs: more}).Extract()
	wantFault(t, err, 400, "AllowedAddressPairExhausted")
}

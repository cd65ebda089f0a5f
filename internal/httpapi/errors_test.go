package httpapi

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/neutrino-net/neutrino/internal/service"
)

// TestServiceErrorsMapped: every kind of refusal of the service becomes
// its HTTP status with the service's type and message in a NeutronError;
// an error of no known kind is the opaque 500.
func TestServiceErrorsMapped(t *testing.T) {
	a := &API{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, tc := range []struct {
		kind   service.Kind
		status int
	}{
		{service.Invalid, 400}, {service.Forbidden, 403}, {service.NotFound, 404}, {service.Conflict, 409}, {service.Unavailable, 503}, {service.Kind(99), 500},
	} {
		err := fmt.Errorf("wrapped: %w", &service.Error{Kind: tc.kind, Type: "SomethingWrong", Message: "it is wrong"})
		w := httptest.NewRecorder()
		a.fail(w, httptest.NewRequest("GET", "/v2.0/networks", nil), err)
		var body struct {
			NeutronError struct{ Type, Message, Detail string }
		}
		if json.Unmarshal(w.Body.Bytes(), &body) != nil || w.Code != tc.status {
			t.Fatalf("%v: got %d %s, want %d", tc.kind, w.Code, w.Body, tc.status)
		}
		if tc.status != 500 && (body.NeutronError.Type != "SomethingWrong" || body.NeutronError.Message != "it is wrong") {
			t.Fatalf("%v: body %s", tc.kind, w.Body)
		}
		if tc.status == 500 && body.NeutronError.Type != "HTTPInternalServerError" {
			t.Fatalf("unknown kind: body %s, want the opaque 500", w.Body)
		}
	}
	// Every kind the service defines has a status.
	for k := service.Invalid; k <= service.Unavailable; k++ {
		if _, ok := statusOf[k]; !ok {
			t.Errorf("kind %v has no HTTP status", k)
		}
	}
}

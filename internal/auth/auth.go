package auth

import (
	"errors"
	"github.com/neutrino-net/neutrino/internal/identity"
	"net/http"
	"strings"
)

// ErrUnauthorized means the request carries no valid credentials.
var ErrUnauthorized = errors.New("authentication required")

// Authenticator derives the caller's identity from a request.
type Authenticator interface {
	Authenticate(r *http.Request) (identity.Identity, error)
}

// NoAuth trusts the X-Project-Id, X-User-Id and X-Roles headers, as the
// reference's noauth strategy does. Without X-Project-Id the caller is an
// admin of "fake_project_id".
type NoAuth struct{}

// Authenticate implements Authenticator.
func (NoAuth) Authenticate(r *http.Request) (identity.Identity, error) {
	project := r.Header.Get("X-Project-Id")
	if project == "" {
		project = r.Header.Get("X-Tenant-Id")
	}
	id := identity.Identity{UserID: r.Header.Get("X-User-Id"), ProjectID: project}
	for _, role := range strings.Split(r.Header.Get("X-Roles"), ",") {
		if role = strings.TrimSpace(strings.ToLower(role)); role != "" {
			id.Roles = append(id.Roles, role)
		}
	}
	if project == "" {
		id.ProjectID = "fake_project_id"
		id.Roles = append(id.Roles, "admin")
	}
	if len(id.Roles) == 0 {
		id.Roles = []string{"member", "reader"}
	}
	return id, nil
}

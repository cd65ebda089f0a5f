// Package identity says who is calling: a user, a project and roles,
// carried in the request context from authentication down to the rules.
package identity

import (
	"context"
	"slices"
)

// Identity is who is calling and with which roles.
type Identity struct {
	UserID    string
	ProjectID string
	Roles     []string
}

// Admin reports whether the identity has the admin role.
func (id Identity) Admin() bool { return slices.Contains(id.Roles, "admin") }

// CanWrite reports whether the identity may create, update or delete: a
// reader-only identity may not.
func (id Identity) CanWrite() bool {
	return id.Admin() || slices.Contains(id.Roles, "member") || !slices.Contains(id.Roles, "reader")
}

type ctxKey struct{}

// WithIdentity returns a context carrying id.
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// FromContext returns the identity in ctx; a context without one is an
// anonymous non-admin identity.
func FromContext(ctx context.Context) Identity {
	id, _ := ctx.Value(ctxKey{}).(Identity)
	return id
}

// Package neutron holds the wire shapes shared by Neutrino's HTTP API and
// its clients: the NeutronError body and the fault type names.
package neutron

import "fmt"

// Error is a fault with the reference's exception class name, its HTTP
// status and its message. It is returned by the service layer and rendered
// by the HTTP layer as {"NeutronError": {...}}.
type Error struct {
	Status  int    // HTTP status code
	Type    string // exception class name, e.g. "NetworkNotFound"
	Message string
}

func (e *Error) Error() string { return e.Message }

// Body is the JSON shape of a fault.
type Body struct {
	NeutronError Fault `json:"NeutronError"`
}

// Fault is the inner object of a NeutronError body.
type Fault struct {
	Type    string `json:"type"`
	Message string `json:"message"`
	Detail  string `json:"detail"`
}

// Body returns the wire form of e.
func (e *Error) Body() Body {
	return Body{NeutronError: Fault{Type: e.Type, Message: e.Message}}
}

func newf(status int, typ, format string, args ...any) *Error {
	return &Error{Status: status, Type: typ, Message: fmt.Sprintf(format, args...)}
}

// BadRequest is the framework's generic 400 (HTTPBadRequest).
func BadRequest(format string, args ...any) *Error {
	return newf(400, "HTTPBadRequest", format, args...)
}

// InvalidInput is a 400 for a failed attribute validator.
func InvalidInput(attr, reason string) *Error {
	return newf(400, "HTTPBadRequest", "Invalid input for %s. Reason: %s.", attr, reason)
}

// Typed builds an error of a named exception type.
func Typed(status int, typ, format string, args ...any) *Error {
	return newf(status, typ, format, args...)
}

// NotFound is a 404 of a named type.
func NotFound(typ, format string, args ...any) *Error {
	return newf(404, typ, format, args...)
}

// Conflict is a 409 of a named type.
func Conflict(typ, format string, args ...any) *Error {
	return newf(409, typ, format, args...)
}

// Invalid is a 400 of a named type.
func Invalid(typ, format string, args ...any) *Error {
	return newf(400, typ, format, args...)
}

// Forbidden is a 403 PolicyNotAuthorized for a policy rule.
func Forbidden(rule string) *Error {
	return newf(403, "PolicyNotAuthorized", "rule:%s is disallowed by policy", rule)
}

// Internal is the reference's opaque 500.
func Internal() *Error {
	return newf(500, "HTTPInternalServerError",
		"Request Failed: internal server error while processing your request.")
}

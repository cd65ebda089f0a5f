package service

import "fmt"

// Kind is what went wrong, in terms a client can act on. The service
// decides the kind; only the HTTP layer turns kinds into status codes.
type Kind int

// Kinds of refusal.
const (
	// Invalid: the request itself is wrong.
	Invalid Kind = iota + 1
	// Forbidden: policy refuses the caller.
	Forbidden
	// NotFound: there is no such resource, or it is not the caller's to see.
	NotFound
	// Conflict: the request clashes with the current state.
	Conflict
	// Unavailable: nothing is left to allocate (e.g. no tenant network).
	Unavailable
	// PreconditionFailed: the client's If-Match does not hold.
	PreconditionFailed
)

func (k Kind) String() string {
	switch k {
	case Invalid:
		return "invalid"
	case Forbidden:
		return "forbidden"
	case NotFound:
		return "not found"
	case Conflict:
		return "conflict"
	case Unavailable:
		return "unavailable"
	case PreconditionFailed:
		return "precondition failed"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Error is a rule's refusal: its kind, the reference's exception type name
// (which clients see) and the message.
type Error struct {
	Kind    Kind
	Type    string
	Message string
}

func (e *Error) Error() string { return e.Message }

func refuse(kind Kind, typ, format string, args ...any) *Error {
	return &Error{Kind: kind, Type: typ, Message: fmt.Sprintf(format, args...)}
}

// errInvalid, errNotFound and errConflict refuse with a named exception.
func errInvalid(typ, format string, args ...any) *Error { return refuse(Invalid, typ, format, args...) }

func errNotFound(typ, format string, args ...any) *Error {
	return refuse(NotFound, typ, format, args...)
}

func errConflict(typ, format string, args ...any) *Error {
	return refuse(Conflict, typ, format, args...)
}

// errDenied is a refusal of the caller with a named exception.
func errDenied(typ, format string, args ...any) *Error {
	return refuse(Forbidden, typ, format, args...)
}

// errForbidden is the reference's PolicyNotAuthorized for a policy rule.
func errForbidden(rule string) *Error {
	return refuse(Forbidden, "PolicyNotAuthorized", "rule:%s is disallowed by policy", rule)
}

// errInvalidInput is the framework's 400 for a failed attribute validator.
func errInvalidInput(attr, reason string) *Error {
	return refuse(Invalid, "HTTPBadRequest", "Invalid input for %s. Reason: %s.", attr, reason)
}

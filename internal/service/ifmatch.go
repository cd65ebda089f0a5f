package service

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/neutrino-net/neutrino/internal/model"
	"github.com/neutrino-net/neutrino/internal/store"
)

// revisioned says, per API collection whose resources show a
// revision_number (the VPN resources do not, as in the reference), which lock serialises their writers and how to read
// one. The lock is the one the collection's update and delete take, so a
// revision checked under it cannot change before the write commits.
var revisioned = map[string]struct {
	lock string
	get  func(ctx context.Context, tx store.Tx, id string) (project string, std *model.Standard, err error)
}{
	"networks": {"network:", func(ctx context.Context, tx store.Tx, id string) (string, *model.Standard, error) {
		x, err := tx.GetNetwork(ctx, id)
		return stdOf(x, err, func() (string, *model.Standard) { return x.ProjectID, &x.Standard })
	}},
	"subnets": {"subnet:", func(ctx context.Context, tx store.Tx, id string) (string, *model.Standard, error) {
		x, err := tx.GetSubnet(ctx, id)
		return stdOf(x, err, func() (string, *model.Standard) { return x.ProjectID, &x.Standard })
	}},
	"ports": {"port:", func(ctx context.Context, tx store.Tx, id string) (string, *model.Standard, error) {
		x, err := tx.GetPort(ctx, id)
		return stdOf(x, err, func() (string, *model.Standard) { return x.ProjectID, &x.Standard })
	}},
	"routers": {"router:", func(ctx context.Context, tx store.Tx, id string) (string, *model.Standard, error) {
		x, err := tx.GetRouter(ctx, id)
		return stdOf(x, err, func() (string, *model.Standard) { return x.ProjectID, &x.Standard })
	}},
	"floatingips": {"floatingip:", func(ctx context.Context, tx store.Tx, id string) (string, *model.Standard, error) {
		x, err := tx.GetFloatingIP(ctx, id)
		return stdOf(x, err, func() (string, *model.Standard) { return x.ProjectID, &x.Standard })
	}},
	"security_groups": {"sg:", func(ctx context.Context, tx store.Tx, id string) (string, *model.Standard, error) {
		x, err := tx.GetSecurityGroup(ctx, id)
		return stdOf(x, err, func() (string, *model.Standard) { return x.ProjectID, &x.Standard })
	}},
	"trunks": {"trunk:", func(ctx context.Context, tx store.Tx, id string) (string, *model.Standard, error) {
		x, err := tx.GetTrunk(ctx, id)
		return stdOf(x, err, func() (string, *model.Standard) { return x.ProjectID, &x.Standard })
	}},
}

func stdOf[T any](x *T, err error, f func() (string, *model.Standard)) (string, *model.Standard, error) {
	if err != nil {
		return "", nil, err
	}
	project, std := f()
	return project, std, nil
}

// RevisionConstraint is a client's If-Match: the write of the request may
// only happen while the resource is at this revision (the reference's
// revision-if-match extension).
type RevisionConstraint struct {
	Collection string
	ID         string
	Revision   int
	checked    atomic.Bool
}

type constraintKey struct{}

// WithRevisionConstraint returns ctx carrying c; the first write
// transaction of the request checks it. It refuses a collection without
// revision numbers.
func WithRevisionConstraint(ctx context.Context, c *RevisionConstraint) (context.Context, error) {
	if _, ok := revisioned[c.Collection]; !ok {
		return ctx, errInvalid("HTTPBadRequest", "Bad %s request: Revision matching not supported for this resource.", c.Collection)
	}
	return context.WithValue(ctx, constraintKey{}, c), nil
}

// checkRevision enforces the request's revision constraint, once, in the
// transaction tx: under the resource's writer lock, its revision must be
// the one asked for. A resource that does not exist, or that the caller
// may not see, is left to the write itself to refuse (404), so that the
// answer reveals nothing more than a GET would.
func (s *Service) checkRevision(ctx context.Context, tx store.Tx) error {
	c, _ := ctx.Value(constraintKey{}).(*RevisionConstraint)
	if c == nil || c.checked.Load() {
		return nil
	}
	r := revisioned[c.Collection]
	if err := tx.Lock(ctx, r.lock+c.ID); err != nil {
		return err
	}
	project, std, err := r.get(ctx, tx, c.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if !who(ctx).owns(project) {
		return nil
	}
	if std.RevisionNumber != c.Revision {
		return refuse(PreconditionFailed, "RevisionNumberConstraintFailed",
			"Constrained to %d, but current revision is %d", c.Revision, std.RevisionNumber)
	}
	return nil
}

// markRevisionChecked records that a committed write honoured the
// constraint, so a later transaction of the same request does not see its
// own bump as a conflict.
func markRevisionChecked(ctx context.Context) {
	if c, _ := ctx.Value(constraintKey{}).(*RevisionConstraint); c != nil {
		c.checked.Store(true)
	}
}

package service

import (
	"context"
	"errors"

	"github.com/neutrino-net/neutrino/internal/model"
	"github.com/neutrino-net/neutrino/internal/store"
)

// policyKind ties the generic policy code to one of the two policy types.
type policyKind[T any] struct {
	name     string // "ikepolicy" or "ipsecpolicy" (quota and lock names)
	inUse    string // exception type of the 409
	notFound string // exception type of the 404
	label    string // "IKEPolicy" or "IPsecPolicy" in messages
	id       func(*T) *string
	project  func(*T) *string
	std      func(*T) *model.Standard
	get      func(store.Tx, context.Context, string) (*T, error)
	list     func(store.Tx, context.Context, store.PolicyFilter) ([]T, error)
	create   func(store.Tx, context.Context, *T) error
	update   func(store.Tx, context.Context, *T) error
	delete   func(store.Tx, context.Context, string) error
	users    func(string) store.ConnectionFilter
}

var ikeKind = policyKind[model.IKEPolicy]{
	name: "ikepolicy", inUse: "IKEPolicyInUse", notFound: "IKEPolicyNotFound", label: "IKEPolicy",
	id:      func(p *model.IKEPolicy) *string { return &p.ID },
	project: func(p *model.IKEPolicy) *string { return &p.ProjectID },
	std:     func(p *model.IKEPolicy) *model.Standard { return &p.Standard },
	get:     store.Tx.GetIKEPolicy, list: store.Tx.ListIKEPolicies,
	create: store.Tx.CreateIKEPolicy, update: store.Tx.UpdateIKEPolicy, delete: store.Tx.DeleteIKEPolicy,
	users: func(id string) store.ConnectionFilter { return store.ConnectionFilter{IKEPolicyID: id} },
}

var ipsecKind = policyKind[model.IPsecPolicy]{
	name: "ipsecpolicy", inUse: "IPsecPolicyInUse", notFound: "IPsecPolicyNotFound", label: "IPsecPolicy",
	id:      func(p *model.IPsecPolicy) *string { return &p.ID },
	project: func(p *model.IPsecPolicy) *string { return &p.ProjectID },
	std:     func(p *model.IPsecPolicy) *model.Standard { return &p.Standard },
	get:     store.Tx.GetIPsecPolicy, list: store.Tx.ListIPsecPolicies,
	create: store.Tx.CreateIPsecPolicy, update: store.Tx.UpdateIPsecPolicy, delete: store.Tx.DeleteIPsecPolicy,
	users: func(id string) store.ConnectionFilter { return store.ConnectionFilter{IPsecPolicyID: id} },
}

func (k policyKind[T]) missing(id string) *Error {
	return errNotFound(k.notFound, "%s %s could not be found", k.label, id)
}

func (k policyKind[T]) busy(id string) *Error {
	return errConflict(k.inUse, "%s %s is in use by existing IPsecSiteConnection and can't be updated or deleted", k.label, id)
}

// owned returns a policy the caller may see.
func (k policyKind[T]) owned(ctx context.Context, tx store.Tx, c caller, id string) (*T, error) {
	p, err := k.get(tx, ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !c.owns(*k.project(p))) {
		return nil, k.missing(id)
	}
	return p, err
}

// checkUnused returns the 409 when a connection uses the policy.
func (k policyKind[T]) checkUnused(ctx context.Context, tx store.Tx, id string) error {
	users, err := tx.ListConnections(ctx, k.users(id))
	if err != nil {
		return err
	}
	if len(users) > 0 {
		return k.busy(id)
	}
	return nil
}

func createPolicy[T any](ctx context.Context, s *Service, k policyKind[T], p T) (*T, error) {
	c := who(ctx)
	if err := c.mayWrite("create_" + k.name); err != nil {
		return nil, err
	}
	project, err := c.project(*k.project(&p))
	if err != nil {
		return nil, err
	}
	*k.id(&p), *k.project(&p) = newID(), project
	s.stamp(k.std(&p))
	err = s.write(ctx, func(tx store.Tx) error {
		if err := s.checkQuota(ctx, tx, k.name, project, 1); err != nil {
			return err
		}
		return k.create(tx, ctx, &p)
	})
	if err != nil {
		return nil, err
	}
	return &p, nil
}

func getPolicy[T any](ctx context.Context, s *Service, k policyKind[T], id string) (*T, error) {
	var out *T
	err := s.read(ctx, func(tx store.Tx) error {
		var err error
		out, err = k.owned(ctx, tx, who(ctx), id)
		return err
	})
	return out, err
}

func listPolicies[T any](ctx context.Context, s *Service, k policyKind[T], p store.Page) ([]T, error) {
	var out []T
	err := s.read(ctx, func(tx store.Tx) error {
		var err error
		out, err = k.list(tx, ctx, store.PolicyFilter{Scope: who(ctx).scope(), Page: p})
		return err
	})
	return out, err
}

// updatePolicy refuses any change, even of the name, while a connection
// uses the policy (the reference's rule). So an update never changes what
// an agent realises, and no hint follows it.
func updatePolicy[T any](ctx context.Context, s *Service, k policyKind[T], id string, change func(*T)) (*T, error) {
	c := who(ctx)
	if err := c.mayWrite("update_" + k.name); err != nil {
		return nil, err
	}
	var out *T
	err := s.write(ctx, func(tx store.Tx) error {
		if err := tx.Lock(ctx, k.name+":"+id); err != nil {
			return err
		}
		old, err := k.owned(ctx, tx, c, id)
		if err != nil {
			return err
		}
		if err := k.checkUnused(ctx, tx, id); err != nil {
			return err
		}
		p := *old
		change(&p)
		s.touch(k.std(&p))
		out = &p
		return k.update(tx, ctx, &p)
	})
	return out, err
}

func deletePolicy[T any](ctx context.Context, s *Service, k policyKind[T], id string) error {
	c := who(ctx)
	if err := c.mayWrite("delete_" + k.name); err != nil {
		return err
	}
	return s.write(ctx, func(tx store.Tx) error {
		if err := tx.Lock(ctx, k.name+":"+id); err != nil {
			return err
		}
		if _, err := k.owned(ctx, tx, c, id); err != nil {
			return err
		}
		if err := k.checkUnused(ctx, tx, id); err != nil {
			return err
		}
		if err := k.delete(tx, ctx, id); errors.Is(err, store.ErrReferenced) {
			return k.busy(id)
		} else if err != nil {
			return err
		}
		return nil
	})
}

// CreateIKEPolicy creates an IKE policy.
func (s *Service) CreateIKEPolicy(ctx context.Context, p model.IKEPolicy) (*model.IKEPolicy, error) {
	return createPolicy(ctx, s, ikeKind, p)
}

// GetIKEPolicy returns an IKE policy the caller owns.
func (s *Service) GetIKEPolicy(ctx context.Context, id string) (*model.IKEPolicy, error) {
	return getPolicy(ctx, s, ikeKind, id)
}

// ListIKEPolicies returns the caller's IKE policies.
func (s *Service) ListIKEPolicies(ctx context.Context, p store.Page) ([]model.IKEPolicy, error) {
	return listPolicies(ctx, s, ikeKind, p)
}

// UpdateIKEPolicy changes an IKE policy no connection uses.
func (s *Service) UpdateIKEPolicy(ctx context.Context, id string, change func(*model.IKEPolicy)) (*model.IKEPolicy, error) {
	return updatePolicy(ctx, s, ikeKind, id, change)
}

// DeleteIKEPolicy deletes an IKE policy no connection uses.
func (s *Service) DeleteIKEPolicy(ctx context.Context, id string) error {
	return deletePolicy(ctx, s, ikeKind, id)
}

// CreateIPsecPolicy creates an IPsec policy.
func (s *Service) CreateIPsecPolicy(ctx context.Context, p model.IPsecPolicy) (*model.IPsecPolicy, error) {
	return createPolicy(ctx, s, ipsecKind, p)
}

// GetIPsecPolicy returns an IPsec policy the caller owns.
func (s *Service) GetIPsecPolicy(ctx context.Context, id string) (*model.IPsecPolicy, error) {
	return getPolicy(ctx, s, ipsecKind, id)
}

// ListIPsecPolicies returns the caller's IPsec policies.
func (s *Service) ListIPsecPolicies(ctx context.Context, p store.Page) ([]model.IPsecPolicy, error) {
	return listPolicies(ctx, s, ipsecKind, p)
}

// UpdateIPsecPolicy changes an IPsec policy no connection uses.
func (s *Service) UpdateIPsecPolicy(ctx context.Context, id string, change func(*model.IPsecPolicy)) (*model.IPsecPolicy, error) {
	return updatePolicy(ctx, s, ipsecKind, id, change)
}

// DeleteIPsecPolicy deletes an IPsec policy no connection uses.
func (s *Service) DeleteIPsecPolicy(ctx context.Context, id string) error {
	return deletePolicy(ctx, s, ipsecKind, id)
}

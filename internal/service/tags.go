package service

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/neutrino-net/neutrino/internal/store"
)

// MaxTagLen is the longest tag, in bytes, as in the reference.
const MaxTagLen = 255

// CheckTags refuses a tag list the reference refuses: a tag longer than
// MaxTagLen or one given twice. The reference sets no limit on the number
// of tags; the request body limit bounds it here.
func CheckTags(tags []string) error {
	for i, tag := range tags {
		if err := CheckTag(tag); err != nil {
			return err
		}
		if slices.Contains(tags[:i], tag) {
			return errInvalid("InvalidInput", "Invalid input for operation: Duplicate items in the list: '%s'.", tag)
		}
	}
	return nil
}

// CheckTag refuses a tag longer than MaxTagLen.
func CheckTag(tag string) error {
	if len(tag) > MaxTagLen {
		return errInvalid("InvalidInput", "Invalid input for operation: '%s' exceeds maximum length of %d.", tag, MaxTagLen)
	}
	return nil
}

// Tags maps each of the ids of kind (store.TagKinds) that has tags to
// them, sorted. It checks no visibility: the caller lists only ids it has
// shown.
func (s *Service) Tags(ctx context.Context, kind string, ids []string) (map[string][]string, error) {
	var out map[string][]string
	err := s.read(ctx, func(tx store.Tx) error {
		var err error
		out, err = tx.Tags(ctx, kind, ids)
		return err
	})
	return out, err
}

// TagEdit changes a resource's tags: it gets the current ones and returns
// the new ones, or a refusal.
type TagEdit func(old []string) ([]string, error)

// EditTags changes the tags of resource id of kind, which the caller has
// been shown and which project owns: only its owner or an admin may (verb
// names the reference's policy rule: "update", "create" or "delete"). It
// returns the new tags, sorted. A change of the set bumps the resource's
// revision_number, as in the reference.
func (s *Service) EditTags(ctx context.Context, kind, id, project, verb string, edit TagEdit) ([]string, error) {
	return s.editTags(ctx, kind, id, project, verb, edit, true)
}

// TagNew sets the tags of a resource created in the same batch: as in the
// reference, a new resource's tags leave its revision_number at 0.
func (s *Service) TagNew(ctx context.Context, kind, id, project string, tags []string) ([]string, error) {
	return s.editTags(ctx, kind, id, project, "create", func([]string) ([]string, error) { return tags, nil }, false)
}

func (s *Service) editTags(ctx context.Context, kind, id, project, verb string, edit TagEdit, bump bool) ([]string, error) {
	c := who(ctx)
	rule := fmt.Sprintf("%s_%s_tags", verb, kind)
	if err := c.mayWrite(rule); err != nil {
		return nil, err
	}
	if !c.owns(project) {
		return nil, errForbidden(rule)
	}
	var tags []string
	err := s.write(ctx, func(tx store.Tx) error {
		if err := tx.Lock(ctx, "tags:"+kind+":"+id); err != nil {
			return err
		}
		old, err := tx.Tags(ctx, kind, []string{id})
		if err != nil {
			return err
		}
		if tags, err = edit(old[id]); err != nil {
			return err
		}
		if err := CheckTags(tags); err != nil {
			return err
		}
		var touched time.Time
		if bump && !sameSet(old[id], tags) {
			touched = s.now()
		}
		return notFound(tx.SetTags(ctx, kind, id, tags, touched), "TagResourceNotFound",
			"Resource %s %s could not be found.", kind, id)
	})
	if err != nil {
		return nil, err
	}
	tags = slices.Clone(tags)
	slices.Sort(tags)
	return tags, nil
}

// sameSet reports whether a and b hold the same tags.
func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, t := range b {
		if !slices.Contains(a, t) {
			return false
		}
	}
	return true
}

// ErrTagNotFound is the reference's TagNotFound.
func ErrTagNotFound(tag string) error {
	return errNotFound("TagNotFound", "Tag %s could not be found.", tag)
}

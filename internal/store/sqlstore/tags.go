package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/neutrino-net/neutrino/internal/store"
)

// tagged maps each taggable kind (store.TagKinds) to the table holding its
// resources; both are the same name.
func tagTable(kind string) (string, error) {
	if !slices.Contains(store.TagKinds, kind) {
		return "", fmt.Errorf("tags: unknown resource kind %q", kind)
	}
	return kind, nil
}

// tagChunk caps the ids of one IN list.
const tagChunk = 500

// Tags maps each of ids that has tags to them, sorted.
func (t *tx) Tags(ctx context.Context, kind string, ids []string) (map[string][]string, error) {
	if _, err := tagTable(kind); err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for chunk := range slices.Chunk(ids, tagChunk) {
		q := "SELECT resource_id, tag FROM tags WHERE resource_type = ? AND resource_id IN (?" +
			strings.Repeat(", ?", len(chunk)-1) + ") ORDER BY resource_id, tag"
		args := make([]any, 0, len(chunk)+1)
		args = append(args, kind)
		for _, id := range chunk {
			args = append(args, id)
		}
		type row struct{ id, tag string }
		rows, err := queryAll(ctx, t, q, func(s scanner) (row, error) {
			var r row
			return r, s.Scan(&r.id, &r.tag)
		}, args...)
		if err != nil {
			return nil, fmt.Errorf("tags of %s: %w", kind, err)
		}
		for _, r := range rows {
			out[r.id] = append(out[r.id], r.tag)
		}
	}
	return out, nil
}

// Touch bumps one resource's revision.
func (t *tx) Touch(ctx context.Context, kind, id string, at time.Time) error {
	table, err := tagTable(kind)
	if err != nil {
		return err
	}
	err = t.execOne(ctx, "UPDATE "+table+" SET revision_number = revision_number + 1, updated_at = ? WHERE id = ?", tsCol{&at}, id)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%s %s: %w", kind, id, store.ErrNotFound)
	}
	return err
}

// SetTags replaces the tags of one resource; ErrNotFound if it does not
// exist. A non-zero touched bumps the resource's revision.
func (t *tx) SetTags(ctx context.Context, kind, id string, tags []string, touched time.Time) error {
	table, err := tagTable(kind)
	if err != nil {
		return err
	}
	return t.atomic(ctx, "set tags of "+kind+" "+id, func() error {
		var err error
		if touched.IsZero() {
			var n int
			if n, err = t.count(ctx, "SELECT COUNT(*) FROM "+table+" WHERE id = ?", id); err == nil && n == 0 {
				err = store.ErrNotFound
			}
		} else {
			err = t.execOne(ctx, "UPDATE "+table+" SET revision_number = revision_number + 1, updated_at = ? WHERE id = ?",
				tsCol{&touched}, id)
		}
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%s %s: %w", kind, id, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if _, err := t.exec(ctx, "DELETE FROM tags WHERE resource_type = ? AND resource_id = ?", kind, id); err != nil {
			return err
		}
		for _, tag := range tags {
			if _, err := t.exec(ctx, "INSERT INTO tags (resource_type, resource_id, tag) VALUES (?, ?, ?)", kind, id, tag); err != nil {
				return err
			}
		}
		return nil
	})
}

// deleteTags drops the tags of a resource being deleted, and those of its
// tagged children that the database deletes with it (a network's subnets).
func (t *tx) deleteTags(ctx context.Context, kind, id string) error {
	if !slices.Contains(store.TagKinds, kind) {
		return nil
	}
	if kind == "networks" {
		if _, err := t.exec(ctx, "DELETE FROM tags WHERE resource_type = 'subnets' AND resource_id IN (SELECT id FROM subnets WHERE network_id = ?)", id); err != nil {
			return err
		}
	}
	_, err := t.exec(ctx, "DELETE FROM tags WHERE resource_type = ? AND resource_id = ?", kind, id)
	return err
}

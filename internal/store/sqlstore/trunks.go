package sqlstore

import (
	"context"
	"fmt"

	"github.com/neutrino-net/neutrino/internal/model"
	"github.com/neutrino-net/neutrino/internal/store"
)

// trunks holds the trunk row; SubPorts live in trunk_subports.
var trunks = &table[model.Trunk]{
	name: "trunks", noun: "trunk",
	cols: cols("id", "project_id", "name", "admin_state_up", "status", "port_id"),
	fields: func(tr *model.Trunk) []any {
		return append([]any{&tr.ID, &tr.ProjectID, &tr.Name, &tr.AdminStateUp, &tr.Status, &tr.PortID},
			stdFields(&tr.Standard)...)
	},
	fixed: []string{"port_id"},
	page:  pageAttrs("id", "project_id", "name", "description", "admin_state_up#", "status", "port_id"),
}

func (t *tx) GetTrunk(ctx context.Context, id string) (*model.Trunk, error) {
	ts, err := t.listTrunks(ctx, whereID(id), store.Page{})
	if err != nil {
		return nil, err
	}
	if len(ts) == 0 {
		return nil, fmt.Errorf("trunk %s: %w", id, store.ErrNotFound)
	}
	return &ts[0], nil
}

func (t *tx) ListTrunks(ctx context.Context, f store.TrunkFilter) ([]model.Trunk, error) {
	var w where
	w.eq("project_id", f.ProjectID)
	w.in("id", f.IDs)
	w.in("port_id", f.PortIDs)
	if len(f.SubPortIDs) > 0 {
		var sub where
		sub.in("port_id", f.SubPortIDs)
		w.add("id IN (SELECT trunk_id FROM trunk_subports"+sub.String()+")", sub.args...)
	}
	return t.listTrunks(ctx, w, f.Page)
}

// listTrunks loads the trunks selected by w and cut by p with their
// subports in two queries.
func (t *tx) listTrunks(ctx context.Context, w where, p store.Page) ([]model.Trunk, error) {
	ts, err := trunks.listPage(ctx, t, w, p)
	if err != nil || len(ts) == 0 {
		return ts, err
	}
	from, args, err := trunks.selection(t, w, p)
	if err != nil {
		return nil, err
	}
	byID := make(map[string]*model.Trunk, len(ts))
	for i := range ts {
		byID[ts[i].ID] = &ts[i]
		ts[i].SubPorts = []model.SubPort{}
	}
	type row struct {
		trunk string
		sp    model.SubPort
	}
	rows, err := queryAll(ctx, t, "SELECT trunk_id, port_id, segmentation_type, segmentation_id FROM trunk_subports"+
		" WHERE trunk_id IN (SELECT id"+from+") ORDER BY trunk_id, position",
		func(s scanner) (v row, err error) {
			err = s.Scan(&v.trunk, &v.sp.PortID, &v.sp.SegmentationType, &v.sp.SegmentationID)
			return v, err
		}, args...)
	if err != nil {
		return nil, fmt.Errorf("list trunks: subports: %w", err)
	}
	for _, r := range rows {
		tr := byID[r.trunk]
		tr.SubPorts = append(tr.SubPorts, r.sp)
	}
	return ts, nil
}

func (t *tx) CreateTrunk(ctx context.Context, tr *model.Trunk) error {
	return t.atomic(ctx, "create trunk "+tr.ID, func() error {
		if err := trunks.insert(ctx, t, tr); err != nil {
			return err
		}
		return t.insertSubPorts(ctx, tr.ID, tr.SubPorts)
	})
}

func (t *tx) insertSubPorts(ctx context.Context, trunkID string, sps []model.SubPort) error {
	if len(sps) == 0 {
		return nil
	}
	next, err := t.count(ctx, "SELECT COALESCE(MAX(position) + 1, 0) FROM trunk_subports WHERE trunk_id = ?", trunkID)
	if err != nil {
		return err
	}
	for i, sp := range sps {
		if _, err := t.exec(ctx, "INSERT INTO trunk_subports (port_id, trunk_id, segmentation_type, segmentation_id, position) VALUES (?, ?, ?, ?, ?)",
			sp.PortID, trunkID, sp.SegmentationType, sp.SegmentationID, next+i); err != nil {
			return fmt.Errorf("subport %s: %w", sp.PortID, err)
		}
	}
	return nil
}

func (t *tx) UpdateTrunk(ctx context.Context, tr *model.Trunk) error {
	return t.atomic1(ctx, "update trunk "+tr.ID, func() error { return trunks.update(ctx, t, tr) })
}

func (t *tx) DeleteTrunk(ctx context.Context, id string) error {
	return t.atomic(ctx, "delete trunk "+id, func() error {
		if _, err := t.exec(ctx, "DELETE FROM trunk_subports WHERE trunk_id = ?", id); err != nil {
			return err
		}
		return trunks.delete(ctx, t, id)
	})
}

func (t *tx) AddSubPorts(ctx context.Context, trunkID string, sps []model.SubPort) error {
	return t.atomic(ctx, "add subports to trunk "+trunkID, func() error { return t.insertSubPorts(ctx, trunkID, sps) })
}

func (t *tx) RemoveSubPorts(ctx context.Context, trunkID string, portIDs []string) error {
	return t.atomic(ctx, "remove subports from trunk "+trunkID, func() error {
		for _, id := range portIDs {
			if err := t.execOne(ctx, "DELETE FROM trunk_subports WHERE trunk_id = ? AND port_id = ?", trunkID, id); err != nil {
				return fmt.Errorf("subport %s: %w", id, err)
			}
		}
		return nil
	})
}

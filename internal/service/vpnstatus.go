package service

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/neutrino-net/neutrino/internal/model"
	"github.com/neutrino-net/neutrino/internal/store"
)

// ConnectionStatus is an agent's report on one connection.
type ConnectionStatus struct {
	Status string // ACTIVE, DOWN or ERROR
	// UpdatedPendingStatus lets the report replace a PENDING_* status.
	UpdatedPendingStatus bool
	// Reason says why the connection is not ACTIVE ("" otherwise).
	Reason string
}

// VPNServiceStatus is an agent's report on one VPN service. Reports carry
// absolute states, so a duplicate is harmless.
type VPNServiceStatus struct {
	ID                   string
	Status               string
	UpdatedPendingStatus bool
	Connections          map[string]ConnectionStatus
}

var reportable = []string{model.StatusActive, model.StatusDown, model.StatusError}

// ErrBadStatus means a report carried a status an agent may not report.
var ErrBadStatus = errors.New("invalid status in report")

// UpdateVPNStatus applies agents' reports with the reference's merge rule:
// a row's status is replaced unless it is PENDING_* and the report does not
// say it settled the pending state. Unknown ids are ignored. A service
// without connections is DOWN whatever the report says.
func (s *Service) UpdateVPNStatus(ctx context.Context, reports []VPNServiceStatus) error {
	if err := checkVPNReports(reports); err != nil {
		return err
	}
	return s.write(ctx, func(tx store.Tx) error {
		_, err := s.applyVPNStatus(ctx, tx, reports, nil)
		return err
	})
}

// checkVPNReports refuses statuses an agent may not report.
func checkVPNReports(reports []VPNServiceStatus) error {
	for _, r := range reports {
		if !slices.Contains(reportable, r.Status) {
			return fmt.Errorf("%w: service %s: %q", ErrBadStatus, r.ID, r.Status)
		}
		for id, cs := range r.Connections {
			if !slices.Contains(reportable, cs.Status) {
				return fmt.Errorf("%w: connection %s: %q", ErrBadStatus, id, cs.Status)
			}
		}
	}
	return nil
}

// applyVPNStatus is UpdateVPNStatus inside tx. When allow is set, a service
// it refuses is ignored like an unknown one. It returns the number of
// services whose report was taken (changed or not). Services are locked in
// id order, so concurrent reports never deadlock.
func (s *Service) applyVPNStatus(ctx context.Context, tx store.Tx, reports []VPNServiceStatus, allow func(*model.VPNService) bool) (int, error) {
	reports = slices.Clone(reports)
	slices.SortFunc(reports, func(a, b VPNServiceStatus) int { return strings.Compare(a.ID, b.ID) })
	applied := 0
	for _, r := range reports {
		if err := tx.Lock(ctx, "vpnservice:"+r.ID); err != nil {
			return applied, err
		}
		v, err := tx.GetVPNService(ctx, r.ID)
		if errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			return applied, err
		}
		if allow != nil && !allow(v) {
			continue
		}
		applied++
		conns, err := tx.ListConnections(ctx, store.ConnectionFilter{VPNServiceIDs: []string{v.ID}})
		if err != nil {
			return applied, err
		}
		status := r.Status
		if len(conns) == 0 {
			status = model.StatusDown
		}
		if status != v.Status && (!model.IsPending(v.Status) || r.UpdatedPendingStatus) {
			v.Status = status
			s.touch(&v.Standard)
			if err := tx.UpdateVPNService(ctx, v); err != nil {
				return applied, err
			}
		}
		for _, id := range slices.Sorted(maps.Keys(r.Connections)) {
			cs := r.Connections[id]
			i := slices.IndexFunc(conns, func(c model.IPsecSiteConnection) bool { return c.ID == id })
			if i < 0 {
				continue
			}
			conn := &conns[i]
			reason := cs.Reason
			if cs.Status == model.StatusActive {
				reason = ""
			}
			if (conn.Status == cs.Status && conn.StatusReason == reason) || (model.IsPending(conn.Status) && !cs.UpdatedPendingStatus) {
				continue
			}
			conn.Status, conn.StatusReason = cs.Status, reason
			s.touch(&conn.Standard)
			if err := tx.UpdateConnection(ctx, conn); err != nil {
				return applied, err
			}
		}
	}
	return applied, nil
}

// maxReasonLen bounds a reported failure reason, as an agent's word.
const maxReasonLen = 255

// vpnReports converts the VPN part of an agent's status report. Reports
// carry what the agent sees now, so they settle PENDING_* states.
func vpnReports(in map[string]agentv1.VPNStatus) []VPNServiceStatus {
	out := make([]VPNServiceStatus, 0, len(in))
	for id, vs := range in {
		r := VPNServiceStatus{ID: id, Status: vs.Status, UpdatedPendingStatus: true,
			Connections: make(map[string]ConnectionStatus, len(vs.Connections))}
		for cid, cs := range vs.Connections {
			reason := cs.Reason
			if len(reason) > maxReasonLen {
				reason = strings.ToValidUTF8(reason[:maxReasonLen], "")
			}
			r.Connections[cid] = ConnectionStatus{Status: cs.Status, UpdatedPendingStatus: true, Reason: reason}
		}
		out = append(out, r)
	}
	return out
}

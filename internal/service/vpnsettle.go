package service

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/neutrino-net/neutrino/internal/model"
	"github.com/neutrino-net/neutrino/internal/store"
)

// A VPN resource is PENDING_* only while an agent is about to act on it.
// When no alive L3 agent hosts its router nothing will, so it is DOWN with
// a reason instead: at once when that is known at create or update time,
// and from SettleUnhostedVPN when the router's agent dies before it
// reports. An agent that takes the router later reports the real state.

// noAgentReason is the status_reason of a connection whose router no alive
// L3 agent hosts.
func noAgentReason(routerID string) string {
	return fmt.Sprintf("no alive L3 agent hosts router %s; the connection starts when one does", routerID)
}

// routerHostedAlive reports whether an alive L3 agent hosts the router.
func (s *Service) routerHostedAlive(ctx context.Context, tx store.Tx, routerID string) (bool, error) {
	ids, err := tx.RouterAgents(ctx, routerID)
	if err != nil {
		return false, err
	}
	for _, id := range ids {
		a, err := tx.GetAgent(ctx, id)
		if err != nil {
			return false, err
		}
		if a.AgentType == agentv1.AgentTypeL3 && s.alive(a) {
			return true, nil
		}
	}
	return false, nil
}

// settleIfUnhosted turns a pending connection DOWN, with the reason, when
// no alive L3 agent hosts routerID.
func (s *Service) settleIfUnhosted(ctx context.Context, tx store.Tx, conn *model.IPsecSiteConnection, routerID string) error {
	if !model.IsPending(conn.Status) {
		return nil
	}
	hosted, err := s.routerHostedAlive(ctx, tx, routerID)
	if err != nil || hosted {
		return err
	}
	conn.Status, conn.StatusReason = model.StatusDown, noAgentReason(routerID)
	return nil
}

var pendingStatuses = []any{model.StatusPendingCreate, model.StatusPendingUpdate, model.StatusPendingDelete}

// SettleUnhostedVPN turns the PENDING_* VPN services and connections whose
// router no alive L3 agent hosts DOWN (connections with a status_reason
// saying so) and returns how many it changed. A check that finds nothing
// pending is one indexed read.
func (s *Service) SettleUnhostedVPN(ctx context.Context) (int, error) {
	pending := store.Page{Eq: map[string][]any{"status": pendingStatuses}}
	var found bool
	err := s.read(ctx, func(tx store.Tx) error {
		vs, err := tx.ListVPNServices(ctx, store.VPNServiceFilter{Page: store.Page{Eq: pending.Eq, Limit: 1}})
		if err != nil || len(vs) > 0 {
			found = len(vs) > 0
			return err
		}
		cs, err := tx.ListConnections(ctx, store.ConnectionFilter{Page: store.Page{Eq: pending.Eq, Limit: 1}})
		found = len(cs) > 0
		return err
	})
	if err != nil || !found {
		return 0, err
	}
	var changed int
	var routers []string
	// Services and connections settle in transactions of their own, each
	// locking rows of one kind in id order, so they never wait in a cycle
	// with updates (which lock a connection, then its service).
	err = s.write(ctx, func(tx store.Tx) error {
		changed, routers = 0, nil
		hosted := s.hostedCache(ctx, tx)
		vs, err := tx.ListVPNServices(ctx, store.VPNServiceFilter{Page: pending})
		if err != nil {
			return err
		}
		slices.SortFunc(vs, func(a, b model.VPNService) int { return strings.Compare(a.ID, b.ID) })
		for _, v := range vs {
			if h, err := hosted(v.RouterID); err != nil || h {
				if err != nil {
					return err
				}
				continue
			}
			if err := tx.Lock(ctx, "vpnservice:"+v.ID); err != nil {
				return err
			}
			cur, err := tx.GetVPNService(ctx, v.ID)
			if errors.Is(err, store.ErrNotFound) {
				continue
			} else if err != nil {
				return err
			}
			if !model.IsPending(cur.Status) {
				continue
			}
			cur.Status = model.StatusDown
			s.touch(&cur.Standard)
			if err := tx.UpdateVPNService(ctx, cur); err != nil {
				return err
			}
			changed++
			routers = append(routers, cur.RouterID)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	services := changed
	err = s.write(ctx, func(tx store.Tx) error {
		changed = services
		hosted := s.hostedCache(ctx, tx)
		cs, err := tx.ListConnections(ctx, store.ConnectionFilter{Page: pending})
		if err != nil {
			return err
		}
		slices.SortFunc(cs, func(a, b model.IPsecSiteConnection) int { return strings.Compare(a.ID, b.ID) })
		for _, conn := range cs {
			v, err := tx.GetVPNService(ctx, conn.VPNServiceID)
			if errors.Is(err, store.ErrNotFound) {
				continue
			} else if err != nil {
				return fmt.Errorf("service of connection %s: %w", conn.ID, err)
			}
			if h, err := hosted(v.RouterID); err != nil || h {
				if err != nil {
					return err
				}
				continue
			}
			if err := tx.Lock(ctx, "ipsec_site_connection:"+conn.ID); err != nil {
				return err
			}
			cur, err := tx.GetConnection(ctx, conn.ID)
			if errors.Is(err, store.ErrNotFound) {
				continue
			} else if err != nil {
				return err
			}
			if !model.IsPending(cur.Status) {
				continue
			}
			cur.Status, cur.StatusReason = model.StatusDown, noAgentReason(v.RouterID)
			s.touch(&cur.Standard)
			if err := tx.UpdateConnection(ctx, cur); err != nil {
				return err
			}
			changed++
			routers = append(routers, v.RouterID)
		}
		return nil
	})
	if changed > 0 {
		s.log.InfoContext(ctx, "pending VPN resources without an alive agent set DOWN", "count", changed, "routers", slices.Compact(slices.Sorted(slices.Values(routers))))
	}
	return changed, err
}

// hostedCache returns routerHostedAlive memoised for one transaction.
func (s *Service) hostedCache(ctx context.Context, tx store.Tx) func(routerID string) (bool, error) {
	seen := map[string]bool{}
	return func(routerID string) (bool, error) {
		if h, ok := seen[routerID]; ok {
			return h, nil
		}
		h, err := s.routerHostedAlive(ctx, tx, routerID)
		if err == nil {
			seen[routerID] = h
		}
		return h, err
	}
}

// RunSettleVPN calls SettleUnhostedVPN every period (FailoverPeriod when
// 0) until ctx ends. Every server may run it: a check that finds nothing
// pending writes nothing.
func (s *Service) RunSettleVPN(ctx context.Context, period time.Duration) {
	s.runEvery(ctx, period, "settling pending VPN resources failed; retrying at the next check", func(ctx context.Context) error {
		_, err := s.SettleUnhostedVPN(ctx)
		return err
	})
}

package service

import (
	"context"
	"maps"
	"slices"

	"github.com/neutrino-net/neutrino/internal/store"
)

// QuotaUsage is one resource's limit and use.
type QuotaUsage struct {
	Limit, Used, Reserved int
}

// QuotaResources lists the resources with quotas, sorted.
func (s *Service) QuotaResources() []string {
	return slices.Sorted(maps.Keys(s.opts.Quotas))
}

// DefaultQuotas returns the configured defaults.
func (s *Service) DefaultQuotas() map[string]int { return maps.Clone(s.opts.Quotas) }

func (c caller) quotaAccess(project string) error {
	if c.admin || project == c.ProjectID {
		return nil
	}
	return errDenied("NotAuthorized", "Non-admin is not authorized to access quotas for another project")
}

// Quotas returns the effective limits of a project.
func (s *Service) Quotas(ctx context.Context, project string) (map[string]int, error) {
	if err := who(ctx).quotaAccess(project); err != nil {
		return nil, err
	}
	var out map[string]int
	err := s.read(ctx, func(tx store.Tx) error {
		var err error
		out, err = s.effectiveQuotas(ctx, tx, project)
		return err
	})
	return out, err
}

func (s *Service) effectiveQuotas(ctx context.Context, tx store.Quotas, project string) (map[string]int, error) {
	set, err := tx.Quotas(ctx, project)
	if err != nil {
		return nil, err
	}
	out := maps.Clone(s.opts.Quotas)
	maps.Copy(out, set)
	return out, nil
}

// QuotaDetails returns limits and usage of a project.
func (s *Service) QuotaDetails(ctx context.Context, project string) (map[string]QuotaUsage, error) {
	if err := who(ctx).quotaAccess(project); err != nil {
		return nil, err
	}
	out := map[string]QuotaUsage{}
	err := s.read(ctx, func(tx store.Tx) error {
		limits, err := s.effectiveQuotas(ctx, tx, project)
		if err != nil {
			return err
		}
		for res, limit := range limits {
			u := QuotaUsage{Limit: limit}
			if countedQuota(res) {
				if u.Used, err = tx.Count(ctx, res, project); err != nil {
					return err
				}
			}
			out[res] = u
		}
		return nil
	})
	return out, err
}

// countedQuota says whether a quota resource's use is counted in the store.
func countedQuota(res string) bool {
	switch res {
	case "network", "subnet", "port", "router", "security_group", "security_group_rule",
		"ikepolicy", "ipsecpolicy", "vpnservice", "endpoint_group", "ipsec_site_connection", "floatingip":
		return true
	}
	return false
}

// ListQuotas returns the limits of every project with explicit limits.
func (s *Service) ListQuotas(ctx context.Context) (map[string]map[string]int, error) {
	if !who(ctx).admin {
		return nil, errForbidden("get_quota")
	}
	out := map[string]map[string]int{}
	err := s.read(ctx, func(tx store.Tx) error {
		projects, err := tx.QuotaProjects(ctx)
		if err != nil {
			return err
		}
		for _, p := range projects {
			if out[p], err = s.effectiveQuotas(ctx, tx, p); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// SetQuotas sets limits of a project (admin only) and returns them all.
// Limits are -1 (unlimited) or more; the caller validated the names. As
// in the reference, a limit below what the project uses needs force.
func (s *Service) SetQuotas(ctx context.Context, project string, limits map[string]int, force bool) (map[string]int, error) {
	if !who(ctx).admin {
		return nil, errForbidden("update_quota")
	}
	var out map[string]int
	err := s.write(ctx, func(tx store.Tx) error {
		for _, res := range slices.Sorted(maps.Keys(limits)) {
			if force || limits[res] < 0 || !countedQuota(res) {
				continue
			}
			used, err := tx.Count(ctx, res, project)
			if err != nil {
				return err
			}
			if used > limits[res] {
				return errInvalid("HTTPBadRequest", "Quota limit %d for %s must be greater than or equal to already used %d",
					limits[res], res, used)
			}
		}
		for _, res := range slices.Sorted(maps.Keys(limits)) {
			if err := tx.SetQuota(ctx, project, res, limits[res]); err != nil {
				return err
			}
		}
		var err error
		out, err = s.effectiveQuotas(ctx, tx, project)
		return err
	})
	return out, err
}

// ResetQuotas drops a project's explicit limits (admin only).
func (s *Service) ResetQuotas(ctx context.Context, project string) error {
	if !who(ctx).admin {
		return errForbidden("delete_quota")
	}
	return s.write(ctx, func(tx store.Tx) error { return tx.DeleteQuotas(ctx, project) })
}

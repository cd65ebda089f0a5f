package httpapi

import (
	"net/netip"

	"github.com/neutrino-net/neutrino/internal/model"
)

const timeFormat = "2006-01-02T15:04:05Z"

// base fills the attributes every resource carries.
func base(id, project string, std model.Standard, extra object) object {
	extra["id"] = id
	extra["tenant_id"] = project
	extra["project_id"] = project
	extra["description"] = std.Description
	extra["created_at"] = std.CreatedAt.UTC().Format(timeFormat)
	extra["updated_at"] = std.UpdatedAt.UTC().Format(timeFormat)
	extra["revision_number"] = std.RevisionNumber
	return extra
}

func addrOrNil(a netip.Addr) any {
	if !a.IsValid() {
		return nil
	}
	return a.String()
}

func strOrNil(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func intPtrOrNil(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}

func fixedIPsWire(ips []model.FixedIP) []object {
	out := make([]object, len(ips))
	for i, ip := range ips {
		out[i] = object{"subnet_id": ip.SubnetID, "ip_address": ip.IPAddress.String()}
	}
	return out
}

// standard attributes applied from a request.
func applyDescription(v values, std *model.Standard) {
	if v.has("description") {
		std.Description = v.str("description")
	}
}

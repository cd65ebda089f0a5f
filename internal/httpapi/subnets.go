package httpapi

import (
	"net/http"
	"net/netip"

	"github.com/neutrino-net/neutrino/api/neutron"
	"github.com/neutrino-net/neutrino/internal/model"
	"github.com/neutrino-net/neutrino/internal/service"
	"github.com/neutrino-net/neutrino/internal/store"
)

var ipv6Modes = []string{"slaac", "dhcpv6-stateful", "dhcpv6-stateless"}

var subnetRes = newResource("subnet", "subnets", common(
	attr{name: "network_id", post: true, required: true, conv: uuidConv, filter: fString, sort: true},
	attr{name: "ip_version", post: true, required: true, conv: ipVersion, filter: fInt, sort: true},
	attr{name: "cidr", post: true, conv: cidrConv, filter: fString, sort: true},
	attr{name: "gateway_ip", post: true, put: true, conv: orNone(ipConv), filter: fString, sort: true},
	attr{name: "allocation_pools", post: true, put: true, conv: orNone(listOf(dictSpec([]string{"start", "end"},
		map[string]converter{"start": ipConv, "end": ipConv})))},
	attr{name: "dns_nameservers", post: true, put: true, conv: orNone(listOf(str(255)))},
	attr{name: "host_routes", post: true, put: true, conv: orNone(listOf(dictSpec([]string{"destination", "nexthop"},
		map[string]converter{"destination": cidrConv, "nexthop": ipConv})))},
	attr{name: "enable_dhcp", post: true, put: true, conv: toBool, filter: fBool, sort: true},
	attr{name: "ipv6_ra_mode", post: true, conv: orNone(oneOf(ipv6Modes...)), filter: fString, sort: true},
	attr{name: "ipv6_address_mode", post: true, conv: orNone(oneOf(ipv6Modes...)), filter: fString, sort: true},
	attr{name: "subnetpool_id", post: true, conv: orNone(uuidConv), filter: fString, sort: true},
	attr{name: "prefixlen", post: true, conv: toInt},
	attr{name: "use_default_subnetpool", post: true, conv: toBool},
)...)

func ipVersion(v any) (any, error) {
	n, err := toInt(v)
	if err != nil {
		return nil, err
	}
	if n != 4 && n != 6 {
		return nil, reason("%d is not in valid_values", n)
	}
	return n, nil
}

func subnetWire(sn *model.Subnet) object {
	pools := make([]object, len(sn.AllocationPools))
	for i, p := range sn.AllocationPools {
		pools[i] = object{"start": p.Start.String(), "end": p.End.String()}
	}
	routes := make([]object, len(sn.HostRoutes))
	for i, h := range sn.HostRoutes {
		routes[i] = object{"destination": h.Destination.String(), "nexthop": h.Nexthop.String()}
	}
	return base(sn.ID, sn.ProjectID, sn.Standard, object{
		"name":              sn.Name,
		"network_id":        sn.NetworkID,
		"ip_version":        sn.IPVersion,
		"cidr":              sn.CIDR.String(),
		"gateway_ip":        addrOrNil(sn.GatewayIP),
		"allocation_pools":  pools,
		"dns_nameservers":   sn.DNSNameservers,
		"host_routes":       routes,
		"enable_dhcp":       sn.EnableDHCP,
		"ipv6_ra_mode":      strOrNil(sn.IPv6RAMode),
		"ipv6_address_mode": strOrNil(sn.IPv6AddressMode),
		"subnetpool_id":     strOrNil(sn.SubnetpoolID),
		"service_types":     []string{},
		"tags":              []string{},
	})
}

// applySubnet copies the mutable attributes of v onto sn.
func applySubnet(v values, sn *model.Subnet) {
	if v.has("name") {
		sn.Name = v.str("name")
	}
	applyDescription(v, &sn.Standard)
	sn.EnableDHCP = v.boolean("enable_dhcp", sn.EnableDHCP)
	if v.has("gateway_ip") {
		sn.GatewayIP, _ = v["gateway_ip"].(netip.Addr)
	}
	if v.has("allocation_pools") {
		sn.AllocationPools = []model.AllocationPool{}
		for _, p := range toList(v["allocation_pools"]) {
			m := p.(map[string]any)
			sn.AllocationPools = append(sn.AllocationPools, model.AllocationPool{Start: m["start"].(netip.Addr), End: m["end"].(netip.Addr)})
		}
	}
	if v.has("dns_nameservers") {
		sn.DNSNameservers = []string{}
		for _, d := range toList(v["dns_nameservers"]) {
			sn.DNSNameservers = append(sn.DNSNameservers, d.(string))
		}
	}
	if v.has("host_routes") {
		sn.HostRoutes = []model.HostRoute{}
		for _, h := range toList(v["host_routes"]) {
			m := h.(map[string]any)
			sn.HostRoutes = append(sn.HostRoutes, model.HostRoute{Destination: m["destination"].(netip.Prefix), Nexthop: m["nexthop"].(netip.Addr)})
		}
	}
}

func (a *API) subnets() crud {
	return crud{
		res: subnetRes,
		list: func(r *http.Request, pg store.Page) (listing, error) {
			subs, err := a.svc.ListSubnets(r.Context(), pg)
			return wireList(subs, subnetWire), err
		},
		show: func(r *http.Request, id string) (object, error) {
			sn, err := a.svc.GetSubnet(r.Context(), id)
			if err != nil {
				return nil, err
			}
			return subnetWire(sn), nil
		},
		create: func(r *http.Request, v values) (object, error) {
			req := service.SubnetCreate{GatewaySet: v.has("gateway_ip")}
			poolID, _ := v["subnetpool_id"].(string)
			if poolID != "" || v.boolean("use_default_subnetpool", false) {
				plen, _ := v["prefixlen"].(int)
				req.Pool = &service.PoolRequest{PoolID: poolID, UseDefault: poolID == "", PrefixLen: plen}
			} else if !v.has("cidr") {
				return nil, neutron.Invalid("BadRequest", "Bad subnets request: a cidr must be specified in the absence of a subnet pool.")
			}
			sn := &req.Subnet
			sn.ProjectID = v.str("project_id")
			sn.NetworkID = v.str("network_id")
			sn.IPVersion = v["ip_version"].(int)
			sn.CIDR, _ = v["cidr"].(netip.Prefix)
			sn.EnableDHCP = true
			sn.IPv6RAMode, _ = v["ipv6_ra_mode"].(string)
			sn.IPv6AddressMode, _ = v["ipv6_address_mode"].(string)
			applySubnet(v, sn)
			if v.has("allocation_pools") && v["allocation_pools"] == nil {
				sn.AllocationPools = nil
			}
			out, err := a.svc.CreateSubnet(r.Context(), req)
			if err != nil {
				return nil, err
			}
			return subnetWire(out), nil
		},
		update: func(r *http.Request, id string, v values) (object, error) {
			out, err := a.svc.UpdateSubnet(r.Context(), id, func(sn *model.Subnet) { applySubnet(v, sn) })
			if err != nil {
				return nil, err
			}
			return subnetWire(out), nil
		},
		remove: func(r *http.Request, id string) error { return a.svc.DeleteSubnet(r.Context(), id) },
	}
}

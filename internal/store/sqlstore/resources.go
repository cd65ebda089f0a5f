package sqlstore

import (
	"context"
	"fmt"
	"net/netip"
	"slices"

	"github.com/neutrino-net/neutrino/internal/model"
	"github.com/neutrino-net/neutrino/internal/segment"
	"github.com/neutrino-net/neutrino/internal/store"
)

var _ store.Tx = (*tx)(nil)

func cols(c ...string) []string { return append(c, stdCols...) }

var networks = &table[model.Network]{
	name: "networks", noun: "network",
	cols: cols("id", "project_id", "name", "admin_state_up", "status", "shared", "external", "mtu", "port_security_enabled",
		"segmentation_id", "network_type", "physical_network", "segments"),
	fields: func(n *model.Network) []any {
		return append([]any{&n.ID, &n.ProjectID, &n.Name, &n.AdminStateUp, &n.Status, &n.Shared, &n.External,
			&n.MTU, &n.PortSecurityEnabled, &n.SegmentationID, &n.NetworkType, &n.PhysicalNetwork,
			jsonCol[[]model.Segment]{&n.Segments}}, stdFields(&n.Standard)...)
	},
	fixed: []string{"segmentation_id", "network_type", "physical_network", "segments"},
	page: pageAttrs("id", "project_id", "name", "description", "admin_state_up#", "status", "shared#",
		"router:external=external#", "mtu#", "port_security_enabled#"),
}

var subnets = &table[model.Subnet]{
	name: "subnets", noun: "subnet",
	cols: cols("id", "project_id", "network_id", "name", "ip_version", "cidr", "gateway_ip", "allocation_pools",
		"dns_nameservers", "host_routes", "enable_dhcp", "ipv6_ra_mode", "ipv6_address_mode", "subnetpool_id"),
	fields: func(s *model.Subnet) []any {
		return append([]any{&s.ID, &s.ProjectID, &s.NetworkID, &s.Name, &s.IPVersion, textCol{&s.CIDR},
			textCol{&s.GatewayIP}, poolsCol(&s.AllocationPools), jsonCol[[]string]{&s.DNSNameservers},
			hostRoutesCol(&s.HostRoutes), &s.EnableDHCP, nullStr{&s.IPv6RAMode}, nullStr{&s.IPv6AddressMode},
			nullStr{&s.SubnetpoolID}}, stdFields(&s.Standard)...)
	},
	page: pageAttrs("id", "project_id", "name", "description", "network_id", "ip_version#", "cidr", "enable_dhcp#"),
}

// ports holds the port row; FixedIPs and SecurityGroups live in
// ip_allocations and port_security_groups.
var ports = &table[model.Port]{
	name: "ports", noun: "port",
	cols: cols("id", "project_id", "network_id", "name", "admin_state_up", "status", "mac_address", "device_id",
		"device_owner", "port_security_enabled", "allowed_address_pairs", "binding_host_id", "binding_profile",
		"binding_vnic_type", "binding_vif_type", "binding_vif_details", "router_id", "extra_dhcp_opts"),
	fields: func(p *model.Port) []any {
		return append([]any{&p.ID, &p.ProjectID, &p.NetworkID, &p.Name, &p.AdminStateUp, &p.Status, &p.MACAddress,
			&p.DeviceID, &p.DeviceOwner, &p.PortSecurityEnabled, pairsCol(&p.AllowedAddressPairs), &p.BindingHostID,
			jsonCol[map[string]any]{&p.BindingProfile}, &p.BindingVNICType, &p.BindingVIFType,
			jsonCol[map[string]any]{&p.BindingVIFDetails}, &p.RouterID,
			jsonCol[[]model.ExtraDHCPOpt]{&p.ExtraDHCPOpts}}, stdFields(&p.Standard)...)
	},
	page: pageAttrs("id", "project_id", "name", "description", "network_id", "admin_state_up#", "status", "mac_address",
		"device_id", "device_owner", "port_security_enabled#", "binding:host_id=binding_host_id",
		"binding:vnic_type=binding_vnic_type"),
}

var routers = &table[model.Router]{
	name: "routers", noun: "router",
	cols: cols("id", "project_id", "name", "admin_state_up", "status", "gw_network_id", "gw_port_id", "enable_snat",
		"routes", "distributed", "ha"),
	fields: func(r *model.Router) []any {
		return append([]any{&r.ID, &r.ProjectID, &r.Name, &r.AdminStateUp, &r.Status, gwCol{r, 0}, gwCol{r, 1},
			gwCol{r, 2}, routesCol(&r.Routes), &r.Distributed, &r.HA}, stdFields(&r.Standard)...)
	},
	page: pageAttrs("id", "project_id", "name", "description", "admin_state_up#", "status"),
}

var floatingIPs = &table[model.FloatingIP]{
	name: "floatingips", noun: "floating ip",
	cols: cols("id", "project_id", "floating_network_id", "floating_ip_address", "floating_port_id", "port_id",
		"fixed_ip_address", "router_id", "status"),
	fields: func(f *model.FloatingIP) []any {
		return append([]any{&f.ID, &f.ProjectID, &f.FloatingNetworkID, textCol{&f.FloatingIPAddress}, &f.FloatingPortID,
			nullStr{&f.PortID}, textCol{&f.FixedIPAddress}, nullStr{&f.RouterID}, &f.Status}, stdFields(&f.Standard)...)
	},
	page: pageAttrs("id", "project_id", "description", "floating_network_id", "floating_ip_address", "status"),
}

var securityGroups = &table[model.SecurityGroup]{
	name: "security_groups", noun: "security group",
	cols: cols("id", "project_id", "name", "stateful"),
	fields: func(g *model.SecurityGroup) []any {
		return append([]any{&g.ID, &g.ProjectID, &g.Name, &g.Stateful}, stdFields(&g.Standard)...)
	},
	page: pageAttrs("id", "project_id", "name", "description"),
}

var rules = &table[model.SecurityGroupRule]{
	name: "security_group_rules", noun: "security group rule",
	cols: cols("id", "project_id", "security_group_id", "direction", "ethertype", "protocol", "port_range_min",
		"port_range_max", "remote_ip_prefix", "remote_group_id"),
	fields: func(r *model.SecurityGroupRule) []any {
		return append([]any{&r.ID, &r.ProjectID, &r.SecurityGroupID, &r.Direction, &r.Ethertype, nullStr{&r.Protocol},
			nullInt{&r.PortRangeMin}, nullInt{&r.PortRangeMax}, nullStr{&r.RemoteIPPrefix}, nullStr{&r.RemoteGroupID}},
			stdFields(&r.Standard)...)
	},
	page: pageAttrs("id", "project_id", "description", "security_group_id", "direction", "ethertype"),
}

// Lock takes a transaction-scoped advisory lock on PostgreSQL. On SQLite
// write transactions are already serialised, so it only checks ctx.
func (t *tx) Lock(ctx context.Context, key string) error {
	if !t.pg {
		return ctx.Err()
	}
	if _, err := t.exec(ctx, "SELECT pg_advisory_xact_lock(hashtext(?))", key); err != nil {
		return fmt.Errorf("lock %s: %w", key, err)
	}
	return nil
}

func (t *tx) LockShared(ctx context.Context, key string) error {
	if !t.pg {
		return ctx.Err()
	}
	if _, err := t.exec(ctx, "SELECT pg_advisory_xact_lock_shared(hashtext(?))", key); err != nil {
		return fmt.Errorf("shared lock %s: %w", key, err)
	}
	return nil
}

// Networks.

func (t *tx) GetNetwork(ctx context.Context, id string) (*model.Network, error) {
	return networks.get(ctx, t, id)
}

func (t *tx) ListNetworks(ctx context.Context, f store.NetworkFilter) ([]model.Network, error) {
	var w where
	if f.ProjectID != "" && f.IncludePublic {
		w.add("(project_id = ? OR shared OR external)", f.ProjectID)
	} else {
		w.eq("project_id", f.ProjectID)
	}
	w.in("id", f.IDs)
	return networks.listPage(ctx, t, w, f.Page)
}

// CreateNetwork inserts the network; see store.Networks.
func (t *tx) CreateNetwork(ctx context.Context, n *model.Network, pools ...[]segment.Range) error {
	given := *n
	if n.NetworkType == "" {
		n.NetworkType = segment.VXLAN
	}
	if len(n.Segments) < 2 {
		n.Segments = nil
	} else {
		n.Segments = slices.Clone(n.Segments)
		n.Segments[0] = model.Segment{NetworkType: n.NetworkType, PhysicalNetwork: n.PhysicalNetwork, SegmentationID: n.SegmentationID}
	}
	err := t.atomic(ctx, "create network "+n.ID, func() error {
		seq, err := t.nextSeq(ctx, "networks")
		if err != nil {
			return err
		}
		segs := n.Segments
		if segs == nil {
			segs = []model.Segment{{NetworkType: n.NetworkType, PhysicalNetwork: n.PhysicalNetwork, SegmentationID: n.SegmentationID}}
		}
		for i := range segs {
			var pool []segment.Range
			if i < len(pools) {
				pool = pools[i]
			}
			if err := t.addSegment(ctx, n.ID, i, &segs[i], pool, seq); err != nil {
				return &store.SegmentError{Index: i, Err: err}
			}
		}
		n.NetworkType, n.PhysicalNetwork, n.SegmentationID = segs[0].NetworkType, segs[0].PhysicalNetwork, segs[0].SegmentationID
		return networks.insertAt(ctx, t, n, seq)
	})
	if err != nil {
		*n = given
	}
	return err
}

// addSegment allocates the segmentation id of segment i of network id if
// it needs one (a VXLAN or VLAN segment without), from pool (nil: the
// type's whole range), and records the segment; ErrDuplicate if another
// network has it.
func (t *tx) addSegment(ctx context.Context, id string, i int, sg *model.Segment, pool []segment.Range, seq int64) error {
	if (sg.NetworkType == segment.VXLAN || sg.NetworkType == segment.VLAN) && sg.SegmentationID == 0 {
		if pool == nil {
			pool = []segment.Range{{Min: segment.MinVNI, Max: segment.MaxVNI}}
			if sg.NetworkType == segment.VLAN {
				pool = []segment.Range{{Min: segment.MinVLAN, Max: segment.MaxVLAN}}
			}
		}
		var err error
		if sg.SegmentationID, err = t.segmentationID(ctx, sg, pool, seq); err != nil {
			return err
		}
	}
	_, err := t.exec(ctx, "INSERT INTO network_segments (network_id, position, network_type, physical_network, segmentation_id) VALUES (?, ?, ?, ?, ?)",
		id, i, sg.NetworkType, sg.PhysicalNetwork, sg.SegmentationID)
	return err
}

// UpdateNetwork overwrites the network but its segmentation id, which it
// sets in n to the stored one.
func (t *tx) UpdateNetwork(ctx context.Context, n *model.Network) error {
	return t.atomic1(ctx, "update network "+n.ID, func() error { return networks.update(ctx, t, n) })
}

// nextSeq reserves the seq of a new row of table: on PostgreSQL the next
// value of the column's identity sequence (never handed out twice, even to
// concurrent transactions), on SQLite, whose writers are serialised, the one
// the INTEGER PRIMARY KEY would pick.
func (t *tx) nextSeq(ctx context.Context, table string) (int64, error) {
	q := "SELECT COALESCE(MAX(seq), 0) + 1 FROM " + table
	if t.pg {
		q = "SELECT nextval(pg_get_serial_sequence('" + table + "', 'seq'))"
	}
	seq, err := queryAll(ctx, t, q, scanOne[int64])
	if err != nil {
		return 0, fmt.Errorf("next seq of %s: %w", table, err)
	}
	return seq[0], nil
}

// segmentationID picks the segmentation id of segment n of a network which gets seq,
// from pool. It is the seq-th id of the pool while that is free: no lock
// and no conflict between concurrent writers, and an id freed by a
// deletion is not reused at once (on PostgreSQL; on SQLite only the
// latest network's can be). Otherwise it is the lowest free id, chosen
// under a lock per segment space.
func (t *tx) segmentationID(ctx context.Context, n *model.Segment, pool []segment.Range, seq int64) (int, error) {
	size := int64(0)
	for _, r := range pool {
		size += int64(r.Size())
	}
	if size == 0 {
		return 0, fmt.Errorf("segmentation id: %w: no %s range", store.ErrExhausted, n.NetworkType)
	}
	if seq <= size {
		cand, left := 0, seq-1
		for _, r := range pool {
			if left < int64(r.Size()) {
				cand = r.Min + int(left)
				break
			}
			left -= int64(r.Size())
		}
		taken, err := t.count(ctx, "SELECT COUNT(*) FROM network_segments WHERE network_type = ? AND physical_network = ? AND segmentation_id = ?",
			n.NetworkType, n.PhysicalNetwork, cand)
		if err != nil {
			return 0, fmt.Errorf("segmentation id: %w", err)
		}
		if taken == 0 {
			return cand, nil
		}
	}
	// The transaction-scoped lock makes each writer see the previous
	// one's network (on SQLite writers are serialised already).
	if err := t.Lock(ctx, "sqlstore:segment:"+n.NetworkType+":"+n.PhysicalNetwork); err != nil {
		return 0, fmt.Errorf("segmentation id: %w", err)
	}
	for _, r := range pool {
		ids, err := queryAll(ctx, t, `SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM network_segments
				WHERE network_type = ? AND physical_network = ? AND segmentation_id = ?) THEN ?
			ELSE (SELECT MIN(a.segmentation_id) + 1 FROM network_segments a
				WHERE a.network_type = ? AND a.physical_network = ? AND a.segmentation_id >= ? AND a.segmentation_id < ?
				AND NOT EXISTS (SELECT 1 FROM network_segments b WHERE b.network_type = a.network_type
					AND b.physical_network = a.physical_network AND b.segmentation_id = a.segmentation_id + 1)) END`,
			func(s scanner) (id *int, err error) {
				err = s.Scan(nullInt{&id})
				return id, err
			}, n.NetworkType, n.PhysicalNetwork, r.Min, r.Min, n.NetworkType, n.PhysicalNetwork, r.Min, r.Max)
		if err != nil {
			return 0, fmt.Errorf("segmentation id: %w", err)
		}
		if ids[0] != nil {
			return *ids[0], nil
		}
	}
	return 0, fmt.Errorf("segmentation id: %w: every %s id of %v is in use", store.ErrExhausted, n.NetworkType, pool)
}

func (t *tx) DeleteNetwork(ctx context.Context, id string) error {
	return t.atomic(ctx, "delete network "+id, func() error {
		if _, err := t.exec(ctx, "DELETE FROM network_segments WHERE network_id = ?", id); err != nil {
			return err
		}
		return networks.delete(ctx, t, id)
	})
}

// Subnets.

func (t *tx) GetSubnet(ctx context.Context, id string) (*model.Subnet, error) {
	return subnets.get(ctx, t, id)
}

func (t *tx) ListSubnets(ctx context.Context, f store.SubnetFilter) ([]model.Subnet, error) {
	var w where
	if f.ProjectID != "" && f.IncludePublic {
		w.add("(project_id = ? OR network_id IN (SELECT id FROM networks WHERE shared OR external))", f.ProjectID)
	} else {
		w.eq("project_id", f.ProjectID)
	}
	w.in("network_id", f.NetworkIDs)
	w.in("id", f.IDs)
	w.in("subnetpool_id", f.SubnetPoolIDs)
	return subnets.listPage(ctx, t, w, f.Page)
}

func (t *tx) CreateSubnet(ctx context.Context, s *model.Subnet) error {
	return t.atomic1(ctx, "create subnet "+s.ID, func() error { return subnets.insert(ctx, t, s) })
}

func (t *tx) UpdateSubnet(ctx context.Context, s *model.Subnet) error {
	return t.atomic1(ctx, "update subnet "+s.ID, func() error { return subnets.update(ctx, t, s) })
}

func (t *tx) DeleteSubnet(ctx context.Context, id string) error {
	return t.atomic(ctx, "delete subnet "+id, func() error { return subnets.delete(ctx, t, id) })
}

// Ports.

func (t *tx) GetPort(ctx context.Context, id string) (*model.Port, error) {
	ps, err := t.listPorts(ctx, whereID(id), store.Page{})
	if err != nil {
		return nil, err
	}
	if len(ps) == 0 {
		return nil, fmt.Errorf("port %s: %w", id, store.ErrNotFound)
	}
	return &ps[0], nil
}

func (t *tx) ListPorts(ctx context.Context, f store.PortFilter) ([]model.Port, error) {
	var w where
	w.eq("project_id", f.ProjectID)
	w.eq("network_id", f.NetworkID)
	w.eq("device_id", f.DeviceID)
	w.eq("router_id", f.RouterID)
	if f.SubnetID != "" {
		w.add("id IN (SELECT port_id FROM ip_allocations WHERE subnet_id = ?)", f.SubnetID)
	}
	w.in("id", f.IDs)
	return t.listPorts(ctx, w, f.Page)
}

// listPorts loads the ports selected by w and cut by p with their fixed
// IPs and security groups in three queries, whatever their number.
func (t *tx) listPorts(ctx context.Context, w where, p store.Page) ([]model.Port, error) {
	ps, err := ports.listPage(ctx, t, w, p)
	if err != nil || len(ps) == 0 {
		return ps, err
	}
	from, args, err := ports.selection(t, w, p)
	if err != nil {
		return nil, err
	}
	byID := make(map[string]*model.Port, len(ps))
	for i := range ps {
		byID[ps[i].ID] = &ps[i]
	}
	selected := "port_id IN (SELECT id" + from + ") ORDER BY port_id, position"
	type fixedIP struct {
		port string
		ip   model.FixedIP
	}
	ips, err := queryAll(ctx, t, "SELECT port_id, subnet_id, ip_address FROM ip_allocations WHERE "+selected,
		func(s scanner) (v fixedIP, err error) {
			err = s.Scan(&v.port, &v.ip.SubnetID, textCol{&v.ip.IPAddress})
			return v, err
		}, args...)
	if err != nil {
		return nil, fmt.Errorf("list ports: fixed ips: %w", err)
	}
	for _, v := range ips {
		p := byID[v.port]
		p.FixedIPs = append(p.FixedIPs, v.ip)
	}
	sgs, err := queryAll(ctx, t, "SELECT port_id, security_group_id FROM port_security_groups WHERE "+selected,
		func(s scanner) (v [2]string, err error) {
			err = s.Scan(&v[0], &v[1])
			return v, err
		}, args...)
	if err != nil {
		return nil, fmt.Errorf("list ports: security groups: %w", err)
	}
	for _, v := range sgs {
		p := byID[v[0]]
		p.SecurityGroups = append(p.SecurityGroups, v[1])
	}
	return ps, nil
}

func (t *tx) CreatePort(ctx context.Context, p *model.Port) error {
	return t.atomic(ctx, "create port "+p.ID, func() error {
		if err := ports.insert(ctx, t, p); err != nil {
			return err
		}
		return t.insertPortChildren(ctx, p)
	})
}

func (t *tx) UpdatePort(ctx context.Context, p *model.Port) error {
	return t.atomic(ctx, "update port "+p.ID, func() error {
		if err := ports.update(ctx, t, p); err != nil {
			return err
		}
		if _, err := t.exec(ctx, "DELETE FROM ip_allocations WHERE port_id = ?", p.ID); err != nil {
			return err
		}
		if _, err := t.exec(ctx, "DELETE FROM port_security_groups WHERE port_id = ?", p.ID); err != nil {
			return err
		}
		return t.insertPortChildren(ctx, p)
	})
}

func (t *tx) insertPortChildren(ctx context.Context, p *model.Port) error {
	for i, ip := range p.FixedIPs {
		if _, err := t.exec(ctx, "INSERT INTO ip_allocations (subnet_id, ip_address, port_id, network_id, position) VALUES (?, ?, ?, ?, ?)",
			ip.SubnetID, textCol{&ip.IPAddress}, p.ID, p.NetworkID, i); err != nil {
			return fmt.Errorf("fixed ip %s %s: %w", ip.SubnetID, ip.IPAddress, err)
		}
	}
	for i, sg := range p.SecurityGroups {
		if _, err := t.exec(ctx, "INSERT INTO port_security_groups (port_id, security_group_id, position) VALUES (?, ?, ?)",
			p.ID, sg, i); err != nil {
			return fmt.Errorf("security group %s: %w", sg, err)
		}
	}
	return nil
}

func (t *tx) DeletePort(ctx context.Context, id string) error {
	return t.atomic(ctx, "delete port "+id, func() error { return ports.delete(ctx, t, id) })
}

// AllocatedIPs returns the subnet's taken addresses in ascending order.
func (t *tx) AllocatedIPs(ctx context.Context, subnetID string) ([]netip.Addr, error) {
	ips, err := queryAll(ctx, t, "SELECT ip_address FROM ip_allocations WHERE subnet_id = ?",
		func(s scanner) (a netip.Addr, err error) {
			err = s.Scan(textCol{&a})
			return a, err
		}, subnetID)
	if err != nil {
		return nil, fmt.Errorf("allocated ips of subnet %s: %w", subnetID, err)
	}
	slices.SortFunc(ips, netip.Addr.Compare)
	return ips, nil
}

func (t *tx) MACInUse(ctx context.Context, networkID, mac string) (bool, error) {
	n, err := t.count(ctx, "SELECT COUNT(*) FROM ports WHERE network_id = ? AND mac_address = ?", networkID, mac)
	if err != nil {
		return false, fmt.Errorf("mac in use: %w", err)
	}
	return n > 0, nil
}

func (t *tx) count(ctx context.Context, q string, args ...any) (int, error) {
	n, err := queryAll(ctx, t, q, scanOne[int], args...)
	if err != nil {
		return 0, err
	}
	return n[0], nil
}

// Routers.

func (t *tx) GetRouter(ctx context.Context, id string) (*model.Router, error) {
	return routers.get(ctx, t, id)
}

func (t *tx) ListRouters(ctx context.Context, f store.RouterFilter) ([]model.Router, error) {
	var w where
	w.eq("project_id", f.ProjectID)
	w.in("id", f.IDs)
	w.eq("gw_network_id", f.GatewayNetworkID)
	return routers.listPage(ctx, t, w, f.Page)
}

func (t *tx) CreateRouter(ctx context.Context, r *model.Router) error {
	return t.atomic1(ctx, "create router "+r.ID, func() error { return routers.insert(ctx, t, r) })
}

func (t *tx) UpdateRouter(ctx context.Context, r *model.Router) error {
	return t.atomic1(ctx, "update router "+r.ID, func() error { return routers.update(ctx, t, r) })
}

func (t *tx) DeleteRouter(ctx context.Context, id string) error {
	return t.atomic(ctx, "delete router "+id, func() error { return routers.delete(ctx, t, id) })
}

// Security groups.

func (t *tx) GetSecurityGroup(ctx context.Context, id string) (*model.SecurityGroup, error) {
	return securityGroups.get(ctx, t, id)
}

func (t *tx) ListSecurityGroups(ctx context.Context, f store.SecurityGroupFilter) ([]model.SecurityGroup, error) {
	var w where
	w.eq("project_id", f.ProjectID)
	w.in("id", f.IDs)
	return securityGroups.listPage(ctx, t, w, f.Page)
}

func (t *tx) CreateSecurityGroup(ctx context.Context, g *model.SecurityGroup) error {
	return t.atomic1(ctx, "create security group "+g.ID, func() error { return securityGroups.insert(ctx, t, g) })
}

func (t *tx) UpdateSecurityGroup(ctx context.Context, g *model.SecurityGroup) error {
	return t.atomic1(ctx, "update security group "+g.ID, func() error { return securityGroups.update(ctx, t, g) })
}

// DeleteSecurityGroup deletes the group; its rules, the rules naming it as
// remote group and its default-group record go with it (ON DELETE CASCADE).
func (t *tx) DeleteSecurityGroup(ctx context.Context, id string) error {
	return t.atomic(ctx, "delete security group "+id, func() error { return securityGroups.delete(ctx, t, id) })
}

func (t *tx) DefaultSecurityGroup(ctx context.Context, projectID string) (string, error) {
	ids, err := queryAll(ctx, t, "SELECT security_group_id FROM default_security_groups WHERE project_id = ?", scanOne[string], projectID)
	switch {
	case err != nil:
		return "", fmt.Errorf("default security group of %s: %w", projectID, err)
	case len(ids) == 0:
		return "", fmt.Errorf("default security group of %s: %w", projectID, store.ErrNotFound)
	}
	return ids[0], nil
}

func (t *tx) SetDefaultSecurityGroup(ctx context.Context, projectID, groupID string) error {
	return t.atomic1(ctx, "set default security group of "+projectID, func() error {
		_, err := t.exec(ctx, "INSERT INTO default_security_groups (project_id, security_group_id) VALUES (?, ?)", projectID, groupID)
		return err
	})
}

// SecurityGroupPorts returns the ids of the ports using the group, in port
// order.
func (t *tx) SecurityGroupPorts(ctx context.Context, groupID string) ([]string, error) {
	ids, err := queryAll(ctx, t, `SELECT p.id FROM ports p JOIN port_security_groups g ON g.port_id = p.id
		WHERE g.security_group_id = ? ORDER BY p.created_at, p.seq`, scanOne[string], groupID)
	if err != nil {
		return nil, fmt.Errorf("ports of security group %s: %w", groupID, err)
	}
	return ids, nil
}

// Security group rules.

func (t *tx) GetRule(ctx context.Context, id string) (*model.SecurityGroupRule, error) {
	return rules.get(ctx, t, id)
}

func (t *tx) ListRules(ctx context.Context, f store.RuleFilter) ([]model.SecurityGroupRule, error) {
	var w where
	w.eq("project_id", f.ProjectID)
	w.in("security_group_id", f.SecurityGroupIDs)
	w.in("id", f.IDs)
	return rules.listPage(ctx, t, w, f.Page)
}

func (t *tx) CreateRule(ctx context.Context, r *model.SecurityGroupRule) error {
	return t.atomic1(ctx, "create security group rule "+r.ID, func() error { return rules.insert(ctx, t, r) })
}

func (t *tx) DeleteRule(ctx context.Context, id string) error {
	return t.atomic1(ctx, "delete security group rule "+id, func() error { return rules.delete(ctx, t, id) })
}

// Quotas.

func (t *tx) Quotas(ctx context.Context, projectID string) (map[string]int, error) {
	type limit struct {
		resource string
		limit    int
	}
	ls, err := queryAll(ctx, t, "SELECT resource, hard_limit FROM quotas WHERE project_id = ?",
		func(s scanner) (l limit, err error) {
			err = s.Scan(&l.resource, &l.limit)
			return l, err
		}, projectID)
	if err != nil {
		return nil, fmt.Errorf("quotas of %s: %w", projectID, err)
	}
	m := make(map[string]int, len(ls))
	for _, l := range ls {
		m[l.resource] = l.limit
	}
	return m, nil
}

// QuotaProjects returns the projects with explicit limits, sorted.
func (t *tx) QuotaProjects(ctx context.Context) ([]string, error) {
	ps, err := queryAll(ctx, t, "SELECT DISTINCT project_id FROM quotas ORDER BY project_id", scanOne[string])
	if err != nil {
		return nil, fmt.Errorf("quota projects: %w", err)
	}
	return ps, nil
}

func (t *tx) SetQuota(ctx context.Context, projectID, resource string, limit int) error {
	return t.atomic1(ctx, "set quota "+projectID+" "+resource, func() error {
		_, err := t.exec(ctx, `INSERT INTO quotas (project_id, resource, hard_limit) VALUES (?, ?, ?)
			ON CONFLICT (project_id, resource) DO UPDATE SET hard_limit = excluded.hard_limit`, projectID, resource, limit)
		return err
	})
}

// DeleteQuotas removes a project's explicit limits; none is not an error.
func (t *tx) DeleteQuotas(ctx context.Context, projectID string) error {
	return t.atomic1(ctx, "delete quotas of "+projectID, func() error {
		_, err := t.exec(ctx, "DELETE FROM quotas WHERE project_id = ?", projectID)
		return err
	})
}

var countTables = map[string]string{
	"network":               "networks",
	"subnet":                "subnets",
	"subnetpool":            "subnetpools",
	"port":                  "ports",
	"router":                "routers",
	"security_group":        "security_groups",
	"security_group_rule":   "security_group_rules",
	"ikepolicy":             "ikepolicies",
	"ipsecpolicy":           "ipsecpolicies",
	"vpnservice":            "vpnservices",
	"endpoint_group":        "endpoint_groups",
	"ipsec_site_connection": "ipsec_site_connections",
	"floatingip":            "floatingips",
}

func (t *tx) Count(ctx context.Context, resource, projectID string) (int, error) {
	tbl, ok := countTables[resource]
	if !ok {
		return 0, fmt.Errorf("count %s: unknown resource", resource)
	}
	n, err := t.count(ctx, "SELECT COUNT(*) FROM "+tbl+" WHERE project_id = ?", projectID)
	if err != nil {
		return 0, fmt.Errorf("count %s of %s: %w", resource, projectID, err)
	}
	return n, nil
}

// Floating IPs.

func (t *tx) GetFloatingIP(ctx context.Context, id string) (*model.FloatingIP, error) {
	return floatingIPs.get(ctx, t, id)
}

func (t *tx) ListFloatingIPs(ctx context.Context, f store.FloatingIPFilter) ([]model.FloatingIP, error) {
	var w where
	w.eq("project_id", f.ProjectID)
	w.in("id", f.IDs)
	w.in("port_id", f.PortIDs)
	w.in("router_id", f.RouterIDs)
	w.eq("floating_network_id", f.FloatingNetworkID)
	return floatingIPs.listPage(ctx, t, w, f.Page)
}

func (t *tx) CreateFloatingIP(ctx context.Context, f *model.FloatingIP) error {
	return t.atomic1(ctx, "create floating ip "+f.ID, func() error { return floatingIPs.insert(ctx, t, f) })
}

func (t *tx) UpdateFloatingIP(ctx context.Context, f *model.FloatingIP) error {
	return t.atomic1(ctx, "update floating ip "+f.ID, func() error { return floatingIPs.update(ctx, t, f) })
}

func (t *tx) DeleteFloatingIP(ctx context.Context, id string) error {
	return t.atomic(ctx, "delete floating ip "+id, func() error { return floatingIPs.delete(ctx, t, id) })
}

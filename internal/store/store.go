// Package store defines how the service layer reads and writes Neutrino's
// state. Implementations live in sub-packages; the service layer never sees SQL.
package store

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/neutrino-net/neutrino/internal/model"
	"github.com/neutrino-net/neutrino/internal/segment"
)

// Sentinel errors returned by every implementation.
var (
	// ErrNotFound means the row does not exist.
	ErrNotFound = errors.New("not found")
	// ErrDuplicate means a uniqueness constraint rejected the write.
	ErrDuplicate = errors.New("duplicate")
	// ErrReferenced means a foreign key still points at the row.
	ErrReferenced = errors.New("still referenced")
	// ErrExhausted means no free value was left to allocate.
	ErrExhausted = errors.New("exhausted")
)

// Store is a transactional database.
type Store interface {
	// Read runs fn in a read-only transaction.
	Read(ctx context.Context, fn func(Tx) error) error
	// Write runs fn in a read-write transaction that is committed when fn
	// returns nil and rolled back otherwise. Writes are serialisable with
	// respect to the keys passed to Tx.Lock.
	Write(ctx context.Context, fn func(Tx) error) error
	// Dialect names the backend ("sqlite" or "postgres").
	Dialect() string
	Close() error
}

// Scope restricts a listing to one project. An empty ProjectID lists all.
type Scope struct {
	ProjectID string
}

// Page is what of a listing the store cuts itself: equality filters on
// plain attributes, an order, a marker and a limit. Attribute names are
// the API's; PageAttrs lists, per collection, the ones the store takes.
// The zero Page is every row in creation order.
type Page struct {
	// Eq keeps rows whose attribute equals one of the values (string,
	// bool or int), for every attribute given.
	Eq map[string][]any
	// Order is the whole order, ties included; empty: creation order.
	Order []SortKey
	// After keeps only the rows after the one with this id in Order, or
	// in creation order when Order is empty (none if no row has it).
	After string
	// Limit caps the rows returned; 0 is no cap.
	Limit int
}

// SortKey is one attribute of an order.
type SortKey struct {
	Attr string
	Desc bool
}

// PageAttrs lists, per API collection, the attributes a Page may filter
// and sort on: those stored as the API shows them, never null.
var PageAttrs = map[string][]string{
	"networks": {"id", "project_id", "name", "description", "admin_state_up", "status", "shared", "router:external",
		"mtu", "port_security_enabled"},
	"subnets": {"id", "project_id", "name", "description", "network_id", "ip_version", "cidr", "enable_dhcp"},
	"ports": {"id", "project_id", "name", "description", "network_id", "admin_state_up", "status", "mac_address",
		"device_id", "device_owner", "port_security_enabled", "binding:host_id", "binding:vnic_type"},
	"routers": {"id", "project_id", "name", "description", "admin_state_up", "status"},
	"subnetpools": {"id", "project_id", "name", "description", "ip_version", "default_prefixlen", "min_prefixlen",
		"max_prefixlen", "shared", "is_default"},
	"floatingips":          {"id", "project_id", "description", "floating_network_id", "floating_ip_address", "status"},
	"security_groups":      {"id", "project_id", "name", "description"},
	"security_group_rules": {"id", "project_id", "description", "security_group_id", "direction", "ethertype"},
	"ikepolicies": {"id", "project_id", "name", "description", "auth_algorithm", "encryption_algorithm",
		"phase1_negotiation_mode", "ike_version", "pfs"},
	"ipsecpolicies": {"id", "project_id", "name", "description", "transform_protocol", "auth_algorithm",
		"encryption_algorithm", "encapsulation_mode", "pfs"},
	"trunks":          {"id", "project_id", "name", "description", "admin_state_up", "status", "port_id"},
	"vpnservices":     {"id", "project_id", "name", "description", "router_id", "admin_state_up", "status"},
	"endpoint_groups": {"id", "project_id", "name", "description", "type"},
	"ipsec_site_connections": {"id", "project_id", "name", "description", "vpnservice_id", "ikepolicy_id",
		"ipsecpolicy_id", "peer_address", "peer_id", "route_mode", "mtu", "initiator", "auth_mode",
		"admin_state_up", "status"},
}

// NetworkFilter selects networks.
type NetworkFilter struct {
	Scope
	Page
	// IncludePublic adds shared and external networks of other projects
	// when ProjectID is set.
	IncludePublic bool
	IDs           []string
}

// SubnetFilter selects subnets.
type SubnetFilter struct {
	Scope
	Page
	// IncludePublic adds subnets of networks that are shared or external.
	IncludePublic bool
	NetworkIDs    []string
	IDs           []string
	// SubnetPoolIDs selects subnets allocated from these pools.
	SubnetPoolIDs []string
}

// SubnetPoolFilter selects subnet pools.
type SubnetPoolFilter struct {
	Scope
	Page
	// IncludeShared adds the shared pools of other projects when
	// ProjectID is set.
	IncludeShared bool
	IDs           []string
	// AddressScopeIDs selects the pools in these address scopes.
	AddressScopeIDs []string
}

// AddressScopeFilter selects address scopes.
type AddressScopeFilter struct {
	Scope
	Page
	// IncludeShared adds the shared scopes of other projects when
	// ProjectID is set.
	IncludeShared bool
	IDs           []string
}

// PortFilter selects ports.
type PortFilter struct {
	Scope
	Page
	NetworkID string
	DeviceID  string
	RouterID  string // ports attached to this router through the router API
	SubnetID  string // ports with an address on this subnet
	IDs       []string
}

// RouterFilter selects routers.
type RouterFilter struct {
	Scope
	Page
	IDs []string
	// GatewayNetworkID selects routers whose gateway is on this network.
	GatewayNetworkID string
}

// FloatingIPFilter selects floating IPs.
type FloatingIPFilter struct {
	Scope
	Page
	IDs []string
	// PortIDs selects floating IPs associated with these ports.
	PortIDs []string
	// RouterIDs selects floating IPs associated through these routers.
	RouterIDs []string
	// FloatingNetworkID selects floating IPs of this external network.
	FloatingNetworkID string
}

// SecurityGroupFilter selects security groups.
type SecurityGroupFilter struct {
	Scope
	Page
	IDs []string
}

// RuleFilter selects security group rules.
type RuleFilter struct {
	Scope
	Page
	SecurityGroupIDs []string
	IDs              []string
}

// VPNServiceFilter selects VPN services.
type VPNServiceFilter struct {
	Scope
	Page
	IDs      []string
	RouterID string
	SubnetID string
}

// EndpointGroupFilter selects endpoint groups.
type EndpointGroupFilter struct {
	Scope
	Page
	IDs []string
	// Endpoint selects groups listing this endpoint (e.g. a subnet id).
	Endpoint string
}

// PolicyFilter selects IKE or IPsec policies.
type PolicyFilter struct {
	Scope
	Page
}

// ConnectionFilter selects IPsec site connections.
type ConnectionFilter struct {
	Scope
	Page
	IDs           []string
	VPNServiceIDs []string
	IKEPolicyID   string
	IPsecPolicyID string
	// EndpointGroupID selects connections using the group as local or peer.
	EndpointGroupID string
}

// Tx is one transaction: every aggregate's methods, each of which honours
// ctx. Code that needs only some aggregates takes the smaller interfaces
// below, and a unit test can fake just those.
type Tx interface {
	Locker
	Networks
	SubnetPools
	AddressScopes
	Ports
	Routers
	FloatingIPs
	SecurityGroups
	Quotas
	VPN
	Agents
	Trunks
	Tags
}

// Locker serialises writers within a transaction.
type Locker interface {
	// Lock serialises writers on key until the transaction ends.
	Lock(ctx context.Context, key string) error
	// LockShared holds key against Lock, but not against other LockShared
	// holders, until the transaction ends: many writers may rely on a row
	// that none of them changes.
	LockShared(ctx context.Context, key string) error
}

// SegmentError is CreateNetwork's refusal of segment Index of a network.
type SegmentError struct {
	Index int
	Err   error
}

func (e *SegmentError) Error() string { return fmt.Sprintf("segment %d: %v", e.Index, e.Err) }
func (e *SegmentError) Unwrap() error { return e.Err }

// Networks holds networks and their subnets.
type Networks interface {
	GetNetwork(ctx context.Context, id string) (*model.Network, error)
	ListNetworks(ctx context.Context, f NetworkFilter) ([]model.Network, error)
	// CreateNetwork inserts the network. A vlan or vxlan network without
	// a segmentation id gets the lowest free one of pool (nil: the type's
	// whole range; ErrExhausted when none is free); a segmentation id or
	// a flat network's physical network already taken gives ErrDuplicate.
	// An empty NetworkType is vxlan. A multi-segment network (two or more
	// Segments, the first being its own segment) gets each segment's id
	// from pools[i] the same way; a refusal of a segment is a
	// *SegmentError naming it.
	CreateNetwork(ctx context.Context, n *model.Network, pools ...[]segment.Range) error
	UpdateNetwork(ctx context.Context, n *model.Network) error
	// DeleteNetwork deletes the network and its subnets.
	DeleteNetwork(ctx context.Context, id string) error

	GetSubnet(ctx context.Context, id string) (*model.Subnet, error)
	ListSubnets(ctx context.Context, f SubnetFilter) ([]model.Subnet, error)
	CreateSubnet(ctx context.Context, s *model.Subnet) error
	UpdateSubnet(ctx context.Context, s *model.Subnet) error
	DeleteSubnet(ctx context.Context, id string) error
}

// AddressScopes holds address scopes (subnet pools name theirs in
// AddressScopeID).
type AddressScopes interface {
	GetAddressScope(ctx context.Context, id string) (*model.AddressScope, error)
	ListAddressScopes(ctx context.Context, f AddressScopeFilter) ([]model.AddressScope, error)
	CreateAddressScope(ctx context.Context, a *model.AddressScope) error
	UpdateAddressScope(ctx context.Context, a *model.AddressScope) error
	DeleteAddressScope(ctx context.Context, id string) error
}

// SubnetPools holds subnet pools (subnets name theirs in SubnetpoolID).
type SubnetPools interface {
	GetSubnetPool(ctx context.Context, id string) (*model.SubnetPool, error)
	ListSubnetPools(ctx context.Context, f SubnetPoolFilter) ([]model.SubnetPool, error)
	CreateSubnetPool(ctx context.Context, p *model.SubnetPool) error
	UpdateSubnetPool(ctx context.Context, p *model.SubnetPool) error
	DeleteSubnetPool(ctx context.Context, id string) error
}

// Ports holds ports and the IPAM records they carry: addresses and MACs.
type Ports interface {
	// GetPort and ListPorts fill FixedIPs and SecurityGroups.
	GetPort(ctx context.Context, id string) (*model.Port, error)
	ListPorts(ctx context.Context, f PortFilter) ([]model.Port, error)
	// CreatePort and UpdatePort write the port with its FixedIPs and
	// SecurityGroups; an address or MAC already taken gives ErrDuplicate.
	CreatePort(ctx context.Context, p *model.Port) error
	UpdatePort(ctx context.Context, p *model.Port) error
	DeletePort(ctx context.Context, id string) error
	// AllocatedIPs lists the addresses taken on a subnet.
	AllocatedIPs(ctx context.Context, subnetID string) ([]netip.Addr, error)
	// MACInUse reports whether a port on the network has the MAC.
	MACInUse(ctx context.Context, networkID, mac string) (bool, error)

	// PortsOnHost lists the ports whose binding:host_id is host.
	PortsOnHost(ctx context.Context, host string) ([]model.Port, error)
}

// Routers holds routers (their gateways and interfaces are ports).
type Routers interface {
	GetRouter(ctx context.Context, id string) (*model.Router, error)
	ListRouters(ctx context.Context, f RouterFilter) ([]model.Router, error)
	CreateRouter(ctx context.Context, r *model.Router) error
	UpdateRouter(ctx context.Context, r *model.Router) error
	DeleteRouter(ctx context.Context, id string) error
}

// FloatingIPs holds floating IPs. A missing network, port or router gives
// ErrReferenced; a fixed IP that already has a floating IP on the same
// external network gives ErrDuplicate.
type FloatingIPs interface {
	GetFloatingIP(ctx context.Context, id string) (*model.FloatingIP, error)
	ListFloatingIPs(ctx context.Context, f FloatingIPFilter) ([]model.FloatingIP, error)
	CreateFloatingIP(ctx context.Context, f *model.FloatingIP) error
	UpdateFloatingIP(ctx context.Context, f *model.FloatingIP) error
	DeleteFloatingIP(ctx context.Context, id string) error
}

// SecurityGroups holds security groups, their rules and each project's default group.
type SecurityGroups interface {
	GetSecurityGroup(ctx context.Context, id string) (*model.SecurityGroup, error)
	ListSecurityGroups(ctx context.Context, f SecurityGroupFilter) ([]model.SecurityGroup, error)
	CreateSecurityGroup(ctx context.Context, g *model.SecurityGroup) error
	UpdateSecurityGroup(ctx context.Context, g *model.SecurityGroup) error
	// DeleteSecurityGroup deletes the group and its rules; a port still
	// using it gives ErrReferenced.
	DeleteSecurityGroup(ctx context.Context, id string) error
	// DefaultSecurityGroup returns the id of a project's default group, or
	// ErrNotFound.
	DefaultSecurityGroup(ctx context.Context, projectID string) (string, error)
	// SetDefaultSecurityGroup records a project's default group; a second
	// one for the same project gives ErrDuplicate.
	SetDefaultSecurityGroup(ctx context.Context, projectID, groupID string) error
	// SecurityGroupPorts lists the ids of ports using the group.
	SecurityGroupPorts(ctx context.Context, groupID string) ([]string, error)

	GetRule(ctx context.Context, id string) (*model.SecurityGroupRule, error)
	ListRules(ctx context.Context, f RuleFilter) ([]model.SecurityGroupRule, error)
	CreateRule(ctx context.Context, r *model.SecurityGroupRule) error
	DeleteRule(ctx context.Context, id string) error
}

// Quotas holds explicit per-project limits and counts what they limit.
type Quotas interface {
	// Quotas returns the limits set explicitly for a project.
	Quotas(ctx context.Context, projectID string) (map[string]int, error)
	// QuotaProjects lists the projects with explicit limits.
	QuotaProjects(ctx context.Context) ([]string, error)
	SetQuota(ctx context.Context, projectID, resource string, limit int) error
	DeleteQuotas(ctx context.Context, projectID string) error

	// Count counts a project's resources of a quota kind ("network",
	// "subnet", "port", "router", "security_group", "security_group_rule",
	// "ikepolicy", "ipsecpolicy", "vpnservice", "endpoint_group",
	// "ipsec_site_connection").
	Count(ctx context.Context, resource, projectID string) (int, error)
}

// VPN holds the VPNaaS resources: policies, services, endpoint groups and connections.
type VPN interface {
	GetIKEPolicy(ctx context.Context, id string) (*model.IKEPolicy, error)
	ListIKEPolicies(ctx context.Context, f PolicyFilter) ([]model.IKEPolicy, error)
	CreateIKEPolicy(ctx context.Context, p *model.IKEPolicy) error
	UpdateIKEPolicy(ctx context.Context, p *model.IKEPolicy) error
	// DeleteIKEPolicy gives ErrReferenced while a connection uses it.
	DeleteIKEPolicy(ctx context.Context, id string) error

	GetIPsecPolicy(ctx context.Context, id string) (*model.IPsecPolicy, error)
	ListIPsecPolicies(ctx context.Context, f PolicyFilter) ([]model.IPsecPolicy, error)
	CreateIPsecPolicy(ctx context.Context, p *model.IPsecPolicy) error
	UpdateIPsecPolicy(ctx context.Context, p *model.IPsecPolicy) error
	// DeleteIPsecPolicy gives ErrReferenced while a connection uses it.
	DeleteIPsecPolicy(ctx context.Context, id string) error

	GetVPNService(ctx context.Context, id string) (*model.VPNService, error)
	ListVPNServices(ctx context.Context, f VPNServiceFilter) ([]model.VPNService, error)
	CreateVPNService(ctx context.Context, v *model.VPNService) error
	UpdateVPNService(ctx context.Context, v *model.VPNService) error
	// DeleteVPNService gives ErrReferenced while a connection uses it.
	DeleteVPNService(ctx context.Context, id string) error

	GetEndpointGroup(ctx context.Context, id string) (*model.EndpointGroup, error)
	ListEndpointGroups(ctx context.Context, f EndpointGroupFilter) ([]model.EndpointGroup, error)
	CreateEndpointGroup(ctx context.Context, g *model.EndpointGroup) error
	UpdateEndpointGroup(ctx context.Context, g *model.EndpointGroup) error
	// DeleteEndpointGroup gives ErrReferenced while a connection uses it.
	DeleteEndpointGroup(ctx context.Context, id string) error

	GetConnection(ctx context.Context, id string) (*model.IPsecSiteConnection, error)
	ListConnections(ctx context.Context, f ConnectionFilter) ([]model.IPsecSiteConnection, error)
	CreateConnection(ctx context.Context, c *model.IPsecSiteConnection) error
	UpdateConnection(ctx context.Context, c *model.IPsecSiteConnection) error
	DeleteConnection(ctx context.Context, id string) error
}

// Agents holds agents and which routers each hosts.
type Agents interface {
	// GetAgent returns an agent by id; AgentByHost by host and type.
	GetAgent(ctx context.Context, id string) (*model.Agent, error)
	AgentByHost(ctx context.Context, host, agentType string) (*model.Agent, error)
	ListAgents(ctx context.Context) ([]model.Agent, error)
	// CreateAgent gives ErrDuplicate for a second agent of a type on a host.
	CreateAgent(ctx context.Context, a *model.Agent) error
	UpdateAgent(ctx context.Context, a *model.Agent) error
	// DeleteAgent also drops the agent's router bindings.
	DeleteAgent(ctx context.Context, id string) error

	// RouterAgents lists the ids of the agents hosting a router.
	RouterAgents(ctx context.Context, routerID string) ([]string, error)
	// AgentRouters lists the ids of the routers an agent hosts.
	AgentRouters(ctx context.Context, agentID string) ([]string, error)
	// RouterLoads maps every agent id to its number of routers (agents
	// without routers are absent).
	RouterLoads(ctx context.Context) (map[string]int, error)
	// BindRouter records that an agent hosts a router (idempotent).
	BindRouter(ctx context.Context, routerID, agentID string) error
	UnbindRouter(ctx context.Context, routerID, agentID string) error

	// NetworkAgents lists the ids of the DHCP agents serving a network.
	NetworkAgents(ctx context.Context, networkID string) ([]string, error)
	// AgentNetworks lists the ids of the networks a DHCP agent serves.
	AgentNetworks(ctx context.Context, agentID string) ([]string, error)
	// NetworkLoads maps every agent id to its number of networks (agents
	// without networks are absent).
	NetworkLoads(ctx context.Context) (map[string]int, error)
	// BindNetwork records that a DHCP agent serves a network (idempotent).
	BindNetwork(ctx context.Context, networkID, agentID string) error
	UnbindNetwork(ctx context.Context, networkID, agentID string) error
}

// TrunkFilter selects trunks.
type TrunkFilter struct {
	Scope
	Page
	IDs []string
	// PortIDs selects the trunks whose parent is one of these ports.
	PortIDs []string
	// SubPortIDs selects the trunks carrying one of these ports.
	SubPortIDs []string
}

// Trunks holds trunks and their subports.
type Trunks interface {
	// GetTrunk and ListTrunks fill SubPorts, in the order they were added.
	GetTrunk(ctx context.Context, id string) (*model.Trunk, error)
	ListTrunks(ctx context.Context, f TrunkFilter) ([]model.Trunk, error)
	// CreateTrunk inserts the trunk with its subports; a parent or a
	// subport port already in a trunk, or a tag used twice, gives
	// ErrDuplicate.
	CreateTrunk(ctx context.Context, t *model.Trunk) error
	// UpdateTrunk writes the trunk's own attributes, not its subports.
	UpdateTrunk(ctx context.Context, t *model.Trunk) error
	// DeleteTrunk deletes the trunk and lets its subports go.
	DeleteTrunk(ctx context.Context, id string) error
	// AddSubPorts appends subports (ErrDuplicate as CreateTrunk);
	// RemoveSubPorts removes the trunk's subports with these port ids.
	AddSubPorts(ctx context.Context, trunkID string, sps []model.SubPort) error
	RemoveSubPorts(ctx context.Context, trunkID string, portIDs []string) error
}

// TagKinds are the kinds of resources that carry tags, named as their API
// collections with underscores: the reference's tagged resources that
// Neutrino has, and the VPN resources (which the reference does not tag).
var TagKinds = []string{
	"networks", "subnets", "subnetpools", "address_scopes", "ports", "routers", "floatingips", "security_groups", "trunks",
	"ikepolicies", "ipsecpolicies", "vpnservices", "endpoint_groups", "ipsec_site_connections",
}

// Tags holds the tags of the resources of TagKinds. Deleting a resource
// deletes its tags.
type Tags interface {
	// Tags maps each of ids that has tags to them, sorted; ids without
	// tags are absent.
	Tags(ctx context.Context, kind string, ids []string) (map[string][]string, error)
	// SetTags replaces the tags of one resource; ErrNotFound if it does
	// not exist. A non-zero touched bumps the resource's revision_number
	// and sets its updated_at, as a tag change does in the reference.
	SetTags(ctx context.Context, kind, id string, tags []string, touched time.Time) error
	// Touch bumps the revision_number of one resource of TagKinds and sets
	// its updated_at to at, for a change the reference counts against it
	// (a subnet against its network, a rule against its group);
	// ErrNotFound if it does not exist.
	Touch(ctx context.Context, kind, id string, at time.Time) error
}

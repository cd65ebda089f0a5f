// Package model holds Neutrino's domain types: what a network, subnet, port,
// router or security group is, independent of the wire format and the store.
package model

import (
	"net/netip"
	"time"
)

// Standard holds the standard attributes every resource carries.
type Standard struct {
	Description    string
	CreatedAt      time.Time
	UpdatedAt      time.Time
	RevisionNumber int
}

// Network is a collection of ports with shared connectivity.
type Network struct {
	ID                  string
	ProjectID           string
	Name                string
	AdminStateUp        bool
	Status              string
	Shared              bool
	External            bool
	MTU                 int
	PortSecurityEnabled bool
	// NetworkType is the segment's type (flat, vlan, vxlan, local),
	// PhysicalNetwork the physical network of a flat or VLAN network, and
	// SegmentationID the VLAN id or VXLAN network identifier (0 for flat
	// and local). They are set when the network is created and never
	// change.
	NetworkType     string
	PhysicalNetwork string
	SegmentationID  int
	// Segments are every segment of a multi-segment network (the
	// multi-provider extension), the first being the one above; nil for a
	// network of one segment. They never change either.
	Segments []Segment
	Standard
}

// Segment is one segment of a multi-segment network.
type Segment struct {
	NetworkType     string `json:"network_type"`
	PhysicalNetwork string `json:"physical_network"`
	SegmentationID  int    `json:"segmentation_id"`
}

// AllocationPool is an inclusive range of addresses a subnet hands out.
type AllocationPool struct {
	Start netip.Addr
	End   netip.Addr
}

// Contains reports whether a lies within the pool.
func (p AllocationPool) Contains(a netip.Addr) bool {
	return p.Start.Compare(a) <= 0 && a.Compare(p.End) <= 0
}

// HostRoute is a static route handed to instances on a subnet.
type HostRoute struct {
	Destination netip.Prefix
	Nexthop     netip.Addr
}

// Subnet is an IP block on a network with its own address management.
type Subnet struct {
	ID              string
	ProjectID       string
	NetworkID       string
	Name            string
	IPVersion       int
	CIDR            netip.Prefix
	GatewayIP       netip.Addr // invalid (zero) means no gateway
	AllocationPools []AllocationPool
	DNSNameservers  []string
	HostRoutes      []HostRoute
	EnableDHCP      bool
	IPv6RAMode      string
	IPv6AddressMode string
	SubnetpoolID    string
	Standard
}

// Auto reports whether addresses on this subnet are derived from the MAC
// (SLAAC or DHCPv6-stateless) rather than allocated from the pools.
func (s *Subnet) Auto() bool {
	auto := func(m string) bool { return m == "slaac" || m == "dhcpv6-stateless" }
	// As the reference: an RA mode alone decides when no address mode is set.
	return s.IPVersion == 6 && (auto(s.IPv6AddressMode) || (s.IPv6AddressMode == "" && auto(s.IPv6RAMode)))
}

// FixedIP is one address of a port.
type FixedIP struct {
	SubnetID  string
	IPAddress netip.Addr
}

// AddressPair is an extra address (or CIDR) a port may send from.
type AddressPair struct {
	IPAddress  string // an address or a CIDR, as given
	MACAddress string // "" means the port's own MAC
}

// Device owners the core API treats specially.
const (
	OwnerRouterInterface = "network:router_interface"
	OwnerRouterGateway   = "network:router_gateway"
	OwnerDHCP            = "network:dhcp"
)

// Port statuses.
const (
	StatusActive = "ACTIVE"
	StatusDown   = "DOWN"
	StatusBuild  = "BUILD"
	StatusError  = "ERROR"
)

// Port is a point of attachment of a VIF to a network.
type Port struct {
	ID                  string
	ProjectID           string
	NetworkID           string
	Name                string
	AdminStateUp        bool
	Status              string
	MACAddress          string
	DeviceID            string
	DeviceOwner         string
	FixedIPs            []FixedIP
	PortSecurityEnabled bool
	SecurityGroups      []string
	AllowedAddressPairs []AddressPair
	BindingHostID       string
	BindingProfile      map[string]any
	BindingVNICType     string
	BindingVIFType      string
	BindingVIFDetails   map[string]any
	// ExtraDHCPOpts are the extra_dhcp_opt extension's options.
	ExtraDHCPOpts []ExtraDHCPOpt
	// RouterID names the router this port was attached to through the
	// router API (its gateway, or an interface added with
	// add_router_interface), and is empty otherwise. Only attached ports
	// are a router's: device_id and device_owner are client-writable and
	// prove nothing. It is not on the wire.
	RouterID string
	// TrunkDetails is set on a trunk's parent when read through the
	// service (the trunk-details extension); it is not stored.
	TrunkDetails *TrunkDetails
	Standard
}

// ExtraDHCPOpt is one extra DHCP option of a port: a dnsmasq option name
// or number, its value, and the IP version (4 or 6) it is for.
type ExtraDHCPOpt struct {
	OptName   string `json:"opt_name"`
	OptValue  string `json:"opt_value"`
	IPVersion int    `json:"ip_version"`
}

// IsRouterPort reports whether the port belongs to a router.
func (p *Port) IsRouterPort() bool {
	return p.DeviceOwner == OwnerRouterInterface || p.DeviceOwner == OwnerRouterGateway
}

// Route is an extra route of a router.
type Route struct {
	Destination netip.Prefix
	Nexthop     netip.Addr
}

// RouterGateway is a router's attachment to an external network.
type RouterGateway struct {
	NetworkID  string
	PortID     string
	EnableSNAT bool
}

// Router forwards between its interfaces' subnets and its gateway.
type Router struct {
	ID           string
	ProjectID    string
	Name         string
	AdminStateUp bool
	Status       string
	Gateway      *RouterGateway // nil: no gateway
	Routes       []Route
	Distributed  bool
	HA           bool
	Standard
}

// SecurityGroup is a named set of rules applied to ports.
type SecurityGroup struct {
	ID        string
	ProjectID string
	Name      string
	Stateful  bool
	Standard
}

// SecurityGroupRule is one rule of a security group.
type SecurityGroupRule struct {
	ID              string
	ProjectID       string
	SecurityGroupID string
	Direction       string // ingress | egress
	Ethertype       string // IPv4 | IPv6
	Protocol        string // "" means any
	PortRangeMin    *int
	PortRangeMax    *int
	RemoteIPPrefix  string // "" means none
	RemoteGroupID   string // "" means none
	Standard
}

// Quota resources and their defaults; -1 means unlimited.
var DefaultQuotas = map[string]int{
	"network":             100,
	"subnet":              100,
	"subnetpool":          -1,
	"port":                500,
	"router":              10,
	"floatingip":          50,
	"security_group":      10,
	"security_group_rule": 100,
	"rbac_policy":         10,
	// VPNaaS resources are unlimited by default, as in the reference.
	"vpnservice":            -1,
	"ikepolicy":             -1,
	"ipsecpolicy":           -1,
	"ipsec_site_connection": -1,
	"endpoint_group":        -1,
}

// Agent is a Neutrino agent on a host, as /v2.0/agents shows it.
type Agent struct {
	ID                 string
	Host               string
	AgentType          string
	Binary             string
	UnderlayIP         string
	AdminStateUp       bool
	Configurations     map[string]any
	StartedAt          time.Time
	HeartbeatTimestamp time.Time
	CreatedAt          time.Time
	Description        string
}

// Floating IP statuses follow the reference: DOWN until a router realises
// the association, then ACTIVE (or ERROR).

// FloatingIP is an address of an external network, held by a port of its
// own on that network, and optionally associated with a fixed IP of an
// internal port reached through RouterID.
type FloatingIP struct {
	ID                string
	ProjectID         string
	FloatingNetworkID string
	FloatingIPAddress netip.Addr
	// FloatingPortID is the port (device_owner network:floatingip) that
	// holds the address on the external network.
	FloatingPortID string
	// PortID, FixedIPAddress and RouterID are the association; "" and the
	// zero address when there is none.
	PortID         string
	FixedIPAddress netip.Addr
	RouterID       string
	Status         string
	Standard
}

// OwnerFloatingIP is the device owner of a floating IP's own port.
const OwnerFloatingIP = "network:floatingip"

// SubnetPool is a set of prefixes subnets are allocated from
// (subnet_allocation).
type SubnetPool struct {
	ID        string
	ProjectID string
	Name      string
	IPVersion int
	// Prefixes are canonical and do not overlap.
	Prefixes []netip.Prefix
	// DefaultPrefixLen is the length of a subnet asked for without one;
	// subnets are between MinPrefixLen and MaxPrefixLen long.
	DefaultPrefixLen, MinPrefixLen, MaxPrefixLen int
	Shared                                       bool
	// IsDefault marks the pool use_default_subnetpool takes (one per IP
	// version).
	IsDefault bool
	// AddressScopeID is the pool's address scope ("" for none), of its
	// IP version; the prefixes of a scope's pools do not overlap.
	AddressScopeID string
	// DefaultQuota bounds what one project may allocate from the pool, in
	// addresses (IPv4) or /64 prefixes (IPv6); nil or 0 for no limit, as
	// in the reference.
	DefaultQuota *int
	Standard
}

// AddressScope is an address scope (the address-scope extension): the
// subnet pools in it share one address space.
type AddressScope struct {
	ID        string
	ProjectID string
	Name      string
	IPVersion int
	Shared    bool
	Standard
}

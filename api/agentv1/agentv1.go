// Package agentv1 is the contract between the server and the agents over
// the bus: subjects, the desired state of a host, hints and reports.
//
// The protocol is state-based. An agent asks for the full desired state of
// its host when it (re)connects and periodically; change messages are only
// hints naming what changed, so a lost message delays and never corrupts.
// Reports carry absolute states, so a duplicate is harmless. Every message
// is JSON.
package agentv1

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"time"
)

// Subjects. An agent may publish only on its own host's server subjects
// and subscribe only to its own host's agent subjects and inbox.
const (
	subjectPrefix = "neutrino."
	// AgentTypeL3 is the agent_type shown in /v2.0/agents.
	AgentTypeL3 = "L3 agent"
	// AgentTypeDHCP is the agent_type of the same agent's DHCP part,
	// registered as an agent of its own as the reference's DHCP agent is.
	AgentTypeDHCP = "DHCP agent"
	// Binary is the reference's binary name for the L3 agent.
	Binary = "neutrino-agent"
)

// HintSubject carries Hint messages from the server to one host.
func HintSubject(host string) string { return subjectPrefix + "agent." + host + ".hint" }

// SyncSubject answers a SyncRequest with the host's HostState.
func SyncSubject(host string) string { return subjectPrefix + "server.sync." + host }

// HeartbeatSubject carries Heartbeat messages from one host.
func HeartbeatSubject(host string) string { return subjectPrefix + "server.heartbeat." + host }

// StatusSubject carries StatusReport messages from one host.
func StatusSubject(host string) string { return subjectPrefix + "server.status." + host }

// InboxPrefix is the reply inbox prefix of one host's requests.
func InboxPrefix(host string) string { return "_INBOX_" + host }

// Heartbeat registers an agent and keeps it alive.
type Heartbeat struct {
	Host      string    `json:"host"`
	AgentType string    `json:"agent_type"`
	StartedAt time.Time `json:"started_at"`
	// UnderlayIP is the address other hosts reach this one's VXLAN on.
	UnderlayIP netip.Addr `json:"underlay_ip"`
	// Configurations is shown as the agent's "configurations" (e.g. the
	// detected IPsec data plane, the number of routers).
	Configurations map[string]any `json:"configurations,omitempty"`
}

// SyncRequest asks for the desired state of a host.
type SyncRequest struct {
	Host string `json:"host"`
}

// Hint says something changed for the host; the agent fetches the state.
type Hint struct {
	RouterIDs []string `json:"router_ids,omitempty"`
	PortIDs   []string `json:"port_ids,omitempty"`
	// Full asks for a full resync.
	Full bool `json:"full,omitempty"`
}

// HostState is everything one host must realise.
type HostState struct {
	Host     string    `json:"host"`
	Networks []Network `json:"networks"`
	Routers  []Router  `json:"routers"`
	Ports    []Port    `json:"ports"`
	// Trunks are the trunks whose parent port is bound to the host: the
	// agent reports their status. Their subports are in Ports, each with
	// its parent and VLAN tag.
	Trunks []Trunk `json:"trunks,omitempty"`
	// RemoteGroups are the addresses (fixed IPs and allowed address
	// pairs) of the member ports of the security groups that the ports'
	// firewall rules name as remote groups, by group id.
	RemoteGroups map[string][]netip.Prefix `json:"remote_groups,omitempty"`
	// Error, when set, says the server could not build the state.
	Error string `json:"error,omitempty"`
}

// hostStateWire is HostState on the bus: connections' PSKs travel in a
// map beside them, so that a connection marshalled on its own (a log
// line) never carries its key. The bus is authenticated and confined per
// host; never log a marshalled HostState.
type hostStateWire struct {
	hostStateFields
	Secrets map[string]string `json:"secrets,omitempty"`
}

type hostStateFields HostState

// MarshalJSON implements json.Marshaler: the bus encoding, PSKs included.
func (st HostState) MarshalJSON() ([]byte, error) {
	w := hostStateWire{hostStateFields: hostStateFields(st)}
	for _, r := range st.Routers {
		for _, v := range r.VPNServices {
			for _, c := range v.Connections {
				if w.Secrets == nil {
					w.Secrets = map[string]string{}
				}
				w.Secrets[c.ID] = string(c.PSK)
			}
		}
	}
	return json.Marshal(w)
}

// UnmarshalJSON implements json.Unmarshaler: puts the PSKs back.
func (st *HostState) UnmarshalJSON(data []byte) error {
	var w hostStateWire
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	*st = HostState(w.hostStateFields)
	for i := range st.Ports {
		if fw := st.Ports[i].Firewall; fw != nil {
			for j := range fw.Rules {
				if g := fw.Rules[j].RemoteGroup; g != "" {
					fw.Rules[j].Members = append([]netip.Prefix{}, st.RemoteGroups[g]...)
				}
			}
		}
	}
	for i := range st.Routers {
		for j := range st.Routers[i].VPNServices {
			conns := st.Routers[i].VPNServices[j].Connections
			for k := range conns {
				conns[k].PSK = Secret(w.Secrets[conns[k].ID])
			}
		}
	}
	return nil
}

// Network is a tenant or external network present on the host.
type Network struct {
	ID  string `json:"id"`
	VNI uint32 `json:"vni"`
	MTU int    `json:"mtu"`
	// Type is the segment type: vxlan (also when empty), flat, vlan or
	// local. A flat or VLAN network reaches the host interface mapped to
	// its PhysicalNetwork, a VLAN one tagged with VLAN.
	Type            string `json:"network_type,omitempty"`
	PhysicalNetwork string `json:"physical_network,omitempty"`
	VLAN            int    `json:"vlan,omitempty"`
	// Peers are the underlay addresses of the other hosts that carry the
	// network; traffic to them goes over VXLAN.
	Peers    []netip.Addr `json:"peers"`
	External bool         `json:"external"`
	// DHCP is set on the networks whose DHCP server this host runs.
	DHCP *DHCP `json:"dhcp,omitempty"`
}

// DHCP is what one network's DHCP server serves: from its DHCP port (a
// Port of this host's state, in namespace DHCPNamespace(network id)), the
// network's DHCP-enabled subnets to the ports listed in Hosts, and no one
// else.
type DHCP struct {
	PortID       string       `json:"port_id"`
	LeaseSeconds int          `json:"lease_seconds"`
	Subnets      []DHCPSubnet `json:"subnets"`
	Hosts        []DHCPHost   `json:"hosts"`
}

// DHCPSubnet is one DHCP-enabled subnet.
type DHCPSubnet struct {
	ID   string       `json:"id"`
	CIDR netip.Prefix `json:"cidr"`
	// Gateway is invalid for a subnet without one.
	Gateway    netip.Addr   `json:"gateway,omitempty"`
	DNS        []netip.Addr `json:"dns_nameservers"`
	HostRoutes []Route      `json:"host_routes"`
	// IPv6AddressMode is the subnet's ipv6_address_mode: dhcpv6-stateful
	// (addresses over DHCPv6), dhcpv6-stateless (options only), slaac or
	// "" (DHCPv6 serves options only too).
	IPv6AddressMode string `json:"ipv6_address_mode,omitempty"`
}

// DHCPHost is one port the server answers: its MAC, its fixed IPs on the
// DHCP subnets, and its extra DHCP options.
type DHCPHost struct {
	PortID  string       `json:"port_id"`
	MAC     string       `json:"mac"`
	IPs     []netip.Addr `json:"ips"`
	Options []DHCPOption `json:"options,omitempty"`
}

// DHCPOption is one extra_dhcp_opt: a dnsmasq option name or number, its
// value, and the IP version (4 or 6) it applies to.
type DHCPOption struct {
	Name      string `json:"opt_name"`
	Value     string `json:"opt_value"`
	IPVersion int    `json:"ip_version"`
}

// Interface is a router or VM port as the data plane sees it.
type Interface struct {
	PortID    string `json:"port_id"`
	NetworkID string `json:"network_id"`
	MAC       string `json:"mac"`
	// Addresses are the port's fixed IPs with their subnets' prefix
	// lengths (e.g. 10.0.0.1/24).
	Addresses []netip.Prefix `json:"addresses"`
	MTU       int            `json:"mtu"`
	// IPv6Subnets are, on a router's internal interface, its IPv6
	// subnets: what the router's advertisements on it say.
	IPv6Subnets []IPv6Subnet `json:"ipv6_subnets,omitempty"`
}

// IPv6 modes of a subnet (ipv6_ra_mode and ipv6_address_mode).
const (
	IPv6SLAAC           = "slaac"
	IPv6DHCPv6Stateful  = "dhcpv6-stateful"
	IPv6DHCPv6Stateless = "dhcpv6-stateless"
)

// IPv6Subnet is one IPv6 subnet of a router interface. The router sends
// router advertisements for it when RAMode is set: the prefix with the
// autonomous flag for slaac and dhcpv6-stateless, the managed flag for
// dhcpv6-stateful, the other-configuration flag for both DHCPv6 modes,
// and the network's MTU.
type IPv6Subnet struct {
	ID          string       `json:"id"`
	Prefix      netip.Prefix `json:"prefix"`
	RAMode      string       `json:"ipv6_ra_mode,omitempty"`
	AddressMode string       `json:"ipv6_address_mode,omitempty"`
	MTU         int          `json:"mtu"`
	// DNS are the subnet's IPv6 dns_nameservers (RDNSS on slaac subnets).
	DNS []netip.Addr `json:"dns_nameservers,omitempty"`
}

// Gateway is a router's external interface.
type Gateway struct {
	Interface
	// NextHops are the external subnets' gateways (default routes).
	NextHops []netip.Addr `json:"next_hops"`
	SNAT     bool         `json:"snat"`
}

// Route is a static route.
type Route struct {
	Destination netip.Prefix `json:"destination"`
	NextHop     netip.Addr   `json:"next_hop"`
}

// Router is a router scheduled to the host.
type Router struct {
	ID           string      `json:"id"`
	AdminStateUp bool        `json:"admin_state_up"`
	Gateway      *Gateway    `json:"gateway,omitempty"`
	Interfaces   []Interface `json:"interfaces"`
	Routes       []Route     `json:"routes"`
	// VPNServices are the router's VPN services that have at least one
	// connection, each with everything its device driver needs.
	VPNServices []VPNService `json:"vpn_services,omitempty"`
	// FloatingIPs are the floating IPs associated through the router: the
	// gateway holds each address, traffic to it is translated to the
	// fixed IP, and the fixed IP's traffic leaves with it.
	FloatingIPs []FloatingIP `json:"floating_ips,omitempty"`
}

// FloatingIP is one floating IP association of a router.
type FloatingIP struct {
	ID         string     `json:"id"`
	FloatingIP netip.Addr `json:"floating_ip"`
	FixedIP    netip.Addr `json:"fixed_ip"`
}

// VPNService is one VPN service of a router, ready for a device driver.
type VPNService struct {
	ID string `json:"id"`
	// Provider is the service provider's name and Driver its device
	// driver ("strongswan", "libreswan").
	Provider     string `json:"provider"`
	Driver       string `json:"driver"`
	AdminStateUp bool   `json:"admin_state_up"`
	// ExternalV4IP and ExternalV6IP are the router gateway's first
	// address of each family ("" when it has none).
	ExternalV4IP string            `json:"external_v4_ip,omitempty"`
	ExternalV6IP string            `json:"external_v6_ip,omitempty"`
	Connections  []IPsecConnection `json:"connections"`
}

// Secret is a value that never prints: %v, %#v, slog and JSON show
// "***". PSKs cross the bus only in HostState's own encoding.
type Secret string

// MarshalJSON implements json.Marshaler with a redacted value.
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"***"`), nil }

// String implements fmt.Stringer with a redacted value.
func (Secret) String() string { return "***" }

// GoString implements fmt.GoStringer with a redacted value.
func (Secret) GoString() string { return `"***"` }

// LogValue implements slog.LogValuer with a redacted value.
func (Secret) LogValue() slog.Value { return slog.StringValue("***") }

// IPsecConnection is one IPsec site connection with every value resolved
// (external IP of the peer's family, local CIDRs from the subnet or the
// endpoint group, both policies), so that a device driver maps it without
// looking anything up. Algorithm, mode and action values are the API
// spellings (contract section 4); drivers translate them and reject
// values they do not know.
type IPsecConnection struct {
	// ID is the ipsec_site_connection id; drivers name the daemon's
	// connection and secret after it.
	ID string `json:"id"`
	// LocalAddress is the service's external IP of the peer's family.
	LocalAddress string `json:"local_address"`
	// PeerAddress is the peer's IP address or FQDN as given in the API.
	PeerAddress string `json:"peer_address"`
	// LocalID is the local IKE identity; "" means LocalAddress.
	LocalID string `json:"local_id,omitempty"`
	// PeerID is the peer's IKE identity.
	PeerID string `json:"peer_id"`
	// PSK is the pre-shared key. It travels in HostState's secrets map,
	// never inside the connection's own JSON.
	PSK Secret `json:"-"`
	// LocalCIDRs and PeerCIDRs are the protected networks on each side.
	LocalCIDRs []string    `json:"local_cidrs"`
	PeerCIDRs  []string    `json:"peer_cidrs"`
	IKE        IKEPolicy   `json:"ikepolicy"`
	IPsec      IPsecPolicy `json:"ipsecpolicy"`
	DPD        DPD         `json:"dpd"`
	// Initiator is "bi-directional" or "response-only".
	Initiator    string `json:"initiator"`
	AdminStateUp bool   `json:"admin_state_up"`
	MTU          int    `json:"mtu"`
}

// DPD is dead peer detection: action (clear, disabled, hold, restart,
// restart-by-peer), interval and timeout in seconds.
type DPD struct {
	Action   string `json:"action"`
	Interval int    `json:"interval"`
	Timeout  int    `json:"timeout"`
}

// IKEPolicy holds the phase-1 values of an IKE policy.
type IKEPolicy struct {
	AuthAlgorithm         string `json:"auth_algorithm"`
	EncryptionAlgorithm   string `json:"encryption_algorithm"`
	Phase1NegotiationMode string `json:"phase1_negotiation_mode"`
	IKEVersion            string `json:"ike_version"`
	PFS                   string `json:"pfs"`
	// LifetimeSeconds is lifetime.value (the API accepts only seconds).
	LifetimeSeconds int `json:"lifetime"`
}

// IPsecPolicy holds the phase-2 values of an IPsec policy.
type IPsecPolicy struct {
	TransformProtocol   string `json:"transform_protocol"`
	AuthAlgorithm       string `json:"auth_algorithm"`
	EncryptionAlgorithm string `json:"encryption_algorithm"`
	EncapsulationMode   string `json:"encapsulation_mode"`
	PFS                 string `json:"pfs"`
	LifetimeSeconds     int    `json:"lifetime"`
}

// AddressPair is an allowed address pair: an address or prefix and the MAC
// it may be sent from.
type AddressPair struct {
	IP  netip.Prefix `json:"ip"`
	MAC string       `json:"mac"`
}

// Port is a VM (or container) port bound to the host.
type Port struct {
	Interface
	AdminStateUp bool          `json:"admin_state_up"`
	PortSecurity bool          `json:"port_security"`
	AllowedPairs []AddressPair `json:"allowed_pairs"`
	// Gateways are the default next hops of the port's subnets.
	Gateways []netip.Addr `json:"gateways"`
	// Netns names the network namespace the VIF was plugged into.
	Netns string `json:"netns,omitempty"`
	// Firewall is what the port's security groups allow; nil without
	// port security. Its rules name remote groups, whose members are in
	// the HostState's RemoteGroups.
	Firewall *Firewall `json:"firewall,omitempty"`
	// ParentID is set on a trunk's subport: the trunk's parent port, whose
	// host device carries the subport as an 802.1q VLAN link tagged VLAN
	// (or, on a kernel without 802.1q, a veth pair fed by eBPF programs on
	// that device), named like a VM's tap after the subport (as the
	// reference's linuxbridge trunk driver names it) and plugged into the
	// subport's network's bridge with the subport's own filtering.
	ParentID string `json:"parent_id,omitempty"`
	VLAN     int    `json:"vlan,omitempty"`
}

// Trunk is a trunk whose parent port is bound to the host.
type Trunk struct {
	ID         string   `json:"id"`
	PortID     string   `json:"port_id"`
	SubPortIDs []string `json:"sub_port_ids"`
}

// Trunk statuses an agent reports (the reference's).
const (
	TrunkActive   = "ACTIVE"
	TrunkDown     = "DOWN"
	TrunkDegraded = "DEGRADED"
)

// TrunkStatus is one trunk's state on the parent's host: ACTIVE when the
// parent and every subport are wired, DEGRADED (with the reason) when the
// parent is but some subport could not be, DOWN while the parent is not.
type TrunkStatus struct {
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
}

// Firewall is the union of a port's security groups: traffic to and
// from the port that no rule allows is dropped (ARP, DHCP and the ICMPv6
// neighbour discovery a port needs are always allowed; anti-spoofing is
// port security's, apart from this).
type Firewall struct {
	// Stateful: replies of allowed connections are allowed (conntrack).
	Stateful bool     `json:"stateful"`
	Rules    []SGRule `json:"rules"`
}

// SGRule is one security group rule as the data plane applies it.
type SGRule struct {
	// Ingress (to the port) or egress (from it).
	Ingress bool `json:"ingress"`
	// IPv6 or IPv4 (the rule's ethertype).
	IPv6 bool `json:"ipv6"`
	// Protocol is the IP protocol number, -1 for any.
	Protocol int `json:"protocol"`
	// PortMin..PortMax is the destination port range for TCP, UDP, SCTP,
	// UDP-Lite and DCCP (0 for any); for ICMP and ICMPv6 PortMin is the
	// type and PortMax the code (-1 for any).
	PortMin int `json:"port_min"`
	PortMax int `json:"port_max"`
	// RemotePrefix limits the far end (source of ingress, destination of
	// egress) when valid.
	RemotePrefix netip.Prefix `json:"remote_prefix,omitzero"`
	// RemoteGroup limits the far end to the members of a security group.
	RemoteGroup string `json:"remote_group,omitempty"`
	// Members are RemoteGroup's member addresses: decoding a HostState
	// fills them from its RemoteGroups (they do not travel per rule).
	Members []netip.Prefix `json:"-"`
}

// String is the rule in a canonical form (also its identity in rule sets).
func (r SGRule) String() string {
	dir, eth := "egress", "ipv4"
	if r.Ingress {
		dir = "ingress"
	}
	if r.IPv6 {
		eth = "ipv6"
	}
	s := fmt.Sprintf("%s %s proto %d ports %d-%d", dir, eth, r.Protocol, r.PortMin, r.PortMax)
	if r.RemotePrefix.IsValid() {
		s += " prefix " + r.RemotePrefix.String()
	}
	if r.RemoteGroup != "" {
		s += " group " + r.RemoteGroup
	}
	return s
}

// StatusReport tells the server what the host has realised.
type StatusReport struct {
	Host string `json:"host"`
	// Ports maps a port id to ACTIVE (wired) or DOWN.
	Ports map[string]string `json:"ports,omitempty"`
	// Trunks maps the id of a trunk of the host's state to its state.
	Trunks map[string]TrunkStatus `json:"trunks,omitempty"`
	// Routers maps a router id to ACTIVE or ERROR, with a reason.
	Routers map[string]RouterStatus `json:"routers,omitempty"`
	// VPNServices maps a VPN service id to its state. The server accepts
	// it only for services whose router the reporting host hosts. A
	// report may carry VPN states alone (sent the moment a tunnel changes).
	VPNServices map[string]VPNStatus `json:"vpn_services,omitempty"`
}

// VPNStatus is one VPN service's state: ACTIVE when its daemon runs and
// at least one connection is ACTIVE, DOWN otherwise, ERROR when the
// device driver cannot realise it.
type VPNStatus struct {
	Status string `json:"status"`
	// Connections maps a connection id to its state.
	Connections map[string]ConnectionStatus `json:"connections"`
}

// ConnectionStatus is one connection's state: ACTIVE when its CHILD_SA is
// installed, DOWN otherwise (with the last negotiation failure as the
// reason), ERROR when the driver cannot realise it.
type ConnectionStatus struct {
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
}

// RouterStatus is one router's state on the host.
type RouterStatus struct {
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
}

// Names of what Neutrino creates, shared by agent and tests.
const (
	RouterNamespacePrefix = "qrouter-"
	DHCPNamespacePrefix   = "qdhcp-"
	InternalDevicePrefix  = "qr-"
	GatewayDevicePrefix   = "qg-"
	BridgePrefix          = "brq"
	VXLANPrefix           = "vxlan-"
	TapPrefix             = "tap"
	// RouterTapPrefix names the host end of a router interface's veth; it
	// differs from TapPrefix so that the L2 layer never mistakes a router's
	// link for a leftover VM port.
	RouterTapPrefix = "rtr"
)

// RouterNamespace is the network namespace of a router.
func RouterNamespace(routerID string) string { return RouterNamespacePrefix + routerID }

// DHCPNamespace is the network namespace of a network's DHCP server.
func DHCPNamespace(networkID string) string { return DHCPNamespacePrefix + networkID }

// DeviceIDLen is how much of an id a device name keeps: the reference's
// (its devices are named prefix + the id's first 11 characters, 14 bytes
// in all), so that a compute service creates a VM's tap as "tap" + 11
// characters of its port id, as for the reference's linuxbridge agent.
const DeviceIDLen = 11

// DeviceName is a device name for a prefix and an id: the id's first
// DeviceIDLen characters, or as many as fit in Linux's 15 bytes.
func DeviceName(prefix, id string) string {
	n := min(DeviceIDLen, 15-len(prefix), len(id))
	return prefix + id[:n]
}

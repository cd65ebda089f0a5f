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
	"net/netip"
	"time"
)

// Subjects. An agent may publish only on its own host's server subjects
// and subscribe only to its own host's agent subjects and inbox.
const (
	subjectPrefix = "neutrino."
	// AgentTypeL3 is the agent_type shown in /v2.0/agents.
	AgentTypeL3 = "L3 agent"
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
	// Error, when set, says the server could not build the state.
	Error string `json:"error,omitempty"`
}

// Network is a tenant or external network present on the host.
type Network struct {
	ID  string `json:"id"`
	VNI uint32 `json:"vni"`
	MTU int    `json:"mtu"`
	// Peers are the underlay addresses of the other hosts that carry the
	// network; traffic to them goes over VXLAN.
	Peers    []netip.Addr `json:"peers"`
	External bool         `json:"external"`
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
}

// StatusReport tells the server what the host has realised.
type StatusReport struct {
	Host string `json:"host"`
	// Ports maps a port id to ACTIVE (wired) or DOWN.
	Ports map[string]string `json:"ports,omitempty"`
	// Routers maps a router id to ACTIVE or ERROR, with a reason.
	Routers map[string]RouterStatus `json:"routers,omitempty"`
}

// RouterStatus is one router's state on the host.
type RouterStatus struct {
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
}

// Names of what Neutrino creates, shared by agent and tests.
const (
	RouterNamespacePrefix = "qrouter-"
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

// DeviceName is a device name for a prefix and an id: as much of the id as
// fits in Linux's 15 bytes.
func DeviceName(prefix, id string) string {
	n := 15 - len(prefix)
	if len(id) < n {
		n = len(id)
	}
	return prefix + id[:n]
}

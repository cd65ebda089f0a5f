package model

import "log/slog"

// Secret is a string that never prints: logs, errors and %v show "***".
// Reveal returns the value for the one place that needs it.
type Secret string

// String implements fmt.Stringer with a redacted value.
func (Secret) String() string { return "***" }

// GoString implements fmt.GoStringer with a redacted value.
func (Secret) GoString() string { return `"***"` }

// LogValue implements slog.LogValuer with a redacted value.
func (Secret) LogValue() slog.Value { return slog.StringValue("***") }

// MarshalJSON implements json.Marshaler with a redacted value, so a
// structure logged as JSON does not carry the secret either.
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"***"`), nil }

// Reveal returns the secret itself.
func (s Secret) Reveal() string { return string(s) }

// Lifetime is an IKE or IPsec SA lifetime.
type Lifetime struct {
	Units string // "seconds"
	Value int
}

// IKEPolicy is the phase-1 proposal of IPsec site connections.
type IKEPolicy struct {
	ID                    string
	ProjectID             string
	Name                  string
	AuthAlgorithm         string
	EncryptionAlgorithm   string
	Phase1NegotiationMode string
	Lifetime              Lifetime
	IKEVersion            string
	PFS                   string
	Standard
}

// IPsecPolicy is the phase-2 proposal of IPsec site connections.
type IPsecPolicy struct {
	ID                  string
	ProjectID           string
	Name                string
	TransformProtocol   string
	AuthAlgorithm       string
	EncryptionAlgorithm string
	EncapsulationMode   string
	Lifetime            Lifetime
	PFS                 string
	Standard
}

// VPN statuses.
const (
	StatusPendingCreate = "PENDING_CREATE"
	StatusPendingUpdate = "PENDING_UPDATE"
	StatusPendingDelete = "PENDING_DELETE"
)

// IsPending reports whether a status is one of PENDING_*.
func IsPending(status string) bool {
	return status == StatusPendingCreate || status == StatusPendingUpdate || status == StatusPendingDelete
}

// VPNService is a VPN endpoint on a router.
type VPNService struct {
	ID           string
	ProjectID    string
	Name         string
	RouterID     string
	SubnetID     string // legacy mode; "" in endpoint-group mode
	AdminStateUp bool
	FlavorID     string
	Provider     string // the service provider (driver) chosen at create
	ExternalV4IP string
	ExternalV6IP string
	Status       string
	Standard
}

// EndpointGroup is a named set of subnets or CIDRs.
type EndpointGroup struct {
	ID        string
	ProjectID string
	Name      string
	Type      string // subnet, cidr, network, router, vlan
	Endpoints []string
	Standard
}

// DPD is dead peer detection.
type DPD struct {
	Action   string
	Interval int
	Timeout  int
}

// IPsecSiteConnection is a tunnel to a peer.
type IPsecSiteConnection struct {
	ID             string
	ProjectID      string
	Name           string
	VPNServiceID   string
	IKEPolicyID    string
	IPsecPolicyID  string
	PeerAddress    string
	PeerID         string
	LocalID        string
	PeerCIDRs      []string // legacy mode
	LocalEPGroupID string   // endpoint-group mode
	PeerEPGroupID  string
	RouteMode      string
	MTU            int
	Initiator      string
	AuthMode       string
	PSK            Secret
	DPD            DPD
	AdminStateUp   bool
	Status         string
	// StatusReason says why a connection is DOWN or in ERROR (e.g. a
	// failed negotiation); "" when there is nothing to say.
	StatusReason string
	Standard
}

// Package ipsec holds the backend-neutral description of one IPsec site
// connection as the VPN agent receives it: every value already resolved
// (external IP of the right family, local CIDRs from the subnet or the
// endpoint group, the two policies) so that a device driver, such as
// package strongswan, maps it without looking anything up.
//
// The algorithm, mode and action values are the API spellings of section
// 4 of the networking contract ("aes-128", "group14", "bi-directional",
// "restart-by-peer", ...); drivers translate them and reject values they
// do not know.
package ipsec

import "github.com/neutrino-net/neutrino/internal/model"

// Connection is one IPsec site connection, ready for a device driver.
type Connection struct {
	// ID is the ipsec_site_connection id; drivers use it to name the
	// daemon's connection and secret.
	ID string
	// LocalAddress is the VPN service's external IP of the peer's address
	// family (external_v4_ip for an IPv4 peer, else external_v6_ip).
	LocalAddress string
	// PeerAddress is the peer's IP address (or FQDN) as given in the API.
	PeerAddress string
	// LocalID is the local IKE identity; "" means LocalAddress.
	LocalID string
	// PeerID is the peer's IKE identity (required by the API).
	PeerID string
	// PSK is the pre-shared key; it never prints.
	PSK model.Secret
	// LocalCIDRs are the protected local networks (the service subnet's
	// CIDR in legacy mode, the local endpoint group's subnet CIDRs else).
	LocalCIDRs []string
	// PeerCIDRs are the protected networks behind the peer.
	PeerCIDRs []string
	// IKE is phase 1.
	IKE IKEPolicy
	// IPsec is phase 2.
	IPsec IPsecPolicy
	// DPD is dead peer detection: action (clear, disabled, hold, restart,
	// restart-by-peer), interval and timeout in seconds.
	DPD model.DPD
	// Initiator is "bi-directional" or "response-only".
	Initiator string
	// AdminStateUp false means the connection must not be loaded.
	AdminStateUp bool
	// MTU is the connection's MTU. strongSwan has no per-connection MTU
	// (the reference driver ignores it); it is here for other drivers.
	MTU int
}

// IKEPolicy holds the phase-1 values of an IKE policy.
type IKEPolicy struct {
	AuthAlgorithm         string // sha1, sha256, sha384, sha512, aes-xcbc, aes-cmac
	EncryptionAlgorithm   string // 3des, aes-128, ..., aes-256-gcm-16, aes-128-ctr, ...
	Phase1NegotiationMode string // main, aggressive
	IKEVersion            string // v1, v2
	PFS                   string // group2, group5, group14 ... group31
	LifetimeSeconds       int    // lifetime.value; the API only accepts units=seconds
}

// IPsecPolicy holds the phase-2 values of an IPsec policy.
type IPsecPolicy struct {
	TransformProtocol   string // esp, ah (ah-esp is rejected by drivers)
	AuthAlgorithm       string
	EncryptionAlgorithm string
	EncapsulationMode   string // tunnel, transport
	PFS                 string
	LifetimeSeconds     int
}

// Package ipsec names the backend-neutral description of one IPsec site
// connection as a device driver (such as package strongswan) receives it:
// the bus types of package agentv1, where every value is already resolved
// so that a driver maps it without looking anything up.
package ipsec

import "github.com/neutrino-net/neutrino/api/agentv1"

// Connection is one IPsec site connection, ready for a device driver.
type Connection = agentv1.IPsecConnection

// IKEPolicy holds the phase-1 values.
type IKEPolicy = agentv1.IKEPolicy

// IPsecPolicy holds the phase-2 values.
type IPsecPolicy = agentv1.IPsecPolicy

// DPD is dead peer detection.
type DPD = agentv1.DPD

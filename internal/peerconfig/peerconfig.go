// Package peerconfig renders, as text, the configuration the remote
// site's VPN device needs to build exactly the tunnel one IPsec site
// connection describes: the connection mirrored (its peer's addresses,
// identities and networks become the remote device's own), with the same
// proposals, lifetimes and dead peer detection. Rendering is strict: every
// value is checked against what the format can carry, so hostile names or
// identities cannot add configuration.
package peerconfig

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/neutrino-net/neutrino/api/agentv1"
)

// ErrUnknownFormat is a format this package does not render.
var ErrUnknownFormat = errors.New("unknown peer configuration format")

// UnsafeValueError is a value the format cannot carry safely.
type UnsafeValueError struct {
	Field, Value string
}

func (e *UnsafeValueError) Error() string {
	return fmt.Sprintf("%s %q cannot be written safely into the peer configuration", e.Field, e.Value)
}

// renderers are the formats, by name.
var renderers = map[string]func(agentv1.IPsecConnection) (string, error){
	"swanctl": swanctl,
}

// Formats lists the formats in a stable order.
func Formats() []string {
	out := make([]string, 0, len(renderers))
	for f := range renderers {
		out = append(out, f)
	}
	slices.Sort(out)
	return out
}

// Render returns the remote device's configuration for c in format f.
func Render(f string, c agentv1.IPsecConnection) (string, error) {
	r, ok := renderers[f]
	if !ok {
		return "", fmt.Errorf("%w %q; known: %s", ErrUnknownFormat, f, strings.Join(Formats(), ", "))
	}
	if !uuid.MatchString(c.ID) {
		return "", &UnsafeValueError{"id", c.ID}
	}
	return r(c)
}

var (
	uuid = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	// identity is what an IKE identity may hold here: an address, an FQDN
	// or user@FQDN (strongSwan's "@" prefix included), a key id.
	identity = regexp.MustCompile(`^@?[A-Za-z0-9][A-Za-z0-9._:@+=/-]{0,254}$`)
	// host is an address or a DNS name.
	host = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.:-]{0,252}$`)
)

// mirror is c as the remote device sees it.
func mirror(c agentv1.IPsecConnection) agentv1.IPsecConnection {
	m := c
	m.LocalAddress, m.PeerAddress = c.PeerAddress, c.LocalAddress
	m.LocalID, m.PeerID = c.PeerID, c.LocalID
	if m.PeerID == "" {
		m.PeerID = c.LocalAddress
	}
	m.LocalCIDRs, m.PeerCIDRs = c.PeerCIDRs, c.LocalCIDRs
	// Whoever we wait for must initiate; otherwise both may.
	m.Initiator = "bi-directional"
	return m
}

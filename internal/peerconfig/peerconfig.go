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
	"net/netip"
	"regexp"
	"strings"

	"github.com/neutrino-net/neutrino/api/agentv1"
)

// ErrUnknownFormat is a format this package does not render.
var ErrUnknownFormat = errors.New("unknown peer configuration format")

// ErrUnsupported is what every *UnsupportedError matches with errors.Is.
var ErrUnsupported = errors.New("not expressible in the peer configuration format")

// UnsafeValueError is a value the format cannot carry safely.
type UnsafeValueError struct {
	Field, Value string
}

func (e *UnsafeValueError) Error() string {
	return fmt.Sprintf("%s %q cannot be written safely into the peer configuration", e.Field, e.Value)
}

// UnsupportedError is something the connection uses that the product
// the format is for cannot express (an algorithm it lacks, AH, ...).
type UnsupportedError struct {
	// Format is the format's name, What the value the product lacks and
	// Why the reason.
	Format, What, Why string
}

func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("%s cannot express %s: %s", e.Format, e.What, e.Why)
}

// Unwrap makes errors.Is(err, ErrUnsupported) hold.
func (e *UnsupportedError) Unwrap() error { return ErrUnsupported }

// format is one renderer.
type format struct {
	name   string
	render func(site) (string, error)
}

// formats are the formats in the order Formats lists them.
var formats = []format{
	{"swanctl", swanctl},
	{"libreswan", libreswan},
	{"vyos", vyos},
	{"routeros", routeros},
	{"cisco-ios", ciscoIOS},
}

// Formats lists the formats in a stable order.
func Formats() []string {
	out := make([]string, 0, len(formats))
	for _, f := range formats {
		out = append(out, f.name)
	}
	return out
}

// Render returns the remote device's configuration for c in format f.
// It fails with ErrUnknownFormat (wrapped) for an unknown f, with an
// *UnsafeValueError for a value the format cannot carry safely and with
// an *UnsupportedError for something the product cannot express.
func Render(f string, c agentv1.IPsecConnection) (string, error) {
	for _, r := range formats {
		if r.name == f {
			s, err := newSite(c)
			if err != nil {
				return "", err
			}
			return r.render(s)
		}
	}
	return "", fmt.Errorf("%w %q; known formats: %s", ErrUnknownFormat, f, strings.Join(Formats(), ", "))
}

var (
	uuid = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	// identity is what an IKE identity may hold at all: an address, an
	// FQDN or user@FQDN (strongSwan's "@" prefix included), a key id.
	// Formats narrow it further.
	identity = regexp.MustCompile(`^@?[A-Za-z0-9][A-Za-z0-9._:@+=/-]{0,254}$`)
	// host is an address or a DNS name (swanctl's own, looser check).
	host = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.:-]{0,252}$`)
	// fqdn is a conservative DNS name: dot-separated labels of letters,
	// digits and inner hyphens.
	fqdn = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)
	// plainID is an identity most devices carry unquoted: an address, an
	// FQDN or user@FQDN.
	plainID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:@-]{0,252}$`)
)

// site is the connection as the remote device sees it, every value
// checked: "local" is the remote device, "remote" is Neutrino.
type site struct {
	c agentv1.IPsecConnection // the connection as given (policies)
	// id is the connection id, name what the device's objects are named.
	id, name string
	// localAddr is the remote device's own address (our peer_address):
	// an IP (localIP valid) or an FQDN.
	localAddr string
	localIP   netip.Addr
	// remoteIP is Neutrino's gateway address (our local address).
	remoteIP netip.Addr
	// localID and remoteID are the IKE identities as given in the API
	// (without strongSwan's "@"): the device's and Neutrino's.
	localID, remoteID string
	// localTS and remoteTS are the networks behind the device and
	// behind Neutrino.
	localTS, remoteTS []netip.Prefix
	psk               string
	ikev2             bool
	aggressive        bool // IKEv1 aggressive mode
}

// newSite checks what every format needs and mirrors c.
func newSite(c agentv1.IPsecConnection) (site, error) {
	s := site{c: c, id: c.ID, name: "neutrino-" + c.ID, localAddr: c.PeerAddress, psk: string(c.PSK)}
	if !uuid.MatchString(c.ID) {
		return site{}, &UnsafeValueError{"id", c.ID}
	}
	var err error
	if s.remoteIP, err = netip.ParseAddr(c.LocalAddress); err != nil || s.remoteIP.Zone() != "" {
		return site{}, &UnsafeValueError{"local address", c.LocalAddress}
	}
	if ip, err := netip.ParseAddr(c.PeerAddress); err == nil && ip.Zone() == "" {
		s.localIP = ip
		s.localAddr = ip.String()
	} else if len(c.PeerAddress) > 253 || !fqdn.MatchString(c.PeerAddress) {
		return site{}, &UnsafeValueError{"peer_address", c.PeerAddress}
	}
	s.localID = c.PeerID
	if !identity.MatchString(s.localID) {
		return site{}, &UnsafeValueError{"peer_id", c.PeerID}
	}
	s.remoteID = c.LocalID
	if s.remoteID == "" {
		s.remoteID = s.remoteIP.String()
	} else if !identity.MatchString(s.remoteID) {
		return site{}, &UnsafeValueError{"local_id", c.LocalID}
	}
	if s.localTS, err = prefixes("peer_cidrs", c.PeerCIDRs); err != nil {
		return site{}, err
	}
	if s.remoteTS, err = prefixes("local_cidrs", c.LocalCIDRs); err != nil {
		return site{}, err
	}
	if s.psk == "" {
		return site{}, errors.New("peerconfig: the connection has no pre-shared key")
	}
	switch c.IKE.IKEVersion {
	case "v1":
	case "v2":
		s.ikev2 = true
	default:
		return site{}, fmt.Errorf("peerconfig: unknown ike_version %q", c.IKE.IKEVersion)
	}
	switch c.IKE.Phase1NegotiationMode {
	case "main":
	case "aggressive":
		s.aggressive = !s.ikev2
	default:
		return site{}, fmt.Errorf("peerconfig: unknown phase1_negotiation_mode %q", c.IKE.Phase1NegotiationMode)
	}
	return s, nil
}

// prefixes parses CIDRs; at least one is required.
func prefixes(field string, cidrs []string) ([]netip.Prefix, error) {
	if len(cidrs) == 0 {
		return nil, &UnsafeValueError{field, ""}
	}
	out := make([]netip.Prefix, 0, len(cidrs))
	for _, s := range cidrs {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, &UnsafeValueError{field, s}
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// isIP reports whether an identity is an IP literal (an address
// identity); anything else is an FQDN identity, as on Neutrino's side.
func isIP(id string) bool {
	_, err := netip.ParseAddr(id)
	return err == nil
}

// joinPrefixes joins prefixes with sep.
func joinPrefixes(ps []netip.Prefix, sep string) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, sep)
}

// dpdAction is the API dpd.action, "" when disabled.
func dpdAction(a string) (string, error) {
	switch a {
	case "hold", "clear", "restart":
		return a, nil
	case "restart-by-peer":
		return "restart", nil
	case "disabled":
		return "", nil
	}
	return "", fmt.Errorf("peerconfig: unknown dpd action %q", a)
}

// writer writes lines.
type writer struct{ strings.Builder }

func (w *writer) line(format string, args ...any) {
	fmt.Fprintf(&w.Builder, format, args...)
	w.WriteByte('\n')
}

// header writes the comment lines every format starts with.
func (w *writer) header(comment, product string, s site) {
	w.line("%s %s configuration for the remote site of Neutrino IPsec site connection %s,", comment, product, s.id)
	w.line("%s generated by Neutrino. It contains the pre-shared key: keep it private.", comment)
}

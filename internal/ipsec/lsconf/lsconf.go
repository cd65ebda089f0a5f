// Package lsconf maps an IPsec site connection, as the API gives it, to
// Libreswan 4's configuration: the ipsec.conf conn section and the
// ipsec.secrets line Neutrino's own side loads into its router's pluto
// (left is Neutrino), and the algorithm keywords the peer-config export
// shares. It is pure: the server uses it to reject what Libreswan cannot
// do, the Libreswan device driver to render what it loads.
//
// Rendering is strict. Every value is either from an API enumeration,
// a number, an address or prefix printed from its parsed form, or an
// identity or host name checked against a conservative pattern; anything
// else is an error, never quoted or escaped into the file. The PSK is
// written as 0s<base64>, which carries any bytes and cannot end the line.
package lsconf

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"

	"github.com/neutrino-net/neutrino/internal/ipsec"
)

// Limits of Libreswan 4: pluto clamps longer lifetimes to these
// (ipsec.conf(5): ikelifetime and salifetime at most 24 hours), so a
// larger API value is one Libreswan cannot do.
const (
	MaxLifetime = 86400
	MinLifetime = 60
	// RekeyMargin is the rekey margin (as strongSwan's driver uses), at
	// most half the shorter lifetime.
	RekeyMargin = 180
)

var (
	// name is a connection name: used as a file name and a whack argument.
	name = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
	// plainID is an identity Libreswan reads unquoted: an address, an FQDN
	// or user@FQDN.
	plainID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:@-]{0,252}$`)
	// fqdn is a conservative DNS name.
	fqdn = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)
)

// UnsafeValueError is a value that cannot be written into ipsec.conf
// safely (it would need quoting, or could end a line).
type UnsafeValueError struct {
	Field, Value string
}

func (e *UnsafeValueError) Error() string {
	return fmt.Sprintf("libreswan: %s %q cannot be written safely into ipsec.conf", e.Field, e.Value)
}

// Identity is how an API identity reads in ipsec.conf and ipsec.secrets:
// an address as it is, anything else as an FQDN identity (@name).
func Identity(id string) string {
	if _, err := netip.ParseAddr(id); err == nil {
		return id
	}
	return "@" + id
}

// Conn is one connection's configuration for Neutrino's own pluto.
type Conn struct {
	// Name is the connection's name in pluto (its id).
	Name string
	// Conf is the ipsec.conf text holding "conn Name"; Secrets is the
	// ipsec.secrets line with the PSK (write it 0600).
	Conf, Secrets string
	// Initiate says the connection initiates (initiator bi-directional:
	// auto=start); else it waits for the peer (auto=add).
	Initiate bool
}

// Supported checks the values of an IKE and an IPsec policy that
// Libreswan may not be able to do, as the API has them; it returns an
// *UnsupportedError naming the first value it cannot, and nil for values
// it does not know (the API validates those).
func Supported(ike ipsec.IKEPolicy, esp ipsec.IPsecPolicy) error {
	ikev2 := ike.IKEVersion != "v1"
	if ikev2 && ike.Phase1NegotiationMode == "aggressive" {
		return &UnsupportedError{"phase1_negotiation_mode aggressive with ike_version v2", "IKEv2 has no aggressive mode"}
	}
	for _, v := range []struct {
		what string
		life int
	}{{"IKE", ike.LifetimeSeconds}, {"IPsec", esp.LifetimeSeconds}} {
		if v.life > MaxLifetime {
			return &UnsupportedError{fmt.Sprintf("%s lifetime %d", v.what, v.life), fmt.Sprintf("Libreswan caps lifetimes at %d seconds", MaxLifetime)}
		}
	}
	var u *UnsupportedError
	if _, err := IKEAlg(ike.EncryptionAlgorithm, ike.AuthAlgorithm, ike.PFS, ikev2); errors.As(err, &u) {
		return u
	}
	if _, err := Phase2Alg(esp.TransformProtocol, esp.EncryptionAlgorithm, esp.AuthAlgorithm, esp.PFS, ikev2); errors.As(err, &u) {
		return u
	}
	return nil
}

// SupportedConn returns an *UnsupportedError for a connection's own
// values (API values; local_id "" is none) that Render would refuse: the
// driver writes identities unquoted, so only an address, an FQDN or
// user@FQDN of plain characters is carried, and an MTU above 65535 is no
// interface's.
func SupportedConn(localID, peerID string, mtu int) error {
	for _, id := range []struct{ field, value string }{{"local_id", localID}, {"peer_id", peerID}} {
		if id.value == "" && id.field == "local_id" {
			continue
		}
		if !plainID.MatchString(id.value) {
			return &UnsupportedError{fmt.Sprintf("%s %q", id.field, id.value),
				"it takes an IP address, an FQDN or user@FQDN: letters, digits and . _ : @ - only, starting with a letter or digit, at most 253 characters"}
		}
	}
	if mtu > 65535 {
		return &UnsupportedError{fmt.Sprintf("mtu %d", mtu), "an MTU is at most 65535"}
	}
	return nil
}

// Render maps c to the conn section and secrets of Neutrino's side: left
// is the router's gateway (LocalAddress), right the peer. Every API value
// is mapped explicitly; a value Libreswan cannot do, or cannot carry
// safely, is an error naming it.
func Render(c ipsec.Connection) (Conn, error) {
	var errs []error
	fail := func(err error) { errs = append(errs, err) }
	if !name.MatchString(c.ID) {
		fail(&UnsafeValueError{"connection id", c.ID})
	}
	local, err := netip.ParseAddr(c.LocalAddress)
	if err != nil {
		fail(fmt.Errorf("libreswan: local address %q is not an IP address", c.LocalAddress))
	}
	peer := c.PeerAddress
	if a, err := netip.ParseAddr(peer); err == nil {
		peer = a.String()
	} else if !fqdn.MatchString(peer) || len(peer) > 253 {
		fail(&UnsafeValueError{"peer_address", peer})
	}
	localID := local.String()
	if c.LocalID != "" {
		if !plainID.MatchString(c.LocalID) {
			fail(&UnsafeValueError{"local_id", c.LocalID})
		}
		localID = Identity(c.LocalID)
	}
	if !plainID.MatchString(c.PeerID) {
		fail(&UnsafeValueError{"peer_id", c.PeerID})
	}
	peerID := Identity(c.PeerID) // SupportedConn is the API's version of these checks
	if c.PSK == "" {
		fail(errors.New("libreswan: psk is empty"))
	}
	localNets, err := prefixes("local CIDR", c.LocalCIDRs)
	if err != nil {
		fail(err)
	}
	peerNets, err := prefixes("peer CIDR", c.PeerCIDRs)
	if err != nil {
		fail(err)
	}

	var ikev2 bool
	switch c.IKE.IKEVersion {
	case "v2":
		ikev2 = true
	case "v1":
	default:
		fail(fmt.Errorf("libreswan: unknown ike_version %q", c.IKE.IKEVersion))
	}
	aggressive := false
	switch c.IKE.Phase1NegotiationMode {
	case "main":
	case "aggressive":
		aggressive = true
	default:
		fail(fmt.Errorf("libreswan: unknown phase1_negotiation_mode %q", c.IKE.Phase1NegotiationMode))
	}
	if err := Supported(c.IKE, c.IPsec); err != nil {
		fail(err)
	}
	ikeAlg, err := IKEAlg(c.IKE.EncryptionAlgorithm, c.IKE.AuthAlgorithm, c.IKE.PFS, ikev2)
	if err != nil && !isUnsupported(err) {
		fail(fmt.Errorf("libreswan: ike policy: %w", err))
	}
	espAlg, err := Phase2Alg(c.IPsec.TransformProtocol, c.IPsec.EncryptionAlgorithm, c.IPsec.AuthAlgorithm, c.IPsec.PFS, ikev2)
	if err != nil && !isUnsupported(err) {
		fail(fmt.Errorf("libreswan: ipsec policy: %w", err))
	}
	for _, l := range []struct {
		what string
		n    int
	}{{"IKE", c.IKE.LifetimeSeconds}, {"IPsec", c.IPsec.LifetimeSeconds}} {
		if l.n < MinLifetime {
			fail(fmt.Errorf("libreswan: %s lifetime %d is below %d seconds", l.what, l.n, MinLifetime))
		}
	}
	switch c.IPsec.EncapsulationMode {
	case "tunnel", "transport":
	default:
		fail(fmt.Errorf("libreswan: unknown encapsulation_mode %q", c.IPsec.EncapsulationMode))
	}
	var dpdAction string
	switch c.DPD.Action {
	case "hold", "clear", "restart":
		dpdAction = c.DPD.Action
	case "restart-by-peer":
		// As strongSwan's driver: restart when the peer is found dead.
		dpdAction = "restart"
	case "disabled":
	default:
		fail(fmt.Errorf("libreswan: unknown dpd action %q", c.DPD.Action))
	}
	if dpdAction != "" && (c.DPD.Interval <= 0 || c.DPD.Timeout <= 0) {
		fail(fmt.Errorf("libreswan: dpd interval %d and timeout %d must be positive", c.DPD.Interval, c.DPD.Timeout))
	}
	var initiate bool
	switch c.Initiator {
	case "bi-directional":
		initiate = true
	case "response-only":
	default:
		fail(fmt.Errorf("libreswan: unknown initiator %q", c.Initiator))
	}
	if c.MTU < 0 || c.MTU > 65535 { // SupportedConn's too
		fail(fmt.Errorf("libreswan: mtu %d out of range", c.MTU))
	}
	if len(errs) > 0 {
		return Conn{}, errors.Join(errs...)
	}

	var b strings.Builder
	line := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	line("# Written by neutrino: IPsec site connection %s.", c.ID)
	line("conn %s", c.ID)
	line("\tleft=%s", local)
	line("\tleftid=%s", localID)
	subnets(line, "left", localNets)
	line("\tright=%s", peer)
	line("\trightid=%s", peerID)
	subnets(line, "right", peerNets)
	// No updown script: the router routes the peer's networks itself
	// and L3 exempts them from SNAT; the script (several shells per SA
	// event) would only slow every SA change.
	line("\tleftupdown=%%disabled")
	line("\tauthby=secret")
	if ikev2 {
		line("\tikev2=insist")
	} else {
		line("\tikev2=no")
		if aggressive {
			line("\taggressive=yes")
		} else {
			line("\taggressive=no")
		}
	}
	line("\tike=%s", ikeAlg)
	line("\tikelifetime=%ds", c.IKE.LifetimeSeconds)
	line("\tphase2=%s", c.IPsec.TransformProtocol)
	line("\tphase2alg=%s", espAlg)
	line("\tpfs=yes")
	line("\tsalifetime=%ds", c.IPsec.LifetimeSeconds)
	line("\trekeymargin=%ds", min(RekeyMargin, min(c.IKE.LifetimeSeconds, c.IPsec.LifetimeSeconds)/2))
	line("\ttype=%s", c.IPsec.EncapsulationMode)
	if dpdAction != "" {
		line("\tdpddelay=%ds", c.DPD.Interval)
		line("\tdpdtimeout=%ds", c.DPD.Timeout)
		line("\tdpdaction=%s", dpdAction)
	}
	if c.MTU > 0 {
		line("\tmtu=%d", c.MTU)
	}
	if initiate {
		line("\tauto=start")
	} else {
		line("\tauto=add")
	}
	secrets := fmt.Sprintf("%s %s : PSK 0s%s\n", localID, peerID, base64.StdEncoding.EncodeToString([]byte(c.PSK)))
	return Conn{Name: c.ID, Conf: b.String(), Secrets: secrets, Initiate: initiate}, nil
}

func isUnsupported(err error) bool {
	var u *UnsupportedError
	return errors.As(err, &u)
}

func prefixes(what string, in []string) ([]netip.Prefix, error) {
	if len(in) == 0 {
		return nil, fmt.Errorf("libreswan: no %s", what)
	}
	out := make([]netip.Prefix, 0, len(in))
	for _, s := range in {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, &UnsafeValueError{what, s}
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// subnets writes leftsubnet= for one network, leftsubnets={...} for more
// (pluto then runs one IPsec SA per pair of networks).
func subnets(line func(string, ...any), side string, ps []netip.Prefix) {
	if len(ps) == 1 {
		line("\t%ssubnet=%s", side, ps[0])
		return
	}
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	line("\t%ssubnets={%s}", side, strings.Join(s, " "))
}

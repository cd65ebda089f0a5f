package peerconfig

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
)

// Cisco IOS / IOS XE keywords: crypto ikev2 proposal (aes-cbc-<bits>,
// aes-gcm-128/256, 3des; integrity or, with GCM, prf sha1/256/384/512;
// groups 1, 2, 5, 14-16, 19-21, 24), crypto isakmp policy for IKEv1 and
// crypto ipsec transform-set (esp-aes <bits>, esp-gcm 128/256, esp-3des,
// esp-sha*-hmac, ah-sha*-hmac). The configuration is a best effort for
// IPv4 crypto maps.

const ciscoFormat = "cisco-ios"

// ciscoSecret is a PSK IOS takes unquoted at the end of a line:
// printable ASCII without spaces, quotes, backslashes or "?" (help).
var ciscoSecret = regexp.MustCompile(`^[!#->@-\[\]-~]{1,128}$`)

// ciscoGroups are the DH groups IOS offers, for IKE and PFS.
var ciscoGroups = map[int]bool{2: true, 5: true, 14: true, 15: true, 16: true, 19: true, 20: true, 21: true, 24: true}

func ciscoGroup(n int) error {
	if !ciscoGroups[n] {
		return &UnsupportedError{ciscoFormat, "pfs group" + strconv.Itoa(n), "IOS offers DH groups 2, 5, 14, 15, 16, 19, 20, 21 and 24 only"}
	}
	return nil
}

// ciscoHash checks an API auth_algorithm against IOS's SHA family.
func ciscoHash(a, where string) error {
	switch a {
	case "sha1", "sha256", "sha384", "sha512":
		return nil
	}
	return &UnsupportedError{ciscoFormat, where + " auth_algorithm " + a, "IOS offers SHA-1 and SHA-2 only"}
}

// ciscoIdentity checks an identity IOS can send or match: an IPv4
// address or an FQDN (Neutrino treats every other id as an FQDN id).
func ciscoIdentity(field, id string) error {
	if !plainID.MatchString(id) {
		return &UnsafeValueError{field, id}
	}
	if a, err := netip.ParseAddr(id); err == nil {
		if !a.Is4() {
			return &UnsupportedError{ciscoFormat, "IPv6 identity " + id, "this export writes IPv4 crypto maps only"}
		}
		return nil
	}
	if !fqdn.MatchString(id) {
		return &UnsupportedError{ciscoFormat, field + " " + id, "IOS identities here are IPv4 addresses or FQDNs"}
	}
	return nil
}

// wildcard writes a prefix as IOS's "address wildcard".
func wildcard(p netip.Prefix) string {
	a := p.Addr().As4()
	var m [4]byte
	for i := range m {
		bits := min(8, max(0, p.Bits()-8*i))
		m[i] = ^byte(0xff << (8 - bits))
	}
	return fmt.Sprintf("%s %d.%d.%d.%d", netip.AddrFrom4(a), m[0], m[1], m[2], m[3])
}

// ciscoIOS renders IOS configuration: IKEv2 proposal, policy, keyring and
// profile (or an IKEv1 isakmp policy, keyring and profile), a transform
// set, an access list of the selectors and a crypto map entry.
func ciscoIOS(s site) (string, error) {
	p, err := parsePolicy(s)
	if err != nil {
		return "", err
	}
	if err := ciscoIdentity("peer_id", s.localID); err != nil {
		return "", err
	}
	if err := ciscoIdentity("local_id", s.remoteID); err != nil {
		return "", err
	}
	if !ciscoSecret.MatchString(s.psk) {
		return "", &UnsafeValueError{"psk", "***"}
	}
	if !s.remoteIP.Is4() || (s.localIP.IsValid() && !s.localIP.Is4()) {
		return "", &UnsupportedError{ciscoFormat, "IPv6 gateways", "this export writes IPv4 crypto maps only"}
	}
	for _, ts := range append(append([]netip.Prefix{}, s.localTS...), s.remoteTS...) {
		if !ts.Addr().Is4() {
			return "", &UnsupportedError{ciscoFormat, "IPv6 network " + ts.String(), "this export writes IPv4 crypto maps only"}
		}
	}
	if s.aggressive {
		return "", &UnsupportedError{ciscoFormat, "IKEv1 aggressive mode", "a crypto map initiates IKEv1 in main mode"}
	}
	if !s.ikev2 && !isIP(s.localID) {
		return "", &UnsupportedError{ciscoFormat, "IKEv1 identity " + s.localID, "IOS sends its address or its own hostname in IKEv1"}
	}
	if err := ciscoGroup(p.ikeGroup); err != nil {
		return "", err
	}
	if err := ciscoGroup(p.espGroup); err != nil {
		return "", err
	}
	if err := ciscoHash(p.ikeAuth, "IKE"); err != nil {
		return "", err
	}
	if p.ikeLife < 120 || p.ikeLife > 86400 {
		return "", &UnsupportedError{ciscoFormat, "IKE lifetime " + strconv.Itoa(p.ikeLife) + "s", "IOS accepts 120 to 86400 seconds"}
	}
	if p.espLife < 120 || p.espLife > 2592000 {
		return "", &UnsupportedError{ciscoFormat, "IPsec lifetime " + strconv.Itoa(p.espLife) + "s", "IOS accepts 120 to 2592000 seconds"}
	}
	if p.dpd != "" && (p.dpdInterval < 10 || p.dpdInterval > 3600) {
		return "", &UnsupportedError{ciscoFormat, "dpd interval " + strconv.Itoa(p.dpdInterval) + "s", "IOS accepts 10 to 3600 seconds"}
	}
	// IOS declares a peer dead after five unanswered retries.
	retry := min(60, max(2, (p.dpdTimeout-p.dpdInterval)/5))

	// The transform set.
	var transform string
	hmac := map[string]string{"sha1": "sha", "sha256": "sha256", "sha384": "sha384", "sha512": "sha512"}
	if p.protocol != "esp" {
		if err := ciscoHash(p.espAuth, "IPsec"); err != nil {
			return "", err
		}
		transform = "ah-" + hmac[p.espAuth] + "-hmac"
	}
	if p.protocol != "ah" {
		c := p.espCipher
		var enc string
		switch {
		case c.mode == "3des":
			enc = "esp-3des"
		case c.mode == "cbc":
			enc = "esp-aes " + strconv.Itoa(c.bits)
		case c.mode == "gcm" && c.icv == 16 && c.bits != 192:
			enc = "esp-gcm " + strconv.Itoa(c.bits)
		default:
			return "", &UnsupportedError{ciscoFormat, "IPsec encryption " + c.api, "IOS transform sets offer 3DES, AES-CBC and AES-GCM 128/256 with a 16-byte ICV"}
		}
		if transform != "" {
			transform += " "
		}
		transform += enc
		if !c.aead() {
			if err := ciscoHash(p.espAuth, "IPsec"); err != nil {
				return "", err
			}
			transform += " esp-" + hmac[p.espAuth] + "-hmac"
		}
	}

	name := "NEUTRINO-" + s.id
	var w writer
	w.header("!", "Cisco IOS / IOS XE", s)
	w.line("! Apply the crypto map to the interface facing Neutrino (%s):", s.remoteIP)
	w.line("!   interface <outside>")
	w.line("!    crypto map NEUTRINO")
	w.line("! The tunnel comes up on the first packet between the networks.")
	if s.ikev2 {
		c := p.ikeCipher
		var enc string
		switch {
		case c.mode == "3des":
			enc = "3des"
		case c.mode == "cbc":
			enc = "aes-cbc-" + strconv.Itoa(c.bits)
		case c.mode == "gcm" && c.icv == 16 && c.bits != 192:
			enc = "aes-gcm-" + strconv.Itoa(c.bits)
		default:
			return "", &UnsupportedError{ciscoFormat, "IKE encryption " + c.api, "IOS IKEv2 offers 3DES, AES-CBC and AES-GCM 128/256 with a 16-byte ICV"}
		}
		w.line("crypto ikev2 proposal %s", name)
		w.line(" encryption %s", enc)
		if c.aead() {
			w.line(" prf %s", p.ikeAuth)
		} else {
			w.line(" integrity %s", p.ikeAuth)
		}
		w.line(" group %d", p.ikeGroup)
		w.line("crypto ikev2 policy %s", name)
		w.line(" proposal %s", name)
		w.line("crypto ikev2 keyring %s", name)
		w.line(" peer neutrino")
		w.line("  address %s", s.remoteIP)
		w.line("  pre-shared-key %s", s.psk)
		w.line("crypto ikev2 profile %s", name)
		if isIP(s.remoteID) {
			w.line(" match identity remote address %s 255.255.255.255", s.remoteID)
		} else {
			w.line(" match identity remote fqdn %s", s.remoteID)
		}
		if isIP(s.localID) {
			w.line(" identity local address %s", s.localID)
		} else {
			w.line(" identity local fqdn %s", s.localID)
		}
		w.line(" authentication remote pre-share")
		w.line(" authentication local pre-share")
		w.line(" keyring local %s", name)
		w.line(" lifetime %d", p.ikeLife)
		if p.dpd != "" {
			w.line(" dpd %d %d periodic", p.dpdInterval, retry)
		}
	} else {
		c := p.ikeCipher
		var enc string
		switch c.mode {
		case "3des":
			enc = "3des"
		case "cbc":
			enc = "aes " + strconv.Itoa(c.bits)
		default:
			return "", &UnsupportedError{ciscoFormat, "IKE encryption " + c.api, "IOS IKEv1 offers 3DES and AES-CBC only"}
		}
		w.line("! Policy 10 is global: renumber it if this router already uses it.")
		w.line("crypto isakmp policy 10")
		w.line(" encryption %s", enc)
		w.line(" hash %s", hmac[p.ikeAuth])
		w.line(" authentication pre-share")
		w.line(" group %d", p.ikeGroup)
		w.line(" lifetime %d", p.ikeLife)
		w.line("crypto keyring %s", name)
		w.line(" pre-shared-key address %s key %s", s.remoteIP, s.psk)
		w.line("crypto isakmp profile %s", name)
		w.line(" keyring %s", name)
		w.line(" self-identity address")
		if isIP(s.remoteID) {
			w.line(" match identity address %s 255.255.255.255", s.remoteID)
		} else {
			w.line(" match identity host %s", s.remoteID)
		}
		if p.dpd != "" {
			w.line(" keepalive %d retry %d", p.dpdInterval, retry)
		}
	}
	w.line("crypto ipsec transform-set %s %s", name, transform)
	w.line(" mode %s", p.mode)
	w.line("ip access-list extended %s", name)
	for _, l := range s.localTS {
		for _, r := range s.remoteTS {
			w.line(" permit ip %s %s", wildcard(l), wildcard(r))
		}
	}
	w.line("crypto map NEUTRINO 10 ipsec-isakmp")
	w.line(" set peer %s", s.remoteIP)
	w.line(" set transform-set %s", name)
	w.line(" set pfs group%d", p.espGroup)
	w.line(" set security-association lifetime seconds %d", p.espLife)
	if s.ikev2 {
		w.line(" set ikev2-profile %s", name)
	} else {
		w.line(" set isakmp-profile %s", name)
	}
	w.line(" match address %s", name)
	return w.String(), nil
}

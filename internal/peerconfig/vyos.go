package peerconfig

import (
	"regexp"
	"strconv"

	"github.com/neutrino-net/neutrino/internal/ipsec/swconf"
)

// VyOS 1.4 (sagitta) keywords, from its vpn ipsec interface definitions:
// encryption and hash are strongSwan's keywords (AEAD ICVs in bits), DH
// groups are numbers, ESP PFS is dh-group<N>.

const vyFormat = "vyos"

// vySecret is a PSK VyOS carries in a single-quoted CLI value that its
// swanctl template then writes in double quotes: printable ASCII without
// spaces, quotes or backslashes.
var vySecret = regexp.MustCompile(`^[!#-&(-\[\]-~]{1,256}$`)

// vyCipher returns the VyOS encryption keyword of c.
func vyCipher(c cipher) string {
	switch c.mode {
	case "3des":
		return "3des"
	case "cbc":
		return "aes" + strconv.Itoa(c.bits)
	case "ctr":
		return "aes" + strconv.Itoa(c.bits) + "ctr"
	}
	return "aes" + strconv.Itoa(c.bits) + c.mode + strconv.Itoa(c.icv*8)
}

// vyHash returns the VyOS hash keyword of an API auth_algorithm.
func vyHash(a string) string {
	switch a {
	case "aes-xcbc":
		return "aesxcbc"
	case "aes-cmac":
		return "aescmac"
	}
	return a // sha1, sha256, sha384, sha512
}

// vyos renders VyOS 1.4 configuration-mode commands: a PSK, an IKE and
// an ESP group and a site-to-site peer with one tunnel.
func vyos(s site) (string, error) {
	p, err := parsePolicy(s)
	if err != nil {
		return "", err
	}
	for _, v := range []struct{ field, value string }{{"peer_id", s.localID}, {"local_id", s.remoteID}} {
		if !plainID.MatchString(v.value) {
			return "", &UnsafeValueError{v.field, v.value}
		}
	}
	if !vySecret.MatchString(s.psk) {
		return "", &UnsafeValueError{"psk", "***"}
	}
	if p.protocol != "esp" {
		return "", &UnsupportedError{vyFormat, "transform_protocol " + p.protocol, "VyOS site-to-site tunnels use ESP only"}
	}
	for _, l := range []struct {
		what string
		n    int
	}{{"IKE lifetime", p.ikeLife}, {"IPsec lifetime", p.espLife}} {
		if l.n < 30 || l.n > 86400 {
			return "", &UnsupportedError{vyFormat, l.what + " " + strconv.Itoa(l.n) + "s", "VyOS accepts 30 to 86400 seconds"}
		}
	}
	if p.dpd != "" && (p.dpdInterval < 2 || p.dpdInterval > 86400 || p.dpdTimeout < 2 || p.dpdTimeout > 86400) {
		return "", &UnsupportedError{vyFormat, "dpd interval " + strconv.Itoa(p.dpdInterval) + "s and timeout " +
			strconv.Itoa(p.dpdTimeout) + "s", "VyOS accepts 2 to 86400 seconds"}
	}

	var w writer
	w.header("#", "VyOS 1.4", s)
	w.line("# Paste in configuration mode (configure), then commit and save.")
	psk := "set vpn ipsec authentication psk " + s.name
	w.line("%s id '%s'", psk, swconf.Identity(s.localID))
	w.line("%s id '%s'", psk, swconf.Identity(s.remoteID))
	w.line("%s secret '%s'", psk, s.psk)
	ike := "set vpn ipsec ike-group " + s.name
	if s.ikev2 {
		w.line("%s key-exchange 'ikev2'", ike)
	} else {
		w.line("%s key-exchange 'ikev1'", ike)
		if s.aggressive {
			w.line("%s mode 'aggressive'", ike)
		} else {
			w.line("%s mode 'main'", ike)
		}
	}
	w.line("%s lifetime '%d'", ike, p.ikeLife)
	w.line("%s proposal 1 dh-group '%d'", ike, p.ikeGroup)
	w.line("%s proposal 1 encryption '%s'", ike, vyCipher(p.ikeCipher))
	w.line("%s proposal 1 hash '%s'", ike, vyHash(p.ikeAuth))
	if p.dpd != "" {
		w.line("%s dead-peer-detection action '%s'", ike, p.dpd)
		w.line("%s dead-peer-detection interval '%d'", ike, p.dpdInterval)
		w.line("%s dead-peer-detection timeout '%d'", ike, p.dpdTimeout)
	}
	esp := "set vpn ipsec esp-group " + s.name
	w.line("%s lifetime '%d'", esp, p.espLife)
	w.line("%s mode '%s'", esp, p.mode)
	w.line("%s pfs 'dh-group%d'", esp, p.espGroup)
	w.line("%s proposal 1 encryption '%s'", esp, vyCipher(p.espCipher))
	w.line("%s proposal 1 hash '%s'", esp, vyHash(p.espAuth))
	peer := "set vpn ipsec site-to-site peer " + s.name
	w.line("%s authentication mode 'pre-shared-secret'", peer)
	w.line("%s authentication local-id '%s'", peer, swconf.Identity(s.localID))
	w.line("%s authentication remote-id '%s'", peer, swconf.Identity(s.remoteID))
	// Neutrino may be the responder only: this side always initiates.
	w.line("%s connection-type 'initiate'", peer)
	w.line("%s ike-group '%s'", peer, s.name)
	w.line("%s default-esp-group '%s'", peer, s.name)
	if s.localIP.IsValid() {
		w.line("%s local-address '%s'", peer, s.localIP)
	} else {
		w.line("%s local-address 'any'", peer)
	}
	w.line("%s remote-address '%s'", peer, s.remoteIP)
	for _, ts := range s.localTS {
		w.line("%s tunnel 1 local prefix '%s'", peer, ts)
	}
	for _, ts := range s.remoteTS {
		w.line("%s tunnel 1 remote prefix '%s'", peer, ts)
	}
	return w.String(), nil
}

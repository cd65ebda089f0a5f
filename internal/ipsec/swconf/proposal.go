// Package swconf maps an ipsec.Connection to its strongSwan (charon)
// configuration: the bodies of VICI's load-conn and load-shared messages,
// as govici-marshalable structs (package strongswan sends them), which
// also render as swanctl.conf (package peerconfig). It is pure: no
// daemon, no socket, no kernel.
//
// The algorithm dialect follows section 9.2 of the networking contract
// (the reference neutron-vpnaas strongSwan driver); the keys follow
// swanctl.conf(5) of strongSwan 5.9.8 (Debian 12) and section 9.5.
package swconf

import (
	"fmt"
	"strings"
)

// cipher is the strongSwan keyword of an API encryption_algorithm; aead
// marks the combined-mode (CCM/GCM) ciphers.
type cipher struct {
	keyword string
	aead    bool
}

// encryption maps every API encryption_algorithm to its cipher.
var encryption = func() map[string]cipher {
	m := map[string]cipher{"3des": {"3des", false}}
	for _, size := range []string{"128", "192", "256"} {
		m["aes-"+size] = cipher{"aes" + size, false}
		m["aes-"+size+"-ctr"] = cipher{"aes" + size + "ctr", false}
		for _, mode := range []string{"ccm", "gcm"} {
			for _, icv := range []string{"8", "12", "16"} {
				m["aes-"+size+"-"+mode+"-"+icv] = cipher{"aes" + size + mode + icv, true}
			}
		}
	}
	return m
}()

// integrity maps an API auth_algorithm to its strongSwan keyword. In an
// IKE proposal with an AEAD cipher charon uses it as the PRF.
var integrity = map[string]string{
	"sha1":     "sha1",
	"sha256":   "sha256",
	"sha384":   "sha384",
	"sha512":   "sha512",
	"aes-xcbc": "aesxcbc",
	"aes-cmac": "aescmac",
}

// dhGroup maps an API pfs value to its strongSwan key exchange keyword.
var dhGroup = map[string]string{
	"group2":  "modp1024",
	"group5":  "modp1536",
	"group14": "modp2048",
	"group15": "modp3072",
	"group16": "modp4096",
	"group17": "modp6144",
	"group18": "modp8192",
	"group19": "ecp256",
	"group20": "ecp384",
	"group21": "ecp521",
	"group22": "modp1024s160",
	"group23": "modp2048s224",
	"group24": "modp2048s256",
	"group25": "ecp192",
	"group26": "ecp224",
	"group27": "ecp224bp",
	"group28": "ecp256bp",
	"group29": "ecp384bp",
	"group30": "ecp512bp",
	"group31": "curve25519",
}

// Proposal returns the strongSwan proposal for an IKE (forESP false) or
// ESP (forESP true) policy: "<enc>-<auth>-<dh>", except that an ESP
// proposal with an AEAD cipher leaves the integrity part out
// ("aes256gcm16-modp2048"). In an IKE proposal the auth value is kept and
// acts as the PRF. Every value not in the section 4 enumerations is an
// error naming it.
func Proposal(enc, auth, pfs string, forESP bool) (string, error) {
	e, ok := encryption[enc]
	if !ok {
		return "", fmt.Errorf("strongswan: unknown encryption_algorithm %q", enc)
	}
	a, ok := integrity[auth]
	if !ok {
		return "", fmt.Errorf("strongswan: unknown auth_algorithm %q", auth)
	}
	d, ok := dhGroup[pfs]
	if !ok {
		return "", fmt.Errorf("strongswan: unknown pfs %q", pfs)
	}
	if forESP && e.aead {
		return strings.Join([]string{e.keyword, d}, "-"), nil
	}
	return strings.Join([]string{e.keyword, a, d}, "-"), nil
}

// AHProposal returns the strongSwan AH proposal "<auth>-<dh>".
func AHProposal(auth, pfs string) (string, error) {
	a, ok := integrity[auth]
	if !ok {
		return "", fmt.Errorf("strongswan: unknown auth_algorithm %q", auth)
	}
	d, ok := dhGroup[pfs]
	if !ok {
		return "", fmt.Errorf("strongswan: unknown pfs %q", pfs)
	}
	return a + "-" + d, nil
}

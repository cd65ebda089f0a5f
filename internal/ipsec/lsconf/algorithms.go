package lsconf

import (
	"fmt"
	"strconv"
	"strings"
)

// Libreswan 4.x (Debian 12: 4.10) keywords, from ipsec.conf(5) and
// "ipsec algparse": AES-CBC is aes<bits>, AES-CTR aes_ctr<bits>, the AEAD
// ciphers aes_{gcm,ccm}_{a,b,c}<bits> for 8, 12 and 16 byte ICVs.

// UnsupportedError is an API value Libreswan cannot do: What names the
// value, Why says why.
type UnsupportedError struct {
	What, Why string
}

func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("libreswan cannot do %s: %s", e.What, e.Why)
}

// Cipher is an API encryption_algorithm taken apart: "3des", or AES in
// mode cbc, ctr, ccm or gcm with a key size in bits and, for the AEAD
// modes, an ICV length in bytes (8, 12 or 16).
type Cipher struct {
	API  string
	Mode string // 3des, cbc, ctr, ccm, gcm
	Bits int    // 128, 192, 256 (168 for 3des)
	ICV  int    // ccm and gcm only
}

// AEAD reports whether the cipher authenticates too (CCM, GCM).
func (c Cipher) AEAD() bool { return c.Mode == "ccm" || c.Mode == "gcm" }

// ParseCipher parses an API encryption_algorithm: 3des, aes-<bits>,
// aes-<bits>-ctr, aes-<bits>-{ccm,gcm}-{8,12,16}.
func ParseCipher(api string) (Cipher, error) {
	if api == "3des" {
		return Cipher{API: api, Mode: "3des", Bits: 168}, nil
	}
	parts := strings.Split(api, "-")
	bad := fmt.Errorf("unknown encryption_algorithm %q", api)
	if len(parts) < 2 || len(parts) > 4 || parts[0] != "aes" {
		return Cipher{}, bad
	}
	c := Cipher{API: api, Mode: "cbc"}
	switch parts[1] {
	case "128", "192", "256":
		c.Bits, _ = strconv.Atoi(parts[1])
	default:
		return Cipher{}, bad
	}
	switch {
	case len(parts) == 2:
	case len(parts) == 3 && parts[2] == "ctr":
		c.Mode = "ctr"
	case len(parts) == 4 && (parts[2] == "ccm" || parts[2] == "gcm"):
		c.Mode = parts[2]
		switch parts[3] {
		case "8", "12", "16":
			c.ICV, _ = strconv.Atoi(parts[3])
		default:
			return Cipher{}, bad
		}
	default:
		return Cipher{}, bad
	}
	return c, nil
}

// icvLetter names the AEAD ICV lengths.
var icvLetter = map[int]string{8: "a", 12: "b", 16: "c"}

// CipherName returns the Libreswan keyword of c for IKE (ike true) or
// ESP.
func CipherName(c Cipher, ike, ikev2 bool) (string, error) {
	switch {
	case c.Mode == "3des":
		return "3des", nil
	case c.Mode == "cbc":
		return "aes" + strconv.Itoa(c.Bits), nil
	case ike && !ikev2:
		return "", &UnsupportedError{"IKE encryption_algorithm " + c.API + " with IKEv1", "Libreswan's IKEv1 offers only CBC ciphers for IKE"}
	case ike && c.Mode == "ccm":
		return "", &UnsupportedError{"IKE encryption_algorithm " + c.API, "Libreswan offers CCM for ESP only"}
	case c.Mode == "ctr":
		return "aes_ctr" + strconv.Itoa(c.Bits), nil
	}
	return "aes_" + c.Mode + "_" + icvLetter[c.ICV] + strconv.Itoa(c.Bits), nil
}

// IntegrityName returns the Libreswan keyword of an API auth_algorithm.
func IntegrityName(a string, ike, ikev2 bool) (string, error) {
	switch a {
	case "sha1":
		return "sha1", nil
	case "sha256", "sha384", "sha512":
		return "sha2_" + a[3:], nil
	case "aes-xcbc":
		if ike && !ikev2 {
			return "", &UnsupportedError{"IKE auth_algorithm aes-xcbc with IKEv1", "Libreswan offers AES-XCBC in IKEv2 only"}
		}
		return "aes_xcbc", nil
	case "aes-cmac":
		if ike {
			return "", &UnsupportedError{"IKE auth_algorithm aes-cmac", "Libreswan offers AES-CMAC for ESP/AH only"}
		}
		return "aes_cmac", nil
	}
	return "", fmt.Errorf("unknown auth_algorithm %q", a)
}

// ParseGroup parses an API pfs value "group<N>" into N.
func ParseGroup(api string) (int, error) {
	n, err := strconv.Atoi(strings.TrimPrefix(api, "group"))
	if !strings.HasPrefix(api, "group") || err != nil || strconv.Itoa(n) != strings.TrimPrefix(api, "group") ||
		!(n == 2 || n == 5 || (n >= 14 && n <= 31)) {
		return 0, fmt.Errorf("unknown pfs %q", api)
	}
	return n, nil
}

// GroupName returns the Libreswan keyword of a DH group; what names the
// policy for an error ("IKE pfs", "IPsec pfs").
func GroupName(n int, what string) (string, error) {
	switch n {
	case 5:
		return "modp1536", nil
	case 14:
		return "modp2048", nil
	case 15:
		return "modp3072", nil
	case 16:
		return "modp4096", nil
	case 17:
		return "modp6144", nil
	case 18:
		return "modp8192", nil
	case 19, 20, 21, 31:
		return "dh" + strconv.Itoa(n), nil
	case 2:
		return "", &UnsupportedError{what + " group2", "Libreswan 4 is built without MODP1024 (USE_DH2) by default"}
	}
	return "", &UnsupportedError{what + " group" + strconv.Itoa(n), "Libreswan 4 does not implement this DH group"}
}

// IKEAlg is the ike= value of an IKE policy: <cipher>-<integrity or
// PRF>;<group>.
func IKEAlg(enc, auth, pfs string, ikev2 bool) (string, error) {
	c, err := ParseCipher(enc)
	if err != nil {
		return "", err
	}
	e, err := CipherName(c, true, ikev2)
	if err != nil {
		return "", err
	}
	a, err := IntegrityName(auth, true, ikev2)
	if err != nil {
		return "", err
	}
	n, err := ParseGroup(pfs)
	if err != nil {
		return "", err
	}
	g, err := GroupName(n, "IKE pfs")
	if err != nil {
		return "", err
	}
	return e + "-" + a + ";" + g, nil
}

// Phase2Alg is the phase2alg= value of an IPsec policy with protocol esp
// or ah (Libreswan negotiates one of them, never AH and ESP together).
func Phase2Alg(protocol, enc, auth, pfs string, ikev2 bool) (string, error) {
	n, err := ParseGroup(pfs)
	if err != nil {
		return "", err
	}
	g, err := GroupName(n, "IPsec pfs")
	if err != nil {
		return "", err
	}
	if !ikev2 && n >= 19 {
		// pluto 4.10: "ESP DH algorithm 'dh19' is not supported by IKEv1".
		return "", &UnsupportedError{"IPsec pfs group" + strconv.Itoa(n) + " with IKEv1",
			"Libreswan's IKEv1 offers the elliptic-curve groups for IKE only, not for PFS in Quick Mode"}
	}
	a, err := IntegrityName(auth, false, ikev2)
	if err != nil {
		return "", err
	}
	switch protocol {
	case "esp":
		c, err := ParseCipher(enc)
		if err != nil {
			return "", err
		}
		e, err := CipherName(c, false, ikev2)
		if err != nil {
			return "", err
		}
		if c.AEAD() {
			return e + "-null;" + g, nil
		}
		return e + "-" + a + ";" + g, nil
	case "ah":
		return a + ";" + g, nil
	case "ah-esp":
		return "", &UnsupportedError{"transform_protocol ah-esp", "Libreswan negotiates either ESP or AH, not both"}
	}
	return "", fmt.Errorf("unknown transform_protocol %q", protocol)
}

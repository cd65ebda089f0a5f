package peerconfig

import (
	"encoding/base64"
	"fmt"
	"net/netip"
	"strconv"

	"github.com/neutrino-net/neutrino/internal/ipsec/swconf"
)

// Libreswan 4.x (Debian 12) keywords, from ipsec.conf(5) and "ipsec
// algparse": AES-CBC is aes<bits>, AES-CTR aes_ctr<bits>, the AEAD
// ciphers aes_{gcm,ccm}_{a,b,c}<bits> for 8, 12 and 16 byte ICVs.

const lsFormat = "libreswan"

// lsICV names the AEAD ICV lengths.
var lsICV = map[int]string{8: "a", 12: "b", 16: "c"}

// lsCipher returns the Libreswan keyword of c for IKE (ike true) or ESP.
func lsCipher(c cipher, ike, ikev2 bool) (string, error) {
	switch {
	case c.mode == "3des":
		return "3des", nil
	case c.mode == "cbc":
		return "aes" + strconv.Itoa(c.bits), nil
	case ike && !ikev2 && c.mode != "cbc":
		return "", &UnsupportedError{lsFormat, "IKE encryption " + c.api, "Libreswan's IKEv1 offers only CBC ciphers for IKE"}
	case ike && c.mode == "ccm":
		return "", &UnsupportedError{lsFormat, "IKE encryption " + c.api, "Libreswan offers CCM for ESP only"}
	case c.mode == "ctr":
		return "aes_ctr" + strconv.Itoa(c.bits), nil
	}
	return "aes_" + c.mode + "_" + lsICV[c.icv] + strconv.Itoa(c.bits), nil
}

// lsIntegrity returns the Libreswan keyword of an API auth_algorithm.
func lsIntegrity(a string, ike, ikev2 bool) (string, error) {
	switch a {
	case "sha1":
		return "sha1", nil
	case "sha256", "sha384", "sha512":
		return "sha2_" + a[3:], nil
	case "aes-xcbc":
		if ike && !ikev2 {
			return "", &UnsupportedError{lsFormat, "IKE auth_algorithm aes-xcbc", "Libreswan offers AES-XCBC in IKEv2 only"}
		}
		return "aes_xcbc", nil
	case "aes-cmac":
		if ike {
			return "", &UnsupportedError{lsFormat, "IKE auth_algorithm aes-cmac", "Libreswan offers AES-CMAC for ESP/AH only"}
		}
		return "aes_cmac", nil
	}
	return "", fmt.Errorf("peerconfig: unknown auth_algorithm %q", a)
}

// lsGroup returns the Libreswan keyword of a DH group.
func lsGroup(n int) (string, error) {
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
		return "", &UnsupportedError{lsFormat, "pfs group2", "Libreswan 4 is built without MODP1024 (USE_DH2) by default"}
	}
	return "", &UnsupportedError{lsFormat, "pfs group" + strconv.Itoa(n), "Libreswan 4 does not implement this DH group"}
}

// libreswan renders an ipsec.conf conn section and its ipsec.secrets
// line for Libreswan 4: left is the remote device, right is Neutrino. The
// PSK is written as 0s<base64>, which carries any bytes.
func libreswan(s site) (string, error) {
	p, err := parsePolicy(s)
	if err != nil {
		return "", err
	}
	for _, v := range []struct{ field, value string }{{"peer_id", s.localID}, {"local_id", s.remoteID}} {
		if !plainID.MatchString(v.value) {
			return "", &UnsafeValueError{v.field, v.value}
		}
	}
	ikeEnc, err := lsCipher(p.ikeCipher, true, s.ikev2)
	if err != nil {
		return "", err
	}
	ikeAuth, err := lsIntegrity(p.ikeAuth, true, s.ikev2)
	if err != nil {
		return "", err
	}
	ikeGroup, err := lsGroup(p.ikeGroup)
	if err != nil {
		return "", err
	}
	espGroup, err := lsGroup(p.espGroup)
	if err != nil {
		return "", err
	}
	if !s.ikev2 && p.espGroup >= 19 {
		// pluto 4.10: "ESP DH algorithm 'dh19' is not supported by IKEv1".
		return "", &UnsupportedError{lsFormat, "IPsec pfs group" + strconv.Itoa(p.espGroup) + " with IKEv1",
			"Libreswan's IKEv1 offers the elliptic-curve groups for IKE only, not for PFS in Quick Mode"}
	}
	espAuth, err := lsIntegrity(p.espAuth, false, s.ikev2)
	if err != nil {
		return "", err
	}
	var phase2alg string
	switch p.protocol {
	case "esp":
		enc, err := lsCipher(p.espCipher, false, s.ikev2)
		if err != nil {
			return "", err
		}
		if p.espCipher.aead() {
			phase2alg = enc + "-null;" + espGroup
		} else {
			phase2alg = enc + "-" + espAuth + ";" + espGroup
		}
	case "ah":
		phase2alg = espAuth + ";" + espGroup
	default:
		return "", &UnsupportedError{lsFormat, "transform_protocol " + p.protocol, "Libreswan negotiates either ESP or AH, not both"}
	}

	var w writer
	w.header("#", "Libreswan 4 (ipsec.conf and ipsec.secrets)", s)
	w.line("# Left is this device, right is Neutrino. Put the first part in")
	w.line("# /etc/ipsec.d/%s.conf and the second in /etc/ipsec.d/%s.secrets", s.name, s.name)
	w.line("# (mode 0600), then run: ipsec auto --add %s && ipsec auto --up %s", s.name, s.name)
	if !s.ikev2 {
		w.line("# IKEv1: Libreswan 4.10 drops IKEv1 unless ipsec.conf's config setup")
		w.line("# says ikev1-policy=accept.")
	}
	w.line("")
	w.line("# /etc/ipsec.d/%s.conf", s.name)
	w.line("conn %s", s.name)
	w.line("\tleft=%s", s.localAddr)
	w.line("\tleftid=%s", swconf.Identity(s.localID))
	subnets(&w, "left", s.localTS)
	w.line("\tright=%s", s.remoteIP)
	w.line("\trightid=%s", swconf.Identity(s.remoteID))
	subnets(&w, "right", s.remoteTS)
	w.line("\tauthby=secret")
	if s.ikev2 {
		w.line("\tikev2=insist")
	} else {
		w.line("\tikev2=no")
	}
	if s.aggressive {
		w.line("\taggressive=yes")
	}
	w.line("\tike=%s-%s;%s", ikeEnc, ikeAuth, ikeGroup)
	w.line("\tikelifetime=%ds", p.ikeLife)
	w.line("\tphase2=%s", p.protocol)
	w.line("\tphase2alg=%s", phase2alg)
	w.line("\tpfs=yes")
	w.line("\tsalifetime=%ds", p.espLife)
	w.line("\ttype=%s", p.mode)
	if p.dpd != "" {
		w.line("\tdpddelay=%ds", p.dpdInterval)
		w.line("\tdpdtimeout=%ds", p.dpdTimeout)
		w.line("\tdpdaction=%s", p.dpd)
	}
	// Neutrino may be the responder only: this side always initiates.
	w.line("\tauto=start")
	w.line("")
	w.line("# /etc/ipsec.d/%s.secrets", s.name)
	w.line("%s %s : PSK 0s%s", swconf.Identity(s.localID), swconf.Identity(s.remoteID),
		base64.StdEncoding.EncodeToString([]byte(s.psk)))
	return w.String(), nil
}

// subnets writes leftsubnet= for one network, leftsubnets={...} for more.
func subnets(w *writer, side string, ps []netip.Prefix) {
	if len(ps) == 1 {
		w.line("\t%ssubnet=%s", side, ps[0])
		return
	}
	w.line("\t%ssubnets={%s}", side, joinPrefixes(ps, " "))
}

package peerconfig

import (
	"fmt"
	"strconv"
	"strings"
)

// MikroTik RouterOS 7 keywords, from its /ip ipsec manual: profiles take
// 3des and aes-<bits> (CBC) with md5, sha1, sha256 or sha512; proposals
// add CTR and GCM (16-byte ICV) ciphers; DH groups are modp<bits> and
// ecp<bits>. RouterOS has no AH.

const rosFormat = "routeros"

// rosGroup returns the RouterOS name of a DH group.
func rosGroup(n int) (string, error) {
	names := map[int]string{2: "modp1024", 5: "modp1536", 14: "modp2048", 15: "modp3072", 16: "modp4096",
		17: "modp6144", 18: "modp8192", 19: "ecp256", 20: "ecp384", 21: "ecp521"}
	if g, ok := names[n]; ok {
		return g, nil
	}
	return "", &UnsupportedError{rosFormat, "pfs group" + strconv.Itoa(n), "RouterOS offers MODP groups 2, 5, 14-18 and ECP groups 19-21 only"}
}

// rosHash returns the RouterOS name of an API auth_algorithm.
func rosHash(a, where string) (string, error) {
	switch a {
	case "sha1", "sha256", "sha512":
		return a, nil
	}
	return "", &UnsupportedError{rosFormat, where + " auth_algorithm " + a, "RouterOS offers md5, sha1, sha256 and sha512 only"}
}

// rosTime writes seconds as a RouterOS time ("1h", "1d2h3m4s").
func rosTime(n int) string {
	var b strings.Builder
	for _, u := range []struct {
		s    int
		unit string
	}{{86400, "d"}, {3600, "h"}, {60, "m"}, {1, "s"}} {
		if n >= u.s {
			fmt.Fprintf(&b, "%d%s", n/u.s, u.unit)
			n %= u.s
		}
	}
	if b.Len() == 0 {
		return "0s"
	}
	return b.String()
}

// rosString quotes a PSK for RouterOS: printable ASCII only, with ", \,
// $ (variable substitution) and ? (help) escaped.
func rosString(s string) (string, error) {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch < 0x20 || ch > 0x7e:
			return "", &UnsafeValueError{"psk", "***"}
		case ch == '"' || ch == '\\' || ch == '$' || ch == '?':
			b.WriteByte('\\')
		}
		b.WriteByte(ch)
	}
	b.WriteByte('"')
	return b.String(), nil
}

// rosID returns a RouterOS identity: address:<ip> or fqdn:<name>.
func rosID(id string) string {
	if isIP(id) {
		return "address:" + id
	}
	return "fqdn:" + id
}

// routeros renders RouterOS 7 /ip ipsec commands: a profile, a peer, an
// identity, a proposal and one policy per pair of networks.
func routeros(s site) (string, error) {
	p, err := parsePolicy(s)
	if err != nil {
		return "", err
	}
	for _, v := range []struct{ field, value string }{{"peer_id", s.localID}, {"local_id", s.remoteID}} {
		if !plainID.MatchString(v.value) {
			return "", &UnsafeValueError{v.field, v.value}
		}
	}
	secret, err := rosString(s.psk)
	if err != nil {
		return "", err
	}
	if p.protocol != "esp" {
		return "", &UnsupportedError{rosFormat, "transform_protocol " + p.protocol, "RouterOS implements ESP only"}
	}
	var ikeEnc string
	switch c := p.ikeCipher; c.mode {
	case "3des":
		ikeEnc = "3des"
	case "cbc":
		ikeEnc = "aes-" + strconv.Itoa(c.bits)
	default:
		return "", &UnsupportedError{rosFormat, "IKE encryption " + c.api, "RouterOS profiles offer 3DES and AES-CBC only"}
	}
	ikeHash, err := rosHash(p.ikeAuth, "IKE")
	if err != nil {
		return "", err
	}
	ikeGroup, err := rosGroup(p.ikeGroup)
	if err != nil {
		return "", err
	}
	espGroup, err := rosGroup(p.espGroup)
	if err != nil {
		return "", err
	}
	var espEnc, espAuth string
	switch c := p.espCipher; {
	case c.mode == "3des":
		espEnc = "3des"
	case c.mode == "cbc" || c.mode == "ctr":
		espEnc = "aes-" + strconv.Itoa(c.bits) + "-" + c.mode
	case c.mode == "gcm" && c.icv == 16:
		espEnc, espAuth = "aes-"+strconv.Itoa(c.bits)+"-gcm", "null"
	default:
		return "", &UnsupportedError{rosFormat, "IPsec encryption " + c.api, "RouterOS offers GCM with a 16-byte ICV only, and no CCM"}
	}
	if espAuth == "" {
		if espAuth, err = rosHash(p.espAuth, "IPsec"); err != nil {
			return "", err
		}
	}
	exchange := "main"
	switch {
	case s.ikev2:
		exchange = "ike2"
	case s.aggressive:
		exchange = "aggressive"
	}
	dpd := "dpd-interval=disable-dpd"
	if p.dpd != "" {
		failures := min(100, max(1, (p.dpdTimeout+p.dpdInterval-1)/p.dpdInterval))
		dpd = fmt.Sprintf("dpd-interval=%s dpd-maximum-failures=%d", rosTime(p.dpdInterval), failures)
	}
	local := ""
	if s.localIP.IsValid() {
		local = " local-address=" + s.localIP.String()
	}
	host := 32
	if s.remoteIP.Is6() {
		host = 128
	}

	var w writer
	w.header("#", "MikroTik RouterOS 7", s)
	w.line("# Paste into a terminal or /import it. RouterOS has no DPD action: a dead")
	w.line("# peer's SAs are removed, and this side renegotiates on the next packet.")
	w.line("/ip ipsec profile")
	w.line("add name=%s enc-algorithm=%s hash-algorithm=%s dh-group=%s lifetime=%s %s proposal-check=obey nat-traversal=yes",
		s.name, ikeEnc, ikeHash, ikeGroup, rosTime(p.ikeLife), dpd)
	w.line("/ip ipsec peer")
	w.line("add name=%s address=%s/%d%s profile=%s exchange-mode=%s send-initial-contact=yes",
		s.name, s.remoteIP, host, local, s.name, exchange)
	w.line("/ip ipsec identity")
	w.line("add peer=%s auth-method=pre-shared-key secret=%s my-id=%s remote-id=%s generate-policy=no",
		s.name, secret, rosID(s.localID), rosID(s.remoteID))
	w.line("/ip ipsec proposal")
	w.line("add name=%s enc-algorithms=%s auth-algorithms=%s pfs-group=%s lifetime=%s",
		s.name, espEnc, espAuth, espGroup, rosTime(p.espLife))
	w.line("/ip ipsec policy")
	for _, l := range s.localTS {
		for _, r := range s.remoteTS {
			w.line("add peer=%s tunnel=%s src-address=%s dst-address=%s proposal=%s action=encrypt level=unique",
				s.name, yesNo(p.mode == "tunnel"), l, r, s.name)
		}
	}
	return w.String(), nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

package peerconfig

import (
	"encoding/base64"
	"errors"
	"net/netip"

	"github.com/neutrino-net/neutrino/internal/ipsec/lsconf"
)

// The Libreswan keywords of the API's algorithms are lsconf's, shared
// with the Libreswan device driver (Neutrino's own side).

const lsFormat = "libreswan"

// lsErr turns lsconf's *UnsupportedError into this package's.
func lsErr(err error) error {
	var u *lsconf.UnsupportedError
	if errors.As(err, &u) {
		return &UnsupportedError{lsFormat, u.What, u.Why}
	}
	return err
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
	if p.protocol == "ah-esp" {
		return "", &UnsupportedError{lsFormat, "transform_protocol " + p.protocol, "Libreswan negotiates either ESP or AH, not both"}
	}
	c := s.c
	ike, err := lsconf.IKEAlg(c.IKE.EncryptionAlgorithm, c.IKE.AuthAlgorithm, c.IKE.PFS, s.ikev2)
	if err != nil {
		return "", lsErr(err)
	}
	phase2alg, err := lsconf.Phase2Alg(p.protocol, c.IPsec.EncryptionAlgorithm, c.IPsec.AuthAlgorithm, c.IPsec.PFS, s.ikev2)
	if err != nil {
		return "", lsErr(err)
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
	w.line("\tleftid=%s", lsconf.Identity(s.localID))
	subnets(&w, "left", s.localTS)
	w.line("\tright=%s", s.remoteIP)
	w.line("\trightid=%s", lsconf.Identity(s.remoteID))
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
	w.line("\tike=%s", ike)
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
	w.line("%s %s : PSK 0s%s", lsconf.Identity(s.localID), lsconf.Identity(s.remoteID),
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

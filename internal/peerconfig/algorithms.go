package peerconfig

import (
	"fmt"
	"strconv"
	"strings"
)

// cipher is an API encryption_algorithm taken apart: "3des", or AES in
// mode cbc, ctr, ccm or gcm with a key size in bits and, for the AEAD
// modes, an ICV length in bytes (8, 12 or 16).
type cipher struct {
	api  string
	mode string // 3des, cbc, ctr, ccm, gcm
	bits int    // 128, 192, 256 (168 for 3des)
	icv  int    // ccm and gcm only
}

func (c cipher) aead() bool { return c.mode == "ccm" || c.mode == "gcm" }

// parseCipher parses an API encryption_algorithm: 3des, aes-<bits>,
// aes-<bits>-ctr, aes-<bits>-{ccm,gcm}-{8,12,16}.
func parseCipher(api string) (cipher, error) {
	if api == "3des" {
		return cipher{api: api, mode: "3des", bits: 168}, nil
	}
	parts := strings.Split(api, "-")
	bad := fmt.Errorf("peerconfig: unknown encryption_algorithm %q", api)
	if len(parts) < 2 || len(parts) > 4 || parts[0] != "aes" {
		return cipher{}, bad
	}
	c := cipher{api: api, mode: "cbc"}
	switch parts[1] {
	case "128", "192", "256":
		c.bits, _ = strconv.Atoi(parts[1])
	default:
		return cipher{}, bad
	}
	switch {
	case len(parts) == 2:
	case len(parts) == 3 && parts[2] == "ctr":
		c.mode = "ctr"
	case len(parts) == 4 && (parts[2] == "ccm" || parts[2] == "gcm"):
		c.mode = parts[2]
		switch parts[3] {
		case "8", "12", "16":
			c.icv, _ = strconv.Atoi(parts[3])
		default:
			return cipher{}, bad
		}
	default:
		return cipher{}, bad
	}
	return c, nil
}

// integrities are the API auth_algorithm values.
var integrities = map[string]bool{
	"sha1": true, "sha256": true, "sha384": true, "sha512": true, "aes-xcbc": true, "aes-cmac": true,
}

func checkIntegrity(api string) error {
	if !integrities[api] {
		return fmt.Errorf("peerconfig: unknown auth_algorithm %q", api)
	}
	return nil
}

// parseGroup parses an API pfs value "group<N>" into N.
func parseGroup(api string) (int, error) {
	n, err := strconv.Atoi(strings.TrimPrefix(api, "group"))
	if !strings.HasPrefix(api, "group") || err != nil || strconv.Itoa(n) != strings.TrimPrefix(api, "group") ||
		!(n == 2 || n == 5 || (n >= 14 && n <= 31)) {
		return 0, fmt.Errorf("peerconfig: unknown pfs %q", api)
	}
	return n, nil
}

// policy is the IKE and IPsec policies of a connection, parsed.
type policy struct {
	ikeCipher, espCipher cipher
	ikeAuth, espAuth     string
	ikeGroup, espGroup   int
	ikeLife, espLife     int
	protocol             string // esp, ah, ah-esp
	mode                 string // tunnel, transport
	dpd                  string // hold, clear, restart; "" disabled
	dpdInterval          int
	dpdTimeout           int
}

// parsePolicy parses s's policies; values outside the API enumerations
// are errors.
func parsePolicy(s site) (policy, error) {
	c := s.c
	var p policy
	var err error
	if p.ikeCipher, err = parseCipher(c.IKE.EncryptionAlgorithm); err != nil {
		return p, err
	}
	if p.espCipher, err = parseCipher(c.IPsec.EncryptionAlgorithm); err != nil {
		return p, err
	}
	if err = checkIntegrity(c.IKE.AuthAlgorithm); err != nil {
		return p, err
	}
	if err = checkIntegrity(c.IPsec.AuthAlgorithm); err != nil {
		return p, err
	}
	p.ikeAuth, p.espAuth = c.IKE.AuthAlgorithm, c.IPsec.AuthAlgorithm
	if p.ikeGroup, err = parseGroup(c.IKE.PFS); err != nil {
		return p, err
	}
	if p.espGroup, err = parseGroup(c.IPsec.PFS); err != nil {
		return p, err
	}
	p.ikeLife, p.espLife = c.IKE.LifetimeSeconds, c.IPsec.LifetimeSeconds
	if p.ikeLife < 60 || p.espLife < 60 {
		return p, fmt.Errorf("peerconfig: lifetimes %d and %d must be at least 60 seconds", p.ikeLife, p.espLife)
	}
	switch c.IPsec.TransformProtocol {
	case "esp", "ah", "ah-esp":
		p.protocol = c.IPsec.TransformProtocol
	default:
		return p, fmt.Errorf("peerconfig: unknown transform_protocol %q", c.IPsec.TransformProtocol)
	}
	switch c.IPsec.EncapsulationMode {
	case "tunnel", "transport":
		p.mode = c.IPsec.EncapsulationMode
	default:
		return p, fmt.Errorf("peerconfig: unknown encapsulation_mode %q", c.IPsec.EncapsulationMode)
	}
	if p.dpd, err = dpdAction(c.DPD.Action); err != nil {
		return p, err
	}
	if p.dpd != "" {
		if c.DPD.Interval <= 0 || c.DPD.Timeout <= 0 {
			return p, fmt.Errorf("peerconfig: dpd interval %d and timeout %d must be positive", c.DPD.Interval, c.DPD.Timeout)
		}
		p.dpdInterval, p.dpdTimeout = c.DPD.Interval, c.DPD.Timeout
	}
	return p, nil
}

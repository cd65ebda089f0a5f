package service

import (
	"errors"
	"strings"
	"testing"

	"github.com/neutrino-net/neutrino/internal/model"
)

// TestLibreswanRejections: a value Libreswan cannot do is a 400 naming
// the value and the provider, for a libreswan provider only.
func TestLibreswanRejections(t *testing.T) {
	kinds := DriverKinds(nil)
	ike := func() *model.IKEPolicy {
		return &model.IKEPolicy{AuthAlgorithm: "sha256", EncryptionAlgorithm: "aes-128", Phase1NegotiationMode: "main",
			IKEVersion: "v2", PFS: "group14", Lifetime: model.Lifetime{Units: "seconds", Value: 3600}}
	}
	esp := func() *model.IPsecPolicy {
		return &model.IPsecPolicy{TransformProtocol: "esp", AuthAlgorithm: "sha256", EncryptionAlgorithm: "aes-128",
			EncapsulationMode: "tunnel", PFS: "group14", Lifetime: model.Lifetime{Units: "seconds", Value: 3600}}
	}
	conn := &model.IPsecSiteConnection{PeerID: "192.0.2.10"}
	if err := validateConnection(kinds["libreswan"], "edge", ike(), esp(), conn); err != nil {
		t.Fatalf("defaults refused: %v", err)
	}
	for _, tc := range []struct {
		what string
		ike  func(*model.IKEPolicy)
		esp  func(*model.IPsecPolicy)
	}{
		{"group2", func(p *model.IKEPolicy) { p.PFS = "group2" }, nil},
		{"aggressive", func(p *model.IKEPolicy) { p.Phase1NegotiationMode = "aggressive" }, nil},
		{"aes-128-ccm-16", func(p *model.IKEPolicy) { p.EncryptionAlgorithm = "aes-128-ccm-16" }, nil},
		{"aes-xcbc", func(p *model.IKEPolicy) { p.IKEVersion, p.AuthAlgorithm = "v1", "aes-xcbc" }, nil},
		{"lifetime 100000", func(p *model.IKEPolicy) { p.Lifetime.Value = 100000 }, nil},
		{"group19 with IKEv1", func(p *model.IKEPolicy) { p.IKEVersion = "v1" }, func(p *model.IPsecPolicy) { p.PFS = "group19" }},
		{"group22", nil, func(p *model.IPsecPolicy) { p.PFS = "group22" }},
	} {
		i, e := ike(), esp()
		if tc.ike != nil {
			tc.ike(i)
		}
		if tc.esp != nil {
			tc.esp(e)
		}
		err := validateConnection(kinds["libreswan"], "edge", i, e, conn)
		var se *Error
		if !errors.As(err, &se) || se.Kind != Invalid || se.Type != "IpsecValidationFailure" ||
			!strings.Contains(se.Message, tc.what) || !strings.Contains(se.Message, "provider edge") {
			t.Errorf("%s: %v, want a 400 naming it and provider edge", tc.what, err)
		}
		if err := validateConnection(kinds["strongswan"], "default", i, e, conn); err != nil && tc.what != "aggressive" {
			t.Errorf("%s refused for strongSwan: %v", tc.what, err)
		}
	}
	// Identities the driver cannot write unquoted: a DN, spaces, a
	// leading "@" (the driver adds it).
	for _, c := range []model.IPsecSiteConnection{{PeerID: "CN=sun, O=example"}, {PeerID: "@sun.example"},
		{PeerID: "sun.example", LocalID: "moon example"}} {
		want := `peer_id "` + c.PeerID + `"`
		if c.LocalID != "" {
			want = `local_id "` + c.LocalID + `"`
		}
		err := validateConnection(kinds["libreswan"], "edge", ike(), esp(), &c)
		var se *Error
		if !errors.As(err, &se) || se.Kind != Invalid || se.Type != "IpsecValidationFailure" || !strings.Contains(se.Message, "provider edge") ||
			!strings.Contains(se.Message, want) {
			t.Errorf("ids %q %q: %v, want a 400 naming the id and provider edge", c.LocalID, c.PeerID, err)
		}
		if err := validateConnection(kinds["strongswan"], "default", ike(), esp(), &c); err != nil {
			t.Errorf("ids %q %q refused for strongSwan: %v", c.LocalID, c.PeerID, err)
		}
	}
	big := model.IPsecSiteConnection{PeerID: "192.0.2.10", MTU: 65536}
	if err := validateConnection(kinds["libreswan"], "edge", ike(), esp(), &big); err == nil || !strings.Contains(err.Error(), "mtu 65536") {
		t.Errorf("mtu 65536: %v, want a 400 naming it", err)
	}
	for _, c := range []model.IPsecSiteConnection{{PeerID: "2001:db8::1", MTU: 65535}, {PeerID: "sun@example.org", LocalID: "moon.example"}} {
		if err := validateConnection(kinds["libreswan"], "edge", ike(), esp(), &c); err != nil {
			t.Errorf("ids %q %q refused: %v", c.LocalID, c.PeerID, err)
		}
	}
	// ah-esp keeps the reference's message for both.
	e := esp()
	e.TransformProtocol = "ah-esp"
	for _, k := range []string{"libreswan", "strongswan"} {
		if err := validateConnection(kinds[k], k, ike(), e, conn); err == nil || !strings.Contains(err.Error(), "transform_protocol") {
			t.Errorf("%s: ah-esp: %v", k, err)
		}
	}
}

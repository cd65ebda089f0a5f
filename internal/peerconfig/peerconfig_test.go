package peerconfig

import (
	"errors"
	"strings"
	"testing"

	"github.com/neutrino-net/neutrino/api/agentv1"
)

func conn() agentv1.IPsecConnection {
	return agentv1.IPsecConnection{
		ID: "0b7c2f4e-9a1d-4c3e-8f5a-2d6b1e9c7a30", LocalAddress: "203.0.113.10", PeerAddress: "198.51.100.1",
		PeerID: "office.example.org", PSK: `s3cr"et\n{}`, LocalCIDRs: []string{"10.1.0.0/24"},
		PeerCIDRs: []string{"192.168.50.0/24", "192.168.51.0/24"},
		IKE: agentv1.IKEPolicy{AuthAlgorithm: "sha256", EncryptionAlgorithm: "aes-128", Phase1NegotiationMode: "main",
			IKEVersion: "v2", PFS: "group14", LifetimeSeconds: 3600},
		IPsec: agentv1.IPsecPolicy{TransformProtocol: "esp", AuthAlgorithm: "sha256", EncryptionAlgorithm: "aes-256",
			EncapsulationMode: "tunnel", PFS: "group14", LifetimeSeconds: 3600},
		DPD: agentv1.DPD{Action: "hold", Interval: 30, Timeout: 120}, Initiator: "response-only", AdminStateUp: true,
	}
}

func TestUnknownFormat(t *testing.T) {
	_, err := Render("junos", conn())
	if !errors.Is(err, ErrUnknownFormat) || !strings.Contains(err.Error(), "swanctl") {
		t.Fatalf("unknown format: %v", err)
	}
}

// TestSwanctlMirrors: the remote side gets our peer's addresses, identity
// and networks as its own, ours as the remote ones, the same proposals,
// and initiates (we only respond); the PSK is base64, whatever it holds.
func TestSwanctlMirrors(t *testing.T) {
	out, err := Render("swanctl", conn())
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"local_addrs = 198.51.100.1", "remote_addrs = 203.0.113.10", "proposals = aes128-sha256-modp2048",
		"id = @office.example.org", "id = 203.0.113.10", "local_ts = 192.168.50.0/24,192.168.51.0/24",
		"remote_ts = 10.1.0.0/24", "esp_proposals = aes256-sha256-modp2048", "start_action = trap|start",
		"dpd_action = trap", "dpd_delay = 30s", "secret = 0sczNjciJldFxue30=",
	} {
		if !strings.Contains(out, line) {
			t.Errorf("missing %q in:\n%s", line, out)
		}
	}
	if strings.Contains(out, `s3cr"et`) {
		t.Errorf("the PSK appears in clear")
	}
}

// FuzzRender: whatever a client put in identities, addresses or networks,
// the output either is refused or has exactly the lines of a benign one,
// each with the same key: no value adds a line, a section or a setting.
func FuzzRender(f *testing.F) {
	base, err := Render("swanctl", conn())
	if err != nil {
		f.Fatal(err)
	}
	keys := func(s string) []string {
		var out []string
		for _, l := range strings.Split(s, "\n") {
			k, _, _ := strings.Cut(strings.TrimSpace(l), " ")
			out = append(out, k)
		}
		return out
	}
	want := keys(base)
	for _, s := range []string{"a\nb", "x}\nsecrets {", "# comment", "@a b", `"quoted"`, "{", "a=b", "10.0.0.0/8,1.2.3.4", ""} {
		f.Add(s, s, s, s)
	}
	f.Fuzz(func(t *testing.T, peerID, localID, peer, cidr string) {
		c := conn()
		c.PeerID, c.LocalID, c.PeerAddress, c.PeerCIDRs = peerID, localID, peer, []string{cidr}
		out, err := Render("swanctl", c)
		if err != nil {
			return
		}
		got := keys(out)
		if len(got) != len(want) && len(got) != len(want)-1 { // dpd_timeout is IKEv1 only
			t.Fatalf("%d lines, want %d:\n%s", len(got), len(want), out)
		}
		for i := range got {
			if i < len(want) && got[i] != want[i] {
				t.Fatalf("line %d key %q, want %q:\n%s", i, got[i], want[i], out)
			}
		}
	})
}

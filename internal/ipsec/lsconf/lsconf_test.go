package lsconf

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/neutrino-net/neutrino/internal/ipsec"
)

func conn() ipsec.Connection {
	return ipsec.Connection{
		ID: "5a83b33e-3ec7-4e20-ab95-1705ba9b309d", LocalAddress: "203.0.113.10", PeerAddress: "203.0.113.1",
		PeerID: "203.0.113.1", PSK: "secret", LocalCIDRs: []string{"10.1.0.0/24"}, PeerCIDRs: []string{"192.168.50.0/24"},
		IKE: ipsec.IKEPolicy{AuthAlgorithm: "sha256", EncryptionAlgorithm: "aes-128", Phase1NegotiationMode: "main",
			IKEVersion: "v2", PFS: "group14", LifetimeSeconds: 3600},
		IPsec: ipsec.IPsecPolicy{TransformProtocol: "esp", AuthAlgorithm: "sha256", EncryptionAlgorithm: "aes-128",
			EncapsulationMode: "tunnel", PFS: "group14", LifetimeSeconds: 3600},
		DPD:       ipsec.DPD{Action: "hold", Interval: 30, Timeout: 120},
		Initiator: "bi-directional", AdminStateUp: true, MTU: 1500,
	}
}

// keys returns the conn's key=value lines as a map, failing on any line
// that is not one.
func keys(t *testing.T, conf string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, l := range strings.Split(strings.TrimRight(conf, "\n"), "\n") {
		if strings.HasPrefix(l, "#") || strings.HasPrefix(l, "conn ") {
			continue
		}
		k, v, ok := strings.Cut(strings.TrimPrefix(l, "\t"), "=")
		if !ok || !strings.HasPrefix(l, "\t") {
			t.Fatalf("not a key=value line: %q", l)
		}
		out[k] = v
	}
	return out
}

func TestRenderMapsEveryValue(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*ipsec.Connection)
		want map[string]string
		not  []string
	}{
		{"ikev2 defaults", func(*ipsec.Connection) {}, map[string]string{
			"left": "203.0.113.10", "leftid": "203.0.113.10", "leftsubnet": "10.1.0.0/24", "right": "203.0.113.1",
			"rightid": "203.0.113.1", "rightsubnet": "192.168.50.0/24", "authby": "secret", "ikev2": "insist",
			"ike": "aes128-sha2_256;modp2048", "ikelifetime": "3600s", "phase2": "esp", "phase2alg": "aes128-sha2_256;modp2048",
			"pfs": "yes", "salifetime": "3600s", "type": "tunnel", "dpddelay": "30s", "dpdtimeout": "120s", "dpdaction": "hold",
			"mtu": "1500", "auto": "start", "rekeymargin": "180s", "leftupdown": "%disabled"}, []string{"aggressive"}},
		{"ikev1 aggressive, response-only, ids, several subnets", func(c *ipsec.Connection) {
			c.IKE.IKEVersion, c.IKE.Phase1NegotiationMode, c.Initiator = "v1", "aggressive", "response-only"
			c.LocalID, c.PeerID = "moon.example", "sun@example.org"
			c.LocalCIDRs = []string{"10.1.0.0/24", "10.3.0.1/16"}
			c.DPD.Action, c.MTU = "disabled", 0
			c.IPsec.EncapsulationMode = "transport"
		}, map[string]string{"ikev2": "no", "aggressive": "yes", "auto": "add", "leftid": "@moon.example",
			"rightid": "@sun@example.org", "leftsubnets": "{10.1.0.0/24 10.3.0.0/16}", "type": "transport"},
			[]string{"dpddelay", "dpdaction", "mtu", "leftsubnet"}},
		{"aead and ah", func(c *ipsec.Connection) {
			c.IKE.EncryptionAlgorithm, c.IKE.PFS = "aes-256-gcm-16", "group19"
			c.IPsec.TransformProtocol, c.IPsec.AuthAlgorithm, c.IPsec.PFS = "ah", "sha512", "group5"
			c.DPD.Action = "restart-by-peer"
		}, map[string]string{"ike": "aes_gcm_c256-sha2_256;dh19", "phase2": "ah", "phase2alg": "sha2_512;modp1536", "dpdaction": "restart"}, nil},
		{"esp gcm", func(c *ipsec.Connection) { c.IPsec.EncryptionAlgorithm = "aes-128-gcm-8" },
			map[string]string{"phase2alg": "aes_gcm_a128-null;modp2048"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := conn()
			tc.edit(&c)
			got, err := Render(c)
			if err != nil {
				t.Fatal(err)
			}
			kv := keys(t, got.Conf)
			for k, v := range tc.want {
				if kv[k] != v {
					t.Errorf("%s=%q, want %q\n%s", k, kv[k], v, got.Conf)
				}
			}
			for _, k := range tc.not {
				if _, ok := kv[k]; ok {
					t.Errorf("%s set, want absent", k)
				}
			}
			if got.Initiate != (c.Initiator == "bi-directional") {
				t.Errorf("Initiate = %v", got.Initiate)
			}
			if !strings.HasPrefix(got.Conf, "# Written") || !strings.Contains(got.Conf, "\nconn "+c.ID+"\n") {
				t.Errorf("conf does not name the conn:\n%s", got.Conf)
			}
			want := kv["leftid"] + " " + kv["rightid"] + " : PSK 0s" + base64.StdEncoding.EncodeToString([]byte(c.PSK)) + "\n"
			if got.Secrets != want {
				t.Errorf("secrets = %q, want %q", got.Secrets, want)
			}
		})
	}
}

func TestRenderRejects(t *testing.T) {
	for _, tc := range []struct {
		edit        func(*ipsec.Connection)
		unsafe      string // an UnsafeValueError for this field
		unsupported string // an UnsupportedError naming this
		plain       string // another error containing this
	}{
		{edit: func(c *ipsec.Connection) { c.PeerID = "x\n\tleftupdown=/bin/sh" }, unsafe: "peer_id"},
		{edit: func(c *ipsec.Connection) { c.LocalID = "a b" }, unsafe: "local_id"},
		{edit: func(c *ipsec.Connection) { c.PeerAddress = "%any" }, unsafe: "peer_address"},
		{edit: func(c *ipsec.Connection) { c.PeerCIDRs = []string{"10.0.0.0/8 0.0.0.0/0"} }, unsafe: "peer CIDR"},
		{edit: func(c *ipsec.Connection) { c.ID = "../x" }, unsafe: "connection id"},
		{edit: func(c *ipsec.Connection) { c.IKE.PFS = "group2" }, unsupported: "IKE pfs group2"},
		{edit: func(c *ipsec.Connection) { c.IPsec.PFS = "group22" }, unsupported: "IPsec pfs group22"},
		{edit: func(c *ipsec.Connection) { c.IPsec.TransformProtocol = "ah-esp" }, unsupported: "ah-esp"},
		{edit: func(c *ipsec.Connection) { c.IKE.Phase1NegotiationMode = "aggressive" }, unsupported: "aggressive"},
		{edit: func(c *ipsec.Connection) { c.IKE.IKEVersion, c.IKE.EncryptionAlgorithm = "v1", "aes-128-ctr" }, unsupported: "aes-128-ctr"},
		{edit: func(c *ipsec.Connection) { c.IKE.IKEVersion, c.IPsec.PFS = "v1", "group19" }, unsupported: "group19 with IKEv1"},
		{edit: func(c *ipsec.Connection) { c.IKE.AuthAlgorithm = "aes-cmac" }, unsupported: "aes-cmac"},
		{edit: func(c *ipsec.Connection) { c.IKE.LifetimeSeconds = 90000 }, unsupported: "IKE lifetime 90000"},
		{edit: func(c *ipsec.Connection) { c.IKE.IKEVersion = "v3" }, plain: "ike_version"},
		{edit: func(c *ipsec.Connection) { c.DPD.Action = "sometimes" }, plain: "dpd action"},
		{edit: func(c *ipsec.Connection) { c.PSK = "" }, plain: "psk"},
		{edit: func(c *ipsec.Connection) { c.Initiator = "x" }, plain: "initiator"},
	} {
		c := conn()
		tc.edit(&c)
		_, err := Render(c)
		var u *UnsafeValueError
		var n *UnsupportedError
		switch {
		case err == nil:
			t.Errorf("%+v: rendered", c)
		case tc.unsafe != "" && (!errors.As(err, &u) || u.Field != tc.unsafe):
			t.Errorf("err = %v, want unsafe %s", err, tc.unsafe)
		case tc.unsupported != "" && (!errors.As(err, &n) || !strings.Contains(n.What, tc.unsupported)):
			t.Errorf("err = %v, want unsupported %s", err, tc.unsupported)
		case tc.plain != "" && !strings.Contains(err.Error(), tc.plain):
			t.Errorf("err = %v, want %s", err, tc.plain)
		}
	}
}

// FuzzRender: whatever the API hands over, the rendered files hold one
// conn of known keys, each value one token, and one secrets line.
func FuzzRender(f *testing.F) {
	f.Add("5a83b33e", "203.0.113.1", "peer.example", "me", "psk", "10.0.0.0/24", "aes-128", "bi-directional")
	f.Add("x", "x\nconn y", "a\"b", "#c", "p\n%any : PSK x", "10.0.0.0/24\n", "aes-256-gcm-16", "response-only")
	allowed := map[string]bool{"left": true, "leftid": true, "leftsubnet": true, "leftsubnets": true, "right": true,
		"rightid": true, "rightsubnet": true, "leftupdown": true, "rightsubnets": true, "authby": true, "ikev2": true, "aggressive": true,
		"ike": true, "ikelifetime": true, "phase2": true, "phase2alg": true, "pfs": true, "salifetime": true,
		"rekeymargin": true, "type": true, "dpddelay": true, "dpdtimeout": true, "dpdaction": true, "mtu": true, "auto": true}
	f.Fuzz(func(t *testing.T, id, peer, peerID, localID, psk, cidr, enc, initiator string) {
		c := conn()
		c.ID, c.PeerAddress, c.PeerID, c.LocalID, c.PSK = id, peer, peerID, localID, agentv1.Secret(psk)
		c.PeerCIDRs = []string{cidr}
		c.IPsec.EncryptionAlgorithm, c.Initiator = enc, initiator
		got, err := Render(c)
		// The API refuses (SupportedConn) what Render refuses of the ids:
		// an id the API takes renders.
		apiErr := SupportedConn(localID, peerID, c.MTU)
		var unsafe *UnsafeValueError
		if apiErr == nil && errors.As(err, &unsafe) && (unsafe.Field == "peer_id" || unsafe.Field == "local_id") {
			t.Fatalf("ids %q %q pass SupportedConn but Render refuses them: %v", localID, peerID, err)
		}
		if err != nil {
			return
		}
		if apiErr != nil {
			t.Fatalf("ids %q %q render but SupportedConn refuses them: %v", localID, peerID, apiErr)
		}
		conns := 0
		for _, l := range strings.Split(strings.TrimRight(got.Conf, "\n"), "\n") {
			switch {
			case strings.HasPrefix(l, "# Written by neutrino: IPsec site connection ") && !strings.ContainsAny(l, "\r\x00"):
			case strings.HasPrefix(l, "conn "):
				conns++
				if l != "conn "+id {
					t.Fatalf("conn line %q", l)
				}
			default:
				k, v, ok := strings.Cut(strings.TrimPrefix(l, "\t"), "=")
				if !ok || !allowed[k] || v == "" || strings.ContainsAny(v, " \t\r\"'#\\\x00") && k != "leftsubnets" && k != "rightsubnets" {
					t.Fatalf("line %q in\n%s", l, got.Conf)
				}
			}
		}
		if conns != 1 {
			t.Fatalf("%d conn lines", conns)
		}
		f := strings.Fields(got.Secrets)
		if strings.Count(got.Secrets, "\n") != 1 || len(f) != 5 || f[2] != ":" || f[3] != "PSK" || !strings.HasPrefix(f[4], "0s") {
			t.Fatalf("secrets %q", got.Secrets)
		}
		if b, err := base64.StdEncoding.DecodeString(f[4][2:]); err != nil || string(b) != psk {
			t.Fatalf("psk does not round-trip: %q", f[4])
		}
	})
}

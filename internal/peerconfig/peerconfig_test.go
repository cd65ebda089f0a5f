package peerconfig

import (
	"errors"
	"fmt"
	"slices"
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

// printablePSK is a PSK every format carries (no quotes, spaces or "?").
const printablePSK = "Xy7-kq!9Zr/+=aB"

func TestFormats(t *testing.T) {
	want := []string{"swanctl", "libreswan", "vyos", "routeros", "cisco-ios"}
	got := Formats()
	if !slices.Equal(got, want[:len(got)]) || len(got) < 2 {
		t.Fatalf("Formats() = %v, want (a prefix of) %v", got, want)
	}
}

func TestUnknownFormat(t *testing.T) {
	_, err := Render("junos", conn())
	if !errors.Is(err, ErrUnknownFormat) {
		t.Fatalf("unknown format: %v", err)
	}
	for _, f := range Formats() {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("the error does not name %s: %v", f, err)
		}
	}
}

// TestHeader: every format starts with comment lines naming the
// connection and saying it holds the PSK.
func TestHeader(t *testing.T) {
	for _, f := range Formats() {
		c := conn()
		c.PSK = printablePSK
		out, err := Render(f, c)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		lines := strings.SplitN(out, "\n", 3)
		comment := "#"
		if f == "cisco-ios" {
			comment = "!"
		}
		if !strings.HasPrefix(lines[0], comment) || !strings.HasPrefix(lines[1], comment) ||
			!strings.Contains(lines[0], c.ID) || !strings.Contains(lines[1], "pre-shared key") {
			t.Errorf("%s header:\n%s\n%s", f, lines[0], lines[1])
		}
	}
}

// TestRender checks key lines of each format for a few connections.
func TestRender(t *testing.T) {
	v1 := func(c *agentv1.IPsecConnection) {
		c.IKE.IKEVersion, c.IKE.Phase1NegotiationMode = "v1", "aggressive"
		c.IKE.EncryptionAlgorithm, c.IKE.AuthAlgorithm, c.IKE.PFS = "aes-256", "sha1", "group5"
		c.IPsec.EncryptionAlgorithm, c.IPsec.PFS = "aes-128-gcm-16", "group19"
		c.DPD.Action = "restart-by-peer"
		c.LocalID = "gw.cloud.example"
		c.LocalCIDRs = []string{"10.1.0.0/24", "10.2.0.1/16"}
		c.PeerCIDRs = []string{"192.168.50.0/24"}
		c.PSK = printablePSK
	}
	for _, tc := range []struct {
		name, format string
		edit         func(*agentv1.IPsecConnection)
		want         []string
		absent       []string
	}{
		{
			name: "mirrored", format: "swanctl",
			want: []string{
				"version = 2", "local_addrs = 198.51.100.1", "remote_addrs = 203.0.113.10", "proposals = aes128-sha256-modp2048",
				"id = @office.example.org", "id = 203.0.113.10", "local_ts = 192.168.50.0/24,192.168.51.0/24",
				"remote_ts = 10.1.0.0/24", "esp_proposals = aes256-sha256-modp2048", "start_action = trap|start",
				"dpd_action = trap", "dpd_delay = 30s", "secret = 0sczNjciJldFxue30=", "life_time = 3600s",
				"rekey_time = 3420s", "mode = tunnel", "neutrino-0b7c2f4e-9a1d-4c3e-8f5a-2d6b1e9c7a30 {",
			},
			absent: []string{`s3cr"et`, "aggressive"},
		},
		{
			name: "ikev1 aggressive", format: "swanctl", edit: v1,
			want: []string{"version = 1", "aggressive = yes", "proposals = aes256-sha1-modp1536", "dpd_timeout = 120s",
				"esp_proposals = aes128gcm16-ecp256", "dpd_action = restart", "id = @gw.cloud.example",
				"remote_ts = 10.1.0.0/24,10.2.0.0/16"},
		},
		{
			name: "ah", format: "swanctl", edit: func(c *agentv1.IPsecConnection) {
				c.IPsec.TransformProtocol, c.IPsec.AuthAlgorithm, c.IPsec.EncapsulationMode = "ah", "sha512", "transport"
			},
			want: []string{"ah_proposals = sha512-modp2048", "mode = transport"}, absent: []string{"esp_proposals"},
		},
		{
			name: "mirrored", format: "libreswan",
			want: []string{
				"# /etc/ipsec.d/neutrino-0b7c2f4e-9a1d-4c3e-8f5a-2d6b1e9c7a30.conf\nconn neutrino-0b7c2f4e-9a1d-4c3e-8f5a-2d6b1e9c7a30\n",
				"\tleft=198.51.100.1\n", "\tleftid=@office.example.org\n", "\tleftsubnets={192.168.50.0/24 192.168.51.0/24}\n",
				"\tright=203.0.113.10\n", "\trightid=203.0.113.10\n", "\trightsubnet=10.1.0.0/24\n", "\tauthby=secret\n",
				"\tikev2=insist\n", "\tike=aes128-sha2_256;modp2048\n", "\tikelifetime=3600s\n", "\tphase2=esp\n",
				"\tphase2alg=aes256-sha2_256;modp2048\n", "\tsalifetime=3600s\n", "\ttype=tunnel\n", "\tdpddelay=30s\n",
				"\tdpdtimeout=120s\n", "\tdpdaction=hold\n", "\tauto=start\n",
				"\n# /etc/ipsec.d/neutrino-0b7c2f4e-9a1d-4c3e-8f5a-2d6b1e9c7a30.secrets\n" +
					"@office.example.org 203.0.113.10 : PSK 0sczNjciJldFxue30=\n",
			},
			absent: []string{`s3cr"et`, "aggressive"},
		},
		{
			name: "ikev1 aggressive", format: "libreswan",
			edit: func(c *agentv1.IPsecConnection) { v1(c); c.IPsec.PFS = "group15" },
			want: []string{"\tikev2=no\n", "\taggressive=yes\n", "\tike=aes256-sha1;modp1536\n",
				"\tphase2alg=aes_gcm_c128-null;modp3072\n", "ikev1-policy=accept", "\tdpdaction=restart\n", "\trightid=@gw.cloud.example\n",
				"\trightsubnets={10.1.0.0/24 10.2.0.0/16}\n", "\tleftsubnet=192.168.50.0/24\n",
				"@office.example.org @gw.cloud.example : PSK 0s"},
		},
		{
			name: "ah, dpd off", format: "libreswan", edit: func(c *agentv1.IPsecConnection) {
				c.IPsec.TransformProtocol, c.IPsec.AuthAlgorithm, c.IPsec.EncapsulationMode = "ah", "aes-xcbc", "transport"
				c.DPD.Action = "disabled"
				c.PeerAddress, c.PeerID = "office.example.org", "198.51.100.1"
			},
			want:   []string{"\tphase2=ah\n", "\tphase2alg=aes_xcbc;modp2048\n", "\ttype=transport\n", "\tleft=office.example.org\n", "\tleftid=198.51.100.1\n"},
			absent: []string{"dpd"},
		},
		{
			name: "mirrored", format: "vyos", edit: func(c *agentv1.IPsecConnection) { c.PSK = printablePSK },
			want: []string{
				"set vpn ipsec authentication psk neutrino-0b7c2f4e-9a1d-4c3e-8f5a-2d6b1e9c7a30 id '@office.example.org'\n",
				"set vpn ipsec authentication psk neutrino-0b7c2f4e-9a1d-4c3e-8f5a-2d6b1e9c7a30 id '203.0.113.10'\n",
				"set vpn ipsec authentication psk neutrino-0b7c2f4e-9a1d-4c3e-8f5a-2d6b1e9c7a30 secret '" + printablePSK + "'\n",
				"ike-group neutrino-0b7c2f4e-9a1d-4c3e-8f5a-2d6b1e9c7a30 key-exchange 'ikev2'\n",
				"ike-group neutrino-0b7c2f4e-9a1d-4c3e-8f5a-2d6b1e9c7a30 lifetime '3600'\n",
				"ike-group neutrino-0b7c2f4e-9a1d-4c3e-8f5a-2d6b1e9c7a30 proposal 1 dh-group '14'\n",
				"ike-group neutrino-0b7c2f4e-9a1d-4c3e-8f5a-2d6b1e9c7a30 proposal 1 encryption 'aes128'\n",
				"ike-group neutrino-0b7c2f4e-9a1d-4c3e-8f5a-2d6b1e9c7a30 proposal 1 hash 'sha256'\n",
				"ike-group neutrino-0b7c2f4e-9a1d-4c3e-8f5a-2d6b1e9c7a30 dead-peer-detection action 'hold'\n",
				"ike-group neutrino-0b7c2f4e-9a1d-4c3e-8f5a-2d6b1e9c7a30 dead-peer-detection timeout '120'\n",
				"esp-group neutrino-0b7c2f4e-9a1d-4c3e-8f5a-2d6b1e9c7a30 pfs 'dh-group14'\n",
				"esp-group neutrino-0b7c2f4e-9a1d-4c3e-8f5a-2d6b1e9c7a30 proposal 1 encryption 'aes256'\n",
				"peer neutrino-0b7c2f4e-9a1d-4c3e-8f5a-2d6b1e9c7a30 authentication mode 'pre-shared-secret'\n",
				"peer neutrino-0b7c2f4e-9a1d-4c3e-8f5a-2d6b1e9c7a30 authentication local-id '@office.example.org'\n",
				"peer neutrino-0b7c2f4e-9a1d-4c3e-8f5a-2d6b1e9c7a30 authentication remote-id '203.0.113.10'\n",
				"peer neutrino-0b7c2f4e-9a1d-4c3e-8f5a-2d6b1e9c7a30 connection-type 'initiate'\n",
				"peer neutrino-0b7c2f4e-9a1d-4c3e-8f5a-2d6b1e9c7a30 local-address '198.51.100.1'\n",
				"peer neutrino-0b7c2f4e-9a1d-4c3e-8f5a-2d6b1e9c7a30 remote-address '203.0.113.10'\n",
				"peer neutrino-0b7c2f4e-9a1d-4c3e-8f5a-2d6b1e9c7a30 tunnel 1 local prefix '192.168.50.0/24'\n",
				"peer neutrino-0b7c2f4e-9a1d-4c3e-8f5a-2d6b1e9c7a30 tunnel 1 local prefix '192.168.51.0/24'\n",
				"peer neutrino-0b7c2f4e-9a1d-4c3e-8f5a-2d6b1e9c7a30 tunnel 1 remote prefix '10.1.0.0/24'\n",
			},
			absent: []string{" mode 'main'"},
		},
		{
			name: "ikev1 aggressive", format: "vyos", edit: v1,
			want: []string{"key-exchange 'ikev1'\n", " mode 'aggressive'\n", "proposal 1 encryption 'aes256'\n",
				"proposal 1 dh-group '5'\n", "proposal 1 encryption 'aes128gcm128'\n", "pfs 'dh-group19'\n",
				"dead-peer-detection action 'restart'\n", "remote-id '@gw.cloud.example'\n",
				"tunnel 1 remote prefix '10.2.0.0/16'\n"},
		},
		{
			name: "fqdn peer, dpd off", format: "vyos", edit: func(c *agentv1.IPsecConnection) {
				c.PSK, c.PeerAddress, c.DPD.Action = printablePSK, "office.example.org", "disabled"
				c.IPsec.EncapsulationMode = "transport"
			},
			want: []string{"local-address 'any'\n", "mode 'transport'\n"}, absent: []string{"dead-peer-detection"},
		},
		{
			name: "mirrored", format: "routeros",
			want: []string{
				"/ip ipsec profile\nadd name=neutrino-0b7c2f4e-9a1d-4c3e-8f5a-2d6b1e9c7a30 enc-algorithm=aes-128 hash-algorithm=sha256 " +
					"dh-group=modp2048 lifetime=1h dpd-interval=30s dpd-maximum-failures=4 ",
				"/ip ipsec peer\nadd name=neutrino-0b7c2f4e-9a1d-4c3e-8f5a-2d6b1e9c7a30 address=203.0.113.10/32 " +
					"local-address=198.51.100.1 profile=neutrino-0b7c2f4e-9a1d-4c3e-8f5a-2d6b1e9c7a30 exchange-mode=ike2 ",
				"/ip ipsec identity\nadd peer=neutrino-0b7c2f4e-9a1d-4c3e-8f5a-2d6b1e9c7a30 auth-method=pre-shared-key " +
					`secret="s3cr\"et\\n{}" my-id=fqdn:office.example.org remote-id=address:203.0.113.10 generate-policy=no` + "\n",
				"/ip ipsec proposal\nadd name=neutrino-0b7c2f4e-9a1d-4c3e-8f5a-2d6b1e9c7a30 enc-algorithms=aes-256-cbc " +
					"auth-algorithms=sha256 pfs-group=modp2048 lifetime=1h\n",
				"/ip ipsec policy\nadd peer=neutrino-0b7c2f4e-9a1d-4c3e-8f5a-2d6b1e9c7a30 tunnel=yes src-address=192.168.50.0/24 " +
					"dst-address=10.1.0.0/24 proposal=neutrino-0b7c2f4e-9a1d-4c3e-8f5a-2d6b1e9c7a30 action=encrypt",
				"tunnel=yes src-address=192.168.51.0/24 dst-address=10.1.0.0/24 ",
			},
		},
		{
			name: "ikev1 aggressive", format: "routeros", edit: func(c *agentv1.IPsecConnection) {
				v1(c)
				c.PSK = `a"b$c?d\e`
				c.IKE.LifetimeSeconds, c.IPsec.LifetimeSeconds = 28800, 3661
				c.PeerAddress = "office.example.org"
			},
			want: []string{"exchange-mode=aggressive", "enc-algorithm=aes-256 hash-algorithm=sha1 dh-group=modp1536 lifetime=8h ",
				"enc-algorithms=aes-128-gcm auth-algorithms=null pfs-group=ecp256 lifetime=1h1m1s", `secret="a\"b\$c\?d\\e"`,
				"remote-id=fqdn:gw.cloud.example", "dst-address=10.2.0.0/16", "address=203.0.113.10/32 profile="},
			absent: []string{"local-address"},
		},
		{
			name: "dpd off, transport", format: "routeros", edit: func(c *agentv1.IPsecConnection) {
				c.DPD.Action, c.IPsec.EncapsulationMode = "disabled", "transport"
			},
			want: []string{"dpd-interval=disable-dpd ", "tunnel=no "},
		},
		{
			name: "ikev2", format: "cisco-ios", edit: func(c *agentv1.IPsecConnection) { c.PSK = printablePSK },
			want: []string{
				"crypto ikev2 proposal NEUTRINO-0b7c2f4e-9a1d-4c3e-8f5a-2d6b1e9c7a30\n encryption aes-cbc-128\n integrity sha256\n group 14\n",
				"crypto ikev2 policy NEUTRINO-0b7c2f4e-9a1d-4c3e-8f5a-2d6b1e9c7a30\n proposal NEUTRINO-0b7c2f4e-9a1d-4c3e-8f5a-2d6b1e9c7a30\n",
				"crypto ikev2 keyring NEUTRINO-0b7c2f4e-9a1d-4c3e-8f5a-2d6b1e9c7a30\n peer neutrino\n  address 203.0.113.10\n" +
					"  pre-shared-key " + printablePSK + "\n",
				" match identity remote address 203.0.113.10 255.255.255.255\n", " identity local fqdn office.example.org\n",
				" lifetime 3600\n", " dpd 30 18 periodic\n",
				"crypto ipsec transform-set NEUTRINO-0b7c2f4e-9a1d-4c3e-8f5a-2d6b1e9c7a30 esp-aes 256 esp-sha256-hmac\n mode tunnel\n",
				" permit ip 192.168.50.0 0.0.0.255 10.1.0.0 0.0.0.255\n", " permit ip 192.168.51.0 0.0.0.255 10.1.0.0 0.0.0.255\n",
				"crypto map NEUTRINO 10 ipsec-isakmp\n set peer 203.0.113.10\n", " set pfs group14\n",
				" set security-association lifetime seconds 3600\n",
				" set ikev2-profile NEUTRINO-0b7c2f4e-9a1d-4c3e-8f5a-2d6b1e9c7a30\n match address NEUTRINO-0b7c2f4e-9a1d-4c3e-8f5a-2d6b1e9c7a30\n",
			},
			absent: []string{"crypto isakmp", "set isakmp-profile"},
		},
		{
			name: "ikev1", format: "cisco-ios", edit: func(c *agentv1.IPsecConnection) {
				v1(c)
				c.IKE.Phase1NegotiationMode, c.PeerID = "main", "198.51.100.1"
				c.IPsec.EncryptionAlgorithm, c.IPsec.AuthAlgorithm = "3des", "sha1"
			},
			want: []string{"crypto isakmp policy 10\n encryption aes 256\n hash sha\n authentication pre-share\n group 5\n lifetime 3600\n",
				" pre-shared-key address 203.0.113.10 key " + printablePSK + "\n", " match identity host gw.cloud.example\n",
				" self-identity address\n", " keepalive 30 retry 18\n", "esp-3des esp-sha-hmac\n", " set pfs group19\n",
				" permit ip 192.168.50.0 0.0.0.255 10.2.0.0 0.0.255.255\n", " set isakmp-profile NEUTRINO-"},
			absent: []string{"ikev2"},
		},
		{
			name: "gcm, ah-esp", format: "cisco-ios", edit: func(c *agentv1.IPsecConnection) {
				c.PSK = printablePSK
				c.IKE.EncryptionAlgorithm, c.IKE.AuthAlgorithm = "aes-256-gcm-16", "sha384"
				c.IPsec.TransformProtocol, c.IPsec.EncryptionAlgorithm, c.IPsec.AuthAlgorithm = "ah-esp", "aes-128-gcm-16", "sha512"
				c.DPD.Action = "disabled"
			},
			want:   []string{" encryption aes-gcm-256\n prf sha384\n", "transform-set NEUTRINO-0b7c2f4e-9a1d-4c3e-8f5a-2d6b1e9c7a30 ah-sha512-hmac esp-gcm 128\n"},
			absent: []string{"dpd", "integrity"},
		},
	} {
		if !slices.Contains(Formats(), tc.format) {
			continue
		}
		t.Run(tc.format+"/"+tc.name, func(t *testing.T) {
			c := conn()
			if tc.edit != nil {
				tc.edit(&c)
			}
			out, err := Render(tc.format, c)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range tc.want {
				if !strings.Contains(out, s) {
					t.Errorf("missing %q in:\n%s", s, out)
				}
			}
			for _, s := range tc.absent {
				if strings.Contains(out, s) {
					t.Errorf("unexpected %q in:\n%s", s, out)
				}
			}
		})
	}
}

// TestRejects: values a format cannot carry are UnsafeValueErrors, what
// a product cannot do is an UnsupportedError naming it.
func TestRejects(t *testing.T) {
	for _, tc := range []struct {
		formats []string // nil: every format
		edit    func(*agentv1.IPsecConnection)
		unsafe  string // the field, or "" for unsupported
		what    string // in the unsupported message
	}{
		{edit: func(c *agentv1.IPsecConnection) { c.ID = "../../etc" }, unsafe: "id"},
		{edit: func(c *agentv1.IPsecConnection) { c.PeerID = "a\nb" }, unsafe: "peer_id"},
		{edit: func(c *agentv1.IPsecConnection) { c.PeerID = "a b" }, unsafe: "peer_id"},
		{edit: func(c *agentv1.IPsecConnection) { c.PeerID = `a"b` }, unsafe: "peer_id"},
		{edit: func(c *agentv1.IPsecConnection) { c.PeerID = "a}b" }, unsafe: "peer_id"},
		{edit: func(c *agentv1.IPsecConnection) { c.PeerID = "a#b" }, unsafe: "peer_id"},
		{edit: func(c *agentv1.IPsecConnection) { c.PeerID = "" }, unsafe: "peer_id"},
		{edit: func(c *agentv1.IPsecConnection) { c.LocalID = "x;y" }, unsafe: "local_id"},
		{edit: func(c *agentv1.IPsecConnection) { c.PeerAddress = "1.2.3.4 5.6.7.8" }, unsafe: "peer_address"},
		{edit: func(c *agentv1.IPsecConnection) { c.PeerAddress = "a..b" }, unsafe: "peer_address"},
		{edit: func(c *agentv1.IPsecConnection) { c.PeerAddress = "fe80::1%eth0" }, unsafe: "peer_address"},
		{edit: func(c *agentv1.IPsecConnection) { c.LocalAddress = "gw.example" }, unsafe: "local address"},
		{edit: func(c *agentv1.IPsecConnection) { c.PeerCIDRs = []string{"10.0.0.0/8,0.0.0.0/0"} }, unsafe: "peer_cidrs"},
		{edit: func(c *agentv1.IPsecConnection) { c.LocalCIDRs = []string{"10.0.0.0"} }, unsafe: "local_cidrs"},
		{edit: func(c *agentv1.IPsecConnection) { c.LocalCIDRs = nil }, unsafe: "local_cidrs"},
		{formats: []string{"libreswan"}, edit: func(c *agentv1.IPsecConnection) { c.PeerID = "CN=x/O=y" }, unsafe: "peer_id"},
		{formats: []string{"libreswan"}, edit: func(c *agentv1.IPsecConnection) { c.IKE.PFS = "group2" }, what: "group2"},
		{formats: []string{"libreswan"}, edit: func(c *agentv1.IPsecConnection) { c.IPsec.PFS = "group27" }, what: "group27"},
		{formats: []string{"libreswan"}, edit: func(c *agentv1.IPsecConnection) {
			c.IKE.IKEVersion, c.IPsec.PFS = "v1", "group19"
		}, what: "group19 with IKEv1"},
		{formats: []string{"libreswan"}, edit: func(c *agentv1.IPsecConnection) { c.IKE.EncryptionAlgorithm = "aes-128-ccm-16" }, what: "aes-128-ccm-16"},
		{formats: []string{"libreswan"}, edit: func(c *agentv1.IPsecConnection) { c.IKE.AuthAlgorithm = "aes-cmac" }, what: "aes-cmac"},
		{formats: []string{"libreswan"}, edit: func(c *agentv1.IPsecConnection) {
			c.IKE.IKEVersion, c.IKE.EncryptionAlgorithm = "v1", "aes-256-gcm-16"
		}, what: "aes-256-gcm-16"},
		{formats: []string{"swanctl", "libreswan"}, edit: func(c *agentv1.IPsecConnection) { c.IPsec.TransformProtocol = "ah-esp" }, what: "ah-esp"},
		{formats: []string{"vyos", "routeros"}, edit: func(c *agentv1.IPsecConnection) { c.IPsec.TransformProtocol = "ah" }, what: "transform_protocol ah"},
		{formats: []string{"vyos", "routeros", "cisco-ios"}, edit: func(c *agentv1.IPsecConnection) { c.PSK = "a\nb" }, unsafe: "psk"},
		{formats: []string{"vyos", "routeros", "cisco-ios"}, edit: func(c *agentv1.IPsecConnection) { c.PSK = "caf\u00e9" }, unsafe: "psk"},
		{formats: []string{"vyos", "cisco-ios"}, edit: func(c *agentv1.IPsecConnection) { c.PSK = `a"b` }, unsafe: "psk"},
		{formats: []string{"vyos"}, edit: func(c *agentv1.IPsecConnection) { c.PSK = "it's" }, unsafe: "psk"},
		{formats: []string{"cisco-ios"}, edit: func(c *agentv1.IPsecConnection) { c.PSK = "a b" }, unsafe: "psk"},
		{formats: []string{"cisco-ios"}, edit: func(c *agentv1.IPsecConnection) { c.PSK = "why?" }, unsafe: "psk"},
		{formats: []string{"vyos", "routeros", "cisco-ios"}, edit: func(c *agentv1.IPsecConnection) { c.LocalID = "CN=x" }, unsafe: "local_id"},
		{formats: []string{"vyos"}, edit: func(c *agentv1.IPsecConnection) { c.IKE.LifetimeSeconds = 100000 }, what: "IKE lifetime"},
		{formats: []string{"routeros"}, edit: func(c *agentv1.IPsecConnection) { c.IKE.PFS = "group31" }, what: "group31"},
		{formats: []string{"routeros"}, edit: func(c *agentv1.IPsecConnection) { c.IKE.EncryptionAlgorithm = "aes-256-gcm-16" }, what: "aes-256-gcm-16"},
		{formats: []string{"routeros"}, edit: func(c *agentv1.IPsecConnection) { c.IPsec.EncryptionAlgorithm = "aes-256-gcm-8" }, what: "aes-256-gcm-8"},
		{formats: []string{"routeros", "cisco-ios"}, edit: func(c *agentv1.IPsecConnection) { c.IKE.AuthAlgorithm = "aes-xcbc" }, what: "aes-xcbc"},
		{formats: []string{"routeros"}, edit: func(c *agentv1.IPsecConnection) { c.IPsec.AuthAlgorithm = "sha384" }, what: "sha384"},
		{formats: []string{"cisco-ios"}, edit: func(c *agentv1.IPsecConnection) { c.IKE.PFS = "group17" }, what: "group17"},
		{formats: []string{"cisco-ios"}, edit: func(c *agentv1.IPsecConnection) { c.LocalCIDRs = []string{"2001:db8::/64"} }, what: "IPv6"},
		{formats: []string{"cisco-ios"}, edit: func(c *agentv1.IPsecConnection) { c.PeerID = "user@office.example.org" }, what: "user@office.example.org"},
		{formats: []string{"cisco-ios"}, edit: func(c *agentv1.IPsecConnection) {
			c.IKE.IKEVersion, c.IKE.Phase1NegotiationMode = "v1", "aggressive"
		}, what: "aggressive"},
		{formats: []string{"cisco-ios"}, edit: func(c *agentv1.IPsecConnection) { c.IKE.IKEVersion = "v1" }, what: "IKEv1 identity office.example.org"},
		{formats: []string{"cisco-ios"}, edit: func(c *agentv1.IPsecConnection) { c.IPsec.EncryptionAlgorithm = "aes-128-ctr" }, what: "aes-128-ctr"},
		{formats: []string{"cisco-ios"}, edit: func(c *agentv1.IPsecConnection) { c.DPD.Interval = 5 }, what: "dpd interval"},
	} {
		formats := tc.formats
		if formats == nil {
			formats = Formats()
		}
		for _, f := range formats {
			if !slices.Contains(Formats(), f) {
				continue
			}
			c := conn()
			c.PSK = printablePSK
			tc.edit(&c)
			out, err := Render(f, c)
			var unsafe *UnsafeValueError
			var unsupported *UnsupportedError
			switch {
			case err == nil:
				t.Errorf("%s: rendered:\n%s", f, out)
			case tc.unsafe != "":
				if !errors.As(err, &unsafe) || unsafe.Field != tc.unsafe {
					t.Errorf("%s: %v, want an unsafe %s", f, err, tc.unsafe)
				}
			case !errors.As(err, &unsupported) || !errors.Is(err, ErrUnsupported) ||
				!strings.Contains(err.Error(), tc.what) || unsupported.Why == "":
				t.Errorf("%s: %v, want unsupported %s", f, err, tc.what)
			}
		}
	}
}

// lineKey is what must not change in a line whatever the values: its
// indentation and first word, and the whole line when it opens a block.
func lineKey(format, l string) string {
	trimmed := strings.TrimLeft(l, " \t")
	indent := l[:len(l)-len(trimmed)]
	first, _, _ := strings.Cut(trimmed, " ")
	if format == "libreswan" {
		first, _, _ = strings.Cut(first, "=")
	}
	switch {
	case strings.HasSuffix(l, "{") || strings.HasPrefix(l, "conn ") || strings.HasPrefix(l, "/"):
		return l
	case format == "vyos" && first == "set":
		// The command path, up to its quoted value.
		path, _, _ := strings.Cut(l, "'")
		return path
	case format == "routeros" && first == "add":
		return strings.Join(rosNames(l), " ")
	}
	return indent + first
}

// rosNames returns the attribute names of a RouterOS "add" command,
// skipping double-quoted values (with their backslash escapes).
func rosNames(l string) []string {
	var names []string
	var tok strings.Builder
	quoted := false
	for i := 0; i < len(l); i++ {
		switch ch := l[i]; {
		case quoted && ch == '\\':
			i++
		case ch == '"':
			quoted = !quoted
		case quoted:
		case ch == ' ':
			name, _, _ := strings.Cut(tok.String(), "=")
			names = append(names, name)
			tok.Reset()
		default:
			tok.WriteByte(ch)
		}
	}
	name, _, _ := strings.Cut(tok.String(), "=")
	return append(names, name, fmt.Sprint("quoted=", quoted))
}

// FuzzRender: whatever a client put in identities, addresses, networks
// or the PSK, the output either is refused or has exactly the lines of a
// benign one, each with the same key: no value adds a line, a section,
// a command or a setting.
func FuzzRender(f *testing.F) {
	benign := func() agentv1.IPsecConnection {
		c := conn()
		c.PeerCIDRs = []string{"192.168.50.0/24"}
		c.PSK = printablePSK
		return c
	}
	want := map[string][]string{}
	for _, format := range Formats() {
		out, err := Render(format, benign())
		if err != nil {
			f.Fatal(err)
		}
		for _, l := range strings.Split(out, "\n") {
			want[format] = append(want[format], lineKey(format, l))
		}
	}
	for _, s := range []string{"a\nb", "a\rb", "x}\nsecrets {", "# comment", "@a b", `"quoted"`, "{", "a=b", "a;b",
		"10.0.0.0/8,1.2.3.4", "10.0.0.0/8 1.2.3.4", "", "a'b", "a\\", "x\x00y", "$(reboot)", "?", "a!b", "\u2028",
		"fe80::1", "2001:db8::/64", "office.example.org", "1.2.3.4"} {
		f.Add(s, s, s, s, s)
	}
	f.Fuzz(func(t *testing.T, peerID, localID, peer, cidr, psk string) {
		c := benign()
		c.PeerID, c.LocalID, c.PeerAddress, c.PeerCIDRs, c.PSK = peerID, localID, peer, []string{cidr}, agentv1.Secret(psk)
		for _, format := range Formats() {
			out, err := Render(format, c)
			if err != nil {
				continue
			}
			lines := strings.Split(out, "\n")
			if len(lines) != len(want[format]) {
				t.Fatalf("%s: %d lines, want %d:\n%s", format, len(lines), len(want[format]), out)
			}
			for i, l := range lines {
				if k := lineKey(format, l); k != want[format][i] {
					t.Fatalf("%s: line %d key %q, want %q:\n%s", format, i+1, k, want[format][i], out)
				}
				if strings.ContainsAny(l, "\r\x00\u2028\u2029\u0085") {
					t.Fatalf("%s: line %d has a control character: %q", format, i+1, l)
				}
			}
		}
	})
}

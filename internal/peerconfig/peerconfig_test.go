package peerconfig

import (
	"errors"
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
			name: "ikev1 aggressive", format: "libreswan", edit: v1,
			want: []string{"\tikev2=no\n", "\taggressive=yes\n", "\tike=aes256-sha1;modp1536\n",
				"\tphase2alg=aes_gcm_c128-null;dh19\n", "\tdpdaction=restart\n", "\trightid=@gw.cloud.example\n",
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
		{formats: []string{"libreswan"}, edit: func(c *agentv1.IPsecConnection) { c.IKE.EncryptionAlgorithm = "aes-128-ccm-16" }, what: "aes-128-ccm-16"},
		{formats: []string{"libreswan"}, edit: func(c *agentv1.IPsecConnection) { c.IKE.AuthAlgorithm = "aes-cmac" }, what: "aes-cmac"},
		{formats: []string{"libreswan"}, edit: func(c *agentv1.IPsecConnection) {
			c.IKE.IKEVersion, c.IKE.EncryptionAlgorithm = "v1", "aes-256-gcm-16"
		}, what: "aes-256-gcm-16"},
		{formats: []string{"swanctl", "libreswan"}, edit: func(c *agentv1.IPsecConnection) { c.IPsec.TransformProtocol = "ah-esp" }, what: "ah-esp"},
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
	if strings.HasSuffix(l, "{") || strings.HasPrefix(l, "conn ") {
		return l
	}
	return indent + first
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

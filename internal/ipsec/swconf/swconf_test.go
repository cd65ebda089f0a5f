package swconf

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/neutrino-net/neutrino/internal/ipsec"
	"github.com/strongswan/govici/vici"
)

// The section 4 enumerations, spelled out.
var (
	allEncryption = map[string]string{
		"3des": "3des", "aes-128": "aes128", "aes-192": "aes192", "aes-256": "aes256",
		"aes-128-ccm-8": "aes128ccm8", "aes-192-ccm-8": "aes192ccm8", "aes-256-ccm-8": "aes256ccm8",
		"aes-128-ccm-12": "aes128ccm12", "aes-192-ccm-12": "aes192ccm12", "aes-256-ccm-12": "aes256ccm12",
		"aes-128-ccm-16": "aes128ccm16", "aes-192-ccm-16": "aes192ccm16", "aes-256-ccm-16": "aes256ccm16",
		"aes-128-gcm-8": "aes128gcm8", "aes-192-gcm-8": "aes192gcm8", "aes-256-gcm-8": "aes256gcm8",
		"aes-128-gcm-12": "aes128gcm12", "aes-192-gcm-12": "aes192gcm12", "aes-256-gcm-12": "aes256gcm12",
		"aes-128-gcm-16": "aes128gcm16", "aes-192-gcm-16": "aes192gcm16", "aes-256-gcm-16": "aes256gcm16",
		"aes-128-ctr": "aes128ctr", "aes-192-ctr": "aes192ctr", "aes-256-ctr": "aes256ctr",
	}
	allAuth = map[string]string{
		"sha1": "sha1", "sha256": "sha256", "sha384": "sha384", "sha512": "sha512",
		"aes-xcbc": "aesxcbc", "aes-cmac": "aescmac",
	}
	allPFS = map[string]string{
		"group2": "modp1024", "group5": "modp1536", "group14": "modp2048", "group15": "modp3072",
		"group16": "modp4096", "group17": "modp6144", "group18": "modp8192",
		"group19": "ecp256", "group20": "ecp384", "group21": "ecp521",
		"group22": "modp1024s160", "group23": "modp2048s224", "group24": "modp2048s256",
		"group25": "ecp192", "group26": "ecp224", "group27": "ecp224bp", "group28": "ecp256bp",
		"group29": "ecp384bp", "group30": "ecp512bp", "group31": "curve25519",
	}
)

func TestEnumerationSizes(t *testing.T) {
	if len(allEncryption) != 25 || len(allAuth) != 6 || len(allPFS) != 20 {
		t.Fatalf("enumerations: %d encryption, %d auth, %d pfs; want 25, 6, 20", len(allEncryption), len(allAuth), len(allPFS))
	}
	if len(encryption) != len(allEncryption) || len(integrity) != len(allAuth) || len(dhGroup) != len(allPFS) {
		t.Fatal("the mapping tables have values outside the section 4 enumerations")
	}
}

func TestProposalEveryValue(t *testing.T) {
	for enc, e := range allEncryption {
		aead := strings.Contains(enc, "cm")
		for auth, a := range allAuth {
			for pfs, d := range allPFS {
				ike, err := Proposal(enc, auth, pfs, false)
				if err != nil || ike != e+"-"+a+"-"+d {
					t.Errorf("IKE %s/%s/%s = %q, %v; want %q", enc, auth, pfs, ike, err, e+"-"+a+"-"+d)
				}
				want := e + "-" + a + "-" + d
				if aead {
					want = e + "-" + d
				}
				esp, err := Proposal(enc, auth, pfs, true)
				if err != nil || esp != want {
					t.Errorf("ESP %s/%s/%s = %q, %v; want %q", enc, auth, pfs, esp, err, want)
				}
			}
		}
	}
	for auth, a := range allAuth {
		for pfs, d := range allPFS {
			if got, err := AHProposal(auth, pfs); err != nil || got != a+"-"+d {
				t.Errorf("AH %s/%s = %q, %v", auth, pfs, got, err)
			}
		}
	}
}

func TestProposalWorkedExamples(t *testing.T) {
	for _, tc := range []struct {
		enc, auth, pfs string
		esp            bool
		want           string
	}{
		{"aes-128", "sha1", "group5", false, "aes128-sha1-modp1536"},
		{"aes-128", "sha1", "group5", true, "aes128-sha1-modp1536"},
		{"aes-256-gcm-16", "sha1", "group14", true, "aes256gcm16-modp2048"},
		{"aes-256-gcm-16", "sha256", "group14", false, "aes256gcm16-sha256-modp2048"},
		{"aes-128-ccm-8", "sha256", "group19", true, "aes128ccm8-ecp256"},
		{"aes-192-ctr", "aes-xcbc", "group31", true, "aes192ctr-aesxcbc-curve25519"},
	} {
		got, err := Proposal(tc.enc, tc.auth, tc.pfs, tc.esp)
		if err != nil || got != tc.want {
			t.Errorf("Proposal(%q, %q, %q, %v) = %q, %v; want %q", tc.enc, tc.auth, tc.pfs, tc.esp, got, err, tc.want)
		}
	}
}

func TestProposalUnknownValues(t *testing.T) {
	for _, tc := range []struct{ enc, auth, pfs, bad string }{
		{"aes-512", "sha1", "group5", "aes-512"},
		{"AES-128", "sha1", "group5", "AES-128"},
		{"", "sha1", "group5", `""`},
		{"aes-128", "md5", "group5", "md5"},
		{"aes-128", "sha1", "group1", "group1"},
		{"aes-128", "sha1", "group13", "group13"},
		{"aes-128", "sha1", "modp2048", "modp2048"},   // no pass-through
		{"aes-256-gcm-16", "sha3", "group14", "sha3"}, // checked even when ESP drops it
	} {
		for _, esp := range []bool{false, true} {
			_, err := Proposal(tc.enc, tc.auth, tc.pfs, esp)
			if err == nil || !strings.Contains(err.Error(), tc.bad) {
				t.Errorf("Proposal(%q, %q, %q, %v): err %v, want one naming %s", tc.enc, tc.auth, tc.pfs, esp, err, tc.bad)
			}
		}
	}
	if _, err := AHProposal("md5", "group5"); err == nil {
		t.Error("AHProposal accepted md5")
	}
}

const psk = "s3cr3t-PSK-ä"

func example() ipsec.Connection {
	return ipsec.Connection{
		ID:           "851f9c2e-1111-2222-3333-444455556666",
		LocalAddress: "172.24.4.10",
		PeerAddress:  "172.24.4.233",
		LocalID:      "",
		PeerID:       "172.24.4.233",
		PSK:          psk,
		LocalCIDRs:   []string{"10.1.0.0/24", "10.2.0.0/24"},
		PeerCIDRs:    []string{"10.3.0.0/24"},
		IKE: ipsec.IKEPolicy{
			AuthAlgorithm: "sha1", EncryptionAlgorithm: "aes-128", Phase1NegotiationMode: "main",
			IKEVersion: "v1", PFS: "group5", LifetimeSeconds: 3600,
		},
		IPsec: ipsec.IPsecPolicy{
			TransformProtocol: "esp", AuthAlgorithm: "sha1", EncryptionAlgorithm: "aes-256-gcm-16",
			EncapsulationMode: "tunnel", PFS: "group14", LifetimeSeconds: 3600,
		},
		DPD:          ipsec.DPD{Action: "hold", Interval: 30, Timeout: 120},
		Initiator:    "bi-directional",
		AdminStateUp: true,
		MTU:          1500,
	}
}

// flatten turns a VICI message into dotted keys → string or []string.
func flatten(prefix string, m *vici.Message, out map[string]any) {
	for _, k := range m.Keys() {
		switch v := m.Get(k).(type) {
		case *vici.Message:
			flatten(prefix+k+".", v, out)
		default:
			out[prefix+k] = v
		}
	}
}

func TestMarshalFullExample(t *testing.T) {
	cfg, err := Conn(example())
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Up || cfg.Name != example().ID {
		t.Fatalf("Name %q Up %v", cfg.Name, cfg.Up)
	}
	msg, err := LoadConn(cfg)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]any{}
	flatten("", msg, got)
	c := example().ID + "."
	ch := c + "children." + example().ID + "."
	want := map[string]any{
		c + "version":        "1",
		c + "local_addrs":    []string{"172.24.4.10"},
		c + "remote_addrs":   []string{"172.24.4.233"},
		c + "proposals":      []string{"aes128-sha1-modp1536"},
		c + "aggressive":     "no",
		c + "mobike":         "no",
		c + "rekey_time":     "3420s",
		c + "over_time":      "180s",
		c + "dpd_delay":      "30s",
		c + "dpd_timeout":    "120s",
		c + "local.auth":     "psk",
		c + "local.id":       "172.24.4.10",
		c + "remote.auth":    "psk",
		c + "remote.id":      "172.24.4.233",
		ch + "local_ts":      []string{"10.1.0.0/24", "10.2.0.0/24"},
		ch + "remote_ts":     []string{"10.3.0.0/24"},
		ch + "esp_proposals": []string{"aes256gcm16-modp2048"},
		ch + "mode":          "tunnel",
		ch + "rekey_time":    "3420s",
		ch + "life_time":     "3600s",
		ch + "start_action":  "trap|start",
		ch + "dpd_action":    "trap",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("load-conn (-want +got):\n%s", d)
	}
	if strings.Contains(msg.String(), psk) {
		t.Error("load-conn carries the PSK")
	}

	sm, err := LoadShared(cfg)
	if err != nil {
		t.Fatal(err)
	}
	got = map[string]any{}
	flatten("", sm, got)
	want = map[string]any{
		"id":     "ike-" + example().ID,
		"type":   "IKE",
		"data":   psk, // raw, not 0s/base64: VICI takes the key itself
		"owners": []string{"172.24.4.10", "172.24.4.233"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("load-shared (-want +got):\n%s", d)
	}
}

func TestIdentities(t *testing.T) {
	for _, tc := range []struct {
		local, peer         string
		wantLocal, wantPeer string
	}{
		{"", "172.24.4.233", "172.24.4.10", "172.24.4.233"},
		{"vpn.example.org", "peer.example.org", "@vpn.example.org", "@peer.example.org"},
		{"2001:db8::1", "2001:db8::2", "2001:db8::1", "2001:db8::2"},
		{"10.0.0.1", "keyid-peer", "10.0.0.1", "@keyid-peer"},
	} {
		c := example()
		c.LocalID, c.PeerID = tc.local, tc.peer
		cfg, err := Conn(c)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Conn.Local.ID != tc.wantLocal || cfg.Conn.Remote.ID != tc.wantPeer {
			t.Errorf("ids %q/%q → %q/%q; want %q/%q", tc.local, tc.peer, cfg.Conn.Local.ID, cfg.Conn.Remote.ID, tc.wantLocal, tc.wantPeer)
		}
		if d := cmp.Diff([]string{tc.wantLocal, tc.wantPeer}, cfg.Shared.Owners); d != "" {
			t.Errorf("owners: %s", d)
		}
	}
}

func TestDPD(t *testing.T) {
	for _, tc := range []struct {
		action                  string
		delay, timeout, action2 string
	}{
		{"hold", "30s", "120s", "trap"},
		{"clear", "30s", "120s", "clear"},
		{"restart", "30s", "120s", "restart"},
		{"restart-by-peer", "30s", "120s", "restart"},
		{"disabled", "0s", "", ""},
	} {
		c := example()
		c.DPD.Action = tc.action
		cfg, err := Conn(c)
		if err != nil {
			t.Fatal(err)
		}
		child := cfg.Conn.Children[c.ID]
		if cfg.Conn.DPDDelay != tc.delay || cfg.Conn.DPDTimeout != tc.timeout || child.DPDAction != tc.action2 {
			t.Errorf("%s → delay %q timeout %q action %q; want %q %q %q", tc.action,
				cfg.Conn.DPDDelay, cfg.Conn.DPDTimeout, child.DPDAction, tc.delay, tc.timeout, tc.action2)
		}
	}
}

func TestLifetimes(t *testing.T) {
	for _, tc := range []struct {
		ike, ipsec                               int
		ikeRekey, ikeOver, childRekey, childLife string
	}{
		{3600, 3600, "3420s", "180s", "3420s", "3600s"},
		{28800, 1200, "28620s", "180s", "1020s", "1200s"},
		{360, 361, "180s", "180s", "181s", "361s"},
		{60, 100, "30s", "30s", "50s", "100s"},
	} {
		c := example()
		c.IKE.LifetimeSeconds, c.IPsec.LifetimeSeconds = tc.ike, tc.ipsec
		cfg, err := Conn(c)
		if err != nil {
			t.Fatal(err)
		}
		child := cfg.Conn.Children[c.ID]
		got := []string{cfg.Conn.RekeyTime, cfg.Conn.OverTime, child.RekeyTime, child.LifeTime}
		if d := cmp.Diff([]string{tc.ikeRekey, tc.ikeOver, tc.childRekey, tc.childLife}, got); d != "" {
			t.Errorf("lifetimes %d/%d: %s", tc.ike, tc.ipsec, d)
		}
	}
}

func TestInitiatorAndAdminState(t *testing.T) {
	for initiator, want := range map[string]string{"bi-directional": "trap|start", "response-only": "none"} {
		c := example()
		c.Initiator = initiator
		cfg, err := Conn(c)
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.Conn.Children[c.ID].StartAction; got != want {
			t.Errorf("%s → %q; want %q", initiator, got, want)
		}
	}
	c := example()
	c.AdminStateUp = false
	cfg, err := Conn(c)
	if err != nil || cfg.Up {
		t.Errorf("admin down: Up %v, err %v; want Up false", cfg.Up, err)
	}
}

func TestOtherMappings(t *testing.T) {
	c := example()
	c.IKE.IKEVersion, c.IKE.Phase1NegotiationMode = "v2", "aggressive"
	c.IPsec.TransformProtocol, c.IPsec.EncapsulationMode = "ah", "transport"
	cfg, err := Conn(c)
	if err != nil {
		t.Fatal(err)
	}
	child := cfg.Conn.Children[c.ID]
	if cfg.Conn.Version != 2 || !cfg.Conn.Aggressive || child.Mode != "transport" ||
		child.ESPProposals != nil || !cmp.Equal(child.AHProposals, []string{"sha1-modp2048"}) {
		t.Errorf("got %+v / %+v", cfg.Conn, child)
	}
	msg, err := LoadConn(cfg)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]any{}
	flatten("", msg, got)
	if _, ok := got[c.ID+".children."+c.ID+".esp_proposals"]; ok {
		t.Error("AH connection has esp_proposals")
	}
	if got[c.ID+".aggressive"] != "yes" || got[c.ID+".version"] != "2" {
		t.Errorf("aggressive %v version %v", got[c.ID+".aggressive"], got[c.ID+".version"])
	}
}

func TestConnErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		mut  func(*ipsec.Connection)
		want string
	}{
		"ah-esp":         {func(c *ipsec.Connection) { c.IPsec.TransformProtocol = "ah-esp" }, `"ah-esp"`},
		"ike version":    {func(c *ipsec.Connection) { c.IKE.IKEVersion = "v3" }, `"v3"`},
		"phase1":         {func(c *ipsec.Connection) { c.IKE.Phase1NegotiationMode = "quick" }, `"quick"`},
		"ike enc":        {func(c *ipsec.Connection) { c.IKE.EncryptionAlgorithm = "des" }, `ike policy: strongswan: unknown encryption_algorithm "des"`},
		"esp pfs":        {func(c *ipsec.Connection) { c.IPsec.PFS = "group1" }, `ipsec policy: strongswan: unknown pfs "group1"`},
		"ah auth":        {func(c *ipsec.Connection) { c.IPsec.TransformProtocol, c.IPsec.AuthAlgorithm = "ah", "md5" }, `"md5"`},
		"mode":           {func(c *ipsec.Connection) { c.IPsec.EncapsulationMode = "beet" }, `"beet"`},
		"dpd":            {func(c *ipsec.Connection) { c.DPD.Action = "none" }, `"none"`},
		"dpd negative":   {func(c *ipsec.Connection) { c.DPD.Interval = -1 }, "negative dpd"},
		"initiator":      {func(c *ipsec.Connection) { c.Initiator = "both" }, `"both"`},
		"ike lifetime":   {func(c *ipsec.Connection) { c.IKE.LifetimeSeconds = 59 }, "ike lifetime 59"},
		"ipsec lifetime": {func(c *ipsec.Connection) { c.IPsec.LifetimeSeconds = 0 }, "ipsec lifetime 0"},
		"no psk":         {func(c *ipsec.Connection) { c.PSK = "" }, "psk is empty"},
		"no peer id":     {func(c *ipsec.Connection) { c.PeerID = "" }, "peer id is empty"},
		"no cidrs":       {func(c *ipsec.Connection) { c.PeerCIDRs = nil }, "CIDRs"},
		"no local addr":  {func(c *ipsec.Connection) { c.LocalAddress = "" }, "local address"},
	} {
		c := example()
		tc.mut(&c)
		_, err := Conn(c)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v; want one containing %s", name, err, tc.want)
		}
	}
}

func TestPSKNeverPrints(t *testing.T) {
	cfg, err := Conn(example())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
		out = append(out, fmt.Sprintf(f, cfg), fmt.Sprintf(f, cfg.Shared), fmt.Sprintf(f, example()))
	}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("cfg", "config", cfg, "shared", cfg.Shared, "conn", example())
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("cfg", "config", cfg, "shared", cfg.Shared, "conn", example())
	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, buf.String(), string(js))
	for _, s := range out {
		if strings.Contains(s, psk) {
			t.Errorf("PSK printed in %s", s)
		}
	}
	if !strings.Contains(buf.String(), "***") {
		t.Error("redaction marker missing from the log")
	}
	// The marshaled message, by contrast, must carry it.
	sm, err := LoadShared(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if sm.Get("data") != psk {
		t.Errorf("load-shared data = %v", sm.Get("data"))
	}
}

// LoadConn and LoadShared are what package strongswan sends: the same
// marshalling, here for the tests of what it carries.
func LoadConn(c Config) (*vici.Message, error) {
	m := vici.NewMessage()
	if err := m.Set(c.Name, c.Conn); err != nil {
		return nil, err
	}
	return m, nil
}

func LoadShared(c Config) (*vici.Message, error) { return vici.MarshalMessage(c.Shared) }

package libreswan

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/neutrino-net/neutrino/internal/peerconfig"
	"github.com/neutrino-net/neutrino/internal/testenv"
)

// exportConn is a connection whose remote device (the pluto under test)
// has the address 198.51.100.1.
func exportConn() agentv1.IPsecConnection {
	return agentv1.IPsecConnection{
		ID: "0b7c2f4e-9a1d-4c3e-8f5a-2d6b1e9c7a30", LocalAddress: "198.51.100.2", PeerAddress: "198.51.100.1",
		PeerID: "office.example.org", PSK: `te"st' psk\n{}#`, LocalCIDRs: []string{"10.1.0.0/24"},
		PeerCIDRs: []string{"192.168.50.0/24"},
		IKE: agentv1.IKEPolicy{AuthAlgorithm: "sha256", EncryptionAlgorithm: "aes-128", Phase1NegotiationMode: "main",
			IKEVersion: "v2", PFS: "group14", LifetimeSeconds: 3600},
		IPsec: agentv1.IPsecPolicy{TransformProtocol: "esp", AuthAlgorithm: "sha256", EncryptionAlgorithm: "aes-256",
			EncapsulationMode: "tunnel", PFS: "group14", LifetimeSeconds: 3600},
		DPD: agentv1.DPD{Action: "hold", Interval: 30, Timeout: 120}, Initiator: "bi-directional", AdminStateUp: true,
	}
}

// TestExportLoads loads the libreswan peer-config export of every
// algorithm, group, IKE version, mode and DPD action the renderer accepts
// into a real pluto 4.10 with addconn: pluto must take each one as it
// is (no ESP needed: nothing is negotiated).
func TestExportLoads(t *testing.T) {
	root := testenv.RequireLibreswan(t)
	testenv.RequireKernel(t, testenv.Mounting)
	base := t.TempDir()
	nsA, hA := newNetns(t, base, "a")
	_, hB := newNetns(t, base, "b")
	wire(t, hA, hB)
	p := startPluto(t, root, filepath.Join(base, "a"), nsA)
	ctx := context.Background()

	var cases []func(*agentv1.IPsecConnection)
	for _, v := range []string{"v1", "v2"} {
		for _, enc := range []string{"3des", "aes-128", "aes-192", "aes-256", "aes-128-ctr", "aes-256-ctr",
			"aes-128-gcm-8", "aes-192-gcm-12", "aes-256-gcm-16", "aes-128-ccm-8", "aes-256-ccm-16"} {
			for _, auth := range []string{"sha1", "sha256", "sha384", "sha512", "aes-xcbc", "aes-cmac"} {
				cases = append(cases, func(c *agentv1.IPsecConnection) {
					c.IKE.IKEVersion, c.IKE.EncryptionAlgorithm, c.IKE.AuthAlgorithm = v, enc, auth
					c.IPsec.EncryptionAlgorithm, c.IPsec.AuthAlgorithm = enc, auth
				})
			}
		}
		for _, g := range []string{"group2", "group5", "group14", "group15", "group16", "group17", "group18",
			"group19", "group20", "group21", "group31"} {
			cases = append(cases, func(c *agentv1.IPsecConnection) {
				c.IKE.IKEVersion, c.IKE.PFS, c.IPsec.PFS = v, g, g
			})
		}
		for _, dpd := range []string{"hold", "clear", "restart", "restart-by-peer", "disabled"} {
			cases = append(cases, func(c *agentv1.IPsecConnection) { c.IKE.IKEVersion, c.DPD.Action = v, dpd })
		}
		cases = append(cases,
			func(c *agentv1.IPsecConnection) {
				c.IKE.IKEVersion, c.IPsec.TransformProtocol, c.IPsec.EncapsulationMode = v, "ah", "transport"
			},
			func(c *agentv1.IPsecConnection) {
				c.IKE.IKEVersion, c.LocalCIDRs, c.PeerCIDRs = v, []string{"10.1.0.0/24", "10.2.0.0/16"}, []string{"192.168.50.0/24", "192.168.51.0/24"}
				c.LocalID = "gw.cloud.example"
			},
		)
	}
	cases = append(cases, func(c *agentv1.IPsecConnection) {
		c.IKE.IKEVersion, c.IKE.Phase1NegotiationMode = "v1", "aggressive"
	})

	loaded, unsupported := 0, 0
	for i, edit := range cases {
		c := exportConn()
		edit(&c)
		what := strings.Join([]string{c.IKE.IKEVersion, c.IKE.Phase1NegotiationMode, c.IKE.EncryptionAlgorithm,
			c.IKE.AuthAlgorithm, c.IKE.PFS, c.IPsec.TransformProtocol, c.IPsec.EncapsulationMode, c.DPD.Action}, " ")
		out, err := peerconfig.Render("libreswan", c)
		var unsup *peerconfig.UnsupportedError
		if errors.As(err, &unsup) {
			unsupported++
			continue
		}
		if err != nil {
			t.Fatalf("case %d (%s): %v", i, what, err)
		}
		name, conf, secrets, err := SplitExport(out)
		if err != nil {
			t.Fatalf("case %d (%s): %v\n%s", i, what, err, out)
		}
		if err := p.Load(ctx, name, conf, secrets); err != nil {
			t.Errorf("case %d (%s): pluto rejects the export: %v\n%s", i, what, err, conf)
			continue
		}
		st, err := p.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(st, `"`+name) {
			t.Errorf("case %d (%s): loaded but not in the status:\n%s", i, what, st)
		}
		loaded++
	}
	t.Logf("%d exports loaded into pluto, %d refused by the renderer as unsupported", loaded, unsupported)
	if loaded == 0 || loaded+unsupported != len(cases) {
		t.Errorf("%d of %d exports loaded, %d unsupported", loaded, len(cases), unsupported)
	}
}

func TestSplitExport(t *testing.T) {
	out, err := peerconfig.Render("libreswan", exportConn())
	if err != nil {
		t.Fatal(err)
	}
	name, conf, secrets, err := SplitExport(out)
	if err != nil {
		t.Fatal(err)
	}
	if name != "neutrino-0b7c2f4e-9a1d-4c3e-8f5a-2d6b1e9c7a30" || !strings.Contains(conf, "conn "+name+"\n") ||
		strings.Contains(conf, "PSK") || !strings.Contains(secrets, ": PSK 0s") || strings.Contains(secrets, "conn ") {
		t.Fatalf("split %q:\n%s\n--\n%s", name, conf, secrets)
	}
	if _, _, _, err := SplitExport("conn x\n\tleft=1.2.3.4\n"); err == nil {
		t.Error("a conn without secrets part was accepted")
	}
}

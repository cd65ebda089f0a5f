package peerconfig

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/neutrino-net/neutrino/internal/testenv"
)

// TestSwanctlLoadsIntoCharon loads exports into a real, throw-away charon:
// its own network namespace (it touches no host interface or port), its
// own mount namespace with the temp dir bound on /run (its hard-coded
// /run/charon.pid cannot meet a host charon's), its own strongswan.conf
// and VICI socket in the temp dir.
func TestSwanctlLoadsIntoCharon(t *testing.T) {
	charon := testenv.RequireCharon(t)
	swanctl := testenv.RequireCommand(t, "swanctl", "strongswan-swanctl")
	unshare := testenv.RequireCommand(t, "unshare", "util-linux")
	dir := t.TempDir()
	socket := "unix://" + filepath.Join(dir, "charon.vici")
	conf := filepath.Join(dir, "strongswan.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`charon {
  install_routes = no
  plugins {
    vici {
      socket = %s
    }
  }
  filelog {
    log {
      path = %s
      default = 1
    }
  }
  syslog {
    daemon {
      default = -1
    }
  }
}
`, socket, filepath.Join(dir, "charon.log"))), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "STRONGSWAN_CONF="+conf)
	cmd := exec.Command(unshare, "--mount", "--net", "--propagation", "private", "--",
		"sh", "-c", `mount --bind "$0" /run && exec "$1"`, dir, charon)
	cmd.Env = env
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	swan := func(args ...string) (string, error) {
		c := exec.Command(swanctl, append(args, "--uri", socket)...)
		c.Env = env
		b, err := c.CombinedOutput()
		return string(b), err
	}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, err := swan("--stats"); err == nil {
			break
		}
		select {
		case err := <-done:
			log, _ := os.ReadFile(filepath.Join(dir, "charon.log"))
			t.Fatalf("charon exited: %v\n%s\n%s", err, out, log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("charon's VICI socket did not answer:\n%s", out)
		}
	}

	for name, edit := range map[string]func(*agentv1.IPsecConnection){
		"ikev2": func(*agentv1.IPsecConnection) {},
		"ikev1 aggressive, gcm, fqdn peer": func(c *agentv1.IPsecConnection) {
			c.IKE.IKEVersion, c.IKE.Phase1NegotiationMode, c.IKE.PFS = "v1", "aggressive", "group31"
			c.IPsec.EncryptionAlgorithm, c.IPsec.PFS = "aes-256-gcm-16", "group19"
			c.PeerAddress, c.LocalID, c.DPD.Action = "office.example.org", "user@cloud.example", "restart"
		},
		"ah, transport, ipv6, dpd off": func(c *agentv1.IPsecConnection) {
			c.IPsec.TransformProtocol, c.IPsec.AuthAlgorithm, c.IPsec.EncapsulationMode = "ah", "aes-xcbc", "transport"
			c.LocalAddress, c.PeerAddress, c.PeerID = "2001:db8::10", "2001:db8:1::1", "2001:db8:1::1"
			c.LocalCIDRs, c.PeerCIDRs = []string{"2001:db8:10::/64"}, []string{"2001:db8:50::/64"}
			c.DPD.Action = "disabled"
		},
	} {
		t.Run(name, func(t *testing.T) {
			c := conn()
			edit(&c)
			text, err := Render("swanctl", c)
			if err != nil {
				t.Fatal(err)
			}
			f := filepath.Join(dir, "export.conf")
			if err := os.WriteFile(f, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := swan("--load-all", "--clear", "--noprompt", "--file", f)
			if err != nil || !strings.Contains(out, "loaded connection 'neutrino-"+c.ID+"'") ||
				!strings.Contains(out, "loaded ike secret 'ike-neutrino-"+c.ID+"'") || failed(out) {
				t.Fatalf("swanctl --load-all: %v\n%s\n%s", err, out, text)
			}
			list, err := swan("--list-conns")
			if err != nil || !strings.Contains(list, "neutrino-"+c.ID+":") {
				t.Fatalf("swanctl --list-conns: %v\n%s", err, list)
			}
			t.Logf("%s", list)
		})
	}
}

// failed reports a swanctl failure other than its credential directories
// missing beside the file (--file makes them relative to it) and its own
// optional plugins missing.
func failed(out string) bool {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "fail") && !strings.HasPrefix(l, "opening directory ") &&
			!strings.HasPrefix(l, "plugin '") {
			return true
		}
	}
	return false
}

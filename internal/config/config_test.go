package config

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "neutrino.conf")
	os.WriteFile(file, []byte("# comment\nlisten = 127.0.0.1:1000\nauth = \"keystone\"\nkeystone_url = http://ks/v3\nlog_level = debug\n"), 0o600)
	c, err := Load("t", []string{"--config", file, "--log-level", "warn"}, env(map[string]string{"NEUTRINO_LISTEN": "127.0.0.1:2000"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:2000" || c.Auth != "keystone" || c.KeystoneURL != "http://ks/v3" || c.LogLevel != "warn" || c.PhysnetMTU != 1500 {
		t.Fatalf("config = %+v", c)
	}
	// NEUTRINO_CONFIG names the file too.
	c, err = Load("t", nil, env(map[string]string{"NEUTRINO_CONFIG": file}))
	if err != nil || c.Listen != "127.0.0.1:1000" {
		t.Fatalf("config via env = %+v, %v", c, err)
	}
}

func TestBusTLS(t *testing.T) {
	c, err := Load("t", []string{"--bus-tls-cert", "/etc/n/bus.pem", "--bus-tls-key", "/etc/n/bus.key"},
		env(map[string]string{"NEUTRINO_BUS_TLS_CA": "/etc/n/ca.pem"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.BusTLSCert != "/etc/n/bus.pem" || c.BusTLSKey != "/etc/n/bus.key" || c.BusTLSCA != "/etc/n/ca.pem" {
		t.Fatalf("config = %+v", c)
	}
}

func TestExampleRoundTrips(t *testing.T) {
	var b bytes.Buffer
	Example(&b)
	file := filepath.Join(t.TempDir(), "example.conf")
	os.WriteFile(file, b.Bytes(), 0o600)
	c, err := Load("t", []string{"--config", file}, env(nil))
	if err != nil {
		t.Fatalf("example does not load: %v\n%s", err, b.String())
	}
	def, _ := Load("t", nil, env(nil))
	if !reflect.DeepEqual(c, def) {
		t.Fatalf("example %+v differs from defaults %+v", c, def)
	}
	for _, o := range options {
		if !strings.Contains(b.String(), "\n"+o.key+" = ") || !strings.Contains(b.String(), EnvName(o.key)) {
			t.Errorf("example lacks %s", o.key)
		}
	}
}

func TestRejects(t *testing.T) {
	file := filepath.Join(t.TempDir(), "bad.conf")
	for _, tc := range []struct {
		args []string
		env  map[string]string
		file string
		want string
	}{
		{args: []string{"--auth", "magic"}, want: "must be one of noauth, keystone"},
		{args: []string{"--auth", "keystone"}, want: "needs keystone_url"},
		{env: map[string]string{"NEUTRINO_PHYSNET_MTU": "9"}, want: "NEUTRINO_PHYSNET_MTU"},
		{args: []string{"--mac-prefix", "zz:00:00"}, want: "MAC prefix"},
		{args: []string{"--nope"}, want: "flag provided but not defined"},
		{args: []string{"extra"}, want: "unexpected arguments"},
		{file: "listen 1\n", want: "expected key = value"},
		{file: "colour = blue\n", want: `unknown key "colour"`},
		{args: []string{"--service-provider", " , "}, want: "at least one provider"},
		{args: []string{"--bus-tls-cert", "c.pem"}, want: "bus_tls_cert and bus_tls_key go together"},
		{env: map[string]string{"NEUTRINO_BUS_TLS_KEY": "k.pem"}, want: "bus_tls_cert and bus_tls_key go together"},
		{args: []string{"--bus-tls-cert", "c.pem", "--bus-tls-key", "k.pem", "--bus", "nats://n:4222"}, want: "configure TLS in that cluster"},
	} {
		args := tc.args
		if tc.file != "" {
			os.WriteFile(file, []byte(tc.file), 0o600)
			args = []string{"--config", file}
		}
		_, err := Load("t", args, env(tc.env))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v %q: err = %v, want %q", tc.args, tc.env, tc.file, err, tc.want)
		}
	}
}

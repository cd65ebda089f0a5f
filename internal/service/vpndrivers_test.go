package service

import (
	"strings"
	"testing"
)

func TestProviders(t *testing.T) {
	kinds := DriverKinds(nil)
	p, err := NewProviders(DefaultServiceProviders, kinds)
	if err != nil {
		t.Fatal(err)
	}
	list := p.List()
	if len(list) != 2 || list[0].Name != "strongswan" || !list[0].Default || list[1].Default || list[1].Driver != "libreswan" {
		t.Fatalf("providers = %+v", list)
	}
	if def, _ := p.forFlavor(""); def.Name != "strongswan" {
		t.Fatalf("default = %+v", def)
	}
	if got, err := p.forFlavor(list[1].FlavorID); err != nil || got.Name != "libreswan" {
		t.Fatalf("libreswan flavor = %+v, %v", got, err)
	}
	if _, err := p.forFlavor("00000000-0000-0000-0000-000000000000"); err == nil || !strings.Contains(err.Error(), "could not be found") {
		t.Fatalf("unknown flavor: %v", err)
	}
	// Flavor ids are stable across restarts.
	again, _ := NewProviders(DefaultServiceProviders, kinds)
	if again.List()[1].FlavorID != list[1].FlavorID {
		t.Fatal("flavor ids change between registries")
	}
	one, err := NewProviders([]string{"VPN:edge:libreswan"}, kinds)
	if err != nil || !one.List()[0].Default {
		t.Fatalf("single provider = %+v, %v", one.List(), err)
	}
	for _, tc := range []struct {
		entries []string
		want    string
	}{
		{nil, "no VPN service provider"},
		{[]string{"VPN:x:openswan"}, `unknown driver "openswan" (known: libreswan, strongswan)`},
		{[]string{"FW:x:strongswan"}, "want VPN:<name>:<driver>[:default]"},
		{[]string{"VPN:x:strongswan:primary"}, "want VPN:<name>:<driver>[:default]"},
		{[]string{"VPN:x:strongswan", "VPN:x:libreswan"}, "configured twice"},
		{[]string{"VPN:a:strongswan:default", "VPN:b:libreswan:default"}, "more than one default"},
	} {
		if _, err := NewProviders(tc.entries, kinds); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want %q", tc.entries, err, tc.want)
		}
	}
}

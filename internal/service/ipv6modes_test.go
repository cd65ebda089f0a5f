package service

import (
	"errors"
	"strings"
	"testing"
)

// TestIPv6ModeRules: the reference's checks of ipv6_ra_mode and
// ipv6_address_mode at subnet creation.
func TestIPv6ModeRules(t *testing.T) {
	for _, tc := range []struct {
		cidr, ra, addr string
		dhcp           bool
		want           string // part of the message; "" = accepted
	}{
		{"2001:db8::/64", "slaac", "slaac", true, ""},
		{"2001:db8::/64", "dhcpv6-stateful", "", true, ""},
		{"2001:db8::/64", "slaac", "dhcpv6-stateful", true, "If both attributes are set, they must be the same value"},
		{"2001:db8::/64", "slaac", "slaac", false, "ipv6_ra_mode or ipv6_address_mode cannot be set when enable_dhcp is set to False"},
		{"2001:db8::/64", "", "", false, ""},
		{"2001:db8::/80", "slaac", "", true, "requires the prefix to be /64"},
		{"2001:db8::/80", "", "dhcpv6-stateless", true, "requires the prefix to be /64"},
		{"2001:db8::/80", "dhcpv6-stateful", "dhcpv6-stateful", true, ""},
		{"10.0.0.0/24", "slaac", "", true, "with ip_version set to '4' is not valid"},
	} {
		sn := subnetOf("s", tc.cidr, "")
		sn.IPv6RAMode, sn.IPv6AddressMode, sn.EnableDHCP = tc.ra, tc.addr, tc.dhcp
		err := checkSubnet(&sn)
		var e *Error
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v, want accepted", tc, err)
		case tc.want != "" && (!errors.As(err, &e) || e.Type != "InvalidInput" || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: %v, want InvalidInput %q", tc, err, tc.want)
		}
	}
}

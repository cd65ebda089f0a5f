package peerconfig

import (
	"encoding/base64"
	"fmt"
	"net/netip"
	"strings"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/neutrino-net/neutrino/internal/ipsec/swconf"
)

// swanctl renders a swanctl.conf for strongSwan 5.9: the same mapping
// Neutrino's own charon gets (swconf.Conn), mirrored. The PSK is
// written as 0s<base64>, which carries any bytes.
func swanctl(c agentv1.IPsecConnection) (string, error) {
	m := mirror(c)
	cfg, err := swconf.Conn(m)
	if err != nil {
		return "", fmt.Errorf("%w", err)
	}
	ike := cfg.Conn
	for _, v := range []struct{ field, value string }{
		{"peer_address", m.LocalAddress}, {"local address", m.PeerAddress},
	} {
		if !host.MatchString(v.value) {
			return "", &UnsafeValueError{v.field, v.value}
		}
	}
	for _, v := range []struct{ field, value string }{
		{"peer_id", ike.Local.ID}, {"local_id", ike.Remote.ID},
	} {
		if !identity.MatchString(v.value) {
			return "", &UnsafeValueError{v.field, v.value}
		}
	}
	child := ike.Children[c.ID]
	for _, ts := range append(append([]string{}, child.LocalTS...), child.RemoteTS...) {
		if _, err := netip.ParsePrefix(ts); err != nil {
			return "", &UnsafeValueError{"traffic selector", ts}
		}
	}
	name := "neutrino-" + c.ID
	var b strings.Builder
	w := func(indent int, format string, args ...any) {
		b.WriteString(strings.Repeat("    ", indent))
		fmt.Fprintf(&b, format, args...)
		b.WriteByte('\n')
	}
	w(0, "# swanctl.conf for the remote site of Neutrino IPsec site connection %s.", c.ID)
	w(0, "# It holds the pre-shared key: keep it private. Load it with swanctl --load-all.")
	w(0, "connections {")
	w(1, "%s {", name)
	w(2, "version = %d", ike.Version)
	w(2, "local_addrs = %s", strings.Join(ike.LocalAddrs, ","))
	w(2, "remote_addrs = %s", strings.Join(ike.RemoteAddrs, ","))
	w(2, "proposals = %s", strings.Join(ike.Proposals, ","))
	if ike.Aggressive {
		w(2, "aggressive = yes")
	}
	w(2, "rekey_time = %s", ike.RekeyTime)
	w(2, "over_time = %s", ike.OverTime)
	w(2, "dpd_delay = %s", ike.DPDDelay)
	if ike.Version == 1 && ike.DPDTimeout != "" {
		w(2, "dpd_timeout = %s", ike.DPDTimeout)
	}
	w(2, "local {")
	w(3, "auth = psk")
	w(3, "id = %s", ike.Local.ID)
	w(2, "}")
	w(2, "remote {")
	w(3, "auth = psk")
	w(3, "id = %s", ike.Remote.ID)
	w(2, "}")
	w(2, "children {")
	w(3, "%s {", name)
	w(4, "local_ts = %s", strings.Join(child.LocalTS, ","))
	w(4, "remote_ts = %s", strings.Join(child.RemoteTS, ","))
	if len(child.ESPProposals) > 0 {
		w(4, "esp_proposals = %s", strings.Join(child.ESPProposals, ","))
	}
	if len(child.AHProposals) > 0 {
		w(4, "ah_proposals = %s", strings.Join(child.AHProposals, ","))
	}
	w(4, "mode = %s", child.Mode)
	w(4, "rekey_time = %s", child.RekeyTime)
	w(4, "life_time = %s", child.LifeTime)
	w(4, "start_action = %s", child.StartAction)
	if child.DPDAction != "" {
		w(4, "dpd_action = %s", child.DPDAction)
	}
	w(3, "}")
	w(2, "}")
	w(1, "}")
	w(0, "}")
	w(0, "secrets {")
	w(1, "ike-%s {", name)
	w(2, "id-local = %s", ike.Local.ID)
	w(2, "id-remote = %s", ike.Remote.ID)
	w(2, "secret = 0s%s", base64.StdEncoding.EncodeToString([]byte(c.PSK)))
	w(1, "}")
	w(0, "}")
	return b.String(), nil
}

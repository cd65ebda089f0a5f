package agentv1

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestHostStateCarriesPSKOnlyInItsOwnEncoding(t *testing.T) {
	const psk = "pre-shared-Ω"
	conn := IPsecConnection{ID: "c1", PeerID: "peer", PSK: psk}
	st := HostState{Host: "h", Routers: []Router{{ID: "r1", VPNServices: []VPNService{{ID: "v1", Connections: []IPsecConnection{conn}}}}}}
	data, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var back HostState
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if got := back.Routers[0].VPNServices[0].Connections[0].PSK; got != psk {
		t.Fatalf("PSK after the round trip = %q, want %q", string(got), psk)
	}
	if back.Host != "h" || back.Routers[0].VPNServices[0].Connections[0].PeerID != "peer" {
		t.Fatalf("fields lost in the round trip: %+v", back)
	}
	// Everything but the host state's own encoding redacts.
	var b strings.Builder
	log := slog.New(slog.NewJSONHandler(&b, nil))
	log.Info("x", "conn", conn, "router", st.Routers[0], "psk", conn.PSK)
	c, _ := json.Marshal(conn)
	for _, out := range []string{b.String(), string(c), fmt.Sprintf("%v %+v %#v", conn, conn, conn)} {
		if strings.Contains(out, psk) {
			t.Errorf("PSK printed in %s", out)
		}
	}
}

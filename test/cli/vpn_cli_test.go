package cli_test

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestOpenstackVPNCLI drives every `openstack vpn ...` resource (IKE and
// IPsec policies, VPN services, endpoint groups, IPsec site connections)
// through create, show by name, list, set and delete against a real
// `neutrino up`. The vpn commands use neutronclient, not the SDK: names are
// found with ?id= / ?name= filters, and errors print the server's message
// and request id but not the HTTP status, so the status is read from the
// server's request log (see docs/dev/openstack-cli-wire.md).
func TestOpenstackVPNCLI(t *testing.T) {
	t.Parallel()
	c, srv := newCLI(t)

	// Topology (SDK commands) alongside the VPN objects that need none of it.
	var public, net1, r1, ike, ipsec, peerEPs map[string]any
	rs := c.parallel(
		js("network", "create", "--external", "public"),
		js("network", "create", "net1"),
		js("router", "create", "r1"),
		js("vpn", "ike", "policy", "create", "ike1"),
		js("vpn", "ipsec", "policy", "create", "ipsec1"),
		js("vpn", "endpoint", "group", "create", "--type", "cidr", "--value", "192.168.99.0/24", "peer-eps"),
	)
	c.decode(rs[0], &public)
	c.decode(rs[1], &net1)
	c.decode(rs[2], &r1)
	c.decode(rs[3], &ike)
	c.decode(rs[4], &ipsec)
	c.decode(rs[5], &peerEPs)
	r1ID := str(t, r1, "id")
	ikeID, ipsecID, peerEPsID := str(t, ike, "ID"), str(t, ipsec, "ID"), str(t, peerEPs, "ID")
	// The vpn commands print display names as keys ("Authentication
	// Algorithm"), except for the extra project_id column.
	wantFields(t, "vpn ike policy create ike1", ike, map[string]any{
		"Name": "ike1", "Description": "", "Authentication Algorithm": "sha1", "Encryption Algorithm": "aes-128",
		"Perfect Forward Secrecy (PFS)": "group5", "IKE Version": "v1", "Phase1 Negotiation Mode": "main",
	})
	wantLifetime(t, "vpn ike policy create ike1", ike)
	wantProject(t, "vpn ike policy create ike1", ike)
	wantFields(t, "vpn ipsec policy create ipsec1", ipsec, map[string]any{
		"Name": "ipsec1", "Description": "", "Transform Protocol": "esp", "Encapsulation Mode": "tunnel",
		"Authentication Algorithm": "sha1", "Encryption Algorithm": "aes-128", "Perfect Forward Secrecy (PFS)": "group5",
	})
	wantLifetime(t, "vpn ipsec policy create ipsec1", ipsec)
	wantProject(t, "vpn ipsec policy create ipsec1", ipsec)
	wantFields(t, "vpn endpoint group create peer-eps", peerEPs, map[string]any{"Name": "peer-eps", "Type": "cidr"})
	wantList(t, "vpn endpoint group create peer-eps: Endpoints", peerEPs["Endpoints"], "192.168.99.0/24")

	var sub1 map[string]any
	rs = c.parallel(
		js("subnet", "create", "--network", "public", "--subnet-range", "203.0.113.0/24", "public-sub"),
		js("subnet", "create", "--network", "net1", "--subnet-range", "10.1.0.0/24", "sub1"),
		[]string{"vpn", "ike", "policy", "set", "--description", "ike desc", "ike1"},
		[]string{"vpn", "ipsec", "policy", "set", "--description", "ipsec desc", "ipsec1"},
	)
	c.check(rs[0])
	c.decode(rs[1], &sub1)
	c.check(rs[2])
	c.check(rs[3])
	sub1ID := str(t, sub1, "id")

	var ikeShown, ipsecShown, localEPs map[string]any
	var ikes, ipsecs []map[string]any
	rs = c.parallel(
		[]string{"router", "set", "--external-gateway", "public", "r1"},
		js("vpn", "ike", "policy", "show", "ike1"),
		js("vpn", "ipsec", "policy", "show", "ipsec1"),
		js("vpn", "ike", "policy", "list"),
		js("vpn", "ipsec", "policy", "list"),
		js("vpn", "endpoint", "group", "create", "--type", "subnet", "--value", sub1ID, "local-eps"),
	)
	c.check(rs[0])
	c.decode(rs[1], &ikeShown)
	c.decode(rs[2], &ipsecShown)
	c.decode(rs[3], &ikes)
	c.decode(rs[4], &ipsecs)
	c.decode(rs[5], &localEPs)
	localEPsID := str(t, localEPs, "ID")
	wantFields(t, "vpn ike policy show ike1 (after set)", ikeShown, map[string]any{
		"ID": ikeID, "Name": "ike1", "Description": "ike desc", "Authentication Algorithm": "sha1",
		"Encryption Algorithm": "aes-128", "Perfect Forward Secrecy (PFS)": "group5", "IKE Version": "v1",
		"Phase1 Negotiation Mode": "main",
	})
	wantLifetime(t, "vpn ike policy show ike1", ikeShown)
	wantFields(t, "vpn ipsec policy show ipsec1 (after set)", ipsecShown, map[string]any{
		"ID": ipsecID, "Name": "ipsec1", "Description": "ipsec desc", "Transform Protocol": "esp",
		"Encapsulation Mode": "tunnel",
	})
	wantRow(t, "vpn ike policy list", ikes, map[string]any{
		"ID": ikeID, "Name": "ike1", "Authentication Algorithm": "sha1", "Encryption Algorithm": "aes-128",
		"IKE Version": "v1", "Perfect Forward Secrecy (PFS)": "group5",
	})
	wantRow(t, "vpn ipsec policy list", ipsecs, map[string]any{
		"ID": ipsecID, "Name": "ipsec1", "Transform Protocol": "esp", "Encapsulation Mode": "tunnel",
	})
	wantFields(t, "vpn endpoint group create local-eps", localEPs, map[string]any{"Name": "local-eps", "Type": "subnet"})
	wantList(t, "vpn endpoint group create local-eps: Endpoints", localEPs["Endpoints"], sub1ID)

	// vpn1 (endpoint-group mode) needs only the gateway; the legacy service
	// and the local endpoint group need sub1 on the router.
	var vpn1 map[string]any
	rs = c.parallel(
		[]string{"router", "add", "subnet", "r1", "sub1"},
		js("vpn", "service", "create", "--router", "r1", "vpn1"),
		[]string{"vpn", "endpoint", "group", "set", "--description", "epg desc", "local-eps"},
	)
	c.check(rs[0])
	c.decode(rs[1], &vpn1)
	c.check(rs[2])
	vpn1ID := str(t, vpn1, "ID")
	// Neutrino starts a service without connections DOWN (the reference
	// leaves it PENDING_CREATE, where it cannot be updated).
	wantFields(t, "vpn service create --router r1 vpn1", vpn1, map[string]any{
		"Name": "vpn1", "Router": r1ID, "Subnet": nil, "State": true, "Status": "DOWN",
	})
	wantProject(t, "vpn service create vpn1", vpn1)
	extIP, _ := vpn1["external_v4_ip"].(string)
	if _, shown := vpn1["external_v4_ip"]; shown && !in(extIP, "203.0.113.0/24") {
		t.Errorf("vpn service create vpn1: external_v4_ip = %#v, want an address from 203.0.113.0/24", vpn1["external_v4_ip"])
	}

	var legacy, conn1 map[string]any
	rs = c.parallel(
		js("vpn", "service", "create", "--router", "r1", "--subnet", "sub1", "vpn-legacy"),
		[]string{"vpn", "service", "set", "--description", "vpn desc", "vpn1"},
		js("vpn", "ipsec", "site", "connection", "create", "--vpnservice", "vpn1", "--ikepolicy", "ike1",
			"--ipsecpolicy", "ipsec1", "--peer-address", "198.51.100.7", "--peer-id", "198.51.100.7", "--psk", "secret",
			"--local-endpoint-group", "local-eps", "--peer-endpoint-group", "peer-eps", "conn1"),
	)
	c.decode(rs[0], &legacy)
	c.check(rs[1])
	c.decode(rs[2], &conn1)
	legacyID := str(t, legacy, "ID")
	wantFields(t, "vpn service create --subnet sub1 vpn-legacy", legacy, map[string]any{
		"Name": "vpn-legacy", "Router": r1ID, "Subnet": sub1ID, "State": true, "Status": "DOWN",
	})
	if extIP != "" {
		wantFields(t, "vpn service create vpn-legacy", legacy, map[string]any{"external_v4_ip": extIP})
	}
	conn1ID := str(t, conn1, "ID")
	wantFields(t, "vpn ipsec site connection create conn1", conn1, map[string]any{
		"Name": "conn1", "Status": "DOWN", "State": true, "VPN Service": vpn1ID,
		"IKE Policy": ikeID, "IPSec Policy": ipsecID, "Local Endpoint Group ID": localEPsID,
		"Peer Endpoint Group ID": peerEPsID, "Peer Address": "198.51.100.7", "Peer ID": "198.51.100.7",
		"Pre-shared Key": "secret", "MTU": float64(1500), "Initiator": "bi-directional", "Route Mode": "static",
		"Authentication Algorithm": "psk", "Local ID": "",
	})
	wantList(t, "vpn ipsec site connection create conn1: Peer CIDRs", conn1["Peer CIDRs"])
	wantDPD(t, "vpn ipsec site connection create conn1", conn1)
	wantProject(t, "vpn ipsec site connection create conn1", conn1)

	// The legacy connection sends "peer_cidrs" as a bare string.
	var connLegacy, vpnShown, epgShown, connShown map[string]any
	var services, groups []map[string]any
	rs = c.parallel(
		js("vpn", "ipsec", "site", "connection", "create", "--vpnservice", "vpn-legacy", "--ikepolicy", "ike1",
			"--ipsecpolicy", "ipsec1", "--peer-address", "198.51.100.8", "--peer-id", "198.51.100.8", "--psk", "secret2",
			"--peer-cidr", "192.168.98.0/24", "conn-legacy"),
		js("vpn", "service", "show", "vpn1"),
		js("vpn", "service", "list"),
		js("vpn", "endpoint", "group", "show", "local-eps"),
		js("vpn", "endpoint", "group", "list"),
		js("vpn", "ipsec", "site", "connection", "show", "conn1"),
	)
	c.decode(rs[0], &connLegacy)
	c.decode(rs[1], &vpnShown)
	c.decode(rs[2], &services)
	c.decode(rs[3], &epgShown)
	c.decode(rs[4], &groups)
	c.decode(rs[5], &connShown)
	connLegacyID := str(t, connLegacy, "ID")
	wantFields(t, "vpn ipsec site connection create conn-legacy", connLegacy, map[string]any{
		"Name": "conn-legacy", "Status": "DOWN", "VPN Service": legacyID, "Local Endpoint Group ID": nil,
		"Peer Endpoint Group ID": nil, "Pre-shared Key": "secret2", "MTU": float64(1500),
	})
	wantList(t, "vpn ipsec site connection create conn-legacy: Peer CIDRs", connLegacy["Peer CIDRs"], "192.168.98.0/24")
	wantFields(t, "vpn service show vpn1 (after set)", vpnShown, map[string]any{
		"ID": vpn1ID, "Name": "vpn1", "Description": "vpn desc", "Router": r1ID, "Subnet": nil,
	})
	// A service with a connection but no agent report stays DOWN; the
	// reference would still say PENDING_CREATE, and an agent could make it
	// ACTIVE, so only a status that allows updates is asserted here.
	if st := vpnShown["Status"]; st != "DOWN" && st != "ACTIVE" {
		t.Errorf("vpn service show vpn1: Status = %#v, want DOWN or ACTIVE", st)
	}
	wantRow(t, "vpn service list", services, map[string]any{"ID": vpn1ID, "Name": "vpn1", "Router": r1ID, "Subnet": nil})
	wantRow(t, "vpn service list", services, map[string]any{"ID": legacyID, "Name": "vpn-legacy", "Router": r1ID, "Subnet": sub1ID})
	wantFields(t, "vpn endpoint group show local-eps (after set)", epgShown, map[string]any{
		"ID": localEPsID, "Name": "local-eps", "Description": "epg desc", "Type": "subnet",
	})
	wantList(t, "vpn endpoint group show local-eps: Endpoints", epgShown["Endpoints"], sub1ID)
	wantRow(t, "vpn endpoint group list", groups, map[string]any{"ID": localEPsID, "Name": "local-eps", "Type": "subnet"})
	wantRow(t, "vpn endpoint group list", groups, map[string]any{"ID": peerEPsID, "Name": "peer-eps", "Type": "cidr"})
	wantFields(t, "vpn ipsec site connection show conn1", connShown, map[string]any{
		"ID": conn1ID, "Name": "conn1", "Status": "DOWN", "Pre-shared Key": "secret",
		"Local Endpoint Group ID": localEPsID, "Peer Endpoint Group ID": peerEPsID,
	})
	wantDPD(t, "vpn ipsec site connection show conn1", connShown)

	// What the references forbid, next to the connection list.
	var conns []map[string]any
	rs = c.parallel(
		[]string{"vpn", "ike", "policy", "delete", "ike1"},
		[]string{"vpn", "ike", "policy", "set", "--description", "again", "ike1"},
		[]string{"vpn", "endpoint", "group", "delete", "local-eps"},
		[]string{"router", "unset", "--external-gateway", "r1"},
		// No agent hosts r1 here, so the connection is DOWN (not the
		// reference's PENDING_CREATE, which refuses updates) and may change.
		[]string{"vpn", "ipsec", "site", "connection", "set", "--description", "x", "conn1"},
		js("vpn", "ipsec", "site", "connection", "list"),
	)
	wantAPIError(c, srv, rs[0], 409, "in use")
	wantAPIError(c, srv, rs[1], 409, "in use")
	wantAPIError(c, srv, rs[2], 400, "in use")
	wantAPIError(c, srv, rs[3], 409, "VPN service")
	c.check(rs[4])
	c.decode(rs[5], &conns)
	wantRow(t, "vpn ipsec site connection list", conns, map[string]any{
		"ID": conn1ID, "Name": "conn1", "Peer Address": "198.51.100.7", "Status": "DOWN",
	})
	wantRow(t, "vpn ipsec site connection list", conns, map[string]any{
		"ID": connLegacyID, "Name": "conn-legacy", "Peer Address": "198.51.100.8", "Status": "DOWN",
	})

	// Cleanup by name: connections, then everything they referenced; each
	// must be gone afterwards. The failed calls above changed nothing.
	// One delete may name several resources; neutronclient deletes them
	// one by one.
	rs = c.parallel(
		[]string{"vpn", "ipsec", "site", "connection", "delete", "conn1", "conn-legacy"},
		js("vpn", "ike", "policy", "show", "ike1"),
	)
	c.check(rs[0])
	c.decode(rs[1], &ikeShown)
	wantFields(t, "vpn ike policy show ike1 (after the refused set)", ikeShown, map[string]any{"Description": "ike desc"})

	rs = c.parallel(
		[]string{"vpn", "ipsec", "site", "connection", "show", "conn1"},
		[]string{"vpn", "ipsec", "site", "connection", "show", "conn-legacy"},
		[]string{"vpn", "service", "delete", "vpn1", "vpn-legacy"},
		[]string{"vpn", "endpoint", "group", "delete", "local-eps", "peer-eps"},
		[]string{"vpn", "ike", "policy", "delete", "ike1"},
		[]string{"vpn", "ipsec", "policy", "delete", "ipsec1"},
	)
	vpnGone(c, rs[0], "ipsec_site_connection", "conn1")
	vpnGone(c, rs[1], "ipsec_site_connection", "conn-legacy")
	for _, r := range rs[2:] {
		c.check(r)
	}

	// With no VPN service left, the router's gateway may go.
	rs = c.parallel(
		[]string{"vpn", "service", "show", "vpn1"},
		[]string{"vpn", "service", "show", "vpn-legacy"},
		[]string{"vpn", "endpoint", "group", "show", "local-eps"},
		[]string{"vpn", "endpoint", "group", "show", "peer-eps"},
		[]string{"vpn", "ike", "policy", "show", "ike1"},
		[]string{"vpn", "ipsec", "policy", "show", "ipsec1"},
		[]string{"router", "unset", "--external-gateway", "r1"},
	)
	vpnGone(c, rs[0], "vpnservice", "vpn1")
	vpnGone(c, rs[1], "vpnservice", "vpn-legacy")
	vpnGone(c, rs[2], "endpoint_group", "local-eps")
	vpnGone(c, rs[3], "endpoint_group", "peer-eps")
	vpnGone(c, rs[4], "ikepolicy", "ike1")
	vpnGone(c, rs[5], "ipsecpolicy", "ipsec1")
	c.check(rs[6])
}

// vpnGone asserts that r, an `openstack vpn <kind> show <name>`, failed
// with neutronclient's "Unable to find <resource> with name or id '<name>'".
func vpnGone(c *cli, r result, resource, name string) {
	c.t.Helper()
	c.failed(r)
	if want := fmt.Sprintf("Unable to find %s with name or id '%s'", resource, name); !strings.Contains(r.stdout+r.stderr, want) {
		c.t.Errorf("%s: output does not say %q:\n%s", r.cmd(), want, r)
	}
}

var (
	requestIDRe = regexp.MustCompile(`req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	// sdkStatusRe finds the status in an openstacksdk error
	// ("ConflictException: 409: Client Error ...").
	sdkStatusRe = regexp.MustCompile(`Exception: (\d{3})\b`)
)

// wantAPIError asserts that r failed because the server answered status,
// and that its output contains msg. neutronclient does not print the
// status, only the request id, which is looked up in the server's log.
func wantAPIError(c *cli, srv *server, r result, status int, msg string) {
	c.t.Helper()
	c.failed(r)
	out := r.stdout + r.stderr
	if !strings.Contains(strings.ToLower(out), strings.ToLower(msg)) {
		c.t.Errorf("%s: output does not mention %q:\n%s", r.cmd(), msg, r)
	}
	var got []int
	for _, m := range sdkStatusRe.FindAllStringSubmatch(out, -1) {
		n, _ := strconv.Atoi(m[1])
		got = append(got, n)
	}
	for _, id := range requestIDRe.FindAllString(out, -1) {
		got = append(got, loggedStatus(srv, id)...)
	}
	if !slices.Contains(got, status) {
		c.t.Errorf("%s: want HTTP %d, found %v in its output and the server log:\n%s", r.cmd(), status, got, r)
	}
}

// loggedStatus returns the statuses the server logged for a request id. The
// line is written as the response goes out, so it may lag a little.
func loggedStatus(srv *server, id string) []int {
	re := regexp.MustCompile(`request_id=` + regexp.QuoteMeta(id) + `\b.*\bstatus=(\d{3})\b`)
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		data, _ := os.ReadFile(srv.log)
		var out []int
		for _, m := range re.FindAllStringSubmatch(string(data), -1) {
			n, _ := strconv.Atoi(m[1])
			out = append(out, n)
		}
		if len(out) > 0 || time.Now().After(deadline) {
			return out
		}
	}
}

// wantRow asserts that a `-f json` list has a row with all of want.
func wantRow(t *testing.T, what string, rows []map[string]any, want map[string]any) {
	t.Helper()
	if !slices.ContainsFunc(rows, func(row map[string]any) bool {
		for k, v := range want {
			if got, ok := row[k]; !ok || got != v {
				return false
			}
		}
		return true
	}) {
		t.Errorf("%s: no row with %v in %v", what, want, rows)
	}
}

// wantProject asserts the "Project" column (tenant_id) is set and equals
// project_id.
func wantProject(t *testing.T, what string, obj map[string]any) {
	t.Helper()
	if p, _ := obj["Project"].(string); p == "" || p != obj["project_id"] {
		t.Errorf("%s: Project = %#v, project_id = %#v, want the same non-empty string", what, obj["Project"], obj["project_id"])
	}
}

// wantList asserts a list column holds exactly want, in any order. Older
// CLIs print lists as a Python repr string, so a string is accepted when
// it names every item (and is "[]" for an empty want).
func wantList(t *testing.T, what string, v any, want ...string) {
	t.Helper()
	switch v := v.(type) {
	case []any:
		got := make([]string, 0, len(v))
		for _, e := range v {
			s, _ := e.(string)
			got = append(got, s)
		}
		slices.Sort(got)
		if w := slices.Sorted(slices.Values(want)); slices.Equal(got, w) {
			return
		}
	case string:
		ok := len(want) > 0 || v == "[]" || v == ""
		for _, w := range want {
			ok = ok && strings.Contains(v, w)
		}
		if ok {
			return
		}
	}
	t.Errorf("%s = %#v, want %q", what, v, want)
}

// dictEntryRe reads "k='v'" and "'k': 'v'" entries of a dict the CLI
// printed as a string.
var dictEntryRe = regexp.MustCompile(`'?(\w+)'?\s*[:=]\s*'?([^',}]+)'?`)

// dict reads a dict column: a JSON object (osc >= 5.5) or its string form.
func dict(v any) map[string]string {
	out := map[string]string{}
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			out[k] = fmt.Sprint(e)
		}
	case string:
		for _, m := range dictEntryRe.FindAllStringSubmatch(v, -1) {
			out[m[1]] = strings.TrimSpace(m[2])
		}
	}
	return out
}

// wantLifetime asserts the default lifetime, 3600 seconds.
func wantLifetime(t *testing.T, what string, obj map[string]any) {
	t.Helper()
	if d := dict(obj["Lifetime"]); d["units"] != "seconds" || d["value"] != "3600" {
		t.Errorf("%s: Lifetime = %#v, want units seconds, value 3600", what, obj["Lifetime"])
	}
}

// wantDPD asserts the default dead peer detection, hold/30/120.
func wantDPD(t *testing.T, what string, obj map[string]any) {
	t.Helper()
	v, ok := obj["dpd"]
	if !ok {
		v = obj["DPD"]
	}
	if d := dict(v); d["action"] != "hold" || d["interval"] != "30" || d["timeout"] != "120" {
		t.Errorf("%s: dpd = %#v, want action hold, interval 30, timeout 120", what, v)
	}
}

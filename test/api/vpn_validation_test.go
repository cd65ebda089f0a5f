package api_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/vpnaas/endpointgroups"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/vpnaas/ipsecpolicies"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/vpnaas/siteconnections"
)

// vpnPSK is sent in every failing connection request; no error body may
// contain it.
const vpnPSK = "zq-Distinctive-PSK-4f1d9c"

// drop removes a key from a request body built by with.
type dropKey struct{}

var drop = dropKey{}

// with copies base and applies key/value pairs (drop deletes the key).
func with(base map[string]any, kv ...any) map[string]any {
	out := make(map[string]any, len(base)+len(kv)/2)
	for k, v := range base {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		k := kv[i].(string)
		if _, ok := kv[i+1].(dropKey); ok {
			delete(out, k)
		} else {
			out[k] = kv[i+1]
		}
	}
	return out
}

// vpnFixture is the state every validation case runs against.
type vpnFixture struct {
	tp                                      *vpnTopo
	subC, routerV4, routerNoGW              string // a router whose gateway has no IPv6 address, one with no gateway
	subB, routerB, ikeB, egPeerB            string // project B's
	ike, ikeFree, ipsec, ipsecFree, ipsecAH string
	svcLegacy, svcLegacy6, svcEG, svcV4     string
	egLocal, egLocal6, egLocalMixed, egOff  string
	egPeer, egPeer6, egPeerMixed, egNet     string
	connLegacy, connEG                      string
}

func newVPNFixture(t *testing.T, e *env) *vpnFixture {
	t.Helper()
	f := &vpnFixture{tp: newVPNTopo(t, e)}
	tp := f.tp
	ext4, _ := mkExternal(t, e, "public-v4", "198.51.100.0/24")
	_, f.subC = mkNet(t, e.a, "c", 4, "10.3.0.0/24")
	f.routerV4, _, _ = mkRouter(t, e.a, "v4-only", ext4, f.subC)
	f.routerNoGW, _, _ = mkRouter(t, e.a, "no-gateway", "")
	_, f.subB = mkNet(t, e.b, "b", 4, "10.9.0.0/24")
	f.routerB, _, _ = mkRouter(t, e.b, "b", tp.ext)
	f.ikeB = mkIKE(t, e.b, "ike-b")
	f.egPeerB = mkGroup(t, e.b, "peer-b", endpointgroups.TypeCIDR, "192.168.2.0/24")
	f.ike, f.ikeFree = mkIKE(t, e.a, "ike"), mkIKE(t, e.a, "ike-free")
	f.ipsec, f.ipsecFree = mkIPsec(t, e.a, "ipsec", ""), mkIPsec(t, e.a, "ipsec-free", "")
	f.ipsecAH = mkIPsec(t, e.a, "ah-esp", ipsecpolicies.TransformProtocolAHESP)
	f.svcLegacy = mkService(t, e.a, "legacy", tp.router, tp.sub).ID
	f.svcLegacy6 = mkService(t, e.a, "legacy6", tp.router, tp.sub6).ID
	f.svcEG = mkService(t, e.a, "eg", tp.router, "").ID
	f.svcV4 = mkService(t, e.a, "v4-gateway", f.routerV4, f.subC).ID
	f.egLocal = mkGroup(t, e.a, "local", endpointgroups.TypeSubnet, tp.sub)
	f.egLocal6 = mkGroup(t, e.a, "local6", endpointgroups.TypeSubnet, tp.sub6)
	f.egLocalMixed = mkGroup(t, e.a, "local-mixed", endpointgroups.TypeSubnet, tp.sub, tp.sub6)
	f.egOff = mkGroup(t, e.a, "off-router", endpointgroups.TypeSubnet, tp.subOff)
	f.egPeer = mkGroup(t, e.a, "peer", endpointgroups.TypeCIDR, "192.168.0.0/24")
	f.egPeer6 = mkGroup(t, e.a, "peer6", endpointgroups.TypeCIDR, "fd00:99::/64")
	f.egPeerMixed = mkGroup(t, e.a, "peer-mixed", endpointgroups.TypeCIDR, "192.168.1.0/24", "fd00:98::/64")
	f.egNet = mkGroup(t, e.a, "net", endpointgroups.TypeNetwork, "some-network")
	f.connLegacy = mkConn(t, e.a, legacyConn("legacy", f.svcLegacy, f.ike, f.ipsec)).ID
	f.connEG = mkConn(t, e.a, siteconnections.CreateOpts{Name: "eg", VPNServiceID: f.svcEG, IKEPolicyID: f.ike, IPSecPolicyID: f.ipsec,
		PeerAddress: "192.0.2.20", PeerID: "192.0.2.20", PSK: "secret", LocalEPGroupID: f.egLocal, PeerEPGroupID: f.egPeer}).ID
	return f
}

// vpnSnapshot is snapshot plus every VPN collection.
func vpnSnapshot(e *env) string {
	var b strings.Builder
	b.WriteString(snapshot(e))
	for _, p := range []string{ikePath, ipsecPath, svcPath, egPath, connPath, "/v2.0/quotas/" + projectA} {
		b.WriteString(p + "=" + e.do("GET", p, "", nil).raw)
	}
	return b.String()
}

// TestVPNValidationErrors sends every kind of bad VPN request and checks
// the reference's status, fault type and message, that no error echoes the
// PSK, and that nothing changed.
func TestVPNValidationErrors(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		f := newVPNFixture(t, e)
		tp := f.tp
		const missing = noSuchID
		env := func(key string, m map[string]any) map[string]any { return map[string]any{key: m} }
		ike := func(kv ...any) map[string]any { return env("ikepolicy", with(map[string]any{"name": "x"}, kv...)) }
		ipsec := func(kv ...any) map[string]any { return env("ipsecpolicy", with(map[string]any{"name": "x"}, kv...)) }
		svc := func(kv ...any) map[string]any {
			return env("vpnservice", with(map[string]any{"router_id": tp.router, "admin_state_up": true}, kv...))
		}
		eg := func(kv ...any) map[string]any {
			return env("endpoint_group", with(map[string]any{"name": "g", "type": "cidr", "endpoints": []any{"172.16.0.0/16"}}, kv...))
		}
		connBase := map[string]any{"ikepolicy_id": f.ike, "ipsecpolicy_id": f.ipsec, "peer_address": "192.0.2.10",
			"peer_id": "192.0.2.10", "psk": vpnPSK}
		// legacy is a valid legacy-mode connection on a v4 subnet but for kv.
		legacy := func(kv ...any) map[string]any {
			b := with(connBase, "vpnservice_id", f.svcLegacy, "peer_cidrs", []any{"192.168.50.0/24"})
			return env("ipsec_site_connection", with(b, kv...))
		}
		// egc is a valid endpoint-group-mode connection but for kv.
		egc := func(kv ...any) map[string]any {
			b := with(connBase, "vpnservice_id", f.svcEG, "local_ep_group_id", f.egLocal, "peer_ep_group_id", f.egPeer)
			return env("ipsec_site_connection", with(b, kv...))
		}
		// put is a connection PUT body that always carries the PSK.
		put := func(kv ...any) map[string]any {
			return env("ipsec_site_connection", with(map[string]any{"psk": vpnPSK}, kv...))
		}
		dpd := func(kv ...any) map[string]any { return with(nil, kv...) }
		life := func(kv ...any) map[string]any { return with(nil, kv...) }
		ikeURL, ipsecURL := ikePath+"/"+f.ikeFree, ipsecPath+"/"+f.ipsecFree
		connURL, connEGURL := connPath+"/"+f.connLegacy, connPath+"/"+f.connEG

		type tcase = faultCase
		var cases []tcase
		add := func(cs ...tcase) { cases = append(cases, cs...) }

		notFound := map[string]string{ikePath: "IKEPolicyNotFound", ipsecPath: "IPsecPolicyNotFound", svcPath: "VPNServiceNotFound",
			egPath: "VPNEndpointGroupNotFound", connPath: "IPsecSiteConnectionNotFound"}
		// §1 transport: envelopes, bulk, unknown and read-only attributes.
		for _, c := range []struct{ path, singular, plural string }{
			{ikePath, "ikepolicy", "ikepolicies"}, {ipsecPath, "ipsecpolicy", "ipsecpolicies"},
			{svcPath, "vpnservice", "vpnservices"}, {egPath, "endpoint_group", "endpoint_groups"},
			{connPath, "ipsec_site_connection", "ipsec_site_connections"},
		} {
			var one map[string]any
			switch c.singular {
			case "ikepolicy":
				one = ike()["ikepolicy"].(map[string]any)
			case "ipsecpolicy":
				one = ipsec()["ipsecpolicy"].(map[string]any)
			case "vpnservice":
				one = svc()["vpnservice"].(map[string]any)
			case "endpoint_group":
				one = eg()["endpoint_group"].(map[string]any)
			default:
				one = legacy()["ipsec_site_connection"].(map[string]any)
			}
			badDir := "is invalid value for sort_dirs"
			if c.path == egPath {
				badDir = "['id'] is invalid attribute for sort_keys" // keys are checked first
			}
			add(tcase{c.singular + " bulk", "POST", c.path, map[string]any{c.plural: []any{one, one}}, 400, "HTTPBadRequest", "Bulk operation not supported"},
				tcase{c.singular + " missing envelope", "POST", c.path, map[string]any{"x": one}, 400, "HTTPBadRequest", "Unable to find '" + c.singular + "' in request body"},
				tcase{c.singular + " empty body", "POST", c.path, "", 400, "HTTPBadRequest", "Resource body required"},
				tcase{c.singular + " unknown attribute", "POST", c.path, map[string]any{c.singular: with(one, "zzz", 1, "foo", 2)}, 400, "HTTPBadRequest", "Unrecognized attribute(s) 'foo, zzz'"},
				tcase{c.singular + " id in POST", "POST", c.path, map[string]any{c.singular: with(one, "id", missing)}, 400, "HTTPBadRequest", "Attribute 'id' not allowed in POST"},
				tcase{c.singular + " project mismatch", "POST", c.path, map[string]any{c.singular: with(one, "project_id", projectA, "tenant_id", projectB)}, 400, "HTTPBadRequest", "'project_id' and 'tenant_id' do not match"},
				tcase{c.singular + " other project", "POST", c.path, map[string]any{c.singular: with(one, "tenant_id", projectB)}, 400, "HTTPBadRequest", "requires admin or advsvc privileges"},
				tcase{c.singular + " name too long", "POST", c.path, map[string]any{c.singular: with(one, "name", strings.Repeat("n", 256))}, 400, "HTTPBadRequest", "exceeds maximum length of 255"},
				tcase{c.singular + " name not a string", "POST", c.path, map[string]any{c.singular: with(one, "name", 7)}, 400, "HTTPBadRequest", "Invalid input for name. Reason: '7' is not a valid string."},
				tcase{c.singular + " description too long", "POST", c.path, map[string]any{c.singular: with(one, "description", strings.Repeat("d", 256))}, 400, "HTTPBadRequest", "Invalid input for description"},
				tcase{c.singular + " missing id", "GET", c.path + "/" + missing, nil, 404, notFound[c.path], missing},
				tcase{c.singular + " non-uuid id", "GET", c.path + "/nope", nil, 404, notFound[c.path], "nope"},
				tcase{c.singular + " delete missing", "DELETE", c.path + "/" + missing, nil, 404, notFound[c.path], missing},
				tcase{c.singular + " PUT missing", "PUT", c.path + "/" + missing, map[string]any{c.singular: map[string]any{"name": "y"}}, 404, notFound[c.path], missing},
				tcase{c.singular + " PUT unknown attribute", "PUT", c.path + "/" + missing, map[string]any{c.singular: map[string]any{"peer_cidr": "10.0.0.0/8"}}, 400, "HTTPBadRequest", "Unrecognized attribute(s) 'peer_cidr'"},
				tcase{c.singular + " PUT id", "PUT", c.path + "/" + missing, map[string]any{c.singular: map[string]any{"id": missing}}, 400, "HTTPBadRequest", "Cannot update read-only attribute id"},
				tcase{c.singular + " PUT tenant_id", "PUT", c.path + "/" + missing, map[string]any{c.singular: map[string]any{"tenant_id": projectA}}, 400, "HTTPBadRequest", "Cannot update read-only attribute tenant_id"},
				tcase{c.singular + " bad sort dir", "GET", c.path + "?sort_key=id&sort_dir=up", nil, 400, "HTTPBadRequest", badDir},
				tcase{c.singular + " sort count", "GET", c.path + "?sort_key=id", nil, 400, "HTTPBadRequest", "The number of sort_keys and sort_dirs must be same"},
				tcase{c.singular + " bad limit", "GET", c.path + "?limit=-1", nil, 400, "HTTPBadRequest", "Limit must be an integer 0 or greater and not '-1'"},
			)
		}
		// The 404 types of the catalogue, with their messages.
		for i, c := range []struct{ path, typ, msg string }{
			{ikePath, "IKEPolicyNotFound", "IKEPolicy " + missing + " could not be found"},
			{ipsecPath, "IPsecPolicyNotFound", "IPsecPolicy " + missing + " could not be found"},
			{svcPath, "VPNServiceNotFound", "VPNService " + missing + " could not be found"},
			{egPath, "VPNEndpointGroupNotFound", "Endpoint group " + missing + " could not be found"},
			{connPath, "IPsecSiteConnectionNotFound", "ipsec_site_connection " + missing + " not found"},
		} {
			add(tcase{fmt.Sprintf("not found %d", i), "GET", c.path + "/" + missing, nil, 404, c.typ, c.msg},
				tcase{fmt.Sprintf("delete not found %d", i), "DELETE", c.path + "/" + missing, nil, 404, c.typ, c.msg})
		}
		// §3.1/§3.2/§4 policies: every enum with a bad value, lifetime rules.
		for _, a := range []string{"auth_algorithm", "encryption_algorithm", "phase1_negotiation_mode", "ike_version", "pfs"} {
			add(tcase{"ike bad " + a, "POST", ikePath, ike(a, "foo"), 400, "HTTPBadRequest", "Invalid input for " + a + ". Reason: foo is not in valid_values."},
				tcase{"ike PUT bad " + a, "PUT", ikeURL, ike(a, "foo"), 400, "HTTPBadRequest", "foo is not in valid_values"})
		}
		for _, a := range []string{"transform_protocol", "auth_algorithm", "encryption_algorithm", "encapsulation_mode", "pfs"} {
			add(tcase{"ipsec bad " + a, "POST", ipsecPath, ipsec(a, "foo"), 400, "HTTPBadRequest", "Invalid input for " + a + ". Reason: foo is not in valid_values."},
				tcase{"ipsec PUT bad " + a, "PUT", ipsecURL, ipsec(a, "foo"), 400, "HTTPBadRequest", "foo is not in valid_values"})
		}
		add(tcase{"pfs group1", "POST", ikePath, ike("pfs", "group1"), 400, "HTTPBadRequest", "group1 is not in valid_values"},
			tcase{"pfs group13", "POST", ikePath, ike("pfs", "group13"), 400, "HTTPBadRequest", "group13 is not in valid_values"},
			tcase{"pfs group32", "POST", ipsecPath, ipsec("pfs", "group32"), 400, "HTTPBadRequest", "group32 is not in valid_values"},
			tcase{"encryption case", "POST", ikePath, ike("encryption_algorithm", "AES-128"), 400, "HTTPBadRequest", "AES-128 is not in valid_values"},
			tcase{"auth md5", "POST", ipsecPath, ipsec("auth_algorithm", "md5"), 400, "HTTPBadRequest", "md5 is not in valid_values"},
			tcase{"enum not a string", "POST", ikePath, ike("ike_version", 2), 400, "HTTPBadRequest", "Invalid input for ike_version"},
			tcase{"enum null", "POST", ikePath, ike("pfs", nil), 400, "HTTPBadRequest", "Invalid input for pfs"},
		)
		for _, c := range []struct{ label, path, url string }{{"ike", ikePath, ikeURL}, {"ipsec", ipsecPath, ipsecURL}} {
			body := ike
			if c.path == ipsecPath {
				body = ipsec
			}
			add(tcase{c.label + " lifetime kilobytes", "POST", c.path, body("lifetime", life("units", "kilobytes", "value", 3600)), 400, "HTTPBadRequest", "Invalid input for lifetime. Reason: kilobytes is not in valid_values."},
				tcase{c.label + " lifetime bad units", "POST", c.path, body("lifetime", life("units", "foo")), 400, "HTTPBadRequest", "foo is not in valid_values"},
				tcase{c.label + " lifetime 59", "POST", c.path, body("lifetime", life("units", "seconds", "value", 59)), 400, "HTTPBadRequest", "Invalid input for lifetime"},
				tcase{c.label + " lifetime '59'", "POST", c.path, body("lifetime", life("value", "59")), 400, "HTTPBadRequest", "Invalid input for lifetime"},
				tcase{c.label + " lifetime 0", "POST", c.path, body("lifetime", life("value", 0)), 400, "HTTPBadRequest", "Invalid input for lifetime"},
				tcase{c.label + " lifetime negative", "POST", c.path, body("lifetime", life("value", -3600)), 400, "HTTPBadRequest", "Invalid input for lifetime"},
				tcase{c.label + " lifetime not an int", "POST", c.path, body("lifetime", life("value", "abc")), 400, "HTTPBadRequest", "Invalid input for lifetime. Reason: 'abc' is not an integer"},
				tcase{c.label + " lifetime unexpected key", "POST", c.path, body("lifetime", life("units", "seconds", "value", 100, "foo", 1)), 400, "HTTPBadRequest", "Invalid input for lifetime. Reason: Unexpected keys supplied: foo"},
				tcase{c.label + " lifetime not a dict", "POST", c.path, body("lifetime", 3600), 400, "HTTPBadRequest", "Invalid input for lifetime. Reason: '3600' is not a dictionary"},
				tcase{c.label + " lifetime a list", "POST", c.path, body("lifetime", []any{"seconds", 3600}), 400, "HTTPBadRequest", "is not a dictionary"},
				tcase{c.label + " PUT lifetime 59", "PUT", c.url, body("lifetime", life("value", 59)), 400, "HTTPBadRequest", "Invalid input for lifetime"},
				tcase{c.label + " PUT lifetime kilobytes", "PUT", c.url, body("lifetime", life("units", "kilobytes")), 400, "HTTPBadRequest", "kilobytes is not in valid_values"},
			)
		}
		// §3.1/§3.2/§5: policies in use refuse PUT (even of the name) and DELETE.
		add(tcase{"ike in use PUT name", "PUT", ikePath + "/" + f.ike, ike("name", "new"), 409, "IKEPolicyInUse", "IKEPolicy " + f.ike + " is in use by existing IPsecSiteConnection and can't be updated or deleted"},
			tcase{"ike in use PUT description", "PUT", ikePath + "/" + f.ike, env("ikepolicy", map[string]any{"description": "d"}), 409, "IKEPolicyInUse", f.ike},
			tcase{"ike in use DELETE", "DELETE", ikePath + "/" + f.ike, nil, 409, "IKEPolicyInUse", "IKEPolicy " + f.ike + " is in use"},
			tcase{"ipsec in use PUT name", "PUT", ipsecPath + "/" + f.ipsec, ipsec("name", "new"), 409, "IPsecPolicyInUse", "IPsecPolicy " + f.ipsec + " is in use by existing IPsecSiteConnection and can't be updated or deleted"},
			tcase{"ipsec in use DELETE", "DELETE", ipsecPath + "/" + f.ipsec, nil, 409, "IPsecPolicyInUse", f.ipsec},
			tcase{"ike in use PUT invalid", "PUT", ikePath + "/" + f.ike, ike("pfs", "foo"), 400, "HTTPBadRequest", "foo is not in valid_values"},
		)

		// §3.3 VPN services.
		add(tcase{"svc router_id missing", "POST", svcPath, svc("router_id", drop), 400, "HTTPBadRequest", "Failed to parse request. Required attribute 'router_id' not specified"},
			tcase{"svc router_id not uuid", "POST", svcPath, svc("router_id", "r1"), 400, "HTTPBadRequest", "Invalid input for router_id. Reason: 'r1' is not a valid UUID."},
			tcase{"svc router missing", "POST", svcPath, svc("router_id", missing), 404, "RouterNotFound", missing},
			tcase{"svc other project's router", "POST", svcPath, svc("router_id", f.routerB), 404, "RouterNotFound", f.routerB},
			tcase{"svc router without gateway", "POST", svcPath, svc("router_id", f.routerNoGW), 400, "RouterIsNotExternal", "Router " + f.routerNoGW + " has no external network gateway set"},
			tcase{"svc subnet not on router", "POST", svcPath, svc("subnet_id", tp.subOff), 400, "SubnetIsNotConnectedToRouter", "Subnet " + tp.subOff + " is not connected to Router " + tp.router},
			tcase{"svc subnet on another router", "POST", svcPath, svc("subnet_id", f.subC), 400, "SubnetIsNotConnectedToRouter", "Subnet " + f.subC + " is not connected to Router " + tp.router},
			tcase{"svc subnet missing", "POST", svcPath, svc("subnet_id", missing), 400, "SubnetIsNotConnectedToRouter", "Subnet " + missing + " is not connected to Router " + tp.router},
			tcase{"svc subnet not uuid", "POST", svcPath, svc("subnet_id", "s1"), 400, "HTTPBadRequest", "'s1' is not a valid UUID"},
			tcase{"svc admin_state_up null", "POST", svcPath, svc("admin_state_up", nil), 400, "HTTPBadRequest", "'None' cannot be converted to boolean"},
			tcase{"svc admin_state_up bad", "POST", svcPath, svc("admin_state_up", "maybe"), 400, "HTTPBadRequest", "'maybe' cannot be converted to boolean"},
			tcase{"svc flavor not uuid", "POST", svcPath, svc("flavor_id", "gold"), 400, "HTTPBadRequest", "'gold' is not a valid UUID"},
			tcase{"svc unknown flavor", "POST", svcPath, svc("flavor_id", missing), 404, "FlavorNotFound", missing},
			tcase{"svc status in POST", "POST", svcPath, svc("status", "ACTIVE"), 400, "HTTPBadRequest", "Attribute 'status' not allowed in POST"},
			tcase{"svc external_v4_ip in POST", "POST", svcPath, svc("external_v4_ip", "203.0.113.9"), 400, "HTTPBadRequest", "Attribute 'external_v4_ip' not allowed in POST"},
			tcase{"svc external_v6_ip in POST", "POST", svcPath, svc("external_v6_ip", "2001:db8::9"), 400, "HTTPBadRequest", "Attribute 'external_v6_ip' not allowed in POST"},
			tcase{"svc PUT admin_state_up null", "PUT", svcPath + "/" + f.svcEG, env("vpnservice", map[string]any{"admin_state_up": nil}), 400, "HTTPBadRequest", "'None' cannot be converted to boolean"},
			tcase{"svc in use DELETE", "DELETE", svcPath + "/" + f.svcLegacy, nil, 409, "VPNServiceInUse", "VPNService " + f.svcLegacy + " is still in use"},
		)
		for _, a := range []struct {
			name string
			v    any
		}{{"router_id", f.routerV4}, {"subnet_id", tp.sub}, {"status", "ACTIVE"}, {"flavor_id", missing}, {"external_v4_ip", "203.0.113.9"}, {"external_v6_ip", "2001:db8::9"}} {
			add(tcase{"svc PUT " + a.name, "PUT", svcPath + "/" + f.svcEG, env("vpnservice", map[string]any{a.name: a.v}), 400, "HTTPBadRequest", "Cannot update read-only attribute " + a.name})
		}

		// §3.4 endpoint groups.
		add(tcase{"eg type missing", "POST", egPath, eg("type", drop), 400, "HTTPBadRequest", "Failed to parse request. Required attribute 'type' not specified"},
			tcase{"eg bad type", "POST", egPath, eg("type", "foo"), 400, "HTTPBadRequest", "Invalid input for type. Reason: foo is not in valid_values."},
			tcase{"eg no endpoints", "POST", egPath, eg("name", "empty", "endpoints", drop), 400, "MissingEndpointForEndpointGroup", "No endpoints specified for endpoint group 'empty'"},
			tcase{"eg empty endpoints", "POST", egPath, eg("name", "empty", "endpoints", []any{}), 400, "MissingEndpointForEndpointGroup", "No endpoints specified for endpoint group 'empty'"},
			tcase{"eg null endpoints", "POST", egPath, eg("type", "subnet", "endpoints", nil), 400, "MissingEndpointForEndpointGroup", "No endpoints specified for endpoint group"},
			tcase{"eg duplicate cidr", "POST", egPath, eg("endpoints", []any{"10.0.0.0/24", "10.0.0.0/24"}), 400, "InvalidEndpointInEndpointGroup", "Endpoint '10.0.0.0/24' is invalid for group type 'cidr': Endpoints have to be unique"},
			tcase{"eg duplicate subnet", "POST", egPath, eg("type", "subnet", "endpoints", []any{tp.sub, tp.sub}), 400, "InvalidEndpointInEndpointGroup", "Endpoint '" + tp.sub + "' is invalid for group type 'subnet': Endpoints have to be unique"},
			tcase{"eg cidr short form", "POST", egPath, eg("endpoints", []any{"10.0.0/24"}), 400, "InvalidEndpointInEndpointGroup", "Endpoint '10.0.0/24' is invalid for group type 'cidr': Invalid CIDR"},
			tcase{"eg cidr v6 address", "POST", egPath, eg("endpoints", []any{"2000::1"}), 400, "InvalidEndpointInEndpointGroup", "Endpoint '2000::1' is invalid for group type 'cidr': Invalid CIDR"},
			tcase{"eg cidr v4 address", "POST", egPath, eg("endpoints", []any{"10.0.0.1"}), 400, "InvalidEndpointInEndpointGroup", "Endpoint '10.0.0.1' is invalid for group type 'cidr': Invalid CIDR"},
			tcase{"eg cidr leading zero", "POST", egPath, eg("endpoints", []any{"010.0.0.0/24"}), 400, "InvalidEndpointInEndpointGroup", "Endpoint '010.0.0.0/24' is invalid for group type 'cidr': Invalid CIDR"},
			tcase{"eg cidr prefix too long", "POST", egPath, eg("endpoints", []any{"10.0.0.0/33"}), 400, "InvalidEndpointInEndpointGroup", "Invalid CIDR"},
			tcase{"eg cidr whitespace", "POST", egPath, eg("endpoints", []any{" 10.0.0.0/24"}), 400, "InvalidEndpointInEndpointGroup", "Invalid CIDR"},
			tcase{"eg cidr garbage", "POST", egPath, eg("endpoints", []any{"192.168.0.0/24", "nope"}), 400, "InvalidEndpointInEndpointGroup", "Endpoint 'nope' is invalid for group type 'cidr': Invalid CIDR"},
			tcase{"eg cidr bare string", "POST", egPath, eg("endpoints", "2000::1"), 400, "InvalidEndpointInEndpointGroup", "Endpoint '2000::1' is invalid for group type 'cidr': Invalid CIDR"},
			tcase{"eg subnet not uuid", "POST", egPath, eg("type", "subnet", "endpoints", []any{"not-a-uuid"}), 400, "InvalidEndpointInEndpointGroup", "Endpoint 'not-a-uuid' is invalid for group type 'subnet': Invalid UUID"},
			tcase{"eg subnet cidr", "POST", egPath, eg("type", "subnet", "endpoints", []any{"10.0.0.0/24"}), 400, "InvalidEndpointInEndpointGroup", "Endpoint '10.0.0.0/24' is invalid for group type 'subnet': Invalid UUID"},
			tcase{"eg subnet missing", "POST", egPath, eg("type", "subnet", "endpoints", []any{tp.sub, missing}), 400, "NonExistingSubnetInEndpointGroup", "Subnet " + missing + " in endpoint group does not exist"},
			tcase{"eg other project's subnet", "POST", egPath, eg("type", "subnet", "endpoints", f.subB), 400, "NonExistingSubnetInEndpointGroup", "Subnet " + f.subB + " in endpoint group does not exist"},
			tcase{"eg endpoint not a string", "POST", egPath, eg("type", "vlan", "endpoints", []any{100}), 400, "HTTPBadRequest", "Invalid input for endpoints"},
			tcase{"eg opaque endpoint too long", "POST", egPath, eg("type", "network", "endpoints", []any{strings.Repeat("n", 256)}), 400, "HTTPBadRequest", "exceeds maximum length of 255"},
			tcase{"eg PUT type", "PUT", egPath + "/" + f.egPeer, env("endpoint_group", map[string]any{"type": "cidr"}), 400, "HTTPBadRequest", "Cannot update read-only attribute type"},
			tcase{"eg PUT endpoints", "PUT", egPath + "/" + f.egPeer, env("endpoint_group", map[string]any{"endpoints": []any{"10.0.0.0/8"}}), 400, "HTTPBadRequest", "Cannot update read-only attribute endpoints"},
			tcase{"eg in use DELETE local", "DELETE", egPath + "/" + f.egLocal, nil, 400, "EndpointGroupInUse", "Endpoint group " + f.egLocal + " is in use and cannot be deleted"},
			tcase{"eg in use DELETE peer", "DELETE", egPath + "/" + f.egPeer, nil, 400, "EndpointGroupInUse", "Endpoint group " + f.egPeer + " is in use and cannot be deleted"},
			tcase{"eg sort", "GET", egPath + "?sort_key=name&sort_dir=asc", nil, 400, "HTTPBadRequest", "['name'] is invalid attribute for sort_keys"},
		)

		// §3.5 connections: required and read-only attributes.
		for _, a := range []string{"vpnservice_id", "ikepolicy_id", "ipsecpolicy_id", "peer_address", "peer_id", "psk"} {
			add(tcase{"conn " + a + " missing", "POST", connPath, legacy(a, drop), 400, "HTTPBadRequest", "Failed to parse request. Required attribute '" + a + "' not specified"})
		}
		for _, a := range []struct {
			name string
			v    any
		}{{"route_mode", "static"}, {"auth_mode", "psk"}, {"status", "ACTIVE"}, {"status_reason", "AUTHENTICATION_FAILED"}} {
			add(tcase{"conn " + a.name + " in POST", "POST", connPath, legacy(a.name, a.v), 400, "HTTPBadRequest", "Attribute '" + a.name + "' not allowed in POST"},
				tcase{"conn PUT " + a.name, "PUT", connURL, put(a.name, a.v), 400, "HTTPBadRequest", "Cannot update read-only attribute " + a.name})
		}
		for _, a := range []struct{ name, v string }{{"vpnservice_id", f.svcLegacy}, {"ikepolicy_id", f.ikeFree}, {"ipsecpolicy_id", f.ipsecFree}} {
			add(tcase{"conn PUT " + a.name, "PUT", connURL, put(a.name, a.v), 400, "HTTPBadRequest", "Cannot update read-only attribute " + a.name})
		}
		add(tcase{"conn peer_cidr singular", "POST", connPath, legacy("peer_cidr", "192.168.1.0/24"), 400, "HTTPBadRequest", "Unrecognized attribute(s) 'peer_cidr'"},
			tcase{"conn vpnservice_id not uuid", "POST", connPath, legacy("vpnservice_id", "svc"), 400, "HTTPBadRequest", "Invalid input for vpnservice_id. Reason: 'svc' is not a valid UUID."},
			tcase{"conn ikepolicy_id not uuid", "POST", connPath, legacy("ikepolicy_id", "ike"), 400, "HTTPBadRequest", "'ike' is not a valid UUID"},
			tcase{"conn local_ep_group_id not uuid", "POST", connPath, egc("local_ep_group_id", "local"), 400, "HTTPBadRequest", "'local' is not a valid UUID"},
			tcase{"conn admin_state_up null", "POST", connPath, legacy("admin_state_up", nil), 400, "HTTPBadRequest", "'None' cannot be converted to boolean"},
			tcase{"conn PUT admin_state_up null", "PUT", connURL, put("admin_state_up", nil), 400, "HTTPBadRequest", "'None' cannot be converted to boolean"},
			tcase{"conn bad initiator", "POST", connPath, legacy("initiator", "foo"), 400, "HTTPBadRequest", "Invalid input for initiator. Reason: foo is not in valid_values."},
			tcase{"conn PUT bad initiator", "PUT", connURL, put("initiator", "foo"), 400, "HTTPBadRequest", "foo is not in valid_values"},
			tcase{"conn peer_id not a string", "POST", connPath, legacy("peer_id", 5), 400, "HTTPBadRequest", "Invalid input for peer_id"},
			tcase{"conn psk not a string", "POST", connPath, legacy("psk", []any{vpnPSK}), 400, "HTTPBadRequest", "Invalid input for psk"},
			tcase{"conn psk too long", "POST", connPath, legacy("psk", strings.Repeat(vpnPSK, 11)), 400, "HTTPBadRequest", "Invalid input for psk"},
			tcase{"conn PUT psk not a string", "PUT", connURL, put("psk", map[string]any{"psk": vpnPSK}), 400, "HTTPBadRequest", "Invalid input for psk"},
		)
		// dpd.
		add(tcase{"conn dpd not a dict", "POST", connPath, legacy("dpd", 59), 400, "HTTPBadRequest", "Invalid input for dpd. Reason: '59' is not a dictionary"},
			tcase{"conn dpd bad action", "POST", connPath, legacy("dpd", dpd("action", "foo")), 400, "HTTPBadRequest", "Invalid input for dpd. Reason: foo is not in valid_values."},
			tcase{"conn dpd negative interval", "POST", connPath, legacy("dpd", dpd("interval", -1)), 400, "HTTPBadRequest", "Invalid input for dpd"},
			tcase{"conn dpd negative timeout", "POST", connPath, legacy("dpd", dpd("timeout", -5)), 400, "HTTPBadRequest", "Invalid input for dpd"},
			tcase{"conn dpd interval not an int", "POST", connPath, legacy("dpd", dpd("interval", "abc")), 400, "HTTPBadRequest", "Invalid input for dpd. Reason: 'abc' is not an integer"},
			tcase{"conn dpd unexpected key", "POST", connPath, legacy("dpd", dpd("action", "hold", "retries", 3)), 400, "HTTPBadRequest", "Invalid input for dpd. Reason: Unexpected keys supplied: retries"},
			tcase{"conn dpd timeout == interval", "POST", connPath, legacy("dpd", dpd("interval", 30, "timeout", 30)), 400, "IPsecSiteConnectionDpdIntervalValueError", "ipsec_site_connection dpd_timeout is equal to or less than dpd_interval"},
			tcase{"conn dpd timeout < interval", "POST", connPath, legacy("dpd", dpd("interval", 60, "timeout", 10)), 400, "IPsecSiteConnectionDpdIntervalValueError", "dpd_timeout is equal to or less than dpd_interval"},
			tcase{"conn dpd timeout < default interval", "POST", connPath, legacy("dpd", dpd("timeout", 20)), 400, "IPsecSiteConnectionDpdIntervalValueError", "dpd_timeout is equal to or less than dpd_interval"},
			tcase{"conn dpd interval > default timeout", "POST", connPath, legacy("dpd", dpd("interval", 200)), 400, "IPsecSiteConnectionDpdIntervalValueError", "dpd_timeout is equal to or less than dpd_interval"},
			tcase{"conn PUT dpd interval = stored timeout", "PUT", connURL, put("dpd", dpd("interval", 120)), 400, "IPsecSiteConnectionDpdIntervalValueError", "dpd_timeout is equal to or less than dpd_interval"},
			tcase{"conn PUT dpd not a dict", "PUT", connURL, put("dpd", "hold"), 400, "HTTPBadRequest", "'hold' is not a dictionary"},
		)
		// mtu.
		add(tcase{"conn mtu 67 v4", "POST", connPath, legacy("mtu", 67), 400, "IPsecSiteConnectionMtuError", "ipsec_site_connection MTU 67 is too small for ipv4"},
			tcase{"conn mtu 67 v4 endpoint groups", "POST", connPath, egc("mtu", 67), 400, "IPsecSiteConnectionMtuError", "ipsec_site_connection MTU 67 is too small for ipv4"},
			tcase{"conn mtu 1279 v6", "POST", connPath, legacy("vpnservice_id", f.svcLegacy6, "peer_cidrs", []any{"fd00:50::/64"}, "mtu", 1279), 400, "IPsecSiteConnectionMtuError", "ipsec_site_connection MTU 1279 is too small for ipv6"},
			tcase{"conn mtu 1279 v6 endpoint groups", "POST", connPath, egc("local_ep_group_id", f.egLocal6, "peer_ep_group_id", f.egPeer6, "mtu", 1279), 400, "IPsecSiteConnectionMtuError", "MTU 1279 is too small for ipv6"},
			tcase{"conn mtu negative", "POST", connPath, legacy("mtu", -1), 400, "HTTPBadRequest", "Invalid input for mtu"},
			tcase{"conn mtu not an int", "POST", connPath, legacy("mtu", "big"), 400, "HTTPBadRequest", "'big' is not an integer"},
			tcase{"conn PUT mtu 67", "PUT", connURL, put("mtu", 67), 400, "IPsecSiteConnectionMtuError", "MTU 67 is too small for ipv4"},
		)
		// peer_cidrs.
		add(tcase{"conn peer_cidrs bad cidr", "POST", connPath, legacy("peer_cidrs", []any{"10.0.0.0/33"}), 400, "HTTPBadRequest", "Invalid input for peer_cidrs. Reason: '10.0.0.0/33' is not a valid IP subnet"},
			tcase{"conn peer_cidrs short form", "POST", connPath, legacy("peer_cidrs", []any{"10.0.0/24"}), 400, "HTTPBadRequest", "Invalid input for peer_cidrs"},
			tcase{"conn peer_cidrs garbage", "POST", connPath, legacy("peer_cidrs", "nope"), 400, "HTTPBadRequest", "Invalid input for peer_cidrs"},
			tcase{"conn peer_cidrs address", "POST", connPath, legacy("peer_cidrs", []any{"192.168.1.5"}), 400, "HTTPBadRequest", "Invalid input for peer_cidrs"},
			tcase{"conn peer_cidrs not strings", "POST", connPath, legacy("peer_cidrs", []any{5}), 400, "HTTPBadRequest", "Invalid input for peer_cidrs"},
			tcase{"conn peer_cidrs duplicates", "POST", connPath, legacy("peer_cidrs", []any{"192.168.1.0/24", "192.168.1.0/24"}), 400, "HTTPBadRequest", "Duplicate items in the list: '192.168.1.0/24'"},
			tcase{"conn PUT peer_cidrs bad", "PUT", connURL, put("peer_cidrs", []any{"x"}), 400, "HTTPBadRequest", "Invalid input for peer_cidrs"},
		)
		// Mode rules.
		add(tcase{"legacy without peer_cidrs", "POST", connPath, legacy("peer_cidrs", drop), 400, "MissingPeerCidrs", "Missing peer CIDRs for IPsec site-to-site connection"},
			tcase{"legacy with empty peer_cidrs", "POST", connPath, legacy("peer_cidrs", []any{}), 400, "MissingPeerCidrs", "Missing peer CIDRs"},
			tcase{"legacy with null peer_cidrs", "POST", connPath, legacy("peer_cidrs", nil), 400, "MissingPeerCidrs", "Missing peer CIDRs"},
			tcase{"legacy with local group", "POST", connPath, legacy("local_ep_group_id", f.egLocal), 400, "InvalidEndpointGroup", "Endpoint group local cannot be specified, when VPN Service has subnet specified"},
			tcase{"legacy with peer group", "POST", connPath, legacy("peer_ep_group_id", f.egPeer), 400, "InvalidEndpointGroup", "Endpoint group peer cannot be specified, when VPN Service has subnet specified"},
			tcase{"legacy with both groups", "POST", connPath, legacy("local_ep_group_id", f.egLocal, "peer_ep_group_id", f.egPeer), 400, "InvalidEndpointGroup", "Endpoint groups local and peer cannot be specified, when VPN Service has subnet specified"},
			tcase{"groups with peer_cidrs", "POST", connPath, egc("peer_cidrs", []any{"192.168.5.0/24"}), 400, "PeerCidrsInvalid", "Peer CIDRs cannot be specified, when using endpoint groups"},
			tcase{"groups without local", "POST", connPath, egc("local_ep_group_id", drop), 400, "MissingRequiredEndpointGroup", "Missing endpoint group local for IPSec site-to-site connection"},
			tcase{"groups without peer", "POST", connPath, egc("peer_ep_group_id", nil), 400, "MissingRequiredEndpointGroup", "Missing endpoint group peer for IPSec site-to-site connection"},
			tcase{"groups without both", "POST", connPath, egc("local_ep_group_id", drop, "peer_ep_group_id", drop), 400, "MissingRequiredEndpointGroup", "Missing endpoint groups local and peer for IPSec site-to-site connection"},
			tcase{"PUT legacy peer_cidrs empty", "PUT", connURL, put("peer_cidrs", []any{}), 400, "MissingPeerCidrs", "Missing peer CIDRs"},
			tcase{"PUT legacy adds local group", "PUT", connURL, put("local_ep_group_id", f.egLocal), 400, "InvalidEndpointGroup", "Endpoint group local cannot be specified"},
			tcase{"PUT groups adds peer_cidrs", "PUT", connEGURL, put("peer_cidrs", []any{"10.5.0.0/24"}), 400, "PeerCidrsInvalid", "Peer CIDRs cannot be specified, when using endpoint groups"},
			tcase{"PUT groups drops local", "PUT", connEGURL, put("local_ep_group_id", nil), 400, "MissingRequiredEndpointGroup", "Missing endpoint group local for IPSec site-to-site connection"},
		)
		// Endpoint group rules of connections.
		add(tcase{"local group missing", "POST", connPath, egc("local_ep_group_id", missing), 404, "VPNEndpointGroupNotFound", "Endpoint group " + missing + " could not be found"},
			tcase{"peer group missing", "POST", connPath, egc("peer_ep_group_id", missing), 404, "VPNEndpointGroupNotFound", "Endpoint group " + missing + " could not be found"},
			tcase{"local group of type cidr", "POST", connPath, egc("local_ep_group_id", f.egPeer), 400, "WrongEndpointGroupType", "Endpoint group local type is 'cidr' and should be 'subnet'"},
			tcase{"local group of type network", "POST", connPath, egc("local_ep_group_id", f.egNet), 400, "WrongEndpointGroupType", "Endpoint group local type is 'network' and should be 'subnet'"},
			tcase{"peer group of type subnet", "POST", connPath, egc("peer_ep_group_id", f.egLocal), 400, "WrongEndpointGroupType", "Endpoint group peer type is 'subnet' and should be 'cidr'"},
			tcase{"local group subnet off the router", "POST", connPath, egc("local_ep_group_id", f.egOff), 400, "SubnetIsNotConnectedToRouter", "Subnet " + tp.subOff + " is not connected to Router " + tp.router},
			tcase{"PUT local group off the router", "PUT", connEGURL, put("local_ep_group_id", f.egOff), 400, "SubnetIsNotConnectedToRouter", "Subnet " + tp.subOff + " is not connected to Router " + tp.router},
			tcase{"PUT peer group of type subnet", "PUT", connEGURL, put("peer_ep_group_id", f.egLocal6), 400, "WrongEndpointGroupType", "Endpoint group peer type is 'subnet' and should be 'cidr'"},
		)
		// IP versions.
		add(tcase{"mixed peer_cidrs", "POST", connPath, legacy("peer_cidrs", []any{"192.168.1.0/24", "fd00:1234::/64"}), 400, "MixedIPVersionsForPeerCidrs", "Peer CIDRs do not have the same IP version, as required for IPSec site-to-site connection"},
			tcase{"mixed local group", "POST", connPath, egc("local_ep_group_id", f.egLocalMixed), 400, "MixedIPVersionsForIPSecEndpoints", "Endpoints in group " + f.egLocalMixed + " do not have the same IP version, as required for IPSec site-to-site connection"},
			tcase{"mixed peer group", "POST", connPath, egc("peer_ep_group_id", f.egPeerMixed), 400, "MixedIPVersionsForIPSecEndpoints", "Endpoints in group " + f.egPeerMixed + " do not have the same IP version"},
			tcase{"legacy v4 subnet, v6 peer", "POST", connPath, legacy("peer_cidrs", []any{"fd00:1234::/64"}), 400, "MixedIPVersionsForIPSecConnection", "IP versions are not compatible between peer and local endpoints"},
			tcase{"legacy v6 subnet, v4 peer", "POST", connPath, legacy("vpnservice_id", f.svcLegacy6), 400, "MixedIPVersionsForIPSecConnection", "IP versions are not compatible between peer and local endpoints"},
			tcase{"groups v4 local, v6 peer", "POST", connPath, egc("peer_ep_group_id", f.egPeer6), 400, "MixedIPVersionsForIPSecConnection", "IP versions are not compatible between peer and local endpoints"},
			tcase{"PUT legacy v6 peer", "PUT", connURL, put("peer_cidrs", []any{"fd00:1234::/64"}), 400, "MixedIPVersionsForIPSecConnection", "IP versions are not compatible"},
		)
		// Peer address.
		add(tcase{"peer unresolvable", "POST", connPath, legacy("peer_address", "peer.nowhere.invalid"), 400, "VPNPeerAddressNotResolved", "Peer address peer.nowhere.invalid cannot be resolved"},
			tcase{"PUT peer unresolvable", "PUT", connURL, put("peer_address", "gone.invalid"), 400, "VPNPeerAddressNotResolved", "Peer address gone.invalid cannot be resolved"},
			tcase{"v6 peer, gateway without v6", "POST", connPath, legacy("vpnservice_id", f.svcV4, "peer_address", "2001:db8:5::1"), 400, "ExternalNetworkHasNoSubnet", "Router's " + f.routerV4 + " external network has no IPv6 subnet"},
			tcase{"peer_address empty", "POST", connPath, legacy("peer_address", ""), 400, "VPNPeerAddressNotResolved", "cannot be resolved"},
			tcase{"peer_address not a string", "POST", connPath, legacy("peer_address", 42), 400, "HTTPBadRequest", "Invalid input for peer_address"},
		)
		// The driver's validation: ah-esp.
		add(tcase{"ah-esp connection", "POST", connPath, legacy("ipsecpolicy_id", f.ipsecAH), 400, "IpsecValidationFailure", "IPSec does not support IPsec Policy attribute transform_protocol with value 'ah-esp'"},
			tcase{"ah-esp connection groups", "POST", connPath, egc("ipsecpolicy_id", f.ipsecAH), 400, "IpsecValidationFailure", "transform_protocol with value 'ah-esp'"},
		)
		// Order of checks on POST (§3.5).
		add(tcase{"order: attributes before a missing service", "POST", connPath, legacy("vpnservice_id", missing, "initiator", "foo"), 400, "HTTPBadRequest", "foo is not in valid_values"},
			tcase{"order: attributes before a missing IKE policy", "POST", connPath, legacy("ikepolicy_id", missing, "dpd", 59), 400, "HTTPBadRequest", "'59' is not a dictionary"},
			tcase{"order: attributes before mode", "POST", connPath, legacy("peer_cidrs", drop, "mtu", -1), 400, "HTTPBadRequest", "Invalid input for mtu"},
			tcase{"order: missing service is 404", "POST", connPath, legacy("vpnservice_id", missing), 404, "VPNServiceNotFound", "VPNService " + missing + " could not be found"},
			tcase{"order: missing service before ah-esp", "POST", connPath, legacy("vpnservice_id", missing, "ipsecpolicy_id", f.ipsecAH), 404, "VPNServiceNotFound", missing},
			tcase{"order: missing service before missing policies", "POST", connPath, legacy("vpnservice_id", missing, "ikepolicy_id", missing, "ipsecpolicy_id", missing), 404, "VPNServiceNotFound", missing},
			tcase{"order: ah-esp before missing IKE policy", "POST", connPath, legacy("ikepolicy_id", missing, "ipsecpolicy_id", f.ipsecAH), 400, "IpsecValidationFailure", "'ah-esp'"},
			tcase{"order: missing IPsec before missing IKE", "POST", connPath, legacy("ikepolicy_id", missing, "ipsecpolicy_id", missing), 404, "IPsecPolicyNotFound", "IPsecPolicy " + missing + " could not be found"},
			tcase{"missing IKE policy", "POST", connPath, legacy("ikepolicy_id", missing), 404, "IKEPolicyNotFound", "IKEPolicy " + missing + " could not be found"},
			tcase{"other project's IKE policy", "POST", connPath, legacy("ikepolicy_id", f.ikeB), 404, "IKEPolicyNotFound", "IKEPolicy " + f.ikeB + " could not be found"},
			tcase{"other project's endpoint group", "POST", connPath, egc("peer_ep_group_id", f.egPeerB), 404, "VPNEndpointGroupNotFound", "Endpoint group " + f.egPeerB + " could not be found"},
			tcase{"missing IPsec policy", "POST", connPath, legacy("ipsecpolicy_id", missing), 404, "IPsecPolicyNotFound", "IPsecPolicy " + missing + " could not be found"},
			tcase{"order: missing IKE before mode", "POST", connPath, legacy("ikepolicy_id", missing, "peer_cidrs", drop), 404, "IKEPolicyNotFound", missing},
			tcase{"order: mode before group lookup", "POST", connPath, egc("peer_cidrs", []any{"10.6.0.0/24"}, "local_ep_group_id", missing), 400, "PeerCidrsInvalid", "Peer CIDRs cannot be specified"},
			tcase{"order: mode before IP versions", "POST", connPath, legacy("local_ep_group_id", f.egLocal, "peer_cidrs", []any{"192.168.1.0/24", "fd00:1::/64"}), 400, "InvalidEndpointGroup", "Endpoint group local cannot be specified"},
			tcase{"order: group type before dpd", "POST", connPath, egc("local_ep_group_id", f.egPeer, "dpd", dpd("interval", 60, "timeout", 10)), 400, "WrongEndpointGroupType", "Endpoint group local type is 'cidr'"},
			tcase{"order: IP versions before dpd", "POST", connPath, legacy("peer_cidrs", []any{"192.168.1.0/24", "fd00:1::/64"}, "dpd", dpd("interval", 60, "timeout", 10)), 400, "MixedIPVersionsForPeerCidrs", "Peer CIDRs do not have the same IP version"},
			tcase{"order: IP versions before mtu", "POST", connPath, egc("peer_ep_group_id", f.egPeer6, "mtu", 67), 400, "MixedIPVersionsForIPSecConnection", "IP versions are not compatible"},
			tcase{"order: dpd before mtu", "POST", connPath, legacy("dpd", dpd("interval", 60, "timeout", 10), "mtu", 67), 400, "IPsecSiteConnectionDpdIntervalValueError", "dpd_timeout is equal to or less than dpd_interval"},
			tcase{"order: mtu before peer address", "POST", connPath, legacy("mtu", 67, "peer_address", "x.invalid"), 400, "IPsecSiteConnectionMtuError", "MTU 67 is too small for ipv4"},
			tcase{"order: dpd before peer address", "POST", connPath, legacy("dpd", dpd("timeout", 1), "peer_address", "2001:db8:5::1", "vpnservice_id", f.svcV4), 400, "IPsecSiteConnectionDpdIntervalValueError", "dpd_timeout"},
			tcase{"PUT missing connection", "PUT", connPath + "/" + missing, put("name", "x"), 404, "IPsecSiteConnectionNotFound", "ipsec_site_connection " + missing + " not found"},
		)
		// No PATCH; no POST on an item.
		add(tcase{"PATCH policy", "PATCH", ikeURL, ike("name", "p"), 405, "HTTPMethodNotAllowed", ""},
			tcase{"POST on an item", "POST", connURL, legacy(), 405, "HTTPMethodNotAllowed", ""},
		)
		// Sort keys that are not is_sort_key.
		add(tcase{"ike sort on pfs", "GET", ikePath + "?sort_key=pfs&sort_dir=asc", nil, 400, "HTTPBadRequest", "['pfs'] is invalid attribute for sort_keys"},
			tcase{"svc sort on subnet_id", "GET", svcPath + "?sort_key=subnet_id&sort_dir=asc", nil, 400, "HTTPBadRequest", "['subnet_id'] is invalid attribute for sort_keys"},
			tcase{"conn sort on peer_address", "GET", connPath + "?sort_key=peer_address&sort_dir=asc", nil, 400, "HTTPBadRequest", "['peer_address'] is invalid attribute for sort_keys"},
		)

		runFaultCases(t, e, cases, vpnSnapshot, vpnPSK)
	})
}

// TestVPNAcceptedValues creates a resource with every value of every
// enumeration of contract section 4, and the edge values that are valid.
func TestVPNAcceptedValues(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		encryption := []string{"3des", "aes-128", "aes-192", "aes-256"}
		for _, mode := range []string{"ccm", "gcm"} {
			for _, icv := range []string{"8", "12", "16"} {
				for _, bits := range []string{"128", "192", "256"} {
					encryption = append(encryption, "aes-"+bits+"-"+mode+"-"+icv)
				}
			}
		}
		encryption = append(encryption, "aes-128-ctr", "aes-192-ctr", "aes-256-ctr")
		pfs := []string{"group2", "group5"}
		for g := 14; g <= 31; g++ {
			pfs = append(pfs, fmt.Sprintf("group%d", g))
		}
		if len(encryption) != 25 || len(pfs) != 20 {
			t.Fatalf("%d encryption algorithms, %d pfs groups", len(encryption), len(pfs))
		}
		auth := []string{"sha1", "sha256", "sha384", "sha512", "aes-xcbc", "aes-cmac"}
		accept := func(path, key, attr string, v any) map[string]any {
			t.Helper()
			r := e.do("POST", path, projectA, map[string]any{key: map[string]any{attr: v}})
			o := item(t, r, 201, key)
			if fmt.Sprint(o[attr]) != fmt.Sprint(v) {
				t.Fatalf("POST %s %s=%v echoed %v", path, attr, v, o[attr])
			}
			return o
		}
		for _, c := range []struct{ path, key string }{{ikePath, "ikepolicy"}, {ipsecPath, "ipsecpolicy"}} {
			for _, v := range encryption {
				accept(c.path, c.key, "encryption_algorithm", v)
			}
			for _, v := range auth {
				accept(c.path, c.key, "auth_algorithm", v)
			}
			for _, v := range pfs {
				accept(c.path, c.key, "pfs", v)
			}
			o := accept(c.path, c.key, "name", "updatable")
			id := o["id"].(string)
			for _, v := range []string{"aes-256-ctr", "3des"} {
				r := e.do("PUT", c.path+"/"+id, projectA, map[string]any{c.key: map[string]any{"encryption_algorithm": v, "auth_algorithm": "aes-cmac", "pfs": "group31"}})
				if o := item(t, r, 200, c.key); o["encryption_algorithm"] != v || o["auth_algorithm"] != "aes-cmac" || o["pfs"] != "group31" {
					t.Fatalf("PUT = %v", o)
				}
			}
			// lifetime: the minimum, no maximum, digits as a string.
			for _, v := range []any{60, 86400000, "2000"} {
				o := item(t, e.do("POST", c.path, projectA, map[string]any{c.key: map[string]any{"lifetime": map[string]any{"value": v}}}), 201, c.key)
				want := v
				if n, ok := v.(int); ok {
					want = float64(n)
				}
				if lt := o["lifetime"].(map[string]any); lt["value"] != want || lt["units"] != "seconds" {
					t.Fatalf("lifetime %v = %v", v, lt)
				}
			}
		}
		for _, v := range []string{"main", "aggressive"} {
			accept(ikePath, "ikepolicy", "phase1_negotiation_mode", v)
		}
		for _, v := range []string{"v1", "v2"} {
			accept(ikePath, "ikepolicy", "ike_version", v)
		}
		// The reference does not check combinations.
		o := item(t, e.do("POST", ikePath, projectA, map[string]any{"ikepolicy": map[string]any{"ike_version": "v2", "phase1_negotiation_mode": "aggressive"}}), 201, "ikepolicy")
		if o["ike_version"] != "v2" || o["phase1_negotiation_mode"] != "aggressive" {
			t.Fatalf("v2+aggressive = %v", o)
		}
		for _, v := range []string{"esp", "ah", "ah-esp"} {
			accept(ipsecPath, "ipsecpolicy", "transform_protocol", v)
		}
		for _, v := range []string{"tunnel", "transport"} {
			accept(ipsecPath, "ipsecpolicy", "encapsulation_mode", v)
		}

		// Endpoint groups: every type; host bits may be set in a CIDR.
		tp := newVPNTopo(t, e)
		for _, c := range []struct {
			typ string
			eps []any
		}{{"subnet", []any{tp.sub}}, {"cidr", []any{"192.168.7.5/24", "fd00:7::1/64", "0.0.0.0/0"}}, {"network", []any{"n"}},
			{"router", []any{"r"}}, {"vlan", []any{"100"}}} {
			o := item(t, e.do("POST", egPath, projectA, map[string]any{"endpoint_group": map[string]any{"type": c.typ, "endpoints": c.eps}}), 201, "endpoint_group")
			if o["type"] != c.typ || fmt.Sprint(o["endpoints"]) != fmt.Sprint(c.eps) {
				t.Fatalf("%s group = %v", c.typ, o)
			}
		}

		// Connections: every initiator and dpd action, mtu 0 (no check),
		// mtu as a string, an empty PSK, admin_state_up as a string.
		ike := mkIKE(t, e.a, "ike")
		ipsec := mkIPsec(t, e.a, "ipsec", "")
		svc := mkService(t, e.a, "svc", tp.router, tp.sub)
		conn := func(kv ...any) map[string]any {
			body := with(map[string]any{"vpnservice_id": svc.ID, "ikepolicy_id": ike, "ipsecpolicy_id": ipsec, "peer_address": "192.0.2.10",
				"peer_id": "192.0.2.10", "psk": "secret", "peer_cidrs": []any{"192.168.10.0/24"}}, kv...)
			return item(t, e.do("POST", connPath, projectA, map[string]any{"ipsec_site_connection": body}), 201, "ipsec_site_connection")
		}
		for _, v := range []string{"bi-directional", "response-only"} {
			if o := conn("initiator", v); o["initiator"] != v {
				t.Fatalf("initiator = %v", o["initiator"])
			}
		}
		for _, v := range []string{"clear", "disabled", "hold", "restart", "restart-by-peer"} {
			if d := conn("dpd", map[string]any{"action": v})["dpd"].(map[string]any); d["action"] != v || d["interval"] != float64(30) || d["timeout"] != float64(120) {
				t.Fatalf("dpd = %v", d)
			}
		}
		if d := conn("dpd", map[string]any{"interval": 0, "timeout": 1})["dpd"].(map[string]any); d["action"] != "hold" || d["interval"] != float64(0) || d["timeout"] != float64(1) {
			t.Fatalf("dpd = %v", d)
		}
		if d := conn("dpd", nil)["dpd"].(map[string]any); d["action"] != "hold" || d["interval"] != float64(30) || d["timeout"] != float64(120) {
			t.Fatalf("dpd null = %v", d)
		}
		for _, c := range []struct {
			in   any
			want float64
		}{{0, 0}, {"1500", 1500}, {68, 68}, {9000, 9000}, {1000000, 1000000}} {
			if o := conn("mtu", c.in); o["mtu"] != c.want {
				t.Fatalf("mtu %v = %v", c.in, o["mtu"])
			}
		}
		if o := conn("psk", ""); o["psk"] != "" {
			t.Fatalf("empty psk = %v", o["psk"])
		}
		if o := conn("admin_state_up", "false", "local_id", "@left", "peer_id", "right.example.org"); o["admin_state_up"] != false || o["local_id"] != "@left" || o["peer_id"] != "right.example.org" {
			t.Fatalf("connection = %v", o)
		}
		if o := conn("peer_cidrs", "192.168.77.0/24"); fmt.Sprint(o["peer_cidrs"]) != "[192.168.77.0/24]" {
			t.Fatalf("bare-string peer_cidrs = %v", o["peer_cidrs"])
		}
		if o := conn("peer_cidrs", []any{"192.168.78.5/24", "192.168.79.0/24"}); fmt.Sprint(o["peer_cidrs"]) != "[192.168.78.5/24 192.168.79.0/24]" {
			t.Fatalf("peer_cidrs = %v", o["peer_cidrs"])
		}
		// An FQDN is resolved and the address stored.
		if o := conn("peer_address", "localhost"); o["peer_address"] != "127.0.0.1" {
			t.Fatalf("peer_address localhost = %v", o["peer_address"])
		}
		// v6 local: 1280 is the minimum.
		svc6 := mkService(t, e.a, "svc6", tp.router, tp.sub6)
		if o := conn("vpnservice_id", svc6.ID, "peer_cidrs", []any{"fd00:50::/64"}, "mtu", 1280, "peer_address", "2001:db8:50::1"); o["mtu"] != float64(1280) {
			t.Fatalf("v6 mtu = %v", o["mtu"])
		}
		// 6-in-4: a v6 subnet behind a v4 peer address.
		if o := conn("vpnservice_id", svc6.ID, "peer_cidrs", []any{"fd00:51::/64"}, "peer_address", "192.0.2.51"); o["peer_address"] != "192.0.2.51" {
			t.Fatalf("6-in-4 = %v", o)
		}
		// Several VPN services per router are accepted.
		mkService(t, e.a, "svc-again", tp.router, tp.sub)
	})
}

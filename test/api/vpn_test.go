package api_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/external"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/routers"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/vpnaas/endpointgroups"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/vpnaas/ikepolicies"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/vpnaas/ipsecpolicies"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/vpnaas/services"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/vpnaas/siteconnections"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"
	"github.com/gophercloud/gophercloud/v2/pagination"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/neutrino-net/neutrino/internal/service"
)

// VPN collection paths.
const (
	ikePath   = "/v2.0/vpn/ikepolicies"
	ipsecPath = "/v2.0/vpn/ipsecpolicies"
	svcPath   = "/v2.0/vpn/vpnservices"
	egPath    = "/v2.0/vpn/endpoint-groups"
	connPath  = "/v2.0/vpn/ipsec-site-connections"
	noSuchID  = "3f1c1b7e-6a9b-4d6e-9a54-0123456789ab"
)

// vpnTopo is the network a VPN needs: an admin-owned dual-stack external
// network, and project A's router with a gateway on it and interfaces on a
// v4 and a v6 subnet.
type vpnTopo struct {
	ext, extSub4, extSub6 string
	net, sub              string // 10.1.0.0/24, a router interface
	sub6                  string // fd00:1::/64, a router interface
	subOff                string // 10.2.0.0/24, on no router
	router                string
	gw4, gw6              string // the router's gateway addresses
}

func mkSubnet(t *testing.T, c *gophercloud.ServiceClient, netID string, version int, cidr string) string {
	t.Helper()
	return must[*subnets.Subnet](t)(subnets.Create(ctx, c, subnets.CreateOpts{
		NetworkID: netID, IPVersion: gophercloud.IPVersion(version), CIDR: cidr}).Extract()).ID
}

// mkNet creates a network with one subnet and returns both ids.
func mkNet(t *testing.T, c *gophercloud.ServiceClient, name string, version int, cidr string) (string, string) {
	t.Helper()
	n := must[*networks.Network](t)(networks.Create(ctx, c, networks.CreateOpts{Name: name}).Extract())
	return n.ID, mkSubnet(t, c, n.ID, version, cidr)
}

// mkExternal creates an external network as admin with one subnet per cidr.
func mkExternal(t *testing.T, e *env, name string, cidrs ...string) (string, []string) {
	t.Helper()
	n := must[*networks.Network](t)(networks.Create(ctx, e.admin, external.CreateOptsExt{
		CreateOptsBuilder: networks.CreateOpts{Name: name}, External: ptr(true)}).Extract())
	var subs []string
	for _, c := range cidrs {
		v := 4
		if strings.Contains(c, ":") {
			v = 6
		}
		subs = append(subs, mkSubnet(t, e.admin, n.ID, v, c))
	}
	return n.ID, subs
}

// mkRouter creates a router of c with a gateway on ext (none if "") and
// interfaces on subs; it returns the id and the gateway addresses.
func mkRouter(t *testing.T, c *gophercloud.ServiceClient, name, ext string, subs ...string) (id, gw4, gw6 string) {
	t.Helper()
	opts := routers.CreateOpts{Name: name}
	if ext != "" {
		opts.GatewayInfo = &routers.GatewayInfo{NetworkID: ext}
	}
	r := must[*routers.Router](t)(routers.Create(ctx, c, opts).Extract())
	for _, ip := range r.GatewayInfo.ExternalFixedIPs {
		if strings.Contains(ip.IPAddress, ":") {
			gw6 = ip.IPAddress
		} else {
			gw4 = ip.IPAddress
		}
	}
	for _, s := range subs {
		must[*routers.InterfaceInfo](t)(routers.AddInterface(ctx, c, r.ID, routers.AddInterfaceOpts{SubnetID: s}).Extract())
	}
	return r.ID, gw4, gw6
}

func newVPNTopo(t *testing.T, e *env) *vpnTopo {
	t.Helper()
	tp := &vpnTopo{}
	var extSubs []string
	tp.ext, extSubs = mkExternal(t, e, "public", "203.0.113.0/24", "2001:db8:ff::/64")
	tp.extSub4, tp.extSub6 = extSubs[0], extSubs[1]
	tp.net, tp.sub = mkNet(t, e.a, "priv", 4, "10.1.0.0/24")
	_, tp.sub6 = mkNet(t, e.a, "priv6", 6, "fd00:1::/64")
	_, tp.subOff = mkNet(t, e.a, "off", 4, "10.2.0.0/24")
	tp.router, tp.gw4, tp.gw6 = mkRouter(t, e.a, "vpn-router", tp.ext, tp.sub, tp.sub6)
	if tp.gw4 == "" || tp.gw6 == "" {
		t.Fatalf("router gateway lacks a v4 or v6 address: %q %q", tp.gw4, tp.gw6)
	}
	return tp
}

// aliveAgent registers an alive L3 agent, which hosts every router: its
// routers' VPN resources stay PENDING_* until it reports (without one they
// are DOWN at once).
func aliveAgent(t *testing.T, e *env) {
	t.Helper()
	if _, err := e.svc.Heartbeat(ctx, agentv1.Heartbeat{Host: "vpn-agent", AgentType: agentv1.AgentTypeL3}); err != nil {
		t.Fatal(err)
	}
}

func mkIKE(t *testing.T, c *gophercloud.ServiceClient, name string) string {
	t.Helper()
	return must[*ikepolicies.Policy](t)(ikepolicies.Create(ctx, c, ikepolicies.CreateOpts{Name: name}).Extract()).ID
}

func mkIPsec(t *testing.T, c *gophercloud.ServiceClient, name string, proto ipsecpolicies.TransformProtocol) string {
	t.Helper()
	return must[*ipsecpolicies.Policy](t)(ipsecpolicies.Create(ctx, c, ipsecpolicies.CreateOpts{Name: name, TransformProtocol: proto}).Extract()).ID
}

func mkService(t *testing.T, c *gophercloud.ServiceClient, name, router, subnet string) *services.Service {
	t.Helper()
	return must[*services.Service](t)(services.Create(ctx, c, services.CreateOpts{
		Name: name, RouterID: router, SubnetID: subnet, AdminStateUp: ptr(true)}).Extract())
}

func mkGroup(t *testing.T, c *gophercloud.ServiceClient, name string, typ endpointgroups.EndpointType, endpoints ...string) string {
	t.Helper()
	return must[*endpointgroups.EndpointGroup](t)(endpointgroups.Create(ctx, c, endpointgroups.CreateOpts{
		Name: name, Type: typ, Endpoints: endpoints}).Extract()).ID
}

// legacyConn is a legacy-mode connection to a v4 peer.
func legacyConn(name, svc, ike, ipsec string) siteconnections.CreateOpts {
	return siteconnections.CreateOpts{Name: name, VPNServiceID: svc, IKEPolicyID: ike, IPSecPolicyID: ipsec,
		PeerAddress: "192.0.2.10", PeerID: "192.0.2.10", PSK: "secret", PeerCIDRs: []string{"192.168.10.0/24"}}
}

func mkConn(t *testing.T, c *gophercloud.ServiceClient, opts siteconnections.CreateOpts) *siteconnections.Connection {
	t.Helper()
	return must[*siteconnections.Connection](t)(siteconnections.Create(ctx, c, opts).Extract())
}

// wantVPNFault is wantFault plus a substring of the message.
func wantVPNFault(t *testing.T, err error, code int, typ, msg string) {
	t.Helper()
	wantFault(t, err, code, typ)
	var ec gophercloud.ErrUnexpectedResponseCode
	errors.As(err, &ec)
	var body struct {
		NeutronError struct{ Type, Message string }
	}
	_ = json.Unmarshal(ec.Body, &body)
	if !strings.Contains(body.NeutronError.Message, msg) {
		t.Fatalf("message %q does not contain %q", body.NeutronError.Message, msg)
	}
}

// wantReply asserts a raw reply's status, fault type and message substring.
func wantReply(t *testing.T, r reply, status int, typ, msg string) {
	t.Helper()
	gotTyp, gotMsg := r.fault()
	if r.status != status || gotTyp != typ || !strings.Contains(gotMsg, msg) {
		t.Fatalf("got %d %s %q, want %d %s containing %q (body %s)", r.status, gotTyp, gotMsg, status, typ, msg, r.raw)
	}
}

// item returns the object under key of a 200/201 reply.
func item(t *testing.T, r reply, status int, key string) map[string]any {
	t.Helper()
	if r.status != status {
		t.Fatalf("got HTTP %d (%s), want %d", r.status, r.raw, status)
	}
	m, ok := r.body[key].(map[string]any)
	if !ok {
		t.Fatalf("no %q in %s", key, r.raw)
	}
	return m
}

// hasKeys asserts that o has every key.
func hasKeys(t *testing.T, o map[string]any, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if _, ok := o[k]; !ok {
			t.Errorf("attribute %q missing from %v", k, o)
		}
	}
}

// listIDs lists a collection as project and returns the ids.
func listIDs(t *testing.T, e *env, path, coll, project string) []string {
	t.Helper()
	r := e.do("GET", path, project, nil)
	if r.status != 200 {
		t.Fatalf("GET %s = %d %s", path, r.status, r.raw)
	}
	return ids(r, coll)
}

// nextLink returns the request URI of a reply's rel link ("" if none).
func nextLink(r reply, coll, rel string) string {
	links, _ := r.body[coll+"_links"].([]any)
	for _, l := range links {
		if l := l.(map[string]any); l["rel"] == rel {
			u, _ := url.Parse(l["href"].(string))
			return u.RequestURI()
		}
	}
	return ""
}

func TestVPNDiscovery(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		pages := must[pagination.Page](t)(extensions.List(e.a).AllPages(ctx))
		exts := must[[]extensions.Extension](t)(extensions.ExtractExtensions(pages))
		byAlias := map[string]extensions.Extension{}
		for _, x := range exts {
			byAlias[x.Alias] = x
		}
		want := map[string][3]string{
			"vpnaas":              {"VPN service", "Extension for VPN service", "2013-05-29T10:00:00-00:00"},
			"vpn-endpoint-groups": {"VPN Endpoint Groups", "VPN endpoint groups support", "2015-08-04T10:00:00-00:00"},
			"vpn-flavors":         {"VPN Service Flavor Extension", "Flavor support for vpnservices.", "2017-04-19T00:00:00-00:00"},
			"vpn-aes-ctr":         {"VPN support for AES CTR mode", "Add AES CTR choices for encryption algorithm", "2024-01-09T09:00:00-00:00"},
			// Neutrino's own.
			"vpn-status-reason": {"VPN connection status reason",
				"Adds the read-only status_reason attribute to IPsec site connections: the last IKE/IPsec negotiation failure the device driver reported (e.g. authentication failed, no proposal chosen); null while the connection is ACTIVE or nothing was reported.",
				"2026-11-01T00:00:00-00:00"},
		}
		for alias, w := range want {
			x, ok := byAlias[alias]
			if !ok {
				t.Errorf("extension %q not advertised", alias)
				continue
			}
			if x.Name != w[0] || x.Description != w[1] || x.Updated != w[2] {
				t.Errorf("extension %q = %+v, want %v", alias, x, w)
			}
		}
		if _, ok := byAlias["service-type"]; !ok {
			t.Error("extension service-type not advertised")
		}
		for _, alias := range []string{"vpn-aes-ccm-gcm", "vpn-no-sha1-3des"} {
			if _, ok := byAlias[alias]; ok {
				t.Errorf("extension %q must not be advertised", alias)
			}
			_, err := extensions.Get(ctx, e.a, alias).Extract()
			wantStatus(t, err, 404)
		}
		if x, err := extensions.Get(ctx, e.a, "vpnaas").Extract(); err != nil || x.Name != "VPN service" {
			t.Fatalf("GET /v2.0/extensions/vpnaas = %+v, %v", x, err)
		}
		if x, err := extensions.Get(ctx, e.a, "vpn-status-reason").Extract(); err != nil || x.Name != "VPN connection status reason" {
			t.Fatalf("GET /v2.0/extensions/vpn-status-reason = %+v, %v", x, err)
		}

		// Service providers: strongSwan (the default) and Libreswan.
		r := e.do("GET", "/v2.0/service-providers", projectA, nil)
		if r.status != 200 {
			t.Fatalf("service-providers = %d %s", r.status, r.raw)
		}
		var got []string
		for _, p := range r.body["service_providers"].([]any) {
			m := p.(map[string]any)
			got = append(got, fmt.Sprintf("%v:%v:%v", m["service_type"], m["name"], m["default"]))
		}
		slices.Sort(got)
		if !slices.Equal(got, []string{"VPN:libreswan:false", "VPN:strongswan:true"}) {
			t.Fatalf("service providers = %v", got)
		}

		// VPN quotas are registered and unlimited by default.
		q := item(t, e.do("GET", "/v2.0/quotas/"+projectA, projectA, nil), 200, "quota")
		for _, res := range []string{"vpnservice", "ikepolicy", "ipsecpolicy", "ipsec_site_connection", "endpoint_group"} {
			if q[res] != float64(-1) {
				t.Errorf("quota %s = %v, want -1", res, q[res])
			}
		}
	})
}

func TestVPNQuota(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		if r := e.do("PUT", "/v2.0/quotas/"+projectA, "", map[string]any{"quota": map[string]any{"ikepolicy": 1}}); r.status != 200 {
			t.Fatalf("set quota = %d %s", r.status, r.raw)
		}
		mkIKE(t, e.a, "one")
		_, err := ikepolicies.Create(ctx, e.a, ikepolicies.CreateOpts{Name: "two"}).Extract()
		wantFault(t, err, 409, "OverQuota")
		mkIKE(t, e.b, "b-one")
	})
}

func TestVPNPolicies(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		// IKE policy with the server's defaults.
		ike := must[*ikepolicies.Policy](t)(ikepolicies.Create(ctx, e.a, ikepolicies.CreateOpts{Name: "ike-default"}).Extract())
		if ike.AuthAlgorithm != "sha1" || ike.EncryptionAlgorithm != "aes-128" || ike.PFS != "group5" || ike.IKEVersion != "v1" ||
			ike.Phase1NegotiationMode != "main" || ike.Lifetime != (ikepolicies.Lifetime{Units: "seconds", Value: 3600}) ||
			ike.ProjectID != projectA || ike.TenantID != projectA || ike.Name != "ike-default" || ike.Description != "" || ike.ID == "" {
			t.Fatalf("IKE policy defaults = %+v", ike)
		}
		raw := item(t, e.do("GET", ikePath+"/"+ike.ID, projectA, nil), 200, "ikepolicy")
		hasKeys(t, raw, "id", "tenant_id", "project_id", "name", "description", "auth_algorithm", "encryption_algorithm",
			"phase1_negotiation_mode", "lifetime", "ike_version", "pfs")
		if _, ok := raw["status"]; ok {
			t.Errorf("IKE policy has a status: %v", raw)
		}
		if lt := raw["lifetime"].(map[string]any); lt["units"] != "seconds" || lt["value"] != float64(3600) {
			t.Errorf("lifetime = %v", lt)
		}
		// Every attribute given.
		ike2 := must[*ikepolicies.Policy](t)(ikepolicies.Create(ctx, e.a, ikepolicies.CreateOpts{
			Name: "ike-explicit", Description: "all set", AuthAlgorithm: ikepolicies.AuthAlgorithmSHA256,
			EncryptionAlgorithm: ikepolicies.EncryptionAlgorithmAES256, PFS: ikepolicies.PFSGroup14, IKEVersion: ikepolicies.IKEVersionv2,
			Phase1NegotiationMode: ikepolicies.Phase1NegotiationMode("aggressive"),
			Lifetime:              &ikepolicies.LifetimeCreateOpts{Units: ikepolicies.UnitSeconds, Value: 7200},
		}).Extract())
		if ike2.AuthAlgorithm != "sha256" || ike2.EncryptionAlgorithm != "aes-256" || ike2.PFS != "group14" || ike2.IKEVersion != "v2" ||
			ike2.Phase1NegotiationMode != "aggressive" || ike2.Lifetime.Value != 7200 || ike2.Description != "all set" {
			t.Fatalf("IKE policy = %+v", ike2)
		}
		if got := must[*ikepolicies.Policy](t)(ikepolicies.Get(ctx, e.a, ike2.ID).Extract()); !reflect.DeepEqual(got, ike2) {
			t.Fatalf("GET = %+v, POST = %+v", got, ike2)
		}
		// List, and the find queries of the CLI (?name=, ?id=).
		pages := must[pagination.Page](t)(ikepolicies.List(e.a, ikepolicies.ListOpts{Name: "ike-explicit"}).AllPages(ctx))
		if got := must[[]ikepolicies.Policy](t)(ikepolicies.ExtractPolicies(pages)); len(got) != 1 || got[0].ID != ike2.ID {
			t.Fatalf("list by name = %+v", got)
		}
		if got := listIDs(t, e, ikePath+"?id="+ike.ID, "ikepolicies", projectA); !slices.Equal(got, []string{ike.ID}) {
			t.Fatalf("list by id = %v", got)
		}
		if got := listIDs(t, e, ikePath+"?name=ike-default&name=ike-explicit", "ikepolicies", projectA); len(got) != 2 {
			t.Fatalf("list by two names = %v", got)
		}
		if got := listIDs(t, e, ikePath+"?name=nope", "ikepolicies", projectA); len(got) != 0 {
			t.Fatalf("list by unknown name = %v", got)
		}
		if got := listIDs(t, e, ikePath+"?not_an_attribute=1", "ikepolicies", projectA); len(got) != 2 {
			t.Fatalf("unknown filter key not ignored: %v", got)
		}
		// Update: partial lifetime keeps the units; other attributes stay.
		upd := must[*ikepolicies.Policy](t)(ikepolicies.Update(ctx, e.a, ike2.ID, ikepolicies.UpdateOpts{
			Name: ptr("ike-renamed"), Lifetime: &ikepolicies.LifetimeUpdateOpts{Value: 7000}, PFS: ikepolicies.PFSGroup31}).Extract())
		if upd.Name != "ike-renamed" || upd.Lifetime != (ikepolicies.Lifetime{Units: "seconds", Value: 7000}) || upd.PFS != "group31" ||
			upd.AuthAlgorithm != "sha256" || upd.IKEVersion != "v2" || upd.Description != "all set" {
			t.Fatalf("updated IKE policy = %+v", upd)
		}
		if got := must[*ikepolicies.Policy](t)(ikepolicies.Get(ctx, e.a, ike2.ID).Extract()); !reflect.DeepEqual(got, upd) {
			t.Fatalf("GET after PUT = %+v, PUT = %+v", got, upd)
		}
		checkLifetimeQuirk(t, e, ikePath, "ikepolicy")

		// IPsec policy with the server's defaults.
		ip := must[*ipsecpolicies.Policy](t)(ipsecpolicies.Create(ctx, e.a, ipsecpolicies.CreateOpts{Name: "ipsec-default"}).Extract())
		if ip.TransformProtocol != "esp" || ip.AuthAlgorithm != "sha1" || ip.EncryptionAlgorithm != "aes-128" || ip.EncapsulationMode != "tunnel" ||
			ip.PFS != "group5" || ip.Lifetime != (ipsecpolicies.Lifetime{Units: "seconds", Value: 3600}) || ip.ProjectID != projectA ||
			ip.TenantID != projectA || ip.Description != "" {
			t.Fatalf("IPsec policy defaults = %+v", ip)
		}
		raw = item(t, e.do("GET", ipsecPath+"/"+ip.ID, projectA, nil), 200, "ipsecpolicy")
		hasKeys(t, raw, "id", "tenant_id", "project_id", "name", "description", "transform_protocol", "auth_algorithm",
			"encryption_algorithm", "encapsulation_mode", "lifetime", "pfs")
		if _, ok := raw["status"]; ok {
			t.Errorf("IPsec policy has a status: %v", raw)
		}
		ip2 := must[*ipsecpolicies.Policy](t)(ipsecpolicies.Create(ctx, e.a, ipsecpolicies.CreateOpts{
			Name: "ipsec-explicit", Description: "d", TransformProtocol: ipsecpolicies.TransformProtocolAH,
			AuthAlgorithm: ipsecpolicies.AuthAlgorithmSHA512, EncryptionAlgorithm: ipsecpolicies.EncryptionAlgorithmAES256GCM16,
			EncapsulationMode: ipsecpolicies.EncapsulationModeTransport, PFS: ipsecpolicies.PFSGroup2,
			Lifetime: &ipsecpolicies.LifetimeCreateOpts{Units: ipsecpolicies.UnitSeconds, Value: 60},
		}).Extract())
		if ip2.TransformProtocol != "ah" || ip2.AuthAlgorithm != "sha512" || ip2.EncryptionAlgorithm != "aes-256-gcm-16" ||
			ip2.EncapsulationMode != "transport" || ip2.PFS != "group2" || ip2.Lifetime.Value != 60 {
			t.Fatalf("IPsec policy = %+v", ip2)
		}
		if got := must[*ipsecpolicies.Policy](t)(ipsecpolicies.Get(ctx, e.a, ip2.ID).Extract()); !reflect.DeepEqual(got, ip2) {
			t.Fatalf("GET = %+v, POST = %+v", got, ip2)
		}
		pages = must[pagination.Page](t)(ipsecpolicies.List(e.a, ipsecpolicies.ListOpts{Name: "ipsec-explicit"}).AllPages(ctx))
		if got := must[[]ipsecpolicies.Policy](t)(ipsecpolicies.ExtractPolicies(pages)); len(got) != 1 || got[0].ID != ip2.ID {
			t.Fatalf("list by name = %+v", got)
		}
		if got := listIDs(t, e, ipsecPath+"?id="+ip.ID, "ipsecpolicies", projectA); !slices.Equal(got, []string{ip.ID}) {
			t.Fatalf("list by id = %v", got)
		}
		// ah-esp is accepted on the policy itself.
		ipu := must[*ipsecpolicies.Policy](t)(ipsecpolicies.Update(ctx, e.a, ip2.ID, ipsecpolicies.UpdateOpts{
			Description: ptr(""), TransformProtocol: ipsecpolicies.TransformProtocolAHESP, Lifetime: &ipsecpolicies.LifetimeUpdateOpts{Value: 900}}).Extract())
		if ipu.TransformProtocol != "ah-esp" || ipu.Description != "" || ipu.Lifetime != (ipsecpolicies.Lifetime{Units: "seconds", Value: 900}) ||
			ipu.EncapsulationMode != "transport" || ipu.Name != "ipsec-explicit" {
			t.Fatalf("updated IPsec policy = %+v", ipu)
		}
		checkLifetimeQuirk(t, e, ipsecPath, "ipsecpolicy")

		// Delete, then 404 with the catalogue's types and messages.
		for _, c := range []struct {
			path, id, typ, msg string
			del                func(string) error
		}{
			{ikePath, ike.ID, "IKEPolicyNotFound", "IKEPolicy " + ike.ID + " could not be found",
				func(id string) error { return ikepolicies.Delete(ctx, e.a, id).ExtractErr() }},
			{ipsecPath, ip.ID, "IPsecPolicyNotFound", "IPsecPolicy " + ip.ID + " could not be found",
				func(id string) error { return ipsecpolicies.Delete(ctx, e.a, id).ExtractErr() }},
		} {
			if err := c.del(c.id); err != nil {
				t.Fatalf("DELETE %s/%s: %v", c.path, c.id, err)
			}
			wantReply(t, e.do("GET", c.path+"/"+c.id, projectA, nil), 404, c.typ, c.msg)
			wantVPNFault(t, c.del(c.id), 404, c.typ, c.msg)
		}
		if r := e.do("DELETE", ikePath+"/"+ike2.ID, projectA, nil); r.status != 204 || r.raw != "" {
			t.Fatalf("DELETE = %d %q, want 204 with an empty body", r.status, r.raw)
		}
	})
}

// checkLifetimeQuirk checks that POST and PUT echo lifetime.value as sent
// (a string stays a string) while GET returns the stored int.
func checkLifetimeQuirk(t *testing.T, e *env, path, key string) {
	t.Helper()
	r := e.do("POST", path, projectA, map[string]any{key: map[string]any{"name": "echo",
		"lifetime": map[string]any{"units": "seconds", "value": "2000"}}})
	o := item(t, r, 201, key)
	if lt := o["lifetime"].(map[string]any); lt["value"] != "2000" || lt["units"] != "seconds" {
		t.Errorf("POST %s echoed lifetime %v, want the string \"2000\"", path, lt)
	}
	id := o["id"].(string)
	if lt := item(t, e.do("GET", path+"/"+id, projectA, nil), 200, key)["lifetime"].(map[string]any); lt["value"] != float64(2000) {
		t.Errorf("GET %s lifetime %v, want the int 2000", path, lt)
	}
	// A partial lifetime on PUT keeps the units and echoes the string.
	o = item(t, e.do("PUT", path+"/"+id, projectA, map[string]any{key: map[string]any{"lifetime": map[string]any{"value": "3000"}}}), 200, key)
	if lt := o["lifetime"].(map[string]any); lt["value"] != "3000" || lt["units"] != "seconds" {
		t.Errorf("PUT %s echoed lifetime %v, want seconds/\"3000\"", path, lt)
	}
	if lt := item(t, e.do("GET", path+"/"+id, projectA, nil), 200, key)["lifetime"].(map[string]any); lt["value"] != float64(3000) || lt["units"] != "seconds" {
		t.Errorf("GET %s after PUT lifetime %v, want seconds/3000", path, lt)
	}
	o = item(t, e.do("PUT", path+"/"+id, projectA, map[string]any{key: map[string]any{"lifetime": map[string]any{"value": 7000}}}), 200, key)
	if lt := o["lifetime"].(map[string]any); lt["value"] != float64(7000) || lt["units"] != "seconds" {
		t.Errorf("PUT %s lifetime {value: 7000} = %v, want seconds/7000", path, lt)
	}
	// null lifetime means {}: the defaults.
	o = item(t, e.do("POST", path, projectA, map[string]any{key: map[string]any{"name": "null-lifetime", "lifetime": nil}}), 201, key)
	if lt := o["lifetime"].(map[string]any); lt["value"] != float64(3600) || lt["units"] != "seconds" {
		t.Errorf("POST %s lifetime null = %v, want seconds/3600", path, lt)
	}
	o = item(t, e.do("POST", path, projectA, map[string]any{key: map[string]any{"name": "empty-lifetime", "lifetime": map[string]any{}}}), 201, key)
	if lt := o["lifetime"].(map[string]any); lt["value"] != float64(3600) || lt["units"] != "seconds" {
		t.Errorf("POST %s lifetime {} = %v, want seconds/3600", path, lt)
	}
}

func TestVPNLegacyFlow(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		tp := newVPNTopo(t, e)
		aliveAgent(t, e)
		ike := mkIKE(t, e.a, "ike")
		ipsec := mkIPsec(t, e.a, "ipsec", "")

		// VPN service in legacy mode: DOWN until it has connections, and the
		// gateway addresses are in the POST response already.
		svc := must[*services.Service](t)(services.Create(ctx, e.a, services.CreateOpts{
			Name: "svc", Description: "legacy", RouterID: tp.router, SubnetID: tp.sub, AdminStateUp: ptr(true)}).Extract())
		if svc.Status != "DOWN" || svc.RouterID != tp.router || svc.SubnetID != tp.sub || svc.ExternalV4IP != tp.gw4 ||
			svc.ExternalV6IP != tp.gw6 || svc.FlavorID != "" || !svc.AdminStateUp || svc.ProjectID != projectA ||
			svc.TenantID != projectA || svc.Name != "svc" || svc.Description != "legacy" {
			t.Fatalf("VPN service = %+v (gateway %s %s)", svc, tp.gw4, tp.gw6)
		}
		raw := item(t, e.do("GET", svcPath+"/"+svc.ID, projectA, nil), 200, "vpnservice")
		hasKeys(t, raw, "id", "tenant_id", "project_id", "name", "description", "router_id", "subnet_id", "admin_state_up",
			"flavor_id", "external_v4_ip", "external_v6_ip", "status")
		if raw["flavor_id"] != nil {
			t.Errorf("flavor_id = %v, want null", raw["flavor_id"])
		}
		if got := must[*services.Service](t)(services.Get(ctx, e.a, svc.ID).Extract()); !reflect.DeepEqual(got, svc) {
			t.Fatalf("GET = %+v, POST = %+v", got, svc)
		}
		svc = must[*services.Service](t)(services.Update(ctx, e.a, svc.ID, services.UpdateOpts{Name: ptr("svc-legacy")}).Extract())
		if svc.Name != "svc-legacy" || svc.Description != "legacy" || svc.SubnetID != tp.sub {
			t.Fatalf("updated service = %+v", svc)
		}
		pages := must[pagination.Page](t)(services.List(e.a, services.ListOpts{Name: "svc-legacy"}).AllPages(ctx))
		if got := must[[]services.Service](t)(services.ExtractServices(pages)); len(got) != 1 || got[0].ID != svc.ID {
			t.Fatalf("list by name = %+v", got)
		}
		if got := listIDs(t, e, svcPath+"?id="+svc.ID+"&router_id="+tp.router, "vpnservices", projectA); !slices.Equal(got, []string{svc.ID}) {
			t.Fatalf("list by id and router = %v", got)
		}
		// admin_state_up given as a string is converted.
		r := e.do("PUT", svcPath+"/"+svc.ID, projectA, map[string]any{"vpnservice": map[string]any{"admin_state_up": "false"}})
		if o := item(t, r, 200, "vpnservice"); o["admin_state_up"] != false {
			t.Fatalf("admin_state_up = %v", o["admin_state_up"])
		}
		svc = must[*services.Service](t)(services.Update(ctx, e.a, svc.ID, services.UpdateOpts{AdminStateUp: ptr(true)}).Extract())

		// Connection with every default.
		conn := mkConn(t, e.a, siteconnections.CreateOpts{Name: "c1", VPNServiceID: svc.ID, IKEPolicyID: ike, IPSecPolicyID: ipsec,
			PeerAddress: "192.0.2.10", PeerID: "peer@example.org", PSK: "s3cret", PeerCIDRs: []string{"192.168.10.0/24", "192.168.11.0/24"}})
		if conn.Status != "PENDING_CREATE" || conn.RouteMode != "static" || conn.AuthMode != "psk" || conn.MTU != 1500 ||
			conn.Initiator != "bi-directional" || conn.DPD != (siteconnections.DPD{Action: "hold", Interval: 30, Timeout: 120}) ||
			!conn.AdminStateUp || conn.PSK != "s3cret" || conn.LocalID != "" || conn.LocalEPGroupID != "" || conn.PeerEPGroupID != "" ||
			conn.PeerAddress != "192.0.2.10" || conn.PeerID != "peer@example.org" || conn.VPNServiceID != svc.ID ||
			conn.IKEPolicyID != ike || conn.IPSecPolicyID != ipsec || conn.ProjectID != projectA || conn.TenantID != projectA ||
			!slices.Equal(conn.PeerCIDRs, []string{"192.168.10.0/24", "192.168.11.0/24"}) || conn.Name != "c1" || conn.Description != "" {
			t.Fatalf("connection = %+v", conn)
		}
		raw = item(t, e.do("GET", connPath+"/"+conn.ID, projectA, nil), 200, "ipsec_site_connection")
		hasKeys(t, raw, "id", "tenant_id", "project_id", "name", "description", "vpnservice_id", "ikepolicy_id", "ipsecpolicy_id",
			"peer_address", "peer_id", "local_id", "peer_cidrs", "local_ep_group_id", "peer_ep_group_id", "route_mode", "mtu",
			"initiator", "auth_mode", "psk", "dpd", "admin_state_up", "status", "status_reason")
		if raw["local_ep_group_id"] != nil || raw["peer_ep_group_id"] != nil || raw["psk"] != "s3cret" || raw["status_reason"] != nil {
			t.Errorf("connection = %v", raw)
		}
		if got := must[*siteconnections.Connection](t)(siteconnections.Get(ctx, e.a, conn.ID).Extract()); !reflect.DeepEqual(got, conn) {
			t.Fatalf("GET = %+v, POST = %+v", got, conn)
		}
		pages = must[pagination.Page](t)(siteconnections.List(e.a, siteconnections.ListOpts{Name: "c1"}).AllPages(ctx))
		if got := must[[]siteconnections.Connection](t)(siteconnections.ExtractConnections(pages)); len(got) != 1 || got[0].ID != conn.ID || got[0].PSK != "s3cret" {
			t.Fatalf("list by name = %+v", got)
		}
		for _, q := range []string{"?id=" + conn.ID, "?vpnservice_id=" + svc.ID, "?ikepolicy_id=" + ike, "?peer_address=192.0.2.10", "?status=PENDING_CREATE"} {
			if got := listIDs(t, e, connPath+q, "ipsec_site_connections", projectA); !slices.Equal(got, []string{conn.ID}) {
				t.Errorf("list %s = %v", q, got)
			}
		}

		// In use: policies can be neither updated (even the name) nor
		// deleted, nor can the service.
		_, err := ikepolicies.Update(ctx, e.a, ike, ikepolicies.UpdateOpts{Name: ptr("x")}).Extract()
		wantVPNFault(t, err, 409, "IKEPolicyInUse", "IKEPolicy "+ike+" is in use by existing IPsecSiteConnection and can't be updated or deleted")
		_, err = ikepolicies.Update(ctx, e.a, ike, ikepolicies.UpdateOpts{Description: ptr("x")}).Extract()
		wantFault(t, err, 409, "IKEPolicyInUse")
		wantVPNFault(t, ikepolicies.Delete(ctx, e.a, ike).ExtractErr(), 409, "IKEPolicyInUse", ike)
		_, err = ipsecpolicies.Update(ctx, e.a, ipsec, ipsecpolicies.UpdateOpts{Name: ptr("x")}).Extract()
		wantVPNFault(t, err, 409, "IPsecPolicyInUse", "IPsecPolicy "+ipsec+" is in use by existing IPsecSiteConnection and can't be updated or deleted")
		wantVPNFault(t, ipsecpolicies.Delete(ctx, e.a, ipsec).ExtractErr(), 409, "IPsecPolicyInUse", ipsec)
		wantVPNFault(t, services.Delete(ctx, e.a, svc.ID).ExtractErr(), 409, "VPNServiceInUse", "VPNService "+svc.ID+" is still in use")

		// A connection in PENDING_CREATE may be updated before the agent
		// reports it (the reference refuses with VPNStateInvalidToUpdate);
		// it stays pending, and the agent applies the newest state.
		pend := must[*siteconnections.Connection](t)(siteconnections.Update(ctx, e.a, conn.ID, siteconnections.UpdateOpts{Description: ptr("while pending")}).Extract())
		if pend.Description != "while pending" || pend.Status != "PENDING_CREATE" {
			t.Fatalf("update while pending = %+v", pend)
		}
		if err := e.svc.UpdateVPNStatus(ctx, []service.VPNServiceStatus{{ID: svc.ID, Status: "ACTIVE", UpdatedPendingStatus: true,
			Connections: map[string]service.ConnectionStatus{conn.ID: {Status: "ACTIVE", UpdatedPendingStatus: true}}}}); err != nil {
			t.Fatal(err)
		}
		upd := must[*siteconnections.Connection](t)(siteconnections.Update(ctx, e.a, conn.ID, siteconnections.UpdateOpts{
			Name: ptr("c1b"), Description: ptr("updated"), MTU: 1400, Initiator: siteconnections.InitiatorResponseOnly, PSK: "n3w",
			DPD: &siteconnections.DPDUpdateOpts{Action: siteconnections.ActionRestart, Interval: 10}, LocalID: "left@example.org",
			PeerCIDRs: []string{"192.168.12.0/24", "192.168.13.0/24"}, PeerID: "192.0.2.11", PeerAddress: "192.0.2.11",
		}).Extract())
		if upd.Name != "c1b" || upd.Description != "updated" || upd.MTU != 1400 || upd.Initiator != "response-only" || upd.PSK != "n3w" ||
			upd.DPD != (siteconnections.DPD{Action: "restart", Interval: 10, Timeout: 120}) || upd.LocalID != "left@example.org" ||
			upd.PeerID != "192.0.2.11" || upd.PeerAddress != "192.0.2.11" || upd.RouteMode != "static" || upd.AuthMode != "psk" ||
			upd.VPNServiceID != svc.ID || upd.IKEPolicyID != ike {
			t.Fatalf("updated connection = %+v", upd)
		}
		cidrs := slices.Clone(upd.PeerCIDRs)
		slices.Sort(cidrs) // the reference returns list(set(...))
		if !slices.Equal(cidrs, []string{"192.168.12.0/24", "192.168.13.0/24"}) {
			t.Fatalf("updated peer_cidrs = %v", upd.PeerCIDRs)
		}
		got := must[*siteconnections.Connection](t)(siteconnections.Get(ctx, e.a, conn.ID).Extract())
		if got.MTU != 1400 || got.PSK != "n3w" || got.DPD != upd.DPD || got.Status != "ACTIVE" {
			t.Fatalf("GET after PUT = %+v", got)
		}
		// A bare string is a one-item list; mtu may be a string; an FQDN
		// peer is resolved and the IP stored.
		r = e.do("PUT", connPath+"/"+conn.ID, projectA, map[string]any{"ipsec_site_connection": map[string]any{
			"peer_cidrs": "192.168.14.0/24", "mtu": "1500", "peer_address": "localhost", "admin_state_up": false}})
		o := item(t, r, 200, "ipsec_site_connection")
		if pc := o["peer_cidrs"].([]any); len(pc) != 1 || pc[0] != "192.168.14.0/24" || o["mtu"] != float64(1500) ||
			o["peer_address"] != "127.0.0.1" || o["admin_state_up"] != false {
			t.Fatalf("PUT = %v", o)
		}
		// The policy stays locked while the connection exists.
		_, err = ikepolicies.Update(ctx, e.a, ike, ikepolicies.UpdateOpts{Name: ptr("x")}).Extract()
		wantFault(t, err, 409, "IKEPolicyInUse")

		// Deleting the last connection makes the service DOWN and frees
		// the policies and the service.
		if got := must[*services.Service](t)(services.Get(ctx, e.a, svc.ID).Extract()); got.Status != "ACTIVE" {
			t.Fatalf("service status = %s, want ACTIVE", got.Status)
		}
		must[struct{}](t)(struct{}{}, siteconnections.Delete(ctx, e.a, conn.ID).ExtractErr())
		_, err = siteconnections.Get(ctx, e.a, conn.ID).Extract()
		wantVPNFault(t, err, 404, "IPsecSiteConnectionNotFound", "ipsec_site_connection "+conn.ID+" not found")
		wantFault(t, siteconnections.Delete(ctx, e.a, conn.ID).ExtractErr(), 404, "IPsecSiteConnectionNotFound")
		if got := must[*services.Service](t)(services.Get(ctx, e.a, svc.ID).Extract()); got.Status != "DOWN" {
			t.Fatalf("service status after the last connection went = %s, want DOWN", got.Status)
		}
		must[*ikepolicies.Policy](t)(ikepolicies.Update(ctx, e.a, ike, ikepolicies.UpdateOpts{Name: ptr("free")}).Extract())
		must[struct{}](t)(struct{}{}, services.Delete(ctx, e.a, svc.ID).ExtractErr())
		_, err = services.Get(ctx, e.a, svc.ID).Extract()
		wantVPNFault(t, err, 404, "VPNServiceNotFound", "VPNService "+svc.ID+" could not be found")
		must[struct{}](t)(struct{}{}, ikepolicies.Delete(ctx, e.a, ike).ExtractErr())
		must[struct{}](t)(struct{}{}, ipsecpolicies.Delete(ctx, e.a, ipsec).ExtractErr())
		// With no VPN service left, the router's interface and gateway go.
		must[*routers.InterfaceInfo](t)(routers.RemoveInterface(ctx, e.a, tp.router, routers.RemoveInterfaceOpts{SubnetID: tp.sub}).Extract())
		must[*routers.Router](t)(routers.Update(ctx, e.a, tp.router, routers.UpdateOpts{GatewayInfo: &routers.GatewayInfo{}}).Extract())
	})
}

func TestVPNEndpointGroupFlow(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		tp := newVPNTopo(t, e)
		aliveAgent(t, e)
		ike := mkIKE(t, e.a, "ike")
		ipsec := mkIPsec(t, e.a, "ipsec", "")

		local := must[*endpointgroups.EndpointGroup](t)(endpointgroups.Create(ctx, e.a, endpointgroups.CreateOpts{
			Name: "local", Description: "mine", Type: endpointgroups.TypeSubnet, Endpoints: []string{tp.sub}}).Extract())
		if local.Type != "subnet" || !slices.Equal(local.Endpoints, []string{tp.sub}) || local.Name != "local" ||
			local.Description != "mine" || local.ProjectID != projectA || local.TenantID != projectA {
			t.Fatalf("endpoint group = %+v", local)
		}
		peer := must[*endpointgroups.EndpointGroup](t)(endpointgroups.Create(ctx, e.a, endpointgroups.CreateOpts{
			Name: "peer", Type: endpointgroups.TypeCIDR, Endpoints: []string{"192.168.20.0/24", "192.168.21.5/24"}}).Extract())
		if peer.Type != "cidr" || !slices.Equal(peer.Endpoints, []string{"192.168.20.0/24", "192.168.21.5/24"}) || peer.Description != "" {
			t.Fatalf("endpoint group = %+v", peer)
		}
		raw := item(t, e.do("GET", egPath+"/"+peer.ID, projectA, nil), 200, "endpoint_group")
		hasKeys(t, raw, "id", "tenant_id", "project_id", "name", "description", "type", "endpoints")
		if got := must[*endpointgroups.EndpointGroup](t)(endpointgroups.Get(ctx, e.a, local.ID).Extract()); !reflect.DeepEqual(got, local) {
			t.Fatalf("GET = %+v, POST = %+v", got, local)
		}
		// endpoints as a bare string (tempest does this); opaque types.
		o := item(t, e.do("POST", egPath, projectA, map[string]any{"endpoint_group": map[string]any{"type": "subnet", "endpoints": tp.sub6}}), 201, "endpoint_group")
		if eps := o["endpoints"].([]any); len(eps) != 1 || eps[0] != tp.sub6 {
			t.Fatalf("bare-string endpoints = %v", o)
		}
		local6 := o["id"].(string)
		for _, typ := range []endpointgroups.EndpointType{endpointgroups.TypeVLAN, endpointgroups.TypeNetwork, endpointgroups.TypeRouter} {
			g := must[*endpointgroups.EndpointGroup](t)(endpointgroups.Create(ctx, e.a, endpointgroups.CreateOpts{
				Name: "opaque-" + string(typ), Type: typ, Endpoints: []string{"anything", "100"}}).Extract())
			if g.Type != string(typ) || !slices.Equal(g.Endpoints, []string{"anything", "100"}) {
				t.Fatalf("%s group = %+v", typ, g)
			}
		}
		pages := must[pagination.Page](t)(endpointgroups.List(e.a, endpointgroups.ListOpts{Type: "cidr"}).AllPages(ctx))
		if got := must[[]endpointgroups.EndpointGroup](t)(endpointgroups.ExtractEndpointGroups(pages)); len(got) != 1 || got[0].ID != peer.ID {
			t.Fatalf("list by type = %+v", got)
		}
		if got := listIDs(t, e, egPath+"?name=local", "endpoint_groups", projectA); !slices.Equal(got, []string{local.ID}) {
			t.Fatalf("list by name = %v", got)
		}
		if got := listIDs(t, e, egPath+"?id="+peer.ID, "endpoint_groups", projectA); !slices.Equal(got, []string{peer.ID}) {
			t.Fatalf("list by id = %v", got)
		}
		upd := must[*endpointgroups.EndpointGroup](t)(endpointgroups.Update(ctx, e.a, peer.ID, endpointgroups.UpdateOpts{
			Name: ptr("peer-renamed"), Description: ptr("theirs")}).Extract())
		if upd.Name != "peer-renamed" || upd.Description != "theirs" || upd.Type != "cidr" || len(upd.Endpoints) != 2 {
			t.Fatalf("updated group = %+v", upd)
		}

		// A VPN service without a subnet and a connection using both groups.
		svc := mkService(t, e.a, "svc-eg", tp.router, "")
		if svc.SubnetID != "" || svc.Status != "DOWN" || svc.ExternalV4IP != tp.gw4 || svc.ExternalV6IP != tp.gw6 {
			t.Fatalf("service = %+v", svc)
		}
		if raw := item(t, e.do("GET", svcPath+"/"+svc.ID, projectA, nil), 200, "vpnservice"); raw["subnet_id"] != nil {
			t.Fatalf("subnet_id = %v, want null", raw["subnet_id"])
		}
		conn := mkConn(t, e.a, siteconnections.CreateOpts{Name: "eg", VPNServiceID: svc.ID, IKEPolicyID: ike, IPSecPolicyID: ipsec,
			PeerAddress: "192.0.2.20", PeerID: "192.0.2.20", PSK: "secret", LocalEPGroupID: local.ID, PeerEPGroupID: peer.ID})
		if conn.LocalEPGroupID != local.ID || conn.PeerEPGroupID != peer.ID || len(conn.PeerCIDRs) != 0 || conn.Status != "PENDING_CREATE" {
			t.Fatalf("connection = %+v", conn)
		}
		if raw := item(t, e.do("GET", connPath+"/"+conn.ID, projectA, nil), 200, "ipsec_site_connection"); raw["peer_cidrs"] == nil {
			t.Fatalf("peer_cidrs = null, want []")
		}
		for _, q := range []string{"?local_ep_group_id=" + local.ID, "?peer_ep_group_id=" + peer.ID} {
			if got := listIDs(t, e, connPath+q, "ipsec_site_connections", projectA); !slices.Equal(got, []string{conn.ID}) {
				t.Errorf("list %s = %v", q, got)
			}
		}
		// v6 inside v6, and v4 inside a v6 tunnel (the outer family may differ).
		peer6 := mkGroup(t, e.a, "peer6", endpointgroups.TypeCIDR, "fd00:99::/64")
		c6 := mkConn(t, e.a, siteconnections.CreateOpts{VPNServiceID: svc.ID, IKEPolicyID: ike, IPSecPolicyID: ipsec,
			PeerAddress: "2001:db8:99::1", PeerID: "2001:db8:99::1", PSK: "secret", LocalEPGroupID: local6, PeerEPGroupID: peer6, MTU: 1280})
		c46 := mkConn(t, e.a, siteconnections.CreateOpts{VPNServiceID: svc.ID, IKEPolicyID: ike, IPSecPolicyID: ipsec,
			PeerAddress: "2001:db8:99::2", PeerID: "2001:db8:99::2", PSK: "secret", LocalEPGroupID: local.ID, PeerEPGroupID: peer.ID, MTU: 68})
		if c6.MTU != 1280 || c46.MTU != 68 || c46.PeerAddress != "2001:db8:99::2" {
			t.Fatalf("connections = %+v %+v", c6, c46)
		}

		// Groups in use: 400, not 409; renaming is still allowed.
		wantVPNFault(t, endpointgroups.Delete(ctx, e.a, local.ID).ExtractErr(), 400, "EndpointGroupInUse",
			"Endpoint group "+local.ID+" is in use and cannot be deleted")
		wantVPNFault(t, endpointgroups.Delete(ctx, e.a, peer.ID).ExtractErr(), 400, "EndpointGroupInUse", peer.ID)
		must[*endpointgroups.EndpointGroup](t)(endpointgroups.Update(ctx, e.a, local.ID, endpointgroups.UpdateOpts{Name: ptr("local-renamed")}).Extract())
		// A subnet of a local group in use cannot leave the router.
		_, err := routers.RemoveInterface(ctx, e.a, tp.router, routers.RemoveInterfaceOpts{SubnetID: tp.sub}).Extract()
		wantVPNFault(t, err, 409, "SubnetInUseByIPsecSiteConnection", "Subnet "+tp.sub+" is used by ipsec site connection ")
		// A subnet listed in any subnet group cannot be deleted.
		off := mkGroup(t, e.a, "off", endpointgroups.TypeSubnet, tp.subOff)
		wantVPNFault(t, subnets.Delete(ctx, e.a, tp.subOff).ExtractErr(), 409, "SubnetInUse", "is used by endpoint group")
		wantVPNFault(t, subnets.Delete(ctx, e.a, tp.subOff).ExtractErr(), 409, "SubnetInUse", off)
		must[struct{}](t)(struct{}{}, endpointgroups.Delete(ctx, e.a, off).ExtractErr())
		must[struct{}](t)(struct{}{}, subnets.Delete(ctx, e.a, tp.subOff).ExtractErr())

		// Connections updated in endpoint-group mode keep their mode.
		if err := e.svc.UpdateVPNStatus(ctx, []service.VPNServiceStatus{{ID: svc.ID, Status: "ACTIVE",
			Connections: map[string]service.ConnectionStatus{conn.ID: {Status: "DOWN", UpdatedPendingStatus: true}}}}); err != nil {
			t.Fatal(err)
		}
		peer2 := mkGroup(t, e.a, "peer2", endpointgroups.TypeCIDR, "192.168.30.0/24")
		cu := must[*siteconnections.Connection](t)(siteconnections.Update(ctx, e.a, conn.ID, siteconnections.UpdateOpts{PeerEPGroupID: peer2}).Extract())
		if cu.PeerEPGroupID != peer2 || cu.LocalEPGroupID != local.ID {
			t.Fatalf("updated connection = %+v", cu)
		}
		wantFault(t, endpointgroups.Delete(ctx, e.a, peer.ID).ExtractErr(), 400, "EndpointGroupInUse") // still c46's
		for _, id := range []string{conn.ID, c6.ID, c46.ID} {
			must[struct{}](t)(struct{}{}, siteconnections.Delete(ctx, e.a, id).ExtractErr())
		}
		must[struct{}](t)(struct{}{}, endpointgroups.Delete(ctx, e.a, peer.ID).ExtractErr())
		_, err = endpointgroups.Get(ctx, e.a, peer.ID).Extract()
		wantVPNFault(t, err, 404, "VPNEndpointGroupNotFound", "Endpoint group "+peer.ID+" could not be found")
		for _, id := range []string{local.ID, local6, peer6, peer2} {
			must[struct{}](t)(struct{}{}, endpointgroups.Delete(ctx, e.a, id).ExtractErr())
		}
		must[*routers.InterfaceInfo](t)(routers.RemoveInterface(ctx, e.a, tp.router, routers.RemoveInterfaceOpts{SubnetID: tp.sub}).Extract())
	})
}

func TestVPNStatusMerge(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		tp := newVPNTopo(t, e)
		aliveAgent(t, e)
		ike := mkIKE(t, e.a, "ike")
		ipsec := mkIPsec(t, e.a, "ipsec", "")
		svc := mkService(t, e.a, "svc", tp.router, tp.sub)
		c1 := mkConn(t, e.a, legacyConn("c1", svc.ID, ike, ipsec))
		c2 := mkConn(t, e.a, legacyConn("c2", svc.ID, ike, ipsec))
		status := func(path, key, id string) string {
			t.Helper()
			return item(t, e.do("GET", path+"/"+id, projectA, nil), 200, key)["status"].(string)
		}
		want := func(step, svcWant, c1Want, c2Want string) {
			t.Helper()
			s, s1, s2 := status(svcPath, "vpnservice", svc.ID), status(connPath, "ipsec_site_connection", c1.ID), status(connPath, "ipsec_site_connection", c2.ID)
			if s != svcWant || s1 != c1Want || s2 != c2Want {
				t.Fatalf("%s: service/c1/c2 = %s/%s/%s, want %s/%s/%s", step, s, s1, s2, svcWant, c1Want, c2Want)
			}
		}
		report := func(rs ...service.VPNServiceStatus) {
			t.Helper()
			if err := e.svc.UpdateVPNStatus(ctx, rs); err != nil {
				t.Fatalf("UpdateVPNStatus: %v", err)
			}
		}
		cs := func(st string, pending bool) service.ConnectionStatus {
			return service.ConnectionStatus{Status: st, UpdatedPendingStatus: pending}
		}
		want("created", "DOWN", "PENDING_CREATE", "PENDING_CREATE")
		// PENDING_* is kept without updated_pending_status; DOWN is not pending.
		report(service.VPNServiceStatus{ID: svc.ID, Status: "ACTIVE",
			Connections: map[string]service.ConnectionStatus{c1.ID: cs("ACTIVE", false), c2.ID: cs("DOWN", false)}})
		want("report without updated_pending_status", "ACTIVE", "PENDING_CREATE", "PENDING_CREATE")
		// With it, pending states are replaced.
		report(service.VPNServiceStatus{ID: svc.ID, Status: "ACTIVE", UpdatedPendingStatus: true,
			Connections: map[string]service.ConnectionStatus{c1.ID: cs("ACTIVE", true), c2.ID: cs("DOWN", true)}})
		want("report with updated_pending_status", "ACTIVE", "ACTIVE", "DOWN")
		// Settled states are always replaced.
		report(service.VPNServiceStatus{ID: svc.ID, Status: "DOWN",
			Connections: map[string]service.ConnectionStatus{c1.ID: cs("ERROR", false), c2.ID: cs("ACTIVE", false)}})
		want("report on settled states", "DOWN", "ERROR", "ACTIVE")
		// A duplicate report is harmless; a connection not in the report keeps its status.
		report(service.VPNServiceStatus{ID: svc.ID, Status: "DOWN", Connections: map[string]service.ConnectionStatus{c1.ID: cs("ERROR", false)}},
			service.VPNServiceStatus{ID: svc.ID, Status: "DOWN", Connections: map[string]service.ConnectionStatus{c1.ID: cs("ERROR", false)}})
		want("duplicate report", "DOWN", "ERROR", "ACTIVE")
		// Unknown ids are ignored.
		report(service.VPNServiceStatus{ID: noSuchID, Status: "ACTIVE", UpdatedPendingStatus: true,
			Connections: map[string]service.ConnectionStatus{c1.ID: cs("DOWN", true)}},
			service.VPNServiceStatus{ID: svc.ID, Status: "ACTIVE", Connections: map[string]service.ConnectionStatus{
				noSuchID: cs("ACTIVE", true), c1.ID: cs("ACTIVE", false)}})
		want("unknown ids", "ACTIVE", "ACTIVE", "ACTIVE")
		// Agents report settled states only; a bad report changes nothing.
		for _, bad := range []service.VPNServiceStatus{
			{ID: svc.ID, Status: "PENDING_CREATE"},
			{ID: svc.ID, Status: "DOWN", Connections: map[string]service.ConnectionStatus{c1.ID: cs("BUILD", true)}},
		} {
			if err := e.svc.UpdateVPNStatus(ctx, []service.VPNServiceStatus{bad}); err == nil {
				t.Fatalf("report %+v accepted", bad)
			}
		}
		want("rejected reports", "ACTIVE", "ACTIVE", "ACTIVE")
		// A service without connections is DOWN whatever the report says.
		idle := mkService(t, e.a, "idle", tp.router, "")
		report(service.VPNServiceStatus{ID: idle.ID, Status: "ACTIVE", UpdatedPendingStatus: true})
		if s := status(svcPath, "vpnservice", idle.ID); s != "DOWN" {
			t.Fatalf("service without connections = %s, want DOWN", s)
		}
		// The last connection going makes the service DOWN.
		must[struct{}](t)(struct{}{}, siteconnections.Delete(ctx, e.a, c1.ID).ExtractErr())
		if s := status(svcPath, "vpnservice", svc.ID); s != "ACTIVE" {
			t.Fatalf("service with one connection left = %s, want ACTIVE", s)
		}
		must[struct{}](t)(struct{}{}, siteconnections.Delete(ctx, e.a, c2.ID).ExtractErr())
		if s := status(svcPath, "vpnservice", svc.ID); s != "DOWN" {
			t.Fatalf("service without connections = %s, want DOWN", s)
		}
		report(service.VPNServiceStatus{ID: svc.ID, Status: "ACTIVE"})
		if s := status(svcPath, "vpnservice", svc.ID); s != "DOWN" {
			t.Fatalf("service without connections reported ACTIVE = %s, want DOWN", s)
		}
	})
}

func TestVPNCoreCallbacks(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		tp := newVPNTopo(t, e)
		svc := mkService(t, e.a, "svc", tp.router, tp.sub)

		// The gateway of a router a VPN service uses cannot be cleared.
		_, err := routers.Update(ctx, e.a, tp.router, routers.UpdateOpts{GatewayInfo: &routers.GatewayInfo{}}).Extract()
		// The contract writes "VPN service(s) ({ids})"; only the fixed part
		// and the id are checked.
		wantVPNFault(t, err, 409, "RouterInUse", "Router "+tp.router+" is currently used by VPN service")
		wantVPNFault(t, err, 409, "RouterInUse", svc.ID)
		wantReply(t, e.do("PUT", "/v2.0/routers/"+tp.router, projectA, map[string]any{"router": map[string]any{"external_gateway_info": nil}}),
			409, "RouterInUse", "is currently used by VPN service")
		// Nor can the interface on its subnet go, by subnet or by port.
		_, err = routers.RemoveInterface(ctx, e.a, tp.router, routers.RemoveInterfaceOpts{SubnetID: tp.sub}).Extract()
		wantVPNFault(t, err, 409, "SubnetInUseByVPNService", "Subnet "+tp.sub+" is used by VPNService "+svc.ID)
		var ifPort string
		for _, p := range e.do("GET", "/v2.0/ports?device_id="+tp.router+"&device_owner=network:router_interface", projectA, nil).body["ports"].([]any) {
			p := p.(map[string]any)
			if p["fixed_ips"].([]any)[0].(map[string]any)["subnet_id"] == tp.sub {
				ifPort = p["id"].(string)
			}
		}
		_, err = routers.RemoveInterface(ctx, e.a, tp.router, routers.RemoveInterfaceOpts{PortID: ifPort}).Extract()
		wantVPNFault(t, err, 409, "SubnetInUseByVPNService", "Subnet "+tp.sub+" is used by VPNService "+svc.ID)
		// Other interfaces may go.
		must[*routers.InterfaceInfo](t)(routers.RemoveInterface(ctx, e.a, tp.router, routers.RemoveInterfaceOpts{SubnetID: tp.sub6}).Extract())
		// A rename does not touch the gateway.
		must[*routers.Router](t)(routers.Update(ctx, e.a, tp.router, routers.UpdateOpts{Name: "renamed"}).Extract())

		// A router with only a gateway and a VPN service cannot be deleted.
		r2, r2gw4, _ := mkRouter(t, e.a, "r2", tp.ext)
		svc2 := mkService(t, e.a, "svc2", r2, "")
		if svc2.ExternalV4IP != r2gw4 {
			t.Fatalf("external_v4_ip = %q, want %q", svc2.ExternalV4IP, r2gw4)
		}
		wantVPNFault(t, routers.Delete(ctx, e.a, r2).ExtractErr(), 409, "RouterInUse", "Router "+r2+" is currently used by VPN service")
		wantVPNFault(t, routers.Delete(ctx, e.a, r2).ExtractErr(), 409, "RouterInUse", svc2.ID)
		if _, err := routers.Get(ctx, e.a, r2).Extract(); err != nil {
			t.Fatalf("router deleted despite the 409: %v", err)
		}

		// external_v4_ip/external_v6_ip follow the gateway's addresses.
		gwIPs := func(id string) (v4, v6 string) {
			r := must[*routers.Router](t)(routers.Get(ctx, e.admin, id).Extract())
			for _, ip := range r.GatewayInfo.ExternalFixedIPs {
				if strings.Contains(ip.IPAddress, ":") {
					if v6 == "" {
						v6 = ip.IPAddress
					}
				} else if v4 == "" {
					v4 = ip.IPAddress
				}
			}
			return v4, v6
		}
		for _, fixed := range [][]routers.ExternalFixedIP{
			{{SubnetID: tp.extSub4, IPAddress: "203.0.113.200"}, {SubnetID: tp.extSub6}},
			{{SubnetID: tp.extSub4, IPAddress: "203.0.113.201"}},
		} {
			must[*routers.Router](t)(routers.Update(ctx, e.admin, tp.router, routers.UpdateOpts{
				GatewayInfo: &routers.GatewayInfo{NetworkID: tp.ext, ExternalFixedIPs: fixed}}).Extract())
			v4, v6 := gwIPs(tp.router)
			if v4 != fixed[0].IPAddress {
				t.Fatalf("gateway v4 = %s, want %s", v4, fixed[0].IPAddress)
			}
			got := must[*services.Service](t)(services.Get(ctx, e.a, svc.ID).Extract())
			if got.ExternalV4IP != v4 || got.ExternalV6IP != v6 {
				t.Fatalf("external IPs = %q/%q, want the gateway's %q/%q", got.ExternalV4IP, got.ExternalV6IP, v4, v6)
			}
			if raw := item(t, e.do("GET", svcPath+"/"+svc.ID, projectA, nil), 200, "vpnservice"); v6 == "" && raw["external_v6_ip"] != nil {
				t.Fatalf("external_v6_ip = %v, want null", raw["external_v6_ip"])
			}
		}
		// The other router's service is untouched.
		if got := must[*services.Service](t)(services.Get(ctx, e.a, svc2.ID).Extract()); got.ExternalV4IP != r2gw4 {
			t.Fatalf("unrelated service's external_v4_ip = %q, want %q", got.ExternalV4IP, r2gw4)
		}

		// Without VPN services the router is free again.
		must[struct{}](t)(struct{}{}, services.Delete(ctx, e.a, svc2.ID).ExtractErr())
		must[struct{}](t)(struct{}{}, routers.Delete(ctx, e.a, r2).ExtractErr())
		must[struct{}](t)(struct{}{}, services.Delete(ctx, e.a, svc.ID).ExtractErr())
		must[*routers.InterfaceInfo](t)(routers.RemoveInterface(ctx, e.a, tp.router, routers.RemoveInterfaceOpts{SubnetID: tp.sub}).Extract())
		must[*routers.Router](t)(routers.Update(ctx, e.a, tp.router, routers.UpdateOpts{GatewayInfo: &routers.GatewayInfo{}}).Extract())
		must[struct{}](t)(struct{}{}, routers.Delete(ctx, e.a, tp.router).ExtractErr())
	})
}

// TestVPNGatewayNetworkSwitch moves the gateway of a router with a VPN
// service to another external network. The reference deletes the old
// gateway port on such a move, which publishes ROUTER_GATEWAY
// BEFORE_DELETE, the event whose VPN check refuses with RouterInUse (contract
// section 5); only a change of addresses on the same network is allowed.
func TestVPNGatewayNetworkSwitch(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		tp := newVPNTopo(t, e)
		svc := mkService(t, e.a, "svc", tp.router, tp.sub)
		other, _ := mkExternal(t, e, "public-2", "198.51.100.0/24")
		_, err := routers.Update(ctx, e.a, tp.router, routers.UpdateOpts{GatewayInfo: &routers.GatewayInfo{NetworkID: other}}).Extract()
		wantVPNFault(t, err, 409, "RouterInUse", "is currently used by VPN service")
		got := must[*services.Service](t)(services.Get(ctx, e.a, svc.ID).Extract())
		if got.ExternalV4IP != tp.gw4 {
			t.Fatalf("external_v4_ip = %q after a refused move, want %q", got.ExternalV4IP, tp.gw4)
		}
		r := must[*routers.Router](t)(routers.Get(ctx, e.a, tp.router).Extract())
		if r.GatewayInfo.NetworkID != tp.ext {
			t.Fatalf("gateway moved to %s despite the 409", r.GatewayInfo.NetworkID)
		}
	})
}

func TestVPNVisibility(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		tp := newVPNTopo(t, e)
		ike := mkIKE(t, e.a, "ike")
		ipsec := mkIPsec(t, e.a, "ipsec", "")
		svc := mkService(t, e.a, "svc", tp.router, "")
		local := mkGroup(t, e.a, "local", endpointgroups.TypeSubnet, tp.sub)
		peer := mkGroup(t, e.a, "peer", endpointgroups.TypeCIDR, "192.168.40.0/24")
		const psk = "only-project-a-may-read-this"
		conn := mkConn(t, e.a, siteconnections.CreateOpts{VPNServiceID: svc.ID, IKEPolicyID: ike, IPSecPolicyID: ipsec,
			PeerAddress: "192.0.2.40", PeerID: "192.0.2.40", PSK: psk, LocalEPGroupID: local, PeerEPGroupID: peer})

		all := []struct {
			path, coll, key, id, typ string
		}{
			{ikePath, "ikepolicies", "ikepolicy", ike, "IKEPolicyNotFound"},
			{ipsecPath, "ipsecpolicies", "ipsecpolicy", ipsec, "IPsecPolicyNotFound"},
			{svcPath, "vpnservices", "vpnservice", svc.ID, "VPNServiceNotFound"},
			{egPath, "endpoint_groups", "endpoint_group", local, "VPNEndpointGroupNotFound"},
			{connPath, "ipsec_site_connections", "ipsec_site_connection", conn.ID, "IPsecSiteConnectionNotFound"},
		}
		for _, c := range all {
			// Project B: 404 on every verb, and nothing listed.
			for _, method := range []string{"GET", "PUT", "DELETE"} {
				var body any
				if method == "PUT" {
					body = map[string]any{c.key: map[string]any{"name": "stolen"}}
				}
				r := e.do(method, c.path+"/"+c.id, projectB, body)
				wantReply(t, r, 404, c.typ, c.id)
				if strings.Contains(r.raw, psk) {
					t.Fatalf("%s %s as project B leaked the PSK: %s", method, c.path, r.raw)
				}
			}
			if got := listIDs(t, e, c.path, c.coll, projectB); len(got) != 0 {
				t.Fatalf("project B lists %s: %v", c.coll, got)
			}
			if r := e.do("GET", c.path+"?id="+c.id, projectB, nil); strings.Contains(r.raw, psk) {
				t.Fatalf("project B's list leaked the PSK: %s", r.raw)
			}
			// Admin sees everything.
			if got := listIDs(t, e, c.path, c.coll, ""); !slices.Contains(got, c.id) {
				t.Fatalf("admin does not list %s %s", c.coll, c.id)
			}
			// A reader may read but not write.
			if got := listIDs(t, e, c.path, c.coll, projectA); !slices.Contains(got, c.id) {
				t.Fatalf("project A does not list %s %s", c.coll, c.id)
			}
		}
		if o := item(t, e.do("GET", connPath+"/"+conn.ID, "", nil), 200, "ipsec_site_connection"); o["psk"] != psk {
			t.Fatalf("admin reads psk %v", o["psk"])
		}
		// Project B cannot build on A's resources.
		_, err := services.Create(ctx, e.b, services.CreateOpts{RouterID: tp.router, AdminStateUp: ptr(true)}).Extract()
		wantFault(t, err, 404, "RouterNotFound")
		bike := mkIKE(t, e.b, "b-ike")
		bipsec := mkIPsec(t, e.b, "b-ipsec", "")
		_, err = siteconnections.Create(ctx, e.b, legacyConn("b", svc.ID, bike, bipsec)).Extract()
		wantFault(t, err, 404, "VPNServiceNotFound")
		_, err = endpointgroups.Create(ctx, e.b, endpointgroups.CreateOpts{Type: endpointgroups.TypeSubnet, Endpoints: []string{tp.sub}}).Extract()
		wantFault(t, err, 400, "NonExistingSubnetInEndpointGroup")
		// Project A cannot create for B; admin can create for A.
		_, err = ikepolicies.Create(ctx, e.a, ikepolicies.CreateOpts{TenantID: projectB}).Extract()
		wantFault(t, err, 400, "HTTPBadRequest") // the reference's API layer, before policies
		forA := must[*ikepolicies.Policy](t)(ikepolicies.Create(ctx, e.admin, ikepolicies.CreateOpts{Name: "by-admin", TenantID: projectA}).Extract())
		if forA.ProjectID != projectA || forA.TenantID != projectA {
			t.Fatalf("admin-created policy = %+v", forA)
		}
		must[*ikepolicies.Policy](t)(ikepolicies.Get(ctx, e.a, forA.ID).Extract())

		// Readers get 403 on every write and can still read.
		r := e.readerA
		must[*siteconnections.Connection](t)(siteconnections.Get(ctx, r, conn.ID).Extract())
		_, err = ikepolicies.Create(ctx, r, ikepolicies.CreateOpts{Name: "x"}).Extract()
		wantStatus(t, err, 403)
		_, err = ikepolicies.Update(ctx, r, forA.ID, ikepolicies.UpdateOpts{Name: ptr("x")}).Extract()
		wantStatus(t, err, 403)
		wantStatus(t, ikepolicies.Delete(ctx, r, forA.ID).ExtractErr(), 403)
		_, err = ipsecpolicies.Create(ctx, r, ipsecpolicies.CreateOpts{Name: "x"}).Extract()
		wantStatus(t, err, 403)
		_, err = services.Create(ctx, r, services.CreateOpts{RouterID: tp.router, AdminStateUp: ptr(true)}).Extract()
		wantStatus(t, err, 403)
		_, err = services.Update(ctx, r, svc.ID, services.UpdateOpts{Name: ptr("x")}).Extract()
		wantStatus(t, err, 403)
		wantStatus(t, services.Delete(ctx, r, svc.ID).ExtractErr(), 403)
		_, err = endpointgroups.Create(ctx, r, endpointgroups.CreateOpts{Type: endpointgroups.TypeCIDR, Endpoints: []string{"10.9.0.0/16"}}).Extract()
		wantStatus(t, err, 403)
		wantStatus(t, endpointgroups.Delete(ctx, r, peer).ExtractErr(), 403)
		_, err = siteconnections.Create(ctx, r, legacyConn("x", svc.ID, ike, ipsec)).Extract()
		wantStatus(t, err, 403)
		_, err = siteconnections.Update(ctx, r, conn.ID, siteconnections.UpdateOpts{Name: ptr("x")}).Extract()
		wantStatus(t, err, 403)
		wantStatus(t, siteconnections.Delete(ctx, r, conn.ID).ExtractErr(), 403)
		must[*siteconnections.Connection](t)(siteconnections.Get(ctx, e.a, conn.ID).Extract())
	})
}

// limitOpts is a gophercloud list query with a page size.
type limitOpts string

func (q limitOpts) ToPolicyListQuery() (string, error) { return string(q), nil }

func TestVPNListQueries(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		var created []string
		for _, name := range []string{"p-c", "p-a", "p-e", "p-b", "p-d"} {
			created = append(created, mkIKE(t, e.a, name))
		}
		sorted := slices.Clone(created)
		slices.Sort(sorted)
		names := func(r reply, coll string) []string {
			t.Helper()
			if r.status != 200 {
				t.Fatalf("list = %d %s", r.status, r.raw)
			}
			var out []string
			for _, o := range r.body[coll].([]any) {
				out = append(out, o.(map[string]any)["name"].(string))
			}
			return out
		}
		// Sorting on the allowed keys.
		if got := names(e.do("GET", ikePath+"?sort_key=name&sort_dir=desc", projectA, nil), "ikepolicies"); !slices.Equal(got, []string{"p-e", "p-d", "p-c", "p-b", "p-a"}) {
			t.Fatalf("sorted by name desc = %v", got)
		}
		if got := listIDs(t, e, ikePath+"?sort_key=id&sort_dir=asc", "ikepolicies", projectA); !slices.Equal(got, sorted) {
			t.Fatalf("sorted by id = %v, want %v", got, sorted)
		}
		for _, k := range []string{"project_id", "tenant_id"} {
			if got := listIDs(t, e, ikePath+"?sort_key="+k+"&sort_dir=asc", "ikepolicies", projectA); len(got) != 5 {
				t.Fatalf("sorted by %s = %v", k, got)
			}
		}
		for _, k := range []string{"auth_algorithm", "description", "lifetime", "pfs"} {
			wantReply(t, e.do("GET", ikePath+"?sort_key="+k+"&sort_dir=asc", projectA, nil), 400, "HTTPBadRequest",
				"['"+k+"'] is invalid attribute for sort_keys")
		}
		wantReply(t, e.do("GET", ipsecPath+"?sort_key=transform_protocol&sort_dir=asc", projectA, nil), 400, "HTTPBadRequest",
			"['transform_protocol'] is invalid attribute for sort_keys")
		if r := e.do("GET", ipsecPath+"?sort_key=name&sort_dir=asc&sort_key=id&sort_dir=desc", projectA, nil); r.status != 200 {
			t.Fatalf("ipsec sort = %d %s", r.status, r.raw)
		}

		// Pagination: walk forward with the links.
		var walked []string
		next := ikePath + "?limit=2&sort_key=id&sort_dir=asc"
		for pages := 0; next != ""; pages++ {
			if pages > 5 {
				t.Fatal("pagination does not end")
			}
			r := e.do("GET", next, projectA, nil)
			walked = append(walked, ids(r, "ikepolicies")...)
			// The reference links "previous" on every page of a forward walk.
			if prev := nextLink(r, "ikepolicies", "previous"); prev == "" {
				t.Fatalf("page %d has no previous link: %s", pages, r.raw)
			}
			next = nextLink(r, "ikepolicies", "next")
		}
		if !slices.Equal(walked, sorted) {
			t.Fatalf("walked %v, want %v", walked, sorted)
		}
		// gophercloud follows ikepolicies_links.
		pages := must[pagination.Page](t)(ikepolicies.List(e.a, limitOpts("?limit=2")).AllPages(ctx))
		if got := must[[]ikepolicies.Policy](t)(ikepolicies.ExtractPolicies(pages)); len(got) != 5 {
			t.Fatalf("gophercloud walked %d policies, want 5", len(got))
		}
		r := e.do("GET", ikePath+"?limit=2&sort_key=id&sort_dir=asc&page_reverse=true&marker="+sorted[4], projectA, nil)
		if got := ids(r, "ikepolicies"); !slices.Equal(got, sorted[2:4]) {
			t.Fatalf("reverse page = %v, want %v", got, sorted[2:4])
		}
		if got := listIDs(t, e, ikePath+"?limit=2&marker="+noSuchID, "ikepolicies", projectA); len(got) != 0 {
			t.Fatalf("unknown marker page = %v", got)
		}
		if got := listIDs(t, e, ikePath+"?limit=0", "ikepolicies", projectA); len(got) != 5 {
			t.Fatalf("limit=0 = %v", got)
		}
		if _, ok := e.do("GET", ikePath, projectA, nil).body["ikepolicies_links"]; ok {
			t.Fatal("links without limit")
		}
		wantReply(t, e.do("GET", ikePath+"?limit=x", projectA, nil), 400, "HTTPBadRequest", "Limit must be an integer 0 or greater and not 'x'")

		// Filters: IN on repeated keys, empty string, unknown keys ignored.
		if got := listIDs(t, e, ikePath+"?name=p-a&name=p-b", "ikepolicies", projectA); len(got) != 2 {
			t.Fatalf("name IN = %v", got)
		}
		if got := listIDs(t, e, ikePath+"?description=&auth_algorithm=sha1&ike_version=v1", "ikepolicies", projectA); len(got) != 5 {
			t.Fatalf("description= = %v", got)
		}
		if got := listIDs(t, e, ikePath+"?tenant_id="+projectA+"&project_id="+projectA, "ikepolicies", ""); len(got) != 5 {
			t.Fatalf("project filter = %v", got)
		}
		// fields on list and show.
		r = e.do("GET", ikePath+"?fields=id&fields=name", projectA, nil)
		for _, o := range r.body["ikepolicies"].([]any) {
			if m := o.(map[string]any); len(m) != 2 || m["id"] == nil || m["name"] == nil {
				t.Fatalf("fields not applied: %v", m)
			}
		}
		if m := item(t, e.do("GET", ikePath+"/"+created[0]+"?fields=lifetime", projectA, nil), 200, "ikepolicy"); len(m) != 1 || m["lifetime"] == nil {
			t.Fatalf("show fields = %v", m)
		}

		// VPN services sort by router_id too; endpoint groups on nothing.
		tp := newVPNTopo(t, e)
		r2, _, _ := mkRouter(t, e.a, "r2", tp.ext)
		mkService(t, e.a, "s1", tp.router, "")
		mkService(t, e.a, "s2", r2, "")
		wantRouters := []string{tp.router, r2}
		slices.Sort(wantRouters)
		r = e.do("GET", svcPath+"?sort_key=router_id&sort_dir=asc&fields=router_id", projectA, nil)
		var gotRouters []string
		for _, o := range r.body["vpnservices"].([]any) {
			gotRouters = append(gotRouters, o.(map[string]any)["router_id"].(string))
		}
		if !slices.Equal(gotRouters, wantRouters) {
			t.Fatalf("services sorted by router = %v, want %v", gotRouters, wantRouters)
		}
		if got := names(e.do("GET", svcPath+"?sort_key=name&sort_dir=desc", projectA, nil), "vpnservices"); !slices.Equal(got, []string{"s2", "s1"}) {
			t.Fatalf("services by name = %v", got)
		}
		wantReply(t, e.do("GET", svcPath+"?sort_key=status&sort_dir=asc", projectA, nil), 400, "HTTPBadRequest", "['status'] is invalid attribute for sort_keys")
		mkGroup(t, e.a, "g1", endpointgroups.TypeCIDR, "10.50.0.0/16")
		for _, k := range []string{"id", "name", "type"} {
			wantReply(t, e.do("GET", egPath+"?sort_key="+k+"&sort_dir=asc", projectA, nil), 400, "HTTPBadRequest",
				"['"+k+"'] is invalid attribute for sort_keys")
		}
		if got := listIDs(t, e, egPath+"?limit=1", "endpoint_groups", projectA); len(got) != 1 {
			t.Fatalf("endpoint groups limit=1 = %v", got)
		}
		ipsec := mkIPsec(t, e.a, "ipsec", "")
		legacySvc := mkService(t, e.a, "legacy", tp.router, tp.sub)
		c1 := mkConn(t, e.a, legacyConn("conn-b", legacySvc.ID, created[0], ipsec))
		if got := listIDs(t, e, connPath+"?sort_key=name&sort_dir=asc&limit=1", "ipsec_site_connections", projectA); !slices.Equal(got, []string{c1.ID}) {
			t.Fatalf("connections page = %v", got)
		}
		wantReply(t, e.do("GET", connPath+"?sort_key=router_id&sort_dir=asc", projectA, nil), 400, "HTTPBadRequest", "['router_id'] is invalid attribute for sort_keys")
		wantReply(t, e.do("GET", connPath+"?sort_key=vpnservice_id&sort_dir=asc", projectA, nil), 400, "HTTPBadRequest", "['vpnservice_id'] is invalid attribute for sort_keys")
		// The PSK is only there when asked for.
		r = e.do("GET", connPath+"?fields=id&fields=name", projectA, nil)
		if strings.Contains(r.raw, "secret") || len(ids(r, "ipsec_site_connections")) != 1 {
			t.Fatalf("fields=id,name = %s", r.raw)
		}
		if got := listIDs(t, e, connPath+"?admin_state_up=true&mtu=1500", "ipsec_site_connections", projectA); len(got) != 1 {
			t.Fatalf("bool/int filters = %v", got)
		}
		if got := listIDs(t, e, connPath+"?admin_state_up=0", "ipsec_site_connections", projectA); len(got) != 0 {
			t.Fatalf("admin_state_up=0 = %v", got)
		}
		// Every allowed sort key works on every sortable collection.
		for _, c := range []struct {
			path string
			keys []string
		}{
			{ikePath, []string{"id", "name", "project_id", "tenant_id"}},
			{ipsecPath, []string{"id", "name", "project_id", "tenant_id"}},
			{connPath, []string{"id", "name", "project_id", "tenant_id"}},
			{svcPath, []string{"id", "name", "project_id", "tenant_id", "router_id"}},
		} {
			for _, k := range c.keys {
				for _, dir := range []string{"asc", "desc"} {
					if r := e.do("GET", c.path+"?sort_key="+k+"&sort_dir="+dir, projectA, nil); r.status != 200 {
						t.Errorf("GET %s sorted by %s %s = %d %s", c.path, k, dir, r.status, r.raw)
					}
				}
			}
		}
	})
}

func TestVPNFlavors(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		tp := newVPNTopo(t, e)
		r := e.do("GET", "/v2.0/flavors", projectA, nil)
		if r.status != 200 {
			t.Fatalf("GET /v2.0/flavors = %d %s", r.status, r.raw)
		}
		flavors := map[string]string{}
		for _, f := range r.body["flavors"].([]any) {
			m := f.(map[string]any)
			if m["service_type"] == "VPN" {
				flavors[m["name"].(string)] = m["id"].(string)
			}
		}
		libre, ok := flavors["libreswan"]
		if !ok || flavors["strongswan"] == "" {
			t.Fatalf("flavors = %s", r.raw)
		}
		if f := item(t, e.do("GET", "/v2.0/flavors/"+libre, projectA, nil), 200, "flavor"); f["name"] != "libreswan" {
			t.Fatalf("flavor = %v", f)
		}
		svc := must[*services.Service](t)(services.Create(ctx, e.a, services.CreateOpts{
			Name: "libre", RouterID: tp.router, FlavorID: libre, AdminStateUp: ptr(true)}).Extract())
		if svc.FlavorID != libre || svc.Status != "DOWN" {
			t.Fatalf("service with the libreswan flavor = %+v", svc)
		}
		if got := must[*services.Service](t)(services.Get(ctx, e.a, svc.ID).Extract()); got.FlavorID != libre {
			t.Fatalf("GET flavor_id = %q", got.FlavorID)
		}
		// Connections work the same on it (Libreswan rejects ah-esp too).
		ike := mkIKE(t, e.a, "ike")
		ipsec := mkIPsec(t, e.a, "ipsec", "")
		local := mkGroup(t, e.a, "local", endpointgroups.TypeSubnet, tp.sub)
		peer := mkGroup(t, e.a, "peer", endpointgroups.TypeCIDR, "192.168.60.0/24")
		mkConn(t, e.a, siteconnections.CreateOpts{VPNServiceID: svc.ID, IKEPolicyID: ike, IPSecPolicyID: ipsec, PeerAddress: "192.0.2.60",
			PeerID: "192.0.2.60", PSK: "x", LocalEPGroupID: local, PeerEPGroupID: peer})
		ah := mkIPsec(t, e.a, "ah-esp", ipsecpolicies.TransformProtocolAHESP)
		_, err := siteconnections.Create(ctx, e.a, siteconnections.CreateOpts{VPNServiceID: svc.ID, IKEPolicyID: ike, IPSecPolicyID: ah,
			PeerAddress: "192.0.2.61", PeerID: "192.0.2.61", PSK: "x", LocalEPGroupID: local, PeerEPGroupID: peer}).Extract()
		wantVPNFault(t, err, 400, "IpsecValidationFailure", "IPSec does not support IPsec Policy attribute transform_protocol with value 'ah-esp'")
		// An unknown flavor is a 404 (the flavors plugin is loaded, so the
		// reference's FlavorNotFound).
		_, err = services.Create(ctx, e.a, services.CreateOpts{RouterID: tp.router, FlavorID: noSuchID, AdminStateUp: ptr(true)}).Extract()
		wantVPNFault(t, err, 404, "FlavorNotFound", noSuchID)
	})
}

// TestVPNLibreswanRefusals: a connection whose policies or identities
// hold a value Libreswan cannot do is a 400 IpsecValidationFailure naming
// the value and the provider when its service uses the libreswan
// provider, and nothing is created or changed; the same connection on the
// strongSwan provider is made. A router's VPN services share one device
// driver (409 VPNServiceDriverConflict).
func TestVPNLibreswanRefusals(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		tp := newVPNTopo(t, e)
		flavor := ""
		for _, f := range e.do("GET", "/v2.0/flavors", projectA, nil).body["flavors"].([]any) {
			if m := f.(map[string]any); m["name"] == "libreswan" {
				flavor = m["id"].(string)
			}
		}
		lsw := item(t, e.do("POST", svcPath, projectA, map[string]any{"vpnservice": map[string]any{
			"name": "lsw", "router_id": tp.router, "subnet_id": tp.sub, "flavor_id": flavor}}), 201, "vpnservice")["id"].(string)
		// strongSwan's services on a router of their own: one router's
		// services share one device driver.
		r2, _, _ := mkRouter(t, e.a, "sw-router", tp.ext, tp.subOff)
		before := listIDs(t, e, svcPath, "vpnservices", projectA)
		wantReply(t, e.do("POST", svcPath, projectA, map[string]any{"vpnservice": map[string]any{
			"name": "sw", "router_id": tp.router, "subnet_id": tp.sub}}), 409, "VPNServiceDriverConflict", "provider libreswan (device driver libreswan)")
		if after := listIDs(t, e, svcPath, "vpnservices", projectA); len(after) != len(before) {
			t.Errorf("the refused POST made a VPN service (%d -> %d)", len(before), len(after))
		}
		sw := mkService(t, e.a, "sw", r2, tp.subOff).ID
		item(t, e.do("POST", svcPath, projectA, map[string]any{"vpnservice": map[string]any{"name": "sw-groups", "router_id": r2}}), 201, "vpnservice")
		for _, tc := range []struct {
			what       string
			ike, ipsec map[string]any
		}{
			{"group2", map[string]any{"pfs": "group2"}, nil},
			{"aes-128-ccm-16", map[string]any{"encryption_algorithm": "aes-128-ccm-16"}, nil},
			{"aes-xcbc", map[string]any{"ike_version": "v1", "auth_algorithm": "aes-xcbc"}, nil},
			{"IKE lifetime 100000", map[string]any{"lifetime": map[string]any{"units": "seconds", "value": 100000}}, nil},
			{"IPsec lifetime 90000", nil, map[string]any{"lifetime": map[string]any{"units": "seconds", "value": 90000}}},
			{"group22", nil, map[string]any{"pfs": "group22"}},
			{"group19 with IKEv1", map[string]any{"ike_version": "v1"}, map[string]any{"pfs": "group19"}},
		} {
			ikeBody := map[string]any{"name": "ike " + tc.what}
			maps.Copy(ikeBody, tc.ike)
			ipsecBody := map[string]any{"name": "ipsec " + tc.what}
			maps.Copy(ipsecBody, tc.ipsec)
			ike := item(t, e.do("POST", ikePath, projectA, map[string]any{"ikepolicy": ikeBody}), 201, "ikepolicy")["id"].(string)
			ipsec := item(t, e.do("POST", ipsecPath, projectA, map[string]any{"ipsecpolicy": ipsecBody}), 201, "ipsecpolicy")["id"].(string)
			conn := func(svc string) map[string]any {
				return map[string]any{"ipsec_site_connection": map[string]any{"name": tc.what, "vpnservice_id": svc,
					"ikepolicy_id": ike, "ipsecpolicy_id": ipsec, "peer_address": "192.0.2.10", "peer_id": "192.0.2.10",
					"psk": "secret", "peer_cidrs": []string{"192.168.10.0/24"}}}
			}
			before := listIDs(t, e, connPath, "ipsec_site_connections", projectA)
			r := e.do("POST", connPath, projectA, conn(lsw))
			wantReply(t, r, 400, "IpsecValidationFailure", tc.what)
			if _, msg := r.fault(); !strings.Contains(msg, "provider libreswan") {
				t.Errorf("%s: message %q does not name the provider", tc.what, msg)
			}
			if after := listIDs(t, e, connPath, "ipsec_site_connections", projectA); len(after) != len(before) {
				t.Errorf("%s: the refused POST made a connection (%d -> %d)", tc.what, len(before), len(after))
			}
			item(t, e.do("POST", connPath, projectA, conn(sw)), 201, "ipsec_site_connection")
		}
		// Identities the driver cannot write: refused on POST and PUT,
		// and the PUT changes nothing.
		ike, ipsec := mkIKE(t, e.a, "ike ids"), mkIPsec(t, e.a, "ipsec ids", "")
		body := func(peerID string) map[string]any {
			return map[string]any{"ipsec_site_connection": map[string]any{"name": "ids", "vpnservice_id": lsw,
				"ikepolicy_id": ike, "ipsecpolicy_id": ipsec, "peer_address": "192.0.2.11", "peer_id": peerID,
				"psk": "secret", "peer_cidrs": []string{"192.168.11.0/24"}}}
		}
		before = listIDs(t, e, connPath, "ipsec_site_connections", projectA)
		wantReply(t, e.do("POST", connPath, projectA, body("CN=sun, O=example")), 400, "IpsecValidationFailure", `peer_id "CN=sun, O=example"`)
		if after := listIDs(t, e, connPath, "ipsec_site_connections", projectA); len(after) != len(before) {
			t.Errorf("the refused POST made a connection (%d -> %d)", len(before), len(after))
		}
		ok := item(t, e.do("POST", connPath, projectA, body("sun.example")), 201, "ipsec_site_connection")
		id := ok["id"].(string)
		r := e.do("PUT", connPath+"/"+id, projectA, map[string]any{"ipsec_site_connection": map[string]any{"local_id": "moon example"}})
		wantReply(t, r, 400, "IpsecValidationFailure", `local_id "moon example"`)
		if _, msg := r.fault(); !strings.Contains(msg, "provider libreswan") {
			t.Errorf("PUT: message %q does not name the provider", msg)
		}
		if got := item(t, e.do("GET", connPath+"/"+id, projectA, nil), 200, "ipsec_site_connection"); got["local_id"] != "" ||
			got["revision_number"] != ok["revision_number"] {
			t.Errorf("the refused PUT changed the connection: %v", got)
		}
	})
}

// TestVPNConcurrentPolicyDelete races connection creates against the
// delete of the IKE policy they reference: no connection may end up
// pointing at a deleted policy.
func TestVPNConcurrentPolicyDelete(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		tp := newVPNTopo(t, e)
		svc := mkService(t, e.a, "svc", tp.router, tp.sub)
		ipsec := mkIPsec(t, e.a, "ipsec", "")
		const creators, rounds = 8, 5
		for round := range rounds {
			ike := mkIKE(t, e.a, fmt.Sprintf("ike-%d", round))
			start := make(chan struct{})
			var wg sync.WaitGroup
			createErrs := make([]error, creators)
			for i := range creators {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					// Stagger the creates more each round so that the delete
					// lands before, between and after them.
					time.Sleep(time.Duration(i*round) * time.Millisecond)
					_, createErrs[i] = siteconnections.Create(ctx, e.a, legacyConn(fmt.Sprintf("r%d-c%d", round, i), svc.ID, ike, ipsec)).Extract()
				}()
			}
			var delErr error
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				delErr = ikepolicies.Delete(ctx, e.a, ike).ExtractErr()
			}()
			close(start)
			wg.Wait()

			created := 0
			for i, err := range createErrs {
				if err == nil {
					created++
					continue
				}
				var ec gophercloud.ErrUnexpectedResponseCode
				if !errors.As(err, &ec) || ec.Actual != 404 || !strings.Contains(string(ec.Body), "IKEPolicyNotFound") {
					t.Fatalf("round %d create %d: %v, want 201 or 404 IKEPolicyNotFound", round, i, err)
				}
			}
			users := listIDs(t, e, connPath+"?ikepolicy_id="+ike, "ipsec_site_connections", projectA)
			t.Logf("round %d: %d of %d creates succeeded, delete: %v", round, created, creators, delErr != nil)
			if len(users) != created {
				t.Fatalf("round %d: %d creates succeeded but %d connections reference the policy", round, created, len(users))
			}
			if delErr == nil {
				if len(users) != 0 {
					t.Fatalf("round %d: policy deleted (204) but %d connections reference it", round, len(users))
				}
				wantFault(t, ikepolicies.Get(ctx, e.a, ike).Err, 404, "IKEPolicyNotFound")
			} else {
				wantFault(t, delErr, 409, "IKEPolicyInUse")
				if len(users) == 0 {
					t.Fatalf("round %d: delete refused (409) but no connection references the policy", round)
				}
			}
		}
		// Every connection's policy still exists.
		pages := must[pagination.Page](t)(siteconnections.List(e.a, nil).AllPages(ctx))
		for _, c := range must[[]siteconnections.Connection](t)(siteconnections.ExtractConnections(pages)) {
			if r := e.do("GET", ikePath+"/"+c.IKEPolicyID, projectA, nil); r.status != 200 {
				t.Fatalf("connection %s references IKE policy %s: GET = %d", c.ID, c.IKEPolicyID, r.status)
			}
		}
	})
}

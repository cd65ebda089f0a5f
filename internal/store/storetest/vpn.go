package storetest

// Conformance tests of the VPNaaS resources: IKE and IPsec policies, VPN
// services, endpoint groups and IPsec site connections.

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/neutrino-net/neutrino/internal/model"
	"github.com/neutrino-net/neutrino/internal/store"
)

func ikePolicy(id, project string) *model.IKEPolicy {
	return &model.IKEPolicy{ID: id, ProjectID: project, Name: "ike " + id, AuthAlgorithm: "sha1",
		EncryptionAlgorithm: "aes-128", Phase1NegotiationMode: "main",
		Lifetime: model.Lifetime{Units: "seconds", Value: 3600}, IKEVersion: "v1", PFS: "group5", Standard: std(0)}
}

func ipsecPolicy(id, project string) *model.IPsecPolicy {
	return &model.IPsecPolicy{ID: id, ProjectID: project, Name: "ipsec " + id, TransformProtocol: "esp",
		AuthAlgorithm: "sha1", EncryptionAlgorithm: "aes-128", EncapsulationMode: "tunnel",
		Lifetime: model.Lifetime{Units: "seconds", Value: 3600}, PFS: "group5", Standard: std(0)}
}

// vpnService returns a service on the router; subnetID "" is endpoint-group
// mode.
func vpnService(id, project, routerID, subnetID string) *model.VPNService {
	return &model.VPNService{ID: id, ProjectID: project, Name: "vpn " + id, RouterID: routerID, SubnetID: subnetID,
		AdminStateUp: true, Provider: "strongswan", Status: model.StatusPendingCreate, Standard: std(0)}
}

func endpointGroup(id, project, typ string, endpoints ...string) *model.EndpointGroup {
	return &model.EndpointGroup{ID: id, ProjectID: project, Name: "eg " + id, Type: typ, Endpoints: endpoints,
		Standard: std(0)}
}

// connection returns a legacy-mode connection (one peer CIDR).
func connection(id, project, serviceID, ikeID, ipsecID string) *model.IPsecSiteConnection {
	return &model.IPsecSiteConnection{ID: id, ProjectID: project, Name: "conn " + id, VPNServiceID: serviceID,
		IKEPolicyID: ikeID, IPsecPolicyID: ipsecID, PeerAddress: "198.51.100.1", PeerID: "198.51.100.1",
		PeerCIDRs: []string{"10.99.0.0/24"}, RouteMode: "static", MTU: 1500, Initiator: "bi-directional",
		AuthMode: "psk", PSK: "secret", DPD: model.DPD{Action: "hold", Interval: 30, Timeout: 120},
		AdminStateUp: true, Status: model.StatusPendingCreate, Standard: std(0)}
}

// groupConnection returns an endpoint-group-mode connection.
func groupConnection(id, project, serviceID, ikeID, ipsecID, local, peer string) *model.IPsecSiteConnection {
	c := connection(id, project, serviceID, ikeID, ipsecID)
	c.PeerCIDRs, c.LocalEPGroupID, c.PeerEPGroupID = nil, local, peer
	return c
}

// vpnBase is base plus, in p1, router r1 with VPN service vpn1 on s1 and the
// policies ike1 and ipsec1.
func vpnBase(t *testing.T, s store.Store) {
	t.Helper()
	base(t, s)
	write(t, s, create(router("r1", "p1", nil), vpnService("vpn1", "p1", "r1", "s1"), ikePolicy("ike1", "p1"),
		ipsecPolicy("ipsec1", "p1")))
}

func listIKEPolicies(tx store.Tx, ids []string) ([]model.IKEPolicy, error) {
	// Policies have no id filter: select from the full list.
	all, err := tx.ListIKEPolicies(ctx, store.PolicyFilter{})
	return slices.DeleteFunc(all, func(p model.IKEPolicy) bool { return !slices.Contains(ids, p.ID) }), err
}

func listIPsecPolicies(tx store.Tx, ids []string) ([]model.IPsecPolicy, error) {
	all, err := tx.ListIPsecPolicies(ctx, store.PolicyFilter{})
	return slices.DeleteFunc(all, func(p model.IPsecPolicy) bool { return !slices.Contains(ids, p.ID) }), err
}

func listVPNServices(tx store.Tx, ids []string) ([]model.VPNService, error) {
	return tx.ListVPNServices(ctx, store.VPNServiceFilter{IDs: ids})
}

func listEndpointGroups(tx store.Tx, ids []string) ([]model.EndpointGroup, error) {
	return tx.ListEndpointGroups(ctx, store.EndpointGroupFilter{IDs: ids})
}

func listConnections(tx store.Tx, ids []string) ([]model.IPsecSiteConnection, error) {
	return tx.ListConnections(ctx, store.ConnectionFilter{IDs: ids})
}

// oddTimes has timestamps that Create must normalise (UTC, whole seconds).
func oddTimes() model.Standard {
	india := time.FixedZone("IST", 5*3600+30*60)
	return model.Standard{Description: "odd times", CreatedAt: time.Date(2026, 11, 21, 17, 30, 0, 999_999_999, india),
		UpdatedAt: time.Date(2026, 11, 21, 12, 0, 1, 500, time.Local), RevisionNumber: 9}
}

// awkwardPSK has non-ASCII characters, both quotes, a backslash, SQL
// comment and placeholder characters.
const awkwardPSK = `pré-shared "key" 'with' quotes; \ ? $1 -- 秘密 ✓ ` + "`tick`\t\n"

func testVPNRoundTrip(t *testing.T, s store.Store) {
	base(t, s)
	write(t, s, create(router("r1", "p1", nil)))

	fullIKE := &model.IKEPolicy{ID: "full-ike", ProjectID: "p1", Name: "phase 1", AuthAlgorithm: "sha256",
		EncryptionAlgorithm: "aes-256", Phase1NegotiationMode: "aggressive",
		Lifetime: model.Lifetime{Units: "seconds", Value: 28800}, IKEVersion: "v2", PFS: "group14", Standard: oddTimes()}
	zeroIKE := &model.IKEPolicy{ID: "zero-ike"} // every field zero, timestamps included

	fullIPsec := &model.IPsecPolicy{ID: "full-ipsec", ProjectID: "p1", Name: "phase 2", TransformProtocol: "ah-esp",
		AuthAlgorithm: "sha512", EncryptionAlgorithm: "aes-192", EncapsulationMode: "transport",
		Lifetime: model.Lifetime{Units: "seconds", Value: 1200}, PFS: "group2", Standard: oddTimes()}
	zeroIPsec := &model.IPsecPolicy{ID: "zero-ipsec"}

	fullService := &model.VPNService{ID: "full-vpn", ProjectID: "p1", Name: "edge vpn", RouterID: "r1",
		SubnetID: "s1", AdminStateUp: true, FlavorID: "flavor-1", Provider: "strongswan",
		ExternalV4IP: "203.0.113.7", ExternalV6IP: "2001:db8::7", Status: model.StatusActive, Standard: oddTimes()}
	bareService := &model.VPNService{ID: "bare-vpn", ProjectID: "p1", RouterID: "r1", Standard: std(3)}

	cidrGroup := &model.EndpointGroup{ID: "cidr-eg", ProjectID: "p1", Name: "peers", Type: "cidr",
		Endpoints: []string{"10.9.0.0/24", "10.1.0.0/24", "fd00:1::/64"}, Standard: oddTimes()}
	subnetGroup := endpointGroup("subnet-eg", "p1", "subnet", "s6", "s1")
	noEndpoints := endpointGroup("no-endpoints-eg", "p1", "cidr") // nil Endpoints
	bareGroup := &model.EndpointGroup{ID: "bare-eg", Standard: std(4)}

	fullConn := &model.IPsecSiteConnection{ID: "full-conn", ProjectID: "p1", Name: "to the branch",
		VPNServiceID: "full-vpn", IKEPolicyID: "full-ike", IPsecPolicyID: "full-ipsec", PeerAddress: "198.51.100.9",
		PeerID: "@branch.example", LocalID: "@hq.example",
		PeerCIDRs: []string{"10.9.0.0/24", "10.8.0.0/24", "fd00:8::/64"}, RouteMode: "static", MTU: 1400,
		Initiator: "response-only", AuthMode: "psk", PSK: awkwardPSK,
		DPD:          model.DPD{Action: "restart", Interval: 15, Timeout: 60},
		AdminStateUp: true, Status: model.StatusDown, StatusReason: `IKE negotiation failed: "NO_PROPOSAL_CHOSEN"`,
		Standard: oddTimes()}
	groupConn := groupConnection("group-conn", "p1", "bare-vpn", "zero-ike", "zero-ipsec", "subnet-eg", "cidr-eg")
	emptyCIDRsConn := connection("empty-cidrs-conn", "p1", "full-vpn", "full-ike", "full-ipsec")
	emptyCIDRsConn.PeerCIDRs = []string{}
	bareConn := &model.IPsecSiteConnection{ID: "bare-conn", VPNServiceID: "bare-vpn", IKEPolicyID: "zero-ike",
		IPsecPolicyID: "zero-ipsec", Standard: std(5)} // no PSK, no DPD, nil PeerCIDRs

	type tc struct {
		name  string
		obj   any
		check func(t *testing.T)
	}
	for _, c := range []tc{
		{"ikepolicy/full", fullIKE, func(t *testing.T) {
			checkGetList(t, s, fullIKE, fullIKE.ID, store.Tx.GetIKEPolicy, listIKEPolicies)
		}},
		{"ikepolicy/zero", zeroIKE, func(t *testing.T) {
			checkGetList(t, s, zeroIKE, zeroIKE.ID, store.Tx.GetIKEPolicy, listIKEPolicies)
		}},
		{"ipsecpolicy/full", fullIPsec, func(t *testing.T) {
			checkGetList(t, s, fullIPsec, fullIPsec.ID, store.Tx.GetIPsecPolicy, listIPsecPolicies)
		}},
		{"ipsecpolicy/zero", zeroIPsec, func(t *testing.T) {
			checkGetList(t, s, zeroIPsec, zeroIPsec.ID, store.Tx.GetIPsecPolicy, listIPsecPolicies)
		}},
		{"vpnservice/full", fullService, func(t *testing.T) {
			checkGetList(t, s, fullService, fullService.ID, store.Tx.GetVPNService, listVPNServices)
		}},
		{"vpnservice/bare", bareService, func(t *testing.T) {
			checkGetList(t, s, bareService, bareService.ID, store.Tx.GetVPNService, listVPNServices)
		}},
		{"endpoint-group/cidr", cidrGroup, func(t *testing.T) {
			checkGetList(t, s, cidrGroup, cidrGroup.ID, store.Tx.GetEndpointGroup, listEndpointGroups)
		}},
		{"endpoint-group/subnet", subnetGroup, func(t *testing.T) {
			checkGetList(t, s, subnetGroup, subnetGroup.ID, store.Tx.GetEndpointGroup, listEndpointGroups)
		}},
		{"endpoint-group/no-endpoints", noEndpoints, func(t *testing.T) {
			checkGetList(t, s, noEndpoints, noEndpoints.ID, store.Tx.GetEndpointGroup, listEndpointGroups)
		}},
		{"endpoint-group/bare", bareGroup, func(t *testing.T) {
			checkGetList(t, s, bareGroup, bareGroup.ID, store.Tx.GetEndpointGroup, listEndpointGroups)
		}},
		{"connection/full", fullConn, func(t *testing.T) {
			checkGetList(t, s, fullConn, fullConn.ID, store.Tx.GetConnection, listConnections)
			read(t, s, func(tx store.Tx) error {
				got, err := tx.GetConnection(ctx, fullConn.ID)
				if err != nil {
					return err
				}
				// cmp may print a Secret redacted: compare the values.
				if got.PSK.Reveal() != awkwardPSK {
					t.Errorf("PSK = %q, want %q", got.PSK.Reveal(), awkwardPSK)
				}
				return nil
			})
		}},
		{"connection/endpoint-groups", groupConn, func(t *testing.T) {
			checkGetList(t, s, groupConn, groupConn.ID, store.Tx.GetConnection, listConnections)
		}},
		{"connection/empty-cidrs", emptyCIDRsConn, func(t *testing.T) {
			checkGetList(t, s, emptyCIDRsConn, emptyCIDRsConn.ID, store.Tx.GetConnection, listConnections)
		}},
		{"connection/bare", bareConn, func(t *testing.T) {
			checkGetList(t, s, bareConn, bareConn.ID, store.Tx.GetConnection, listConnections)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			write(t, s, create(c.obj))
			c.check(t)
		})
	}

	// Endpoints live in rows of their own: an empty list reads back empty
	// (nil, as for a port's fixed IPs).
	t.Run("endpoint-group/empty-endpoints", func(t *testing.T) {
		g := endpointGroup("empty-eg", "p1", "cidr")
		g.Endpoints = []string{}
		write(t, s, create(g))
		read(t, s, func(tx store.Tx) error {
			got, err := tx.GetEndpointGroup(ctx, g.ID)
			if err != nil {
				return err
			}
			if len(got.Endpoints) != 0 {
				t.Errorf("Endpoints = %q, want none", got.Endpoints)
			}
			return nil
		})
	})

	// Create normalised the caller's timestamps.
	want := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	for name, got := range map[string]time.Time{"ike": fullIKE.CreatedAt, "ipsec": fullIPsec.CreatedAt,
		"vpn": fullService.CreatedAt, "eg": cidrGroup.CreatedAt, "conn": fullConn.CreatedAt} {
		if !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("%s: caller's CreatedAt = %v, want %v in UTC", name, got, want)
		}
	}
}

func testVPNUpdate(t *testing.T, s store.Store) {
	vpnBase(t, s)
	write(t, s, create(router("r2", "p1", nil), ikePolicy("ike2", "p1"), ipsecPolicy("ipsec2", "p1"),
		vpnService("vpn2", "p1", "r2", ""), endpointGroup("local", "p1", "subnet", "s1"),
		endpointGroup("peer", "p1", "cidr", "10.50.0.0/16")))

	t.Run("ikepolicy", func(t *testing.T) {
		p := ikePolicy("ike", "p1")
		write(t, s, create(p))
		p.Name, p.AuthAlgorithm, p.EncryptionAlgorithm, p.Phase1NegotiationMode = "renamed", "sha384", "aes-256", "aggressive"
		p.Lifetime, p.IKEVersion, p.PFS = model.Lifetime{Units: "seconds", Value: 7200}, "v2", "group19"
		p.Description, p.UpdatedAt, p.RevisionNumber = "new", at(100).Add(time.Millisecond), 2
		write(t, s, func(tx store.Tx) error { return tx.UpdateIKEPolicy(ctx, p) })
		checkGetList(t, s, p, p.ID, store.Tx.GetIKEPolicy, listIKEPolicies)
	})
	t.Run("ipsecpolicy", func(t *testing.T) {
		p := ipsecPolicy("ipsec", "p1")
		write(t, s, create(p))
		p.Name, p.TransformProtocol, p.AuthAlgorithm, p.EncryptionAlgorithm = "renamed", "ah", "sha256", "3des"
		p.EncapsulationMode, p.Lifetime, p.PFS = "transport", model.Lifetime{Units: "seconds", Value: 60}, "group14"
		p.Description, p.UpdatedAt, p.RevisionNumber = "new", at(100).Add(time.Millisecond), 2
		write(t, s, func(tx store.Tx) error { return tx.UpdateIPsecPolicy(ctx, p) })
		checkGetList(t, s, p, p.ID, store.Tx.GetIPsecPolicy, listIPsecPolicies)
	})
	t.Run("vpnservice", func(t *testing.T) {
		v := vpnService("vpn", "p1", "r1", "s1")
		v.FlavorID = "flavor-1"
		write(t, s, create(v))
		// Active with external addresses, moved to another router in
		// endpoint-group mode.
		v.Name, v.RouterID, v.SubnetID, v.AdminStateUp, v.FlavorID = "renamed", "r2", "", false, ""
		v.Provider, v.ExternalV4IP, v.ExternalV6IP, v.Status = "other", "203.0.113.9", "2001:db8::9", model.StatusActive
		v.Description, v.UpdatedAt, v.RevisionNumber = "new", at(100), 2
		write(t, s, func(tx store.Tx) error { return tx.UpdateVPNService(ctx, v) })
		checkGetList(t, s, v, v.ID, store.Tx.GetVPNService, listVPNServices)
		// And back, addresses cleared.
		v.RouterID, v.SubnetID, v.ExternalV4IP, v.ExternalV6IP, v.Status = "r1", "s6", "", "", model.StatusPendingUpdate
		v.RevisionNumber = 3
		write(t, s, func(tx store.Tx) error { return tx.UpdateVPNService(ctx, v) })
		checkGetList(t, s, v, v.ID, store.Tx.GetVPNService, listVPNServices)
	})
	t.Run("endpoint-group", func(t *testing.T) {
		g := endpointGroup("eg", "p1", "cidr", "10.1.0.0/24", "10.2.0.0/24", "10.3.0.0/24")
		write(t, s, create(g))
		g.Name, g.Type, g.Endpoints = "renamed", "subnet", []string{"10.3.0.0/24", "10.4.0.0/24", "10.1.0.0/24"}
		g.Description, g.UpdatedAt, g.RevisionNumber = "new", at(100), 2
		write(t, s, func(tx store.Tx) error { return tx.UpdateEndpointGroup(ctx, g) })
		checkGetList(t, s, g, g.ID, store.Tx.GetEndpointGroup, listEndpointGroups)
		read(t, s, func(tx store.Tx) error {
			for ep, want := range map[string][]string{"10.2.0.0/24": {}, "10.4.0.0/24": {"eg"}, "10.1.0.0/24": {"eg"}} {
				got, err := ids(tx.ListEndpointGroups(ctx, store.EndpointGroupFilter{Endpoint: ep}))
				if err != nil {
					return err
				}
				if !slices.Equal(got, want) {
					t.Errorf("groups listing %s = %v, want %v", ep, got, want)
				}
			}
			return nil
		})
		// Removing every endpoint.
		g.Endpoints, g.RevisionNumber = nil, 3
		write(t, s, func(tx store.Tx) error { return tx.UpdateEndpointGroup(ctx, g) })
		checkGetList(t, s, g, g.ID, store.Tx.GetEndpointGroup, listEndpointGroups)
	})
	t.Run("connection", func(t *testing.T) {
		c := connection("c", "p1", "vpn1", "ike1", "ipsec1")
		write(t, s, create(c))
		// To endpoint-group mode on other policies and another service.
		c.Name, c.VPNServiceID, c.IKEPolicyID, c.IPsecPolicyID = "renamed", "vpn2", "ike2", "ipsec2"
		c.PeerAddress, c.PeerID, c.LocalID = "2001:db8:f::1", "@peer", "@local"
		c.PeerCIDRs, c.LocalEPGroupID, c.PeerEPGroupID = nil, "local", "peer"
		c.RouteMode, c.MTU, c.Initiator, c.AuthMode, c.PSK = "static", 1280, "response-only", "psk", awkwardPSK
		c.DPD = model.DPD{Action: "clear", Interval: 5, Timeout: 25}
		c.AdminStateUp, c.Status, c.StatusReason = false, model.StatusError, "peer unreachable"
		c.Description, c.UpdatedAt, c.RevisionNumber = "new", at(100), 2
		write(t, s, func(tx store.Tx) error { return tx.UpdateConnection(ctx, c) })
		checkGetList(t, s, c, c.ID, store.Tx.GetConnection, listConnections)
		// And back to legacy mode.
		c.PeerCIDRs, c.LocalEPGroupID, c.PeerEPGroupID = []string{"10.7.0.0/16", "10.6.0.0/16"}, "", ""
		c.Status, c.StatusReason, c.PSK, c.RevisionNumber = model.StatusActive, "", "", 3
		write(t, s, func(tx store.Tx) error { return tx.UpdateConnection(ctx, c) })
		checkGetList(t, s, c, c.ID, store.Tx.GetConnection, listConnections)
	})
}

func testVPNNotFound(t *testing.T, s store.Store) {
	vpnBase(t, s)
	for _, c := range []struct {
		name string
		fn   func(tx store.Tx) error
	}{
		{"GetIKEPolicy", func(tx store.Tx) error { _, err := tx.GetIKEPolicy(ctx, "nope"); return err }},
		{"GetIPsecPolicy", func(tx store.Tx) error { _, err := tx.GetIPsecPolicy(ctx, "nope"); return err }},
		{"GetVPNService", func(tx store.Tx) error { _, err := tx.GetVPNService(ctx, "nope"); return err }},
		{"GetEndpointGroup", func(tx store.Tx) error { _, err := tx.GetEndpointGroup(ctx, "nope"); return err }},
		{"GetConnection", func(tx store.Tx) error { _, err := tx.GetConnection(ctx, "nope"); return err }},
		{"UpdateIKEPolicy", func(tx store.Tx) error { return tx.UpdateIKEPolicy(ctx, ikePolicy("nope", "p1")) }},
		{"UpdateIPsecPolicy", func(tx store.Tx) error { return tx.UpdateIPsecPolicy(ctx, ipsecPolicy("nope", "p1")) }},
		{"UpdateVPNService", func(tx store.Tx) error {
			return tx.UpdateVPNService(ctx, vpnService("nope", "p1", "r1", "s1"))
		}},
		{"UpdateEndpointGroup", func(tx store.Tx) error {
			return tx.UpdateEndpointGroup(ctx, endpointGroup("nope", "p1", "cidr", "10.0.0.0/8"))
		}},
		{"UpdateConnection", func(tx store.Tx) error {
			return tx.UpdateConnection(ctx, connection("nope", "p1", "vpn1", "ike1", "ipsec1"))
		}},
		{"DeleteIKEPolicy", func(tx store.Tx) error { return tx.DeleteIKEPolicy(ctx, "nope") }},
		{"DeleteIPsecPolicy", func(tx store.Tx) error { return tx.DeleteIPsecPolicy(ctx, "nope") }},
		{"DeleteVPNService", func(tx store.Tx) error { return tx.DeleteVPNService(ctx, "nope") }},
		{"DeleteEndpointGroup", func(tx store.Tx) error { return tx.DeleteEndpointGroup(ctx, "nope") }},
		{"DeleteConnection", func(tx store.Tx) error { return tx.DeleteConnection(ctx, "nope") }},
	} {
		t.Run(c.name, func(t *testing.T) { writeErr(t, s, store.ErrNotFound, c.fn) })
	}
	// A failed update of a group left no endpoint behind; empty lists are
	// not errors.
	read(t, s, func(tx store.Tx) error {
		gs, err := tx.ListEndpointGroups(ctx, store.EndpointGroupFilter{Endpoint: "10.0.0.0/8"})
		if err != nil || len(gs) != 0 {
			t.Errorf("ListEndpointGroups(10.0.0.0/8) = %v, %v; want none", gs, err)
		}
		cs, err := tx.ListConnections(ctx, store.ConnectionFilter{VPNServiceIDs: []string{"nope"}})
		if err != nil || len(cs) != 0 {
			t.Errorf("ListConnections(nope) = %v, %v; want none", cs, err)
		}
		return nil
	})
}

// testVPNListOrder checks lists are ordered by creation time, then insertion.
func testVPNListOrder(t *testing.T, s store.Store) {
	vpnBase(t, s)
	var objs []any
	for i, id := range []string{"c", "z", "a", "m", "b"} {
		sec := map[int]int{0: 30, 1: 20, 2: 20, 3: 10, 4: 20}[i] // created: c late, m early, z a b tied
		ike := ikePolicy("ike-"+id, "p9")
		ipsec := ipsecPolicy("ipsec-"+id, "p9")
		vpn := vpnService("vpn-"+id, "p9", "r1", "")
		eg := endpointGroup("eg-"+id, "p9", "cidr", fmt.Sprintf("10.%d.0.0/16", 100+i))
		conn := connection("conn-"+id, "p9", "vpn1", "ike1", "ipsec1")
		for _, std := range []*model.Standard{&ike.Standard, &ipsec.Standard, &vpn.Standard, &eg.Standard, &conn.Standard} {
			std.CreatedAt = at(sec)
		}
		objs = append(objs, ike, ipsec, vpn, eg, conn)
	}
	write(t, s, create(objs...))
	want := []string{"m", "z", "a", "b", "c"}
	prefixed := func(p string) []string {
		out := make([]string, len(want))
		for i, w := range want {
			out[i] = p + w
		}
		return out
	}
	p9 := store.Scope{ProjectID: "p9"}
	read(t, s, func(tx store.Tx) error {
		for _, c := range []struct {
			name string
			list func() ([]string, error)
		}{
			{"ike-", func() ([]string, error) { return ids(tx.ListIKEPolicies(ctx, store.PolicyFilter{Scope: p9})) }},
			{"ipsec-", func() ([]string, error) { return ids(tx.ListIPsecPolicies(ctx, store.PolicyFilter{Scope: p9})) }},
			{"vpn-", func() ([]string, error) { return ids(tx.ListVPNServices(ctx, store.VPNServiceFilter{Scope: p9})) }},
			{"eg-", func() ([]string, error) {
				return ids(tx.ListEndpointGroups(ctx, store.EndpointGroupFilter{Scope: p9}))
			}},
			{"conn-", func() ([]string, error) { return ids(tx.ListConnections(ctx, store.ConnectionFilter{Scope: p9})) }},
		} {
			got, err := c.list()
			if err != nil {
				return err
			}
			if diff := cmp.Diff(prefixed(c.name), got); diff != "" {
				t.Errorf("%s order (-want +got):\n%s", c.name, diff)
			}
		}
		return nil
	})
}

func testVPNFilters(t *testing.T, s store.Store) {
	base(t, s) // p1: n1 with s1, s6; p2: ext with sext
	write(t, s, create(
		router("r1", "p1", nil), router("r2", "p1", nil), router("r3", "p2", nil),
		ikePolicy("i1", "p1"), ikePolicy("i2", "p1"), ikePolicy("i3", "p2"),
		ipsecPolicy("x1", "p1"), ipsecPolicy("x2", "p2"),
		vpnService("v1", "p1", "r1", "s1"), vpnService("v2", "p1", "r1", ""), vpnService("v3", "p1", "r2", "s6"),
		vpnService("v4", "p2", "r3", "sext"),
		endpointGroup("g1", "p1", "subnet", "s1", "s6"), endpointGroup("g2", "p1", "cidr", "10.9.0.0/24", "10.8.0.0/24"),
		endpointGroup("g3", "p2", "cidr", "10.9.0.0/24"), endpointGroup("g4", "p1", "subnet", "s6"),
		endpointGroup("g5", "p2", "cidr", "10.9.0.0/16", "10.9.0.0/24x"),
		connection("c1", "p1", "v1", "i1", "x1"),
		groupConnection("c2", "p1", "v2", "i1", "x1", "g1", "g2"),
		groupConnection("c3", "p1", "v2", "i2", "x1", "g4", "g2"),
		groupConnection("c4", "p2", "v4", "i3", "x2", "", "g3"),
		groupConnection("c5", "p1", "v3", "i2", "x2", "g2", "g1"),
	))
	p := func(id string) store.Scope { return store.Scope{ProjectID: id} }
	type tc struct {
		name string
		list func(tx store.Tx) ([]string, error)
		want []string
	}
	cases := []tc{
		{"ikepolicies/all", func(tx store.Tx) ([]string, error) { return ids(tx.ListIKEPolicies(ctx, store.PolicyFilter{})) },
			[]string{"i1", "i2", "i3"}},
		{"ikepolicies/project", func(tx store.Tx) ([]string, error) {
			return ids(tx.ListIKEPolicies(ctx, store.PolicyFilter{Scope: p("p1")}))
		},
			[]string{"i1", "i2"}},
		{"ikepolicies/other-project", func(tx store.Tx) ([]string, error) {
			return ids(tx.ListIKEPolicies(ctx, store.PolicyFilter{Scope: p("p3")}))
		},
			[]string{}},
		{"ipsecpolicies/all", func(tx store.Tx) ([]string, error) { return ids(tx.ListIPsecPolicies(ctx, store.PolicyFilter{})) },
			[]string{"x1", "x2"}},
		{"ipsecpolicies/project", func(tx store.Tx) ([]string, error) {
			return ids(tx.ListIPsecPolicies(ctx, store.PolicyFilter{Scope: p("p2")}))
		},
			[]string{"x2"}},

		{"vpnservices/all", func(tx store.Tx) ([]string, error) {
			return ids(tx.ListVPNServices(ctx, store.VPNServiceFilter{}))
		}, []string{"v1", "v2", "v3", "v4"}},
		{"vpnservices/project", func(tx store.Tx) ([]string, error) {
			return ids(tx.ListVPNServices(ctx, store.VPNServiceFilter{Scope: p("p1")}))
		}, []string{"v1", "v2", "v3"}},
		{"vpnservices/ids", func(tx store.Tx) ([]string, error) {
			return ids(tx.ListVPNServices(ctx, store.VPNServiceFilter{IDs: []string{"v4", "v2", "missing"}}))
		}, []string{"v2", "v4"}},
		{"vpnservices/empty-ids", func(tx store.Tx) ([]string, error) {
			return ids(tx.ListVPNServices(ctx, store.VPNServiceFilter{IDs: []string{}}))
		}, []string{"v1", "v2", "v3", "v4"}},
		{"vpnservices/router", func(tx store.Tx) ([]string, error) {
			return ids(tx.ListVPNServices(ctx, store.VPNServiceFilter{RouterID: "r1"}))
		}, []string{"v1", "v2"}},
		{"vpnservices/subnet", func(tx store.Tx) ([]string, error) {
			return ids(tx.ListVPNServices(ctx, store.VPNServiceFilter{SubnetID: "s6"}))
		}, []string{"v3"}},
		{"vpnservices/combined", func(tx store.Tx) ([]string, error) {
			return ids(tx.ListVPNServices(ctx, store.VPNServiceFilter{Scope: p("p1"), IDs: []string{"v1", "v2", "v3", "v4"},
				RouterID: "r1", SubnetID: "s1"}))
		}, []string{"v1"}},
		{"vpnservices/no-match", func(tx store.Tx) ([]string, error) {
			return ids(tx.ListVPNServices(ctx, store.VPNServiceFilter{RouterID: "r2", SubnetID: "s1"}))
		}, []string{}},
		{"vpnservices/project-excludes", func(tx store.Tx) ([]string, error) {
			return ids(tx.ListVPNServices(ctx, store.VPNServiceFilter{Scope: p("p1"), RouterID: "r3"}))
		}, []string{}},

		{"endpoint-groups/all", func(tx store.Tx) ([]string, error) {
			return ids(tx.ListEndpointGroups(ctx, store.EndpointGroupFilter{}))
		}, []string{"g1", "g2", "g3", "g4", "g5"}},
		{"endpoint-groups/project", func(tx store.Tx) ([]string, error) {
			return ids(tx.ListEndpointGroups(ctx, store.EndpointGroupFilter{Scope: p("p2")}))
		}, []string{"g3", "g5"}},
		{"endpoint-groups/ids", func(tx store.Tx) ([]string, error) {
			return ids(tx.ListEndpointGroups(ctx, store.EndpointGroupFilter{IDs: []string{"g4", "g1"}}))
		}, []string{"g1", "g4"}},
		{"endpoint-groups/endpoint", func(tx store.Tx) ([]string, error) {
			return ids(tx.ListEndpointGroups(ctx, store.EndpointGroupFilter{Endpoint: "s6"}))
		}, []string{"g1", "g4"}},
		{"endpoint-groups/endpoint-exact", func(tx store.Tx) ([]string, error) {
			return ids(tx.ListEndpointGroups(ctx, store.EndpointGroupFilter{Endpoint: "10.9.0.0/24"}))
		}, []string{"g2", "g3"}},
		{"endpoint-groups/endpoint-prefix-no-match", func(tx store.Tx) ([]string, error) {
			return ids(tx.ListEndpointGroups(ctx, store.EndpointGroupFilter{Endpoint: "10.9.0.0"}))
		}, []string{}},
		{"endpoint-groups/endpoint-wildcard-no-match", func(tx store.Tx) ([]string, error) {
			return ids(tx.ListEndpointGroups(ctx, store.EndpointGroupFilter{Endpoint: "10.9.0.0/2%"}))
		}, []string{}},
		{"endpoint-groups/project+endpoint", func(tx store.Tx) ([]string, error) {
			return ids(tx.ListEndpointGroups(ctx, store.EndpointGroupFilter{Scope: p("p2"), Endpoint: "10.9.0.0/24"}))
		}, []string{"g3"}},
		{"endpoint-groups/ids+endpoint", func(tx store.Tx) ([]string, error) {
			return ids(tx.ListEndpointGroups(ctx, store.EndpointGroupFilter{IDs: []string{"g1", "g2"}, Endpoint: "s6"}))
		}, []string{"g1"}},

		{"connections/all", func(tx store.Tx) ([]string, error) {
			return ids(tx.ListConnections(ctx, store.ConnectionFilter{}))
		}, []string{"c1", "c2", "c3", "c4", "c5"}},
		{"connections/project", func(tx store.Tx) ([]string, error) {
			return ids(tx.ListConnections(ctx, store.ConnectionFilter{Scope: p("p2")}))
		}, []string{"c4"}},
		{"connections/ids", func(tx store.Tx) ([]string, error) {
			return ids(tx.ListConnections(ctx, store.ConnectionFilter{IDs: []string{"c5", "c1"}}))
		}, []string{"c1", "c5"}},
		{"connections/empty-lists", func(tx store.Tx) ([]string, error) {
			return ids(tx.ListConnections(ctx, store.ConnectionFilter{IDs: []string{}, VPNServiceIDs: []string{}}))
		}, []string{"c1", "c2", "c3", "c4", "c5"}},
		{"connections/services", func(tx store.Tx) ([]string, error) {
			return ids(tx.ListConnections(ctx, store.ConnectionFilter{VPNServiceIDs: []string{"v4", "v2"}}))
		}, []string{"c2", "c3", "c4"}},
		{"connections/ikepolicy", func(tx store.Tx) ([]string, error) {
			return ids(tx.ListConnections(ctx, store.ConnectionFilter{IKEPolicyID: "i2"}))
		}, []string{"c3", "c5"}},
		{"connections/ipsecpolicy", func(tx store.Tx) ([]string, error) {
			return ids(tx.ListConnections(ctx, store.ConnectionFilter{IPsecPolicyID: "x2"}))
		}, []string{"c4", "c5"}},
		{"connections/endpoint-group-local-or-peer", func(tx store.Tx) ([]string, error) {
			return ids(tx.ListConnections(ctx, store.ConnectionFilter{EndpointGroupID: "g2"}))
		}, []string{"c2", "c3", "c5"}},
		{"connections/endpoint-group-g1", func(tx store.Tx) ([]string, error) {
			return ids(tx.ListConnections(ctx, store.ConnectionFilter{EndpointGroupID: "g1"}))
		}, []string{"c2", "c5"}},
		{"connections/endpoint-group-peer-only", func(tx store.Tx) ([]string, error) {
			return ids(tx.ListConnections(ctx, store.ConnectionFilter{EndpointGroupID: "g3"}))
		}, []string{"c4"}},
		{"connections/endpoint-group-unused", func(tx store.Tx) ([]string, error) {
			return ids(tx.ListConnections(ctx, store.ConnectionFilter{EndpointGroupID: "g5"}))
		}, []string{}},
		// The local-or-peer condition is ANDed as a whole with the others.
		{"connections/endpoint-group+ikepolicy", func(tx store.Tx) ([]string, error) {
			return ids(tx.ListConnections(ctx, store.ConnectionFilter{EndpointGroupID: "g2", IKEPolicyID: "i1"}))
		}, []string{"c2"}},
		{"connections/endpoint-group+project", func(tx store.Tx) ([]string, error) {
			return ids(tx.ListConnections(ctx, store.ConnectionFilter{Scope: p("p2"), EndpointGroupID: "g2"}))
		}, []string{}},
		{"connections/combined", func(tx store.Tx) ([]string, error) {
			return ids(tx.ListConnections(ctx, store.ConnectionFilter{Scope: p("p1"), IDs: []string{"c2", "c3", "c5"},
				VPNServiceIDs: []string{"v2", "v3"}, IKEPolicyID: "i2", IPsecPolicyID: "x1", EndpointGroupID: "g2"}))
		}, []string{"c3"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			read(t, s, func(tx store.Tx) error {
				got, err := c.list(tx)
				if err != nil {
					return err
				}
				if diff := cmp.Diff(c.want, got); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
				return nil
			})
		})
	}
	// Filtered listings load every endpoint of the groups they select,
	// not only the one filtered on.
	read(t, s, func(tx store.Tx) error {
		gs, err := tx.ListEndpointGroups(ctx, store.EndpointGroupFilter{Endpoint: "10.8.0.0/24"})
		if err != nil {
			return err
		}
		if len(gs) != 1 || !slices.Equal(gs[0].Endpoints, []string{"10.9.0.0/24", "10.8.0.0/24"}) {
			t.Errorf("ListEndpointGroups(10.8.0.0/24) = %+v, want g2 with both endpoints", gs)
		}
		return nil
	})
}

func testVPNDuplicate(t *testing.T, s store.Store) {
	vpnBase(t, s)
	write(t, s, create(endpointGroup("eg", "p1", "cidr", "10.1.0.0/24"),
		connection("c", "p1", "vpn1", "ike1", "ipsec1")))

	t.Run("id", func(t *testing.T) {
		writeErr(t, s, store.ErrDuplicate, create(ikePolicy("ike1", "p2")))
		writeErr(t, s, store.ErrDuplicate, create(ipsecPolicy("ipsec1", "p2")))
		writeErr(t, s, store.ErrDuplicate, create(vpnService("vpn1", "p1", "r1", "")))
		writeErr(t, s, store.ErrDuplicate, create(endpointGroup("eg", "p1", "cidr", "10.2.0.0/24")))
		writeErr(t, s, store.ErrDuplicate, create(connection("c", "p1", "vpn1", "ike1", "ipsec1")))
		read(t, s, func(tx store.Tx) error {
			g, err := tx.GetEndpointGroup(ctx, "eg")
			if err != nil {
				return err
			}
			if !slices.Equal(g.Endpoints, []string{"10.1.0.0/24"}) {
				t.Errorf("eg endpoints = %q after a failed duplicate, want [10.1.0.0/24]", g.Endpoints)
			}
			return nil
		})
	})
	t.Run("endpoint-twice", func(t *testing.T) {
		// A failing call leaves nothing and the transaction goes on.
		write(t, s, func(tx store.Tx) error {
			err := tx.CreateEndpointGroup(ctx, endpointGroup("twice", "p1", "cidr", "10.5.0.0/24", "10.6.0.0/24", "10.5.0.0/24"))
			if !errors.Is(err, store.ErrDuplicate) {
				t.Errorf("CreateEndpointGroup with an endpoint twice = %v, want ErrDuplicate", err)
			}
			if _, err := tx.GetEndpointGroup(ctx, "twice"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("GetEndpointGroup(twice) in the same transaction = %v, want ErrNotFound", err)
			}
			for _, ep := range []string{"10.5.0.0/24", "10.6.0.0/24"} {
				if gs, err := tx.ListEndpointGroups(ctx, store.EndpointGroupFilter{Endpoint: ep}); err != nil || len(gs) != 0 {
					t.Errorf("groups listing %s = %v, %v; want none", ep, gs, err)
				}
			}
			g, err := tx.GetEndpointGroup(ctx, "eg")
			if err != nil {
				return err
			}
			g.Name, g.Endpoints = "changed", []string{"10.7.0.0/24", "10.7.0.0/24"}
			if err := tx.UpdateEndpointGroup(ctx, g); !errors.Is(err, store.ErrDuplicate) {
				t.Errorf("UpdateEndpointGroup with an endpoint twice = %v, want ErrDuplicate", err)
			}
			// The same endpoint in two groups is fine.
			return tx.CreateEndpointGroup(ctx, endpointGroup("other", "p1", "cidr", "10.1.0.0/24"))
		})
		read(t, s, func(tx store.Tx) error {
			g, err := tx.GetEndpointGroup(ctx, "eg")
			if err != nil {
				return err
			}
			if g.Name != "eg eg" || !slices.Equal(g.Endpoints, []string{"10.1.0.0/24"}) {
				t.Errorf("failed update changed the group: %+v", g)
			}
			got, err := ids(tx.ListEndpointGroups(ctx, store.EndpointGroupFilter{Endpoint: "10.1.0.0/24"}))
			if err != nil {
				return err
			}
			if want := []string{"eg", "other"}; !slices.Equal(got, want) {
				t.Errorf("groups listing 10.1.0.0/24 = %v, want %v", got, want)
			}
			return nil
		})
	})
}

func testVPNReferenced(t *testing.T, s store.Store) {
	vpnBase(t, s) // r1, vpn1 on s1, ike1, ipsec1
	write(t, s, create(router("r2", "p1", nil), vpnService("vpn2", "p1", "r2", ""),
		endpointGroup("local", "p1", "subnet", "s6"), endpointGroup("peer", "p1", "cidr", "10.50.0.0/16"),
		groupConnection("conn", "p1", "vpn2", "ike1", "ipsec1", "local", "peer"),
		connection("legacy", "p1", "vpn1", "ike1", "ipsec1")))

	missing := func(set func(c *model.IPsecSiteConnection)) func(tx store.Tx) error {
		c := groupConnection("x", "p1", "vpn2", "ike1", "ipsec1", "local", "peer")
		set(c)
		return create(c)
	}
	for _, c := range []struct {
		name string
		fn   func(tx store.Tx) error
	}{
		{"ikepolicy-used-by-connection", func(tx store.Tx) error { return tx.DeleteIKEPolicy(ctx, "ike1") }},
		{"ipsecpolicy-used-by-connection", func(tx store.Tx) error { return tx.DeleteIPsecPolicy(ctx, "ipsec1") }},
		{"vpnservice-used-by-connection", func(tx store.Tx) error { return tx.DeleteVPNService(ctx, "vpn2") }},
		{"local-endpoint-group", func(tx store.Tx) error { return tx.DeleteEndpointGroup(ctx, "local") }},
		{"peer-endpoint-group", func(tx store.Tx) error { return tx.DeleteEndpointGroup(ctx, "peer") }},
		{"router-used-by-vpnservice", func(tx store.Tx) error { return tx.DeleteRouter(ctx, "r2") }},
		{"subnet-used-by-vpnservice", func(tx store.Tx) error { return tx.DeleteSubnet(ctx, "s1") }},
		{"network-of-subnet-used-by-vpnservice", func(tx store.Tx) error { return tx.DeleteNetwork(ctx, "n1") }},
		{"vpnservice-on-missing-router", create(vpnService("x", "p1", "nope", ""))},
		{"vpnservice-on-missing-subnet", create(vpnService("x", "p1", "r1", "nope"))},
		{"vpnservice-moved-to-missing-router", func(tx store.Tx) error {
			return tx.UpdateVPNService(ctx, vpnService("vpn1", "p1", "nope", "s1"))
		}},
		{"connection-on-missing-service", missing(func(c *model.IPsecSiteConnection) { c.VPNServiceID = "nope" })},
		{"connection-with-missing-ikepolicy", missing(func(c *model.IPsecSiteConnection) { c.IKEPolicyID = "nope" })},
		{"connection-with-missing-ipsecpolicy", missing(func(c *model.IPsecSiteConnection) { c.IPsecPolicyID = "nope" })},
		{"connection-with-missing-local-group", missing(func(c *model.IPsecSiteConnection) { c.LocalEPGroupID = "nope" })},
		{"connection-with-missing-peer-group", missing(func(c *model.IPsecSiteConnection) { c.PeerEPGroupID = "nope" })},
		{"connection-moved-to-missing-ikepolicy", func(tx store.Tx) error {
			c := groupConnection("conn", "p1", "vpn2", "nope", "ipsec1", "local", "peer")
			return tx.UpdateConnection(ctx, c)
		}},
	} {
		t.Run(c.name, func(t *testing.T) { writeErr(t, s, store.ErrReferenced, c.fn) })
	}

	// Nothing was deleted or changed.
	read(t, s, func(tx store.Tx) error {
		for _, get := range []func() error{
			func() error { _, err := tx.GetIKEPolicy(ctx, "ike1"); return err },
			func() error { _, err := tx.GetIPsecPolicy(ctx, "ipsec1"); return err },
			func() error { _, err := tx.GetVPNService(ctx, "vpn2"); return err },
			func() error { _, err := tx.GetRouter(ctx, "r2"); return err },
			func() error { _, err := tx.GetSubnet(ctx, "s1"); return err },
			func() error { _, err := tx.GetNetwork(ctx, "n1"); return err },
		} {
			if err := get(); err != nil {
				t.Error(err)
			}
		}
		for id, want := range map[string][]string{"local": {"s6"}, "peer": {"10.50.0.0/16"}} {
			g, err := tx.GetEndpointGroup(ctx, id)
			if err != nil {
				return err
			}
			if !slices.Equal(g.Endpoints, want) {
				t.Errorf("endpoints of %s = %q, want %q", id, g.Endpoints, want)
			}
		}
		if v, err := tx.GetVPNService(ctx, "vpn1"); err != nil || v.RouterID != "r1" {
			t.Errorf("vpn1 = %+v, %v; want it on r1", v, err)
		}
		if c, err := tx.GetConnection(ctx, "conn"); err != nil || c.IKEPolicyID != "ike1" {
			t.Errorf("conn = %+v, %v; want it on ike1", c, err)
		}
		if _, err := tx.GetConnection(ctx, "x"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetConnection(x) = %v, want ErrNotFound", err)
		}
		return nil
	})

	// Once the connections are gone, everything can go, dependents first.
	write(t, s, func(tx store.Tx) error {
		for _, del := range []func() error{
			func() error { return tx.DeleteConnection(ctx, "conn") },
			func() error { return tx.DeleteConnection(ctx, "legacy") },
			func() error { return tx.DeleteEndpointGroup(ctx, "local") },
			func() error { return tx.DeleteEndpointGroup(ctx, "peer") },
			func() error { return tx.DeleteIKEPolicy(ctx, "ike1") },
			func() error { return tx.DeleteIPsecPolicy(ctx, "ipsec1") },
			func() error { return tx.DeleteVPNService(ctx, "vpn1") },
			func() error { return tx.DeleteVPNService(ctx, "vpn2") },
			func() error { return tx.DeleteRouter(ctx, "r2") },
			func() error { return tx.DeleteSubnet(ctx, "s1") },
		} {
			if err := del(); err != nil {
				return err
			}
		}
		return nil
	})
}

func testVPNCascade(t *testing.T, s store.Store) {
	base(t, s)
	write(t, s, create(endpointGroup("a", "p1", "cidr", "10.1.0.0/24", "10.2.0.0/24"),
		endpointGroup("b", "p1", "cidr", "10.1.0.0/24")))
	write(t, s, func(tx store.Tx) error { return tx.DeleteEndpointGroup(ctx, "a") })
	check := func(ep string, want ...string) {
		t.Helper()
		read(t, s, func(tx store.Tx) error {
			got, err := ids(tx.ListEndpointGroups(ctx, store.EndpointGroupFilter{Endpoint: ep}))
			if err != nil {
				return err
			}
			if want == nil {
				want = []string{}
			}
			if !slices.Equal(got, want) {
				t.Errorf("groups listing %s = %v, want %v", ep, got, want)
			}
			return nil
		})
	}
	check("10.1.0.0/24", "b")
	check("10.2.0.0/24")
	// The group's endpoint rows went with it: the id and endpoints can be
	// used again.
	g := endpointGroup("a", "p1", "subnet", "10.2.0.0/24", "10.1.0.0/24")
	write(t, s, create(g))
	checkGetList(t, s, g, g.ID, store.Tx.GetEndpointGroup, listEndpointGroups)
	check("10.1.0.0/24", "b", "a")
	check("10.2.0.0/24", "a")
	// Deleting a connection frees what it used.
	write(t, s, create(router("r", "p1", nil), vpnService("v", "p1", "r", "s1"), ikePolicy("i", "p1"),
		ipsecPolicy("x", "p1"), groupConnection("c", "p1", "v", "i", "x", "a", "b")))
	write(t, s, func(tx store.Tx) error { return tx.DeleteConnection(ctx, "c") })
	write(t, s, func(tx store.Tx) error {
		for _, err := range []error{tx.DeleteEndpointGroup(ctx, "a"), tx.DeleteEndpointGroup(ctx, "b"),
			tx.DeleteIKEPolicy(ctx, "i"), tx.DeleteIPsecPolicy(ctx, "x"), tx.DeleteVPNService(ctx, "v"),
			tx.DeleteRouter(ctx, "r"), tx.DeleteNetwork(ctx, "n1")} {
			if err != nil {
				return err
			}
		}
		return nil
	})
	check("10.1.0.0/24")
}

func testVPNCount(t *testing.T, s store.Store) {
	vpnBase(t, s) // p1: r1, vpn1, ike1, ipsec1
	write(t, s, create(router("r2", "p2", nil), ikePolicy("ike2", "p1"), ikePolicy("ike3", "p2"),
		ipsecPolicy("ipsec2", "p2"), vpnService("vpn2", "p1", "r1", ""), vpnService("vpn3", "p2", "r2", ""),
		endpointGroup("eg1", "p1", "cidr", "10.0.0.0/8"), endpointGroup("eg2", "p2", "cidr"),
		endpointGroup("eg3", "p2", "subnet", "s1"),
		connection("c1", "p1", "vpn1", "ike1", "ipsec1"), connection("c2", "p1", "vpn2", "ike2", "ipsec1"),
		connection("c3", "p2", "vpn3", "ike3", "ipsec2"), connection("c4", "p1", "vpn1", "ike1", "ipsec2")))
	read(t, s, func(tx store.Tx) error {
		for _, c := range []struct {
			resource, project string
			want              int
		}{
			{"ikepolicy", "p1", 2}, {"ikepolicy", "p2", 1}, {"ikepolicy", "p3", 0},
			{"ipsecpolicy", "p1", 1}, {"ipsecpolicy", "p2", 1},
			{"vpnservice", "p1", 2}, {"vpnservice", "p2", 1},
			{"endpoint_group", "p1", 1}, {"endpoint_group", "p2", 2},
			{"ipsec_site_connection", "p1", 3}, {"ipsec_site_connection", "p2", 1}, {"ipsec_site_connection", "p3", 0},
			{"router", "p1", 1}, {"router", "p2", 1},
		} {
			got, err := tx.Count(ctx, c.resource, c.project)
			if err != nil {
				return err
			}
			if got != c.want {
				t.Errorf("Count(%s, %s) = %d, want %d", c.resource, c.project, got, c.want)
			}
		}
		for _, r := range []string{"vpn_endpoint", "ikepolicies", "connection"} {
			if _, err := tx.Count(ctx, r, "p1"); err == nil {
				t.Errorf("Count(%s) succeeded, want an error", r)
			}
		}
		return nil
	})
}

// testVPNConcurrency has writers create connections on an IKE policy while
// another deletes the policy, without Tx.Lock: the database alone must keep
// every connection's policy in existence, and each attempt must either
// succeed or fail with ErrReferenced.
func testVPNConcurrency(t *testing.T, s store.Store) {
	vpnBase(t, s)
	write(t, s, create(ikePolicy("doomed", "p1"), connection("stays", "p1", "vpn1", "ike1", "ipsec1")))
	// Each creator goes on until it has tried once after the deletion was
	// committed (or maxAttempts), so both outcomes are seen during the race.
	const creators, maxAttempts = 6, 150
	var created, createdDoomed, refused, deleteRefused, creatorsDone atomic.Int32
	var deleted atomic.Bool
	errs := make(chan error, creators*maxAttempts+1)
	var wg sync.WaitGroup
	for i := range creators {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer creatorsDone.Add(1)
			for j := range maxAttempts {
				policy := "doomed"
				if j%3 == 2 {
					policy = "ike1" // rows that stay
				}
				deletedBefore := deleted.Load()
				err := s.Write(ctx, func(tx store.Tx) error {
					return tx.CreateConnection(ctx, connection(fmt.Sprintf("c%d-%d", i, j), "p1", "vpn1", policy, "ipsec1"))
				})
				switch {
				case err == nil:
					if deletedBefore && policy == "doomed" {
						errs <- fmt.Errorf("connection c%d-%d created on a policy deleted before", i, j)
					}
					created.Add(1)
					if policy == "doomed" {
						createdDoomed.Add(1)
					}
				case errors.Is(err, store.ErrReferenced) && policy == "doomed":
					refused.Add(1)
				default:
					errs <- fmt.Errorf("create c%d-%d on %s: %w", i, j, policy, err)
				}
				if deletedBefore && policy == "doomed" {
					return
				}
				time.Sleep(time.Duration(2+j%4) * time.Millisecond)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		// Start once some connections use the policy, so that the first
		// attempt is refused.
		for createdDoomed.Load() < creators && creatorsDone.Load() < creators {
			time.Sleep(100 * time.Microsecond)
		}
		// Delete the policy; while connections still use it, delete them
		// (more may arrive meanwhile) and try again.
		for {
			err := s.Write(ctx, func(tx store.Tx) error { return tx.DeleteIKEPolicy(ctx, "doomed") })
			switch {
			case err == nil:
				deleted.Store(true)
				return
			case !errors.Is(err, store.ErrReferenced):
				errs <- fmt.Errorf("delete policy: %w", err)
				return
			}
			deleteRefused.Add(1)
			err = s.Write(ctx, func(tx store.Tx) error {
				cs, err := tx.ListConnections(ctx, store.ConnectionFilter{IKEPolicyID: "doomed"})
				if err != nil {
					return err
				}
				for _, c := range cs {
					if err := tx.DeleteConnection(ctx, c.ID); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				errs <- fmt.Errorf("delete connections: %w", err)
				return
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("connections created %d (%d on the deleted policy), refused %d; policy deletions refused %d",
		created.Load(), createdDoomed.Load(), refused.Load(), deleteRefused.Load())
	if !deleted.Load() {
		t.Fatal("the policy was never deleted")
	}
	// From now on the policy is gone for everyone.
	writeErr(t, s, store.ErrReferenced, create(connection("late", "p1", "vpn1", "doomed", "ipsec1")))
	read(t, s, func(tx store.Tx) error {
		if _, err := tx.GetIKEPolicy(ctx, "doomed"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetIKEPolicy(doomed) = %v, want ErrNotFound", err)
		}
		cs, err := tx.ListConnections(ctx, store.ConnectionFilter{})
		if err != nil {
			return err
		}
		if len(cs) == 0 {
			t.Error("no connections left, want those on ike1")
		}
		for _, c := range cs {
			if _, err := tx.GetIKEPolicy(ctx, c.IKEPolicyID); err != nil {
				t.Errorf("connection %s: policy %s: %v", c.ID, c.IKEPolicyID, err)
			}
		}
		return nil
	})
}

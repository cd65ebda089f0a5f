package service

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/neutrino-net/neutrino/internal/model"
	"github.com/neutrino-net/neutrino/internal/store"
)

func endpointGroupNotFound(id string) *Error {
	return errNotFound("VPNEndpointGroupNotFound", "Endpoint group %s could not be found", id)
}

func (s *Service) ownedEndpointGroup(ctx context.Context, tx store.Tx, c caller, id string) (*model.EndpointGroup, error) {
	g, err := tx.GetEndpointGroup(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !c.owns(g.ProjectID)) {
		return nil, endpointGroupNotFound(id)
	}
	return g, err
}

func invalidEndpoint(endpoint, typ, why string) *Error {
	return errInvalid("InvalidEndpointInEndpointGroup", "Endpoint '%s' is invalid for group type '%s': %s", endpoint, typ, why)
}

// ValidCIDR is the reference's validate_subnet: a prefix length is
// required, IPv4 must be written canonically (host bits may be set), and
// no whitespace is allowed.
func ValidCIDR(s string) bool {
	if strings.TrimSpace(s) != s || !strings.Contains(s, "/") {
		return false
	}
	p, err := netip.ParsePrefix(s)
	if err != nil || p.Addr().Zone() != "" {
		return false
	}
	return !p.Addr().Is4() || p.String() == s
}

// CreateEndpointGroup validates and creates an endpoint group.
func (s *Service) CreateEndpointGroup(ctx context.Context, g model.EndpointGroup) (*model.EndpointGroup, error) {
	c := who(ctx)
	if err := c.mayWrite("create_endpoint_group"); err != nil {
		return nil, err
	}
	project, err := c.project(g.ProjectID)
	if err != nil {
		return nil, err
	}
	if len(g.Endpoints) == 0 {
		return nil, errInvalid("MissingEndpointForEndpointGroup", "No endpoints specified for endpoint group '%s'", g.Name)
	}
	seen := map[string]bool{}
	for _, e := range g.Endpoints {
		if seen[e] {
			return nil, invalidEndpoint(e, g.Type, "Endpoints have to be unique")
		}
		seen[e] = true
	}
	g.ID, g.ProjectID = newID(), project
	s.stamp(&g.Standard)
	err = s.write(ctx, func(tx store.Tx) error {
		for _, e := range g.Endpoints {
			switch g.Type {
			case "cidr":
				if !ValidCIDR(e) {
					return invalidEndpoint(e, g.Type, "Invalid CIDR")
				}
			case "subnet":
				if !uuidLike(e) {
					return invalidEndpoint(e, g.Type, "Invalid UUID")
				}
				if _, _, err := s.visibleSubnet(ctx, tx, c, e); err != nil {
					var ne *Error
					if errors.As(err, &ne) && ne.Kind == NotFound {
						return errInvalid("NonExistingSubnetInEndpointGroup", "Subnet %s in endpoint group does not exist", e)
					}
					return err
				}
			}
		}
		if err := s.checkQuota(ctx, tx, "endpoint_group", project, 1); err != nil {
			return err
		}
		return tx.CreateEndpointGroup(ctx, &g)
	})
	if err != nil {
		return nil, err
	}
	return &g, nil
}

func uuidLike(s string) bool {
	h := strings.ReplaceAll(s, "-", "")
	if len(h) != 32 {
		return false
	}
	for _, r := range h {
		if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
			return false
		}
	}
	return true
}

// GetEndpointGroup returns an endpoint group the caller owns.
func (s *Service) GetEndpointGroup(ctx context.Context, id string) (*model.EndpointGroup, error) {
	var out *model.EndpointGroup
	err := s.read(ctx, func(tx store.Tx) error {
		var err error
		out, err = s.ownedEndpointGroup(ctx, tx, who(ctx), id)
		return err
	})
	return out, err
}

// ListEndpointGroups returns the caller's endpoint groups.
func (s *Service) ListEndpointGroups(ctx context.Context, p store.Page) ([]model.EndpointGroup, error) {
	var out []model.EndpointGroup
	err := s.read(ctx, func(tx store.Tx) error {
		var err error
		out, err = tx.ListEndpointGroups(ctx, store.EndpointGroupFilter{Scope: who(ctx).scope(), Page: p})
		return err
	})
	return out, err
}

// UpdateEndpointGroup changes the name or description of a group.
func (s *Service) UpdateEndpointGroup(ctx context.Context, id string, change func(*model.EndpointGroup)) (*model.EndpointGroup, error) {
	c := who(ctx)
	if err := c.mayWrite("update_endpoint_group"); err != nil {
		return nil, err
	}
	var out *model.EndpointGroup
	var routers []string
	err := s.write(ctx, func(tx store.Tx) error {
		if err := tx.Lock(ctx, "endpoint_group:"+id); err != nil {
			return err
		}
		old, err := s.ownedEndpointGroup(ctx, tx, c, id)
		if err != nil {
			return err
		}
		g := *old
		g.Endpoints = slices.Clone(old.Endpoints)
		change(&g)
		s.touch(&g.Standard)
		out = &g
		if !slices.Equal(g.Endpoints, old.Endpoints) {
			if routers, err = groupRouters(ctx, tx, id); err != nil {
				return err
			}
		}
		return tx.UpdateEndpointGroup(ctx, &g)
	})
	if err == nil {
		s.hintRouters(ctx, routers...)
	}
	return out, err
}

// groupRouters returns the routers whose connections use an endpoint
// group: the agents that must realise a change of its endpoints. (The API
// takes endpoints on POST only, as the reference does, so today only the
// name and description change and nothing is hinted.)
func groupRouters(ctx context.Context, tx store.Tx, groupID string) ([]string, error) {
	users, err := tx.ListConnections(ctx, store.ConnectionFilter{EndpointGroupID: groupID})
	if err != nil || len(users) == 0 {
		return nil, err
	}
	var ids []string
	for _, u := range users {
		ids = append(ids, u.VPNServiceID)
	}
	slices.Sort(ids)
	vs, err := tx.ListVPNServices(ctx, store.VPNServiceFilter{IDs: slices.Compact(ids)})
	if err != nil {
		return nil, err
	}
	var routers []string
	for _, v := range vs {
		if !slices.Contains(routers, v.RouterID) {
			routers = append(routers, v.RouterID)
		}
	}
	return routers, nil
}

// DeleteEndpointGroup deletes a group no connection uses; in use is the
// reference's 400, not 409.
func (s *Service) DeleteEndpointGroup(ctx context.Context, id string) error {
	c := who(ctx)
	if err := c.mayWrite("delete_endpoint_group"); err != nil {
		return err
	}
	inUse := errInvalid("EndpointGroupInUse", "Endpoint group %s is in use and cannot be deleted", id)
	return s.write(ctx, func(tx store.Tx) error {
		if err := tx.Lock(ctx, "endpoint_group:"+id); err != nil {
			return err
		}
		if _, err := s.ownedEndpointGroup(ctx, tx, c, id); err != nil {
			return err
		}
		users, err := tx.ListConnections(ctx, store.ConnectionFilter{EndpointGroupID: id})
		if err != nil {
			return err
		}
		if len(users) > 0 {
			return inUse
		}
		if err := tx.DeleteEndpointGroup(ctx, id); errors.Is(err, store.ErrReferenced) {
			return inUse
		} else if err != nil {
			return err
		}
		return nil
	})
}

func connectionNotFound(id string) *Error {
	return errNotFound("IPsecSiteConnectionNotFound", "ipsec_site_connection %s not found", id)
}

// Connection defaults.
const (
	DefaultDPDAction   = "hold"
	DefaultDPDInterval = 30
	DefaultDPDTimeout  = 120
)

// DPDRequest is the dpd attribute of a request: nil fields were not given.
type DPDRequest struct {
	Action            *string
	Interval, Timeout *int
}

func (d DPDRequest) apply(dpd *model.DPD) {
	if d.Action != nil {
		dpd.Action = *d.Action
	}
	if d.Interval != nil {
		dpd.Interval = *d.Interval
	}
	if d.Timeout != nil {
		dpd.Timeout = *d.Timeout
	}
}

// ConnectionRequest is a connection POST or PUT: Change applies the plain
// attributes to the connection (stored values on PUT, defaults on POST).
type ConnectionRequest struct {
	Change func(*model.IPsecSiteConnection)
	DPD    DPDRequest
}

// MinMTU is the smallest MTU per local IP version.
var MinMTU = map[int]int{4: 68, 6: 1280}

// checkConnection applies the reference's rules in its order, from the
// driver's own validation to the peer address, and resolves an FQDN peer.
func (s *Service) checkConnection(ctx context.Context, tx store.Tx, c caller, conn *model.IPsecSiteConnection, peer peerLookup) (*model.VPNService, error) {
	v, err := s.ownedVPNService(ctx, tx, c, conn.VPNServiceID)
	if err != nil {
		return nil, err // the reference's KeyError (500) becomes a 404
	}
	ipsec, err := ipsecKind.owned(ctx, tx, c, conn.IPsecPolicyID)
	if err != nil {
		return nil, err
	}
	// The reference's driver validator looks at the IPsec policy before the
	// IKE policy is fetched, so its 400 wins over a missing IKE policy.
	ike, ikeErr := ikeKind.owned(ctx, tx, c, conn.IKEPolicyID)
	var missing *Error
	if ikeErr != nil && !errors.As(ikeErr, &missing) {
		return nil, ikeErr
	}
	if err := validateConnection(s.opts.Providers.driver(v.Provider), v.Provider, ike, ipsec, conn); err != nil {
		return nil, err
	}
	if ikeErr != nil {
		return nil, ikeErr
	}
	legacy := v.SubnetID != ""
	if err := checkMode(legacy, conn); err != nil {
		return nil, err
	}
	var localVersion, peerVersion int
	if legacy {
		conn.LocalEPGroupID, conn.PeerEPGroupID = "", ""
		sn, err := tx.GetSubnet(ctx, v.SubnetID)
		if err != nil {
			return nil, err
		}
		localVersion = sn.IPVersion
	} else {
		local, err := s.ownedEndpointGroup(ctx, tx, c, conn.LocalEPGroupID)
		if err != nil {
			return nil, err
		}
		peer, err := s.ownedEndpointGroup(ctx, tx, c, conn.PeerEPGroupID)
		if err != nil {
			return nil, err
		}
		if local.Type != "subnet" {
			return nil, wrongGroupType("local", local.Type, "subnet")
		}
		if peer.Type != "cidr" {
			return nil, wrongGroupType("peer", peer.Type, "cidr")
		}
		if err := tx.LockShared(ctx, "router:"+v.RouterID); err != nil {
			return nil, err
		}
		ports, err := tx.ListPorts(ctx, store.PortFilter{RouterID: v.RouterID})
		if err != nil {
			return nil, err
		}
		var cidrs []string
		for _, sub := range local.Endpoints {
			if !subnetOnRouter(ports, sub) {
				return nil, errInvalid("SubnetIsNotConnectedToRouter", "Subnet %s is not connected to Router %s", sub, v.RouterID)
			}
			sn, err := tx.GetSubnet(ctx, sub)
			if err != nil {
				return nil, err
			}
			cidrs = append(cidrs, sn.CIDR.String())
		}
		if localVersion, err = sameVersion(cidrs, mixedGroup(local.ID)); err != nil {
			return nil, err
		}
		if peerVersion, err = sameVersion(peer.Endpoints, mixedGroup(peer.ID)); err != nil {
			return nil, err
		}
	}
	if legacy {
		for _, cidr := range conn.PeerCIDRs {
			if !ValidCIDR(cidr) {
				return nil, errInvalid("IPsecSiteConnectionPeerCidrError", "ipsec_site_connection peer cidr %s is invalid CIDR", cidr)
			}
		}
		mixed := errInvalid("MixedIPVersionsForPeerCidrs", "Peer CIDRs do not have the same IP version, as required for IPSec site-to-site connection")
		if peerVersion, err = sameVersion(conn.PeerCIDRs, mixed); err != nil {
			return nil, err
		}
	}
	if localVersion != peerVersion {
		return nil, errInvalid("MixedIPVersionsForIPSecConnection", "IP versions are not compatible between peer and local endpoints")
	}
	if conn.DPD.Timeout <= conn.DPD.Interval {
		return nil, errInvalid("IPsecSiteConnectionDpdIntervalValueError", "ipsec_site_connection %s is equal to or less than dpd_interval", "dpd_timeout")
	}
	if conn.MTU != 0 && conn.MTU < MinMTU[localVersion] {
		return nil, errInvalid("IPsecSiteConnectionMtuError", "ipsec_site_connection MTU %d is too small for ipv%d", conn.MTU, localVersion)
	}
	if err := s.resolvePeer(ctx, tx, v, conn, peer); err != nil {
		return nil, err
	}
	return v, nil
}

func wrongGroupType(which, got, want string) *Error {
	return errInvalid("WrongEndpointGroupType", "Endpoint group %s type is '%s' and should be '%s'", which, got, want)
}

func mixedGroup(id string) *Error {
	return errInvalid("MixedIPVersionsForIPSecEndpoints",
		"Endpoints in group %s do not have the same IP version, as required for IPSec site-to-site connection", id)
}

// sameVersion returns the IP version shared by every CIDR, or mixed.
func sameVersion(cidrs []string, mixed error) (int, error) {
	version := 0
	for _, c := range cidrs {
		v := versionOf(c)
		if version != 0 && v != version {
			return 0, mixed
		}
		version = v
	}
	return version, nil
}

// checkMode is validate_ipsec_conn_optional_args: legacy services need
// peer CIDRs and no groups; endpoint-group services the opposite.
func checkMode(legacy bool, conn *model.IPsecSiteConnection) error {
	var groups []string
	if legacy {
		if len(conn.PeerCIDRs) == 0 {
			return errInvalid("MissingPeerCidrs", "Missing peer CIDRs for IPsec site-to-site connection")
		}
		if conn.LocalEPGroupID != "" {
			groups = append(groups, "local")
		}
		if conn.PeerEPGroupID != "" {
			groups = append(groups, "peer")
		}
		if len(groups) > 0 {
			return errInvalid("InvalidEndpointGroup", "Endpoint group%s %s cannot be specified, when VPN Service has subnet specified",
				plural(groups), strings.Join(groups, " and "))
		}
		return nil
	}
	if len(conn.PeerCIDRs) > 0 {
		return errInvalid("PeerCidrsInvalid", "Peer CIDRs cannot be specified, when using endpoint groups")
	}
	if conn.LocalEPGroupID == "" {
		groups = append(groups, "local")
	}
	if conn.PeerEPGroupID == "" {
		groups = append(groups, "peer")
	}
	if len(groups) > 0 {
		return errInvalid("MissingRequiredEndpointGroup", "Missing endpoint group%s %s for IPSec site-to-site connection",
			plural(groups), strings.Join(groups, " and "))
	}
	return nil
}

func plural(items []string) string {
	if len(items) > 1 {
		return "s"
	}
	return ""
}

// peerLookup is an FQDN peer address resolved before the transaction, so
// that a slow DNS server never holds the store's writer.
type peerLookup struct {
	name  string
	addrs []netip.Addr
	err   error
}

// lookupPeer resolves the peer address a request sets, if it is a name.
func (s *Service) lookupPeer(ctx context.Context, req ConnectionRequest) peerLookup {
	var probe model.IPsecSiteConnection
	req.Change(&probe)
	if probe.PeerAddress == "" {
		return peerLookup{}
	}
	if a, err := netip.ParseAddr(probe.PeerAddress); err == nil && a.Zone() == "" {
		return peerLookup{}
	}
	addrs, err := s.opts.Resolve(ctx, probe.PeerAddress)
	return peerLookup{name: probe.PeerAddress, addrs: addrs, err: err}
}

// resolvePeer replaces an FQDN peer address with the IP that is stored and
// returned, and checks that the router's gateway has an address of the
// peer's family.
func (s *Service) resolvePeer(ctx context.Context, tx store.Tx, v *model.VPNService, conn *model.IPsecSiteConnection, peer peerLookup) error {
	addr, err := netip.ParseAddr(conn.PeerAddress)
	if err != nil || addr.Zone() != "" {
		addrs, lerr := peer.addrs, peer.err
		if peer.name != conn.PeerAddress {
			addrs, lerr = s.opts.Resolve(ctx, conn.PeerAddress)
		}
		if lerr != nil || len(addrs) == 0 {
			return errInvalid("VPNPeerAddressNotResolved", "Peer address %s cannot be resolved", conn.PeerAddress)
		}
		addr = addrs[0].Unmap()
		conn.PeerAddress = addr.String()
	}
	r, err := tx.GetRouter(ctx, v.RouterID)
	if err != nil {
		return err
	}
	v4, v6, err := gatewayIPs(ctx, tx, r)
	if err != nil {
		return err
	}
	if (addr.Is4() && v4 == "") || (addr.Is6() && v6 == "") {
		family := "IPv4"
		if addr.Is6() {
			family = "IPv6"
		}
		return errInvalid("ExternalNetworkHasNoSubnet", "Router's %s external network has no %s subnet", v.RouterID, family)
	}
	return nil
}

// lockConnectionRefs holds everything a connection references against
// deletes and updates, in one global order. The locks are shared, so
// connections of one service are created and updated in parallel.
func lockConnectionRefs(ctx context.Context, tx store.Tx, conn *model.IPsecSiteConnection) error {
	keys := []string{"vpnservice:" + conn.VPNServiceID, "ikepolicy:" + conn.IKEPolicyID, "ipsecpolicy:" + conn.IPsecPolicyID}
	if conn.LocalEPGroupID != "" {
		keys = append(keys, "endpoint_group:"+conn.LocalEPGroupID)
	}
	if conn.PeerEPGroupID != "" {
		keys = append(keys, "endpoint_group:"+conn.PeerEPGroupID)
	}
	slices.Sort(keys)
	for _, k := range slices.Compact(keys) {
		if err := tx.LockShared(ctx, k); err != nil {
			return err
		}
	}
	return nil
}

// CreateConnection validates and creates an IPsec site connection in
// PENDING_CREATE (DOWN, with the reason, when no alive agent hosts its
// router) and tells the service's driver.
func (s *Service) CreateConnection(ctx context.Context, req ConnectionRequest) (*model.IPsecSiteConnection, error) {
	c := who(ctx)
	if err := c.mayWrite("create_ipsec_site_connection"); err != nil {
		return nil, err
	}
	conn := model.IPsecSiteConnection{
		RouteMode: "static", AuthMode: "psk", MTU: 1500, Initiator: "bi-directional", AdminStateUp: true,
		DPD: model.DPD{Action: DefaultDPDAction, Interval: DefaultDPDInterval, Timeout: DefaultDPDTimeout},
	}
	req.Change(&conn)
	req.DPD.apply(&conn.DPD)
	project, err := c.project(conn.ProjectID)
	if err != nil {
		return nil, err
	}
	conn.ID, conn.ProjectID, conn.Status = newID(), project, model.StatusPendingCreate
	s.stamp(&conn.Standard)
	peer := s.lookupPeer(ctx, req)
	var v *model.VPNService
	err = s.write(ctx, func(tx store.Tx) error {
		if err := lockConnectionRefs(ctx, tx, &conn); err != nil {
			return err
		}
		if v, err = s.checkConnection(ctx, tx, c, &conn, peer); err != nil {
			return err
		}
		if err := s.checkQuota(ctx, tx, "ipsec_site_connection", project, 1); err != nil {
			return err
		}
		conn.Status, conn.StatusReason = model.StatusPendingCreate, ""
		if err := s.settleIfUnhosted(ctx, tx, &conn, v.RouterID); err != nil {
			return err
		}
		return refErr(tx.CreateConnection(ctx, &conn), conn.VPNServiceID)
	})
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "ipsec site connection created", "id", conn.ID, "vpnservice", conn.VPNServiceID,
		"peer_address", conn.PeerAddress, "peer_id", conn.PeerID, "psk", conn.PSK)
	s.notify(ctx, v)
	return &conn, nil
}

// refErr turns a reference that vanished despite the locks into a 404.
func refErr(err error, serviceID string) error {
	if errors.Is(err, store.ErrReferenced) {
		return vpnServiceNotFound(serviceID)
	}
	return err
}

func (s *Service) ownedConnection(ctx context.Context, tx store.Tx, c caller, id string) (*model.IPsecSiteConnection, error) {
	conn, err := tx.GetConnection(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !c.owns(conn.ProjectID)) {
		return nil, connectionNotFound(id)
	}
	return conn, err
}

// GetConnection returns a connection the caller owns.
func (s *Service) GetConnection(ctx context.Context, id string) (*model.IPsecSiteConnection, error) {
	var out *model.IPsecSiteConnection
	err := s.read(ctx, func(tx store.Tx) error {
		var err error
		out, err = s.ownedConnection(ctx, tx, who(ctx), id)
		return err
	})
	return out, err
}

// ListConnections returns the caller's connections.
func (s *Service) ListConnections(ctx context.Context, p store.Page) ([]model.IPsecSiteConnection, error) {
	var out []model.IPsecSiteConnection
	err := s.read(ctx, func(tx store.Tx) error {
		var err error
		out, err = tx.ListConnections(ctx, store.ConnectionFilter{Scope: who(ctx).scope(), Page: p})
		return err
	})
	return out, err
}

// UpdateConnection re-validates the merged connection and stores it, in
// any state: unlike the reference, which refuses PENDING_* with
// VPNStateInvalidToUpdate, the agent converges to the newest state.
func (s *Service) UpdateConnection(ctx context.Context, id string, req ConnectionRequest) (*model.IPsecSiteConnection, error) {
	c := who(ctx)
	if err := c.mayWrite("update_ipsec_site_connection"); err != nil {
		return nil, err
	}
	var out *model.IPsecSiteConnection
	var v *model.VPNService
	peer := s.lookupPeer(ctx, req)
	err := s.write(ctx, func(tx store.Tx) error {
		if err := tx.Lock(ctx, "ipsec_site_connection:"+id); err != nil {
			return err
		}
		old, err := s.ownedConnection(ctx, tx, c, id)
		if err != nil {
			return err
		}
		conn := *old
		conn.PeerCIDRs = slices.Clone(old.PeerCIDRs)
		req.Change(&conn)
		req.DPD.apply(&conn.DPD)
		if err := lockConnectionRefs(ctx, tx, &conn); err != nil {
			return err
		}
		if v, err = s.checkConnection(ctx, tx, c, &conn, peer); err != nil {
			return err
		}
		// Unlike the reference, a PENDING_* connection may change: the
		// agent applies the newest desired state whenever it acts.
		if err := s.settleIfUnhosted(ctx, tx, &conn, v.RouterID); err != nil {
			return err
		}
		s.touch(&conn.Standard)
		out = &conn
		return refErr(tx.UpdateConnection(ctx, &conn), conn.VPNServiceID)
	})
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "ipsec site connection updated", "id", out.ID, "vpnservice", out.VPNServiceID,
		"peer_address", out.PeerAddress, "peer_id", out.PeerID, "psk", out.PSK)
	s.notify(ctx, v)
	return out, nil
}

// DeleteConnection deletes a connection at once (no PENDING_DELETE).
func (s *Service) DeleteConnection(ctx context.Context, id string) error {
	c := who(ctx)
	if err := c.mayWrite("delete_ipsec_site_connection"); err != nil {
		return err
	}
	var v *model.VPNService
	err := s.write(ctx, func(tx store.Tx) error {
		if err := tx.Lock(ctx, "ipsec_site_connection:"+id); err != nil {
			return err
		}
		conn, err := s.ownedConnection(ctx, tx, c, id)
		if err != nil {
			return err
		}
		if v, err = tx.GetVPNService(ctx, conn.VPNServiceID); err != nil {
			return fmt.Errorf("service of connection %s: %w", id, err)
		}
		if err := tx.DeleteConnection(ctx, id); err != nil {
			return err
		}
		return s.downIfIdle(ctx, tx, v)
	})
	if err == nil {
		s.notify(ctx, v)
	}
	return err
}

// downIfIdle marks a service without connections DOWN: nothing runs for it.
func (s *Service) downIfIdle(ctx context.Context, tx store.Tx, v *model.VPNService) error {
	left, err := tx.ListConnections(ctx, store.ConnectionFilter{VPNServiceIDs: []string{v.ID}})
	if err != nil || len(left) > 0 || v.Status == model.StatusDown {
		return err
	}
	v.Status = model.StatusDown
	s.touch(&v.Standard)
	return tx.UpdateVPNService(ctx, v)
}

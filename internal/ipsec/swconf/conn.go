package swconf

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/neutrino-net/neutrino/internal/ipsec"
)

// RekeyMargin is the reference's margintime/rekeymargin (3m): IKE and
// CHILD SAs are rekeyed this long before their lifetime ends. For
// lifetimes under twice the margin, half the lifetime is used instead so
// that the rekey time stays positive.
const RekeyMargin = 180

// MinLifetime is the smallest lifetime (seconds) the API accepts.
const MinLifetime = 60

// Config is the strongSwan configuration of one connection.
type Config struct {
	// Name is the IKE_SA config name (load-conn key, unload-conn name)
	// and the CHILD_SA name: the connection id.
	Name string
	// Up is the connection's admin_state_up. When false the caller must
	// not load Conn and Shared (and unloads them if they were loaded).
	Up bool
	// Conn is the body of the load-conn message, under key Name.
	Conn IKEConn
	// Shared is the load-shared message.
	Shared SharedKey
}

// IKEConn is connections.<conn> of swanctl.conf(5).
type IKEConn struct {
	Version     int      `vici:"version"` // 1 or 2
	LocalAddrs  []string `vici:"local_addrs"`
	RemoteAddrs []string `vici:"remote_addrs"`
	Proposals   []string `vici:"proposals"`
	Aggressive  bool     `vici:"aggressive"`
	Mobike      bool     `vici:"mobike"` // the reference sets mobike=no
	// Unique is "replace": when both sides initiate at once, the IKE_SA
	// authenticated last replaces the other, so each connection ends up
	// with one IKE_SA instead of two.
	Unique     string               `vici:"unique"`
	RekeyTime  string               `vici:"rekey_time"`
	OverTime   string               `vici:"over_time"`
	DPDDelay   string               `vici:"dpd_delay"`
	DPDTimeout string               `vici:"dpd_timeout"` // IKEv1 only, ignored for IKEv2
	Local      Auth                 `vici:"local"`
	Remote     Auth                 `vici:"remote"`
	Children   map[string]ChildConn `vici:"children"`
}

// Auth is connections.<conn>.local / remote.
type Auth struct {
	Auth string `vici:"auth"` // psk
	ID   string `vici:"id"`
}

// ChildConn is connections.<conn>.children.<child>.
type ChildConn struct {
	LocalTS      []string `vici:"local_ts"`
	RemoteTS     []string `vici:"remote_ts"`
	ESPProposals []string `vici:"esp_proposals"`
	AHProposals  []string `vici:"ah_proposals"`
	Mode         string   `vici:"mode"` // tunnel, transport
	RekeyTime    string   `vici:"rekey_time"`
	LifeTime     string   `vici:"life_time"`
	StartAction  string   `vici:"start_action"` // none, trap|start
	DPDAction    string   `vici:"dpd_action"`   // clear, trap, restart
}

// SharedKey is the load-shared message of an IKE PSK. Data is sent raw
// (VICI takes the key itself, not swanctl's 0s/base64 file encoding).
type SharedKey struct {
	ID     string         `vici:"id"`   // unique id, for unload-shared
	Type   string         `vici:"type"` // IKE
	Data   agentv1.Secret `vici:"data"`
	Owners []string       `vici:"owners"`
}

// SharedID is the load-shared/unload-shared id of a connection's PSK.
func SharedID(connID string) string { return "ike-" + connID }

// Identity applies the reference's rule to an IKE id: an IP literal is
// kept, anything else gets an "@" prefix (an FQDN/keyid identity).
func Identity(id string) string {
	if _, err := netip.ParseAddr(id); err == nil {
		return id
	}
	return "@" + id
}

// dpd maps dpd.action to the CHILD_SA dpd_action; enabled is false for
// "disabled".
func dpd(action string) (childAction string, enabled bool, err error) {
	switch action {
	case "hold":
		return "trap", true, nil
	case "clear":
		return "clear", true, nil
	case "restart", "restart-by-peer":
		return "restart", true, nil
	case "disabled":
		return "", false, nil
	}
	return "", false, fmt.Errorf("strongswan: unknown dpd action %q", action)
}

// startAction maps the initiator. bi-directional traps and initiates,
// like the reference's auto=route plus "ipsec stroke up-nb".
func startAction(initiator string) (string, error) {
	switch initiator {
	case "bi-directional":
		return "trap|start", nil
	case "response-only":
		return "none", nil
	}
	return "", fmt.Errorf("strongswan: unknown initiator %q", initiator)
}

// lifetimes returns rekey time and margin for a lifetime in seconds.
func lifetimes(what string, life int) (rekey, margin int, err error) {
	if life < MinLifetime {
		return 0, 0, fmt.Errorf("strongswan: %s lifetime %d is below %d seconds", what, life, MinLifetime)
	}
	margin = min(RekeyMargin, life/2)
	return life - margin, margin, nil
}

func seconds(n int) string { return fmt.Sprintf("%ds", n) }

// Conn maps one connection to its strongSwan configuration. Every value
// outside the API enumerations is an error; so is transform_protocol
// ah-esp (the API rejects it).
func Conn(c ipsec.Connection) (Config, error) {
	var errs []error
	fail := func(err error) { errs = append(errs, err) }
	if c.ID == "" {
		fail(errors.New("strongswan: connection id is empty"))
	}
	if c.LocalAddress == "" {
		fail(errors.New("strongswan: local address is empty"))
	}
	if c.PeerAddress == "" {
		fail(errors.New("strongswan: peer address is empty"))
	}
	if c.PeerID == "" {
		fail(errors.New("strongswan: peer id is empty"))
	}
	if c.PSK == "" {
		fail(errors.New("strongswan: psk is empty"))
	}
	if len(c.LocalCIDRs) == 0 || len(c.PeerCIDRs) == 0 {
		fail(errors.New("strongswan: local and peer CIDRs are required"))
	}

	ike := IKEConn{
		LocalAddrs:  []string{c.LocalAddress},
		RemoteAddrs: []string{c.PeerAddress},
	}
	switch c.IKE.IKEVersion {
	case "v1":
		ike.Version = 1
	case "v2":
		ike.Version = 2
	default:
		fail(fmt.Errorf("strongswan: unknown ike_version %q", c.IKE.IKEVersion))
	}
	switch c.IKE.Phase1NegotiationMode {
	case "main":
	case "aggressive":
		ike.Aggressive = true
	default:
		fail(fmt.Errorf("strongswan: unknown phase1_negotiation_mode %q", c.IKE.Phase1NegotiationMode))
	}
	if p, err := Proposal(c.IKE.EncryptionAlgorithm, c.IKE.AuthAlgorithm, c.IKE.PFS, false); err != nil {
		fail(fmt.Errorf("ike policy: %w", err))
	} else {
		ike.Proposals = []string{p}
	}
	if rekey, margin, err := lifetimes("ike", c.IKE.LifetimeSeconds); err != nil {
		fail(err)
	} else {
		ike.RekeyTime, ike.OverTime = seconds(rekey), seconds(margin)
	}

	child := ChildConn{LocalTS: c.LocalCIDRs, RemoteTS: c.PeerCIDRs}
	if action, enabled, err := dpd(c.DPD.Action); err != nil {
		fail(err)
	} else if !enabled {
		ike.DPDDelay = "0s"
	} else if c.DPD.Interval < 0 || c.DPD.Timeout < 0 {
		fail(fmt.Errorf("strongswan: negative dpd interval %d or timeout %d", c.DPD.Interval, c.DPD.Timeout))
	} else {
		ike.DPDDelay, ike.DPDTimeout = seconds(c.DPD.Interval), seconds(c.DPD.Timeout)
		child.DPDAction = action
	}

	ike.Local = Auth{Auth: "psk", ID: c.LocalAddress}
	if c.LocalID != "" {
		ike.Local.ID = Identity(c.LocalID)
	}
	ike.Remote = Auth{Auth: "psk", ID: Identity(c.PeerID)}

	switch c.IPsec.TransformProtocol {
	case "esp":
		if p, err := Proposal(c.IPsec.EncryptionAlgorithm, c.IPsec.AuthAlgorithm, c.IPsec.PFS, true); err != nil {
			fail(fmt.Errorf("ipsec policy: %w", err))
		} else {
			child.ESPProposals = []string{p}
		}
	case "ah":
		if p, err := AHProposal(c.IPsec.AuthAlgorithm, c.IPsec.PFS); err != nil {
			fail(fmt.Errorf("ipsec policy: %w", err))
		} else {
			child.AHProposals = []string{p}
		}
	default: // including ah-esp, which the API rejects
		fail(fmt.Errorf("strongswan: unsupported transform_protocol %q", c.IPsec.TransformProtocol))
	}
	switch c.IPsec.EncapsulationMode {
	case "tunnel", "transport":
		child.Mode = c.IPsec.EncapsulationMode
	default:
		fail(fmt.Errorf("strongswan: unknown encapsulation_mode %q", c.IPsec.EncapsulationMode))
	}
	if rekey, _, err := lifetimes("ipsec", c.IPsec.LifetimeSeconds); err != nil {
		fail(err)
	} else {
		child.RekeyTime, child.LifeTime = seconds(rekey), seconds(c.IPsec.LifetimeSeconds)
	}
	if a, err := startAction(c.Initiator); err != nil {
		fail(err)
	} else {
		child.StartAction = a
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}

	ike.Children = map[string]ChildConn{c.ID: child}
	return Config{
		Name: c.ID,
		Up:   c.AdminStateUp,
		Conn: ike,
		Shared: SharedKey{
			ID:     SharedID(c.ID),
			Type:   "IKE",
			Data:   c.PSK,
			Owners: []string{ike.Local.ID, ike.Remote.ID},
		},
	}, nil
}

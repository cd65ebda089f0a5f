package strongswan

import (
	"github.com/strongswan/govici/vici"

	"github.com/neutrino-net/neutrino/internal/ipsec/swconf"
)

// The configuration mapping lives in package swconf, which the server's
// peer-config export shares; these names keep the driver's vocabulary.
type (
	Config    = swconf.Config
	IKEConn   = swconf.IKEConn
	ChildConn = swconf.ChildConn
	Auth      = swconf.Auth
	SharedKey = swconf.SharedKey
)

var (
	Conn       = swconf.Conn
	Proposal   = swconf.Proposal
	AHProposal = swconf.AHProposal
	Identity   = swconf.Identity
	SharedID   = swconf.SharedID
)

const (
	RekeyMargin = swconf.RekeyMargin
	MinLifetime = swconf.MinLifetime
)

// LoadConn returns the load-conn request message: { <Name> = Conn }.
func LoadConn(c Config) (*vici.Message, error) {
	m := vici.NewMessage()
	if err := m.Set(c.Name, c.Conn); err != nil {
		return nil, err
	}
	return m, nil
}

// LoadShared returns the load-shared request message. It carries the PSK.
func LoadShared(c Config) (*vici.Message, error) {
	return vici.MarshalMessage(c.Shared)
}

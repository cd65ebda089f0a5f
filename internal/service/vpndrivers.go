package service

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/neutrino-net/neutrino/internal/ipsec"
	"github.com/neutrino-net/neutrino/internal/ipsec/lsconf"
	"github.com/neutrino-net/neutrino/internal/model"
)

// VPNDriver is a server-side VPN service driver: it says what its device
// driver can do and tells the agents hosting a router that the router's
// VPN changed.
type VPNDriver interface {
	// ValidateConnection rejects what the device driver cannot express,
	// with a 400 IpsecValidationFailure naming the value. ike is nil when
	// the IKE policy does not exist (that 404 comes after this check).
	ValidateConnection(ike *model.IKEPolicy, ipsec *model.IPsecPolicy, conn *model.IPsecSiteConnection) error
	// Notify is called after a committed change to the VPN of routerID.
	Notify(ctx context.Context, routerID string)
}

// Provider is one configured VPN service provider.
type Provider struct {
	Name    string // e.g. "strongswan"
	Driver  string // the registered driver kind
	Default bool
	// FlavorID is the flavor that selects this provider on a VPN service.
	FlavorID string
}

// Providers is the explicit registry of VPN service providers.
type Providers struct {
	list    []Provider
	drivers map[string]VPNDriver // by provider name
}

// flavorNamespace derives stable flavor ids from provider names.
var flavorNamespace = uuid.MustParse("6f1c7c2e-3b0a-4f55-9d5e-8f6b2a1c0d9e")

// NewProviders builds the registry from service_provider entries of the form
// "VPN:<name>:<driver>[:default]", resolving each driver kind in kinds.
// Exactly one provider is the default (the first when none says so).
func NewProviders(entries []string, kinds map[string]VPNDriver) (*Providers, error) {
	p := &Providers{drivers: map[string]VPNDriver{}}
	known := slices.Sorted(maps.Keys(kinds))
	for _, e := range entries {
		parts := strings.Split(strings.TrimSpace(e), ":")
		if len(parts) < 3 || len(parts) > 4 || parts[0] != "VPN" || parts[1] == "" || (len(parts) == 4 && parts[3] != "default") {
			return nil, fmt.Errorf("service_provider %q: want VPN:<name>:<driver>[:default]", e)
		}
		name, kind := parts[1], parts[2]
		drv, ok := kinds[kind]
		if !ok {
			return nil, fmt.Errorf("service_provider %q: unknown driver %q (known: %s)", e, kind, strings.Join(known, ", "))
		}
		if _, dup := p.drivers[name]; dup {
			return nil, fmt.Errorf("service_provider %q: provider %q configured twice", e, name)
		}
		p.drivers[name] = drv
		p.list = append(p.list, Provider{Name: name, Driver: kind, Default: len(parts) == 4,
			FlavorID: uuid.NewSHA1(flavorNamespace, []byte(name)).String()})
	}
	if len(p.list) == 0 {
		return nil, fmt.Errorf("no VPN service provider configured")
	}
	defaults := 0
	for _, pr := range p.list {
		if pr.Default {
			defaults++
		}
	}
	switch defaults {
	case 0:
		p.list[0].Default = true
	case 1:
	default:
		return nil, fmt.Errorf("more than one default VPN service provider")
	}
	return p, nil
}

// List returns the providers in configuration order.
func (p *Providers) List() []Provider { return slices.Clone(p.list) }

// forFlavor returns the provider a flavor selects ("" selects the default).
func (p *Providers) forFlavor(flavorID string) (Provider, error) {
	for _, pr := range p.list {
		if (flavorID == "" && pr.Default) || (flavorID != "" && strings.EqualFold(pr.FlavorID, flavorID)) {
			return pr, nil
		}
	}
	return Provider{}, errNotFound("FlavorNotFound", "Flavor %s could not be found.", flavorID)
}

// provider returns the provider of a name; a provider that was removed
// from the configuration falls back to the default, as driver does.
func (p *Providers) provider(name string) Provider {
	for _, pr := range p.list {
		if pr.Name == name {
			return pr
		}
	}
	def, _ := p.forFlavor("")
	return def
}

// driver returns the driver of a provider; a provider that was removed from
// the configuration falls back to the default's.
func (p *Providers) driver(name string) VPNDriver {
	if d, ok := p.drivers[name]; ok {
		return d
	}
	def, _ := p.forFlavor("")
	return p.drivers[def.Name]
}

// IPsecDriver is the service driver of the IKE-daemon device drivers
// (strongSwan, Libreswan): both run ESP or AH, never both at once.
type IPsecDriver struct {
	// Notifier tells agents; nil until agents exist.
	Notifier func(ctx context.Context, routerID string)
	// Kind is the device driver ("strongswan", "libreswan"): Libreswan
	// cannot do some values the API accepts (lsconf.Supported).
	Kind string
}

// ProviderValidator is a VPNDriver whose refusals name the provider the
// VPN service uses.
type ProviderValidator interface {
	ValidateForProvider(provider string, ike *model.IKEPolicy, ipsec *model.IPsecPolicy, conn *model.IPsecSiteConnection) error
}

// validateConnection runs d's validation, naming provider when d can.
func validateConnection(d VPNDriver, provider string, ike *model.IKEPolicy, ipsec *model.IPsecPolicy, conn *model.IPsecSiteConnection) error {
	if pv, ok := d.(ProviderValidator); ok {
		return pv.ValidateForProvider(provider, ike, ipsec, conn)
	}
	return d.ValidateConnection(ike, ipsec, conn)
}

// ValidateForProvider implements ProviderValidator: the checks of
// ValidateConnection, then, for Libreswan, the values it cannot do,
// refused with a 400 naming the value and the provider.
func (d IPsecDriver) ValidateForProvider(provider string, ike *model.IKEPolicy, ipsecp *model.IPsecPolicy, conn *model.IPsecSiteConnection) error {
	if err := d.ValidateConnection(ike, ipsecp, conn); err != nil {
		return err
	}
	if d.Kind != "libreswan" || ike == nil {
		return nil
	}
	err := lsconf.Supported(
		ipsec.IKEPolicy{AuthAlgorithm: ike.AuthAlgorithm, EncryptionAlgorithm: ike.EncryptionAlgorithm,
			Phase1NegotiationMode: ike.Phase1NegotiationMode, IKEVersion: ike.IKEVersion, PFS: ike.PFS, LifetimeSeconds: ike.Lifetime.Value},
		ipsec.IPsecPolicy{TransformProtocol: ipsecp.TransformProtocol, AuthAlgorithm: ipsecp.AuthAlgorithm,
			EncryptionAlgorithm: ipsecp.EncryptionAlgorithm, EncapsulationMode: ipsecp.EncapsulationMode, PFS: ipsecp.PFS,
			LifetimeSeconds: ipsecp.Lifetime.Value})
	if err == nil && conn != nil {
		err = lsconf.SupportedConn(conn.LocalID, conn.PeerID, conn.MTU)
	}
	var u *lsconf.UnsupportedError
	if errors.As(err, &u) {
		return errInvalid("IpsecValidationFailure", "VPN service provider %s (device driver libreswan) does not support %s: %s.",
			provider, u.What, u.Why)
	}
	return nil
}

// ValidateConnection implements VPNDriver.
func (d IPsecDriver) ValidateConnection(_ *model.IKEPolicy, ipsec *model.IPsecPolicy, _ *model.IPsecSiteConnection) error {
	if ipsec.TransformProtocol == "ah-esp" {
		return errInvalid("IpsecValidationFailure", "IPSec does not support %s attribute %s with value '%s'",
			"IPsec Policy", "transform_protocol", ipsec.TransformProtocol)
	}
	return nil
}

// Notify implements VPNDriver.
func (d IPsecDriver) Notify(ctx context.Context, routerID string) {
	if d.Notifier != nil {
		d.Notifier(ctx, routerID)
	}
}

// DefaultServiceProviders are a Service's providers when Options gives
// none (tests): strongSwan (the default provider) and Libreswan, so the
// API of both can be exercised. The server's configuration default
// (config's service_provider) enables only what an agent can run.
var DefaultServiceProviders = []string{"VPN:strongswan:strongswan:default", "VPN:libreswan:libreswan"}

// DriverKinds returns the registered driver kinds, each with notifier.
func DriverKinds(notify func(ctx context.Context, routerID string)) map[string]VPNDriver {
	return map[string]VPNDriver{
		"strongswan": IPsecDriver{Notifier: notify, Kind: "strongswan"},
		"libreswan":  IPsecDriver{Notifier: notify, Kind: "libreswan"},
	}
}

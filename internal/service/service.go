// Package service holds Neutrino's use cases: the rules of the Networking
// API (ownership, in-use checks, address management, quotas) applied in one
// store transaction per request. It knows nothing of HTTP or SQL.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/google/uuid"

	"github.com/neutrino-net/neutrino/api/agentv1"
	"github.com/neutrino-net/neutrino/internal/identity"
	"github.com/neutrino-net/neutrino/internal/model"
	"github.com/neutrino-net/neutrino/internal/segment"
	"github.com/neutrino-net/neutrino/internal/store"
)

// Options tune the service.
type Options struct {
	// PhysnetMTU is the MTU of the physical network (default 1500).
	// External networks get it; tenant networks get it less the VXLAN
	// overhead.
	PhysnetMTU int
	// MACPrefix is the first three bytes of generated MACs (default fa:16:3e).
	MACPrefix string
	// Segments configure provider networks and tenant network allocation
	// (default: flat networks on any physical network, no VLANs, tenant
	// networks VXLAN from the whole VNI range).
	Segments *segment.Config
	// Providers are the VPN service providers (default: strongSwan and
	// Libreswan, strongSwan the default).
	Providers *Providers
	// Resolve looks up an FQDN peer address (default net.DefaultResolver).
	Resolve func(ctx context.Context, host string) ([]netip.Addr, error)
	// Hint, if set, is called after a commit for every host whose desired
	// state changed (the bus publishes it).
	Hint func(ctx context.Context, host string, h agentv1.Hint)
	// ObserveReport, if set, is called after each agent status report
	// (metrics).
	ObserveReport func(ReportOutcome)
	// AgentDownTime is how long an agent may miss heartbeats before it is
	// dead (default DefaultAgentDownTime).
	AgentDownTime time.Duration
	// DHCPAgentsPerNetwork is how many DHCP agents serve each network
	// with DHCP (default 1).
	DHCPAgentsPerNetwork int
	// DHCPLeaseDuration is the DHCP lease time in seconds (default
	// DefaultDHCPLeaseDuration).
	DHCPLeaseDuration int
	// MaxAllowedAddressPairs is the most allowed address pairs a port
	// may have (default DefaultMaxAllowedAddressPairs).
	MaxAllowedAddressPairs int
	// Quotas override model.DefaultQuotas.
	Quotas map[string]int
	Logger *slog.Logger
	// Now returns the current time (tests).
	Now func() time.Time
}

// VXLANOverhead is what tenant networks lose to the VXLAN encapsulation.
const VXLANOverhead = 50

// Limits of the reference.
const (
	DefaultMaxAllowedAddressPairs = 10
	MaxDNSNameservers             = 5
	MaxHostRoutes                 = 20
	MaxFixedIPsPerPort            = 5
	MaxRoutes                     = 30
)

// Service is the Networking API's rules over a store.
type Service struct {
	st   store.Store
	opts Options
	log  *slog.Logger
}

// New returns a service over st.
func New(st store.Store, opts Options) *Service {
	if opts.PhysnetMTU == 0 {
		opts.PhysnetMTU = 1500
	}
	if opts.MACPrefix == "" {
		opts.MACPrefix = "fa:16:3e"
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Segments == nil {
		opts.Segments = &segment.Config{Flat: []string{"*"}, VLAN: map[string][]segment.Range{},
			VNI: []segment.Range{{Min: segment.MinVNI, Max: segment.MaxVNI}}, TenantTypes: []string{segment.VXLAN}}
	}
	if opts.MaxAllowedAddressPairs == 0 {
		opts.MaxAllowedAddressPairs = DefaultMaxAllowedAddressPairs
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Providers == nil {
		p, err := NewProviders(DefaultServiceProviders, DriverKinds(nil))
		if err != nil {
			panic(err) // the defaults are valid
		}
		opts.Providers = p
	}
	if opts.Resolve == nil {
		opts.Resolve = func(ctx context.Context, host string) ([]netip.Addr, error) {
			ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	q := make(map[string]int, len(model.DefaultQuotas))
	for k, v := range model.DefaultQuotas {
		q[k] = v
	}
	for k, v := range opts.Quotas {
		q[k] = v
	}
	opts.Quotas = q
	return &Service{st: st, opts: opts, log: opts.Logger}
}

// MaxAllowedAddressPairs is the most allowed address pairs a port may have.
func (s *Service) MaxAllowedAddressPairs() int {
	if s.opts.MaxAllowedAddressPairs == 0 {
		return DefaultMaxAllowedAddressPairs
	}
	return s.opts.MaxAllowedAddressPairs
}

// Store returns the underlying store (for status ingest and tests).
func (s *Service) Store() store.Store { return s.st }

func (s *Service) now() time.Time { return s.opts.Now().UTC().Truncate(time.Second) }

func newID() string { return uuid.NewString() }

// write runs fn in a write transaction and translates store errors that
// escaped the rules into API errors. Within a Batch, fn runs in the
// batch's transaction. A request's If-Match constraint
// (WithRevisionConstraint) is checked first, in the same transaction as
// the write it guards.
func (s *Service) write(ctx context.Context, fn func(store.Tx) error) error {
	if b := batchOf(ctx); b != nil {
		return translate(fn(b.tx))
	}
	err := s.st.Write(ctx, func(tx store.Tx) error {
		if err := s.checkRevision(ctx, tx); err != nil {
			return err
		}
		return fn(tx)
	})
	if err == nil {
		markRevisionChecked(ctx)
	}
	return translate(err)
}

// read runs fn in a read transaction, or within a Batch in the batch's
// transaction, so that it sees what the batch wrote.
func (s *Service) read(ctx context.Context, fn func(store.Tx) error) error {
	if b := batchOf(ctx); b != nil {
		return translate(fn(b.tx))
	}
	return translate(s.st.Read(ctx, fn))
}

func translate(err error) error {
	if err == nil {
		return nil
	}
	var ne *Error
	if errors.As(err, &ne) {
		return ne
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("store: %w", err)
}

// stamp sets the standard attributes of a new resource.
func (s *Service) stamp(std *model.Standard) {
	now := s.now()
	std.CreatedAt, std.UpdatedAt, std.RevisionNumber = now, now, 0
}

// touch bumps the standard attributes of an updated resource.
func (s *Service) touch(std *model.Standard) {
	std.UpdatedAt = s.now()
	std.RevisionNumber++
}

// caller is the identity of the request plus shorthands.
type caller struct {
	identity.Identity
	admin bool
}

func who(ctx context.Context) caller {
	id := identity.FromContext(ctx)
	return caller{Identity: id, admin: id.Admin()}
}

// owns reports whether the caller may see a row of project p.
func (c caller) owns(p string) bool { return c.admin || (p != "" && p == c.ProjectID) }

// scope is the store scope for a listing by the caller.
func (c caller) scope() store.Scope {
	if c.admin {
		return store.Scope{}
	}
	return store.Scope{ProjectID: c.ProjectID}
}

// mayWrite returns a 403 when the caller is read-only.
func (c caller) mayWrite(rule string) error {
	if !c.CanWrite() {
		return errForbidden(rule)
	}
	return nil
}

// project decides the owning project of a new resource: the requested one
// (admins only, when it differs) or the caller's.
func (c caller) project(requested string) (string, error) {
	if requested == "" || requested == c.ProjectID {
		return c.ProjectID, nil
	}
	if !c.admin {
		// The reference's API layer refuses this before any policy, with
		// a 400 (its conformance suite expects it), whatever the resource.
		return "", errInvalid("HTTPBadRequest", "Specifying 'project_id' or 'tenant_id' other than the authenticated project in request requires admin or advsvc privileges")
	}
	return requested, nil
}

// quotaTx is what a quota check reads and locks.
type quotaTx interface {
	store.Locker
	store.Quotas
}

// checkQuota returns OverQuota when project already has its limit of
// resource. The caller holds the project's quota lock.
func (s *Service) checkQuota(ctx context.Context, tx quotaTx, resource, project string, adding int) error {
	limit, err := s.limit(ctx, tx, resource, project)
	if err != nil || limit < 0 {
		return err
	}
	if err := tx.Lock(ctx, "quota:"+project+":"+resource); err != nil {
		return err
	}
	n, err := tx.Count(ctx, resource, project)
	if err != nil {
		return err
	}
	if n+adding > limit {
		return errConflict("OverQuota", "Quota exceeded for resources: ['%s'].", resource)
	}
	return nil
}

func (s *Service) limit(ctx context.Context, tx store.Quotas, resource, project string) (int, error) {
	set, err := tx.Quotas(ctx, project)
	if err != nil {
		return 0, err
	}
	if v, ok := set[resource]; ok {
		return v, nil
	}
	if v, ok := s.opts.Quotas[resource]; ok {
		return v, nil
	}
	return -1, nil
}

// notFound maps a store miss to the typed 404 and passes other errors on.
func notFound(err error, typ, format string, args ...any) error {
	if errors.Is(err, store.ErrNotFound) {
		return errNotFound(typ, format, args...)
	}
	return err
}

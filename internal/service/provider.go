package service

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/neutrino-net/neutrino/internal/model"
	"github.com/neutrino-net/neutrino/internal/segment"
	"github.com/neutrino-net/neutrino/internal/store"
)

// ProviderRequest is what a request gave of the provider extension's
// attributes; nil fields were not given (or given as null).
type ProviderRequest struct {
	NetworkType     *string
	PhysicalNetwork *string
	SegmentationID  *int
	// Segments are the multi-provider extension's segments, each with the
	// three attributes above; SegmentsGiven says whether the request named
	// segments at all (a null is not naming them).
	Segments      []ProviderRequest
	SegmentsGiven bool
}

// Given reports whether any provider attribute was given.
func (p *ProviderRequest) Given() bool {
	return p != nil && (p.NetworkType != nil || p.PhysicalNetwork != nil || p.SegmentationID != nil)
}

func deref[T any](p *T) (v T) {
	if p != nil {
		v = *p
	}
	return v
}

// segmentOf validates a provider request as the reference's type drivers
// do and returns the network's segment and, for an id to allocate, the
// pool to allocate it from. Without a request the network gets the first
// tenant network type that has room configured.
func (s *Service) segmentOf(c caller, p *ProviderRequest) (typ, physnet string, segID int, pool []segment.Range, err error) {
	cfg := s.opts.Segments
	if !p.Given() {
		typ = cfg.TenantTypes[0]
		switch typ {
		case segment.VXLAN:
			// Never nil: the store reads nil as the whole range, and an
			// empty vni_ranges means none.
			pool = append([]segment.Range{}, cfg.VNI...)
		case segment.VLAN:
			var ok bool
			if physnet, pool, ok = firstVLANRange(cfg); !ok {
				return "", "", 0, nil, errUnavailable()
			}
		}
		return typ, physnet, 0, pool, nil
	}
	if !c.admin {
		return "", "", 0, nil, errForbidden("create_network:provider:network_type")
	}
	if p.NetworkType == nil {
		return "", "", 0, nil, errInvalidMsg("network_type required")
	}
	typ, physnet, segID = *p.NetworkType, deref(p.PhysicalNetwork), deref(p.SegmentationID)
	prohibited := func(what string) error {
		return errInvalidMsg(fmt.Sprintf("%s prohibited for %s provider network", what, typ))
	}
	switch typ {
	case segment.Flat:
		switch {
		case physnet == "":
			return "", "", 0, nil, errInvalidMsg("physical_network required for flat provider network")
		case len(cfg.Flat) == 0:
			return "", "", 0, nil, errInvalidMsg("Flat provider networks are disabled")
		case !cfg.FlatAllowed(physnet):
			return "", "", 0, nil, errInvalidMsg(fmt.Sprintf("physical_network '%s' unknown for flat provider network", physnet))
		case p.SegmentationID != nil:
			return "", "", 0, nil, prohibited("segmentation_id")
		}
	case segment.VLAN:
		switch {
		case physnet == "" && p.SegmentationID != nil:
			return "", "", 0, nil, errInvalidMsg("segmentation_id requires physical_network for VLAN provider network")
		case physnet == "":
			// The first physical network with room, as for a tenant network.
			name, ranges, ok := firstVLANRange(cfg)
			if !ok {
				return "", "", 0, nil, errUnavailable()
			}
			return typ, name, 0, ranges, nil
		}
		ranges, known := cfg.VLAN[physnet]
		if !known {
			return "", "", 0, nil, errInvalidMsg(fmt.Sprintf("physical_network '%s' unknown for VLAN provider network", physnet))
		}
		if p.SegmentationID == nil {
			return typ, physnet, 0, append([]segment.Range{}, ranges...), nil
		}
		if segID < segment.MinVLAN || segID > segment.MaxVLAN {
			return "", "", 0, nil, errInvalidMsg(fmt.Sprintf("segmentation_id out of range (%d through %d)", segment.MinVLAN, segment.MaxVLAN))
		}
	case segment.VXLAN:
		if physnet != "" {
			return "", "", 0, nil, errInvalidMsg("provider:physical_network specified for vxlan network")
		}
		if p.SegmentationID == nil {
			return typ, "", 0, append([]segment.Range{}, cfg.VNI...), nil
		}
		if segID < segment.MinVNI || segID > segment.MaxVNI {
			return "", "", 0, nil, errInvalidMsg(fmt.Sprintf("segmentation_id out of range (%d through %d)", segment.MinVNI, segment.MaxVNI))
		}
	case segment.Local:
		switch {
		case physnet != "":
			return "", "", 0, nil, prohibited("physical_network")
		case p.SegmentationID != nil:
			return "", "", 0, nil, prohibited("segmentation_id")
		}
	default:
		return "", "", 0, nil, errInvalidMsg(fmt.Sprintf("network_type value '%s' not supported", typ))
	}
	return typ, physnet, segID, nil, nil
}

// firstVLANRange is the first physical network (by name) with VLAN
// ranges, and its ranges.
func firstVLANRange(cfg *segment.Config) (string, []segment.Range, bool) {
	for _, name := range slices.Sorted(maps.Keys(cfg.VLAN)) {
		if len(cfg.VLAN[name]) > 0 {
			return name, cfg.VLAN[name], true
		}
	}
	return "", nil, false
}

// segmentTaken turns the store's refusal of a segment of n into the
// reference's error.
func segmentTaken(err error, n *model.Network) error {
	sg := model.Segment{NetworkType: n.NetworkType, PhysicalNetwork: n.PhysicalNetwork, SegmentationID: n.SegmentationID}
	var se *store.SegmentError
	if errors.As(err, &se) && se.Index < len(n.Segments) {
		sg = n.Segments[se.Index]
	}
	switch {
	case errors.Is(err, store.ErrExhausted):
		return errUnavailable()
	case !errors.Is(err, store.ErrDuplicate):
		return err
	case sg.NetworkType == segment.Flat:
		return errConflict("FlatNetworkInUse", "Unable to create the flat network. Physical network %s is in use.", sg.PhysicalNetwork)
	case sg.NetworkType == segment.VLAN:
		return errConflict("VlanIdInUse", "Unable to create the network. The VLAN %d on physical network %s is in use.",
			sg.SegmentationID, sg.PhysicalNetwork)
	case sg.NetworkType == segment.VXLAN:
		return errConflict("TunnelIdInUse", "Unable to create the network. The tunnel ID %d is in use.", sg.SegmentationID)
	}
	return err
}

// segmentsOf validates the segments of a multi-provider request as the
// reference's ML2 does: admins only, not together with the provider
// attributes, no segment given twice (segments whose id is to be
// allocated may repeat), each one valid for its type driver. It returns
// the segments and the pool of each; fewer than two segments make a
// network of one segment (none: a tenant network), as in the reference.
func (s *Service) segmentsOf(c caller, p *ProviderRequest) ([]model.Segment, [][]segment.Range, error) {
	if !c.admin {
		return nil, nil, errForbidden("create_network:segments")
	}
	if p.Given() {
		return nil, nil, errInvalid("SegmentsSetInConjunctionWithProviders", "Segments and provider values cannot both be set.")
	}
	seen := map[[3]string]bool{}
	for _, sp := range p.Segments {
		typ := deref(sp.NetworkType)
		partial := (typ == segment.VXLAN && sp.SegmentationID == nil) ||
			(typ == segment.VLAN && (sp.SegmentationID == nil || deref(sp.PhysicalNetwork) == ""))
		if partial {
			continue
		}
		key := [3]string{fmt.Sprint(sp.NetworkType != nil, typ), fmt.Sprint(sp.PhysicalNetwork != nil, deref(sp.PhysicalNetwork)),
			fmt.Sprint(sp.SegmentationID != nil, deref(sp.SegmentationID))}
		if seen[key] {
			return nil, nil, errInvalid("SegmentsContainDuplicateEntry", "Duplicate segment entry in request.")
		}
		seen[key] = true
	}
	var segs []model.Segment
	var pools [][]segment.Range
	for i := range p.Segments {
		sp := p.Segments[i]
		if !sp.Given() {
			return nil, nil, errInvalidMsg("network_type required")
		}
		typ, physnet, segID, pool, err := s.segmentOf(c, &sp)
		if err != nil {
			return nil, nil, err
		}
		segs = append(segs, model.Segment{NetworkType: typ, PhysicalNetwork: physnet, SegmentationID: segID})
		pools = append(pools, pool)
	}
	return segs, pools, nil
}

func errUnavailable() *Error {
	return refuse(Unavailable, "NoNetworkAvailable", "Unable to create the network. No tenant network is available for allocation.")
}

// errInvalidMsg is the reference's InvalidInput with a free message.
func errInvalidMsg(msg string) *Error {
	return errInvalid("InvalidInput", "Invalid input for operation: %s.", strings.TrimSuffix(msg, "."))
}

// checkProviderUnchanged refuses an update that names provider attributes
// other than the network's own (the reference's ML2 cannot change them).
func checkProviderUnchanged(c caller, p *ProviderRequest, n *model.Network) error {
	if p != nil && p.SegmentsGiven {
		if !c.admin {
			return errForbidden("update_network:segments")
		}
		return errInvalidMsg("Plugin does not support updating provider attributes")
	}
	if !p.Given() {
		return nil
	}
	if !c.admin {
		return errForbidden("update_network:provider:network_type")
	}
	same := (p.NetworkType == nil || *p.NetworkType == n.NetworkType) &&
		(p.PhysicalNetwork == nil || *p.PhysicalNetwork == n.PhysicalNetwork) &&
		(p.SegmentationID == nil || *p.SegmentationID == n.SegmentationID)
	if !same {
		return errInvalidMsg("Plugin does not support updating provider attributes")
	}
	return nil
}

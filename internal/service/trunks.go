package service

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/neutrino-net/neutrino/internal/model"
	"github.com/neutrino-net/neutrino/internal/store"
)

// Trunks: the reference's trunk extension. A trunk makes a port (the
// parent, a vlan-aware VM's NIC) carry other ports (subports), each on its
// own VLAN tag. A subport is handed to the trunk: its device_id becomes
// the trunk's id, its device_owner trunk:subport and its host the
// parent's, so that it is wired where the parent is.

func trunkNotFound(id string) *Error {
	return errNotFound("TrunkNotFound", "Trunk %s could not be found.", id)
}

func (s *Service) ownedTrunk(ctx context.Context, tx store.Tx, c caller, id string) (*model.Trunk, error) {
	t, err := tx.GetTrunk(ctx, id)
	if err != nil {
		return nil, notFound(err, "TrunkNotFound", "Trunk %s could not be found.", id)
	}
	if !c.owns(t.ProjectID) {
		return nil, trunkNotFound(id)
	}
	return t, nil
}

// GetTrunk returns a trunk the caller may see.
func (s *Service) GetTrunk(ctx context.Context, id string) (*model.Trunk, error) {
	c := who(ctx)
	var out *model.Trunk
	err := s.read(ctx, func(tx store.Tx) error {
		var err error
		out, err = s.ownedTrunk(ctx, tx, c, id)
		return err
	})
	return out, err
}

// ListTrunks lists the trunks the caller may see.
func (s *Service) ListTrunks(ctx context.Context, p store.Page) ([]model.Trunk, error) {
	c := who(ctx)
	var out []model.Trunk
	err := s.read(ctx, func(tx store.Tx) error {
		var err error
		out, err = tx.ListTrunks(ctx, store.TrunkFilter{Scope: c.scope(), Page: p})
		return err
	})
	return out, err
}

// CreateTrunk makes t.PortID the parent of a new trunk carrying
// t.SubPorts.
func (s *Service) CreateTrunk(ctx context.Context, t model.Trunk) (*model.Trunk, error) {
	c := who(ctx)
	if err := c.mayWrite("create_trunk"); err != nil {
		return nil, err
	}
	project, err := c.project(t.ProjectID)
	if err != nil {
		return nil, err
	}
	if err := checkSubPortList(t.SubPorts); err != nil {
		return nil, err
	}
	t.ID, t.ProjectID, t.Status = newID(), project, model.StatusDown
	if t.SubPorts == nil {
		t.SubPorts = []model.SubPort{}
	}
	s.stamp(&t.Standard)
	var bound bool
	err = s.write(ctx, func(tx store.Tx) error {
		if err := tx.Lock(ctx, "trunk:"+t.ID); err != nil {
			return err
		}
		if err := lockTrunkPorts(ctx, tx, t.PortID, t.SubPorts); err != nil {
			return err
		}
		parent, err := s.ownedPort(ctx, tx, c, t.PortID)
		if err != nil {
			return err
		}
		if err := s.checkTrunkable(ctx, tx, t.PortID); err != nil {
			return err
		}
		if err := s.checkSubPorts(ctx, tx, c, &t, parent, t.SubPorts); err != nil {
			return err
		}
		if err := tx.CreateTrunk(ctx, &t); err != nil {
			return trunkWriteError(err, &t)
		}
		bound = parent.BindingHostID != ""
		return s.handOver(ctx, tx, t.SubPorts, t.ID, model.OwnerTrunkSubport, parent.BindingHostID)
	})
	if err != nil {
		return nil, err
	}
	if bound {
		s.hintAll(ctx)
	}
	return &t, nil
}

// UpdateTrunk changes a trunk's name, description or admin state.
func (s *Service) UpdateTrunk(ctx context.Context, id string, change func(*model.Trunk)) (*model.Trunk, error) {
	c := who(ctx)
	if err := c.mayWrite("update_trunk"); err != nil {
		return nil, err
	}
	var out *model.Trunk
	err := s.write(ctx, func(tx store.Tx) error {
		if err := tx.Lock(ctx, "trunk:"+id); err != nil {
			return err
		}
		old, err := s.ownedTrunk(ctx, tx, c, id)
		if err != nil {
			return err
		}
		t := *old
		change(&t)
		s.touch(&t.Standard)
		if err := tx.UpdateTrunk(ctx, &t); err != nil {
			return err
		}
		out = &t
		return nil
	})
	return out, err
}

// DeleteTrunk deletes an enabled trunk and gives its subports back.
func (s *Service) DeleteTrunk(ctx context.Context, id string) error {
	c := who(ctx)
	if err := c.mayWrite("delete_trunk"); err != nil {
		return err
	}
	err := s.write(ctx, func(tx store.Tx) error {
		if err := tx.Lock(ctx, "trunk:"+id); err != nil {
			return err
		}
		t, err := s.ownedTrunk(ctx, tx, c, id)
		if err != nil {
			return err
		}
		if !t.AdminStateUp {
			return errConflict("TrunkDisabled", "Trunk %s is currently disabled.", id)
		}
		if err := lockTrunkPorts(ctx, tx, t.PortID, t.SubPorts); err != nil {
			return err
		}
		if err := tx.DeleteTrunk(ctx, id); err != nil {
			return err
		}
		return s.handOver(ctx, tx, t.SubPorts, "", "", "")
	})
	if err == nil {
		s.hintAll(ctx)
	}
	return err
}

// AddSubPorts adds subports to an enabled trunk that is not in error.
func (s *Service) AddSubPorts(ctx context.Context, id string, sps []model.SubPort) (*model.Trunk, error) {
	c := who(ctx)
	if err := c.mayWrite("add_subports"); err != nil {
		return nil, err
	}
	if err := checkSubPortList(sps); err != nil {
		return nil, err
	}
	var out *model.Trunk
	err := s.write(ctx, func(tx store.Tx) error {
		if err := tx.Lock(ctx, "trunk:"+id); err != nil {
			return err
		}
		t, err := s.ownedTrunk(ctx, tx, c, id)
		if err != nil {
			return err
		}
		if err := lockTrunkPorts(ctx, tx, t.PortID, sps); err != nil {
			return err
		}
		parent, err := tx.GetPort(ctx, t.PortID)
		if err != nil {
			return err
		}
		if err := s.checkSubPorts(ctx, tx, c, t, parent, sps); err != nil {
			return err
		}
		if !t.AdminStateUp {
			return errConflict("TrunkDisabled", "Trunk %s is currently disabled.", id)
		}
		if t.Status == model.StatusError {
			return errConflict("TrunkInErrorState", "Trunk %s is in error state. Attempt to resolve the error condition before proceeding.", id)
		}
		if err := tx.AddSubPorts(ctx, id, sps); err != nil {
			return trunkWriteError(err, t)
		}
		t.SubPorts = append(t.SubPorts, sps...)
		t.Status = model.StatusDown
		s.touch(&t.Standard)
		if err := tx.UpdateTrunk(ctx, t); err != nil {
			return err
		}
		out = t
		return s.handOver(ctx, tx, sps, t.ID, model.OwnerTrunkSubport, parent.BindingHostID)
	})
	if err == nil {
		s.hintAll(ctx)
	}
	return out, err
}

// RemoveSubPorts removes subports, named by port id, from an enabled
// trunk and gives them back.
func (s *Service) RemoveSubPorts(ctx context.Context, id string, portIDs []string) (*model.Trunk, error) {
	c := who(ctx)
	if err := c.mayWrite("remove_subports"); err != nil {
		return nil, err
	}
	var out *model.Trunk
	err := s.write(ctx, func(tx store.Tx) error {
		if err := tx.Lock(ctx, "trunk:"+id); err != nil {
			return err
		}
		t, err := s.ownedTrunk(ctx, tx, c, id)
		if err != nil {
			return err
		}
		if !t.AdminStateUp {
			return errConflict("TrunkDisabled", "Trunk %s is currently disabled.", id)
		}
		var gone []model.SubPort
		for _, pid := range portIDs {
			i := slices.IndexFunc(t.SubPorts, func(sp model.SubPort) bool { return sp.PortID == pid })
			if i < 0 {
				return errNotFound("SubPortNotFound", "SubPort %s on trunk %s could not be found.", pid, id)
			}
			gone = append(gone, t.SubPorts[i])
			t.SubPorts = slices.Delete(t.SubPorts, i, i+1)
		}
		if err := lockTrunkPorts(ctx, tx, "", gone); err != nil {
			return err
		}
		if err := tx.RemoveSubPorts(ctx, id, portIDs); err != nil {
			return err
		}
		t.Status = model.StatusDown
		s.touch(&t.Standard)
		if err := tx.UpdateTrunk(ctx, t); err != nil {
			return err
		}
		out = t
		return s.handOver(ctx, tx, gone, "", "", "")
	})
	if err == nil {
		s.hintAll(ctx)
	}
	return out, err
}

// lockTrunkPorts takes the writer locks of a parent and of subports, so
// that none is deleted or handed elsewhere meanwhile.
func lockTrunkPorts(ctx context.Context, tx store.Tx, parent string, sps []model.SubPort) error {
	var ids []string
	if parent != "" {
		ids = append(ids, parent)
	}
	for _, sp := range sps {
		ids = append(ids, sp.PortID)
	}
	return lockPorts(ctx, tx, ids)
}

// checkSubPortList is the reference's type:subports validation of a
// request's list: each port once, each tag once per segmentation type,
// the type and the id given together.
func checkSubPortList(sps []model.SubPort) error {
	seen := map[string]bool{}
	tags := map[string]bool{}
	for _, sp := range sps {
		if seen[sp.PortID] {
			return errInvalid("InvalidInput", "Invalid input for operation: Non unique UUID for subport: '%s'.", sp.PortID)
		}
		seen[sp.PortID] = true
		key := fmt.Sprint(sp.SegmentationType, "/", sp.SegmentationID)
		if tags[key] {
			return errInvalid("InvalidInput", "Invalid input for operation: Segmentation ID '%d' for '%s' is not unique.", sp.SegmentationID, sp.PortID)
		}
		tags[key] = true
	}
	return nil
}

// checkTrunkable refuses a port that already is in a trunk, as a subport
// or as a parent.
func (s *Service) checkTrunkable(ctx context.Context, tx store.Tx, portID string) error {
	in, err := tx.ListTrunks(ctx, store.TrunkFilter{SubPortIDs: []string{portID}})
	if err != nil {
		return err
	}
	if len(in) > 0 {
		return errConflict("TrunkPortInUse", "Port %s is in use by another trunk.", portID)
	}
	in, err = tx.ListTrunks(ctx, store.TrunkFilter{PortIDs: []string{portID}})
	if err != nil {
		return err
	}
	if len(in) > 0 {
		return errConflict("ParentPortInUse", "Port %s is currently in use and is not eligible for use as a parent port.", portID)
	}
	return nil
}

// checkSubPorts applies the reference's rules to subports joining trunk
// t, whose parent is parent: VLAN tags in range and free on the trunk,
// ports of the caller's, not the parent, in no trunk and attached to no
// device, on networks whose MTU is not above the parent's.
func (s *Service) checkSubPorts(ctx context.Context, tx store.Tx, c caller, t *model.Trunk, parent *model.Port, sps []model.SubPort) error {
	parentNet, err := tx.GetNetwork(ctx, parent.NetworkID)
	if err != nil {
		return err
	}
	for _, sp := range sps {
		if sp.PortID == t.PortID {
			return errConflict("ParentPortInUse", "Port %s is currently in use and is not eligible for use as a parent port.", sp.PortID)
		}
		if sp.SegmentationType != model.SegmentationVLAN {
			return errInvalid("InvalidInput", "Invalid input for operation: Unknown segmentation_type '%s'.", sp.SegmentationType)
		}
		if sp.SegmentationID < model.MinVLANTag || sp.SegmentationID > model.MaxVLANTag {
			return errInvalid("InvalidInput", "Invalid input for operation: Segmentation ID '%d' is not in range.", sp.SegmentationID)
		}
		for _, have := range t.SubPorts {
			if have.SegmentationType == sp.SegmentationType && have.SegmentationID == sp.SegmentationID && have.PortID != sp.PortID {
				return errConflict("DuplicateSubPort", "segmentation_type %s and segmentation_id %d already in use on trunk %s.",
					sp.SegmentationType, sp.SegmentationID, t.ID)
			}
		}
		p, err := s.ownedPort(ctx, tx, c, sp.PortID)
		if err != nil {
			return err
		}
		if err := s.checkTrunkable(ctx, tx, sp.PortID); err != nil {
			return err
		}
		if p.DeviceID != "" {
			return errConflict("PortInUse", "Unable to complete operation on port %s for network %s. Port already has an attached device %s.",
				p.ID, p.NetworkID, p.DeviceID)
		}
		if p.NetworkID != parent.NetworkID {
			n, err := tx.GetNetwork(ctx, p.NetworkID)
			if err != nil {
				return err
			}
			if n.MTU > parentNet.MTU {
				return errConflict("SubPortMtuGreaterThanTrunkPortMtu", "MTU %d of subport %s cannot be greater than MTU %d of trunk %s.",
					n.MTU, p.ID, parentNet.MTU, t.ID)
			}
		}
	}
	return nil
}

// handOver sets the device and host of the subports' ports: the trunk's
// while they are in it, none when they leave.
func (s *Service) handOver(ctx context.Context, tx store.Tx, sps []model.SubPort, deviceID, owner, host string) error {
	for _, sp := range sps {
		p, err := tx.GetPort(ctx, sp.PortID)
		if err != nil {
			return err
		}
		p.DeviceID, p.DeviceOwner, p.BindingHostID = deviceID, owner, host
		if host == "" {
			p.BindingVIFType, p.Status = "unbound", model.StatusDown
		}
		s.touch(&p.Standard)
		if err := tx.UpdatePort(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

// followParent moves the subports of the trunk whose parent is portID to
// the parent's binding host (the parent was bound, moved or unbound after
// they joined), and puts the trunk DOWN when the parent is unbound. It
// runs in a transaction of its own after the parent's update, taking the
// trunk's lock before the ports' as the trunk API does.
func (s *Service) followParent(ctx context.Context, portID string) error {
	return s.write(ctx, func(tx store.Tx) error {
		ts, err := tx.ListTrunks(ctx, store.TrunkFilter{PortIDs: []string{portID}})
		if err != nil || len(ts) == 0 {
			return err
		}
		if err := tx.Lock(ctx, "trunk:"+ts[0].ID); err != nil {
			return err
		}
		t, err := tx.GetTrunk(ctx, ts[0].ID)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		if err := lockTrunkPorts(ctx, tx, t.PortID, t.SubPorts); err != nil {
			return err
		}
		parent, err := tx.GetPort(ctx, t.PortID)
		if err != nil {
			return err
		}
		if parent.BindingHostID == "" && t.Status != model.StatusDown {
			t.Status = model.StatusDown
			s.touch(&t.Standard)
			if err := tx.UpdateTrunk(ctx, t); err != nil {
				return err
			}
		}
		var lag []model.SubPort
		for _, sp := range t.SubPorts {
			p, err := tx.GetPort(ctx, sp.PortID)
			if err != nil {
				return err
			}
			if p.BindingHostID != parent.BindingHostID {
				lag = append(lag, sp)
			}
		}
		return s.handOver(ctx, tx, lag, t.ID, model.OwnerTrunkSubport, parent.BindingHostID)
	})
}

// withTrunkDetails sets TrunkDetails on the ports that are trunk parents
// (one trunk query, one query for the subports' MACs).
func withTrunkDetails(ctx context.Context, tx store.Tx, ports []*model.Port) error {
	byID := map[string]*model.Port{}
	for _, p := range ports {
		byID[p.ID] = p
	}
	if len(byID) == 0 {
		return nil
	}
	ts, err := tx.ListTrunks(ctx, store.TrunkFilter{PortIDs: slices.Collect(maps.Keys(byID))})
	if err != nil || len(ts) == 0 {
		return err
	}
	var subIDs []string
	for _, t := range ts {
		for _, sp := range t.SubPorts {
			subIDs = append(subIDs, sp.PortID)
		}
	}
	macs := map[string]string{}
	if len(subIDs) > 0 {
		subs, err := tx.ListPorts(ctx, store.PortFilter{IDs: subIDs})
		if err != nil {
			return err
		}
		for _, p := range subs {
			macs[p.ID] = p.MACAddress
		}
	}
	for _, t := range ts {
		d := &model.TrunkDetails{TrunkID: t.ID, SubPorts: []model.SubPortDetails{}}
		for _, sp := range t.SubPorts {
			d.SubPorts = append(d.SubPorts, model.SubPortDetails{SubPort: sp, MACAddress: macs[sp.PortID]})
		}
		if p := byID[t.PortID]; p != nil {
			p.TrunkDetails = d
		}
	}
	return nil
}

// trunkWriteError explains a uniqueness conflict that a concurrent
// request caused after the checks passed.
func trunkWriteError(err error, t *model.Trunk) error {
	if errors.Is(err, store.ErrDuplicate) {
		return errConflict("TrunkPortInUse", "Port %s is in use by another trunk.", t.PortID)
	}
	return err
}

// trunkOfPort refuses to delete a port that a trunk uses.
func trunkOfPort(ctx context.Context, tx store.Tx, portID string) error {
	in, err := tx.ListTrunks(ctx, store.TrunkFilter{SubPortIDs: []string{portID}})
	if err != nil {
		return err
	}
	if len(in) > 0 {
		return errConflict("PortInUseAsSubPort", "Port %s is currently a subport for trunk %s.", portID, in[0].ID)
	}
	in, err = tx.ListTrunks(ctx, store.TrunkFilter{PortIDs: []string{portID}})
	if err != nil {
		return err
	}
	if len(in) > 0 {
		return errConflict("PortInUseAsTrunkParent", "Port %s is currently a parent port for trunk %s.", portID, in[0].ID)
	}
	return nil
}

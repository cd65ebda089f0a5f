package model

// Trunk is a vlan-aware VM's port (the parent) carrying other ports
// (subports), each tagged with its own segmentation id on the parent's
// link: the reference's trunk extension.
type Trunk struct {
	ID           string
	ProjectID    string
	Name         string
	AdminStateUp bool
	// Status is DOWN until the parent's host has wired the trunk, then
	// ACTIVE (or DEGRADED, ERROR when it could not).
	Status   string
	PortID   string
	SubPorts []SubPort
	Standard
}

// SubPort is one port of a trunk and its tag.
type SubPort struct {
	PortID           string
	SegmentationType string
	SegmentationID   int
}

// TrunkDetails is a parent port's view of its trunk: the reference's
// trunk_details port attribute.
type TrunkDetails struct {
	TrunkID  string
	SubPorts []SubPortDetails
}

// SubPortDetails is one subport in TrunkDetails, with its MAC.
type SubPortDetails struct {
	SubPort
	MACAddress string
}

// Trunk statuses beyond the common ones.
const TrunkStatusDegraded = "DEGRADED"

// Trunk vocabulary of the reference.
const (
	// OwnerTrunkSubport is the device_owner of a port while it is a
	// subport; its device_id is then the trunk's id.
	OwnerTrunkSubport = "trunk:subport"
	// SegmentationVLAN is the one segmentation type Neutrino's trunks
	// carry: an 802.1Q tag of 1 to 4094.
	SegmentationVLAN = "vlan"
	MinVLANTag       = 1
	MaxVLANTag       = 4094
)

package cni

import (
	"fmt"
	"slices"
	"strings"
)

// DeviceOwner marks the reservation ports of macvlan and ipvlan
// containers (a trunk's subports have trunk:subport instead). It is not
// compute:*, so nothing takes a reservation for a VM's own port.
const DeviceOwner = "neutrino:container"

// Attachment is one container interface on one network.
type Attachment struct {
	ContainerID, IfName string
}

// portName names the reservation port of an attachment on network net.
// Container ids are at most 64 characters and interface names 15, so
// the name fits the API's 255.
func portName(net string, a Attachment) string {
	return "cni/" + net + "/" + a.ContainerID + "/" + a.IfName
}

// parsePortName is the inverse of portName for network net.
func parsePortName(net, name string) (Attachment, bool) {
	rest, ok := strings.CutPrefix(name, "cni/"+net+"/")
	if !ok {
		return Attachment{}, false
	}
	id, ifName, ok := strings.Cut(rest, "/")
	if !ok || id == "" || ifName == "" || strings.Contains(ifName, "/") {
		return Attachment{}, false
	}
	return Attachment{ContainerID: id, IfName: ifName}, true
}

// marker is the description of every reservation of one VM port on one
// network: GC lists them by it.
func marker(vmPortID, net string) string {
	return fmt.Sprintf("neutrino-cni vm-port=%s network=%s", vmPortID, net)
}

// Pair is an allowed address pair.
type Pair struct {
	IP  string `json:"ip_address"`
	MAC string `json:"mac_address,omitempty"`
}

// withPair returns pairs with p added (replacing an entry for the same
// address), and whether that changed anything.
func withPair(pairs []Pair, p Pair) ([]Pair, bool) {
	out := slices.Clone(pairs)
	for i, q := range out {
		if sameIP(q.IP, p.IP) {
			if strings.EqualFold(q.MAC, p.MAC) {
				return out, false
			}
			out[i] = p
			return out, true
		}
	}
	return append(out, p), true
}

// withoutPair returns pairs without those for ip, and whether any was.
func withoutPair(pairs []Pair, ip string) ([]Pair, bool) {
	out := slices.DeleteFunc(slices.Clone(pairs), func(q Pair) bool { return sameIP(q.IP, ip) })
	return out, len(out) != len(pairs)
}

// sameIP compares a pair's address ("10.0.0.5" or "10.0.0.5/32") to an
// address.
func sameIP(pairIP, ip string) bool {
	host := func(s string) string {
		if h, bits, ok := strings.Cut(s, "/"); ok && (bits == "32" || bits == "128") {
			return h
		}
		return s
	}
	return host(pairIP) == host(ip)
}

// freeVLAN is the lowest VLAN id of [1, 4094] not in used, or 0.
func freeVLAN(used []int) int {
	for id := 1; id <= 4094; id++ {
		if !slices.Contains(used, id) {
			return id
		}
	}
	return 0
}

// orphans are the reservations, by port id, whose attachments are not
// valid any more.
func orphans(net string, ports map[string]string, valid []Attachment) []string {
	var out []string
	for id, name := range ports {
		a, ok := parsePortName(net, name)
		if ok && !slices.Contains(valid, a) {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// Command neutrino-cni is Neutrino's CNI plugin for containers inside
// VMs: macvlan, ipvlan or trunk subports, addresses from Neutrino's IPAM
// (see docs/cni.md).
package main

import (
	"github.com/containernetworking/cni/pkg/skel"

	"github.com/neutrino-net/neutrino/internal/cni"
)

func main() {
	skel.PluginMainFuncs(cni.Funcs(), cni.VersionInfo, "neutrino-cni: containers in VMs on Neutrino networks")
}

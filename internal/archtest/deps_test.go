// Package archtest checks the dependency rules of the architecture: the
// wire layer knows no SQL, the service layer knows neither HTTP nor SQL,
// the domain packages depend on the standard library only, the agent's
// packages (agent, l2, l3, node, ipsec drivers) link nothing of the
// server, and the bus and its server side link no data-plane code.
package archtest

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const mod = "github.com/neutrino-net/neutrino/"

func deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{else}}std:{{.ImportPath}}{{end}}", mod+pkg).Output()
	if err != nil {
		t.Fatalf("go list %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}

// serverSide is what the agent's packages must not link: the store, the
// rules and the HTTP API live on the server.
var serverSide = []string{mod + "internal/store", mod + "internal/service", mod + "internal/httpapi", mod + "internal/app", "std:database/sql"}

// dataPlane is what only the agent links: the kernel and daemon
// libraries and the device drivers. The pure configuration mappings under
// internal/ipsec (swconf, lsconf) are shared: the server renders peer configs
// and checks what a provider can run.
var dataPlane = []string{"github.com/vishvananda/netlink", "github.com/vishvananda/netns", "github.com/google/nftables",
	"github.com/strongswan/govici", mod + "internal/agent", mod + "internal/ipsec/strongswan", mod + "internal/ipsec/libreswan",
	mod + "internal/namespace"}

func TestDependencyRules(t *testing.T) {
	for _, tc := range []struct {
		pkg       string
		forbidden []string // import path prefixes
		stdOnly   bool     // besides the module's own listed packages
		allowed   []string
	}{
		{pkg: "api/neutron", stdOnly: true},
		{pkg: "internal/model", stdOnly: true},
		{pkg: "internal/ipam", stdOnly: true, allowed: []string{mod + "internal/model"}},
		// The rules speak domain errors (service.Error); only httpapi
		// knows HTTP statuses and NeutronError bodies.
		{pkg: "internal/service", forbidden: []string{"std:net/http", "std:database/sql", mod + "api/neutron", mod + "internal/httpapi", mod + "internal/store/sqlstore"}},
		{pkg: "internal/httpapi", forbidden: []string{"std:database/sql", mod + "internal/store/sqlstore"}},
		{pkg: "internal/store", forbidden: []string{"std:net/http", "std:database/sql"}},
		{pkg: "internal/store/sqlstore", forbidden: []string{"std:net/http", mod + "internal/service", mod + "internal/httpapi"}},
		// The agent never touches the store: everything comes over the bus.
		{pkg: "internal/agent", forbidden: serverSide},
		{pkg: "internal/agent/l2", forbidden: serverSide},
		{pkg: "internal/agent/l3", forbidden: serverSide},
		{pkg: "internal/agent/node", forbidden: serverSide},
		{pkg: "internal/ipsec", forbidden: serverSide},
		{pkg: "internal/ipsec/strongswan", forbidden: append(serverSide, mod+"internal/agent")},
		{pkg: "internal/ipsec/libreswan", forbidden: append(serverSide, mod+"internal/agent", mod+"internal/ipsec/strongswan")},
		// The bus carries messages; it knows neither side's internals.
		{pkg: "internal/bus", forbidden: append(serverSide, dataPlane...)},
		// The server's side of the bus: the service, never the data plane.
		{pkg: "internal/control", forbidden: append([]string{mod + "internal/httpapi", mod + "internal/store/sqlstore", "std:database/sql"}, dataPlane...)},
		// The server links no data-plane code.
		{pkg: "internal/app", forbidden: dataPlane},
		// The configuration mappings both sides share are pure.
		{pkg: "internal/ipsec/swconf", forbidden: append(slices.Clone(serverSide), dataPlane...)},
		{pkg: "internal/ipsec/lsconf", forbidden: append(slices.Clone(serverSide), dataPlane...)},
		{pkg: "internal/peerconfig", forbidden: append(slices.Clone(serverSide), dataPlane...)},
		// The CNI plugin runs inside VMs and talks to the API like any
		// client: never to the store, the bus or the agent.
		{pkg: "internal/cni", forbidden: append(slices.Clone(serverSide), mod+"internal/bus", mod+"internal/agent", mod+"internal/control")},
		{pkg: "cmd/neutrino-cni", forbidden: append(slices.Clone(serverSide), mod+"internal/bus", mod+"internal/agent", mod+"internal/control")},
	} {
		got := deps(t, tc.pkg)
		for _, d := range got {
			if d == mod+tc.pkg {
				continue
			}
			for _, f := range tc.forbidden {
				if d == f || (!strings.HasPrefix(f, "std:") && strings.HasPrefix(d, f+"/")) {
					t.Errorf("%s must not depend on %s", tc.pkg, strings.TrimPrefix(d, "std:"))
				}
			}
			if tc.stdOnly && !strings.HasPrefix(d, "std:") && !slices.Contains(tc.allowed, d) {
				t.Errorf("%s must depend on the standard library only, not %s", tc.pkg, d)
			}
		}
	}
}

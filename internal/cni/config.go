// Package cni is Neutrino's CNI plugin for containers inside VMs (seed
// 004): each container gets an address from Neutrino's IPAM, on the VM's
// own network, through a link of the VM's NIC (the master) in its
// namespace:
//
//   - macvlan: a macvlan link with the MAC of the container's reservation
//     port; the VM port's allowed_address_pairs carry (address, that MAC);
//   - ipvlan (l2 or l3): an ipvlan link sharing the master's MAC; the pair
//     carries (address, the VM port's MAC);
//   - trunk: the VM port is a trunk parent; the container's port is a
//     subport on its own VLAN, with its own MAC and security groups, and
//     the container gets a VLAN sub-interface of the master.
//
// A reservation is a port of the VM port's network named after the
// attachment and described with the VM port's id and the network name,
// so that DEL and GC find it again with one exact-match listing. The
// plugin talks to the Networking API like any client, never to the bus
// or the store.
package cni

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
)

// Modes.
const (
	ModeMacvlan = "macvlan"
	ModeIPvlan  = "ipvlan"
	ModeTrunk   = "trunk"
)

// Auth types.
const (
	AuthNoAuth = "noauth"
	AuthToken  = "token"
	AuthCloud  = "cloud"
)

// DefaultStateDir keeps the VM port cache and the per-VM lock.
const DefaultStateDir = "/var/lib/neutrino-cni"

// NetConf is the plugin's network configuration.
type NetConf struct {
	types.NetConf
	// Endpoint is the Networking API's base URL, e.g.
	// "http://controller:9696", or "unix:///run/neutrino/api.sock" for an
	// API reached over a local socket. With auth "cloud" it may be empty:
	// the catalog's network endpoint is used.
	Endpoint string `json:"endpoint"`
	Auth     Auth   `json:"auth"`
	// Master is the VM's NIC; empty: the interface of the default route.
	Master string `json:"master"`
	// Mode is macvlan (default), ipvlan or trunk.
	Mode string `json:"mode"`
	// IPvlanMode is l2 (default) or l3.
	IPvlanMode string `json:"ipvlanMode"`
	// MTU of the container's link; 0: the master's.
	MTU int `json:"mtu"`
	// SecurityGroups are the container port's groups in trunk mode (the
	// project's default group if empty). Other modes share the VM port's.
	SecurityGroups []string `json:"securityGroups"`
	// StateDir holds the VM port cache and the lock (DefaultStateDir).
	StateDir string `json:"stateDir"`
	// TimeoutSeconds bounds each API request (default 30).
	TimeoutSeconds int `json:"timeoutSeconds"`
}

// Auth says how the plugin authenticates to the Networking API.
type Auth struct {
	// Type is noauth (development), token or cloud.
	Type string `json:"type"`
	// ProjectID and Roles are sent as X-Project-Id and X-Roles (noauth).
	ProjectID string `json:"projectId"`
	Roles     string `json:"roles"`
	// TokenFile holds a Keystone token (token); it must not be readable
	// by others.
	TokenFile string `json:"tokenFile"`
	// Cloud names an entry of CloudsFile (cloud; default the usual
	// clouds.yaml locations).
	Cloud      string `json:"cloud"`
	CloudsFile string `json:"cloudsFile"`
}

// LoadConf parses and checks a network configuration, filling defaults.
func LoadConf(data []byte) (*NetConf, error) {
	c := &NetConf{}
	if err := json.Unmarshal(data, c); err != nil {
		return nil, fmt.Errorf("parse network configuration: %w", err)
	}
	if c.Mode == "" {
		c.Mode = ModeMacvlan
	}
	if c.IPvlanMode == "" {
		c.IPvlanMode = "l2"
	}
	if c.StateDir == "" {
		c.StateDir = DefaultStateDir
	}
	if c.TimeoutSeconds == 0 {
		c.TimeoutSeconds = 30
	}
	if c.Auth.Type == "" {
		c.Auth.Type = AuthNoAuth
	}
	if c.Auth.Roles == "" {
		c.Auth.Roles = "member"
	}
	var errs []error
	if !slices.Contains([]string{ModeMacvlan, ModeIPvlan, ModeTrunk}, c.Mode) {
		errs = append(errs, fmt.Errorf("mode %q: want macvlan, ipvlan or trunk", c.Mode))
	}
	if c.IPvlanMode != "l2" && c.IPvlanMode != "l3" {
		errs = append(errs, fmt.Errorf("ipvlanMode %q: want l2 or l3", c.IPvlanMode))
	}
	if c.MTU < 0 || c.TimeoutSeconds < 0 {
		errs = append(errs, errors.New("mtu and timeoutSeconds must not be negative"))
	}
	if len(c.SecurityGroups) > 0 && c.Mode != ModeTrunk {
		errs = append(errs, fmt.Errorf("securityGroups apply to trunk mode only: in %s mode containers share the VM port's groups", c.Mode))
	}
	switch c.Auth.Type {
	case AuthNoAuth:
		if c.Auth.ProjectID == "" {
			errs = append(errs, errors.New("auth noauth needs projectId"))
		}
	case AuthToken:
		if c.Auth.TokenFile == "" {
			errs = append(errs, errors.New("auth token needs tokenFile"))
		}
	case AuthCloud:
		if c.Auth.Cloud == "" {
			errs = append(errs, errors.New("auth cloud needs cloud"))
		}
	default:
		errs = append(errs, fmt.Errorf("auth type %q: want noauth, token or cloud", c.Auth.Type))
	}
	if c.Endpoint == "" && c.Auth.Type != AuthCloud {
		errs = append(errs, errors.New("endpoint is required unless auth is cloud"))
	} else if c.Endpoint != "" {
		if u, err := url.Parse(c.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "unix") {
			errs = append(errs, fmt.Errorf("endpoint %q: want http://, https:// or unix:// URL", c.Endpoint))
		}
	}
	if c.Name == "" || strings.ContainsAny(c.Name, " /") {
		errs = append(errs, fmt.Errorf("network name %q: must be set, without spaces or slashes", c.Name))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("network configuration: %w", err)
	}
	return c, nil
}

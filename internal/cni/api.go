package cni

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/config/clouds"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/trunks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
)

// API is what the plugin asks of the Networking API.
type API struct {
	c *gophercloud.ServiceClient
}

// Dial returns a client of the configuration's Networking API.
func Dial(ctx context.Context, conf *NetConf) (*API, error) {
	timeout := time.Duration(conf.TimeoutSeconds) * time.Second
	hc := http.Client{Timeout: timeout}
	endpoint := conf.Endpoint
	if strings.HasPrefix(endpoint, "unix:") {
		u, err := url.Parse(endpoint)
		if err != nil {
			return nil, fmt.Errorf("endpoint: %w", err)
		}
		sock := u.Path
		hc.Transport = &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}}
		endpoint = "http://neutrino-api/"
	}
	if endpoint != "" && !strings.HasSuffix(endpoint, "/") {
		endpoint += "/"
	}
	switch conf.Auth.Type {
	case AuthCloud:
		var opts []clouds.ParseOption
		opts = append(opts, clouds.WithCloudName(conf.Auth.Cloud))
		if conf.Auth.CloudsFile != "" {
			opts = append(opts, clouds.WithLocations(conf.Auth.CloudsFile))
		}
		ao, eo, _, err := clouds.Parse(opts...)
		if err != nil {
			return nil, fmt.Errorf("clouds.yaml cloud %q: %w", conf.Auth.Cloud, err)
		}
		ao.AllowReauth = true
		pc, err := openstack.NewClient(ao.IdentityEndpoint)
		if err != nil {
			return nil, fmt.Errorf("cloud %q: %w", conf.Auth.Cloud, err)
		}
		pc.HTTPClient = hc
		if err := openstack.Authenticate(ctx, pc, ao); err != nil {
			return nil, fmt.Errorf("cloud %q: authenticate: %w", conf.Auth.Cloud, err)
		}
		sc, err := openstack.NewNetworkV2(pc, eo)
		if err != nil {
			return nil, fmt.Errorf("cloud %q: %w", conf.Auth.Cloud, err)
		}
		if endpoint != "" {
			sc.Endpoint, sc.ResourceBase = endpoint, endpoint+"v2.0/"
		}
		return &API{c: sc}, nil
	}
	pc := &gophercloud.ProviderClient{HTTPClient: hc}
	sc := &gophercloud.ServiceClient{ProviderClient: pc, Endpoint: endpoint, ResourceBase: endpoint + "v2.0/", Type: "network"}
	switch conf.Auth.Type {
	case AuthNoAuth:
		sc.MoreHeaders = map[string]string{"X-Project-Id": conf.Auth.ProjectID, "X-Roles": conf.Auth.Roles}
	case AuthToken:
		tok, err := readToken(conf.Auth.TokenFile)
		if err != nil {
			return nil, err
		}
		pc.SetToken(tok)
	}
	return &API{c: sc}, nil
}

// readToken reads a token file that only its owner may read.
func readToken(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("token file %s is readable by others (mode %o): make it 0600", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("token file %s is empty", path)
	}
	return tok, nil
}

// Project is the caller's project as the API shows it: the project of
// the ports it creates.
func (a *API) portsByMAC(ctx context.Context, mac string) ([]ports.Port, error) {
	pages, err := ports.List(a.c, ports.ListOpts{MACAddress: mac}).AllPages(ctx)
	if err != nil {
		return nil, fmt.Errorf("list ports with MAC %s: %w", mac, err)
	}
	return ports.ExtractPorts(pages)
}

func (a *API) port(ctx context.Context, id string) (*ports.Port, error) {
	p, err := ports.Get(ctx, a.c, id).Extract()
	if err != nil {
		return nil, fmt.Errorf("get port %s: %w", id, err)
	}
	return p, nil
}

// reservations lists the ports described by mark, by name if name is set.
func (a *API) reservations(ctx context.Context, mark, name string) ([]ports.Port, error) {
	pages, err := ports.List(a.c, ports.ListOpts{Description: mark, Name: name}).AllPages(ctx)
	if err != nil {
		return nil, fmt.Errorf("list reservations: %w", err)
	}
	return ports.ExtractPorts(pages)
}

func (a *API) createPort(ctx context.Context, opts ports.CreateOpts) (*ports.Port, error) {
	p, err := ports.Create(ctx, a.c, opts).Extract()
	if err != nil {
		return nil, fmt.Errorf("create port %s: %w", opts.Name, err)
	}
	return p, nil
}

// deletePort deletes a port; one already gone is not an error.
func (a *API) deletePort(ctx context.Context, id string) error {
	err := ports.Delete(ctx, a.c, id).ExtractErr()
	if err != nil && !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		return fmt.Errorf("delete port %s: %w", id, err)
	}
	return nil
}

// casAttempts bounds the retries of a pairs update that lost a race.
const casAttempts = 20

// editPairs applies edit to the VM port's allowed address pairs by
// compare-and-swap on its revision_number (If-Match), retrying when
// another writer got there first: no concurrent update is lost.
func (a *API) editPairs(ctx context.Context, portID string, edit func([]Pair) ([]Pair, bool)) error {
	for attempt := 0; ; attempt++ {
		p, err := a.port(ctx, portID)
		if err != nil {
			return err
		}
		cur := make([]Pair, len(p.AllowedAddressPairs))
		for i, ap := range p.AllowedAddressPairs {
			cur[i] = Pair{IP: ap.IPAddress, MAC: ap.MACAddress}
		}
		next, changed := edit(cur)
		if !changed {
			return nil
		}
		aps := make([]ports.AddressPair, len(next))
		for i, q := range next {
			aps[i] = ports.AddressPair{IPAddress: q.IP, MACAddress: q.MAC}
		}
		rev := p.RevisionNumber
		_, err = ports.Update(ctx, a.c, portID, ports.UpdateOpts{AllowedAddressPairs: &aps, RevisionNumber: &rev}).Extract()
		if err == nil {
			return nil
		}
		if !gophercloud.ResponseCodeIs(err, http.StatusPreconditionFailed) || attempt >= casAttempts {
			return fmt.Errorf("update allowed address pairs of port %s: %w", portID, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt+1) * 5 * time.Millisecond):
		}
	}
}

// trunkOf returns the trunk whose parent is portID.
func (a *API) trunkOf(ctx context.Context, portID string) (*trunks.Trunk, error) {
	pages, err := trunks.List(a.c, trunks.ListOpts{PortID: portID}).AllPages(ctx)
	if err != nil {
		return nil, fmt.Errorf("list trunks of port %s: %w", portID, err)
	}
	ts, err := trunks.ExtractTrunks(pages)
	if err != nil {
		return nil, err
	}
	if len(ts) == 0 {
		return nil, fmt.Errorf("%w: VM port %s is not the parent of a trunk; create one first (openstack network trunk create --parent-port %s NAME)",
			errNotTrunk, portID, portID)
	}
	return &ts[0], nil
}

var errNotTrunk = errors.New("not a trunk parent")

func (a *API) addSubport(ctx context.Context, trunkID string, sp trunks.Subport) error {
	_, err := trunks.AddSubports(ctx, a.c, trunkID, trunks.AddSubportsOpts{Subports: []trunks.Subport{sp}}).Extract()
	return err
}

// removeSubport removes a subport; one already gone is not an error.
func (a *API) removeSubport(ctx context.Context, trunkID, portID string) error {
	_, err := trunks.RemoveSubports(ctx, a.c, trunkID, trunks.RemoveSubportsOpts{Subports: []trunks.RemoveSubport{{PortID: portID}}}).Extract()
	if err != nil && !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		return fmt.Errorf("remove subport %s from trunk %s: %w", portID, trunkID, err)
	}
	return nil
}

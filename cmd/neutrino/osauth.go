package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/config"
	"github.com/gophercloud/gophercloud/v2/openstack/config/clouds"
)

// defaultAPI is the Networking API a client command calls when nothing
// names one.
const defaultAPI = "http://127.0.0.1:9696"

// apiTarget is where, and as whom, a client command calls the API.
type apiTarget struct {
	base  string // the API's root, without /v2.0
	token string // X-Auth-Token ("" in noauth mode)
	http  *http.Client
	// how says where the credentials came from, for error messages; it
	// never holds a secret.
	how string
}

// clientAuth is what a client command was told about the API on its
// command line; "" means not given.
type clientAuth struct {
	api, token, cloud string
}

// resolveAPI finds the API and a token as every OpenStack tool does, in
// this order: a cloud of clouds.yaml (--os-cloud or OS_CLOUD, the standard
// search path and secure.yaml, through gophercloud); Keystone credentials
// in OS_AUTH_URL, OS_USERNAME or OS_USER_ID, OS_PASSWORD, OS_PROJECT_NAME
// or OS_PROJECT_ID and their domains; a raw token (--token or OS_TOKEN);
// else noauth. The endpoint is --api, else NEUTRINO_API, else OS_ENDPOINT,
// else the catalog's network endpoint when Keystone gave one, else
// defaultAPI. OS_AUTH_TYPE=none (or noauth) skips Keystone.
func resolveAPI(ctx context.Context, ca clientAuth, getenv func(string) string) (*apiTarget, error) {
	override := firstOf(ca.api, getenv("NEUTRINO_API"), getenv("OS_ENDPOINT"))
	authType := strings.ToLower(getenv("OS_AUTH_TYPE"))
	noauth := authType == "none" || authType == "noauth"
	token := firstOf(ca.token, getenv("OS_TOKEN"))
	t := &apiTarget{base: firstOf(override, defaultAPI), token: token, http: http.DefaultClient, how: "noauth"}
	if token != "" {
		t.how = "token"
	}
	if noauth {
		t.token, t.how = "", "noauth (OS_AUTH_TYPE)"
		return t, nil
	}
	var (
		ao      gophercloud.AuthOptions
		eo      gophercloud.EndpointOpts
		tlsConf *tls.Config
	)
	switch cloud := firstOf(ca.cloud, getenv("OS_CLOUD")); {
	case cloud != "":
		var err error
		ao, eo, tlsConf, err = clouds.Parse(clouds.WithCloudName(cloud))
		if err != nil {
			return nil, fmt.Errorf("cloud %q of clouds.yaml: %w", cloud, err)
		}
		if ao.IdentityEndpoint == "" {
			return nil, fmt.Errorf("cloud %q of clouds.yaml has no auth_url (for noauth, set OS_AUTH_TYPE=none and OS_ENDPOINT)", cloud)
		}
		t.how = fmt.Sprintf("cloud %q of clouds.yaml", cloud)
	case getenv("OS_AUTH_URL") != "" && (getenv("OS_USERNAME") != "" || getenv("OS_USER_ID") != ""):
		ao = gophercloud.AuthOptions{
			IdentityEndpoint: getenv("OS_AUTH_URL"),
			Username:         getenv("OS_USERNAME"), UserID: getenv("OS_USER_ID"), Password: getenv("OS_PASSWORD"),
			DomainName: firstOf(getenv("OS_USER_DOMAIN_NAME"), getenv("OS_DOMAIN_NAME")),
			DomainID:   firstOf(getenv("OS_USER_DOMAIN_ID"), getenv("OS_DOMAIN_ID")),
		}
		if ao.Password == "" {
			return nil, errors.New("OS_AUTH_URL and OS_USERNAME are set but OS_PASSWORD is not")
		}
		scope := gophercloud.AuthScope{
			ProjectName: getenv("OS_PROJECT_NAME"), ProjectID: getenv("OS_PROJECT_ID"),
			DomainName: firstOf(getenv("OS_PROJECT_DOMAIN_NAME"), getenv("OS_DOMAIN_NAME")),
			DomainID:   firstOf(getenv("OS_PROJECT_DOMAIN_ID"), getenv("OS_DOMAIN_ID")),
		}
		if scope.ProjectName != "" || scope.ProjectID != "" {
			if scope.ProjectID != "" {
				scope.DomainName, scope.DomainID = "", ""
			}
			ao.Scope = &scope
		}
		eo = gophercloud.EndpointOpts{Region: getenv("OS_REGION_NAME"), Availability: availability(getenv("OS_INTERFACE"))}
		t.how = "Keystone credentials of OS_AUTH_URL"
	default:
		return t, nil
	}
	var pc *gophercloud.ProviderClient
	var err error
	if tlsConf != nil {
		t.http = &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConf, Proxy: http.ProxyFromEnvironment}}
		pc, err = config.NewProviderClient(ctx, ao, config.WithTLSConfig(tlsConf))
	} else {
		pc, err = config.NewProviderClient(ctx, ao)
	}
	if err != nil {
		return nil, fmt.Errorf("keystone authentication (%s) at %s: %w", t.how, ao.IdentityEndpoint, err)
	}
	t.token = pc.Token()
	if override == "" {
		// The catalog only: NewNetworkV2 would also probe the endpoint.
		eo.ApplyDefaults("network")
		u, err := pc.EndpointLocator(eo)
		if err != nil {
			return nil, fmt.Errorf("no network endpoint in the catalog (%s): %w; name the API with --api or OS_ENDPOINT", t.how, err)
		}
		t.base = strings.TrimRight(u, "/")
	}
	return t, nil
}

func availability(iface string) gophercloud.Availability {
	switch strings.TrimSuffix(strings.ToLower(iface), "url") {
	case "internal":
		return gophercloud.AvailabilityInternal
	case "admin":
		return gophercloud.AvailabilityAdmin
	default:
		return gophercloud.AvailabilityPublic
	}
}

func firstOf(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

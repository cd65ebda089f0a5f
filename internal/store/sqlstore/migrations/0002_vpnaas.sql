-- VPNaaS: IKE and IPsec policies, VPN services, endpoint groups and IPsec
-- site connections. Same conventions as 0001_init.sql ({{seq}} and
-- {{timestamp}} substituted, lists as JSON TEXT, a foreign key without
-- ON DELETE blocks the deletion of a row still referenced). Do not use
-- question marks in this file.

CREATE TABLE ikepolicies (
    seq {{seq}},
    id TEXT NOT NULL UNIQUE,
    project_id TEXT NOT NULL,
    name TEXT NOT NULL,
    auth_algorithm TEXT NOT NULL,
    encryption_algorithm TEXT NOT NULL,
    phase1_negotiation_mode TEXT NOT NULL,
    lifetime_units TEXT NOT NULL,
    lifetime_value INTEGER NOT NULL,
    ike_version TEXT NOT NULL,
    pfs TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at {{timestamp}} NOT NULL,
    updated_at {{timestamp}} NOT NULL,
    revision_number INTEGER NOT NULL
);
CREATE INDEX ikepolicies_project_id ON ikepolicies (project_id);

CREATE TABLE ipsecpolicies (
    seq {{seq}},
    id TEXT NOT NULL UNIQUE,
    project_id TEXT NOT NULL,
    name TEXT NOT NULL,
    transform_protocol TEXT NOT NULL,
    auth_algorithm TEXT NOT NULL,
    encryption_algorithm TEXT NOT NULL,
    encapsulation_mode TEXT NOT NULL,
    lifetime_units TEXT NOT NULL,
    lifetime_value INTEGER NOT NULL,
    pfs TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at {{timestamp}} NOT NULL,
    updated_at {{timestamp}} NOT NULL,
    revision_number INTEGER NOT NULL
);
CREATE INDEX ipsecpolicies_project_id ON ipsecpolicies (project_id);

-- A VPN service keeps its router, and in legacy mode its subnet, from being
-- deleted.
CREATE TABLE vpnservices (
    seq {{seq}},
    id TEXT NOT NULL UNIQUE,
    project_id TEXT NOT NULL,
    name TEXT NOT NULL,
    router_id TEXT NOT NULL REFERENCES routers (id),
    subnet_id TEXT REFERENCES subnets (id),
    admin_state_up BOOLEAN NOT NULL,
    flavor_id TEXT,
    provider TEXT NOT NULL,
    external_v4_ip TEXT,
    external_v6_ip TEXT,
    status TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at {{timestamp}} NOT NULL,
    updated_at {{timestamp}} NOT NULL,
    revision_number INTEGER NOT NULL
);
CREATE INDEX vpnservices_project_id ON vpnservices (project_id);
CREATE INDEX vpnservices_router_id ON vpnservices (router_id);
CREATE INDEX vpnservices_subnet_id ON vpnservices (subnet_id);

CREATE TABLE endpoint_groups (
    seq {{seq}},
    id TEXT NOT NULL UNIQUE,
    project_id TEXT NOT NULL,
    name TEXT NOT NULL,
    endpoint_type TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at {{timestamp}} NOT NULL,
    updated_at {{timestamp}} NOT NULL,
    revision_number INTEGER NOT NULL
);
CREATE INDEX endpoint_groups_project_id ON endpoint_groups (project_id);

-- The endpoints of a group, in the order the group lists them. The primary
-- key makes an endpoint unique within its group and serves the lookup of
-- the groups listing an endpoint.
CREATE TABLE endpoint_group_endpoints (
    endpoint TEXT NOT NULL,
    group_id TEXT NOT NULL REFERENCES endpoint_groups (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    PRIMARY KEY (endpoint, group_id)
);
CREATE INDEX endpoint_group_endpoints_group_id ON endpoint_group_endpoints (group_id, position);

-- A connection keeps its VPN service, its policies and its endpoint groups
-- from being deleted.
CREATE TABLE ipsec_site_connections (
    seq {{seq}},
    id TEXT NOT NULL UNIQUE,
    project_id TEXT NOT NULL,
    name TEXT NOT NULL,
    vpnservice_id TEXT NOT NULL REFERENCES vpnservices (id),
    ikepolicy_id TEXT NOT NULL REFERENCES ikepolicies (id),
    ipsecpolicy_id TEXT NOT NULL REFERENCES ipsecpolicies (id),
    peer_address TEXT NOT NULL,
    peer_id TEXT NOT NULL,
    local_id TEXT NOT NULL,
    peer_cidrs TEXT NOT NULL,
    local_ep_group_id TEXT REFERENCES endpoint_groups (id),
    peer_ep_group_id TEXT REFERENCES endpoint_groups (id),
    route_mode TEXT NOT NULL,
    mtu INTEGER NOT NULL,
    initiator TEXT NOT NULL,
    auth_mode TEXT NOT NULL,
    psk TEXT NOT NULL,
    dpd_action TEXT NOT NULL,
    dpd_interval INTEGER NOT NULL,
    dpd_timeout INTEGER NOT NULL,
    admin_state_up BOOLEAN NOT NULL,
    status TEXT NOT NULL,
    status_reason TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at {{timestamp}} NOT NULL,
    updated_at {{timestamp}} NOT NULL,
    revision_number INTEGER NOT NULL
);
CREATE INDEX ipsec_site_connections_project_id ON ipsec_site_connections (project_id);
CREATE INDEX ipsec_site_connections_vpnservice_id ON ipsec_site_connections (vpnservice_id);
CREATE INDEX ipsec_site_connections_ikepolicy_id ON ipsec_site_connections (ikepolicy_id);
CREATE INDEX ipsec_site_connections_ipsecpolicy_id ON ipsec_site_connections (ipsecpolicy_id);
CREATE INDEX ipsec_site_connections_local_ep_group_id ON ipsec_site_connections (local_ep_group_id);
CREATE INDEX ipsec_site_connections_peer_ep_group_id ON ipsec_site_connections (peer_ep_group_id);

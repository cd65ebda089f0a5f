-- Initial schema. Written once for both backends; Migrate substitutes
-- {{seq}} (an auto-incrementing primary key giving insertion order) and
-- {{timestamp}} (TIMESTAMPTZ on PostgreSQL, RFC 3339 TEXT on SQLite).
-- Lists and maps are JSON in TEXT columns; addresses and prefixes are their
-- canonical strings. Do not use question marks in this file.
--
-- A foreign key without ON DELETE is NO ACTION: deleting a row still
-- referenced fails (SQLITE_CONSTRAINT_FOREIGNKEY / SQLSTATE 23503). RESTRICT
-- would be equivalent but SQLite reports it as SQLITE_CONSTRAINT_TRIGGER.

CREATE TABLE networks (
    seq {{seq}},
    id TEXT NOT NULL UNIQUE,
    project_id TEXT NOT NULL,
    name TEXT NOT NULL,
    admin_state_up BOOLEAN NOT NULL,
    status TEXT NOT NULL,
    shared BOOLEAN NOT NULL,
    external BOOLEAN NOT NULL,
    mtu INTEGER NOT NULL,
    port_security_enabled BOOLEAN NOT NULL,
    description TEXT NOT NULL,
    created_at {{timestamp}} NOT NULL,
    updated_at {{timestamp}} NOT NULL,
    revision_number INTEGER NOT NULL
);
CREATE INDEX networks_project_id ON networks (project_id);

CREATE TABLE subnets (
    seq {{seq}},
    id TEXT NOT NULL UNIQUE,
    project_id TEXT NOT NULL,
    network_id TEXT NOT NULL REFERENCES networks (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    ip_version INTEGER NOT NULL,
    cidr TEXT NOT NULL,
    gateway_ip TEXT,
    allocation_pools TEXT NOT NULL,
    dns_nameservers TEXT NOT NULL,
    host_routes TEXT NOT NULL,
    enable_dhcp BOOLEAN NOT NULL,
    ipv6_ra_mode TEXT,
    ipv6_address_mode TEXT,
    subnetpool_id TEXT,
    description TEXT NOT NULL,
    created_at {{timestamp}} NOT NULL,
    updated_at {{timestamp}} NOT NULL,
    revision_number INTEGER NOT NULL
);
CREATE INDEX subnets_project_id ON subnets (project_id);
CREATE INDEX subnets_network_id ON subnets (network_id);

CREATE TABLE ports (
    seq {{seq}},
    id TEXT NOT NULL UNIQUE,
    project_id TEXT NOT NULL,
    network_id TEXT NOT NULL REFERENCES networks (id),
    name TEXT NOT NULL,
    admin_state_up BOOLEAN NOT NULL,
    status TEXT NOT NULL,
    mac_address TEXT NOT NULL,
    device_id TEXT NOT NULL,
    device_owner TEXT NOT NULL,
    port_security_enabled BOOLEAN NOT NULL,
    allowed_address_pairs TEXT NOT NULL,
    binding_host_id TEXT NOT NULL,
    binding_profile TEXT NOT NULL,
    binding_vnic_type TEXT NOT NULL,
    binding_vif_type TEXT NOT NULL,
    binding_vif_details TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at {{timestamp}} NOT NULL,
    updated_at {{timestamp}} NOT NULL,
    revision_number INTEGER NOT NULL,
    UNIQUE (network_id, mac_address)
);
CREATE INDEX ports_project_id ON ports (project_id);
CREATE INDEX ports_device_id ON ports (device_id);

-- One row per fixed IP; the primary key makes an address unique per subnet.
CREATE TABLE ip_allocations (
    subnet_id TEXT NOT NULL REFERENCES subnets (id),
    ip_address TEXT NOT NULL,
    port_id TEXT NOT NULL REFERENCES ports (id) ON DELETE CASCADE,
    network_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (subnet_id, ip_address)
);
CREATE INDEX ip_allocations_port_id ON ip_allocations (port_id, position);

CREATE TABLE security_groups (
    seq {{seq}},
    id TEXT NOT NULL UNIQUE,
    project_id TEXT NOT NULL,
    name TEXT NOT NULL,
    stateful BOOLEAN NOT NULL,
    description TEXT NOT NULL,
    created_at {{timestamp}} NOT NULL,
    updated_at {{timestamp}} NOT NULL,
    revision_number INTEGER NOT NULL
);
CREATE INDEX security_groups_project_id ON security_groups (project_id);

CREATE TABLE default_security_groups (
    project_id TEXT NOT NULL PRIMARY KEY,
    security_group_id TEXT NOT NULL REFERENCES security_groups (id) ON DELETE CASCADE
);
CREATE INDEX default_security_groups_security_group_id ON default_security_groups (security_group_id);

CREATE TABLE security_group_rules (
    seq {{seq}},
    id TEXT NOT NULL UNIQUE,
    project_id TEXT NOT NULL,
    security_group_id TEXT NOT NULL REFERENCES security_groups (id) ON DELETE CASCADE,
    direction TEXT NOT NULL,
    ethertype TEXT NOT NULL,
    protocol TEXT,
    port_range_min INTEGER,
    port_range_max INTEGER,
    remote_ip_prefix TEXT,
    -- As in Neutron, deleting a group also deletes the rules naming it as remote.
    remote_group_id TEXT REFERENCES security_groups (id) ON DELETE CASCADE,
    description TEXT NOT NULL,
    created_at {{timestamp}} NOT NULL,
    updated_at {{timestamp}} NOT NULL,
    revision_number INTEGER NOT NULL
);
CREATE INDEX security_group_rules_project_id ON security_group_rules (project_id);
CREATE INDEX security_group_rules_security_group_id ON security_group_rules (security_group_id);
CREATE INDEX security_group_rules_remote_group_id ON security_group_rules (remote_group_id);

-- The ports' security groups, in the order the port lists them.
CREATE TABLE port_security_groups (
    port_id TEXT NOT NULL REFERENCES ports (id) ON DELETE CASCADE,
    security_group_id TEXT NOT NULL REFERENCES security_groups (id),
    position INTEGER NOT NULL,
    PRIMARY KEY (port_id, security_group_id)
);
CREATE INDEX port_security_groups_security_group_id ON port_security_groups (security_group_id);

CREATE TABLE routers (
    seq {{seq}},
    id TEXT NOT NULL UNIQUE,
    project_id TEXT NOT NULL,
    name TEXT NOT NULL,
    admin_state_up BOOLEAN NOT NULL,
    status TEXT NOT NULL,
    gw_network_id TEXT REFERENCES networks (id),
    -- Checked at commit, so a transaction may delete the gateway port and
    -- clear the gateway in either order.
    gw_port_id TEXT REFERENCES ports (id) DEFERRABLE INITIALLY DEFERRED,
    enable_snat BOOLEAN NOT NULL,
    routes TEXT NOT NULL,
    distributed BOOLEAN NOT NULL,
    ha BOOLEAN NOT NULL,
    description TEXT NOT NULL,
    created_at {{timestamp}} NOT NULL,
    updated_at {{timestamp}} NOT NULL,
    revision_number INTEGER NOT NULL
);
CREATE INDEX routers_project_id ON routers (project_id);
CREATE INDEX routers_gw_network_id ON routers (gw_network_id);
CREATE INDEX routers_gw_port_id ON routers (gw_port_id);

CREATE TABLE quotas (
    project_id TEXT NOT NULL,
    resource TEXT NOT NULL,
    hard_limit INTEGER NOT NULL,
    PRIMARY KEY (project_id, resource)
);

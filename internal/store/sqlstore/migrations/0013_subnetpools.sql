-- Subnet pools (subnet_allocation, default-subnetpools). Subnets already
-- carry subnetpool_id (0001_init.sql); the service refuses to delete a pool
-- with subnets. Same conventions as 0001_init.sql. Do not use question
-- marks in this file.

CREATE TABLE subnetpools (
    seq {{seq}},
    id TEXT NOT NULL UNIQUE,
    project_id TEXT NOT NULL,
    name TEXT NOT NULL,
    ip_version INTEGER NOT NULL,
    -- A JSON list of canonical prefixes.
    prefixes TEXT NOT NULL,
    default_prefixlen INTEGER NOT NULL,
    min_prefixlen INTEGER NOT NULL,
    max_prefixlen INTEGER NOT NULL,
    shared BOOLEAN NOT NULL,
    is_default BOOLEAN NOT NULL,
    description TEXT NOT NULL,
    created_at {{timestamp}} NOT NULL,
    updated_at {{timestamp}} NOT NULL,
    revision_number INTEGER NOT NULL
);
CREATE INDEX subnetpools_project_id ON subnetpools (project_id);
CREATE INDEX subnets_subnetpool_id ON subnets (subnetpool_id);

-- Address scopes (the address-scope extension) and the subnet pools in
-- them (address_scope_id, '' for none). The service refuses to delete a
-- scope with pools and keeps the prefixes of a scope's pools apart. Same
-- conventions as 0001_init.sql. Do not use question marks in this file.

CREATE TABLE address_scopes (
    seq {{seq}},
    id TEXT NOT NULL UNIQUE,
    project_id TEXT NOT NULL,
    name TEXT NOT NULL,
    ip_version INTEGER NOT NULL,
    shared BOOLEAN NOT NULL,
    description TEXT NOT NULL,
    created_at {{timestamp}} NOT NULL,
    updated_at {{timestamp}} NOT NULL,
    revision_number INTEGER NOT NULL
);
CREATE INDEX address_scopes_project_id ON address_scopes (project_id);
ALTER TABLE subnetpools ADD COLUMN address_scope_id TEXT NOT NULL DEFAULT '';
CREATE INDEX subnetpools_address_scope_id ON subnetpools (address_scope_id);

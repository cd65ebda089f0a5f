-- Floating IPs. The address is held by a port of the floating IP's own on
-- the external network (device_owner network:floatingip), which the
-- floating IP keeps from being deleted; the association names an internal
-- port, one of its fixed IPs and the router that reaches it, and keeps
-- them (the service dissociates before it deletes either). A fixed IP has
-- at most one floating IP per external network. Same conventions as
-- 0001_init.sql. Do not use question marks in this file.
CREATE TABLE floatingips (
    seq {{seq}},
    id TEXT NOT NULL UNIQUE,
    project_id TEXT NOT NULL,
    floating_network_id TEXT NOT NULL REFERENCES networks (id),
    floating_ip_address TEXT NOT NULL,
    floating_port_id TEXT NOT NULL REFERENCES ports (id),
    port_id TEXT REFERENCES ports (id),
    fixed_ip_address TEXT,
    router_id TEXT REFERENCES routers (id),
    status TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at {{timestamp}} NOT NULL,
    updated_at {{timestamp}} NOT NULL,
    revision_number INTEGER NOT NULL
);
CREATE INDEX floatingips_project_id ON floatingips (project_id);
CREATE INDEX floatingips_floating_port_id ON floatingips (floating_port_id);
CREATE INDEX floatingips_router_id ON floatingips (router_id);
CREATE INDEX floatingips_created ON floatingips (created_at, seq);
CREATE UNIQUE INDEX floatingips_fixed ON floatingips (port_id, fixed_ip_address, floating_network_id)
    WHERE port_id IS NOT NULL;

-- Agents, their router bindings, and the networks' segmentation ids. Same
-- conventions as 0001_init.sql ({{seq}} and {{timestamp}} substituted, maps
-- as JSON TEXT). Do not use question marks in this file.

-- The VXLAN network identifier (1..16777215) the store assigns when it
-- creates a network and never changes. The default only serves ADD COLUMN
-- (SQLite requires one for a NOT NULL column): the existing networks are
-- numbered 1, 2, ... in creation order below, and the store always sets the
-- column of a new network.
ALTER TABLE networks ADD COLUMN segmentation_id INTEGER NOT NULL DEFAULT 0;
UPDATE networks SET segmentation_id = numbered.n
FROM (SELECT seq, ROW_NUMBER() OVER (ORDER BY seq) AS n FROM networks) AS numbered
WHERE networks.seq = numbered.seq;
CREATE UNIQUE INDEX networks_segmentation_id ON networks (segmentation_id);

-- The agents' lookup by host.
CREATE INDEX ports_binding_host_id ON ports (binding_host_id);

-- One agent of a type per host. "binary" is quoted: it is a reserved word in
-- PostgreSQL.
CREATE TABLE agents (
    seq {{seq}},
    id TEXT NOT NULL UNIQUE,
    host TEXT NOT NULL,
    agent_type TEXT NOT NULL,
    "binary" TEXT NOT NULL,
    underlay_ip TEXT NOT NULL,
    admin_state_up BOOLEAN NOT NULL,
    configurations TEXT NOT NULL,
    started_at {{timestamp}} NOT NULL,
    heartbeat_timestamp {{timestamp}} NOT NULL,
    created_at {{timestamp}} NOT NULL,
    description TEXT NOT NULL,
    UNIQUE (host, agent_type)
);

-- The agents hosting each router; deleting either side drops the binding.
CREATE TABLE router_agent_bindings (
    router_id TEXT NOT NULL REFERENCES routers (id) ON DELETE CASCADE,
    agent_id TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    PRIMARY KEY (router_id, agent_id)
);
CREATE INDEX router_agent_bindings_agent_id ON router_agent_bindings (agent_id);

-- DHCP: the extra_dhcp_opt extension's options of each port, and which DHCP
-- agents serve each network (the dhcp_agent_scheduler extension). Same
-- conventions as 0001_init.sql. Do not use question marks in this file.

-- A JSON list of {"opt_name", "opt_value", "ip_version"}.
ALTER TABLE ports ADD COLUMN extra_dhcp_opts TEXT NOT NULL DEFAULT '[]';

-- The DHCP agents serving each network; deleting either side drops the
-- binding (the network's DHCP port goes with the network).
CREATE TABLE network_dhcp_agent_bindings (
    network_id TEXT NOT NULL REFERENCES networks (id) ON DELETE CASCADE,
    agent_id TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    PRIMARY KEY (network_id, agent_id)
);
CREATE INDEX network_dhcp_agent_bindings_agent_id ON network_dhcp_agent_bindings (agent_id);

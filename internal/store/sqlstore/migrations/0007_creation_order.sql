-- An index on each API table's default list order (creation time, then
-- insertion sequence), so a full list walks the index instead of sorting
-- every row in memory: listing 10,000 IPsec site connections on SQLite
-- held the whole table in the sorter and raised the server's peak memory
-- by about 25 MiB. Same conventions as 0001_init.sql. Do not use question
-- marks in this file.
CREATE INDEX networks_created ON networks (created_at, seq);
CREATE INDEX subnets_created ON subnets (created_at, seq);
CREATE INDEX ports_created ON ports (created_at, seq);
CREATE INDEX security_groups_created ON security_groups (created_at, seq);
CREATE INDEX security_group_rules_created ON security_group_rules (created_at, seq);
CREATE INDEX routers_created ON routers (created_at, seq);
CREATE INDEX ikepolicies_created ON ikepolicies (created_at, seq);
CREATE INDEX ipsecpolicies_created ON ipsecpolicies (created_at, seq);
CREATE INDEX vpnservices_created ON vpnservices (created_at, seq);
CREATE INDEX endpoint_groups_created ON endpoint_groups (created_at, seq);
CREATE INDEX ipsec_site_connections_created ON ipsec_site_connections (created_at, seq);

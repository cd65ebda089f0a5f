-- Multi-segment networks (the multi-provider extension). A network keeps
-- its first segment in its own columns (0008_provider_networks.sql), which
-- agents wire; every segment of every network, the first included, also
-- has a row in network_segments, whose unique indexes keep a VLAN id per
-- physical network, a VNI and a flat physical network to one segment
-- across all networks, and which the segmentation id allocator searches.
-- networks.segments lists a multi-segment network's segments as JSON (null
-- for one segment), so that reading networks needs no join. The store
-- deletes a network's rows here with the network. Same conventions as
-- 0001_init.sql. Do not use question marks in this file.
ALTER TABLE networks ADD COLUMN segments TEXT NOT NULL DEFAULT 'null';

CREATE TABLE network_segments (
    network_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    network_type TEXT NOT NULL,
    physical_network TEXT NOT NULL,
    segmentation_id INTEGER NOT NULL,
    PRIMARY KEY (network_id, position)
);
CREATE UNIQUE INDEX network_segments_segment ON network_segments (network_type, physical_network, segmentation_id)
    WHERE network_type IN ('vlan', 'vxlan');
CREATE UNIQUE INDEX network_segments_flat ON network_segments (physical_network) WHERE network_type = 'flat';
INSERT INTO network_segments (network_id, position, network_type, physical_network, segmentation_id)
    SELECT id, 0, network_type, physical_network, segmentation_id FROM networks;

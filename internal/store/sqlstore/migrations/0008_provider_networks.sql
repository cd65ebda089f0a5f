-- Provider networks: a network's segment is its type (flat, vlan, vxlan,
-- local), its physical network (flat and vlan) and its segmentation id
-- (VLAN id or VNI; 0 for flat and local). Every network so far is VXLAN.
-- A VLAN id is unique per physical network, a VNI overall, and a physical
-- network carries one flat network. Same conventions as 0001_init.sql. Do
-- not use question marks in this file.
ALTER TABLE networks ADD COLUMN network_type TEXT NOT NULL DEFAULT 'vxlan';
ALTER TABLE networks ADD COLUMN physical_network TEXT NOT NULL DEFAULT '';
DROP INDEX networks_segmentation_id;
CREATE UNIQUE INDEX networks_segment ON networks (network_type, physical_network, segmentation_id)
    WHERE network_type IN ('vlan', 'vxlan');
CREATE UNIQUE INDEX networks_flat ON networks (physical_network) WHERE network_type = 'flat';

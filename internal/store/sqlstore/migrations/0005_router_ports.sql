-- Which router attached a port through the router API (gateway or
-- add_router_interface); '' for every other port. A router's interfaces are
-- the ports it attached, not whatever port names it in device_id: that
-- column is client-writable. Same conventions as 0001_init.sql. Do not use
-- question marks in this file.
ALTER TABLE ports ADD COLUMN router_id TEXT NOT NULL DEFAULT '';

-- Existing attachments: every router's gateway port, and the interface
-- ports of the router's own project. An interface port of another project
-- that names the router could have been forged through the port API before
-- this migration, so it is left unattached.
UPDATE ports SET router_id = device_id
WHERE device_owner IN ('network:router_gateway', 'network:router_interface')
  AND EXISTS (SELECT 1 FROM routers
              WHERE routers.id = ports.device_id
                AND (routers.gw_port_id = ports.id OR
                     (ports.device_owner = 'network:router_interface' AND routers.project_id = ports.project_id)));

CREATE INDEX ports_router_id ON ports (router_id);

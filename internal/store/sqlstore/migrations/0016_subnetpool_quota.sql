-- Subnet pools' default_quota: the addresses (IPv4, in /32s) or /64s
-- (IPv6) one project may take from the pool; NULL for no limit. Same
-- conventions as 0001_init.sql. Do not use question marks in this file.

ALTER TABLE subnetpools ADD COLUMN default_quota INTEGER;

-- Tags (the standard-attr-tag extension): the tags of every tagged resource,
-- in one table keyed by the resource's type (its table name, which is also
-- its API collection with underscores) and id. There is no foreign key, as
-- one column points into many tables: the store deletes a resource's tags
-- with the resource (and a network's subnets' tags with the network). Same
-- conventions as 0001_init.sql. Do not use question marks in this file.
-- 0011 is left to the trunks migration of a parallel branch.

CREATE TABLE tags (
    resource_type TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    tag TEXT NOT NULL,
    PRIMARY KEY (resource_type, resource_id, tag)
);
-- Filters look tags up by value.
CREATE INDEX tags_tag ON tags (resource_type, tag);

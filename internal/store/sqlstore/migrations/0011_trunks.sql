-- Trunks (the reference's trunk extension): a parent port and its
-- subports, each tagged with a segmentation id. A port is the parent of
-- at most one trunk and a subport of at most one trunk; a tag is used
-- once per trunk. The ports stay until the trunk lets them go: the
-- service refuses to delete a port that is a parent or a subport. Same
-- conventions as 0001_init.sql. Do not use question marks in this file.
CREATE TABLE trunks (
    seq {{seq}},
    id TEXT NOT NULL UNIQUE,
    project_id TEXT NOT NULL,
    name TEXT NOT NULL,
    admin_state_up BOOLEAN NOT NULL,
    status TEXT NOT NULL,
    port_id TEXT NOT NULL UNIQUE REFERENCES ports (id),
    description TEXT NOT NULL,
    created_at {{timestamp}} NOT NULL,
    updated_at {{timestamp}} NOT NULL,
    revision_number INTEGER NOT NULL
);
CREATE INDEX trunks_project_id ON trunks (project_id);
CREATE INDEX trunks_created ON trunks (created_at, seq);

CREATE TABLE trunk_subports (
    port_id TEXT NOT NULL PRIMARY KEY REFERENCES ports (id),
    trunk_id TEXT NOT NULL REFERENCES trunks (id) ON DELETE CASCADE,
    segmentation_type TEXT NOT NULL,
    segmentation_id INTEGER NOT NULL,
    position INTEGER NOT NULL,
    UNIQUE (trunk_id, segmentation_type, segmentation_id)
);
CREATE INDEX trunk_subports_trunk_id ON trunk_subports (trunk_id);

-- The agents' bus token generations. A host's token is an HMAC of its name
-- and generation under the bus secret; rotating the token bumps the
-- generation, and the embedded bus accepts only the current one. A host
-- without a row is at generation 0 (the token of earlier releases). Same
-- conventions as 0001_init.sql. Do not use question marks in this file.
CREATE TABLE agent_tokens (
    host TEXT PRIMARY KEY,
    generation BIGINT NOT NULL,
    rotated_at {{timestamp}} NOT NULL
);

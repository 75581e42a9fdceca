-- 0002 (hardening): keyed dedup hashes, a second one for bodies; consumers
-- get a row id so a revoked name can be granted again; the meta table.
ALTER TABLE events DROP COLUMN digest;
ALTER TABLE events ALTER COLUMN dedup DROP NOT NULL;
ALTER TABLE events ADD COLUMN body_dedup BYTEA UNIQUE;

ALTER TABLE consumers DROP CONSTRAINT consumers_pkey;
ALTER TABLE consumers ADD COLUMN id BIGSERIAL PRIMARY KEY;
CREATE UNIQUE INDEX consumers_live ON consumers(name) WHERE revoked_at IS NULL;

CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
);

ALTER TABLE audit ADD COLUMN categories TEXT NOT NULL DEFAULT '[]';

-- 0002 (hardening): dedup keys become keyed hashes that erasure deletes
-- with the subject, a second one for the body of schemes that sign no id or
-- timestamp; the unkeyed body digest goes. Consumers get a row id, so a
-- revoked name can be granted again. A meta table holds the vault key's
-- check value.
CREATE TABLE events_new (
	id          TEXT PRIMARY KEY,
	source      TEXT NOT NULL,
	vendor      TEXT NOT NULL,
	event_type  TEXT NOT NULL,
	subject     TEXT NOT NULL,           -- keyed hash of the subject reference
	dedup       BLOB UNIQUE,             -- keyed hash of (source, the vendor's idempotency key); NULL when none or erased
	body_dedup  BLOB UNIQUE,             -- keyed hash of (source, body) for schemes that sign no id or timestamp; NULL otherwise or erased
	received_at INTEGER NOT NULL,        -- unix nanoseconds
	payload     BLOB,                    -- nonce || AES-256-GCM ciphertext; NULL once purged
	upstream    TEXT                     -- JSON ids for upstream lookup mode, instead of a payload
);
INSERT INTO events_new (id, source, vendor, event_type, subject, dedup, received_at, payload, upstream)
	SELECT id, source, vendor, event_type, subject, dedup, received_at, payload, upstream FROM events;
DROP TABLE events;
ALTER TABLE events_new RENAME TO events;
CREATE INDEX events_received ON events(received_at);

CREATE TABLE consumers_new (
	id         INTEGER PRIMARY KEY,
	name       TEXT NOT NULL,
	key_hash   BLOB NOT NULL UNIQUE,
	purposes   TEXT NOT NULL,          -- JSON array
	created_at INTEGER NOT NULL,
	revoked_at INTEGER                 -- NULL while the key works
);
INSERT INTO consumers_new (name, key_hash, purposes, created_at, revoked_at)
	SELECT name, key_hash, purposes, created_at, revoked_at FROM consumers;
DROP TABLE consumers;
ALTER TABLE consumers_new RENAME TO consumers;
CREATE UNIQUE INDEX consumers_live ON consumers(name) WHERE revoked_at IS NULL;

CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value BLOB NOT NULL
);

-- The data categories a row released (export column `categories`). Rows
-- written before have none, and their hashes do not include the column.
ALTER TABLE audit ADD COLUMN categories TEXT NOT NULL DEFAULT '[]';

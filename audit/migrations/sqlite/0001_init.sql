-- 0001: the schema of the first release, with the upstream column and the
-- delivery_bodies split that later sessions added by probing columns.
-- Databases made before numbered migrations are brought here by Migrate
-- and then marked as at version 1.
--
-- Indexes are few on purpose: each random-keyed index costs a page write
-- per insert. Erasure finds a subject's rows by scanning; it is rare.
CREATE TABLE events (
	id          TEXT PRIMARY KEY,
	source      TEXT NOT NULL,
	vendor      TEXT NOT NULL,
	event_type  TEXT NOT NULL,
	subject     TEXT NOT NULL,           -- keyed hash of the subject reference
	dedup       BLOB NOT NULL UNIQUE,    -- first 16 bytes of SHA-256(source, the vendor's idempotency key)
	received_at INTEGER NOT NULL,        -- unix nanoseconds
	digest      TEXT NOT NULL,           -- SHA-256 of the raw body
	payload     BLOB,                    -- nonce || AES-256-GCM ciphertext; NULL once purged
	upstream    TEXT                     -- JSON ids for upstream lookup mode, instead of a payload
);
CREATE INDEX events_received ON events(received_at);

CREATE TABLE data_keys (
	subject    TEXT PRIMARY KEY,         -- keyed hash of the subject reference
	wrapped    BLOB NOT NULL,            -- nonce || data key sealed by the vault key
	created_at INTEGER NOT NULL
);

CREATE TABLE audit (
	seq            INTEGER PRIMARY KEY,
	time           TEXT NOT NULL,
	action         TEXT NOT NULL,
	actor          TEXT NOT NULL,
	source         TEXT NOT NULL,
	event_type     TEXT NOT NULL,
	event_id       TEXT NOT NULL,
	destination    TEXT NOT NULL,
	subject        TEXT NOT NULL,
	outcome        TEXT NOT NULL,
	http_status    INTEGER NOT NULL,
	attempt        INTEGER NOT NULL,
	fields_kept    TEXT NOT NULL,        -- JSON array of paths
	fields_dropped TEXT NOT NULL,        -- JSON array of paths
	detail         TEXT NOT NULL,
	prev_hash      TEXT NOT NULL,
	hash           TEXT NOT NULL
);
CREATE INDEX audit_time ON audit(time);

CREATE TABLE deliveries (
	id              TEXT PRIMARY KEY,    -- dlv_…, the webhook-id
	event_id        TEXT NOT NULL,
	destination     TEXT NOT NULL,
	subject         TEXT NOT NULL,       -- keyed hash, for erasure
	status          TEXT NOT NULL,       -- pending, sending, filtered, blocked, delivered, dead
	detail          TEXT NOT NULL,
	attempts        INTEGER NOT NULL DEFAULT 0,
	next_attempt_at INTEGER NOT NULL DEFAULT 0,
	created_at      INTEGER NOT NULL,
	updated_at      INTEGER NOT NULL
);
CREATE INDEX deliveries_due ON deliveries(status, next_attempt_at);
CREATE INDEX deliveries_event ON deliveries(event_id);

-- What the policy decided for a delivery: written with it, rewritten only by
-- a replay. Kept apart from deliveries so that each claim and attempt
-- rewrites a small row, not the outbound body. The dropped paths are not
-- kept per delivery (every path of the payload not kept, a few KB each
-- time); filtered and blocked deliveries list them in their audit rows.
CREATE TABLE delivery_bodies (
	id            TEXT PRIMARY KEY,      -- deliveries.id
	body          BLOB,                  -- nonce || sealed outbound body (subject's data key); NULL once purged
	fields_kept   TEXT NOT NULL,         -- JSON arrays of paths
	pseudonymized TEXT NOT NULL
);

-- Paths seen per (source, event type), for schema drift. Paths only.
CREATE TABLE schema_paths (
	source     TEXT NOT NULL,
	event_type TEXT NOT NULL,
	path       TEXT NOT NULL,
	first_seen INTEGER NOT NULL,
	PRIMARY KEY (source, event_type, path)
) WITHOUT ROWID;

-- Where the chain starts once retention has purged its oldest rows: the seq
-- and hash of the last purged row. One row.
CREATE TABLE audit_anchor (
	id   INTEGER PRIMARY KEY CHECK (id = 1),
	seq  INTEGER NOT NULL,
	hash TEXT NOT NULL
);

-- Lookup consumers: only a hash of each key is kept.
CREATE TABLE consumers (
	name       TEXT PRIMARY KEY,
	key_hash   BLOB NOT NULL UNIQUE,
	purposes   TEXT NOT NULL,          -- JSON array
	created_at INTEGER NOT NULL,
	revoked_at INTEGER                 -- NULL while the key works
);

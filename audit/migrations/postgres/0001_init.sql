-- 0001: the schema of the first release, for PostgreSQL. The same numbers
-- as the SQLite migrations; columns the later numbers change are created
-- as version 1 had them, and changed there.
CREATE TABLE events (
	id          TEXT PRIMARY KEY,
	source      TEXT NOT NULL,
	vendor      TEXT NOT NULL,
	event_type  TEXT NOT NULL,
	subject     TEXT NOT NULL,           -- keyed hash of the subject reference
	dedup       BYTEA NOT NULL UNIQUE,
	received_at BIGINT NOT NULL,         -- unix nanoseconds
	digest      TEXT NOT NULL,
	payload     BYTEA,                   -- nonce || AES-256-GCM ciphertext; NULL once purged
	upstream    TEXT                     -- JSON ids for upstream lookup mode, instead of a payload
);
CREATE INDEX events_received ON events(received_at);

CREATE TABLE data_keys (
	subject    TEXT PRIMARY KEY,
	wrapped    BYTEA NOT NULL,
	created_at BIGINT NOT NULL
);

CREATE TABLE audit (
	seq            BIGINT PRIMARY KEY,
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
	fields_kept    TEXT NOT NULL,
	fields_dropped TEXT NOT NULL,
	detail         TEXT NOT NULL,
	prev_hash      TEXT NOT NULL,
	hash           TEXT NOT NULL
);
CREATE INDEX audit_time ON audit(time);

CREATE TABLE deliveries (
	id              TEXT PRIMARY KEY,
	event_id        TEXT NOT NULL,
	destination     TEXT NOT NULL,
	subject         TEXT NOT NULL,
	status          TEXT NOT NULL,
	detail          TEXT NOT NULL,
	attempts        INTEGER NOT NULL DEFAULT 0,
	next_attempt_at BIGINT NOT NULL DEFAULT 0,
	created_at      BIGINT NOT NULL,
	updated_at      BIGINT NOT NULL
);
CREATE INDEX deliveries_due ON deliveries(status, next_attempt_at);
CREATE INDEX deliveries_event ON deliveries(event_id);

CREATE TABLE delivery_bodies (
	id            TEXT PRIMARY KEY,
	body          BYTEA,
	fields_kept   TEXT NOT NULL,
	pseudonymized TEXT NOT NULL
);

CREATE TABLE schema_paths (
	source     TEXT NOT NULL,
	event_type TEXT NOT NULL,
	path       TEXT NOT NULL,
	first_seen BIGINT NOT NULL,
	PRIMARY KEY (source, event_type, path)
);

CREATE TABLE audit_anchor (
	id   INTEGER PRIMARY KEY CHECK (id = 1),
	seq  BIGINT NOT NULL,
	hash TEXT NOT NULL
);

CREATE TABLE consumers (
	name       TEXT PRIMARY KEY,
	key_hash   BYTEA NOT NULL UNIQUE,
	purposes   TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	revoked_at BIGINT
);

-- Replicas append to one audit chain: each batch that appends locks this
-- row first, reads the tail from it and leaves the new tail in it, so the
-- chain has one total order whichever replica writes. (SQLite has one
-- writer per file and reads the tail from the audit table.)
CREATE TABLE chain_head (
	id   INTEGER PRIMARY KEY CHECK (id = 1),
	seq  BIGINT NOT NULL,
	hash TEXT NOT NULL
);
INSERT INTO chain_head (id, seq, hash) VALUES (1, 0, '');

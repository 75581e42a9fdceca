-- 0011 (privacy by the person): the data subject as an entity; see the
-- SQLite migration of the same number.
CREATE TABLE subject_links (
	ref       TEXT PRIMARY KEY,
	person    TEXT NOT NULL,
	person_kind TEXT NOT NULL,
	linked_at BIGINT NOT NULL
);

CREATE TABLE tombstones (
	person          TEXT PRIMARY KEY,
	erased_at       BIGINT NOT NULL,
	receipt         TEXT NOT NULL DEFAULT '',
	salt            BYTEA NOT NULL,
	restored_at     BIGINT,
	restored_reason TEXT NOT NULL DEFAULT ''
);

ALTER TABLE erasures ADD COLUMN lifted INTEGER NOT NULL DEFAULT 0;

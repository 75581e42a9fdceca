-- 0011 (privacy by the person): the data subject as an entity.
-- subject_links keeps, per reference Veil has seen (a candidate, an
-- application, an offer, a normalised email: each a keyed hash, never the
-- reference itself), the person it belongs to (the keyed hash of the
-- person's canonical reference, the candidate's when known). A person's
-- own hash has no row until she merges into another person (an
-- application seen before its candidate), when its row names that one:
-- readers follow rows to their end, and erasure walks them back (a
-- recursive query; no index by person, which would cost a random page
-- write per insert), so it finds every key her payloads were sealed under.
-- WITHOUT ROWID: the rows live in the primary key's b-tree, one random-keyed
-- insert per reference instead of two.
CREATE TABLE subject_links (
	ref       TEXT PRIMARY KEY,
	person    TEXT NOT NULL,
	person_kind TEXT NOT NULL,         -- candidate when a candidate's record anchors the person, else application
	linked_at INTEGER NOT NULL
) WITHOUT ROWID;

-- tombstones: erased people, keyed hashes only. The receipt of the erasure
-- (no values), the salt that keys the person's pseudonyms after it (so a
-- recipient cannot link records from before and after), and when and why
-- an admin lifted it.
CREATE TABLE tombstones (
	person          TEXT PRIMARY KEY,
	erased_at       INTEGER NOT NULL,
	receipt         TEXT NOT NULL DEFAULT '',
	salt            BLOB NOT NULL,
	restored_at     INTEGER,
	restored_reason TEXT NOT NULL DEFAULT ''
);

-- The erasures log now names every reference of an erased person, one row
-- each, and restores as rows with lifted = 1: each process keeps the refs
-- whose last row is an erasure, and refuses their events.
ALTER TABLE erasures ADD COLUMN lifted INTEGER NOT NULL DEFAULT 0;

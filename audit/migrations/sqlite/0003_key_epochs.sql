-- 0003 (sustained load): data keys per subject and hour, so retention
-- deletes the keys of whole hours by range instead of searching which
-- subjects still have a payload; each event names the hour its key belongs
-- to. Keys made before this migration keep epoch 0 and go once no payload
-- of their subject needs them.
CREATE TABLE data_keys_new (
	epoch      INTEGER NOT NULL,         -- hour of the events sealed with it (unix seconds / 3600); 0 = before 0003
	subject    TEXT NOT NULL,            -- keyed hash of the subject reference
	wrapped    BLOB NOT NULL,            -- nonce || data key sealed by the vault key
	created_at INTEGER NOT NULL,
	PRIMARY KEY (epoch, subject)
) WITHOUT ROWID;
INSERT INTO data_keys_new (epoch, subject, wrapped, created_at) SELECT 0, subject, wrapped, created_at FROM data_keys;
DROP TABLE data_keys;
ALTER TABLE data_keys_new RENAME TO data_keys;

ALTER TABLE events ADD COLUMN key_epoch INTEGER NOT NULL DEFAULT 0;

-- Every erasure, in order: a process that caches data keys reads the ones
-- after the last it saw before each commit and drops those subjects' keys,
-- so a key erased by another process (veil erase, another replica) is
-- never used again.
CREATE TABLE erasures (
	seq     INTEGER PRIMARY KEY,
	subject TEXT NOT NULL,
	at      INTEGER NOT NULL
);

-- Claims go per destination and per status, oldest due first, so each
-- reads its rows in index order instead of sorting a whole backlog, and a
-- destination that is down cannot take the claims of the others.
DROP INDEX deliveries_due;
CREATE INDEX deliveries_due ON deliveries(status, destination, next_attempt_at);

-- 0009: sealed payloads move out of the events row into a table of their
-- own, whose rows a purge deletes (see the SQLite migration: there a
-- payload set to NULL in place left its page part-empty). PostgreSQL kept
-- the ciphertext out of line already; the table keeps both drivers' shape
-- the same. Stored without a compression attempt, as 0005 did.
CREATE TABLE payloads (
	event_id TEXT PRIMARY KEY,           -- events.id
	sealed   BYTEA NOT NULL              -- nonce || AES-256-GCM ciphertext under the subject's data key
);
ALTER TABLE payloads ALTER COLUMN sealed SET STORAGE EXTERNAL;
INSERT INTO payloads (event_id, sealed) SELECT id, payload FROM events WHERE payload IS NOT NULL ORDER BY received_at, id;
ALTER TABLE events DROP COLUMN payload;

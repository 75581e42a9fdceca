-- 0009: sealed payloads move out of the events row into a table of their
-- own, whose rows a purge deletes. Set to NULL in place, a purged payload
-- left its events row in a page the inline ciphertext had filled (about
-- 2.5 KB of a 6.5 KB row; the rest on an overflow page), so the events
-- table ended 39 % full after the 15-minute soak and no vacuum gave that
-- space back. Rows here are written and deleted in time order, so a purge
-- frees whole pages, and the events rows stay small and never change size.
CREATE TABLE payloads (
	event_id TEXT PRIMARY KEY,           -- events.id
	sealed   BLOB NOT NULL               -- nonce || AES-256-GCM ciphertext under the subject's data key
);
INSERT INTO payloads (event_id, sealed) SELECT id, payload FROM events WHERE payload IS NOT NULL ORDER BY received_at, id;
ALTER TABLE events DROP COLUMN payload;

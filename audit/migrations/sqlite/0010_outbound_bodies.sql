-- 0010: sealed outbound bodies move out of delivery_bodies into a table of
-- their own, whose rows a purge (and a rejected review) deletes, as 0009
-- did for payloads. Set to NULL in place, a purged body left its row's
-- page part-empty: delivery_bodies ended 53 % full after the 15-minute
-- soak, most of what the file held above a fresh copy. What stays is what
-- the policy decided for the delivery (paths kept and pseudonymized,
-- categories), kept as long as the delivery row for the records-of-
-- processing report; the table is renamed for what it now holds.
CREATE TABLE outbound_bodies (
	delivery_id TEXT PRIMARY KEY,        -- deliveries.id
	sealed      BLOB NOT NULL            -- nonce || AES-256-GCM ciphertext under the subject's data key
);
INSERT INTO outbound_bodies (delivery_id, sealed) SELECT id, body FROM delivery_bodies WHERE body IS NOT NULL ORDER BY id;
ALTER TABLE delivery_bodies DROP COLUMN body;
ALTER TABLE delivery_bodies RENAME TO delivery_fields;

-- 0010: sealed outbound bodies move out of delivery_bodies into a table of
-- their own, whose rows a purge (and a rejected review) deletes, as 0009
-- did for payloads (see the SQLite migration); both drivers keep one
-- shape. What stays is what the policy decided for the delivery, renamed
-- for what it now holds. Stored without a compression attempt, as 0005 did.
CREATE TABLE outbound_bodies (
	delivery_id TEXT PRIMARY KEY,        -- deliveries.id
	sealed      BYTEA NOT NULL           -- nonce || AES-256-GCM ciphertext under the subject's data key
);
ALTER TABLE outbound_bodies ALTER COLUMN sealed SET STORAGE EXTERNAL;
INSERT INTO outbound_bodies (delivery_id, sealed) SELECT id, body FROM delivery_bodies WHERE body IS NOT NULL ORDER BY id;
ALTER TABLE delivery_bodies DROP COLUMN body;
ALTER TABLE delivery_bodies RENAME TO delivery_fields;

-- 0005 (PostgreSQL): sealed payloads and bodies are ciphertext, which does
-- not compress: store them out of line without trying (TOAST's compression
-- attempt on every 5 KB payload cost the server CPU it needs for inserts).
ALTER TABLE events ALTER COLUMN payload SET STORAGE EXTERNAL;
ALTER TABLE delivery_bodies ALTER COLUMN body SET STORAGE EXTERNAL;

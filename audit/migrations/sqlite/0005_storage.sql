-- 0005: PostgreSQL stores ciphertext uncompressed from here on; SQLite
-- never compresses, so nothing changes. (Migrations keep the same numbers
-- for both drivers.)
SELECT 1;

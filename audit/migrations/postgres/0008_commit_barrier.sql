-- 0008: one row per writer connection (its backend's pid), written after
-- each batch that appended audit rows. The batch commits without waiting
-- for the WAL flush, so the chain_head lock is not held across it; the
-- write here then commits synchronously, and its flush covers the batch's
-- commit record, which came before it in the WAL. Replicas' barriers touch
-- their own rows, so PostgreSQL flushes them together.
CREATE TABLE IF NOT EXISTS commit_barrier (
    pid INTEGER PRIMARY KEY,
    n   BIGINT NOT NULL
);

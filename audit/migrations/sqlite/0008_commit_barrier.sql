-- 0008: PostgreSQL's commit barrier (see its migration). SQLite has one
-- writer and commits each batch with synchronous=FULL: the table is made
-- so both drivers carry the same numbers, and stays empty.
CREATE TABLE IF NOT EXISTS commit_barrier (
    pid INTEGER PRIMARY KEY,
    n   BIGINT NOT NULL
);

-- 0013 (recovery in bulk): a dead delivery keeps the HTTP status of its
-- last answer (0 when none came), so dead letters filter by it; and a
-- destination an operator paused is named here (by whom, why, since when)
-- until resumed: no replica claims its deliveries meanwhile.
ALTER TABLE deliveries ADD COLUMN http_status INTEGER NOT NULL DEFAULT 0;
CREATE TABLE paused_destinations (
	destination TEXT PRIMARY KEY,
	paused_at   BIGINT NOT NULL,
	actor       TEXT NOT NULL,
	reason      TEXT NOT NULL
);

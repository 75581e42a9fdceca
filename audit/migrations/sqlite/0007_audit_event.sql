-- 0007: audit rows by event, for the console's event page (a scan of a
-- million rows took half a second). Event ids grow with time, so the index
-- grows at its end.
CREATE INDEX IF NOT EXISTS audit_event ON audit(event_id);

-- 0016: a store with no events has no links to backfill: mark it done, so
-- the first serve of a store filled by something else (a copy, a load run)
-- does not decrypt every event to link references that are linked already.
-- A store with events is left as it is: its backfill runs, or has run.
INSERT INTO meta (key, value) SELECT 'links_backfilled', '1' WHERE NOT EXISTS (SELECT 1 FROM events)
	ON CONFLICT (key) DO NOTHING;

-- 0012 (one attempt at a time): each claim of a delivery carries a token
-- of its own; an attempt's outcome is recorded only under the claim that
-- made it, so an attempt whose lease ran out, and which another claim
-- took over, writes no second final row.
ALTER TABLE deliveries ADD COLUMN claim TEXT NOT NULL DEFAULT '';

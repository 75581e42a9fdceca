-- 0014 (find anything): an event keeps its normal-form type beside the
-- vendor's, and the keyed hash of the job it names ('' when none, and for
-- events stored before this version), so RecOps finds events by either
-- type and by a job id. Both searches by a person's ids (through her
-- linked references) and by a job read an index: random-keyed, a page
-- write per insert each, the price of finding one candidate's event among
-- a million without a scan. So does subject_links(person): a person's
-- references are walked back from her (an erasure did that by scanning,
-- rarely; a search does it for every id typed).
ALTER TABLE events ADD COLUMN normal_type TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN job TEXT NOT NULL DEFAULT '';
CREATE INDEX events_subject ON events(subject);
CREATE INDEX events_job ON events(job) WHERE job <> '';
CREATE INDEX subject_links_person ON subject_links(person);

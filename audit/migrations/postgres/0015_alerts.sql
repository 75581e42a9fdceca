-- 0015 (alerts): the alerts open now, one row per condition and what it
-- concerns (dead:slack-hiring). A replica opens one by inserting its row
-- and resolves it by deleting it: whichever does so sends the message,
-- so several replicas send each once. sent_at paces the reminders.
CREATE TABLE alerts (
	key       TEXT PRIMARY KEY,
	opened_at BIGINT NOT NULL,
	sent_at   BIGINT NOT NULL,
	summary   TEXT NOT NULL
);

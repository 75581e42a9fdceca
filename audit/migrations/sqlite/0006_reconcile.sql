-- 0006: reconciliation. app_states keeps, per application, where the last
-- webhook or reconciliation pass said it stood: the application id and
-- stage as keyed hashes, the outcome (active, hired, rejected, closed),
-- and who said it (webhook or reconcile). reconcile_state keeps each
-- source's watermark and the vendor's sync token.
CREATE TABLE app_states (
	source     TEXT NOT NULL,
	app        TEXT NOT NULL,
	stage      TEXT,
	outcome    TEXT,
	seen_by    TEXT NOT NULL,
	updated_at BIGINT NOT NULL,
	PRIMARY KEY (source, app)
);
CREATE TABLE reconcile_state (
	source     TEXT PRIMARY KEY,
	watermark  BIGINT NOT NULL,
	token      TEXT NOT NULL DEFAULT '',
	updated_at BIGINT NOT NULL
);

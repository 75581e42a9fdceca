-- 0003 (sustained load): data keys per subject and hour; the erasures log
-- every process reads before it commits; claims per destination and status.
ALTER TABLE data_keys ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0;
ALTER TABLE data_keys DROP CONSTRAINT data_keys_pkey;
ALTER TABLE data_keys ADD PRIMARY KEY (epoch, subject);

ALTER TABLE events ADD COLUMN key_epoch BIGINT NOT NULL DEFAULT 0;

CREATE TABLE erasures (
	seq     BIGSERIAL PRIMARY KEY,
	subject TEXT NOT NULL,
	at      BIGINT NOT NULL
);

DROP INDEX deliveries_due;
CREATE INDEX deliveries_due ON deliveries(status, destination, next_attempt_at);

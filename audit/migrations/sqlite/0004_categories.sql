-- 0004 (normal form): the data categories of what each delivery sends, so
-- its delivered audit row can say them.
ALTER TABLE delivery_bodies ADD COLUMN categories TEXT NOT NULL DEFAULT '[]';

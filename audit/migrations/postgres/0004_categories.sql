-- 0004 (normal form): the data categories of what each delivery sends.
ALTER TABLE delivery_bodies ADD COLUMN categories TEXT NOT NULL DEFAULT '[]';

-- The instance holding a claimed row, as on Postgres (0014 there). A SQLite
-- file has one instance and never sets it; the statements that take a row
-- out of hand clear it on both backends alike.
ALTER TABLE inbox ADD COLUMN claimed_by TEXT;
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;

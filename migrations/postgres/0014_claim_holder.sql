-- The instance holding a claimed row (its id in `instances`). A row held by
-- an instance that is no longer alive is claimable at once instead of when
-- its lease runs out. Rows claimed before this migration name no holder and
-- wait out their lease.
ALTER TABLE inbox ADD COLUMN claimed_by TEXT;
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;

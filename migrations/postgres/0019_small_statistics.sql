-- The work tables are analyzed every few seconds while they change
-- (store/planner_stats.rs): their claims and results are planned from the
-- share of rows in each state, and statistics taken after a quiet spell
-- (every row done) made Postgres read the whole open set per row of a
-- burst. A sample of 3,000 rows (300 times the target) shows that share as
-- well as 30,000 and costs a tenth: analyzing 1,000,000 inbox rows took
-- 16-24 ms instead of 250-270 ms. A column added to either table later
-- needs the same target (tests/api/planner_stats.rs checks).
DO $$
DECLARE
    t text;
    c text;
BEGIN
    FOREACH t IN ARRAY ARRAY['inbox', 'outbox'] LOOP
        FOR c IN
            SELECT attname FROM pg_attribute
             WHERE attrelid = t::regclass AND attnum > 0 AND NOT attisdropped
        LOOP
            EXECUTE format('ALTER TABLE %I ALTER COLUMN %I SET STATISTICS 10', t, c);
        END LOOP;
    END LOOP;
END
$$;

-- A Page's cool-down (Graph rate-limiting it, or a burst of server
-- failures), shared by the instances on one database: the instance that
-- started it records when it ends, by the database's clock, and the
-- others read it with their heartbeat, so N instances do not go on
-- hammering a Page one of them was told to leave alone. One row per Page;
-- an ended cool-down is overwritten by the next.
CREATE TABLE page_cooldowns (
    page_id TEXT PRIMARY KEY,
    until_ms BIGINT NOT NULL
);

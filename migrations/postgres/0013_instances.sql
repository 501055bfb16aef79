-- The instances sharing this database (Postgres only: a SQLite file has one),
-- each with the time it last said it was alive; each keeps 1/N of every
-- Page's send rate (workers/instances.rs).
CREATE TABLE instances (
    id          TEXT PRIMARY KEY,
    started_at  BIGINT NOT NULL,
    seen_at     BIGINT NOT NULL
);

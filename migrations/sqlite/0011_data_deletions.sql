-- Data-deletion requests (Meta's data-deletion callback, and
-- `lexbridge accounts delete`): one row per request, found by its
-- confirmation code, of which only the SHA-256 is kept. A row names nobody:
-- no Facebook user id, no account, no PSID; only how the request came, when
-- it was done, and how many rows of each kind were erased (JSON).
CREATE TABLE data_deletions (
    code_hash     TEXT PRIMARY KEY,
    source        TEXT NOT NULL,
    erased        TEXT NOT NULL,
    completed_at  INTEGER NOT NULL
);

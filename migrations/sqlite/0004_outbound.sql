-- Backend systems that may send messages; only the key's SHA-256 is kept.
CREATE TABLE api_keys (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT NOT NULL UNIQUE,
    key_hash      TEXT NOT NULL UNIQUE,
    created_at    INTEGER NOT NULL,
    revoked_at    INTEGER,
    last_used_at  INTEGER
);

-- Messages sent through the API: the id callers see, who sent them, and
-- until when a message held outside the 24-hour window may still go.
ALTER TABLE outbox ADD COLUMN public_id TEXT;
ALTER TABLE outbox ADD COLUMN api_key_id INTEGER;
ALTER TABLE outbox ADD COLUMN hold_until INTEGER;
CREATE UNIQUE INDEX outbox_public_id ON outbox (public_id);
CREATE INDEX outbox_held ON outbox (page_id, psid) WHERE state = 'held';
CREATE INDEX outbox_hold_expiry ON outbox (hold_until) WHERE state = 'held';

-- The first answer to each Idempotency-Key of each API key (kept 24 hours).
CREATE TABLE api_requests (
    api_key_id       INTEGER NOT NULL,
    idempotency_key  TEXT NOT NULL,
    request_hash     TEXT NOT NULL,
    status           INTEGER NOT NULL,
    answer           TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    PRIMARY KEY (api_key_id, idempotency_key)
);
CREATE INDEX api_requests_age ON api_requests (created_at);

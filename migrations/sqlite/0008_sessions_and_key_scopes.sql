-- Signed-in sessions of the login site. The cookie carries a random id; only
-- its SHA-256 is kept. A session ends at sign-out or unlink, after
-- SESSION_IDLE_TIMEOUT_MINUTES without a request, and SESSION_LIFETIME_HOURS
-- after sign-in, whichever comes first (`expires_at`, which the sweeper
-- uses to drop the record).
CREATE TABLE sessions (
    id_hash       TEXT PRIMARY KEY,
    account_id    TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_at    INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL
);
CREATE INDEX sessions_account ON sessions (account_id);
CREATE INDEX sessions_expiry ON sessions (expires_at);

-- What an API key may do: the Pages it may message (comma-separated Page
-- ids; NULL = every Page) and its requests per second (NULL = unlimited).
ALTER TABLE api_keys ADD COLUMN pages TEXT;
ALTER TABLE api_keys ADD COLUMN rate_per_second INTEGER;

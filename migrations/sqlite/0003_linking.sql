-- Account linking: single-use tokens (m.me ref links and Messenger
-- account-linking codes), reverse lookups already tried, and login states
-- already spent.
CREATE TABLE link_tokens (
    nonce       TEXT PRIMARY KEY,
    purpose     TEXT NOT NULL,
    account_id  TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER,
    used_psid   TEXT
);
CREATE INDEX link_tokens_expiry ON link_tokens (expires_at);

-- One ids_for_apps lookup per unknown PSID: a negative answer is remembered.
CREATE TABLE psid_lookups (
    page_id       TEXT NOT NULL,
    psid          TEXT NOT NULL,
    looked_up_at  INTEGER NOT NULL,
    account_id    TEXT,
    PRIMARY KEY (page_id, psid)
);

-- Login states already answered, so a replayed callback is refused.
CREATE TABLE login_states (
    state_hash  TEXT PRIMARY KEY,
    used_at     INTEGER NOT NULL
);
CREATE INDEX login_states_used ON login_states (used_at);

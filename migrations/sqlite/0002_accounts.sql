-- People who signed in on the login site, and the Messenger identities
-- (PSIDs) linked to them.
CREATE TABLE accounts (
    id                TEXT PRIMARY KEY,
    fb_uid            TEXT NOT NULL UNIQUE,
    name              TEXT,
    user_token        BLOB,
    token_expires_at  INTEGER,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);

CREATE TABLE links (
    page_id     TEXT NOT NULL,
    psid        TEXT NOT NULL,
    account_id  TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    source      TEXT NOT NULL,
    linked_at   INTEGER NOT NULL,
    PRIMARY KEY (page_id, psid)
);
CREATE INDEX links_account ON links (account_id);

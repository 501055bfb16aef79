-- Account linking that cannot be hijacked: a Messenger identity Meta does
-- not vouch for waits here until the account owner confirms it on the
-- website, after seeing its name and picture (Page-scoped profile).
CREATE TABLE pending_links (
    id            TEXT PRIMARY KEY,
    page_id       TEXT NOT NULL,
    psid          TEXT NOT NULL,
    account_id    TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    source        TEXT NOT NULL,
    name          TEXT,
    profile_pic   TEXT,
    -- Messenger's account-linking redirect, finished once the owner decides.
    redirect_uri  TEXT,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL
);
CREATE UNIQUE INDEX pending_links_one ON pending_links (page_id, psid, account_id);
CREATE INDEX pending_links_account ON pending_links (account_id);
CREATE INDEX pending_links_expiry ON pending_links (expires_at);

-- A person unlinked: the ids_for_apps reverse lookup never links this PSID
-- again; only a new login (or a confirmed pending link) does.
CREATE TABLE link_tombstones (
    page_id      TEXT NOT NULL,
    psid         TEXT NOT NULL,
    account_id   TEXT,
    how          TEXT NOT NULL,
    unlinked_at  BIGINT NOT NULL,
    PRIMARY KEY (page_id, psid)
);

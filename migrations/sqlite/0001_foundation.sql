-- Pages the service answers for; the token column is filled by account linking.
CREATE TABLE pages (
    page_id      TEXT PRIMARY KEY,
    name         TEXT,
    page_token   BLOB,
    updated_at   INTEGER NOT NULL
);

-- One row per person talking to a Page.
CREATE TABLE conversations (
    page_id          TEXT NOT NULL,
    psid             TEXT NOT NULL,
    last_inbound_at  INTEGER,
    nlu_state        TEXT,
    thread_owner     TEXT,
    updated_at       INTEGER NOT NULL,
    PRIMARY KEY (page_id, psid)
);

-- Every webhook event, committed before the webhook answers 200.
CREATE TABLE inbox (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    page_id          TEXT NOT NULL,
    psid             TEXT NOT NULL,
    kind             TEXT NOT NULL,
    standby          INTEGER NOT NULL DEFAULT 0,
    dedupe_key       TEXT NOT NULL UNIQUE,
    event            TEXT NOT NULL,
    state            TEXT NOT NULL DEFAULT 'pending',
    outcome          TEXT,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    locked_until     INTEGER,
    last_error       TEXT,
    received_at      INTEGER NOT NULL,
    processed_at     INTEGER
);
-- Claims walk the open rows in id order and stop after a batch.
CREATE INDEX inbox_claimable ON inbox (id) WHERE state IN ('pending', 'processing');
CREATE INDEX inbox_open ON inbox (page_id, psid, id) WHERE state IN ('pending', 'processing');

-- Every message to send, claimed by the outbox worker.
CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    page_id          TEXT NOT NULL,
    psid             TEXT NOT NULL,
    body             TEXT NOT NULL,
    messaging_type   TEXT NOT NULL,
    tag              TEXT,
    origin           TEXT NOT NULL,
    inbox_id         INTEGER,
    state            TEXT NOT NULL DEFAULT 'queued',
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    locked_until     INTEGER,
    error_code       INTEGER,
    error_subcode    INTEGER,
    error_message    TEXT,
    message_id       TEXT,
    created_at       INTEGER NOT NULL,
    sent_at          INTEGER
);
CREATE INDEX outbox_claimable ON outbox (id) WHERE state IN ('queued', 'sending');
CREATE INDEX outbox_open ON outbox (page_id, psid, id) WHERE state IN ('queued', 'sending');
CREATE INDEX outbox_message_id ON outbox (message_id);

-- Pages the service answers for; the token column is filled by account linking.
CREATE TABLE pages (
    page_id      TEXT PRIMARY KEY,
    name         TEXT,
    page_token   BYTEA,
    updated_at   BIGINT NOT NULL
);

-- One row per person talking to a Page.
CREATE TABLE conversations (
    page_id          TEXT NOT NULL,
    psid             TEXT NOT NULL,
    last_inbound_at  BIGINT,
    nlu_state        TEXT,
    thread_owner     TEXT,
    updated_at       BIGINT NOT NULL,
    PRIMARY KEY (page_id, psid)
);

-- Every webhook event, committed before the webhook answers 200.
CREATE TABLE inbox (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    page_id          TEXT NOT NULL,
    psid             TEXT NOT NULL,
    kind             TEXT NOT NULL,
    standby          BIGINT NOT NULL DEFAULT 0,
    dedupe_key       TEXT NOT NULL UNIQUE,
    event            TEXT NOT NULL,
    state            TEXT NOT NULL DEFAULT 'pending',
    outcome          TEXT,
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    locked_until     BIGINT,
    last_error       TEXT,
    received_at      BIGINT NOT NULL,
    processed_at     BIGINT
);
-- Claims walk the open rows in id order and stop after a batch.
CREATE INDEX inbox_claimable ON inbox (id) WHERE state IN ('pending', 'processing');
CREATE INDEX inbox_open ON inbox (page_id, psid, id) WHERE state IN ('pending', 'processing');

-- Every message to send, claimed by the outbox worker.
CREATE TABLE outbox (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    page_id          TEXT NOT NULL,
    psid             TEXT NOT NULL,
    body             TEXT NOT NULL,
    messaging_type   TEXT NOT NULL,
    tag              TEXT,
    origin           TEXT NOT NULL,
    inbox_id         BIGINT,
    state            TEXT NOT NULL DEFAULT 'queued',
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    locked_until     BIGINT,
    error_code       BIGINT,
    error_subcode    BIGINT,
    error_message    TEXT,
    message_id       TEXT,
    created_at       BIGINT NOT NULL,
    sent_at          BIGINT
);
CREATE INDEX outbox_claimable ON outbox (id) WHERE state IN ('queued', 'sending');
CREATE INDEX outbox_open ON outbox (page_id, psid, id) WHERE state IN ('queued', 'sending');
CREATE INDEX outbox_message_id ON outbox (message_id);

-- Retries are bounded by time, not by a count of attempts. A row's budget
-- runs from when it became sendable: its arrival (inbox.received_at) or
-- queueing (outbox.created_at) unless `retry_since` says later (a held
-- message released, or an operator's `inbox retry` / `outbox retry`).
ALTER TABLE inbox ADD COLUMN retry_since BIGINT;
ALTER TABLE outbox ADD COLUMN retry_since BIGINT;

-- An API message's rule for a closed messaging window, re-applied before
-- every attempt: 'reject' or 'hold' (NULL for replies), and whether it may
-- go as a human agent's reply (tag HUMAN_AGENT).
ALTER TABLE outbox ADD COLUMN outside_window TEXT;
ALTER TABLE outbox ADD COLUMN human_agent BIGINT NOT NULL DEFAULT 0;

-- `lexbridge outbox failed` lists these without reading the sent history.
CREATE INDEX outbox_failed ON outbox (id) WHERE state = 'failed';

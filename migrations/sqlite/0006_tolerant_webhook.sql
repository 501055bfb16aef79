-- The webhook's `object` of each stored event: `page` for Messenger; other
-- objects (`instagram`…) are kept for the code that will handle them.
ALTER TABLE inbox ADD COLUMN object TEXT NOT NULL DEFAULT 'page';

-- Pages whose sends wait: one row per reason (`policy_block`, …), each
-- removed only by its own event. The outbox claim skips a Page with any
-- row here; the table stays tiny (paused Pages only).
CREATE TABLE page_pauses (
    page_id    TEXT NOT NULL,
    reason     TEXT NOT NULL,
    detail     TEXT,
    paused_at  INTEGER NOT NULL,
    PRIMARY KEY (page_id, reason)
);

-- Delivery and read watermarks move a person's sent messages: only rows
-- still waiting for a receipt are indexed, so a receipt reads its own rows.
CREATE INDEX outbox_receipts ON outbox (page_id, psid, sent_at)
    WHERE state IN ('sent', 'delivered');

-- `/metrics` counts dead inbox rows without reading the done ones.
CREATE INDEX inbox_dead ON inbox (id) WHERE state = 'dead';

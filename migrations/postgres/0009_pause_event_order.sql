-- The time of the latest event applied for each pause reason of a Page
-- (Meta's event `timestamp`, ms), kept after the reason is cleared: a
-- `block` redelivered after its `unblock` is older than the unblock and
-- is ignored, rather than pausing the Page for good. One row per Page and
-- reason ever paused by an event: the table stays tiny.
CREATE TABLE page_pause_events (
    page_id   TEXT NOT NULL,
    reason    TEXT NOT NULL,
    event_at  BIGINT NOT NULL,
    PRIMARY KEY (page_id, reason)
);

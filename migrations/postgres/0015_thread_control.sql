-- Conversation routing: `thread_owner` (in the table since 0001, unused
-- until now) names the app another than this one that owns the thread
-- (NULL: this app), and `thread_since` says since when, for taking an idle
-- thread back. The index holds only threads another app owns.
ALTER TABLE conversations ADD COLUMN thread_since BIGINT;
CREATE INDEX conversations_thread_elsewhere ON conversations (thread_since)
    WHERE thread_owner IS NOT NULL;

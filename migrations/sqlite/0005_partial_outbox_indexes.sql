-- Most outbox rows are replies: no public id, and no message id until sent.
-- Indexing only the rows that have one keeps every reply's insert out of
-- these two indexes (fewer pages written per commit); lookups by equality
-- still use them.
DROP INDEX outbox_public_id;
CREATE UNIQUE INDEX outbox_public_id ON outbox (public_id) WHERE public_id IS NOT NULL;
DROP INDEX outbox_message_id;
CREATE INDEX outbox_message_id ON outbox (message_id) WHERE message_id IS NOT NULL;

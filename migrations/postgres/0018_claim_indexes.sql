-- A claim looks for two kinds of rows: those waiting their turn and those
-- whose holder's lease ran out. One index over both kept every row in hand
-- in the way of every claim: with a worker holding its 512 rows (an
-- outbox waiting for its Page's send rate), each claim stepped over all of
-- them before the first row it could take. Waiting rows are now found by
-- id, rows in hand by the time their lease ends.
DROP INDEX inbox_claimable;
DROP INDEX outbox_claimable;
CREATE INDEX inbox_waiting ON inbox (id) WHERE state = 'pending';
CREATE INDEX inbox_leases ON inbox (locked_until) WHERE state = 'processing';
CREATE INDEX outbox_waiting ON outbox (id) WHERE state = 'queued';
CREATE INDEX outbox_leases ON outbox (locked_until) WHERE state = 'sending';

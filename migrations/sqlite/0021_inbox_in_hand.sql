-- The inbox claim on SQLite walks the waiting rows in id order and
-- remembers the conversations it has passed (store/inbox_walk.rs), so it
-- needs only the rows in hand by conversation. `inbox_open` held every
-- waiting row by conversation: each stored event landed on a page of its
-- own there, most of what a commit wrote under a burst's backlog.
DROP INDEX inbox_open;
CREATE INDEX inbox_in_hand ON inbox (page_id, psid, id) WHERE state = 'processing';

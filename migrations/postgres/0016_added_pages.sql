-- Several Pages in one deployment (`lexbridge page add`): a Page added by an
-- operator has `added_at`, its own token (encrypted; sent with before a
-- Page admin's login token in `page_token`), and optionally its own Lex
-- bot alias or local bot and Send API rate. `page remove` clears them.
ALTER TABLE pages ADD COLUMN added_at BIGINT;
ALTER TABLE pages ADD COLUMN added_token BYTEA;
ALTER TABLE pages ADD COLUMN lex_bot_alias_id TEXT;
ALTER TABLE pages ADD COLUMN local_bot TEXT;
ALTER TABLE pages ADD COLUMN send_rate BIGINT;

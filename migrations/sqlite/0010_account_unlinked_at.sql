-- When an account last unlinked everything: until its next login, no
-- reverse lookup (ids_for_apps) links any Messenger identity to it.
ALTER TABLE accounts ADD COLUMN unlinked_at INTEGER;

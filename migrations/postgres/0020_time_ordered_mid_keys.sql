-- A message's or postback's dedupe key now leads with the event's own
-- timestamp ('mid:' || 13 digits || ':' || mid; see `mid_key` in
-- src/facebook/envelope.rs): mids are random, so keyed by the mid alone
-- every stored event landed on its own page of the unique index. The rows
-- of the last 7 days, those a redelivery could still name, take the new
-- key, so an event stored before the upgrade is still known again; older
-- rows keep theirs until retention prunes them. A row whose event has no
-- usable timestamp keeps its key (so does `mid_key`).

-- The event's timestamp, or NULL where it is not a whole number in
-- 0..10^13 or the text is not JSON Postgres takes (a `\u0000` escape).
CREATE FUNCTION pg_temp.lexbridge_event_time(event TEXT) RETURNS BIGINT AS $$
DECLARE
    ts TEXT;
BEGIN
    IF jsonb_typeof(event::jsonb -> 'timestamp') <> 'number' THEN
        RETURN NULL;
    END IF;
    ts := event::jsonb ->> 'timestamp';
    IF ts !~ '^[0-9]{1,13}$' THEN
        RETURN NULL;
    END IF;
    RETURN ts::BIGINT;
EXCEPTION WHEN others THEN
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

UPDATE inbox
   SET dedupe_key =
         substr(dedupe_key, 1, strpos(dedupe_key, t.tag) + length(t.tag) - 1)
         || lpad(t.ts::TEXT, 13, '0') || ':'
         || substr(dedupe_key, strpos(dedupe_key, t.tag) + length(t.tag))
  FROM (SELECT i.id,
               CASE WHEN i.kind = 'postback' THEN 'postback:' ELSE 'mid:' END AS tag,
               pg_temp.lexbridge_event_time(i.event) AS ts
          FROM inbox i
         WHERE i.kind IN ('message', 'echo', 'postback')
           AND i.received_at >= (EXTRACT(EPOCH FROM now())::BIGINT - 7 * 86400) * 1000) t
 WHERE inbox.id = t.id
   AND t.ts IS NOT NULL
   AND strpos(inbox.dedupe_key, t.tag) > 0;

DROP FUNCTION pg_temp.lexbridge_event_time(TEXT);

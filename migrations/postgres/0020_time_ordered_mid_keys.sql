-- A message's or postback's dedupe key now leads with the event's own
-- timestamp: 'mid@' || 13 digits || ':' || mid, where it was 'mid:' || mid
-- ('postback@…' and 'postback:…' alike; another object's keys behind
-- 'object|'; see `mid_key` in src/facebook/envelope.rs). Mids are random,
-- so keyed by the mid alone every stored event landed on its own page of
-- the unique index. The rows of the last 7 days, those a redelivery could
-- still name, take the new key, so an event stored before the upgrade is
-- still known again; older rows keep theirs until retention prunes them.
-- Only a key that is exactly the old mid key of the row's own event is
-- rewritten (a postback without a mid is keyed by sender and time, and
-- keeps that key), and only where the event has a whole timestamp in
-- 0..10^13 (as `mid_key` requires).

-- The stored event as jsonb, or NULL where Postgres will not take it. A
-- `\u0000` escape (which jsonb refuses) is read as U+FFFD: the timestamp
-- is unchanged, and a mid that held one no longer matches its key, so its
-- row keeps it. In the migrations' own schema, like the tables (no
-- temporary objects, which need a privilege of their own).
CREATE FUNCTION lexbridge_0020_event(event TEXT) RETURNS JSONB AS $$
BEGIN
    RETURN replace(event, chr(92) || 'u0000', chr(92) || 'ufffd')::JSONB;
EXCEPTION WHEN others THEN
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

UPDATE inbox
   SET dedupe_key = t.scope || t.tag || '@' || lpad(t.ts, 13, '0') || ':' || t.mid
  FROM (SELECT s.id, s.scope, s.tag,
               CASE WHEN jsonb_typeof(s.e -> 'timestamp') = 'number'
                    THEN s.e ->> 'timestamp' END AS ts,
               CASE WHEN jsonb_typeof(s.e #> ARRAY[s.part, 'mid']) = 'string'
                    THEN s.e #>> ARRAY[s.part, 'mid'] END AS mid
          FROM (SELECT i.id,
                       CASE WHEN i.object = 'page' THEN '' ELSE i.object || '|' END AS scope,
                       CASE WHEN i.kind = 'postback' THEN 'postback' ELSE 'mid' END AS tag,
                       CASE WHEN i.kind = 'postback' THEN 'postback' ELSE 'message' END AS part,
                       lexbridge_0020_event(i.event) AS e
                  FROM inbox i
                 WHERE i.kind IN ('message', 'echo', 'postback')
                   AND i.received_at >= (EXTRACT(EPOCH FROM now())::BIGINT - 7 * 86400) * 1000) s) t
 WHERE inbox.id = t.id
   AND t.ts ~ '^[0-9]{1,13}$'
   AND inbox.dedupe_key = t.scope || t.tag || ':' || t.mid;

DROP FUNCTION lexbridge_0020_event(TEXT);

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
-- Every JSON function is behind `json_valid` (the planner may weigh the
-- conditions in any order, and a malformed text is an error).
WITH recent AS (
    SELECT id, dedupe_key, event, json_valid(event) AS json,
           CASE object WHEN 'page' THEN '' ELSE object || '|' END AS scope,
           CASE kind WHEN 'postback' THEN 'postback' ELSE 'mid' END AS tag,
           CASE kind WHEN 'postback' THEN '$.postback.mid' ELSE '$.message.mid' END AS mid_path
      FROM inbox
     WHERE kind IN ('message', 'echo', 'postback')
       AND received_at >= (CAST(strftime('%s', 'now') AS INTEGER) - 7 * 86400) * 1000
),
keyed AS (
    SELECT id, dedupe_key, scope, tag,
           CASE WHEN json THEN json_type(event, '$.timestamp') END AS ts_type,
           CASE WHEN json THEN json_extract(event, '$.timestamp') END AS ts,
           CASE WHEN json THEN json_type(event, mid_path) END AS mid_type,
           CASE WHEN json THEN json_extract(event, mid_path) END AS mid
      FROM recent
)
UPDATE OR IGNORE inbox
   SET dedupe_key = keyed.scope || keyed.tag || '@' || printf('%013d', keyed.ts) || ':' || keyed.mid
  FROM keyed
 WHERE inbox.id = keyed.id
   AND keyed.ts_type = 'integer'
   AND keyed.ts BETWEEN 0 AND 9999999999999
   AND keyed.mid_type = 'text'
   AND keyed.dedupe_key = keyed.scope || keyed.tag || ':' || keyed.mid;

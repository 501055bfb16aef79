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
UPDATE OR IGNORE inbox
   SET dedupe_key = (CASE object WHEN 'page' THEN '' ELSE object || '|' END)
         || 'mid@' || printf('%013d', json_extract(event, '$.timestamp'))
         || ':' || json_extract(event, '$.message.mid')
 WHERE kind IN ('message', 'echo')
   AND received_at >= (CAST(strftime('%s', 'now') AS INTEGER) - 7 * 86400) * 1000
   AND (CASE WHEN json_valid(event) THEN
          json_type(event, '$.timestamp') = 'integer'
          AND json_extract(event, '$.timestamp') BETWEEN 0 AND 9999999999999
          AND json_type(event, '$.message.mid') = 'text'
          AND dedupe_key = (CASE object WHEN 'page' THEN '' ELSE object || '|' END)
                           || 'mid:' || json_extract(event, '$.message.mid')
        END);

UPDATE OR IGNORE inbox
   SET dedupe_key = (CASE object WHEN 'page' THEN '' ELSE object || '|' END)
         || 'postback@' || printf('%013d', json_extract(event, '$.timestamp'))
         || ':' || json_extract(event, '$.postback.mid')
 WHERE kind = 'postback'
   AND received_at >= (CAST(strftime('%s', 'now') AS INTEGER) - 7 * 86400) * 1000
   AND (CASE WHEN json_valid(event) THEN
          json_type(event, '$.timestamp') = 'integer'
          AND json_extract(event, '$.timestamp') BETWEEN 0 AND 9999999999999
          AND json_type(event, '$.postback.mid') = 'text'
          AND dedupe_key = (CASE object WHEN 'page' THEN '' ELSE object || '|' END)
                           || 'postback:' || json_extract(event, '$.postback.mid')
        END);

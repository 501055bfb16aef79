-- A message's or postback's dedupe key now leads with the event's own
-- timestamp ('mid:' || 13 digits || ':' || mid; see `mid_key` in
-- src/facebook/envelope.rs): mids are random, so keyed by the mid alone
-- every stored event landed on its own page of the unique index. The rows
-- of the last 7 days, those a redelivery could still name, take the new
-- key, so an event stored before the upgrade is still known again; older
-- rows keep theirs until retention prunes them. A row whose event has no
-- usable timestamp keeps its key (so does `mid_key`).
UPDATE OR IGNORE inbox
   SET dedupe_key =
         substr(dedupe_key, 1, instr(dedupe_key, 'mid:') + 3)
         || printf('%013d', json_extract(event, '$.timestamp')) || ':'
         || substr(dedupe_key, instr(dedupe_key, 'mid:') + 4)
 WHERE kind IN ('message', 'echo')
   AND received_at >= (CAST(strftime('%s', 'now') AS INTEGER) - 7 * 86400) * 1000
   AND instr(dedupe_key, 'mid:') > 0
   AND (CASE WHEN json_valid(event) THEN json_type(event, '$.timestamp') END) = 'integer'
   AND (CASE WHEN json_valid(event) THEN json_extract(event, '$.timestamp') END)
       BETWEEN 0 AND 9999999999999;

UPDATE OR IGNORE inbox
   SET dedupe_key =
         substr(dedupe_key, 1, instr(dedupe_key, 'postback:') + 8)
         || printf('%013d', json_extract(event, '$.timestamp')) || ':'
         || substr(dedupe_key, instr(dedupe_key, 'postback:') + 9)
 WHERE kind = 'postback'
   AND received_at >= (CAST(strftime('%s', 'now') AS INTEGER) - 7 * 86400) * 1000
   AND instr(dedupe_key, 'postback:') > 0
   AND (CASE WHEN json_valid(event) THEN json_type(event, '$.timestamp') END) = 'integer'
   AND (CASE WHEN json_valid(event) THEN json_extract(event, '$.timestamp') END)
       BETWEEN 0 AND 9999999999999;

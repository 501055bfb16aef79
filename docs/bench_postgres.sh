#!/bin/bash
# docs/bench_postgres.sh [EVENTS] [INSTANCES]: `lexbridge bench webhook` against INSTANCES
# `lexbridge serve` processes (ports 5011, 5012, ...) sharing a fresh Postgres database, their
# answers going to ../shared/bench/fakegraph.js. Run from the project root after
# `cargo build --release`. PG: the server (default postgres://postgres@127.0.0.1:5432).
# KEEP=1 leaves the servers and the database running. PRELOAD=N first stores N finished events
# (inbox rows done, their replies sent; keyed by random mids in the form before migration 0020,
# as a database grown on Meta's traffic), then vacuums, analyzes and checkpoints, as a database
# after a quiet spell (autovacuum and the checkpointer have caught up). BENCH_ARGS: more options
# for `bench webhook` (e.g. --random-mids, Meta-like mids instead of numbered ones). Last, the
# server's WAL flushes, records and bytes over the run (from pg_stat_wal).
set -u
PG=${PG:-postgres://postgres@127.0.0.1:5432}
BIN=${BIN:-./target/release/lexbridge}
# SERVER: the binary the servers run (default BIN), to measure another build with this client.
SERVER=${SERVER:-$BIN}
EVENTS=${1:-50000}; N=${2:-1}
DB=lb_bench_$$
psql "$PG/postgres" -qc "CREATE DATABASE $DB"
node ../shared/bench/fakegraph.js >/dev/null 2>&1 & G=$!
PIDS=(); ADDRS=()
for i in $(seq 1 $N); do
  port=$((5010 + i))
  DATABASE_URL=$PG/$DB LEXBRIDGE_BIND=127.0.0.1:$port FACEBOOK_APP_ID=1234567890 \
    FACEBOOK_APP_SECRET=s3cr3t-app-secret FACEBOOK_PAGE_ID=111222333444555 FACEBOOK_PAGE_ACCESS_TOKEN=EAAfake \
    MESSENGER_VERIFY_TOKEN=verify-me GRAPH_API_URL=http://127.0.0.1:5090 SEND_RATE_PER_PAGE=1000000 \
    TOKEN_ENCRYPTION_KEY=YmVuY2gtdG9rZW4ta2V5LTMyLWJ5dGVzLWxvbmchISE= \
    SESSION_KEY=YmVuY2gtc2Vzc2lvbi1rZXktNjQtYnl0ZXMtbG9uZy4uLi4uLi4uLi4uLi4uLi4uLi4uLi4uLi4uLi4uLi4uLg== \
    RUST_LOG=warn "$SERVER" serve > /dev/null 2>&1 &
  PIDS+=($!); ADDRS+=(--addr 127.0.0.1:$port)
  for _ in $(seq 1 100); do curl -sf -o /dev/null http://127.0.0.1:$port/health && break; sleep 0.1; done
done
if [ -n "${PRELOAD:-}" ]; then
  psql "$PG/$DB" -q <<SQL
INSERT INTO inbox (page_id, psid, kind, dedupe_key, event, state, next_attempt_at, received_at, processed_at)
  SELECT '111222333444555', 'old' || (g % 20000), 'message', 'mid:m_' || md5(g::text) || md5((g + 7)::text), '{}', 'done', 0, 0, 0
  FROM generate_series(1, $PRELOAD) g;
INSERT INTO outbox (page_id, psid, body, messaging_type, origin, state, next_attempt_at, created_at, sent_at)
  SELECT '111222333444555', 'old' || (g % 20000), '{}', 'RESPONSE', 'reply', 'sent', 0, 0, 0
  FROM generate_series(1, $PRELOAD) g;
VACUUM (ANALYZE) inbox; VACUUM (ANALYZE) outbox; CHECKPOINT;
SQL
fi
# The server's WAL counters around the run (pg_stat_wal covers the whole server, so run nothing
# else against it meanwhile): how many times the log was flushed, what was written.
wal() { psql "$PG/postgres" -tAc "SELECT wal_sync, wal_records, wal_bytes FROM pg_stat_wal"; }
WAL_BEFORE=$(wal)
"$BIN" bench webhook "${ADDRS[@]}" --app-secret s3cr3t-app-secret --page-id 111222333444555 --events "$EVENTS" --concurrency 64 ${BENCH_ARGS:-}
sleep ${SETTLE:-0}
echo "Graph stand-in: $(curl -s http://127.0.0.1:5090/count)"
IFS='|' read -r s0 r0 b0 <<< "$WAL_BEFORE"; IFS='|' read -r s1 r1 b1 <<< "$(wal)"
echo "Postgres WAL: $((s1 - s0)) flushes, $((r1 - r0)) records, $(( (b1 - b0) / 1048576 )) MB (pg_stat_wal, the whole server)"
[ -n "${KEEP:-}" ] && { echo "server pids ${PIDS[*]} db $DB"; exit 0; }
for p in "${PIDS[@]}"; do kill $p; wait $p 2>/dev/null; done; kill $G; wait $G 2>/dev/null
psql "$PG/postgres" -qc "DROP DATABASE $DB"

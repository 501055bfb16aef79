#!/bin/bash
# docs/cold_start.sh DATABASE_URL: five times, the time from starting `lexbridge serve` on an
# existing database to its first 200 from /readyz (polled every 5 ms). Run from the project root
# after `cargo build --release`, with ../shared/bench/fakegraph.js on 5090 for the token check.
BIN=${BIN:-./target/release/lexbridge}
for i in 1 2 3 4 5; do
  t0=$(date +%s%N)
  DATABASE_URL="$1" LEXBRIDGE_BIND=127.0.0.1:5021 FACEBOOK_APP_ID=1234567890 \
  FACEBOOK_APP_SECRET=s3cr3t-app-secret FACEBOOK_PAGE_ID=111222333444555 FACEBOOK_PAGE_ACCESS_TOKEN=EAAfake \
  MESSENGER_VERIFY_TOKEN=verify-me GRAPH_API_URL=http://127.0.0.1:5090 \
  TOKEN_ENCRYPTION_KEY=YmVuY2gtdG9rZW4ta2V5LTMyLWJ5dGVzLWxvbmchISE= \
  SESSION_KEY=YmVuY2gtc2Vzc2lvbi1rZXktNjQtYnl0ZXMtbG9uZy4uLi4uLi4uLi4uLi4uLi4uLi4uLi4uLi4uLi4uLi4uLg== \
  RUST_LOG=error "$BIN" serve > /dev/null 2>&1 & P=$!
  while :; do code=$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:5021/readyz); [ "$code" = 200 ] && break; [ $(( ($(date +%s%N)-t0)/1000000 )) -gt 20000 ] && { echo "not ready: $code"; break; }; sleep 0.005; done
  t1=$(date +%s%N); echo "ready in $(( (t1-t0)/1000000 )) ms"
  kill $P; wait $P 2>/dev/null
done

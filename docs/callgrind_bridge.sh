#!/bin/bash
# docs/callgrind_bridge.sh: instructions the server executes per bridged message, counted by
# callgrind (valgrind), so two builds compare exactly whatever the machine's speed that hour.
# `lexbridge bench bridge` runs at 20 messages/s for 45 s against a server under callgrind;
# the counts are zeroed after 15 s and dumped 20 s later (some 400 messages). Run from the
# project root after `cargo build --release`; SERVER: the binary to measure (default this
# build's). Prints the total per message and the group committer's share (`apply_held`).
# Under valgrind SHA-256 runs without the CPU's SHA instructions and memset/memcpy count
# byte by byte, so those functions weigh more here than they do natively.
set -eu
BIN=${BIN:-./target/release/lexbridge}
SERVER=$(realpath "${SERVER:-$BIN}")
OUT=$(mktemp -d)
RATE=20; WINDOW=20   # messages a second; seconds counted, after 15 s of warm-up
cat > "$OUT/server.sh" <<WRAP
#!/bin/bash
exec valgrind --tool=callgrind --callgrind-out-file=$OUT/cg.%p "$SERVER" "\$@"
WRAP
chmod +x "$OUT/server.sh"
LEXBRIDGE_BENCH_SERVER="$OUT/server.sh" "$BIN" bench bridge --rate $RATE --seconds $((WINDOW + 25)) > "$OUT/bench.log" 2>&1 &
B=$!
P=
for _ in $(seq 1 60); do
  sleep 1
  P=$(pgrep -f "callgrind-out-file=$OUT" | head -n1 || true)
  [ -n "$P" ] && break
done
[ -n "$P" ] || { echo "the server did not start under valgrind" >&2; cat "$OUT/bench.log" >&2; exit 1; }
sleep 15; callgrind_control -z "$P" >/dev/null
sleep $WINDOW; callgrind_control -d "$P" >/dev/null
wait $B || true
F=$(ls -S "$OUT"/cg.*.* | head -n1)
callgrind_annotate --inclusive=yes --threshold=100 "$F" 2>/dev/null |
  awk -v f="$F" -v n=$((RATE * WINDOW)) '/PROGRAM TOTALS/ { gsub(",", "", $1); t = $1 }
       /run::apply_held::\{\{closure\}\} / && !c { gsub(",", "", $1); c = $1 }
       END { printf "%.2f M instructions a message, the committer %.2f M (%d messages; %s)\n", t / n / 1e6, c / n / 1e6, n, f }'
grep -E "answered" "$OUT/bench.log"

#!/usr/bin/env bash
# Load test of OCPI real-time authorization on PostgreSQL with wrk as the load generator (the
# built-in client of `emsp bench authorize` shares the machine's cores with the server; wrk costs
# far less per request).
#
#   bash infra/load/authorize.sh [TOKENS] [DURATION_S] [CONNECTIONS] [POSTGRES_URL]
set -euo pipefail
cd "$(dirname "$0")/../.."
tokens=${1:-100000}
duration=${2:-20}
connections=${3:-32}
database=${4:-postgres://postgres@127.0.0.1:5432/test}
cargo build --release --bin emsp
emsp=${CARGO_TARGET_DIR:-target}/release/emsp
if ! command -v wrk >/dev/null; then
    echo "wrk not found: using emsp's own load client"
    exec "$emsp" bench authorize --tokens "$tokens" --duration "$duration" --concurrency "$connections" --database-url "$database"
fi

port=18182
log=$(mktemp)
"$emsp" bench authorize --serve --tokens "$tokens" --database-url "$database" --listen "127.0.0.1:$port" >"$log" 2>&1 &
server=$!
trap 'kill -INT $server 2>/dev/null; wait $server 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 1 600); do
    grep -q "Ctrl-C stops" "$log" && break
    kill -0 $server 2>/dev/null || { cat "$log"; exit 1; }
    sleep 1
done
authorization=$(sed -n 's/.*header "Authorization: \(Token [^"]*\)".*/\1/p' "$log" | head -1)
# Warm-up (connections, caches), then the measured run.
wrk -t2 -c"$connections" -d3s -s infra/load/authorize.lua "http://127.0.0.1:$port" -- "$authorization" "$tokens" >/dev/null
wrk -t2 -c"$connections" -d"${duration}s" --latency -s infra/load/authorize.lua "http://127.0.0.1:$port" -- "$authorization" "$tokens"

#!/usr/bin/env bash
# Load test of the driver API's near-me query against a server whose search index holds a
# generated dataset (default 1,000,000 EVSEs around real charger positions).
#
#   bash infra/load/near-me.sh [EVSES] [DURATION_S] [CONNECTIONS] [price]
#
# With `price` as the fourth argument the query is sorted by PRICE (20 kWh reference session).
# With wrk installed (`apt-get install wrk`) the load comes from wrk (threads 2) against
# `emsp bench api --serve`; otherwise from the built-in client of `emsp bench api`.
set -euo pipefail
cd "$(dirname "$0")/../.."
evses=${1:-1000000}
duration=${2:-20}
connections=${3:-64}
price=()
script=infra/load/near-me.lua
if [ "${4:-}" = "price" ]; then
    price=(--price)
    script=infra/load/near-me-price.lua
fi
cargo build --release --bin emsp
emsp=${CARGO_TARGET_DIR:-target}/release/emsp

if ! command -v wrk >/dev/null; then
    echo "wrk not found: using emsp's own load client"
    exec "$emsp" bench api --evses "$evses" --duration "$duration" --concurrency "$connections" "${price[@]}"
fi

port=18181
"$emsp" bench api --serve --evses "$evses" --listen "127.0.0.1:$port" "${price[@]}" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' EXIT
for _ in $(seq 1 600); do
    if curl -sf "http://127.0.0.1:$port/ready" >/dev/null 2>&1 && \
       curl -s "http://127.0.0.1:$port/metrics" | grep -q "emsp_search_index_evses [1-9]"; then
        break
    fi
    sleep 1
done
wrk -t2 -c"$connections" -d"${duration}s" --latency -s "$script" "http://127.0.0.1:$port/graphql"

#!/usr/bin/env bash
# examples/kv beside a real redis-server under redis-benchmark, on the same
# machine, in the same run:
#
#   benches/kv_vs_redis.sh            # -n 200000 -c 50 -P 16 -t set,get
#   N=50000 benches/kv_vs_redis.sh    # shorter
#
# Needs redis-server and redis-benchmark (Debian: redis-server, redis-tools).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-200000}
for tool in redis-server redis-benchmark; do
  command -v "$tool" >/dev/null || { echo "$tool not installed (apt-get install redis-server redis-tools)"; exit 1; }
done
cargo build --release --quiet --example kv

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

bench() { # name port
  redis-benchmark -p "$2" -q -n "$N" -c 50 -P 16 -t set,get 2>&1 | tr '\r' '\n' \
    | grep 'requests per second' | sed "s/^/$1 /"
}

port=$(free_port)
redis-server --port "$port" --save '' --appendonly no --daemonize no >/dev/null &
pids+=($!)
port2=$(free_port)
RUST_LOG=warn target/release/examples/kv "127.0.0.1:$port2" >/dev/null &
pids+=($!)
sleep 1
echo "redis-benchmark -q -n $N -c 50 -P 16 -t set,get ($(redis-server --version | grep -o 'v=[0-9.]*'))"
bench "redis-server" "$port"
bench "fibra kv    " "$port2"

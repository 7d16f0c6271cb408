#!/usr/bin/env bash
# What one request costs each side, for fibra and its peers: system calls
# (all, epoll_wait, recvfrom), CPU time and context switches per request
# of the server and of the load generator, counted by `perf stat` while
# the load runs. These counts do not depend on the machine's load the way
# throughput does, so they show where a throughput gap comes from.
#
#   benches/io_costs.sh            # examples/http and hyper under wrk -t1 -c64,
#                                  # the echo servers under echo_client
#   SECS=3 benches/io_costs.sh     # load duration (default 4)
#
# Needs perf (apt-get install linux-perf; perf_event_paranoid <= 1 or
# root), wrk, and benches/compare built with --features net.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${SECS:-4}
command -v perf >/dev/null || { echo "perf not installed"; exit 1; }
command -v wrk >/dev/null || { echo "wrk not installed (apt-get install wrk)"; exit 1; }
cargo build --release --quiet --example http
(cd benches/compare && cargo build --release --quiet --features net \
  --bin http_server_tokio --bin echo_server_fibra --bin echo_server_tokio --bin echo_client)
source benches/lib.sh
B=benches/compare/target/release
OUT=$(mktemp -d)
EVENTS=raw_syscalls:sys_enter,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_recvfrom,task-clock,context-switches

# measure LABEL KIND COMMAND...: the server COMMAND (address last) under
# the load of KIND (http or echo); prints per-request costs.
measure() {
  local label=$1 kind=$2; shift 2
  start_server /dev/null "$@"
  local addr=127.0.0.1:$SERVER_PORT
  perf stat -x, -e "$EVENTS" -p "$SERVER_PID" -o "$OUT/srv" -- sleep "$SECS" &
  local stat=$!
  local n
  if [ "$kind" = http ]; then
    perf stat -x, -e "$EVENTS" -o "$OUT/cl" \
      wrk -t1 -c64 -d"${SECS}s" "http://$addr${URL_PATH:-/}" >"$OUT/load" 2>&1
    n=$(awk -v s="$SECS" '/Requests\/sec/ {print $2 * s}' "$OUT/load")
  else
    perf stat -x, -e "$EVENTS" -o "$OUT/cl" \
      "$B/echo_client" -secs="$SECS" -conns=64 -size=64 -addr="$addr" >"$OUT/load" 2>&1
    n=$(grep -o 'value=[0-9.]*' "$OUT/load" | cut -d= -f2 | awk -v s="$SECS" '{print $1 * s}')
  fi
  wait "$stat"
  stop_servers
  printf '%-24s %9.0f per s ' "$label" "$(echo "$n $SECS" | awk '{print $1 / $2}')"
  for side in srv cl; do
    awk -F, -v n="$n" -v side="$side" '/^[0-9]/ {
        v = $1 / n; if ($3 ~ /task-clock/) v *= 1000
        split($3, a, ":"); name = a[length(a)]; sub(/^sys_enter_/, "", name)
        out = out sprintf(" %s=%.2f", name, v)
      } END { printf " | %s%s", side, out }' "$OUT/$side"
  done
  echo
}
http_fibra() { FIBRA_WORKERS=2 RUST_LOG=warn exec target/release/examples/http "$1"; }
http_hyper() { exec "$B/http_server_tokio" -workers=2 -addr="$1"; }
echo_fibra() { exec "$B/echo_server_fibra" -workers=2 -addr="$1"; }
echo_tokio() { exec "$B/echo_server_tokio" -workers=2 -addr="$1"; }

echo "per request: system calls, epoll_wait, recvfrom, CPU (task-clock, us), context switches;"
echo "srv = the server, cl = the load (wrk -t1 -c64, or echo_client with 64 connections); load average $(cut -d' ' -f1 /proc/loadavg)"
URL_PATH=/plaintext measure "fibra examples/http" http http_fibra
measure "hyper 1 on tokio" http http_hyper
measure "fibra echo" echo echo_fibra
measure "tokio echo" echo echo_tokio

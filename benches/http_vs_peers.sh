#!/usr/bin/env bash
# examples/http beside hyper-on-tokio and Go net/http under wrk, on the same
# machine, in the same run (each server with 2 worker threads / GOMAXPROCS=2):
#
#   benches/http_vs_peers.sh             # wrk -t1 -c64 -d10s, plaintext
#   SECS=3 benches/http_vs_peers.sh      # shorter
#
# The peers are benches/compare's http_server_tokio (hyper 1) and its Go
# program (-q=http_server); benches/compare's own fibra program is a minimal
# server without Date/Server headers, listed for reference.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${SECS:-10}
command -v wrk >/dev/null || { echo "wrk not installed (apt-get install wrk)"; exit 1; }
cargo build --release --quiet --example http
(cd benches/compare && cargo build --release --quiet --features net \
  --bin http_server_tokio --bin http_server_fibra)
have_go=0
for g in "${GO:-}" /usr/lib/go-1.2[3-9]/bin/go "$(command -v go || true)"; do
  [ -x "$g" ] || continue
  (cd benches/compare/go && "$g" build -o ../target/compare-go . 2>/dev/null) && { have_go=1; break; }
done
[ "$have_go" = 1 ] || echo "no Go >= 1.22 found (set GO=/path/to/go): the Go row is left out"

source benches/lib.sh
run() { # label url-path command...
  local label=$1 path=$2; shift 2
  start_server /dev/null "$@"
  local port=$SERVER_PORT
  local out; out=$(wrk -t1 -c64 -d"${SECS}s" "http://127.0.0.1:$port$path" || true)
  stop_servers
  local rps; rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  local errs; errs=$(echo "$out" | grep -E "Non-2xx|Socket errors" || true)
  printf '%-28s %12s req/s %s\n' "$label" "$rps" "$errs"
}
# Adapters: each peer takes its address in its own way.
# (`exec`: the background job is the server itself, not a shell around it.)
tokio_srv() { exec benches/compare/target/release/http_server_tokio -workers=2 -addr="$1"; }
fibra_min() { exec benches/compare/target/release/http_server_fibra -workers=2 -addr="$1"; }
go_srv() { GOMAXPROCS=2 exec benches/compare/target/compare-go -q=http_server -addr="$1"; }

echo "wrk -t1 -c64 -d${SECS}s, plaintext \"Hello, World!\" ($(nproc) cores)"
FIBRA_WORKERS=2 RUST_LOG=warn run "fibra examples/http" /plaintext target/release/examples/http
run "hyper 1 on tokio" / tokio_srv
[ "$have_go" = 1 ] && run "Go net/http" / go_srv
run "fibra compare (minimal)" / fibra_min

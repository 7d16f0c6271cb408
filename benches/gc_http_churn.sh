#!/usr/bin/env bash
# GC pauses under HTTP load: examples/http with FIBRA_GC_CHURN=N beside Go
# net/http with the same churn (benches/compare/go, -q=http_server
# -churn=N: N lists of 8 ~96-byte nodes per request, the first kept in a
# ring of 4096), both with 2 worker threads / GOMAXPROCS=2, under
# `wrk -t1 -c64`, interleaved (fibra, Go, fibra, Go, ...). Each server is
# stopped with SIGINT and prints one line "gc pauses: n=… p50=…us
# p99=…us max=…us" (fibra from fibra::gc::stats(), Go from
# runtime/metrics' /sched/pauses/total/gc:seconds; both give bucket upper
# bounds). The script then prints the median p99 and max of each and the
# fibra/Go ratios.
#
#   benches/gc_http_churn.sh                  # CHURN=8 SECS=10 REPS=3
#   CHURN=1 SECS=5 REPS=2 benches/gc_http_churn.sh
#
# Measure on a quiet machine (the script prints the load average first).
set -euo pipefail
cd "$(dirname "$0")/.."
CHURN="${CHURN:-8}"
SECS="${SECS:-10}"
REPS="${REPS:-3}"

command -v wrk >/dev/null || { echo "wrk not installed (apt-get install wrk)"; exit 1; }
cargo build --release --quiet --example http
GO_BIN=""
for g in "${GO:-}" /usr/lib/go-1.2[3-9]/bin/go "$(command -v go || true)"; do
  [ -x "$g" ] || continue
  if (cd benches/compare/go && GOTOOLCHAIN=local GOFLAGS=-mod=mod "$g" build -o ../target/compare-go . 2>/dev/null); then
    GO_BIN=benches/compare/target/compare-go
    break
  fi
done
[ -n "$GO_BIN" ] || { echo "no Go >= 1.22 found (set GO=/path/to/go)"; exit 1; }

source benches/lib.sh
OUT=$(mktemp -d)

run() { # label command... (the command takes the address last)
  local label=$1; shift
  local log="$OUT/$label.$RANDOM"
  start_server "$log" "$@"
  local port=$SERVER_PORT pid=$SERVER_PID
  local rps; rps=$(wrk -t1 -c64 -d"${SECS}s" "http://127.0.0.1:$port/plaintext" | awk '/Requests\/sec/ {print $2}')
  kill -INT "$pid"
  for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "$label did not exit within 10 s of SIGINT" >&2
    kill -- "-$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  SERVERS=()
  local line; line=$(grep "^gc pauses:" "$log" | tail -1 || true)
  printf '%-6s %10s req/s  %s\n' "$label" "$rps" "${line:-no pause line}"
  echo "$label $line" >>"$OUT/lines"
}
fibra_srv() { FIBRA_WORKERS=2 FIBRA_GC_CHURN="$CHURN" RUST_LOG=warn exec target/release/examples/http "$1"; }
go_srv() { GOMAXPROCS=2 exec "$GO_BIN" -q=http_server -churn="$CHURN" -addr="$1"; }

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); wrk -t1 -c64 -d${SECS}s; churn $CHURN; $(nproc) cores"
for _ in $(seq "$REPS"); do
  run fibra fibra_srv
  run go go_srv
done
python3 - "$OUT/lines" <<'PY'
import re, statistics, sys
runs = {"fibra": [], "go": []}
for line in open(sys.argv[1]):
    who, _, rest = line.partition(" ")
    f = dict(re.findall(r"(\w+)=([\d.]+)", rest))
    if "p99" in f:
        runs[who].append((float(f["p99"]), float(f["max"])))
med = {k: (statistics.median(p for p, _ in v), statistics.median(m for _, m in v)) for k, v in runs.items() if v}
for k, (p99, mx) in med.items():
    print(f"{k:6} median p99 {p99:9.1f} us   median max {mx:9.1f} us   ({len(runs[k])} runs)")
if "fibra" in med and "go" in med:
    print(f"fibra/Go: p99 {med['fibra'][0] / med['go'][0]:.2f}x   max {med['fibra'][1] / med['go'][1]:.2f}x")
PY
rm -rf "$OUT"

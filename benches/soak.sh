#!/usr/bin/env bash
# Soak test (not CI): runs fibra's network examples under sustained load,
# samples their RSS over time, and fails on any error or on RSS growth over
# 10% after warm-up.
#
#   benches/soak.sh                  # 10 minutes per server
#   benches/soak.sh --duration 3600  # an hour
#   benches/soak.sh --smoke          # 20 seconds per server
#
# A smoke run is too short for a steady-state RSS verdict: a server's
# malloc arenas are first touched over its first ~30 s (the kv example's
# RSS climbs 10-20% to a plateau while malloc's mapped bytes stay flat), so
# --smoke fails only on growth over 50%, which still catches a gross leak.
#
# Servers, each when its example exists:
#   http: examples/http.rs under wrk (non-2xx responses and socket errors
#         count as errors)
#   kv:   examples/kv.rs under redis-benchmark (SET/GET; any error line
#         counts)
#   echo: examples/echo.rs under an echo client in this script (every reply
#         checked byte for byte; a mismatch or a dropped connection counts)
# GC churn: the server is started with FIBRA_GC_CHURN=1, the switch by which
# the http and kv examples allocate garbage on the GC heap per request and
# keep a bounded ring of recent objects alive (examples/shared/gc_churn.rs).
# At the end the server gets SIGINT (echo, which does not handle it: SIGTERM)
# and must exit by itself within 35 s (with status 0 for http and kv); http
# and kv must print a line starting `gc pauses:` (pause count and
# percentiles), which is reported. The echo example uses neither, so for it
# the run measures the runtime alone.
#
# Output: a table of RSS samples (seconds, KiB), the error count per load
# generator, the pause line, and PASS/FAIL (any error, RSS growth, an
# unclean exit or a missing pause line fails). Warm-up is the first 20% of
# the run; growth is the peak RSS of the last fifth of the remaining samples
# against the peak of their first fifth (peaks, since a GC heap's RSS is a
# sawtooth).
set -euo pipefail
cd "$(dirname "$0")/.."

duration=600
max_growth=10 # percent
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) duration=20; max_growth=50 ;;
    --duration) duration=$2; shift ;;
    *) echo "usage: $0 [--smoke] [--duration SECONDS]" >&2; exit 2 ;;
  esac
  shift
done
interval=$(( duration >= 100 ? duration / 50 : 1 ))
out=$(mktemp -d /tmp/fibra-soak.XXXXXX)
status=0

cargo build -q --release --examples

# start_server NAME: starts target/release/examples/NAME on a free port,
# sets $pid and $addr.
start_server() {
  FIBRA_GC_CHURN=1 "target/release/examples/$1" 127.0.0.1:0 >"$out/$1.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do
    addr=$(grep -o 'listening on [0-9.:]*' "$out/$1.log" | awk '{print $3}' || true)
    [ -n "$addr" ] && return 0
    sleep 0.1
  done
  echo "soak: $1 did not start" >&2
  cat "$out/$1.log" >&2
  return 1
}

# alive PID: whether PID runs (a zombie, exited but not yet reaped, does
# not count; `kill -0` would say yes). One read of the status file decides.
# bash reaps a background child as soon as it exits, so testing that the
# file exists and then reading it can see it vanish in between; a failed
# read then looked like a running process, and stop_server reported a
# server that had exited (pause line printed) as still running 35 s after
# SIGINT. The window is widest while a large process exits: its main
# thread is already a zombie while the last thread unmaps the heap.
alive() {
  local state
  state=$(awk '/^State:/ { print $2 }' "/proc/$1/status" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}

# sample_rss PID FILE: appends "seconds kib" every $interval s while PID lives.
sample_rss() {
  local start=$SECONDS
  while alive "$1"; do
    awk -v t=$((SECONDS - start)) '/^VmRSS/ {print t, $2}' "/proc/$1/status" >>"$2" 2>/dev/null || true
    sleep "$interval"
  done
}

# judge NAME ERRORS RSSFILE PAUSES: prints the verdict, sets status on
# failure. PAUSES=1: the server must have printed its `gc pauses:` line.
judge() {
  local name=$1 errors=$2 rss=$3 pauses=$4
  echo "== $name: RSS samples (s KiB) =="
  column -c 120 "$rss" 2>/dev/null || cat "$rss"
  local warm=$((duration / 5))
  local verdict
  verdict=$(awk -v warm="$warm" -v max_growth="$max_growth" '
    $1 >= warm { after[n++] = $2 }
    END {
      if (n < 2) { print "too-few-samples 0 0"; exit }
      # Peaks, not single samples: the RSS of a GC heap is a sawtooth. Compare
      # the highest sample of the last fifth of the run after warm-up with
      # the highest of its first fifth.
      k = int(n / 5); if (k < 1) k = 1
      for (i = 0; i < k; i++) if (after[i] > base) base = after[i]
      for (i = n - k; i < n; i++) if (after[i] > last) last = after[i]
      printf "%s %d %d\n", (last * 100 > base * (100 + max_growth) ? "grew" : "ok"), base, last
    }' "$rss")
  read -r word base last <<<"$verdict"
  local growth=0
  [ "$base" -gt 0 ] && growth=$(( (last - base) * 100 / base ))
  echo "$name: errors=$errors rss_after_warmup=${base}KiB rss_end=${last}KiB growth=${growth}% (limit ${max_growth}%)"
  local report=ok
  if ! grep -h '^gc pauses:' "$out/$name.log"; then
    echo "$name: no GC pause report"
    [ "$pauses" = 1 ] && report=missing-pause-report
  fi
  if [ "$errors" != 0 ] || [ "$word" != ok ] || [ "$stopped" != ok ] || [ "$report" != ok ]; then
    echo "$name: FAIL (rss: $word, exit: $stopped, pause report: $report)"
    status=1
  else
    echo "$name: PASS"
  fi
}

# capture_hang PID: what each thread of a server that does not exit is
# doing (state and kernel wait channel, then gdb's backtraces if gdb is
# installed).
capture_hang() {
  local t
  for t in /proc/"$1"/task/*; do
    echo "$(cat "$t/comm" 2>/dev/null) $(awk '{ print $1, $3 }' "$t/stat" 2>/dev/null) wchan=$(cat "$t/wchan" 2>/dev/null)"
  done
  command -v gdb >/dev/null && gdb -p "$1" -batch -ex 'thread apply all bt' 2>&1
  return 0
}

# stop_server NAME HANDLES_SIGINT: SIGINT, then up to 35 s for the server to
# exit by itself (the http example lets requests in flight finish); sets
# $stopped to ok or to what went wrong. A server that handles SIGINT must
# exit with status 0. One that does not (echo) gets SIGTERM instead and may
# die of it: a background job of a non-interactive shell starts with SIGINT
# ignored, so SIGINT would not stop it.
stop_server() {
  stopped=ok
  if [ "$2" = 1 ]; then kill -INT "$pid" 2>/dev/null || true; else kill -TERM "$pid" 2>/dev/null || true; fi
  local start=$SECONDS
  for _ in $(seq 350); do alive "$pid" || break; sleep 0.1; done
  if alive "$pid"; then
    echo "soak: $1 still runs $((SECONDS - start)) s after the signal; its threads and stacks are in $out/$1.hang; killing it" >&2
    capture_hang "$pid" >"$out/$1.hang" 2>&1
    kill -KILL "$pid" 2>/dev/null || true
    stopped=killed
  fi
  local rc=0
  wait "$pid" 2>/dev/null || rc=$?
  if [ "$stopped" = ok ] && [ "$rc" != 0 ] && ! { [ "$2" = 0 ] && [ "$rc" = 143 ]; }; then
    stopped="exit-status-$rc"
  fi
  return 0
}

if { [ -f examples/http.rs ] || [ -f examples/http/main.rs ]; } && command -v wrk >/dev/null; then
  start_server http
  sample_rss "$pid" "$out/http.rss" &
  wrk -t2 -c128 -d"${duration}s" --latency "http://$addr/" >"$out/wrk.txt" 2>&1 || true
  cat "$out/wrk.txt"
  # "Socket errors: connect 0, read 0, write 0, timeout 0" and
  # "Non-2xx or 3xx responses: N".
  errors=$(awk '/Socket errors/ { for (i = 3; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) s += $i + 0 }
                /Non-2xx/ { s += $NF }
                END { print s + 0 }' "$out/wrk.txt")
  stop_server http 1
  judge http "${errors:-0}" "$out/http.rss" 1
fi

if { [ -f examples/kv.rs ] || [ -f examples/kv/main.rs ]; } && command -v redis-benchmark >/dev/null; then
  start_server kv
  sample_rss "$pid" "$out/kv.rss" &
  port=${addr##*:}
  end=$((SECONDS + duration)); errors=0
  while [ $SECONDS -lt $end ]; do
    redis-benchmark -p "$port" -c 64 -n 100000 -t set,get -q >"$out/rb.txt" 2>&1 || errors=$((errors + 1))
    errors=$((errors + $(grep -ci 'error' "$out/rb.txt" || true)))
  done
  stop_server kv 1
  judge kv "$errors" "$out/kv.rss" 1
fi

if [ -f examples/echo.rs ]; then
  start_server echo
  sample_rss "$pid" "$out/echo.rss" &
  errors=$(python3 - "$addr" "$duration" <<'PY'
import random, socket, sys, threading, time
host, port = sys.argv[1].rsplit(":", 1)
deadline = time.time() + float(sys.argv[2])
errors = 0
lock = threading.Lock()
def client(seed):
    global errors
    rng = random.Random(seed)
    while time.time() < deadline:
        try:
            with socket.create_connection((host, int(port)), timeout=10) as s:
                # A connection lives for a random number of round trips, so
                # connections churn (new green threads, stacks, sockets).
                for _ in range(rng.randint(1, 200)):
                    msg = rng.randbytes(rng.randint(1, 32 * 1024))
                    s.sendall(msg)
                    got = bytearray()
                    while len(got) < len(msg):
                        chunk = s.recv(65536)
                        if not chunk:
                            raise ConnectionError("closed early")
                        got += chunk
                    if bytes(got) != msg:
                        raise ValueError("echo mismatch")
        except Exception as e:
            with lock:
                errors += 1
                if errors <= 5:
                    print(f"echo client error: {e!r}", file=sys.stderr)
threads = [threading.Thread(target=client, args=(i,)) for i in range(32)]
for t in threads: t.start()
for t in threads: t.join()
print(errors)
PY
)
  stop_server echo 0
  judge echo "$errors" "$out/echo.rss" 0
fi

echo "soak: logs and samples in $out"
[ $status = 0 ] && echo "soak: PASS" || echo "soak: FAIL"
exit $status

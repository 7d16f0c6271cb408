#!/usr/bin/env bash
# Stress test (not CI) of examples/http's exit after SIGINT, in the setting
# of benches/soak.sh: the server started from the release binary with
# stdout and stderr to a file and the default log filter, GC churn, wrk
# -t2 -c128 --latency. SIGINT comes at a random moment, while wrk still
# runs or after it ended, with extra keep-alive connections open (idle ones,
# served-then-idle ones, one with a request half sent) and, optionally, a
# /metrics scraper and a client that sends requests and never reads the
# replies. The server must exit by itself with status 0 and print its
# `gc pauses:` line.
#
#   scripts/http_exit_stress.sh [ITERATIONS]
#
# Environment:
#   BIN           server binary (default target/release/examples/http,
#                 built first)
#   CHURN         FIBRA_GC_CHURN for the server (default 1; 0: off)
#   WORKERS       FIBRA_WORKERS for the server (default: unset)
#   LOAD_SECS     wrk's duration (default 3); SIGINT comes at a random
#                 moment in [0.3, LOAD_SECS + 1] s
#   METRICS=1     scrape /metrics in a loop while the load runs
#   DEADLINE      seconds the server has to exit (default 10)
#   READ_TIMEOUT_MS  HTTP_READ_TIMEOUT_MS for the server (default 4000, so
#                 that the half-sent request times out within the deadline)
#   DEAF=1        also hold a connection that never reads: its green thread
#                 stays blocked in a write, so the server takes its 30 s
#                 grace before the runtime cancels it (set DEADLINE=40)
#
# A server still running at the deadline, or 2 s after it printed its pause
# line (only the process's own exit is left then), is examined before it is
# killed:
# `gdb -batch -ex 'thread apply all bt'`, and each thread's
# /proc/PID/task/TID/stat and wchan, written with the server's log to
# $OUT/hang-N/ (OUT defaults to a new /tmp/fibra-exit.XXXXXX). The script
# stops at the first hang and exits with status 1; any other failure
# (exit status, missing pause line) is counted and reported at the end.
# Each iteration's line is also appended to $OUT/results.txt.
set -uo pipefail
cd "$(dirname "$0")/.."

iterations=${1:-50}
churn=${CHURN:-1}
load_secs=${LOAD_SECS:-3}
deadline=${DEADLINE:-10}
out=${OUT:-$(mktemp -d /tmp/fibra-exit.XXXXXX)}
mkdir -p "$out"
if [ -z "${BIN:-}" ]; then
  cargo build -q --release --example http || exit 2
  BIN=target/release/examples/http
fi

# alive PID: PID runs (a zombie does not count). One read of the status
# file decides: bash reaps a background child whenever it exits, so a test
# of the file's existence followed by a second read can see it vanish in
# between (see benches/soak.sh).
alive() {
  local state
  state=$(awk '/^State:/ { print $2 }' "/proc/$1/status" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}

# Keep-alive connections held open across the SIGINT: idle ones, one with a
# request half sent, and with DEAF=1 one that never reads the replies.
hold_connections() {
  python3 - "$1" "${DEAF:-0}" <<'PY' &
import socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
socks = []
try:
    for i in range(8):
        s = socket.create_connection((host, int(port)))
        if i % 4 == 1:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # served, then idle
        socks.append(s)
    half = socket.create_connection((host, int(port)))
    half.sendall(b"GET /plaintext HTTP/1.1\r\nHost: x\r\n")  # no end of head
    socks.append(half)
    if sys.argv[2] != "1":
        time.sleep(120)
    deaf = socket.create_connection((host, int(port)))
    deaf.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    deaf.setblocking(False)
    req = b"GET /json HTTP/1.1\r\nHost: x\r\n\r\n" * 64
    try:
        for _ in range(4096):
            deaf.send(req)
    except BlockingIOError:
        pass
    socks.append(deaf)
    time.sleep(120)
except OSError:
    time.sleep(120)
PY
  holder=$!
}

exec > >(tee -a "$out/results.txt")
hangs=0
failures=0
for i in $(seq 1 "$iterations"); do
  log="$out/server.log"
  env_args=(RUST_LOG="${RUST_LOG:-info,fibra_gc=debug}" HTTP_READ_TIMEOUT_MS="${READ_TIMEOUT_MS:-4000}")
  [ "$churn" != 0 ] && env_args+=(FIBRA_GC_CHURN="$churn")
  [ -n "${WORKERS:-}" ] && env_args+=(FIBRA_WORKERS="$WORKERS")
  env "${env_args[@]}" "$BIN" 127.0.0.1:0 >"$log" 2>&1 &
  pid=$!
  addr=
  for _ in $(seq 100); do
    addr=$(grep -so 'listening on [0-9.:]*' "$log" | awk '{print $3}' || true)
    [ -n "$addr" ] && break
    sleep 0.1
  done
  if [ -z "$addr" ]; then
    echo "iteration $i: server did not start"; cat "$log"; kill -KILL "$pid"; exit 2
  fi
  wrk -t2 -c128 -d"${load_secs}s" --latency "http://$addr/" >/dev/null 2>&1 &
  wrk_pid=$!
  hold_connections "$addr"
  scraper=
  if [ "${METRICS:-0}" = 1 ]; then
    (while :; do curl -s -m 2 "http://$addr/metrics" >/dev/null || true; sleep 0.05; done) &
    scraper=$!
  fi
  delay=$(awk -v s="$RANDOM" -v d="$load_secs" 'BEGIN { srand(s); printf "%.2f", 0.3 + rand() * (d + 0.7) }')
  sleep "$delay"
  wrk_running=$(kill -0 "$wrk_pid" 2>/dev/null && echo yes || echo no)
  kill -INT "$pid"
  start=$(date +%s.%N)
  # Wait for the exit; after the pause line only the process's own exit is
  # left, so a server still alive 2 s after printing it is examined too.
  printed=0
  for _ in $(seq $((deadline * 10))); do
    alive "$pid" || break
    if grep -q '^gc pauses:' "$log"; then
      printed=$((printed + 1))
      [ "$printed" -ge 20 ] && break
    fi
    sleep 0.1
  done
  if alive "$pid"; then
    hangs=$((hangs + 1))
    dir="$out/hang-$i"
    mkdir -p "$dir"
    echo "iteration $i: HANG (SIGINT after ${delay}s, wrk running: $wrk_running, pause line printed: $([ "$printed" -gt 0 ] && echo yes || echo no)); evidence in $dir"
    for t in /proc/"$pid"/task/*; do
      echo "$(cat "$t/stat" 2>/dev/null) wchan=$(cat "$t/wchan" 2>/dev/null) comm=$(cat "$t/comm" 2>/dev/null)"
    done >"$dir/tasks.txt"
    gdb -p "$pid" -batch -ex 'thread apply all bt' >"$dir/gdb.txt" 2>&1
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    cp "$log" "$dir/server.log"
  else
    rc=0
    wait "$pid" || rc=$?
    took=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.2f", e - s }')
    if [ "$rc" != 0 ] || ! grep -q '^gc pauses:' "$log"; then
      failures=$((failures + 1))
      echo "iteration $i: exit status $rc after ${took}s, pause line: $(grep -c '^gc pauses:' "$log")"
      cp "$log" "$out/fail-$i.log"
    else
      echo "iteration $i: ok in ${took}s (SIGINT after ${delay}s, wrk running: $wrk_running)"
    fi
  fi
  kill "$wrk_pid" "$holder" ${scraper:+"$scraper"} 2>/dev/null
  wait "$wrk_pid" "$holder" ${scraper:+"$scraper"} 2>/dev/null
  [ "$hangs" -gt 0 ] && break
done
echo "http_exit_stress: $i iterations, $hangs hangs, $failures other failures (churn=$churn workers=${WORKERS:-default} metrics=${METRICS:-0}); output in $out"
[ "$hangs" = 0 ] && [ "$failures" = 0 ]

#!/usr/bin/env bash
# fibra side by side with Go, tokio and may: builds every program in release
# mode, runs each question interleaved (fibra, Go, tokio, may, fibra, ...)
# several times, prints a table of medians and fibra/peer ratios, and writes
# benches/RESULTS.md (date, CPU, cores, Go/rustc/crate versions).
#
# Usage: benches/compare.sh [--quick] [--only ROW[,ROW...]] [--reps N] [--no-install] [--no-sysctl]
#
#   --quick       smaller sizes and fewer repetitions: under 2 minutes once built
#                 (the full run stays under 10 minutes on 2 cores)
#   --only        row ids: spawn_join yield chan_pingpong chan_buffered thread_ring
#                 pingpong_pairs mutex sleep parked_memory park_wake echo http
#                 binary_trees gc_latency gc_pause
#   --reps N      repetitions per row (default 3, quick 2; some rows more or fewer)
#   --no-install  do not apt-get Go or wrk when they are missing
#   --no-sysctl   do not raise vm.max_map_count (100k parked tasks and may's 1M
#                 spawns need about 2 mappings per task; Linux allows 65530)
#
# After building, the script waits (up to COMPARE_SETTLE_SECS, default 180)
# for the 1-minute load average to fall below COMPARE_MAX_LOAD (default 0.5)
# and prints the load it starts at (RESULTS.md records it too).
#
# The programs live in benches/compare/ (a Cargo project outside the
# workspace, so `cargo test` never builds tokio or may) and benches/compare/go/.
# A row whose fibra program needs an API fibra does not have yet sits behind
# a cargo feature of benches/compare (chan, sync, time, net, gc); this script
# tries to build each feature and shows the row as "missing" while it does
# not build (the compiler's output is kept in benches/compare/target/logs/).
# Set FIBRA_COMPARE_FEATURES="chan gc" to try only those features.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
COMPARE="$ROOT/benches/compare"
LOGS="$COMPARE/target/logs"

QUICK=""
ONLY=""
REPS=""
INSTALL=1
SYSCTL=1
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK="--quick" ;;
    --only) ONLY="$2"; shift ;;
    --only=*) ONLY="${1#--only=}" ;;
    --reps) REPS="$2"; shift ;;
    --reps=*) REPS="${1#--reps=}" ;;
    --no-install) INSTALL=0 ;;
    --no-sysctl) SYSCTL=0 ;;
    -h|--help) sed -n '2,/^set /{/^#/p}' "$0"; exit 0 ;;
    *) echo "compare.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

say() { echo "==> $*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi
}

apt_update_once() {
  if [ -z "${APT_UPDATED:-}" ]; then
    as_root apt-get update -qq >/dev/null
    APT_UPDATED=1
  fi
}

# --- Go >= 1.22 (the pause histogram the GC rows read): Debian's golang-1.23
# from bookworm-backports, or any go on PATH that is new enough; else install.
go_ok() {
  local v
  v=$("$1" env GOVERSION 2>/dev/null) || return 1   # e.g. go1.23.5
  v=${v#go}
  [ "${v%%.*}" -gt 1 ] || { v=${v#1.}; [ "${v%%.*}" -ge 22 ]; }
}

find_go() {
  for g in "${GO:-}" /usr/lib/go-1.2[3-9]/bin/go "$(command -v go || true)" /usr/lib/go/bin/go; do
    if [ -n "$g" ] && [ -x "$g" ] && go_ok "$g"; then echo "$g"; return 0; fi
  done
  return 1
}

install_go() {
  say "installing Go from Debian"
  export DEBIAN_FRONTEND=noninteractive
  if grep -qs bookworm /etc/os-release; then
    if ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
      printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' |
        as_root tee /etc/apt/sources.list.d/bookworm-backports.sources >/dev/null
    fi
    apt_update_once
    as_root apt-get install -y -qq -t bookworm-backports golang-1.23-go >/dev/null && return 0
  fi
  apt_update_once
  as_root apt-get install -y -qq golang-go >/dev/null
}

GO_CMD=$(find_go || true)
if [ -z "$GO_CMD" ] && [ "$INSTALL" = 1 ]; then
  install_go || say "could not install Go: its columns will show errors"
  GO_CMD=$(find_go || true)
fi
if ! command -v wrk >/dev/null && [ "$INSTALL" = 1 ]; then
  say "installing wrk from Debian"
  apt_update_once
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq wrk >/dev/null ||
    say "could not install wrk: the HTTP row will show errors"
fi

# --- Mappings: a guarded stack is 2 mappings; 100k parked tasks need > 200k.
NEED_MAPS=2200000
if [ "$SYSCTL" = 1 ] && [ "$(cat /proc/sys/vm/max_map_count)" -lt "$NEED_MAPS" ]; then
  if as_root sysctl -qw vm.max_map_count=$NEED_MAPS 2>/dev/null; then
    say "raised vm.max_map_count to $NEED_MAPS (pass --no-sysctl to keep it)"
  else
    say "vm.max_map_count is $(cat /proc/sys/vm/max_map_count): rows with 100k+ stacks may fail"
  fi
fi

# --- Build the Rust programs: the default set, then each fibra feature.
mkdir -p "$LOGS"
rm -f "$LOGS"/build-*.log
say "building the Rust programs (release)"
(cd "$COMPARE" && cargo build --release --bins --quiet 2>"$LOGS/build-default.log") || {
  cat "$LOGS/build-default.log" >&2; exit 1; }

feature_bins() {
  case "$1" in
    chan) echo chan_pingpong_fibra chan_buffered_fibra thread_ring_fibra pingpong_pairs_fibra ;;
    sync) echo mutex_fibra park_wake_fibra ;;
    time) echo sleep_fibra ;;
    net) echo echo_server_fibra http_server_fibra ;;
    gc) echo binary_trees_fibra gc_latency_fibra gc_pause_fibra ;;
  esac
}
BUILT=()
BROKEN=()
for f in ${FIBRA_COMPARE_FEATURES:-chan sync time net gc}; do
  for b in $(feature_bins "$f"); do rm -f "$COMPARE/target/release/$b"; done
  bin_args=()
  for b in $(feature_bins "$f"); do bin_args+=(--bin "$b"); done
  if (cd "$COMPARE" && cargo build --release --features "$f" "${bin_args[@]}" --quiet 2>"$LOGS/build-$f.log"); then
    BUILT+=("$f")
  elif grep -qE "^error" "$LOGS/build-$f.log" &&
       ! grep -E "^error(\[E[0-9]+\])?:" "$LOGS/build-$f.log" |
         grep -vqE "(in|import) \`fibra(::[a-z_:]+)?\`|unresolved imports? \`fibra::|could not compile"; then
    say "fibra feature '$f': its API is not in fibra yet, its rows show \"missing\" (target/logs/build-$f.log)"
    for b in $(feature_bins "$f"); do rm -f "$COMPARE/target/release/$b"; done
  else
    say "fibra feature '$f' FAILS TO BUILD for another reason than a missing API: see target/logs/build-$f.log"
    BROKEN+=("$f")
    for b in $(feature_bins "$f"); do rm -f "$COMPARE/target/release/$b"; done
  fi
done

# --- Build the Go program.
if [ -n "$GO_CMD" ]; then
  say "building the Go program ($("$GO_CMD" version))"
  if ! (cd "$COMPARE/go" && GOTOOLCHAIN=local GOFLAGS=-mod=mod "$GO_CMD" build -o "$COMPARE/target/compare-go" .); then
    say "the Go program does not build: its columns show \"missing\""
    rm -f "$COMPARE/target/compare-go"
  fi
else
  say "no Go >= 1.22: its columns show \"missing\""
  rm -f "$COMPARE/target/compare-go"
fi

# --- Let the build's load settle first: the first rows ran right after the
# build and measured it (spawn + join 4-5x slower than the same program
# run alone). COMPARE_MAX_LOAD (default 0.5) and COMPARE_SETTLE_SECS
# (default 180, 0 to skip) bound the wait.
MAX_LOAD="${COMPARE_MAX_LOAD:-0.5}"
SETTLE="${COMPARE_SETTLE_SECS:-180}"
waited=0
while [ "$waited" -lt "$SETTLE" ] && awk -v max="$MAX_LOAD" '{ exit !($1 >= max) }' /proc/loadavg; do
  if [ $((waited % 30)) = 0 ]; then
    say "waiting for the load average ($(cut -d' ' -f1 /proc/loadavg)) to fall below $MAX_LOAD"
  fi
  sleep 5
  waited=$((waited + 5))
done
say "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"

say "running ${QUICK:-full} comparison"
GO="${GO_CMD:-go}" python3 "$COMPARE/runner.py" $QUICK \
  ${ONLY:+--only "$ONLY"} ${REPS:+--reps "$REPS"} --features "${BUILT[*]:-}" --broken "${BROKEN[*]:-}"

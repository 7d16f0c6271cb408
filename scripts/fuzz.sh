#!/usr/bin/env bash
# Fuzzes the example servers' input handling with cargo-fuzz (libFuzzer and
# AddressSanitizer; nightly flags through RUSTC_BOOTSTRAP=1 on the stable
# toolchain). Targets live in fuzz/fuzz_targets/:
#   http_request   examples/http/parse.rs: heads, bodies, pipelining, chunked
#   resp_command   examples/kv/resp.rs: RESP arrays and inline commands
#   heap_ops       the GC heap: programs of handle moves checked against a
#                  model while a collector thread runs (tests/common/heap_model.rs)
# The parser targets check the parsers' contracts (progress, bounds, same
# outcome however the input is split into reads), not only the absence of
# panics.
#
#   scripts/fuzz.sh                          # every target, 300 s each
#   scripts/fuzz.sh --seconds 15             # the CI smoke
#   scripts/fuzz.sh --seconds 3600 resp_command
#   scripts/fuzz.sh http_request -- -seed=42 -max_len=65536
#                                            # after --: libFuzzer flags
#
# Installs cargo-fuzz when it is missing. Each run starts from the committed
# seeds in fuzz/corpus/<target>/seed-* plus whatever earlier runs added there
# (git ignores those). Fails on any crash, hang (-timeout, 10 s per input) or
# out-of-memory; the failing input is saved under fuzz/artifacts/<target>/,
# and the script prints the path and the command that replays it. A crash is
# a parser bug: fix it and add the input as a test next to the parser's tests.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=300
targets=()
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="${2:?--seconds needs a value}"; shift 2 ;;
    --seconds=*) seconds="${1#--seconds=}"; shift ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "usage: $0 [--seconds N] [target...] [-- libfuzzer-flags...]" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
case "$seconds" in
  ''|*[!0-9]*) echo "--seconds takes a whole number, not '$seconds'" >&2; exit 2 ;;
esac

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

export RUSTC_BOOTSTRAP=1
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list)
fi

echo "== building ${targets[*]}"
for t in "${targets[@]}"; do
  cargo fuzz build "$t"
done

logs=fuzz/target/logs
mkdir -p "$logs"
failed=()
for t in "${targets[@]}"; do
  log="$logs/$t.log"
  echo "== fuzzing $t for ${seconds}s (log: $log)"
  # The outer timeout only catches a wedged run; libFuzzer stops itself.
  # The heap's objects live in the collector's own mappings, which
  # LeakSanitizer does not scan: what they own would all look leaked.
  target_flags=()
  asan_options="${ASAN_OPTIONS:-}"
  if [ "$t" = heap_ops ]; then
    target_flags=(-detect_leaks=0)
    asan_options="detect_leaks=0${asan_options:+:$asan_options}"
  fi
  if ASAN_OPTIONS="$asan_options" timeout $((seconds + 600)) cargo fuzz run "$t" -- \
      -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
      ${target_flags[@]+"${target_flags[@]}"} \
      ${extra[@]+"${extra[@]}"} >"$log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    corpus=$(find "fuzz/corpus/$t" -type f | wc -l)
    echo "   ok: ${runs:-?} inputs, ${rate:-?} exec/s, corpus $corpus files"
  else
    failed+=("$t")
    echo "   FAILED: $t" >&2
    grep -E "panicked at|^thread '|ERROR: (AddressSanitizer|libFuzzer)|^SUMMARY" "$log" \
      | head -n 8 | sed 's/^/   /' >&2 || true
    grep -A1 "panicked at" "$log" | sed -n '2p' | sed 's/^/   /' >&2 || true
    artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
    if [ -n "$artifact" ]; then
      echo "   failing input: $artifact" >&2
      echo "   replay it:     RUSTC_BOOTSTRAP=1 cargo fuzz run $t $artifact" >&2
    else
      echo "   no input was saved; see $log" >&2
    fi
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzing failed: ${failed[*]}" >&2
  exit 1
fi
echo "fuzzing passed: ${targets[*]} (${seconds}s each)"

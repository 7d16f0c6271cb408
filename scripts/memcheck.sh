#!/usr/bin/env bash
# Memory checking of fibra-runtime's tests under Valgrind (memcheck).
#
#   scripts/memcheck.sh            # smoke subset (CI): spawn/join, shutdown,
#                                  # timers, net, stacks, faults, channels;
#                                  # ~3 min on 2 cores
#   scripts/memcheck.sh --full     # every runtime test binary, every test
#                                  # (an hour or more: Valgrind runs a process
#                                  # on one core at a time, 20-50x slower)
#   scripts/memcheck.sh --asan     # the smoke subset under AddressSanitizer
#                                  # (RUSTC_BOOTSTRAP=1, -Zsanitizer=address,
#                                  # corosensei's `sanitizer` feature); see
#                                  # benches/README.md for its status
#   scripts/memcheck.sh --asan-suite [--smoke]
#                                  # the adversarial soundness suite
#                                  # (tests/soundness_*.rs, tests/heap_model.rs)
#                                  # under AddressSanitizer; --smoke (CI)
#                                  # shortens each churn loop
#
# Fails on any invalid read/write, use of uninitialised memory, invalid
# free, or definitely-lost block at exit. Green-thread stacks are registered
# with Valgrind (runtime/src/stack/mod.rs), so stack switches are understood.
#
# Tests excluded everywhere, and why:
#   stack_overflow_reports_task, spawn_past_mapping_limit, sigquit_dump,
#   deadlock_report: they fork child processes that die by design (SIGSEGV on
#   a guard page, abort) or depend on signals and timing; Valgrind reports
#   the deliberate crash.
#   blocking::a_stalled_*, timers::a_sleeping_task_does_not_block_its_worker,
#   timers::dropped_sleeps_do_not_fire: they assert on wall-clock timing,
#   which Valgrind's 20-50x slowdown breaks (not memory errors).
set -euo pipefail
cd "$(dirname "$0")/.."

mode=smoke
case "${1:-}" in
  "") ;;
  --full) mode=full ;;
  --asan) mode=asan ;;
  --asan-suite) mode=asan-suite ;;
  *) echo "usage: $0 [--full|--asan|--asan-suite [--smoke]]" >&2; exit 2 ;;
esac
suite_smoke=0
[ "${2:-}" = --smoke ] && suite_smoke=1

# The smoke subset: test binary, then name filters (substring match).
smoke=(
  "spawn_join is_finished_turns_true join_handle_is_a_future nested_spawns_form_a_tree run_borrows_from_the_caller tasks_joined_from_os_threads"
  "shutdown run_cancels_parked_tasks unstarted_tasks_are_cancelled async_tasks_waiting_forever shutdown_with_100k_parked_tasks"
  "timers sleep_lasts_at_least_its_duration sleep_future"
  "net_tcp half_close a_peer_reset a_reader_and_a_writer async_tasks_use_readiness"
  "stack_pool"
  "maybe_grow_deep_recursion remaining_tracks a_task_parks a_panic_on_a_segment cancelling_a_task_parked a_split_in"
  "stack_shrink"
  "task_panics a_panicking_drop a_detached_output panicking_drops_during_shutdown a_future_panicking"
  "faults_net"
  "faults_blocking"
  "faults_leaks"
  "faults_select"
  "chan_conformance sieve fifo nonblocking select_on_closed closing_releases"
  "chan_close_drain"
  "select_cancellation"
)
full=(
  spawn_join shutdown
  "timers sleep_lasts_at_least_its_duration sleep_future ten_thousand_sleepers"
  net_tcp net_udp_unix net_accept_emfile stack_pool
  stack_shrink maybe_grow_deep_recursion task_panics pinning async_interop
  "blocking spawn_blocking_does_not_block many_blocking_jobs idle_blocking_threads"
  faults_net faults_blocking faults_leaks
  faults_select chan_conformance chan_close_drain chan_rendezvous chan_async
  chan_timeouts select_cancellation select_fairness sync_mutex sync_primitives
)

# Valgrind serialises threads; fewer parked tasks keep the 100k-task
# shutdown test (shutdown_with_100k_parked_tasks) to seconds (the full run
# uses 10,000).
if [ "$mode" = full ]; then export FIBRA_FAULT_TASKS=10000; else export FIBRA_FAULT_TASKS=1000; fi

run_list() {
  local -n list=$1
  local failed=0
  for entry in "${list[@]}"; do
    # shellcheck disable=SC2086
    set -- $entry
    local test=$1; shift
    local start=$SECONDS
    if ! "${cargo_test[@]}" --test "$test" -- "$@"; then
      echo "memcheck: FAILED: $test $*" >&2
      failed=1
    fi
    echo "memcheck: $test: $((SECONDS - start)) s" >&2
  done
  return $failed
}

start=$SECONDS
case "$mode" in
  smoke|full)
    command -v valgrind >/dev/null || { echo "memcheck: valgrind not installed" >&2; exit 2; }
    supp="$PWD/scripts/memcheck.supp"
    # Every test binary cargo runs goes through Valgrind.
    export CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER="valgrind -q --error-exitcode=99 \
--leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite \
--fair-sched=yes --suppressions=$supp"
    cargo_test=(cargo test -q -p fibra-runtime)
    # Build first, so the timings below are Valgrind's.
    "${cargo_test[@]}" --tests --no-run
    if [ "$mode" = smoke ]; then run_list smoke; else run_list full; fi
    ;;
  asan)
    export RUSTC_BOOTSTRAP=1 RUSTFLAGS="-Zsanitizer=address" ASAN_OPTIONS="detect_leaks=1"
    cargo_test=(cargo test -q -p fibra-runtime --features corosensei/sanitizer
      --target x86_64-unknown-linux-gnu --target-dir target/asan)
    "${cargo_test[@]}" --tests --no-run
    # stack_shrink measures depth with the address of a local, which ASan
    # may move to its heap-allocated fake stack: the test, not the runtime,
    # cannot work there.
    asan_list=()
    for entry in "${smoke[@]}"; do
      [ "${entry%% *}" = stack_shrink ] || asan_list+=("$entry")
    done
    run_list asan_list
    ;;
  asan-suite)
    # The facade's soundness tests, children included (they re-exec the
    # same instrumented binary). Leak checking is off: objects the GC heap
    # still holds at exit own malloc'd memory that LeakSanitizer cannot see
    # through the heap's own mappings (the Valgrind runs check leaks).
    export RUSTC_BOOTSTRAP=1 RUSTFLAGS="-Zsanitizer=address" ASAN_OPTIONS="detect_leaks=0"
    if [ "$suite_smoke" = 1 ]; then
      export FIBRA_SOUNDNESS_SECS=0.5 FIBRA_HEAP_MODEL_PROGRAMS=40
    fi
    suite=()
    for f in tests/soundness_*.rs tests/heap_model.rs; do
      [ -e "$f" ] || continue
      name=$(basename "$f" .rs)
      suite+=("$name")
    done
    cargo_test=(cargo test -q -p fibra --features corosensei/sanitizer
      --target x86_64-unknown-linux-gnu --target-dir target/asan)
    "${cargo_test[@]}" "${suite[@]/#/--test=}" --no-run
    run_list suite
    ;;
esac
echo "memcheck ($mode): passed in $((SECONDS - start)) s" >&2

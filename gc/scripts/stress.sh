#!/usr/bin/env bash
# Long soundness runs of the collector (the tests run short versions):
# the shared-graph torture test in release mode, repeatedly, and
# binary-trees under concurrent marking checked against the Box version.
#
#   gc/scripts/stress.sh [ROUNDS] [DEPTH]
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-20}
depth=${2:-16}
cargo build --release -p fibra-gc --example binary_trees --quiet
expected=$(./target/release/examples/binary_trees "$depth" --box 2>/dev/null)
for i in $(seq 1 "$rounds"); do
  cargo test --release --quiet -p fibra-gc --test gc_shared_graph_torture \
    --test gc_roots_outside_heap --test gc_trees_survive_marking >/dev/null
  got=$(./target/release/examples/binary_trees "$depth" 2>/dev/null)
  got_torture=$(FIBRA_GC_TORTURE=1 ./target/release/examples/binary_trees 10 2>/dev/null)
  want_torture=$(./target/release/examples/binary_trees 10 --box 2>/dev/null)
  if [[ "$got" != "$expected" || "$got_torture" != "$want_torture" ]]; then
    echo "round $i: binary-trees output differs from the Box version" >&2
    exit 1
  fi
  echo "round $i ok"
done

//! Fuzzes the GC heap's handle protocol: each input is a program of heap
//! operations (new nodes, roots cloned and dropped, handles moved into and
//! out of `GcCell`s with `set`/`replace`/`get`/`with`/`with_mut` and
//! `take`/`swap`/`remove`) run against a model while a collector thread
//! collects in a loop; after every operation everything reachable from the
//! roots must match the model (see `tests/common/heap_model.rs`, shared
//! with the `heap_model` test). A freed node read back, a crash or an
//! AddressSanitizer report is a collector bug.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../tests/common/heap_model.rs"]
mod heap_model;

fuzz_target!(|program: &[u8]| {
    heap_model::start_collector();
    heap_model::run(program);
});

//! Seeded random programs of heap operations checked against a model
//! while a collector thread runs (see `tests/common/heap_model.rs`; the
//! `heap_ops` fuzz target drives the same machine with coverage guidance).
//! `FIBRA_HEAP_MODEL_PROGRAMS` and `FIBRA_HEAP_MODEL_SEED` widen or replay
//! a run.

#[allow(dead_code)]
#[path = "common/heap_model.rs"]
mod heap_model;

/// xorshift64*: a reproducible byte stream from a seed.
fn program(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.max(1);
    (0..len)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
        })
        .collect()
}

#[test]
fn random_heap_programs_match_the_model_while_collecting() {
    let programs: u64 = std::env::var("FIBRA_HEAP_MODEL_PROGRAMS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(150);
    let first: u64 = std::env::var("FIBRA_HEAP_MODEL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let before = heap_model::start_collector();
    for seed in first..first + programs {
        let bytes = program(seed, 4 * 400);
        let run = std::panic::catch_unwind(|| heap_model::run(&bytes));
        if let Err(e) = run {
            eprintln!("program with seed {seed} failed (FIBRA_HEAP_MODEL_SEED={seed} FIBRA_HEAP_MODEL_PROGRAMS=1 replays it)");
            std::panic::resume_unwind(e);
        }
    }
    assert!(
        heap_model::start_collector() > before,
        "the collector ran no cycle during the programs"
    );
}

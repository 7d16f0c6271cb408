//! `fibra::stats()` shows the GC heap's figures once the heap is in use.

#[test]
fn runtime_stats_carry_gc_figures() {
    let keep = fibra::gc::Gc::new(7u64);
    fibra::gc::collect();
    let stats = fibra::run(fibra::stats);
    let gc = stats.gc.expect("GC figures after the heap was used");
    assert!(gc.cycles >= 1, "{gc:?}");
    assert!(gc.pauses >= 1, "{gc:?}");
    assert!(gc.heap_bytes > 0, "{gc:?}");
    assert_eq!(*keep, 7);
}

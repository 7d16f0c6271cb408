//! Spawning from a warm pool maps nothing, and the stack counters add up.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use fibra_runtime::stack::stats;

#[test]
fn a_warm_pool_spawns_without_mmap_and_counts_add_up() {
    let rt = fibra_runtime::Runtime::builder()
        .workers(1)
        .build()
        .unwrap();
    // `n` green threads alive at once (each waits until all have started).
    let batch = |n: u64| {
        rt.run(move || {
            let started = Arc::new(AtomicU64::new(0));
            let hs: Vec<_> = (0..n)
                .map(|i| {
                    let started = started.clone();
                    fibra_runtime::spawn(move || {
                        started.fetch_add(1, Ordering::SeqCst);
                        while started.load(Ordering::SeqCst) < n {
                            fibra_runtime::yield_now();
                        }
                        i
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
        })
    };
    // Warm up: the pools fill with as many stacks as were live at once.
    assert_eq!(batch(200), 199 * 200 / 2);
    let warm = stats();
    for _ in 0..20 {
        assert_eq!(batch(100), 99 * 100 / 2);
    }
    let after = stats();
    assert_eq!(
        after.mmap_calls, warm.mmap_calls,
        "no mmap from a warm pool: {warm:?} -> {after:?}"
    );
    assert_eq!(
        after.in_use, warm.in_use,
        "finished tasks gave their stacks back"
    );
    assert!(
        after.pooled >= 100,
        "their stacks wait in the pools: {after:?}"
    );
    assert_eq!(after.mapped, after.in_use + after.pooled);
    assert!(after.bytes_reserved >= after.mapped * 256 * 1024);
    assert!(after.bytes_committed > 0 && after.bytes_committed < after.bytes_reserved);
    // Pooled stacks are trimmed to a few pages once their worker idles.
    std::thread::sleep(std::time::Duration::from_millis(100));
    let idle = stats();
    assert!(
        idle.bytes_committed <= idle.mapped * 20 * 1024,
        "pooled stacks keep at most 16 KiB each: {idle:?}"
    );
}

//! For the wake-up stress tests: a run that must finish within a minute
//! (a lost wake-up fails the test instead of hanging it), and a runtime
//! with a given number of workers.

#![allow(dead_code)]

use std::time::Duration;

/// Runs `f` on its own thread and returns its result; fails if it takes
/// longer than a minute.
pub fn within_a_minute<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("a wake-up was lost: the green threads never finished")
}

/// A runtime with `workers` workers.
pub fn runtime(workers: usize) -> fibra_runtime::Runtime {
    fibra_runtime::Runtime::builder()
        .workers(workers)
        .build()
        .unwrap()
}

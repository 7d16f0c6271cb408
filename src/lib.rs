//! fibra: Go's execution and memory model for Rust.
//!
//! Green threads on stackful coroutines, scheduled M:N by a work-stealing
//! scheduler; a shared garbage-collected heap in [`gc`].
//!
//! ```
//! let v = fibra::run(|| {
//!     let h = fibra::spawn(|| "hello from a green thread");
//!     h.join().unwrap()
//! });
//! assert_eq!(v, "hello from a green thread");
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

extern crate self as fibra;

pub use fibra_runtime::*;

/// Runs the function's body as the main green thread of [`run`]: the
/// runtime starts before the body and is shut down after it (tasks still
/// running are cancelled). Arguments and the return value are kept, so it
/// fits `main` and any other function; `#[fibra::main(workers = 2)]` sets
/// the number of workers.
///
/// ```
/// #[fibra::main]
/// fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
///     let h = fibra::spawn(|| 40 + 2);
///     assert_eq!(h.join()?, 42);
///     Ok(())
/// }
/// # main().unwrap();
/// ```
///
/// ```
/// #[fibra::main(workers = 1)]
/// fn sum_on_green_threads(numbers: Vec<u64>) -> u64 {
///     let (tx, rx) = fibra::chan::channel(0);
///     for n in numbers {
///         let tx = tx.clone();
///         fibra::spawn(move || tx.send(n * n).unwrap());
///     }
///     drop(tx);
///     rx.iter().sum()
/// }
/// assert_eq!(sum_on_green_threads(vec![1, 2, 3]), 14);
/// ```
///
/// An `async fn` is refused: the body is a green thread, which blocks
/// where a future would await (use [`block_on`] inside it).
///
/// ```compile_fail
/// #[fibra::main]
/// async fn main() {}
/// ```
pub use fibra_macros::main;

/// A `#[test]` whose body runs inside [`run`] (`#[fibra::test(workers =
/// 2)]` sets the number of workers); it may return a `Result`, as tests
/// may.
///
/// ```
/// #[fibra::test]
/// fn channels_work() {
///     let (tx, rx) = fibra::chan::channel(1);
///     tx.send(5).unwrap();
///     assert_eq!(rx.recv(), Ok(5));
/// }
/// ```
pub use fibra_macros::test;

/// The garbage-collected heap (the `fibra-gc` crate).
pub mod gc {
    pub use fibra_gc::*;
}

mod prometheus;

/// Seeing inside a running program: task dumps ([`dump`](debug::dump)),
/// the deadlock report, the SIGQUIT dump, preemption counts, and the
/// runtime's and collector's figures for Prometheus
/// ([`prometheus`](debug::prometheus)). See `fibra_runtime::debug` for the
/// deadlock report's rules.
///
/// ```
/// fibra::run(|| {
///     assert!(fibra::debug::dump().contains("workers"));
///     assert!(fibra::debug::prometheus().contains("fibra_tasks_spawned_total"));
/// });
/// ```
pub mod debug {
    #[doc(inline)]
    pub use fibra_runtime::debug::*;

    pub use crate::prometheus::prometheus;
}

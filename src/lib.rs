//! fibra: Go's execution and memory model for Rust.
//!
//! Cheap stackful green threads scheduled M:N by a work-stealing
//! scheduler, blocking-style sockets on a netpoller, Go channels and
//! `select!`, and a shared garbage-collected heap ([`gc`]) whose
//! concurrent collector stops all tasks for microseconds - integrated with
//! Rust async.
//!
//! ```
//! let v = fibra::run(|| {
//!     let h = fibra::spawn(|| "hello from a green thread");
//!     h.join().unwrap()
//! });
//! assert_eq!(v, "hello from a green thread");
//! ```
//!
//! # A tour
//!
//! **Green threads.** [`run`] starts a runtime (one worker per CPU, or
//! `FIBRA_WORKERS`), runs a closure as its main green thread and returns
//! its value; [`#[fibra::main]`](macro@main) does the same for a function.
//! [`spawn`] starts a green thread and returns a [`JoinHandle`]:
//! [`join`](JoinHandle::join) blocks the green thread (not the OS thread),
//! [`cancel`](JoinHandle::cancel) unwinds it where it waits. A green
//! thread costs one page of stack while it runs shallow; a million parked
//! ones fit in a few GiB. [`Runtime::builder`] sets workers, stack sizes
//! and the deadlock grace period.
//!
//! ```
//! fibra::run(|| {
//!     let handles: Vec<_> = (0..1000u64).map(|i| fibra::spawn(move || i * i)).collect();
//!     let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
//!     assert_eq!(sum, 332_833_500);
//! });
//! ```
//!
//! **Pinning.** A green thread starts on any worker (idle workers steal
//! work that has not started) and then never leaves that worker's OS
//! thread, so thread-locals, `!Send` values held across a park, and
//! libraries that care which thread calls them behave as in a plain
//! thread.
//!
//! **Channels and `select!`** ([`chan`]): Go's channels - rendezvous
//! (`channel(0)`) or buffered, closable, usable from green threads, OS
//! threads and async tasks - and [`select!`] with Go's semantics;
//! [`time::after`] and [`time::Ticker`] are channels too.
//!
//! ```
//! use fibra::{chan::channel, select, time::after};
//! use std::time::Duration;
//!
//! fibra::run(|| {
//!     let (tx, rx) = channel::<u32>(0);
//!     fibra::spawn(move || tx.send(7).unwrap());
//!     let got = select! {
//!         recv(rx) -> v => v.unwrap(),
//!         recv(after(Duration::from_secs(5))) -> _ => panic!("timed out"),
//!     };
//!     assert_eq!(got, 7);
//! });
//! ```
//!
//! **Blocking-style IO** ([`net`]): `TcpListener`, `TcpStream`,
//! `UdpSocket` and Unix sockets with std's API. Inside a green thread a
//! read that would block parks it on the netpoller; timeouts work as in
//! std. One green thread per connection is the intended style
//! (`examples/echo.rs`, `examples/http`).
//!
//! **Locks and waiting** ([`sync`]): `Mutex`, `RwLock`, `Condvar`,
//! `WaitGroup`, `Semaphore` that park a green thread instead of blocking
//! its worker; [`time::sleep`] likewise. [`spawn_blocking`] moves blocking
//! work that fibra cannot park (file IO, C calls) to a thread pool.
//!
//! **Async.** A [`JoinHandle`] is a future; [`spawn_async`] runs a future
//! as a task on the same workers; [`block_on`] waits for a future from a
//! green thread (parking only it) or an OS thread; channels are
//! `futures::Stream`/`Sink`. With the `tokio` feature, fibra's workers
//! provide a tokio context, so tokio's IO and timers work inside fibra and
//! `fibra::io::SyncIo` turns an async stream into a blocking one.
//!
//! ```
//! fibra::run(|| {
//!     let h = fibra::spawn_async(async { 6 * 7 });
//!     assert_eq!(fibra::block_on(h).unwrap(), 42);
//! });
//! ```
//!
//! **The heap** ([`gc`]): `Gc<T>` handles to a heap shared by every
//! thread, with cycles collected concurrently; see the guide there.
//!
//! **Seeing inside** ([`debug`]): [`debug::dump`] lists every task and
//! what it waits on (also on `SIGQUIT`), a program whose green threads all
//! sleep gets Go's "all green threads are asleep - deadlock!" report
//! instead of a hang, and [`stats`] gives per-worker and GC counters.
//! The `FIBRA_*` environment variables are listed in the README.
//!
//! # Platforms
//!
//! Linux on x86-64 and aarch64.

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

pub mod gc {
    #![doc = include_str!("gc_guide.md")]

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

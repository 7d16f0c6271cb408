//! Synchronization for green threads: [`Mutex`], [`RwLock`], [`Condvar`],
//! [`WaitGroup`] and [`Semaphore`].
//!
//! Each parks a waiting green thread (its worker runs other tasks), blocks a
//! waiting plain OS thread, and has an async form for async tasks. The std
//! equivalents would block the whole worker, and every green thread queued on
//! it. Poisoning follows std: a `Mutex` or `RwLock` whose holder panicked
//! returns `Err(PoisonError)` that still carries the guard.
//!
//! ```
//! use std::sync::Arc;
//! use fibra::sync::{Mutex, WaitGroup};
//! fibra::run(|| {
//!     let total = Arc::new(Mutex::new(0));
//!     let wg = Arc::new(WaitGroup::new());
//!     for i in 0..10 {
//!         wg.add(1);
//!         let (total, wg) = (total.clone(), wg.clone());
//!         fibra::spawn(move || {
//!             *total.lock().unwrap() += i;
//!             wg.done();
//!         });
//!     }
//!     wg.wait();
//!     assert_eq!(*total.lock().unwrap(), 45);
//! });
//! ```

mod condvar;
#[cfg(all(test, loom))]
mod loom_tests;
mod mutex;
mod poison;
mod rwlock;
mod semaphore;
mod wait_queue;
mod waitgroup;

pub use condvar::{Condvar, WaitTimeoutResult};
pub use mutex::{Mutex, MutexGuard};
pub use rwlock::{RwLock, RwLockReadGuard, RwLockWriteGuard};
pub use semaphore::{Semaphore, SemaphorePermit};
pub use waitgroup::WaitGroup;

//! Switches the lock-free cores between std's atomics and loom's model
//! checker (`RUSTFLAGS="--cfg loom"`). Only the modules with a loom model use
//! these paths: the task state machine, the OS-thread parker and the worker
//! idle protocol.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicUsize};
#[cfg(loom)]
pub(crate) use loom::sync::{Condvar, Mutex};

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicUsize};

#[cfg(not(loom))]
pub(crate) use self::std_sync::{Condvar, Mutex};

/// parking_lot's lock and condition variable behind std's (and loom's)
/// method shapes, so the modelled code is the code that ships.
#[cfg(not(loom))]
mod std_sync {
    use std::sync::LockResult;
    use std::time::Duration;

    pub(crate) struct Mutex<T>(parking_lot::Mutex<T>);
    pub(crate) struct Condvar(parking_lot::Condvar);

    impl<T> Mutex<T> {
        pub(crate) fn new(v: T) -> Mutex<T> {
            Mutex(parking_lot::Mutex::new(v))
        }
        pub(crate) fn lock(&self) -> LockResult<parking_lot::MutexGuard<'_, T>> {
            Ok(self.0.lock())
        }
    }

    impl Condvar {
        pub(crate) fn new() -> Condvar {
            Condvar(parking_lot::Condvar::new())
        }
        pub(crate) fn wait<'a, T>(
            &self,
            mut guard: parking_lot::MutexGuard<'a, T>,
        ) -> LockResult<parking_lot::MutexGuard<'a, T>> {
            self.0.wait(&mut guard);
            Ok(guard)
        }
        pub(crate) fn wait_timeout<'a, T>(
            &self,
            mut guard: parking_lot::MutexGuard<'a, T>,
            dur: Duration,
        ) -> LockResult<(parking_lot::MutexGuard<'a, T>, ())> {
            self.0.wait_for(&mut guard, dur);
            Ok((guard, ()))
        }
        pub(crate) fn notify_one(&self) {
            self.0.notify_one();
        }
    }
}

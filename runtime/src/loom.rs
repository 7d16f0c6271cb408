//! Switches the lock-free cores between std's atomics and loom's model
//! checker (`RUSTFLAGS="--cfg loom"`). Only the modules with a loom model use
//! these paths: the task state machine, the OS-thread parker, the worker
//! idle protocol, the channel core (`chan`) and the locks of `sync`.

#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicBool, AtomicUsize};
#[cfg(loom)]
pub(crate) use loom::sync::{Condvar, Mutex};

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicBool, AtomicUsize};

#[cfg(not(loom))]
pub(crate) use self::std_cell::UnsafeCell;

#[cfg(loom)]
pub(crate) type MutexGuard<'a, T> = loom::sync::MutexGuard<'a, T>;
#[cfg(not(loom))]
pub(crate) type MutexGuard<'a, T> = parking_lot::MutexGuard<'a, T>;

/// Locks `m` (neither lock is ever poisoned: no user code runs under the
/// internal locks).
#[inline]
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// One step of a short busy wait for another thread that is inside a few
/// instructions of a critical section (loom must be told to switch threads).
#[inline]
pub(crate) fn spin_wait(step: &crossbeam_utils::Backoff) {
    #[cfg(loom)]
    {
        let _ = step;
        loom::thread::yield_now();
    }
    #[cfg(not(loom))]
    step.snooze();
}

/// `std::cell::UnsafeCell` with loom's closure-based access, so that loom
/// can check the accesses of modelled code.
#[cfg(not(loom))]
mod std_cell {
    #[derive(Debug, Default)]
    pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

    impl<T> UnsafeCell<T> {
        pub(crate) const fn new(v: T) -> UnsafeCell<T> {
            UnsafeCell(std::cell::UnsafeCell::new(v))
        }
        #[inline(always)]
        #[allow(dead_code)] // used by tests and loom models
        pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
            f(self.0.get())
        }
        #[inline(always)]
        pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }
    }
}

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

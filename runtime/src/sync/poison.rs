//! Poisoning, as std does it: a `Mutex` or `RwLock` whose holder panicked
//! while holding it for writing is marked, and every later lock returns
//! `Err(PoisonError)` that still carries the guard (or value), until
//! `clear_poison`.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{LockResult, PoisonError};

use crate::loom::AtomicBool;

/// The poison mark of one lock.
pub(crate) struct Poison {
    /// Set by a guard dropped while its thread unwinds.
    poisoned: AtomicBool,
}

impl Poison {
    pub(crate) fn new() -> Poison {
        Poison {
            poisoned: AtomicBool::new(false),
        }
    }

    /// Whether a holder panicked.
    #[inline]
    pub(crate) fn get(&self) -> bool {
        self.poisoned.load(Relaxed)
    }

    pub(crate) fn clear(&self) {
        self.poisoned.store(false, Relaxed);
    }

    /// Called by a write guard as it drops: poisons the lock if the thread
    /// started panicking while the guard was held (`panicking_at_lock`
    /// says whether it already was when the guard was made).
    #[inline]
    pub(crate) fn mark_if_panicked(&self, panicking_at_lock: bool) {
        if !panicking_at_lock && std::thread::panicking() {
            self.poisoned.store(true, Relaxed);
        }
    }

    /// `value` as a `LockResult`: `Err` carrying it if poisoned.
    #[inline]
    pub(crate) fn wrap<G>(&self, value: G) -> LockResult<G> {
        if self.get() {
            Err(PoisonError::new(value))
        } else {
            Ok(value)
        }
    }
}

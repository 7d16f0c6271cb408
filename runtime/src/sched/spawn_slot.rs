//! The spawn slot: a worker's `runnext` for green threads spawned by its
//! green threads, which peers may steal only once it has sat there a while.
//!
//! # Why
//!
//! A green thread spawned by a green thread usually talks to its spawner
//! (a channel partner, a request's helper). Started where the spawner runs,
//! the pair's wake-ups stay on one worker; started elsewhere, the pair is
//! pinned apart for good and every message crosses workers. So the spawn
//! goes to this slot, which the owner runs next, as Go's `runqput(.., next
//! = true)` puts a new goroutine in `runnext`. An idle peer may still take
//! it, but only once it has sat there for `GRACE`: long enough for a
//! spawner that is about to block to let its worker run the new task,
//! short enough that a spawner that keeps computing does not hold it back.
//! Go's `runqsteal` waits `usleep(3)` before taking `runnext`, which on
//! Linux sleeps for the default timer slack of 50 µs and more; a 3 µs
//! grace here let a spawner whose thread the kernel descheduled for a
//! moment lose its partner to the other worker for good.
//!
//! # Protocol
//!
//! The slot is one atomic pointer that owns a strong reference when it is
//! not null, and the time its occupant was put there. The owner stores
//! the time, then puts with `swap` (getting the previous occupant back,
//! which it moves to its stealable deque) and takes with `swap(null)`; a
//! thief reads the pointer (acquire) and then the time, and takes with
//! `compare_exchange(seen, null)` if the occupant is old enough. Each
//! transition moves the one reference the slot holds to exactly one
//! thread. A thief's `seen` may be a newer task at a recycled address
//! (ABA), or the time it reads may belong to a newer occupant: the
//! exchange still hands over exactly the reference the slot held, so that
//! only shortens or lengthens a task's grace.

use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::task::Task;

/// How long a task must have sat in a slot before a thief takes it.
pub(crate) const GRACE: Duration = Duration::from_micros(50);

/// A worker's spawn slot (see the module docs).
pub(crate) struct SpawnSlot {
    /// `Arc::into_raw` of the occupant, or null.
    task: AtomicPtr<Task>,
    /// When the occupant was put there (the runtime's clock, in ns).
    since: AtomicU64,
}

impl Default for SpawnSlot {
    fn default() -> SpawnSlot {
        SpawnSlot {
            task: AtomicPtr::new(std::ptr::null_mut()),
            since: AtomicU64::new(0),
        }
    }
}

impl SpawnSlot {
    /// Owner: puts `task` in the slot at time `now` and returns the
    /// previous occupant.
    pub(crate) fn put(&self, task: Arc<Task>, now: u64) -> Option<Arc<Task>> {
        self.since.store(now, Ordering::Relaxed);
        let new = Arc::into_raw(task).cast_mut();
        let old = self.task.swap(new, Ordering::AcqRel);
        // SAFETY: a non-null value in the slot is a reference made by
        // `Arc::into_raw` in `put` and owned by the slot; the swap moved it
        // to us.
        (!old.is_null()).then(|| unsafe { Arc::from_raw(old) })
    }

    /// Owner: takes the occupant.
    #[inline]
    pub(crate) fn take(&self) -> Option<Arc<Task>> {
        if self.is_empty() {
            return None;
        }
        let old = self.task.swap(std::ptr::null_mut(), Ordering::AcqRel);
        // SAFETY: as in `put`.
        (!old.is_null()).then(|| unsafe { Arc::from_raw(old) })
    }

    /// Whether the slot is empty (a hint: it may change at once).
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.task.load(Ordering::Relaxed).is_null()
    }

    /// When the occupant (if any) may be stolen, on the runtime's clock.
    pub(crate) fn stealable_at(&self) -> Option<u64> {
        if self.task.load(Ordering::Acquire).is_null() {
            return None;
        }
        Some(self.since.load(Ordering::Relaxed) + GRACE.as_nanos() as u64)
    }

    /// Thief: takes the occupant if it has sat there for [`GRACE`] at time
    /// `now`.
    pub(crate) fn steal(&self, now: u64) -> Option<Arc<Task>> {
        let seen = self.task.load(Ordering::Acquire);
        if seen.is_null() {
            return None;
        }
        // Read after the pointer: at least as new as `seen`'s time.
        if now < self.since.load(Ordering::Relaxed) + GRACE.as_nanos() as u64 {
            return None;
        }
        self.task
            .compare_exchange(
                seen,
                std::ptr::null_mut(),
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .ok()
            // SAFETY: the exchange moved the slot's reference (to the
            // task at `seen`, see the module docs on ABA) to us.
            .map(|p| unsafe { Arc::from_raw(p) })
    }
}

impl Drop for SpawnSlot {
    fn drop(&mut self) {
        drop(self.take());
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::task::Schedule;
    use std::sync::atomic::AtomicUsize;

    struct Nowhere;
    impl Schedule for Nowhere {
        fn schedule(&self, _: Arc<Task>, _: crate::task::Reason) {}
    }

    fn task() -> Arc<Task> {
        Task::new_green(Arc::new(Nowhere), None, 0, || ())
    }

    #[test]
    fn the_owner_gets_the_previous_occupant_back() {
        let slot = SpawnSlot::default();
        let (a, b) = (task(), task());
        assert!(slot.put(a.clone(), 0).is_none());
        let back = slot.put(b.clone(), 0).unwrap();
        assert!(Arc::ptr_eq(&back, &a));
        assert!(Arc::ptr_eq(&slot.take().unwrap(), &b));
        assert!(slot.take().is_none());
        assert!(slot.steal(u64::MAX).is_none());
    }

    #[test]
    fn a_thief_takes_only_an_occupant_that_stayed_its_grace() {
        let slot = SpawnSlot::default();
        let a = task();
        let put_at = 1_000;
        let grace = GRACE.as_nanos() as u64;
        slot.put(a.clone(), put_at);
        assert_eq!(slot.stealable_at(), Some(put_at + grace));
        assert!(slot.steal(put_at + grace - 1).is_none());
        let stolen = slot.steal(put_at + grace).unwrap();
        assert!(Arc::ptr_eq(&stolen, &a));
        assert!(slot.is_empty());
        assert_eq!(slot.stealable_at(), None);
    }

    /// The owner puts and takes while thieves steal: every task comes out
    /// exactly once, and the slot's references are neither leaked nor
    /// freed twice.
    #[test]
    fn every_task_comes_out_once_under_contention() {
        const TASKS: usize = 2000;
        let slot = Arc::new(SpawnSlot::default());
        let out = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..TASKS).map(|_| task()).collect();
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thieves: Vec<_> = (0..2)
            .map(|_| {
                let (slot, out, done) = (slot.clone(), out.clone(), done.clone());
                std::thread::spawn(move || {
                    while !done.load(Ordering::Acquire) {
                        if slot.steal(u64::MAX).is_some() {
                            out.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for (i, t) in tasks.iter().enumerate() {
            if slot.put(t.clone(), 0).is_some() {
                out.fetch_add(1, Ordering::Relaxed);
            }
            if i % 3 == 0 && slot.take().is_some() {
                out.fetch_add(1, Ordering::Relaxed);
            }
        }
        done.store(true, Ordering::Release);
        for t in thieves {
            t.join().unwrap();
        }
        if slot.take().is_some() {
            out.fetch_add(1, Ordering::Relaxed);
        }
        assert_eq!(out.load(Ordering::Relaxed), TASKS);
        for t in &tasks {
            assert_eq!(Arc::strong_count(t), 1, "a reference leaked");
        }
    }
}

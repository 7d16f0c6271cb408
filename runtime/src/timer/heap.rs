//! Timer heaps and timer entries.
//!
//! # Protocol
//!
//! A [`TimerEntry`] is shared by the waiting side (a [`Sleep`](super::Sleep))
//! and the heap that will fire it. Its state moves once, by compare-and-swap,
//! from `PENDING` to either `FIRED` (the heap won: it wakes the stored waker)
//! or `CANCELLED` (the waiter went away first: the heap drops the entry when
//! it pops it). The waker sits behind a small lock so a re-poll can replace it
//! while the heap may be firing; the heap takes it after winning the CAS, so a
//! waiter that sees `PENDING`, stores a waker, and re-checks the state cannot
//! miss the wake.
//!
//! Each worker owns a [`TimerHeap`] for the timers its tasks set (no locking,
//! fired at scheduler ticks and when it would sleep); timers set from other
//! threads go to one process-wide timer thread. Cancelled entries stay in the
//! heap until popped or until the heap compacts itself (when it has doubled
//! since the last compaction), so insert is O(log n), cancel O(1), and a
//! million pending timers cost only their memory.

use std::cmp::{Ordering as CmpOrdering, Reverse};
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::Waker;
use std::time::Instant;

const PENDING: u8 = 0;
const FIRED: u8 = 1;
const CANCELLED: u8 = 2;

/// One armed timer.
pub(crate) struct TimerEntry {
    /// When it fires.
    pub(crate) deadline: Instant,
    /// `PENDING`, `FIRED` or `CANCELLED`.
    state: AtomicU8,
    /// Who to wake.
    waker: parking_lot::Mutex<Option<Waker>>,
}

impl TimerEntry {
    pub(crate) fn new(deadline: Instant, waker: Waker) -> Arc<TimerEntry> {
        Arc::new(TimerEntry {
            deadline,
            state: AtomicU8::new(PENDING),
            waker: parking_lot::Mutex::new(Some(waker)),
        })
    }

    pub(crate) fn is_fired(&self) -> bool {
        self.state.load(Ordering::Acquire) == FIRED
    }

    /// Replaces the waker if it would not wake the same task.
    pub(crate) fn set_waker(&self, waker: &Waker) {
        let mut slot = self.waker.lock();
        if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
            *slot = Some(waker.clone());
        }
    }

    /// The waiter went away.
    pub(crate) fn cancel(&self) {
        if self
            .state
            .compare_exchange(PENDING, CANCELLED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.waker.lock().take();
        }
    }

    /// The heap's side: fire unless cancelled.
    fn fire(&self) {
        if self
            .state
            .compare_exchange(PENDING, FIRED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            let waker = self.waker.lock().take();
            if let Some(w) = waker {
                w.wake();
            }
        }
    }

    fn is_cancelled(&self) -> bool {
        self.state.load(Ordering::Relaxed) == CANCELLED
    }
}

/// Fires timers taken with [`TimerHeap::take_expired`]; returns how many
/// were still armed.
pub(crate) fn fire_all(due: Vec<Arc<TimerEntry>>) -> usize {
    let n = due.len();
    for entry in due {
        entry.fire();
    }
    n
}

struct Slot {
    deadline: Instant,
    seq: u64,
    entry: Arc<TimerEntry>,
}

impl PartialEq for Slot {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == CmpOrdering::Equal
    }
}
impl Eq for Slot {}
impl PartialOrd for Slot {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl Ord for Slot {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        (self.deadline, self.seq).cmp(&(other.deadline, other.seq))
    }
}

/// A min-heap of timers by deadline.
#[derive(Default)]
pub(crate) struct TimerHeap {
    heap: BinaryHeap<Reverse<Slot>>,
    seq: u64,
    /// Heap size right after the last compaction.
    compacted_len: usize,
}

impl TimerHeap {
    pub(crate) fn insert(&mut self, entry: Arc<TimerEntry>) {
        if self.heap.len() >= 1024 && self.heap.len() >= 2 * self.compacted_len {
            self.heap.retain(|Reverse(s)| !s.entry.is_cancelled());
            self.compacted_len = self.heap.len();
        }
        self.seq += 1;
        self.heap.push(Reverse(Slot {
            deadline: entry.deadline,
            seq: self.seq,
            entry,
        }));
    }

    /// The earliest deadline, if any timer is armed.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(Reverse(top)) = self.heap.peek() {
            if top.entry.is_cancelled() {
                self.heap.pop();
            } else {
                return Some(top.deadline);
            }
        }
        None
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// Removes every timer due at `now`. The caller fires them with
    /// [`fire_all`] after releasing its borrow of the heap, since a waker may
    /// run arbitrary code (even set a new timer).
    pub(crate) fn take_expired(&mut self, now: Instant) -> Vec<Arc<TimerEntry>> {
        let mut due = Vec::new();
        while let Some(Reverse(top)) = self.heap.peek() {
            if top.deadline > now {
                break;
            }
            let Reverse(slot) = self.heap.pop().expect("peeked");
            if !slot.entry.is_cancelled() {
                due.push(slot.entry);
            }
        }
        if self.heap.is_empty() {
            self.compacted_len = 0;
        }
        due
    }

    /// Drops every entry (shutdown).
    pub(crate) fn clear(&mut self) {
        self.heap.clear();
        self.compacted_len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    use crate::test_waker::Count;

    #[test]
    fn fires_in_deadline_order_and_skips_cancelled() {
        let counter = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(counter.clone());
        let now = Instant::now();
        let mut heap = TimerHeap::default();
        let a = TimerEntry::new(now + Duration::from_millis(5), waker.clone());
        let b = TimerEntry::new(now + Duration::from_millis(1), waker.clone());
        let c = TimerEntry::new(now + Duration::from_millis(3), waker);
        heap.insert(a.clone());
        heap.insert(b.clone());
        heap.insert(c.clone());
        c.cancel();
        assert_eq!(heap.next_deadline(), Some(b.deadline));
        assert_eq!(
            fire_all(heap.take_expired(now + Duration::from_millis(4))),
            1
        );
        assert!(b.is_fired() && !c.is_fired() && !a.is_fired());
        assert_eq!(heap.next_deadline(), Some(a.deadline));
        assert_eq!(
            fire_all(heap.take_expired(now + Duration::from_millis(5))),
            1
        );
        assert_eq!(counter.0.load(Ordering::SeqCst), 2);
        assert!(heap.is_empty());
    }

    #[test]
    fn compaction_bounds_cancelled_entries() {
        let waker = Waker::from(Arc::new(Count(AtomicUsize::new(0))));
        let far = Instant::now() + Duration::from_secs(3600);
        let mut heap = TimerHeap::default();
        for _ in 0..100_000 {
            let e = TimerEntry::new(far, waker.clone());
            heap.insert(e.clone());
            e.cancel();
        }
        assert!(
            heap.len() <= 2048,
            "cancelled timers piled up: {}",
            heap.len()
        );
    }
}

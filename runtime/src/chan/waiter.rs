//! Waiters: how a blocked send, receive or select sits in a channel's queue
//! and is completed by exactly one counterpart.
//!
//! # Vocabulary
//!
//! - A [`Token`] belongs to one blocking operation (a `send`, a `recv`, a
//!   `recv_async` future, or one whole `select!`). It holds the operation's
//!   waker and its *selection state*.
//! - An [`Entry`] is that operation's place in one channel's send or receive
//!   queue: a pointer to the token, the select arm it stands for, and a
//!   pointer to the value slot (the value to send, or where the received value
//!   goes). A `select!` parked on three channels has one token and three
//!   entries.
//!
//! Tokens and slots live where the waiting operation lives: on the stack of
//! the parked green thread or OS thread, or inside a pinned future. Nothing
//! is allocated to block.
//!
//! # Selection states
//!
//! ```text
//!   WAITING ──claim(arm) by a counterpart──► CLAIMED(arm) ──complete──► DONE(arm[, CLOSED])
//!      │
//!      └──abort by the owner (timeout, future dropped, select retry)──► ABORTED
//! ```
//!
//! - `claim` and `abort` are compare-and-swaps from `WAITING`: exactly one
//!   party ever leaves `WAITING`, so a select parked on several channels is
//!   completed by one of them only.
//! - A counterpart claims, moves the value through the slot and completes
//!   while holding the lock of the channel whose queue held the entry, and
//!   takes the waker out *before* publishing `DONE`. After `DONE` it touches
//!   nothing of the waiter's again, and wakes it after unlocking.
//! - A counterpart that fails to claim an entry (its token is no longer
//!   `WAITING`) drops the entry as stale and goes on to the next one: a
//!   losing arm never consumes a wake-up meant for someone else.
//!
//! # Invariant (why the raw pointers are sound)
//!
//! An entry is only dereferenced by a thread holding the lock of the channel
//! whose queue contains it. The owner removes every entry it still has in a
//! queue (under that queue's lock) before its token and slots go away, and
//! a counterpart removes the entry it claims before completing it. Hence a
//! token and its slots outlive every entry that points to them. The owner
//! reads a slot only after observing `DONE` (acquire), or after `abort`
//! succeeded (nobody will ever write it).

use std::task::Waker;

use crossbeam_utils::Backoff;

use crate::loom::{AtomicUsize, UnsafeCell};
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};

const WAITING: usize = 0;
const ABORTED: usize = 1;
const CLAIMED: usize = 2;
const DONE: usize = 4;
const CLOSED: usize = 8;
const ARM_SHIFT: u32 = 4;

/// How a blocked operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// The select arm that completed (0 for plain operations).
    pub(crate) arm: usize,
    /// The channel was closed instead: a receiver got no value, a sender
    /// keeps its value in its slot.
    pub(crate) closed: bool,
}

/// The selection state and waker of one blocking operation. See the module
/// docs.
#[derive(Debug)]
pub struct Token {
    state: AtomicUsize,
    /// Written by the owner before the token is visible in any queue, or
    /// under the lock of the single channel it waits on; taken by the
    /// counterpart that claimed the token.
    waker: UnsafeCell<Option<Waker>>,
}

// SAFETY: the waker cell is accessed by the protocol of the module docs
// (owner before publication or under the channel lock; claimer between
// claim and DONE under the same lock); the state is atomic.
unsafe impl Send for Token {}
// SAFETY: as above.
unsafe impl Sync for Token {}

impl Token {
    pub(crate) fn new() -> Token {
        Token {
            state: AtomicUsize::new(WAITING),
            waker: UnsafeCell::new(None),
        }
    }

    /// Stores the waker to call on completion.
    ///
    /// # Safety
    /// The caller is the owner, and either no entry of this token is in a
    /// queue, or it holds the lock of the only channel whose queues may hold
    /// its entries and the token is not `CLAIMED`.
    #[inline]
    pub(crate) unsafe fn set_waker(&self, waker: &Waker) {
        self.waker.with_mut(|w| {
            // SAFETY: exclusive access per the caller's contract.
            let w = unsafe { &mut *w };
            match w {
                Some(old) if old.will_wake(waker) => {}
                _ => *w = Some(waker.clone()),
            }
        });
    }

    /// Owner: back to `WAITING` for another attempt.
    ///
    /// # Safety
    /// No entry of this token is in any queue.
    pub(crate) unsafe fn reset(&self) {
        self.state.store(WAITING, Relaxed);
    }

    /// Counterpart, holding the lock of the queue that held the entry:
    /// `WAITING -> CLAIMED(arm)`. On success the caller must move the value
    /// and call [`complete`](Self::complete) before unlocking.
    #[inline]
    pub(crate) fn try_claim(&self, arm: usize) -> bool {
        let claimed = CLAIMED | ((arm + 1) << ARM_SHIFT);
        self.state
            .compare_exchange(WAITING, claimed, Acquire, Relaxed)
            .is_ok()
    }

    /// Counterpart: `CLAIMED(arm) -> DONE(arm)`, returning the waker to call
    /// once the channel lock is released.
    ///
    /// # Safety
    /// The caller claimed this token for `arm` and still holds the lock of
    /// the queue that held the entry.
    #[inline]
    pub(crate) unsafe fn complete(&self, arm: usize, closed: bool) -> Option<Waker> {
        // SAFETY: between claim and DONE only the claimer touches the waker.
        let waker = self.waker.with_mut(|w| unsafe { (*w).take() });
        let flags = if closed { DONE | CLOSED } else { DONE };
        // Nobody else writes the word after the claim: a plain release
        // store publishes the slot and the outcome.
        self.state
            .store(CLAIMED | ((arm + 1) << ARM_SHIFT) | flags, Release);
        waker
    }

    /// Whether a counterpart may still claim this token.
    #[inline]
    pub(crate) fn is_waiting(&self) -> bool {
        self.state.load(Relaxed) == WAITING
    }

    /// Owner: the outcome, once a counterpart completed the operation.
    #[inline]
    pub(crate) fn outcome(&self) -> Option<Outcome> {
        decode(self.state.load(Acquire))
    }

    /// Owner: `WAITING -> ABORTED`, so that no counterpart will claim the
    /// token. Fails with the outcome if one already did (waiting for the
    /// claimer to finish its few instructions under the channel lock).
    pub(crate) fn abort(&self) -> Result<(), Outcome> {
        match self
            .state
            .compare_exchange(WAITING, ABORTED, AcqRel, Acquire)
        {
            Ok(_) => Ok(()),
            Err(ABORTED) => Ok(()),
            Err(_) => Err(self.wait_done()),
        }
    }

    /// Owner: spins until a claimer publishes `DONE`.
    fn wait_done(&self) -> Outcome {
        let backoff = Backoff::new();
        loop {
            if let Some(o) = self.outcome() {
                return o;
            }
            crate::loom::spin_wait(&backoff);
        }
    }
}

fn decode(state: usize) -> Option<Outcome> {
    if state & DONE == 0 || state & CLAIMED == 0 {
        return None;
    }
    Some(Outcome {
        arm: (state >> ARM_SHIFT) - 1,
        closed: state & CLOSED != 0,
    })
}

/// One waiting operation's place in one channel queue.
pub(crate) struct Entry<T> {
    /// The owner's token.
    token: *const Token,
    /// The select arm this entry stands for.
    arm: usize,
    /// The value to send, or where the received value goes.
    slot: *const UnsafeCell<Option<T>>,
}

// SAFETY: an entry is a capability to move a `T` between threads under the
// channel lock (see the module docs); it is `Send` when `T` is.
unsafe impl<T: Send> Send for Entry<T> {}

impl<T> Entry<T> {
    /// # Safety
    /// `token` and `slot` must stay valid until the entry has been removed
    /// from every queue (the owner's unregistration does that).
    pub(crate) unsafe fn new(token: &Token, arm: usize, slot: &UnsafeCell<Option<T>>) -> Entry<T> {
        Entry { token, arm, slot }
    }

    fn token(&self) -> &Token {
        // SAFETY: the module invariant: the entry is in (or was just taken
        // from) a queue whose lock the caller holds.
        unsafe { &*self.token }
    }

    /// Claimed receiver entry: hands it `v` and completes it.
    ///
    /// # Safety
    /// The caller claimed the token and holds the lock of the queue the
    /// entry came from.
    #[inline]
    pub(crate) unsafe fn deliver(self, v: T) -> Option<Waker> {
        // SAFETY: between claim and DONE the claimer owns the slot.
        (*self.slot).with_mut(|p| unsafe { *p = Some(v) });
        self.token().complete(self.arm, false)
    }

    /// Claimed sender entry: takes its value and completes it.
    ///
    /// # Safety
    /// As for [`deliver`](Self::deliver).
    #[inline]
    pub(crate) unsafe fn take(self) -> (T, Option<Waker>) {
        // SAFETY: between claim and DONE the claimer owns the slot; a
        // registered sender's slot holds its value.
        let v = (*self.slot).with_mut(|p| unsafe { (*p).take() });
        let v = v.expect("fibra: a waiting sender has a value");
        (v, self.token().complete(self.arm, false))
    }

    /// Claimed entry of either kind: completes it as "channel closed".
    ///
    /// # Safety
    /// As for [`deliver`](Self::deliver).
    pub(crate) unsafe fn close(self) -> Option<Waker> {
        self.token().complete(self.arm, true)
    }
}

/// A channel's queue of waiting senders or receivers, FIFO.
pub(crate) struct WaitQueue<T> {
    entries: std::collections::VecDeque<Entry<T>>,
    /// The length changed since the owner last looked (see
    /// [`take_changed`](Self::take_changed)).
    changed: bool,
}

impl<T> WaitQueue<T> {
    pub(crate) fn new() -> WaitQueue<T> {
        WaitQueue {
            entries: std::collections::VecDeque::new(),
            changed: false,
        }
    }

    #[inline]
    pub(crate) fn push(&mut self, entry: Entry<T>) {
        self.changed = true;
        self.entries.push_back(entry);
    }

    /// Takes and claims the first entry that does not belong to `me` (a
    /// select does not meet itself) and can still be claimed. Stale entries
    /// met on the way are dropped.
    #[inline]
    pub(crate) fn claim(&mut self, me: *const Token) -> Option<Entry<T>> {
        // The common case: the first entry is another operation's.
        if let Some(e) = self.entries.front() {
            if !std::ptr::eq(e.token, me) && e.token().try_claim(e.arm) {
                self.changed = true;
                return self.entries.pop_front();
            }
        } else {
            return None;
        }
        self.claim_slow(me)
    }

    #[cold]
    fn claim_slow(&mut self, me: *const Token) -> Option<Entry<T>> {
        self.changed = true;
        let mut i = 0;
        while i < self.entries.len() {
            if std::ptr::eq(self.entries[i].token, me) {
                i += 1;
                continue;
            }
            let e = if i == 0 {
                self.entries.pop_front()
            } else {
                self.entries.remove(i)
            };
            let e = e.expect("index is in bounds");
            if e.token().try_claim(e.arm) {
                return Some(e);
            }
        }
        None
    }

    /// Whether some entry not belonging to `me` looks claimable (a hint:
    /// the claim itself may still fail).
    pub(crate) fn has_waiting(&self, me: *const Token) -> bool {
        self.entries
            .iter()
            .any(|e| !std::ptr::eq(e.token, me) && e.token().is_waiting())
    }

    /// Removes the entry of `token` for `arm`, if it is still queued.
    pub(crate) fn remove(&mut self, token: *const Token, arm: usize) {
        if let Some(i) = self
            .entries
            .iter()
            .position(|e| std::ptr::eq(e.token, token) && e.arm == arm)
        {
            self.changed = true;
            self.entries.remove(i);
        }
    }

    /// Claims every claimable entry (for closing the channel); stale ones
    /// are dropped.
    pub(crate) fn drain_claimed(&mut self) -> impl Iterator<Item = Entry<T>> + '_ {
        self.changed = true;
        self.entries
            .drain(..)
            .filter(|e| e.token().try_claim(e.arm))
    }

    /// Whether the length changed since the last call.
    #[inline]
    pub(crate) fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn claim_then_complete_publishes_outcome() {
        let t = Token::new();
        assert!(t.outcome().is_none());
        assert!(t.try_claim(3));
        assert!(!t.try_claim(1), "a token is claimed once");
        assert!(t.outcome().is_none(), "claimed is not yet done");
        // SAFETY: we claimed it; no lock needed in a single-threaded test.
        unsafe { t.complete(3, false) };
        assert_eq!(
            t.outcome(),
            Some(Outcome {
                arm: 3,
                closed: false
            })
        );
        assert_eq!(
            t.abort(),
            Err(Outcome {
                arm: 3,
                closed: false
            })
        );
    }

    #[test]
    fn abort_prevents_claims() {
        let t = Token::new();
        assert_eq!(t.abort(), Ok(()));
        assert!(!t.try_claim(0));
        assert!(t.outcome().is_none());
    }

    #[test]
    fn queue_skips_own_and_stale_entries() {
        let me = Token::new();
        let stale = Token::new();
        let live = Token::new();
        let slots: Vec<UnsafeCell<Option<u32>>> = (0..3).map(|_| UnsafeCell::new(None)).collect();
        let mut q = WaitQueue::new();
        // SAFETY: the tokens and slots outlive the queue.
        unsafe {
            q.push(Entry::new(&me, 0, &slots[0]));
            q.push(Entry::new(&stale, 0, &slots[1]));
            q.push(Entry::new(&live, 1, &slots[2]));
        }
        stale.abort().unwrap();
        let e = q.claim(&me).expect("the live entry");
        // SAFETY: claimed above.
        assert!(unsafe { e.deliver(7) }.is_none());
        assert_eq!(
            live.outcome(),
            Some(Outcome {
                arm: 1,
                closed: false
            })
        );
        // SAFETY: the entry was delivered and removed: nothing else touches
        // the slot.
        slots[2].with(|p| assert_eq!(unsafe { *p }, Some(7)));
        assert_eq!(q.len(), 1, "own entry stays, stale one is gone");
        q.remove(&me, 0);
        assert_eq!(q.len(), 0);
    }
}

//! The readiness record of one socket ([`ScheduledIo`]) and its
//! edge-triggered protocol; see the parent module for who delivers events.

use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};

use mio::Token;
use parking_lot::{Mutex, MutexGuard};

// Readiness bits (low 16 bits of the word; the tick is above).
pub(super) const READABLE: u64 = 1;
pub(super) const WRITABLE: u64 = 2;
pub(super) const READ_CLOSED: u64 = 4;
pub(super) const WRITE_CLOSED: u64 = 8;
/// The driver shut down: every operation fails.
pub(super) const SHUTDOWN: u64 = 16;
/// The socket reported an error (with `READABLE | WRITABLE`): its next
/// operation returns it, so no result may count as drained (see
/// `clear_drained`).
pub(super) const ERROR: u64 = 32;
/// TCP urgent data arrived (`EPOLLPRI`): a read stops short at its mark
/// with bytes still queued, so, as after an error, no result may count as
/// drained.
pub(super) const URGENT: u64 = 64;
const BITS: u64 = 0xFFFF;
const TICK_SHIFT: u32 = 16;

/// `ScheduledIo::home` of a record in no poller's set yet.
pub(super) const UNREGISTERED: usize = usize::MAX;

/// Which way an operation moves data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// read, recv, accept.
    Read,
    /// write, send, connect.
    Write,
}

impl Direction {
    fn mask(self) -> u64 {
        match self {
            Direction::Read => READABLE | READ_CLOSED,
            Direction::Write => WRITABLE | WRITE_CLOSED,
        }
    }
}

/// A readiness snapshot: the bits of one direction and the tick they were
/// read at.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadyEvent {
    tick: u64,
    bits: u64,
    dir: Direction,
}

impl ReadyEvent {
    /// Whether the direction was ready.
    pub(crate) fn is_ready(&self) -> bool {
        self.bits & self.dir.mask() != 0
    }
}

/// Tasks waiting on one source, and where its registration lives.
#[derive(Default)]
pub(super) struct Waiters {
    readers: Vec<Waker>,
    writers: Vec<Waker>,
}

impl Waiters {
    /// Whether anybody waits on the source.
    pub(super) fn is_empty(&self) -> bool {
        self.readers.is_empty() && self.writers.is_empty()
    }
}

fn add_waker(list: &mut Vec<Waker>, waker: &Waker) {
    if !list.iter().any(|w| w.will_wake(waker)) {
        list.push(waker.clone());
    }
}

/// The readiness record of one socket.
pub(crate) struct ScheduledIo {
    /// Ready bits (low 16) and the event tick (above).
    readiness: AtomicU64,
    /// Who waits for which direction. Also serialises changes of `home`.
    waiters: Mutex<Waiters>,
    /// The mio token: slab index and generation.
    pub(super) token: Token,
    /// Index of the poller whose epoll set holds the socket, or
    /// `UNREGISTERED`. Written only under `waiters`.
    pub(super) home: AtomicUsize,
    /// Consecutive waits by green threads of a worker other than `home`
    /// (see `Driver::arm`): the registration moves on the second.
    pub(super) foreign_waits: AtomicU8,
}

impl ScheduledIo {
    pub(super) fn new(token: Token) -> ScheduledIo {
        ScheduledIo {
            readiness: AtomicU64::new(0),
            waiters: Mutex::new(Waiters::default()),
            token,
            home: AtomicUsize::new(UNREGISTERED),
            foreign_waits: AtomicU8::new(0),
        }
    }

    /// The waiters' lock (the driver moves registrations under it).
    pub(super) fn lock(&self) -> MutexGuard<'_, Waiters> {
        self.waiters.lock()
    }

    /// The current readiness of `dir`.
    pub(crate) fn snapshot(&self, dir: Direction) -> ReadyEvent {
        let word = self.readiness.load(Ordering::Acquire);
        ReadyEvent {
            tick: word >> TICK_SHIFT,
            bits: word & BITS,
            dir,
        }
    }

    /// Ready if `dir` is ready (or the driver shut down), else registers
    /// the waker and returns `Pending`. The caller has armed the record
    /// (`Driver::arm`), or an edge could go unreported.
    pub(crate) fn poll_ready(&self, cx: &mut Context<'_>, dir: Direction) -> Poll<ReadyEvent> {
        let ev = self.snapshot(dir);
        if ev.is_ready() || ev.bits & SHUTDOWN != 0 {
            return Poll::Ready(ev);
        }
        let mut waiters = self.waiters.lock();
        match dir {
            Direction::Read => add_waker(&mut waiters.readers, cx.waker()),
            Direction::Write => add_waker(&mut waiters.writers, cx.waker()),
        }
        // Re-read under the lock (see the module docs).
        let ev = self.snapshot(dir);
        drop(waiters);
        if ev.is_ready() || ev.bits & SHUTDOWN != 0 {
            return Poll::Ready(ev);
        }
        Poll::Pending
    }

    /// After a `WouldBlock`: forget `ev`'s readiness unless a newer event
    /// arrived since the snapshot.
    pub(crate) fn clear_readiness(&self, ev: ReadyEvent) {
        self.clear_since(ev, ev.dir.mask());
    }

    /// After a stream read that returned fewer bytes than asked (the
    /// receive queue was empty when it returned): forget `ev`'s `READABLE`
    /// unless a newer event arrived since the snapshot. `READ_CLOSED`
    /// stays, since a read at end of stream returns at once and no edge
    /// announces it again; and nothing is cleared after an error event,
    /// whose error the next read must still see, nor after urgent data.
    pub(crate) fn clear_drained(&self, ev: ReadyEvent) {
        if ev.bits & (ERROR | URGENT) == 0 {
            self.clear_since(ev, READABLE);
        }
    }

    /// Clears `bits` unless an event arrived since `ev` was read (the tick
    /// moved on).
    fn clear_since(&self, ev: ReadyEvent, bits: u64) {
        let _ = self
            .readiness
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |word| {
                (word >> TICK_SHIFT == ev.tick).then_some(word & !bits)
            });
    }

    /// Whether the socket is in a poller's epoll set, so that its readiness
    /// bits follow its edges: a clear bit then means "not ready until the
    /// next edge" (see `PollIo::io_loop`).
    pub(crate) fn is_registered(&self) -> bool {
        self.home.load(Ordering::Acquire) != UNREGISTERED
    }

    /// Whether the owning driver has shut down.
    pub(crate) fn is_shutdown(&self) -> bool {
        self.readiness.load(Ordering::Acquire) & SHUTDOWN != 0
    }

    /// The poller's side: publish `bits`, collect the wakers to wake.
    pub(super) fn set_readiness(&self, bits: u64, wake: &mut Vec<Waker>) {
        let _ = self
            .readiness
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |word| {
                let tick = (word >> TICK_SHIFT).wrapping_add(1) & (u64::MAX >> TICK_SHIFT);
                Some((tick << TICK_SHIFT) | (word & BITS) | bits)
            });
        let mut waiters = self.waiters.lock();
        if bits & (READABLE | READ_CLOSED | SHUTDOWN) != 0 {
            wake.append(&mut waiters.readers);
        }
        if bits & (WRITABLE | WRITE_CLOSED | SHUTDOWN) != 0 {
            wake.append(&mut waiters.writers);
        }
    }
}

/// The readiness bits of one epoll event.
pub(super) fn event_bits(event: &mio::event::Event) -> u64 {
    let mut bits = 0;
    if event.is_readable() {
        bits |= READABLE;
    }
    if event.is_writable() {
        bits |= WRITABLE;
    }
    if event.is_read_closed() {
        bits |= READ_CLOSED;
    }
    if event.is_write_closed() {
        bits |= WRITE_CLOSED;
    }
    if event.is_priority() {
        bits |= READABLE | URGENT;
    }
    if event.is_error() {
        // An error ends whatever waits: both sides retry their syscall and
        // see it.
        bits |= READABLE | WRITABLE | ERROR;
    }
    bits
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    use crate::test_waker::Count;

    fn record() -> ScheduledIo {
        ScheduledIo::new(Token(0))
    }

    #[test]
    fn an_event_during_the_syscall_is_not_cleared() {
        let io = record();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let mut wake = Vec::new();
        io.set_readiness(READABLE, &mut wake);
        let ev = io.snapshot(Direction::Read);
        assert!(ev.is_ready());
        // A new edge arrives while the read runs; the read says WouldBlock.
        io.set_readiness(READABLE, &mut wake);
        io.clear_readiness(ev);
        assert!(io.poll_ready(&mut cx, Direction::Read).is_ready());
        // Without a new edge, the clear sticks and the waiter registers.
        let ev = io.snapshot(Direction::Read);
        io.clear_readiness(ev);
        assert!(io.poll_ready(&mut cx, Direction::Read).is_pending());
        io.set_readiness(READABLE, &mut wake);
        assert_eq!(wake.len(), 1);
        wake.drain(..).for_each(Waker::wake);
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_drained_read_keeps_end_of_stream_and_errors() {
        let io = record();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let mut wake = Vec::new();
        // Data alone: a short read clears it, and the reader waits.
        io.set_readiness(READABLE | WRITABLE, &mut wake);
        io.clear_drained(io.snapshot(Direction::Read));
        assert!(io.poll_ready(&mut cx, Direction::Read).is_pending());
        assert!(
            io.poll_ready(&mut cx, Direction::Write).is_ready(),
            "the write side is untouched"
        );
        // Data and the peer's FIN in one edge: the short read returned the
        // data, the next read must run to see the end.
        io.set_readiness(READABLE | READ_CLOSED, &mut wake);
        io.clear_drained(io.snapshot(Direction::Read));
        assert!(io.poll_ready(&mut cx, Direction::Read).is_ready());
        // An error, or urgent data: the next read must run to return it,
        // or the bytes behind the urgent mark.
        for bits in [READABLE | WRITABLE | ERROR, READABLE | URGENT] {
            let io = record();
            io.set_readiness(bits, &mut wake);
            io.clear_drained(io.snapshot(Direction::Read));
            assert!(io.poll_ready(&mut cx, Direction::Read).is_ready());
        }
        // An edge during the read survives the clear.
        let io = record();
        io.set_readiness(READABLE, &mut wake);
        let ev = io.snapshot(Direction::Read);
        io.set_readiness(READABLE, &mut wake);
        io.clear_drained(ev);
        assert!(io.poll_ready(&mut cx, Direction::Read).is_ready());
    }

    #[test]
    fn directions_are_independent_and_waiters_deduplicated() {
        let io = record();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(io.poll_ready(&mut cx, Direction::Read).is_pending());
        assert!(io.poll_ready(&mut cx, Direction::Read).is_pending());
        assert!(io.poll_ready(&mut cx, Direction::Write).is_pending());
        let mut wake = Vec::new();
        io.set_readiness(WRITABLE, &mut wake);
        assert_eq!(wake.len(), 1, "only the writer wakes");
        assert!(io.poll_ready(&mut cx, Direction::Read).is_pending());
        wake.clear();
        io.set_readiness(READ_CLOSED, &mut wake);
        assert_eq!(wake.len(), 1, "one reader, registered once");
        assert!(io.poll_ready(&mut cx, Direction::Read).is_ready());
    }

    #[test]
    fn shutdown_releases_waiters() {
        let io = record();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(io.poll_ready(&mut cx, Direction::Write).is_pending());
        let mut wake = Vec::new();
        io.set_readiness(SHUTDOWN, &mut wake);
        assert_eq!(wake.len(), 1);
        assert!(io.is_shutdown());
        assert!(io.poll_ready(&mut cx, Direction::Read).is_ready());
    }
}

//! The netpoller: one epoll instance per worker ([`Poller`]), the readiness
//! record of every socket ([`ScheduledIo`]), and where each socket is
//! registered.
//!
//! # Why one poller per worker
//!
//! A started green thread is pinned to its worker, so the cheapest wake-up
//! for it is one found *on that worker*: it goes to the worker's `runnext`
//! with no queue shared between threads and no futex. Each worker therefore
//! polls its own epoll set and sleeps in it when idle (as glommio's and
//! monoio's per-core reactors do); the sockets its green threads wait on
//! are registered there. With a single shared poller (Go's, tokio's) the
//! worker that happened to poll would push every other worker's wake-ups
//! into their inboxes and wake their threads.
//!
//! # Where a socket is registered (`Driver::arm`)
//!
//! A socket joins an epoll set only when a task first has to wait on it
//! (lazily: a socket that never blocks costs no `epoll_ctl`):
//!
//! - waited on from one of the runtime's workers: that worker's poller;
//! - waited on from elsewhere (a plain thread in `Runtime::block_on`, the
//!   blocking pool, a tokio thread): the workers' pollers in turn; the
//!   readiness reaches the waiting thread through its waker;
//! - a socket registered on worker A and waited on by a green thread of
//!   worker B (a connection handed from one green thread to another) moves
//!   to B's set on B's *second* wait in a row while nobody else waits on it
//!   (the kernel reports its current readiness when it joins, so no edge is
//!   lost; it leaves A's set afterwards, so for a moment both report it,
//!   which costs at most a spurious wake). A socket used by green threads of
//!   two workers at once (a reader on A, a writer on B) stays where it is
//!   and the other side's wake-ups cross workers: that is unavoidable.
//!
//! All pollers of a runtime share one table of records (a generational
//! slab), so an event from any of them finds its socket, and an event for a
//! socket closed meanwhile is dropped instead of reaching the slot's next
//! user.
//!
//! # Who polls (see `sched::worker`)
//!
//! - A worker with nothing to run blocks in its own poller with its next
//!   timer as timeout (`Parker::park_polling`; short timeouts use a
//!   `timerfd`, see [`timerfd`]); `unpark` reaches it through the poller's
//!   `mio::Waker`. Inbox pushes, timers and IO thus share one wake path.
//! - A busy worker polls its own poller without blocking every 64 ticks,
//!   and before it searches for work; a worker out of work also polls the
//!   poller of a peer that has not polled for a millisecond (a peer stuck
//!   in a long task), whose wake-ups then cross workers.
//! - The monitor thread polls every poller nobody has polled for 10 ms.
//! - Sockets created outside any runtime use a process-wide fallback driver
//!   with one poller, driven by its own thread, `fibra-netpoll`.
//!
//! # Readiness protocol (edge-triggered)
//!
//! Each socket has a [`ScheduledIo`]: a readiness word (ready bits plus a
//! *tick* that changes on every event delivered) and the wakers of the
//! tasks waiting to read or write.
//!
//! - The poller delivers an event by OR-ing its bits into the word and
//!   bumping the tick, then taking the waiters' lock and waking every waker
//!   of the ready direction.
//! - An operation snapshots the readiness ([`ReadyEvent`]) *before* its
//!   syscall. If the syscall says `WouldBlock`, it clears the direction's
//!   bits only if the tick is still the snapshot's
//!   ([`ScheduledIo::clear_readiness`]): an event that arrived during the
//!   syscall changed the tick, so it is kept and the operation retries.
//! - Before it waits, a task arms the record (registers the socket where
//!   it belongs, above); then it registers its waker under the waiters'
//!   lock and re-reads the word before parking. The poller sets the word
//!   before it takes that lock, so either the task's re-read sees the bits
//!   or the poller finds the waker: an edge is never lost. An edge that
//!   came before the socket joined a set is reported by the kernel when it
//!   joins.
//!
//! A `WouldBlock` is the ground truth: it clears the closed bits of its
//! direction too, so a stale event can cause one spurious retry, never a
//! busy loop.

mod poller;
mod scheduled_io;
mod timerfd;

pub(crate) use poller::{PollGuard, Poller};
pub(crate) use scheduled_io::{Direction, ScheduledIo};

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::Waker;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Token};
use parking_lot::Mutex;

use poller::{ms_since, TIMER_TOKEN, WAKE_TOKEN};
use scheduled_io::{event_bits, SHUTDOWN, UNREGISTERED};

/// Records of live sockets: slab slot, generation.
struct Sources {
    slab: slab::Slab<Arc<ScheduledIo>>,
    generation: u64,
}

/// One runtime's netpoller (or the process-wide fallback one).
pub(crate) struct Driver {
    /// Records by token, shared by every poller.
    sources: Mutex<Sources>,
    /// One per worker (the fallback driver has one).
    pollers: Box<[Poller]>,
    /// Live sockets (the deadlock detector's "a socket may still wake
    /// someone").
    live: AtomicUsize,
    /// Next poller for a socket first waited on outside the workers.
    next_home: AtomicUsize,
    /// Reference point of the pollers' `last_poll_ms`.
    epoch: Instant,
    /// Set once: sockets of this driver now fail.
    shutdown: AtomicBool,
}

impl Driver {
    /// A driver with `pollers` epoll instances (one per worker).
    pub(crate) fn new(pollers: usize) -> io::Result<Driver> {
        let pollers = (0..pollers.max(1))
            .map(|_| Poller::new())
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Driver {
            sources: Mutex::new(Sources {
                slab: slab::Slab::new(),
                generation: 0,
            }),
            pollers: pollers.into_boxed_slice(),
            live: AtomicUsize::new(0),
            next_home: AtomicUsize::new(0),
            epoch: Instant::now(),
            shutdown: AtomicBool::new(false),
        })
    }

    /// The handle that interrupts poller `index` while it blocks (for the
    /// parker of the worker that owns it).
    pub(crate) fn waker(&self, index: usize) -> Arc<mio::Waker> {
        self.pollers[index].waker.clone()
    }

    /// A record for a new socket (not in any epoll set yet: see
    /// [`arm`](Self::arm)).
    pub(crate) fn add(&self) -> io::Result<Arc<ScheduledIo>> {
        if self.shutdown.load(Ordering::Acquire) {
            return Err(shutdown_error());
        }
        let mut sources = self.sources.lock();
        sources.generation = sources.generation.wrapping_add(1);
        let generation = sources.generation & 0xFFFF_FFFF;
        let entry = sources.slab.vacant_entry();
        let index = entry.key();
        // The two highest tokens belong to the waker and the timer.
        if index >= (u32::MAX - 1) as usize {
            return Err(io::Error::other(
                "fibra: more than 4 billion sockets open in one runtime",
            ));
        }
        let io = Arc::new(ScheduledIo::new(Token(index | (generation as usize) << 32)));
        entry.insert(io.clone());
        self.live.fetch_add(1, Ordering::Relaxed);
        Ok(io)
    }

    /// The worker of this driver's runtime running on this thread, if any.
    fn local_worker(&self) -> Option<usize> {
        super::context::with_worker(|w| {
            w.filter(|w| std::ptr::eq(Arc::as_ptr(&w.shared.io), self))
                .map(|w| w.index)
        })
    }

    /// Makes sure socket `fd` (record `io`) is in the epoll set it belongs
    /// to before the caller waits on it (see the module docs). Costs a
    /// thread-local read and an atomic load when it already is.
    pub(crate) fn arm(&self, io: &ScheduledIo, fd: RawFd) -> io::Result<()> {
        let here = self.local_worker();
        let home = io.home.load(Ordering::Acquire);
        match here {
            Some(w) if home == w => {
                if io.foreign_waits.load(Ordering::Relaxed) != 0 {
                    io.foreign_waits.store(0, Ordering::Relaxed);
                }
                return Ok(());
            }
            _ if home == UNREGISTERED => {}
            // Only a pinned green thread makes a socket move: an async
            // task or a plain thread may be elsewhere at its next wait.
            Some(_) if crate::park::in_green_thread() => {}
            _ => return Ok(()),
        }
        let waiters = io.lock();
        let home = io.home.load(Ordering::Acquire);
        let target = match (here, home) {
            (None, UNREGISTERED) => {
                self.next_home.fetch_add(1, Ordering::Relaxed) % self.pollers.len()
            }
            (None, _) => return Ok(()),
            (Some(w), UNREGISTERED) => w,
            (Some(w), h) if h == w => return Ok(()),
            (Some(w), _) => {
                if !crate::park::in_green_thread() || !waiters.is_empty() {
                    return Ok(());
                }
                if io.foreign_waits.fetch_add(1, Ordering::Relaxed) == 0 {
                    return Ok(());
                }
                w
            }
        };
        self.pollers[target].registry.register(
            &mut SourceFd(&fd),
            io.token,
            // PRIORITY: TCP urgent data, after which short reads do not
            // prove a socket drained (see `ScheduledIo::clear_drained`).
            Interest::READABLE | Interest::WRITABLE | Interest::PRIORITY,
        )?;
        self.pollers[target].armed.fetch_add(1, Ordering::Relaxed);
        if home != UNREGISTERED {
            let _ = self.pollers[home].registry.deregister(&mut SourceFd(&fd));
            self.pollers[home].armed.fetch_sub(1, Ordering::Relaxed);
            tracing::trace!(
                fd,
                from = home,
                to = target,
                "socket moved to its waiter's poller"
            );
        }
        io.foreign_waits.store(0, Ordering::Relaxed);
        io.home.store(target, Ordering::Release);
        drop(waiters);
        Ok(())
    }

    /// Removes socket `fd` from its epoll set and forgets its record.
    pub(crate) fn remove(&self, io: &ScheduledIo, fd: RawFd) {
        {
            let _waiters = io.lock();
            let home = io.home.swap(UNREGISTERED, Ordering::AcqRel);
            if home != UNREGISTERED {
                // Closing the fd would not remove it while a dup
                // (`try_clone`) is open, so always deregister explicitly.
                let _ = self.pollers[home].registry.deregister(&mut SourceFd(&fd));
                self.pollers[home].armed.fetch_sub(1, Ordering::Relaxed);
            }
        }
        let index = io.token.0 & 0xFFFF_FFFF;
        let mut sources = self.sources.lock();
        if sources.slab.get(index).is_some_and(|s| s.token == io.token) {
            sources.slab.remove(index);
            self.live.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Whether any socket is alive (a poll could still find something).
    pub(crate) fn has_sources(&self) -> bool {
        self.live.load(Ordering::Relaxed) != 0
    }

    /// Number of live sockets.
    pub(crate) fn sources(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    /// Number of sockets in poller `index`'s epoll set.
    pub(crate) fn armed(&self, index: usize) -> usize {
        self.pollers[index].armed.load(Ordering::Relaxed)
    }

    /// Takes poller `index`, waiting for whoever polls it without
    /// blocking (a peer or the monitor; only its own worker blocks in it).
    pub(crate) fn poller(&self, index: usize) -> PollGuard<'_> {
        self.pollers[index].lock(self)
    }

    /// Takes poller `index` if nobody else polls it.
    pub(crate) fn try_poller(&self, index: usize) -> Option<PollGuard<'_>> {
        self.pollers[index].try_lock(self)
    }

    /// Collects ready events of poller `index` without blocking and wakes
    /// their tasks, if it has sockets and nobody else polls it; returns
    /// how many tasks were woken.
    pub(crate) fn poll_now(&self, index: usize) -> usize {
        if self.pollers[index].armed.load(Ordering::Relaxed) == 0 {
            return 0;
        }
        match self.try_poller(index) {
            Some(mut poller) => {
                poller.poll(Some(Duration::ZERO));
                poller.dispatch()
            }
            None => 0,
        }
    }

    /// Polls, without blocking, every poller but `except` that has
    /// sockets and has not been polled for `ms` milliseconds (its worker
    /// is stuck in a long task); returns how many tasks were woken.
    pub(crate) fn poll_stale(&self, except: usize, ms: u64) -> usize {
        let now = self.now_ms();
        let mut woken = 0;
        for (i, p) in self.pollers.iter().enumerate() {
            if i != except
                && p.armed.load(Ordering::Relaxed) != 0
                && p.ms_since_last_poll(now) >= ms
            {
                woken += self.poll_now(i);
            }
        }
        woken
    }

    /// Milliseconds since the driver was made.
    fn now_ms(&self) -> u64 {
        ms_since(self.epoch)
    }

    /// A poller's side of an event batch: publish each event on its record
    /// and collect the wakers to wake.
    fn deliver(&self, events: &Events, wake: &mut Vec<Waker>) {
        let sources = self.sources.lock();
        for event in events.iter() {
            let token = event.token();
            if token == WAKE_TOKEN || token == TIMER_TOKEN {
                continue;
            }
            let index = token.0 & 0xFFFF_FFFF;
            match sources.slab.get(index) {
                Some(io) if io.token == token => io.set_readiness(event_bits(event), wake),
                // Closed meanwhile: the event is stale.
                _ => {}
            }
        }
    }

    /// The runtime ends: every socket fails from now on, and whoever waits
    /// on one (a plain thread, say) is woken to see it.
    pub(crate) fn shutdown(&self) {
        self.shutdown.store(true, Ordering::Release);
        let all: Vec<Arc<ScheduledIo>> = self
            .sources
            .lock()
            .slab
            .iter()
            .map(|(_, io)| io.clone())
            .collect();
        let mut wake = Vec::new();
        for io in all {
            io.set_readiness(SHUTDOWN, &mut wake);
        }
        for w in wake {
            w.wake();
        }
    }
}

/// The error of an operation on a socket whose runtime has shut down.
pub(crate) fn shutdown_error() -> io::Error {
    io::Error::other(
        "fibra: the runtime this socket was registered with has shut down; \
         create sockets in the runtime (or thread) that uses them",
    )
}

/// The driver of the current runtime, or the process-wide fallback.
pub(crate) fn current() -> Arc<Driver> {
    match super::context::current_runtime() {
        Some(shared) => shared.io.clone(),
        None => fallback(),
    }
}

/// The process-wide driver for sockets created outside any runtime, driven
/// by the `fibra-netpoll` thread, which blocks in its poller until events
/// come.
pub(crate) fn fallback() -> Arc<Driver> {
    static FALLBACK: OnceLock<Arc<Driver>> = OnceLock::new();
    FALLBACK
        .get_or_init(|| {
            let driver = Arc::new(
                Driver::new(1)
                    .unwrap_or_else(|e| panic!("fibra: cannot create the netpoller: {e}")),
            );
            let d = driver.clone();
            std::thread::Builder::new()
                .name("fibra-netpoll".into())
                .spawn(move || loop {
                    let mut poller = d.try_poller(0).expect("only this thread polls");
                    poller.poll(None);
                    poller.dispatch();
                })
                .unwrap_or_else(|e| panic!("fibra: cannot start the netpoll thread: {e}"));
            driver
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use std::sync::atomic::AtomicUsize;
    use std::task::Context;

    use crate::test_waker::Count;

    /// A socket registered on one poller and moved to another: an edge
    /// that came before the move is reported by the new poller, and the
    /// old one reports nothing more.
    #[test]
    fn an_edge_before_a_move_is_reported_by_the_new_poller() {
        let driver = Driver::new(2).unwrap();
        let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let io = driver.add().unwrap();
        let fd = a.as_raw_fd();
        // Outside the workers: the first poller in turn.
        driver.arm(&io, fd).unwrap();
        assert_eq!(io.home.load(Ordering::Relaxed), 0);
        {
            let mut p = driver.try_poller(0).unwrap();
            p.poll(Some(Duration::ZERO)); // the initial writable edge
            p.dispatch();
        }
        std::io::Write::write_all(&mut b, b"x").unwrap();
        // Move by hand (what a green thread of worker 1 does).
        {
            let _w = io.lock();
            driver.pollers[1]
                .registry
                .register(&mut SourceFd(&fd), io.token, Interest::READABLE)
                .unwrap();
            driver.pollers[0]
                .registry
                .deregister(&mut SourceFd(&fd))
                .unwrap();
            io.home.store(1, Ordering::Release);
        }
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let ev = io.snapshot(Direction::Read);
        io.clear_readiness(ev);
        assert!(io.poll_ready(&mut cx, Direction::Read).is_pending());
        let mut p = driver.try_poller(1).unwrap();
        p.poll(Some(Duration::from_secs(5)));
        assert_eq!(p.dispatch(), 1);
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        drop(p);
        assert_eq!(driver.poll_now(0), 0, "the old poller forgot the socket");
        driver.remove(&io, fd);
        assert!(!driver.has_sources());
    }

    /// A short timeout waits on the precise timer, and not less than asked.
    #[test]
    fn a_short_poll_timeout_uses_the_precise_timer() {
        let driver = Driver::new(1).unwrap();
        let mut p = driver.try_poller(0).unwrap();
        let start = Instant::now();
        p.poll(Some(Duration::from_micros(300)));
        assert!(start.elapsed() >= Duration::from_micros(300));
        assert!(p.state.timer.is_some());
        // A long timeout keeps epoll's own.
        p.poll(Some(Duration::ZERO));
        assert_eq!(p.dispatch(), 0);
    }

    /// An event for a socket that was closed meanwhile is dropped.
    #[test]
    fn a_stale_event_is_dropped() {
        let driver = Driver::new(1).unwrap();
        let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
        let io = driver.add().unwrap();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        driver.arm(&io, a.as_raw_fd()).unwrap();
        assert!(io.poll_ready(&mut cx, Direction::Read).is_pending());
        std::io::Write::write_all(&mut b, b"x").unwrap();
        let mut p = driver.try_poller(0).unwrap();
        p.poll(Some(Duration::from_secs(5)));
        driver.remove(&io, a.as_raw_fd());
        // The readable edge polled before the removal finds no record.
        assert_eq!(p.dispatch(), 0);
        assert_eq!(count.0.load(Ordering::SeqCst), 0);
    }
}

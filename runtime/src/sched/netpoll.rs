//! The netpoller: one `mio::Poll` per runtime, and the readiness record of
//! every registered socket.
//!
//! # Why one poller per runtime
//!
//! A poller per worker would tie each socket to the worker that registered
//! it: its readiness could only be collected when *that* worker is idle or
//! polls between tasks, and a busy worker would hold back the IO of tasks
//! that other, idle workers could run (async tasks migrate). One shared
//! `Poll` (Go's netpoller, tokio's IO driver) is collected by whichever
//! worker is idle, costs one epoll instance and one wake-up file per
//! runtime, and a readiness event wakes the task wherever it lives (its
//! waker routes a pinned green thread to its owner). `Poll::poll` takes
//! `&mut self`, so the poll instance sits behind a lock that idle workers
//! *try* to take: exactly one blocks in `epoll_wait`, the others park on
//! their condition variables.
//!
//! # Who polls (see `sched::worker`)
//!
//! - A worker with nothing to run that wins [`Driver::try_poller`] blocks in
//!   `poll` with its next timer as timeout; its `Parker` is then in the
//!   `POLLING` state and `unpark` reaches it through the `mio::Waker`.
//! - A busy worker polls without blocking every 61 ticks, and before it
//!   steals, if nobody holds the poller.
//! - The monitor thread polls without blocking when nobody has polled for
//!   10 ms (every worker stuck in long tasks).
//! - Sockets created outside any runtime register with a process-wide
//!   fallback driver driven by its own thread, `fibra-netpoll`.
//!
//! # Readiness protocol (edge-triggered)
//!
//! Each registered source has a [`ScheduledIo`]: a readiness word (ready
//! bits plus a *tick* that changes on every event delivered) and the
//! wakers of the tasks waiting to read or write.
//!
//! - The poller delivers an event by OR-ing its bits into the word and
//!   bumping the tick, then taking the waiters' lock and waking every waker
//!   of the ready direction.
//! - An operation snapshots the readiness ([`ReadyEvent`]) *before* its
//!   syscall. If the syscall says `WouldBlock`, it clears the direction's
//!   bits only if the tick is still the snapshot's
//!   ([`ScheduledIo::clear_readiness`]): an event that arrived during the
//!   syscall changed the tick, so it is kept and the operation retries.
//! - A task that finds no readiness registers its waker under the waiters'
//!   lock and re-reads the word before parking. The poller sets the word
//!   before it takes that lock, so either the task's re-read sees the
//!   bits or the poller finds the waker: an edge is never lost.
//!
//! A `WouldBlock` is the ground truth: it clears the closed bits of its
//! direction too, so a stale event can cause one spurious retry, never a
//! busy loop. Tokens carry a generation, so an event for a socket that was
//! closed meanwhile is dropped instead of reaching the slot's next user.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use mio::event::Source;
use mio::{Events, Interest, Token};
use parking_lot::{Mutex, MutexGuard};

/// The token of the driver's `mio::Waker`.
const WAKE_TOKEN: Token = Token(usize::MAX);
/// Events taken per `epoll_wait`.
const EVENTS_CAPACITY: usize = 1024;

// Readiness bits (low 16 bits of the word; the tick is above).
const READABLE: u64 = 1;
const WRITABLE: u64 = 2;
const READ_CLOSED: u64 = 4;
const WRITE_CLOSED: u64 = 8;
/// The driver shut down: every operation fails.
const SHUTDOWN: u64 = 16;
const BITS: u64 = 0xFFFF;
const TICK_SHIFT: u32 = 16;

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

/// Tasks waiting on one source.
#[derive(Default)]
struct Waiters {
    readers: Vec<Waker>,
    writers: Vec<Waker>,
}

fn add_waker(list: &mut Vec<Waker>, waker: &Waker) {
    if !list.iter().any(|w| w.will_wake(waker)) {
        list.push(waker.clone());
    }
}

/// The readiness record of one registered source.
pub(crate) struct ScheduledIo {
    /// Ready bits (low 16) and the event tick (above).
    readiness: AtomicU64,
    /// Who waits for which direction.
    waiters: Mutex<Waiters>,
    /// The mio token: slab index and generation.
    token: Token,
}

impl ScheduledIo {
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
    /// the waker and returns `Pending`.
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
        let clear = ev.dir.mask();
        let _ = self
            .readiness
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |word| {
                if word >> TICK_SHIFT != ev.tick {
                    return None;
                }
                Some(word & !clear)
            });
    }

    /// Whether the owning driver has shut down.
    pub(crate) fn is_shutdown(&self) -> bool {
        self.readiness.load(Ordering::Acquire) & SHUTDOWN != 0
    }

    /// The poller's side: publish `bits`, collect the wakers to wake.
    fn set_readiness(&self, bits: u64, wake: &mut Vec<Waker>) {
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

fn event_bits(event: &mio::event::Event) -> u64 {
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
    if event.is_error() {
        // An error ends whatever waits: both sides retry their syscall and
        // see it.
        bits |= READABLE | WRITABLE;
    }
    bits
}

/// Registered sources: slab slot, generation.
struct Sources {
    slab: slab::Slab<Arc<ScheduledIo>>,
    generation: u64,
}

/// The poll instance and what one poll round needs; owned by whoever holds
/// the poller lock.
pub(crate) struct PollState {
    poll: mio::Poll,
    events: Events,
    /// Wakers collected by the last dispatch, woken outside the locks.
    wake: Vec<Waker>,
}

/// One runtime's netpoller (or the process-wide fallback one).
pub(crate) struct Driver {
    /// The poll instance; whoever holds this lock polls.
    poller: Mutex<PollState>,
    /// Registers sources without the poller lock.
    registry: mio::Registry,
    /// Interrupts a blocked `poll`.
    waker: Arc<mio::Waker>,
    /// Readiness records by token.
    sources: Mutex<Sources>,
    /// Number of registered sources (polling with none is skipped).
    registered: AtomicUsize,
    /// When the last poll finished, in ms since `epoch`.
    last_poll_ms: AtomicU64,
    /// Reference point of `last_poll_ms`.
    epoch: Instant,
    /// Set once: sockets registered here now fail.
    shutdown: AtomicBool,
}

impl Driver {
    pub(crate) fn new() -> io::Result<Driver> {
        let poll = mio::Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let waker = Arc::new(mio::Waker::new(poll.registry(), WAKE_TOKEN)?);
        Ok(Driver {
            poller: Mutex::new(PollState {
                poll,
                events: Events::with_capacity(EVENTS_CAPACITY),
                wake: Vec::new(),
            }),
            registry,
            waker,
            sources: Mutex::new(Sources {
                slab: slab::Slab::new(),
                generation: 0,
            }),
            registered: AtomicUsize::new(0),
            last_poll_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            shutdown: AtomicBool::new(false),
        })
    }

    /// The handle that interrupts a blocked `poll` (for the parker).
    pub(crate) fn waker(&self) -> Arc<mio::Waker> {
        self.waker.clone()
    }

    /// Registers `source` for both directions (edge-triggered).
    pub(crate) fn register<S: Source + ?Sized>(
        &self,
        source: &mut S,
    ) -> io::Result<Arc<ScheduledIo>> {
        if self.shutdown.load(Ordering::Acquire) {
            return Err(shutdown_error());
        }
        let io = {
            let mut sources = self.sources.lock();
            sources.generation = sources.generation.wrapping_add(1);
            let generation = sources.generation & 0xFFFF_FFFF;
            let entry = sources.slab.vacant_entry();
            let index = entry.key();
            if index >= u32::MAX as usize {
                return Err(io::Error::other(
                    "fibra: more than 4 billion sockets registered with one runtime",
                ));
            }
            let io = Arc::new(ScheduledIo {
                readiness: AtomicU64::new(0),
                waiters: Mutex::new(Waiters::default()),
                token: Token(index | (generation as usize) << 32),
            });
            entry.insert(io.clone());
            io
        };
        if let Err(err) =
            self.registry
                .register(source, io.token, Interest::READABLE | Interest::WRITABLE)
        {
            self.remove(&io);
            return Err(err);
        }
        self.registered.fetch_add(1, Ordering::Relaxed);
        Ok(io)
    }

    /// Removes `source` from the poll set and forgets its record.
    pub(crate) fn deregister<S: Source + ?Sized>(&self, source: &mut S, io: &ScheduledIo) {
        // Closing the fd would not remove it while a dup (`try_clone`) is
        // open, so always deregister explicitly.
        let _ = self.registry.deregister(source);
        self.remove(io);
        self.registered.fetch_sub(1, Ordering::Relaxed);
    }

    fn remove(&self, io: &ScheduledIo) {
        let index = io.token.0 & 0xFFFF_FFFF;
        let mut sources = self.sources.lock();
        if sources.slab.get(index).is_some_and(|s| s.token == io.token) {
            sources.slab.remove(index);
        }
    }

    /// Whether any source is registered (a poll could find something).
    pub(crate) fn has_sources(&self) -> bool {
        self.registered.load(Ordering::Relaxed) != 0
    }

    /// Takes the poller if nobody else polls.
    pub(crate) fn try_poller(&self) -> Option<Poller<'_>> {
        self.poller.try_lock().map(|state| Poller {
            driver: self,
            state,
        })
    }

    /// Milliseconds since the last poll finished.
    pub(crate) fn ms_since_last_poll(&self) -> u64 {
        let now = self.epoch.elapsed().as_millis() as u64;
        now.saturating_sub(self.last_poll_ms.load(Ordering::Relaxed))
    }

    /// Collects ready events without blocking and wakes their tasks, if
    /// nobody else polls; returns how many tasks were woken.
    pub(crate) fn poll_now(&self) -> usize {
        if !self.has_sources() {
            return 0;
        }
        match self.try_poller() {
            Some(mut poller) => {
                poller.poll(Some(Duration::ZERO));
                poller.dispatch()
            }
            None => 0,
        }
    }

    /// Number of registered sources.
    pub(crate) fn sources(&self) -> usize {
        self.registered.load(Ordering::Relaxed)
    }

    /// The runtime ends: every registered socket fails from now on, and
    /// whoever waits on one (a plain thread, say) is woken to see it.
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

/// The right to poll: the driver's lock, held while polling and
/// dispatching.
pub(crate) struct Poller<'a> {
    driver: &'a Driver,
    state: MutexGuard<'a, PollState>,
}

impl Poller<'_> {
    /// Waits up to `timeout` (forever if `None`) for events, or until the
    /// driver's waker fires.
    pub(crate) fn poll(&mut self, timeout: Option<Duration>) {
        let state = &mut *self.state;
        match state.poll.poll(&mut state.events, timeout) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::Interrupted => state.events.clear(),
            Err(err) => {
                tracing::error!("fibra: netpoller poll failed: {err}");
                state.events.clear();
            }
        }
        let driver = self.driver;
        driver
            .last_poll_ms
            .store(driver.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// Delivers the events of the last poll and wakes their tasks; returns
    /// how many wakers were woken.
    pub(crate) fn dispatch(&mut self) -> usize {
        let state = &mut *self.state;
        if state.events.is_empty() {
            return 0;
        }
        {
            let sources = self.driver.sources.lock();
            for event in state.events.iter() {
                let token = event.token();
                if token == WAKE_TOKEN {
                    continue;
                }
                let index = token.0 & 0xFFFF_FFFF;
                match sources.slab.get(index) {
                    Some(io) if io.token == token => {
                        io.set_readiness(event_bits(event), &mut state.wake)
                    }
                    // Closed meanwhile: the event is stale.
                    _ => {}
                }
            }
        }
        state.events.clear();
        let n = state.wake.len();
        for w in state.wake.drain(..) {
            w.wake();
        }
        n
    }
}

/// The driver of the current runtime, or the process-wide fallback.
pub(crate) fn current() -> Arc<Driver> {
    match super::context::current_runtime() {
        Some(shared) => shared.io.clone(),
        None => fallback(),
    }
}

/// The process-wide driver for sockets created outside any runtime, driven
/// by the `fibra-netpoll` thread, which blocks in `poll` until events come.
pub(crate) fn fallback() -> Arc<Driver> {
    static FALLBACK: OnceLock<Arc<Driver>> = OnceLock::new();
    FALLBACK
        .get_or_init(|| {
            let driver = Arc::new(
                Driver::new().unwrap_or_else(|e| panic!("fibra: cannot create the netpoller: {e}")),
            );
            let d = driver.clone();
            std::thread::Builder::new()
                .name("fibra-netpoll".into())
                .spawn(move || loop {
                    let mut poller = d.try_poller().expect("only this thread polls");
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
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn record() -> ScheduledIo {
        ScheduledIo {
            readiness: AtomicU64::new(0),
            waiters: Mutex::new(Waiters::default()),
            token: Token(0),
        }
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

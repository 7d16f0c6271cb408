//! What a parked task waits on, recorded cheaply at park time.
//!
//! The owner writes a few relaxed atomics when its task parks (kind, two
//! payload words, the call site, a coarse timestamp); a dump reads them
//! without stopping anyone. Fields of one record may be read torn across a
//! concurrent re-park; a dump is a diagnostic snapshot, not a proof.

use std::panic::Location;
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicU8, AtomicUsize, Ordering::Relaxed};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::task::Task;

/// Plain OS threads blocked in a fibra call right now (process-wide).
pub(crate) static BLOCKED_THREADS: AtomicUsize = AtomicUsize::new(0);

/// The thing a blocking call waits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum WaitOn {
    /// Not parked (running or runnable).
    Nothing,
    /// The join of another task.
    Join {
        /// Id of the awaited task.
        task: u64,
    },
    /// A timer.
    Sleep,
    /// Receiving on a channel.
    ChanRecv {
        /// Channel id.
        chan: u64,
        /// Channel capacity.
        cap: u64,
    },
    /// Sending on a channel.
    ChanSend {
        /// Channel id.
        chan: u64,
        /// Channel capacity.
        cap: u64,
    },
    /// A `select!` over several channel operations.
    Select {
        /// Number of operations.
        arms: u64,
    },
    /// A `sync` primitive (mutex, rwlock, condvar, wait group, semaphore).
    Sync {
        /// Which primitive.
        what: SyncKind,
    },
    /// Socket readiness.
    Io {
        /// The file descriptor.
        fd: u64,
        /// Whether it waits to write (else to read or accept).
        write: bool,
    },
    /// A `spawn_blocking` job.
    Blocking,
    /// Any other future (`block_on`).
    Future,
    /// The end of a `fibra::scope`: its scoped green threads.
    Scope {
        /// Scoped green threads still running when the wait began.
        threads: u64,
    },
}

/// Which synchronization primitive a task waits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum SyncKind {
    /// `sync::Mutex`.
    Mutex,
    /// `sync::RwLock`.
    RwLock,
    /// `sync::Condvar`.
    Condvar,
    /// `sync::WaitGroup`.
    WaitGroup,
    /// `sync::Semaphore`.
    Semaphore,
}

impl WaitOn {
    fn encode(self) -> (u8, u64, u64) {
        match self {
            WaitOn::Nothing => (0, 0, 0),
            WaitOn::Join { task } => (1, task, 0),
            WaitOn::Sleep => (2, 0, 0),
            WaitOn::ChanRecv { chan, cap } => (3, chan, cap),
            WaitOn::ChanSend { chan, cap } => (4, chan, cap),
            WaitOn::Select { arms } => (5, arms, 0),
            WaitOn::Sync { what } => (6, what as u64, 0),
            WaitOn::Io { fd, write } => (7, fd, write as u64),
            WaitOn::Blocking => (8, 0, 0),
            WaitOn::Future => (9, 0, 0),
            WaitOn::Scope { threads } => (10, threads, 0),
        }
    }

    fn decode(kind: u8, a: u64, b: u64) -> WaitOn {
        match kind {
            1 => WaitOn::Join { task: a },
            2 => WaitOn::Sleep,
            3 => WaitOn::ChanRecv { chan: a, cap: b },
            4 => WaitOn::ChanSend { chan: a, cap: b },
            5 => WaitOn::Select { arms: a },
            6 => WaitOn::Sync {
                what: match a {
                    0 => SyncKind::Mutex,
                    1 => SyncKind::RwLock,
                    2 => SyncKind::Condvar,
                    3 => SyncKind::WaitGroup,
                    _ => SyncKind::Semaphore,
                },
            },
            7 => WaitOn::Io {
                fd: a,
                write: b != 0,
            },
            8 => WaitOn::Blocking,
            9 => WaitOn::Future,
            10 => WaitOn::Scope { threads: a },
            _ => WaitOn::Nothing,
        }
    }

    /// Whether the deadlock detector can trust that only fibra code can end
    /// this wait (a foreign future or IO may be completed from outside).
    pub(crate) fn is_fibra_primitive(self) -> bool {
        matches!(
            self,
            WaitOn::Join { .. }
                | WaitOn::Scope { .. }
                | WaitOn::ChanRecv { .. }
                | WaitOn::ChanSend { .. }
                | WaitOn::Select { .. }
                | WaitOn::Sync { .. }
        )
    }
}

impl std::fmt::Display for WaitOn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            WaitOn::Nothing => write!(f, "nothing"),
            WaitOn::Join { task } => write!(f, "join of task #{task}"),
            WaitOn::Sleep => write!(f, "sleep"),
            WaitOn::ChanRecv { chan, cap } => write!(f, "chan receive (chan #{chan}, cap {cap})"),
            WaitOn::ChanSend { chan, cap } => write!(f, "chan send (chan #{chan}, cap {cap})"),
            WaitOn::Select { arms } => write!(f, "select over {arms} operations"),
            WaitOn::Sync { what } => write!(f, "{what:?}"),
            WaitOn::Io { fd, write } => {
                let dir = if write { "write" } else { "read" };
                write!(f, "IO {dir} on fd {fd}{}", socket_addrs(fd as i32))
            }
            WaitOn::Blocking => write!(f, "spawn_blocking job"),
            WaitOn::Future => write!(f, "a future"),
            WaitOn::Scope { threads } => write!(f, "end of a scope ({threads} scoped threads)"),
        }
    }
}

/// ` (local A, peer B)` for a socket fd, best effort.
fn socket_addrs(fd: i32) -> String {
    fn addr(fd: i32, peer: bool) -> Option<std::net::SocketAddr> {
        // SAFETY: a zeroed sockaddr_storage is a valid out-buffer and `len`
        // holds its size; getsockname/getpeername write at most that much.
        unsafe {
            let mut storage: libc::sockaddr_storage = std::mem::zeroed();
            let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            let p = &mut storage as *mut _ as *mut libc::sockaddr;
            let rc = if peer {
                libc::getpeername(fd, p, &mut len)
            } else {
                libc::getsockname(fd, p, &mut len)
            };
            if rc != 0 {
                return None;
            }
            match storage.ss_family as i32 {
                libc::AF_INET => {
                    let a = &*(p as *const libc::sockaddr_in);
                    let ip = std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
                    Some((ip, u16::from_be(a.sin_port)).into())
                }
                libc::AF_INET6 => {
                    let a = &*(p as *const libc::sockaddr_in6);
                    let ip = std::net::Ipv6Addr::from(a.sin6_addr.s6_addr);
                    Some((ip, u16::from_be(a.sin6_port)).into())
                }
                _ => None,
            }
        }
    }
    match (addr(fd, false), addr(fd, true)) {
        (Some(l), Some(p)) => format!(" (local {l}, peer {p})"),
        (Some(l), None) => format!(" (local {l})"),
        _ => String::new(),
    }
}

/// Milliseconds since the process's first use of the coarse clock.
pub(crate) fn coarse_now_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64
}

thread_local! {
    /// This worker's cached coarse clock, refreshed by the worker loop every
    /// few dozen ticks and after each sleep, so stamping a park costs a
    /// thread-local read instead of a clock call.
    static CACHED_MS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Refreshes this thread's cached coarse clock (worker loop).
pub(crate) fn refresh_clock() {
    CACHED_MS.with(|c| c.set(coarse_now_ms()));
}

/// A task's park record.
pub(crate) struct WaitRecord {
    kind: AtomicU8,
    a: AtomicU64,
    b: AtomicU64,
    site: AtomicPtr<Location<'static>>,
    since_ms: AtomicU64,
}

impl WaitRecord {
    pub(crate) const fn new() -> WaitRecord {
        WaitRecord {
            kind: AtomicU8::new(0),
            a: AtomicU64::new(0),
            b: AtomicU64::new(0),
            site: AtomicPtr::new(std::ptr::null_mut()),
            since_ms: AtomicU64::new(0),
        }
    }

    /// Records a park (owner only).
    #[inline]
    pub(crate) fn set(&self, on: WaitOn, site: &'static Location<'static>) {
        let (kind, a, b) = on.encode();
        self.a.store(a, Relaxed);
        self.b.store(b, Relaxed);
        self.site.store(site as *const _ as *mut _, Relaxed);
        self.kind.store(kind, Relaxed);
    }

    /// Stamps the park time; called only when the task really suspends.
    #[inline]
    pub(crate) fn stamp(&self) {
        self.since_ms.store(CACHED_MS.with(|c| c.get()), Relaxed);
    }

    /// Clears the record once the wait is over.
    #[inline]
    pub(crate) fn clear(&self) {
        self.kind.store(0, Relaxed);
    }

    pub(crate) fn read(&self) -> (WaitOn, Option<&'static Location<'static>>, Duration) {
        let kind = self.kind.load(Relaxed);
        let on = WaitOn::decode(kind, self.a.load(Relaxed), self.b.load(Relaxed));
        let site = self.site.load(Relaxed);
        // SAFETY: only `&'static Location` values are ever stored.
        let site = unsafe { site.as_ref() };
        let since = coarse_now_ms().saturating_sub(self.since_ms.load(Relaxed));
        (on, site, Duration::from_millis(since))
    }
}

/// Whether `FIBRA_TRACEBACK=1` asks for a backtrace at every park.
#[inline]
pub(crate) fn traceback_enabled() -> bool {
    match TRACEBACK.load(Relaxed) {
        1 => false,
        2 => true,
        _ => read_traceback_switch(),
    }
}

/// `FIBRA_TRACEBACK` once read: 0 not yet, 1 off, 2 on (a park reads one
/// byte instead of going through a `OnceLock`).
static TRACEBACK: AtomicU8 = AtomicU8::new(0);

#[cold]
#[inline(never)]
fn read_traceback_switch() -> bool {
    let on = std::env::var("FIBRA_TRACEBACK").is_ok_and(|v| v != "0" && !v.is_empty());
    TRACEBACK.store(if on { 2 } else { 1 }, Relaxed);
    on
}

/// Captures a backtrace for the dump when `FIBRA_TRACEBACK` is set.
#[inline]
pub(crate) fn record_backtrace(task: &Task) {
    if traceback_enabled() {
        capture_backtrace(task);
    }
}

#[cold]
#[inline(never)]
fn capture_backtrace(task: &Task) {
    *task.park_backtrace.lock() = Some(Box::new(std::backtrace::Backtrace::force_capture()));
}

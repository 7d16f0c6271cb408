//! `select!`: wait on several channel operations, complete exactly one.
//!
//! # Protocol (Go's `selectgo`, with one lock held at a time)
//!
//! 1. *Try*: visit the arms in a fresh random order and complete the first
//!    one that is ready (a buffered value or room, a parked counterpart, or a
//!    closed channel). A random permutation makes every ready arm equally
//!    likely to win. With `default` the select gives up here.
//! 2. *Register*: the select's one [`Token`] (state `WAITING`) gets an entry
//!    in each arm's channel queue, one channel lock at a time. If an arm
//!    turns out ready while registering, the select first *aborts* its own
//!    token (so no counterpart can complete another arm meanwhile) and then
//!    completes that arm itself; should that fail after all (the
//!    counterpart it saw went away), it unregisters everything, resets the
//!    token and starts again at 1. If the abort fails, a counterpart already
//!    claimed the token through an earlier arm: registration stops.
//! 3. *Park* until a counterpart claims the token for one arm and publishes
//!    `DONE` (see `waiter`): exactly one arm can win, since claims and the
//!    abort are compare-and-swaps out of `WAITING`.
//! 4. *Unregister*: remove the select's remaining entries from every channel
//!    (again one lock at a time). Counterparts that meet such an entry before
//!    that find the token claimed and drop the entry without waking anyone,
//!    so no stale waiter stays behind and no wake-up is consumed by a loser.
//!
//! Values of `send` arms are evaluated once, in source order, before the
//! select starts (as in Go); the value of an arm that does not win is
//! dropped. A deadline (`default(timeout)`) ends step 3 by aborting the
//! token; if that abort loses to a counterpart, the select completes with
//! that arm instead of timing out.

use std::cell::Cell;
use std::time::{Duration, Instant};

use super::core::{wake, Chan};
use super::error::{RecvError, SendError, TryRecvError, TrySendError};
use super::waiter::Token;
use super::{Receiver, Sender};
use crate::loom::UnsafeCell;
use crate::park;

/// Most arms one `select!` may have.
pub const MAX_ARMS: usize = 64;

/// How long a select may wait.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    /// No `default` arm: wait for an arm.
    Block,
    /// `default =>`: do not wait.
    Try,
    /// `default(timeout) =>`: wait until the deadline.
    Deadline(Instant),
}

impl Mode {
    /// `default(timeout)`, from now.
    pub fn timeout(dur: Duration) -> Mode {
        match Instant::now().checked_add(dur) {
            Some(d) => Mode::Deadline(d),
            None => Mode::Block,
        }
    }
}

/// What registering one arm led to.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    /// An entry is queued.
    Queued,
    /// The arm was ready; the select aborted its token and completed it.
    Completed,
    /// The arm looked ready but could not complete after the abort: start
    /// over.
    Retry,
    /// A counterpart already claimed the token through an earlier arm.
    Claimed,
}

/// Keeps [`Operation`] implemented by this module's arms only: [`select`]
/// trusts each arm to follow the protocol.
mod sealed {
    pub trait Sealed {}
    impl<T> Sealed for super::RecvArm<'_, T> {}
    impl<T> Sealed for super::SendArm<'_, T> {}
}

/// One arm of a select, type-erased. Implemented by [`RecvArm`] and
/// [`SendArm`] only (sealed); its methods are `unsafe` because they follow
/// the protocol of the module docs, which [`select`] drives.
#[doc(hidden)]
pub trait Operation: sealed::Sealed {
    /// Completes the operation now if it is ready.
    ///
    /// # Safety
    /// Only [`select`] calls this.
    unsafe fn try_now(&self, me: &Token) -> bool;
    /// Step 2 for this arm.
    ///
    /// # Safety
    /// Only [`select`] calls this; it unregisters before `self` or `token`
    /// go away.
    unsafe fn register(&self, token: &Token, arm: usize) -> Registered;
    /// Step 4 for this arm.
    ///
    /// # Safety
    /// Only [`select`] calls this.
    unsafe fn unregister(&self, token: &Token, arm: usize);
    /// A counterpart completed this arm: collect the result.
    ///
    /// # Safety
    /// Only [`select`] calls this, after observing `DONE` for this arm.
    unsafe fn finish(&self, closed: bool);
}

/// A `recv(rx) -> v` arm.
#[doc(hidden)]
pub struct RecvArm<'a, T> {
    chan: &'a Chan<T>,
    /// Where a sender hands the value over while the select is parked.
    slot: UnsafeCell<Option<T>>,
    result: Cell<Option<Result<T, RecvError>>>,
}

/// A `send(tx, v) -> r` arm.
#[doc(hidden)]
pub struct SendArm<'a, T> {
    chan: &'a Chan<T>,
    /// The value, taken by a receiver while the select is parked.
    slot: UnsafeCell<Option<T>>,
    result: Cell<Option<Result<(), SendError<T>>>>,
}

impl<'a, T> RecvArm<'a, T> {
    pub fn new(rx: &'a Receiver<T>) -> Self {
        RecvArm {
            chan: rx.chan(),
            slot: UnsafeCell::new(None),
            result: Cell::new(None),
        }
    }

    /// The result if this arm won.
    pub fn into_result(self) -> Option<Result<T, RecvError>> {
        self.result.into_inner()
    }
}

impl<'a, T> SendArm<'a, T> {
    pub fn new(tx: &'a Sender<T>, value: T) -> Self {
        SendArm {
            chan: tx.chan(),
            slot: UnsafeCell::new(Some(value)),
            result: Cell::new(None),
        }
    }

    /// The result if this arm won.
    pub fn into_result(self) -> Option<Result<(), SendError<T>>> {
        self.result.into_inner()
    }

    fn take_value(&self) -> T {
        // SAFETY: the slot is the select's own while it is not registered
        // on this arm's channel, and under the channel lock otherwise.
        self.slot
            .with_mut(|p| unsafe { (*p).take() })
            .expect("a send arm has its value")
    }

    fn put_back(&self, v: T) {
        // SAFETY: as in `take_value`.
        self.slot.with_mut(|p| unsafe { *p = Some(v) });
    }
}

impl<T> Operation for RecvArm<'_, T> {
    unsafe fn try_now(&self, me: &Token) -> bool {
        match self.chan.try_recv(me) {
            Ok(v) => self.result.set(Some(Ok(v))),
            Err(TryRecvError::Disconnected) => self.result.set(Some(Err(RecvError))),
            Err(TryRecvError::Empty) => return false,
        }
        true
    }

    unsafe fn register(&self, token: &Token, arm: usize) -> Registered {
        let mut inner = self.chan.lock();
        if !Chan::recv_ready(&inner, token) {
            Chan::register_recv(&mut inner, token, arm, &self.slot);
            return Registered::Queued;
        }
        if token.abort().is_err() {
            return Registered::Claimed;
        }
        match inner.try_recv(token) {
            Ok((v, w)) => {
                drop(inner);
                wake(w);
                self.result.set(Some(Ok(v)));
                Registered::Completed
            }
            Err(TryRecvError::Disconnected) => {
                self.result.set(Some(Err(RecvError)));
                Registered::Completed
            }
            Err(TryRecvError::Empty) => Registered::Retry,
        }
    }

    unsafe fn unregister(&self, token: &Token, arm: usize) {
        self.chan.unregister_recv(token, arm);
    }

    unsafe fn finish(&self, closed: bool) {
        let r = if closed {
            Err(RecvError)
        } else {
            // SAFETY: DONE was observed: the claimer is gone.
            let v = self.slot.with_mut(|p| unsafe { (*p).take() });
            Ok(v.expect("a completed receive has a value"))
        };
        self.result.set(Some(r));
    }
}

impl<T> Operation for SendArm<'_, T> {
    unsafe fn try_now(&self, me: &Token) -> bool {
        match self.chan.try_send(self.take_value(), me) {
            Ok(()) => self.result.set(Some(Ok(()))),
            Err(TrySendError::Disconnected(v)) => self.result.set(Some(Err(SendError(v)))),
            Err(TrySendError::Full(v)) => {
                self.put_back(v);
                return false;
            }
        }
        true
    }

    unsafe fn register(&self, token: &Token, arm: usize) -> Registered {
        let mut inner = self.chan.lock();
        if !Chan::send_ready(&inner, self.chan.cap, token) {
            Chan::register_send(&mut inner, token, arm, &self.slot);
            return Registered::Queued;
        }
        if token.abort().is_err() {
            return Registered::Claimed;
        }
        match inner.try_send(self.take_value(), self.chan.cap, token) {
            Ok(w) => {
                drop(inner);
                wake(w);
                self.result.set(Some(Ok(())));
                Registered::Completed
            }
            Err(TrySendError::Disconnected(v)) => {
                self.result.set(Some(Err(SendError(v))));
                Registered::Completed
            }
            Err(TrySendError::Full(v)) => {
                self.put_back(v);
                Registered::Retry
            }
        }
    }

    unsafe fn unregister(&self, token: &Token, arm: usize) {
        self.chan.unregister_send(token, arm);
    }

    unsafe fn finish(&self, closed: bool) {
        let r = if closed {
            Err(SendError(self.take_value()))
        } else {
            Ok(())
        };
        self.result.set(Some(r));
    }
}

/// The arms registered so far; unregisters them when dropped (also when a
/// cancelled green thread is unwound while parked in a select).
struct Registration<'a> {
    ops: &'a [&'a dyn Operation],
    order: &'a [u8],
    token: &'a Token,
    /// `order[..count]` are registered.
    count: usize,
    /// An arm whose entry a counterpart already removed.
    skip: Option<usize>,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        if self.count > 0 && self.token.outcome().is_none() {
            // Unwinding, or returning normally after our own abort: make
            // sure no counterpart claims the token from now on.
            let _ = self.token.abort();
        }
        for &i in &self.order[..self.count] {
            let i = usize::from(i);
            if Some(i) != self.skip {
                // SAFETY: this is step 4; the arms outlive the registration.
                unsafe { self.ops[i].unregister(self.token, i) };
            }
        }
    }
}

enum Parked {
    /// This arm completed (its result is stored).
    Won(usize),
    /// Start over at step 1.
    Retry,
    TimedOut,
}

/// Runs a select over `ops` (the `select!` macro builds them). Returns the
/// index of the completed arm, or `ops.len()` if the `default` arm applies.
#[doc(hidden)]
#[track_caller]
pub fn select(ops: &[&dyn Operation], mode: Mode) -> usize {
    let n = ops.len();
    assert!(
        n <= MAX_ARMS,
        "fibra: select! supports at most {MAX_ARMS} arms"
    );
    // One arm registered twice would be completed twice (the macro makes
    // each arm once; a hand-made call could repeat one).
    for (i, a) in ops.iter().enumerate() {
        let a = *a as *const dyn Operation as *const ();
        assert!(
            ops[..i]
                .iter()
                .all(|b| *b as *const dyn Operation as *const () != a),
            "fibra: select was given the same arm twice"
        );
    }
    let mut order_buf = [0u8; MAX_ARMS];
    let order = &mut order_buf[..n];
    for (i, o) in order.iter_mut().enumerate() {
        *o = i as u8;
    }
    shuffle(order);
    let token = Token::new();
    loop {
        for &i in order.iter() {
            let i = usize::from(i);
            // SAFETY: step 1 of the protocol.
            if unsafe { ops[i].try_now(&token) } {
                return i;
            }
        }
        let deadline = match mode {
            Mode::Try => return n,
            Mode::Block => None,
            Mode::Deadline(d) => {
                if Instant::now() >= d {
                    return n;
                }
                Some(d)
            }
        };
        match park_on(ops, order, &token, deadline) {
            Parked::Won(i) => return i,
            Parked::TimedOut => return n,
            // SAFETY: `park_on` unregistered every entry before returning.
            Parked::Retry => unsafe { token.reset() },
        }
    }
}

/// Steps 2 to 4.
fn park_on(
    ops: &[&dyn Operation],
    order: &[u8],
    token: &Token,
    deadline: Option<Instant>,
) -> Parked {
    let mut reg = Registration {
        ops,
        order,
        token,
        count: 0,
        skip: None,
    };
    let mut started = false;
    let on = crate::park::record::WaitOn::Select {
        arms: ops.len() as u64,
    };
    let polled = park::wait_deadline_as(on, deadline, |cx| {
        if !started {
            started = true;
            // SAFETY: no entry of the token is queued yet.
            unsafe { token.set_waker(cx.waker()) };
            for &i in order {
                let i = usize::from(i);
                // SAFETY: step 2; `reg` unregisters on every exit path.
                match unsafe { ops[i].register(token, i) } {
                    Registered::Queued => reg.count += 1,
                    Registered::Completed => return std::task::Poll::Ready(Parked::Won(i)),
                    Registered::Retry => return std::task::Poll::Ready(Parked::Retry),
                    Registered::Claimed => break,
                }
            }
        }
        match token.outcome() {
            Some(o) => {
                reg.skip = Some(o.arm);
                // SAFETY: DONE observed for this arm.
                unsafe { ops[o.arm].finish(o.closed) };
                std::task::Poll::Ready(Parked::Won(o.arm))
            }
            None => std::task::Poll::Pending,
        }
    });
    match polled {
        Some(p) => p,
        None => match token.abort() {
            Ok(()) => Parked::TimedOut,
            Err(o) => {
                reg.skip = Some(o.arm);
                // SAFETY: DONE observed for this arm.
                unsafe { ops[o.arm].finish(o.closed) };
                Parked::Won(o.arm)
            }
        },
    }
}

/// Fisher-Yates with a per-thread xorshift generator (fixed order under
/// loom, whose executions must replay deterministically).
fn shuffle(order: &mut [u8]) {
    #[cfg(not(loom))]
    {
        thread_local! {
            static RNG: Cell<u64> = Cell::new({
                let seed = std::collections::hash_map::RandomState::new();
                std::hash::BuildHasher::hash_one(&seed, 0x5eed_u64) | 1
            });
        }
        if order.len() < 2 {
            return;
        }
        RNG.with(|rng| {
            let mut x = rng.get();
            for i in (1..order.len()).rev() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let j = ((x >> 32) * (i as u64 + 1)) >> 32;
                order.swap(i, j as usize);
            }
            rng.set(x);
        });
    }
    #[cfg(loom)]
    let _ = order;
}

/// Waits on several channel operations and runs the body of the one that
/// completes, with crossbeam-channel's grammar and Go's semantics.
///
/// ```text
/// select! {
///     recv(rx) -> msg => body,        // msg: Result<T, RecvError>
///     send(tx, value) -> res => body, // res: Result<(), SendError<T>>
///     default => body,                // if no arm is ready now
///     default(timeout) => body,       // if no arm got ready in time
/// }
/// ```
///
/// - When several arms are ready, one is chosen uniformly at random.
/// - Without a `default`, the green thread parks on all the channels (an OS
///   thread blocks) until one arm completes; exactly one does.
/// - A closed channel makes its arms ready (`Err`), as in crossbeam.
/// - Channel expressions and send values are evaluated once, in source
///   order, before anything else (as in Go); unused send values are dropped.
/// - Bodies are expressions or blocks (a block needs no trailing comma);
///   the `select!` is an expression with the value of the chosen body, and
///   `break`, `continue` and `return` in a body apply to the surrounding code.
/// - Several arms may name the same channel; up to 64 arms.
///
/// ```
/// use fibra::{chan::channel, select};
/// use std::time::Duration;
/// fibra::run(|| {
///     let (tx1, rx1) = channel::<i32>(0);
///     let (tx2, rx2) = channel::<&str>(1);
///     fibra::spawn(move || tx1.send(1).unwrap());
///     let mut got = Vec::new();
///     while got.len() < 2 {
///         let step = select! {
///             recv(rx1) -> v => format!("rx1: {}", v.unwrap()),
///             send(tx2, "hi") -> r => { r.unwrap(); "sent".to_string() }
///             default(Duration::from_secs(5)) => panic!("timed out"),
///         };
///         got.push(step);
///     }
///     got.sort();
///     assert_eq!(got, ["rx1: 1", "sent"]);
///     assert_eq!(rx2.recv(), Ok("hi"));
/// });
/// ```
#[macro_export]
macro_rules! select {
    ($($tokens:tt)*) => {
        $crate::__select_parse!(@list ($($tokens)*) () ())
    };
}

/// Parses `select!` arms into `[recv arm] [send arm]` records and one
/// optional default.
#[doc(hidden)]
#[macro_export]
macro_rules! __select_parse {
    // ----- end of input -----
    (@list () ($($arms:tt)*) ($($default:tt)*)) => {
        $crate::__select_gen!(
            @bind ($($arms)*) () ($($default)*)
            (__fibra_a0 __fibra_a1 __fibra_a2 __fibra_a3 __fibra_a4 __fibra_a5 __fibra_a6 __fibra_a7
             __fibra_a8 __fibra_a9 __fibra_a10 __fibra_a11 __fibra_a12 __fibra_a13 __fibra_a14 __fibra_a15
             __fibra_a16 __fibra_a17 __fibra_a18 __fibra_a19 __fibra_a20 __fibra_a21 __fibra_a22 __fibra_a23
             __fibra_a24 __fibra_a25 __fibra_a26 __fibra_a27 __fibra_a28 __fibra_a29 __fibra_a30 __fibra_a31
             __fibra_a32 __fibra_a33 __fibra_a34 __fibra_a35 __fibra_a36 __fibra_a37 __fibra_a38 __fibra_a39
             __fibra_a40 __fibra_a41 __fibra_a42 __fibra_a43 __fibra_a44 __fibra_a45 __fibra_a46 __fibra_a47
             __fibra_a48 __fibra_a49 __fibra_a50 __fibra_a51 __fibra_a52 __fibra_a53 __fibra_a54 __fibra_a55
             __fibra_a56 __fibra_a57 __fibra_a58 __fibra_a59 __fibra_a60 __fibra_a61 __fibra_a62 __fibra_a63)
        )
    };
    // ----- recv -----
    (@list (recv($r:expr) -> $p:pat => $body:block, $($rest:tt)*) ($($arms:tt)*) $default:tt) => {
        $crate::__select_parse!(@list ($($rest)*) ($($arms)* [recv ($r) ($p) { $body }]) $default)
    };
    (@list (recv($r:expr) -> $p:pat => $body:block $($rest:tt)*) ($($arms:tt)*) $default:tt) => {
        $crate::__select_parse!(@list ($($rest)*) ($($arms)* [recv ($r) ($p) { $body }]) $default)
    };
    (@list (recv($r:expr) -> $p:pat => $body:expr, $($rest:tt)*) ($($arms:tt)*) $default:tt) => {
        $crate::__select_parse!(@list ($($rest)*) ($($arms)* [recv ($r) ($p) { $body }]) $default)
    };
    (@list (recv($r:expr) -> $p:pat => $body:expr) ($($arms:tt)*) $default:tt) => {
        $crate::__select_parse!(@list () ($($arms)* [recv ($r) ($p) { $body }]) $default)
    };
    // ----- send -----
    (@list (send($s:expr, $m:expr) -> $p:pat => $body:block, $($rest:tt)*) ($($arms:tt)*) $default:tt) => {
        $crate::__select_parse!(@list ($($rest)*) ($($arms)* [send ($s, $m) ($p) { $body }]) $default)
    };
    (@list (send($s:expr, $m:expr) -> $p:pat => $body:block $($rest:tt)*) ($($arms:tt)*) $default:tt) => {
        $crate::__select_parse!(@list ($($rest)*) ($($arms)* [send ($s, $m) ($p) { $body }]) $default)
    };
    (@list (send($s:expr, $m:expr) -> $p:pat => $body:expr, $($rest:tt)*) ($($arms:tt)*) $default:tt) => {
        $crate::__select_parse!(@list ($($rest)*) ($($arms)* [send ($s, $m) ($p) { $body }]) $default)
    };
    (@list (send($s:expr, $m:expr) -> $p:pat => $body:expr) ($($arms:tt)*) $default:tt) => {
        $crate::__select_parse!(@list () ($($arms)* [send ($s, $m) ($p) { $body }]) $default)
    };
    // ----- default -----
    (@list (default $($rest:tt)*) $arms:tt ($($default:tt)+)) => {
        ::core::compile_error!("select!: more than one `default` arm")
    };
    (@list (default => $body:block, $($rest:tt)*) $arms:tt ()) => {
        $crate::__select_parse!(@list ($($rest)*) $arms (($crate::chan::__private::Mode::Try) { $body }))
    };
    (@list (default => $body:block $($rest:tt)*) $arms:tt ()) => {
        $crate::__select_parse!(@list ($($rest)*) $arms (($crate::chan::__private::Mode::Try) { $body }))
    };
    (@list (default => $body:expr, $($rest:tt)*) $arms:tt ()) => {
        $crate::__select_parse!(@list ($($rest)*) $arms (($crate::chan::__private::Mode::Try) { $body }))
    };
    (@list (default => $body:expr) $arms:tt ()) => {
        $crate::__select_parse!(@list () $arms (($crate::chan::__private::Mode::Try) { $body }))
    };
    (@list (default($t:expr) => $body:block, $($rest:tt)*) $arms:tt ()) => {
        $crate::__select_parse!(@list ($($rest)*) $arms (($crate::chan::__private::Mode::timeout($t)) { $body }))
    };
    (@list (default($t:expr) => $body:block $($rest:tt)*) $arms:tt ()) => {
        $crate::__select_parse!(@list ($($rest)*) $arms (($crate::chan::__private::Mode::timeout($t)) { $body }))
    };
    (@list (default($t:expr) => $body:expr, $($rest:tt)*) $arms:tt ()) => {
        $crate::__select_parse!(@list ($($rest)*) $arms (($crate::chan::__private::Mode::timeout($t)) { $body }))
    };
    (@list (default($t:expr) => $body:expr) $arms:tt ()) => {
        $crate::__select_parse!(@list () $arms (($crate::chan::__private::Mode::timeout($t)) { $body }))
    };
    // ----- errors -----
    (@list ($($bad:tt)+) $arms:tt $default:tt) => {
        ::core::compile_error!(::core::concat!(
            "select!: expected `recv(r) -> v => body`, `send(s, value) -> r => body`, ",
            "`default => body` or `default(timeout) => body`, found: `",
            ::core::stringify!($($bad)+), "`"
        ))
    };
}

/// Generates a `select!`: binds each arm to a name, runs the select, and
/// dispatches to the winner's body.
#[doc(hidden)]
#[macro_export]
macro_rules! __select_gen {
    (@bind ([recv ($r:expr) ($p:pat) $body:tt] $($rest:tt)*) ($($done:tt)*) $default:tt
     ($name:ident $($names:ident)*)) => {
        // `match` keeps temporaries (`recv(after(d))`) alive for the whole
        // select, which a `let` would not.
        match &$r {
            __fibra_chan => {
                let $name = $crate::chan::__private::RecvArm::new(__fibra_chan);
                $crate::__select_gen!(@bind ($($rest)*) ($($done)* [$name ($p) $body]) $default ($($names)*))
            }
        }
    };
    (@bind ([send ($s:expr, $m:expr) ($p:pat) $body:tt] $($rest:tt)*) ($($done:tt)*) $default:tt
     ($name:ident $($names:ident)*)) => {
        match (&$s, $m) {
            (__fibra_chan, __fibra_value) => {
                let $name = $crate::chan::__private::SendArm::new(__fibra_chan, __fibra_value);
                $crate::__select_gen!(@bind ($($rest)*) ($($done)* [$name ($p) $body]) $default ($($names)*))
            }
        }
    };
    (@bind ($arm:tt $($rest:tt)*) $done:tt $default:tt ()) => {
        ::core::compile_error!("select!: too many arms (at most 64)")
    };
    (@bind () ($([$name:ident ($p:pat) $body:tt])*) () ($($names:ident)*)) => {{
        $crate::chan::__private::select(
            &[$(&$name as &dyn $crate::chan::__private::Operation),*],
            $crate::chan::__private::Mode::Block,
        );
        $(let $name = $name.into_result();)*
        $crate::__select_gen!(@dispatch ($([$name ($p) $body])*) {
            ::core::unreachable!("fibra: select! completed no arm")
        })
    }};
    (@bind () ($([$name:ident ($p:pat) $body:tt])*) (($mode:expr) $default:tt) ($($names:ident)*)) => {{
        $crate::chan::__private::select(
            &[$(&$name as &dyn $crate::chan::__private::Operation),*],
            $mode,
        );
        $(let $name = $name.into_result();)*
        $crate::__select_gen!(@dispatch ($([$name ($p) $body])*) $default)
    }};
    (@dispatch () $default:tt) => {
        $default
    };
    (@dispatch ([$name:ident ($p:pat) $body:tt] $($rest:tt)*) $default:tt) => {
        if let ::core::option::Option::Some(__fibra_res) = $name {
            let $p = __fibra_res;
            $body
        } else {
            $crate::__select_gen!(@dispatch ($($rest)*) $default)
        }
    };
}

//! Task-local values: [`task_local!`](crate::task_local) declares a
//! [`LocalKey`]; `KEY.scope(value, f)` makes `value` what `KEY.with`
//! sees inside `f`, in this green thread or async task only.
//!
//! # How values are found
//!
//! `scope` keeps the value in its own stack frame and pushes a [`Frame`]
//! (key, type, value pointer, previous frame) onto a list whose head
//! belongs to the running task (`Task::locals`), or to the OS thread when
//! no task runs (a plain thread). `with` walks the list from the head for
//! the key. `scope` pops its frame when `f` returns or unwinds (a guard
//! restores the previous head), so the list is always the chain of scopes
//! the task is inside, innermost first.
//!
//! # Why it is sound
//!
//! - A frame lives on the stack of the code that pushed it, below every
//!   call that can read it: scopes nest, and each pops before it returns.
//! - A green thread's frames are on its own stack, which stays put while
//!   it parks; its head is in its `Task`, touched only by the thread
//!   running it (its owner worker), so another green thread on the same
//!   worker starts from its own head and never sees them.
//! - An async task has no stack of its own: its frames exist only during
//!   one poll (a `scope` inside the poll, or [`LocalKey::scope_async`]
//!   around the inner poll), so its head is null between polls, when it
//!   may move to another worker.
//! - A value is found by key address *and* `TypeId`, so a key can never
//!   be read as another type.

use std::any::TypeId;
use std::cell::Cell;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::current;

/// One `scope` of one key: where its value is, and the scope it shadows.
pub(crate) struct Frame {
    /// The key's address (its identity).
    key: *const (),
    /// The value's type, checked with the key.
    type_id: TypeId,
    /// `&T` of the value, lent by the `scope` call that owns this frame.
    value: *const (),
    /// The frame that was the head before this one (set by [`push`]).
    prev: Cell<*const Frame>,
}

thread_local! {
    /// The list head of a plain thread (no task running on it).
    static THREAD_HEAD: Cell<*const Frame> = const { Cell::new(std::ptr::null()) };
}

/// Runs `f` with the head of the running task's list, or the thread's.
fn with_head<R>(f: impl FnOnce(&Cell<*const Frame>) -> R) -> R {
    let mut f = Some(f);
    let ran = current::with_task(|t| t.map(|t| (f.take().expect("once"))(&t.locals)));
    match ran {
        Some(r) => r,
        None => THREAD_HEAD.with(|head| (f.take().expect("once"))(head)),
    }
}

/// A key for task-local values, declared with
/// [`task_local!`](crate::task_local).
///
/// ```
/// fibra::task_local! {
///     static REQUEST_ID: u64;
/// }
///
/// fibra::run(|| {
///     REQUEST_ID.scope(7, || {
///         fibra::time::sleep(std::time::Duration::from_millis(1));
///         assert_eq!(REQUEST_ID.with(|id| *id), 7);
///     });
///     assert!(REQUEST_ID.try_with(|_| ()).is_err());
/// });
/// ```
pub struct LocalKey<T: 'static> {
    /// For messages; also makes the key non-zero-sized, so every key has
    /// its own address.
    name: &'static str,
    _value: PhantomData<fn(T) -> T>,
}

/// The key was read outside any `scope` of it (see
/// [`LocalKey::try_with`]).
///
/// ```
/// fibra::task_local! { static K: u8; }
/// let err = K.try_with(|_| ()).unwrap_err();
/// assert!(err.to_string().contains("K"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessError {
    name: &'static str,
}

impl std::fmt::Display for AccessError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "task-local `{}` was read outside any `{}.scope(value, ...)` of this green thread or \
             async task",
            self.name, self.name
        )
    }
}

impl std::error::Error for AccessError {}

impl<T: 'static> LocalKey<T> {
    #[doc(hidden)]
    pub const fn new(name: &'static str) -> LocalKey<T> {
        LocalKey {
            name,
            _value: PhantomData,
        }
    }

    fn id(&'static self) -> *const () {
        self as *const LocalKey<T> as *const ()
    }

    /// Runs `f` with `value` as this key's value for the running green
    /// thread or async task (or plain thread), then drops `value` and
    /// returns `f`'s result. Scopes nest: the inner value shadows the
    /// outer one, which is back when the inner scope ends, even by a
    /// panic. Green threads spawned inside do not inherit the value.
    ///
    /// ```
    /// fibra::task_local! { static DEPTH: u32; }
    ///
    /// fibra::run(|| {
    ///     DEPTH.scope(1, || {
    ///         DEPTH.scope(2, || assert_eq!(DEPTH.with(|d| *d), 2));
    ///         assert_eq!(DEPTH.with(|d| *d), 1);
    ///     });
    /// });
    /// ```
    pub fn scope<F, R>(&'static self, value: T, f: F) -> R
    where
        F: FnOnce() -> R,
    {
        let frame = Frame {
            key: self.id(),
            type_id: TypeId::of::<T>(),
            value: &value as *const T as *const (),
            prev: Cell::new(std::ptr::null()),
        };
        let _pop = push(&frame);
        f()
    }

    /// Wraps `fut` so that `value` is this key's value while it is polled
    /// (in whichever task polls it), and `with` finds it across `.await`s:
    /// the per-task form for async code.
    ///
    /// ```
    /// fibra::task_local! { static USER: &'static str; }
    ///
    /// fibra::run(|| {
    ///     let h = fibra::spawn_async(USER.scope_async("ada", async {
    ///         fibra::time::Sleep::new(std::time::Duration::from_millis(1)).await;
    ///         USER.with(|u| u.len())
    ///     }));
    ///     assert_eq!(h.join().unwrap(), 3);
    /// });
    /// ```
    pub fn scope_async<F: Future>(&'static self, value: T, fut: F) -> TaskLocalFuture<T, F> {
        TaskLocalFuture {
            key: self,
            value,
            fut,
        }
    }

    /// Runs `f` with this key's value in the innermost enclosing
    /// [`scope`](Self::scope).
    ///
    /// # Panics
    ///
    /// Outside any scope of this key in the running green thread or async
    /// task (see [`try_with`](Self::try_with)).
    ///
    /// ```
    /// fibra::task_local! { static NAME: String; }
    ///
    /// let len = NAME.scope("fibra".to_string(), || NAME.with(|n| n.len()));
    /// assert_eq!(len, 5);
    /// ```
    #[track_caller]
    pub fn with<F, R>(&'static self, f: F) -> R
    where
        F: FnOnce(&T) -> R,
    {
        match self.try_with(f) {
            Ok(r) => r,
            Err(err) => panic!("{err}"),
        }
    }

    /// Like [`with`](Self::with), but an error outside any scope of the key.
    ///
    /// ```
    /// fibra::task_local! { static N: i32; }
    ///
    /// assert!(N.try_with(|n| *n).is_err());
    /// assert_eq!(N.scope(3, || N.try_with(|n| *n)), Ok(3));
    /// ```
    pub fn try_with<F, R>(&'static self, f: F) -> Result<R, AccessError>
    where
        F: FnOnce(&T) -> R,
    {
        let (key, type_id) = (self.id(), TypeId::of::<T>());
        let value = with_head(|head| {
            let mut frame = head.get();
            while !frame.is_null() {
                // SAFETY: every frame in the list is alive: it lives in the
                // frame of a `scope` call (or a `TaskLocalFuture` poll)
                // still running below us on this task's stack or this
                // thread's, which pops it before returning (module docs).
                let fr = unsafe { &*frame };
                if fr.key == key && fr.type_id == type_id {
                    return Some(fr.value as *const T);
                }
                frame = fr.prev.get();
            }
            None
        });
        match value {
            // SAFETY: the frame (and so the value it points to, a `T` by
            // the `TypeId` check) outlives this call, as above; the value
            // is only ever lent shared.
            Some(v) => Ok(f(unsafe { &*v })),
            None => Err(AccessError { name: self.name }),
        }
    }
}

impl<T: 'static> std::fmt::Debug for LocalKey<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalKey")
            .field("name", &self.name)
            .finish()
    }
}

/// Pushes `frame` onto the running task's (or thread's) list until the
/// guard drops.
fn push(frame: &Frame) -> Pop {
    with_head(|head| {
        // The caller keeps `frame` alive longer than the guard (both are
        // its locals, the guard declared after it), and the guard unlinks
        // it: the list never holds a dangling frame.
        let prev = head.get();
        frame.prev.set(prev);
        head.set(frame);
        Pop {
            frame,
            prev,
            _not_send: PhantomData,
        }
    })
}

/// Restores the list head a [`push`] replaced.
struct Pop {
    frame: *const Frame,
    prev: *const Frame,
    /// Pops on the thread (and task) that pushed.
    _not_send: PhantomData<*const ()>,
}

impl Drop for Pop {
    fn drop(&mut self) {
        with_head(|head| {
            debug_assert_eq!(head.get(), self.frame, "task-local scopes pop in order");
            head.set(self.prev);
        });
    }
}

/// A future with a task-local value in scope while it is polled; made by
/// [`LocalKey::scope_async`].
///
/// ```
/// fibra::task_local! { static K: u8; }
/// let v = fibra::run(|| fibra::block_on(K.scope_async(9, async { K.with(|k| *k) })));
/// assert_eq!(v, 9);
/// ```
pub struct TaskLocalFuture<T: 'static, F> {
    key: &'static LocalKey<T>,
    value: T,
    fut: F,
}

impl<T: 'static, F: Future> Future for TaskLocalFuture<T, F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: nothing is moved out of `this`: `value` and `key` are only
        // lent shared, and `fut` is pinned again at once.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: `fut` is structurally pinned: it is never moved out of the
        // pinned `TaskLocalFuture`, and is dropped in place with it.
        let fut = unsafe { Pin::new_unchecked(&mut this.fut) };
        let frame = Frame {
            key: this.key.id(),
            type_id: TypeId::of::<T>(),
            value: &this.value as *const T as *const (),
            prev: Cell::new(std::ptr::null()),
        };
        let _pop = push(&frame);
        fut.poll(cx)
    }
}

impl<T: 'static, F> std::fmt::Debug for TaskLocalFuture<T, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskLocalFuture")
            .field("key", &self.key.name)
            .finish()
    }
}

/// Declares task-local keys: each `static NAME: T;` becomes a
/// [`task::LocalKey<T>`](crate::task::LocalKey), set with
/// `NAME.scope(value, f)` and read with `NAME.with(|v| ...)`, per green
/// thread and per async task (a value never shows through to another
/// green thread on the same worker, and stays across parks and sleeps).
///
/// ```
/// use std::time::Duration;
///
/// fibra::task_local! {
///     /// The request being served.
///     pub static REQUEST: u32;
///     static TRACE: Vec<&'static str>;
/// }
///
/// fibra::run(|| {
///     let handles: Vec<_> = (0..4)
///         .map(|i| {
///             fibra::spawn(move || {
///                 REQUEST.scope(i, || {
///                     fibra::time::sleep(Duration::from_millis(1));
///                     REQUEST.with(|r| *r)
///                 })
///             })
///         })
///         .collect();
///     for (i, h) in handles.into_iter().enumerate() {
///         assert_eq!(h.join().unwrap(), i as u32);
///     }
///     TRACE.scope(vec!["a"], || TRACE.with(|t| assert_eq!(t.len(), 1)));
/// });
/// ```
#[macro_export]
macro_rules! task_local {
    () => {};
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty; $($rest:tt)*) => {
        $(#[$attr])*
        $vis static $name: $crate::task::LocalKey<$t> =
            $crate::task::LocalKey::new(::core::stringify!($name));
        $crate::task_local!($($rest)*);
    };
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty) => {
        $crate::task_local!($(#[$attr])* $vis static $name: $t;);
    };
}

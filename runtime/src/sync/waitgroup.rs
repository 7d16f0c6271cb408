//! `WaitGroup`: wait for a set of tasks to finish, as Go's `sync.WaitGroup`.
//!
//! State (under one internal lock): the counter and a queue of waiters.
//! `add` changes the counter; when it reaches zero every waiter is granted
//! and woken. `wait` returns at once on zero, else queues. A negative
//! counter is a bug in the caller and panics, as in Go.

use std::task::{Context, Poll};

use super::wait_queue::{self, Parkable, WaitFuture, WaitQueue, Waiter, GRANTED};

/// Waits for a counter of outstanding work to reach zero.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use fibra::sync::WaitGroup;
/// fibra::run(|| {
///     let wg = Arc::new(WaitGroup::new());
///     let done = Arc::new(AtomicUsize::new(0));
///     for _ in 0..10 {
///         wg.add(1);
///         let (wg, done) = (wg.clone(), done.clone());
///         fibra::spawn(move || {
///             done.fetch_add(1, Ordering::SeqCst);
///             wg.done();
///         });
///     }
///     wg.wait();
///     assert_eq!(done.load(Ordering::SeqCst), 10);
/// });
/// ```
pub struct WaitGroup {
    state: crate::loom::Mutex<State>,
}

struct State {
    count: isize,
    queue: WaitQueue,
}

impl WaitGroup {
    /// A wait group with counter zero.
    ///
    /// ```
    /// fibra::sync::WaitGroup::new().wait(); // zero: returns at once
    /// ```
    pub fn new() -> WaitGroup {
        WaitGroup {
            state: crate::loom::Mutex::new(State {
                count: 0,
                queue: WaitQueue::default(),
            }),
        }
    }

    /// Adds `delta` (may be negative) to the counter; at zero, releases the
    /// waiters. Panics if the counter goes negative.
    ///
    /// ```
    /// let wg = fibra::sync::WaitGroup::new();
    /// wg.add(2);
    /// wg.add(-2);
    /// wg.wait();
    /// ```
    pub fn add(&self, delta: isize) {
        let mut st = crate::loom::lock(&self.state);
        let count = st.count + delta;
        assert!(count >= 0, "fibra: negative WaitGroup counter");
        st.count = count;
        if count != 0 {
            return;
        }
        let mut wakers = Vec::with_capacity(st.queue.len());
        while let Some(w) = st.queue.pop_front() {
            // SAFETY: popped under the lock.
            wakers.push(unsafe { Waiter::release(w, GRANTED) });
        }
        drop(st);
        wait_queue::wake_all(wakers);
    }

    /// Decrements the counter by one.
    ///
    /// ```
    /// let wg = fibra::sync::WaitGroup::new();
    /// wg.add(1);
    /// wg.done();
    /// assert_eq!(wg.count(), 0);
    /// ```
    pub fn done(&self) {
        self.add(-1);
    }

    /// The counter now.
    ///
    /// ```
    /// let wg = fibra::sync::WaitGroup::new();
    /// wg.add(3);
    /// assert_eq!(wg.count(), 3);
    /// ```
    pub fn count(&self) -> usize {
        crate::loom::lock(&self.state).count as usize
    }

    /// Waits until the counter is zero.
    ///
    /// ```
    /// use std::sync::Arc;
    /// let wg = Arc::new(fibra::sync::WaitGroup::new());
    /// wg.add(1);
    /// let wg2 = wg.clone();
    /// std::thread::spawn(move || wg2.done());
    /// wg.wait();
    /// ```
    #[track_caller]
    pub fn wait(&self) {
        wait_queue::block(crate::park::record::SyncKind::WaitGroup, self, 0, None);
    }

    /// Waits from async code.
    ///
    /// ```
    /// let wg = fibra::sync::WaitGroup::new();
    /// fibra::block_on(wg.wait_async());
    /// ```
    pub async fn wait_async(&self) {
        WaitFuture::new(self, 0).await
    }
}

impl Default for WaitGroup {
    fn default() -> Self {
        WaitGroup::new()
    }
}

impl Parkable for WaitGroup {
    type Output = ();

    unsafe fn poll_wait(&self, w: &Waiter, queued: &mut bool, cx: &mut Context<'_>) -> Poll<()> {
        // SAFETY: the caller's contract, passed on.
        unsafe {
            wait_queue::poll_granted(
                &self.state,
                w,
                queued,
                cx,
                |st| st.count == 0,
                |st| &mut st.queue,
            )
        }
    }

    fn abandon(&self, w: &Waiter) {
        crate::loom::lock(&self.state).queue.remove(w);
    }
}

impl std::fmt::Debug for WaitGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WaitGroup")
            .field("count", &self.count())
            .finish()
    }
}

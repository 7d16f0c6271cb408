//! loom models of the mutex: mutual exclusion with parking, and a waiter
//! abandoning its wait (future dropped) without losing the wake-up meant
//! for the next one.

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Wake, Waker};

use loom::thread;

use super::Mutex;

/// Two threads increment under the lock; nobody is lost or left parked.
#[test]
fn loom_mutex_excludes_and_wakes() {
    model(|| {
        let m = Arc::new(Mutex::new(0));
        let m2 = m.clone();
        let t = thread::spawn(move || *m2.lock().unwrap() += 1);
        *m.lock().unwrap() += 1;
        t.join().unwrap();
        assert_eq!(*m.lock().unwrap(), 2);
    });
}

struct Noop;
impl Wake for Noop {
    fn wake(self: Arc<Self>) {}
}

/// A queued `lock_async` future is dropped while the holder unlocks and a
/// blocking locker waits: the blocking locker must still get the lock, both
/// when unlock wakes waiters to compete and when it hands the lock over.
#[test]
fn loom_mutex_abandoned_waiter_passes_wakeup_on() {
    for handoff in [false, true] {
        super::mutex::LOOM_HANDOFF.with(|h| h.set(handoff));
        abandoned_waiter_model();
    }
}

fn abandoned_waiter_model() {
    model(|| {
        let m = Arc::new(Mutex::new(0));
        let g = m.lock().unwrap();
        let m1 = m.clone();
        let quitter = thread::spawn(move || {
            let waker = Waker::from(Arc::new(Noop));
            let mut fut = Box::pin(m1.lock_async());
            if let std::task::Poll::Ready(g) = fut.as_mut().poll(&mut Context::from_waker(&waker)) {
                drop(g);
            }
            drop(fut);
        });
        let m2 = m.clone();
        let locker = thread::spawn(move || *m2.lock().unwrap() += 1);
        drop(g);
        quitter.join().unwrap();
        locker.join().unwrap();
        assert_eq!(*m.lock().unwrap(), 1);
    });
}

/// `loom::model` with a preemption bound of 3 unless `LOOM_MAX_PREEMPTIONS`
/// says otherwise (unbounded, the select models take hours).
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(3);
    }
    builder.check(f);
}

//! loom models of the sync primitives: the mutex (mutual exclusion with
//! parking; a waiter abandoning its wait without losing the wake-up meant
//! for the next one, in both unlock modes), the semaphore (an abandoned
//! grant is passed on) and the rwlock (writer and readers queue in order).

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

/// Semaphore: a queued `acquire_async` is dropped while permits are being
/// released; the permits it may have been granted go to the next waiter.
#[test]
fn loom_semaphore_abandoned_grant_is_passed_on() {
    model(|| {
        let sem = Arc::new(super::Semaphore::new(0));
        let s1 = sem.clone();
        let quitter = thread::spawn(move || {
            let waker = Waker::from(Arc::new(Noop));
            let mut fut = Box::pin(s1.acquire_async());
            if let std::task::Poll::Ready(p) = fut.as_mut().poll(&mut Context::from_waker(&waker)) {
                drop(p);
            }
            drop(fut);
        });
        let s2 = sem.clone();
        let taker = thread::spawn(move || s2.acquire().forget());
        sem.add_permits(1);
        quitter.join().unwrap();
        taker.join().unwrap();
        assert_eq!(sem.available_permits(), 0);
    });
}

/// RwLock: a writer waits for a reader; a second reader queued behind the
/// writer gets in after it. Nobody is left parked.
#[test]
fn loom_rwlock_writer_then_reader() {
    model(|| {
        let lock = Arc::new(super::RwLock::new(0));
        let r = lock.read().unwrap();
        let l1 = lock.clone();
        let writer = thread::spawn(move || *l1.write().unwrap() += 1);
        let l2 = lock.clone();
        let reader = thread::spawn(move || *l2.read().unwrap());
        drop(r);
        writer.join().unwrap();
        let seen = reader.join().unwrap();
        assert!(seen == 0 || seen == 1);
        assert_eq!(*lock.read().unwrap(), 1);
    });
}

//! `JoinHandle::cancel`: parked green threads unwind (destructors run on
//! their worker), unstarted ones never run, async tasks drop their future
//! in place, queued blocking jobs never run, finished tasks keep their
//! result — and the primitives they waited on keep working.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fibra::chan::channel;

struct CountDrop(Arc<AtomicUsize>);
impl Drop for CountDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_parked_green_thread_unwinds_and_runs_its_destructors() {
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    fibra::run(move || {
        let (tx, rx) = channel::<u32>(0);
        let lock = Arc::new(fibra::sync::Mutex::new(0));
        let l = lock.clone();
        let h = fibra::spawn(move || {
            let _guard = CountDrop(d);
            let mut n = l.lock().unwrap();
            *n += 1;
            drop(n);
            rx.recv()
        });
        // Let it take the lock once and park on the channel.
        fibra::time::sleep(Duration::from_millis(10));
        h.cancel();
        let err = h.join().unwrap_err();
        assert!(err.is_cancelled(), "{err}");
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        // Nothing is left registered on the channel: a send times out.
        assert!(tx.send_timeout(1, Duration::from_millis(20)).is_err());
        assert_eq!(*lock.lock().unwrap(), 1);
    });
}

#[test]
fn an_unstarted_green_thread_never_runs() {
    let rt = fibra::Runtime::builder().workers(1).build().unwrap();
    let ran = Arc::new(AtomicBool::new(false));
    let drops = Arc::new(AtomicUsize::new(0));
    let (r, d) = (ran.clone(), drops.clone());
    rt.run(move || {
        // One worker, and the main green thread does not yield: the task
        // cannot start before it is cancelled.
        let guard = CountDrop(d);
        let h = fibra::spawn(move || {
            let _g = guard;
            r.store(true, Ordering::SeqCst);
        });
        h.cancel();
        assert!(h.join().unwrap_err().is_cancelled());
    });
    assert!(!ran.load(Ordering::SeqCst));
    assert_eq!(drops.load(Ordering::SeqCst), 1, "the closure was dropped");
}

#[test]
fn an_async_task_drops_its_future_in_place() {
    fibra::run(|| {
        let lock = Arc::new(fibra::sync::Mutex::new(0u32));
        let held = lock.lock().unwrap();
        let l = lock.clone();
        let (_tx, rx) = channel::<u8>(0);
        let waiting_lock = fibra::spawn_async(async move {
            let mut g = l.lock_async().await.unwrap();
            *g += 1;
        });
        let waiting_recv = fibra::spawn_async(async move { rx.recv_async().await });
        fibra::time::sleep(Duration::from_millis(10));
        waiting_lock.cancel();
        waiting_recv.cancel();
        assert!(waiting_lock.join().unwrap_err().is_cancelled());
        assert!(waiting_recv.join().unwrap_err().is_cancelled());
        drop(held);
        // The cancelled waiter left the lock's queue: it is free.
        let g = lock.try_lock().expect("the mutex is free");
        assert_eq!(*g, 0);
    });
}

#[test]
fn a_finished_task_keeps_its_result() {
    fibra::run(|| {
        let h = fibra::spawn(|| 5);
        while !h.is_finished() {
            fibra::yield_now();
        }
        h.cancel();
        assert_eq!(h.join().unwrap(), 5);
    });
}

#[test]
fn a_queued_blocking_job_never_runs() {
    let rt = fibra::Runtime::builder()
        .max_blocking_threads(1)
        .build()
        .unwrap();
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    rt.run(move || {
        let first = fibra::spawn_blocking(|| std::thread::sleep(Duration::from_millis(50)));
        let second = fibra::spawn_blocking(move || r.store(true, Ordering::SeqCst));
        second.cancel();
        first.join().unwrap();
        assert!(second.join().unwrap_err().is_cancelled());
    });
    assert!(!ran.load(Ordering::SeqCst));
}

#[test]
fn cancelling_many_parked_green_threads_from_another_thread() {
    fibra::run(|| {
        let (_tx, rx) = channel::<u8>(0);
        let handles: Vec<_> = (0..500)
            .map(|_| {
                let rx = rx.clone();
                fibra::spawn(move || rx.recv())
            })
            .collect();
        fibra::time::sleep(Duration::from_millis(20));
        let handles = std::thread::spawn(move || {
            for h in &handles {
                h.cancel();
            }
            handles
        })
        .join()
        .unwrap();
        for h in handles {
            assert!(h.join().unwrap_err().is_cancelled());
        }
    });
}

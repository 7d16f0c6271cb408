//! The async forms: futures on fibra's async tasks, on a foreign executor
//! (a hand-rolled poll loop), cancellation by drop, and mixing with green
//! threads.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use fibra_runtime::chan::{channel, RecvError, TryRecvError, TrySendError};
use fibra_runtime::Runtime;

struct CountingWaker(std::sync::atomic::AtomicUsize);
impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[test]
fn async_tasks_talk_to_green_threads() {
    for workers in [1, 2] {
        Runtime::builder()
            .workers(workers)
            .build()
            .unwrap()
            .run(|| {
                let (tx, rx) = channel::<u32>(0);
                let (back_tx, back_rx) = channel::<u32>(0);
                let a = fibra_runtime::spawn_async(async move {
                    let mut sum = 0;
                    while let Ok(v) = rx.recv_async().await {
                        sum += v;
                        back_tx.send_async(v + 1).await.unwrap();
                    }
                    sum
                });
                for i in 0..1000 {
                    tx.send(i).unwrap();
                    assert_eq!(back_rx.recv(), Ok(i + 1));
                }
                drop(tx);
                assert_eq!(a.join().unwrap(), (0..1000).sum::<u32>());
            });
    }
}

#[test]
fn dropped_recv_future_withdraws_cleanly() {
    let (tx, rx) = channel::<u32>(0);
    let w = Arc::new(CountingWaker(Default::default()));
    let waker = Waker::from(w.clone());
    let mut cx = Context::from_waker(&waker);
    {
        let mut fut = pin!(rx.recv_async());
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        // A parked receiver exists now: try_send would hand over to it.
    }
    // The future is gone: its entry must be too.
    assert_eq!(tx.try_send(1), Err(TrySendError::Full(1)));
    assert_eq!(w.0.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[test]
fn dropped_send_future_withdraws_its_value() {
    let (tx, rx) = channel::<u32>(0);
    let waker = Waker::from(Arc::new(CountingWaker(Default::default())));
    let mut cx = Context::from_waker(&waker);
    {
        let mut fut = pin!(tx.send_async(9));
        assert!(fut.as_mut().poll(&mut cx).is_pending());
    }
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
}

#[test]
fn pending_recv_future_is_woken_and_completes() {
    let (tx, rx) = channel::<u32>(0);
    let w = Arc::new(CountingWaker(Default::default()));
    let waker = Waker::from(w.clone());
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(rx.recv_async());
    assert!(fut.as_mut().poll(&mut cx).is_pending());
    // A second poll with another waker replaces the first.
    let w2 = Arc::new(CountingWaker(Default::default()));
    let waker2 = Waker::from(w2.clone());
    assert!(fut
        .as_mut()
        .poll(&mut Context::from_waker(&waker2))
        .is_pending());
    tx.try_send(4).unwrap(); // hands over to the parked future
    assert_eq!(w.0.load(std::sync::atomic::Ordering::SeqCst), 0);
    assert_eq!(w2.0.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(fut.as_mut().poll(&mut cx), Poll::Ready(Ok(4)));
}

#[test]
fn close_completes_pending_futures() {
    let (tx, rx) = channel::<u32>(0);
    let waker = Waker::from(Arc::new(CountingWaker(Default::default())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(rx.recv_async());
    assert!(fut.as_mut().poll(&mut cx).is_pending());
    drop(tx);
    assert_eq!(fut.as_mut().poll(&mut cx), Poll::Ready(Err(RecvError)));
}

#[test]
fn block_on_from_os_thread_and_green_thread() {
    let (tx, rx) = channel::<u32>(1);
    fibra_runtime::block_on(tx.send_async(1)).unwrap();
    assert_eq!(fibra_runtime::block_on(rx.recv_async()), Ok(1));
    Runtime::builder().workers(2).build().unwrap().run(move || {
        let h = fibra_runtime::spawn(move || {
            fibra_runtime::time::sleep(Duration::from_millis(5));
            tx.send(2).unwrap();
        });
        assert_eq!(fibra_runtime::block_on(rx.recv_async()), Ok(2));
        h.join().unwrap();
    });
}

#[test]
fn blocking_recv_in_async_task_panics_with_a_clear_message() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    let (_tx, rx) = channel::<u32>(0);
    let h = rt.spawn_async(async move { rx.recv() });
    let err = rt.block_on(h).unwrap_err();
    assert!(err.is_panic());
    let msg = err.into_panic();
    let msg = msg
        .downcast_ref::<String>()
        .map(String::as_str)
        .or(msg.downcast_ref::<&str>().copied());
    assert!(msg.unwrap().contains("_async"), "{msg:?}");
}

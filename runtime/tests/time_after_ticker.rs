//! `time::after` and `time::Ticker` deliver on channels and combine with
//! `select!` for timeouts, in green threads and on OS threads.

use std::time::{Duration, Instant};

use fibra_runtime::chan::{channel, TryRecvError};
use fibra_runtime::time::{after, Ticker};
use fibra_runtime::{select, Runtime};

#[test]
fn after_fires_once_and_stays_open() {
    for workers in [1, 2] {
        Runtime::builder()
            .workers(workers)
            .build()
            .unwrap()
            .run(|| {
                let start = Instant::now();
                let rx = after(Duration::from_millis(10));
                let at = rx.recv().unwrap();
                assert!(at >= start + Duration::from_millis(10));
                assert!(start.elapsed() >= Duration::from_millis(10));
                // Go never closes the channel: nothing more, but no error.
                assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
            });
    }
    // Off the runtime, on the process-wide timer thread.
    let start = Instant::now();
    after(Duration::from_millis(5)).recv().unwrap();
    assert!(start.elapsed() >= Duration::from_millis(5));
}

#[test]
fn after_as_select_timeout() {
    Runtime::builder().workers(2).build().unwrap().run(|| {
        let (tx, rx) = channel::<u32>(0);
        let timeout = after(Duration::from_millis(10));
        let r = select! {
            recv(rx) -> v => v.ok(),
            recv(timeout) -> _ => None,
        };
        assert_eq!(r, None);
        // A sender that is in time beats the timeout.
        fibra_runtime::spawn(move || tx.send(4).unwrap());
        let r = select! {
            recv(rx) -> v => v.ok(),
            recv(after(Duration::from_secs(10))) -> _ => None,
        };
        assert_eq!(r, Some(4));
    });
}

#[test]
fn ticker_ticks_until_stopped() {
    Runtime::builder().workers(1).build().unwrap().run(|| {
        let ticker = Ticker::new(Duration::from_millis(2));
        let mut last = Instant::now();
        for _ in 0..5 {
            let t = select! { recv(ticker) -> t => t.unwrap() };
            assert!(t >= last);
            last = t;
        }
        ticker.stop();
        let _ = ticker.try_recv(); // at most one tick was pending
        fibra_runtime::time::sleep(Duration::from_millis(10));
        assert_eq!(
            ticker.try_recv(),
            Err(TryRecvError::Empty),
            "ticks after stop"
        );
        ticker.reset(Duration::from_millis(1));
        assert!(ticker.recv().is_ok(), "reset restarts the ticker");
    });
}

#[test]
fn slow_receiver_gets_no_backlog() {
    Runtime::builder().workers(1).build().unwrap().run(|| {
        let ticker = Ticker::new(Duration::from_millis(1));
        fibra_runtime::time::sleep(Duration::from_millis(20));
        assert!(ticker.try_recv().is_ok());
        assert_eq!(
            ticker.try_recv(),
            Err(TryRecvError::Empty),
            "only one tick buffered"
        );
    });
}

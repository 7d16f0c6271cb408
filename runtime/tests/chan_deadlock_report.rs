//! Go's "all goroutines are asleep - deadlock!": two tasks each waiting on
//! the other's channel, main waiting on one of them. `run` must panic with
//! the report (naming both tasks and their call sites) instead of hanging.

use std::time::Duration;

use fibra_runtime::chan::channel;
use fibra_runtime::task::Builder;
use fibra_runtime::Runtime;

fn report(workers: usize) -> String {
    let rt = Runtime::builder()
        .workers(workers)
        .deadlock_grace(Some(Duration::from_millis(200)))
        .build()
        .unwrap();
    let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.run(|| {
            let (to_a, from_b) = channel::<u32>(0);
            let (to_b, from_a) = channel::<u32>(0);
            let a = Builder::new()
                .name("alpha")
                .spawn(move || {
                    let v = from_b.recv().unwrap(); // waits for beta
                    to_b.send(v).unwrap();
                })
                .unwrap();
            let _b = Builder::new()
                .name("beta")
                .spawn(move || {
                    let v = from_a.recv().unwrap(); // waits for alpha
                    to_a.send(v).unwrap();
                })
                .unwrap();
            a.join().unwrap();
        })
    }))
    .expect_err("run must report the deadlock");
    payload
        .downcast::<String>()
        .map(|s| *s)
        .unwrap_or_else(|_| "<non-string panic>".into())
}

#[test]
fn two_tasks_waiting_on_each_other_are_reported() {
    for workers in [1, 2] {
        let msg = report(workers);
        assert!(
            msg.starts_with("all green threads are asleep - deadlock!"),
            "{msg}"
        );
        assert!(
            msg.contains("'alpha'") && msg.contains("'beta'") && msg.contains("'main'"),
            "{msg}"
        );
        assert!(msg.contains("chan receive"), "{msg}");
        assert!(msg.contains("join of task #"), "{msg}");
        assert!(
            msg.contains("chan_deadlock_report.rs:"),
            "call sites missing: {msg}"
        );
    }
}

#[test]
fn a_sender_on_a_plain_thread_blocked_in_fibra_is_not_a_deadlock() {
    let rt = Runtime::builder()
        .workers(1)
        .deadlock_grace(Some(Duration::from_millis(50)))
        .build()
        .unwrap();
    let (tx, rx) = channel::<u32>(0);
    let (go_tx, go_rx) = channel::<()>(0);
    // The plain thread is blocked in a fibra call (a recv) for several
    // grace periods, then sends.
    let t = std::thread::spawn(move || {
        go_rx.recv_timeout(Duration::from_millis(300)).ok();
        tx.send(5).unwrap();
    });
    let v = rt.run(move || {
        let _keep = go_tx;
        rx.recv().unwrap()
    });
    assert_eq!(v, 5);
    t.join().unwrap();
}

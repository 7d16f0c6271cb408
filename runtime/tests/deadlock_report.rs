//! When every green thread is parked on a fibra primitive and nothing else
//! can wake one, `run` panics with Go's message and a task dump naming the
//! tasks and their call sites: Go's "all goroutines are asleep -
//! deadlock!", for instance two tasks each waiting on the other's channel
//! with main waiting on one of them; sleeping tasks and threads blocked in
//! fibra calls are not a deadlock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fibra_runtime::chan::channel;
use fibra_runtime::task::Builder;
use fibra_runtime::{spawn, JoinHandle, Runtime};

type Slot = Arc<Mutex<Option<JoinHandle<()>>>>;

#[test]
fn sleeping_tasks_are_not_a_deadlock() {
    let rt = Runtime::builder()
        .workers(1)
        .deadlock_grace(Some(Duration::from_millis(50)))
        .build()
        .unwrap();
    // Main sleeps past several grace periods: a pending timer means
    // progress is still possible.
    rt.run(|| fibra_runtime::time::sleep(Duration::from_millis(300)));
}

#[test]
fn a_thread_blocked_in_a_fibra_call_is_not_a_deadlock() {
    let rt = Runtime::builder()
        .workers(1)
        .deadlock_grace(Some(Duration::from_millis(50)))
        .build()
        .unwrap();
    let slot: Slot = Default::default();
    let s2 = slot.clone();
    let outside = std::thread::spawn(move || {
        // Blocks in a fibra call (a join) until main finishes.
        let h = loop {
            if let Some(h) = s2.lock().unwrap().take() {
                break h;
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        h.join().unwrap();
    });
    rt.run(|| {
        let gate = spawn(|| fibra_runtime::time::sleep(Duration::from_millis(200)));
        *slot.lock().unwrap() = Some(spawn(move || gate.join().unwrap()));
        fibra_runtime::time::sleep(Duration::from_millis(250));
    });
    outside.join().unwrap();
}

#[test]
fn dump_lists_parked_tasks_with_their_sites() {
    fibra_runtime::run(|| {
        let sleeper = fibra_runtime::task::Builder::new()
            .name("napper")
            .spawn(|| fibra_runtime::time::sleep(Duration::from_millis(300)))
            .unwrap();
        fibra_runtime::time::sleep(Duration::from_millis(20));
        let dump = fibra_runtime::debug::dump();
        assert!(dump.contains("'napper'"), "{dump}");
        assert!(dump.contains("parked on sleep"), "{dump}");
        assert!(dump.contains("deadlock_report.rs:"), "{dump}");
        sleeper.join().unwrap();
    });
}

// A real cycle: two tasks each waiting on the other's channel.

/// The report of `run` for the two-task channel cycle, on `workers` workers.
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
        // Channels are numbered in creation order, not named by address.
        let id: String = msg
            .split("(chan #")
            .nth(1)
            .expect("a channel id")
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        assert!(id.len() < 8, "chan #{id} in {msg}");
        assert!(msg.contains("join of task #"), "{msg}");
        assert!(
            msg.contains("deadlock_report.rs:"),
            "call sites missing: {msg}"
        );
    }
}

#[test]
fn a_sender_on_a_plain_thread_blocked_in_fibra_is_not_a_deadlock() {
    // Between its two fibra calls the plain thread is in no fibra call, and
    // a detector cannot know it will make another: the grace is long
    // enough that a loaded machine does not deschedule it for that long.
    let rt = Runtime::builder()
        .workers(1)
        .deadlock_grace(Some(Duration::from_millis(200)))
        .build()
        .unwrap();
    let (tx, rx) = channel::<u32>(0);
    let (go_tx, go_rx) = channel::<()>(0);
    // The plain thread is blocked in a fibra call (a recv) for several
    // grace periods, then sends.
    let t = std::thread::spawn(move || {
        go_rx.recv_timeout(Duration::from_millis(1000)).ok();
        tx.send(5).unwrap();
    });
    let v = rt.run(move || {
        let _keep = go_tx;
        rx.recv().unwrap()
    });
    assert_eq!(v, 5);
    t.join().unwrap();
}

/// The deadlock panic points at the user's call of `run`, not into fibra.
#[test]
fn the_deadlock_panic_names_the_call_of_run() {
    static WHERE: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info
            .payload_as_str()
            .is_some_and(|m| m.starts_with("all green threads are asleep"))
        {
            *WHERE.lock().unwrap() = info.location().map(|l| l.file().to_string());
        }
        previous(info);
    }));
    let _ = report(1);
    let file = WHERE.lock().unwrap().clone();
    assert_eq!(file.as_deref(), Some(file!()));
}

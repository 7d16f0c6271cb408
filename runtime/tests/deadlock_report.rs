//! When every green thread is parked on a fibra primitive and nothing else
//! can wake one, `run` panics with Go's message and a task dump naming the
//! tasks and their call sites.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fibra_runtime::{spawn, JoinHandle, Runtime};

// The report for a real cycle (two tasks each waiting on the other's
// channel) is tested in chan_deadlock_report.rs.

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

//! A task spinning in a loop that never calls the runtime does not hold up
//! a stop-the-world: a preemption signal stops it where it is. A task that
//! refuses preemption for a while is named by the watchdog.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use fibra_runtime::gc_seam as safepoint;
use fibra_runtime::Runtime;

mod stops;
use stops::{counting_task, Loop, StopOnDrop};

/// Stops the world from a plain thread and reports `count` at the start
/// and the end of the stop, and the time to stop. Exits the process if the
/// stop never completes.
fn stop_and_watch(count: &Arc<AtomicU64>) -> (u64, u64, Duration) {
    let count = count.clone();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        // SAFETY: this thread only sleeps and reads an atomic while stopped.
        let world = unsafe { safepoint::stop_the_world() };
        let before = count.load(Relaxed);
        std::thread::sleep(Duration::from_millis(20));
        let after = count.load(Relaxed);
        let stopping = world.stopping_time();
        drop(world);
        let _ = tx.send((before, after, stopping));
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(seen) => seen,
        Err(_) => {
            // The world stays stopped: nothing could shut the runtime down.
            eprintln!("the world never stopped: the spinning task was not preempted");
            std::process::exit(101);
        }
    }
}

#[test]
fn a_spinning_task_is_stopped_where_it_is() {
    let _serial = stops::serial();
    let rt = Runtime::builder().workers(2).build().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let _stop = StopOnDrop(stop.clone());
    let (count, handle) = counting_task(&rt, "spinner", Loop::Spin, &stop);
    let (_, stopped_before) = fibra_runtime::debug::preemptions();
    for _ in 0..20 {
        let (before, after, _stopping) = stop_and_watch(&count);
        assert_eq!(
            before, after,
            "the spinning task ran while the world was stopped"
        );
        // And it runs again once the world restarts.
        let resumed = count.load(Relaxed);
        while count.load(Relaxed) == resumed {
            std::thread::yield_now();
        }
    }
    let (sent, stopped) = fibra_runtime::debug::preemptions();
    assert!(stopped > stopped_before, "no task was stopped by a signal");
    assert!(stopped <= sent);
    stop.store(true, Relaxed);
    handle.join().unwrap();
}

/// Whether the test's preemption check refuses.
static REFUSE: AtomicBool = AtomicBool::new(false);

fn refuse_while_asked() -> bool {
    !REFUSE.load(Relaxed)
}

/// Collects what the tracing subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Everything logged by any thread of this test binary (the monitor's
/// report comes from its own thread).
fn captured() -> &'static Captured {
    static CAPTURED: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    CAPTURED.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::WARN)
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        captured
    })
}

#[test]
fn the_watchdog_names_a_task_that_keeps_the_world_waiting() {
    let captured = captured();
    let _serial = stops::serial();
    let rt = Runtime::builder().workers(2).build().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let _stop = StopOnDrop(stop.clone());
    REFUSE.store(true, Relaxed);
    // SAFETY: `refuse_while_asked` reads one atomic.
    unsafe { safepoint::set_preemption_check(refuse_while_asked) };
    // The task also blocks the signal while it refuses: a worker the OS
    // keeps off the CPUs with the signal pending and unblocked is not
    // waited for, and on a busy machine the stubborn task could be that.
    let (_count, handle) = counting_task(
        &rt,
        "stubborn",
        Loop::SpinBlockingSignalsWhile(&REFUSE),
        &stop,
    );
    // Refuse for long enough that the monitor reports the stop while it
    // still waits; the stopper reports it again after the restart.
    let release = std::thread::spawn(|| {
        std::thread::sleep(Duration::from_millis(400));
        REFUSE.store(false, Relaxed);
    });
    // SAFETY: nothing is done while the world is stopped.
    let world = unsafe { safepoint::stop_the_world() };
    let stopping = world.stopping_time();
    drop(world);
    release.join().unwrap();
    assert!(
        stopping >= Duration::from_millis(100),
        "the check did not hold the stop up"
    );
    stop.store(true, Relaxed);
    handle.join().unwrap();
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let named = |what: &str| {
        log.lines()
            .any(|l| l.contains(what) && l.contains("stubborn"))
    };
    assert!(
        named("is still waiting"),
        "no report naming the task while the stop waited: {log:?}"
    );
    assert!(
        named("kept a stop-the-world waiting"),
        "no report naming the task after the restart: {log:?}"
    );
}

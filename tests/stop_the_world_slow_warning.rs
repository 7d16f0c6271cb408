//! A worker that keeps a stop-the-world waiting is named in a warning
//! instead of leaving a silent hang.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Collects everything the fmt subscriber writes.
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

#[test]
fn a_worker_that_never_reaches_a_safepoint_is_reported() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .init();

    let rt = fibra::Runtime::builder().workers(1).build().unwrap();
    let spinning = Arc::new(AtomicBool::new(false));
    let task = rt.spawn({
        let spinning = spinning.clone();
        move || {
            spinning.store(true, Ordering::SeqCst);
            // No yield, no allocation on the GC heap: no safepoint.
            let start = Instant::now();
            while start.elapsed() < Duration::from_millis(1500) {
                std::hint::spin_loop();
            }
        }
    });
    while !spinning.load(Ordering::SeqCst) {
        std::thread::yield_now();
    }
    let world = fibra::safepoint::stop_the_world();
    let waited = world.stopping_time();
    drop(world);
    task.join().unwrap();
    assert!(waited >= Duration::from_secs(1), "{waited:?}");
    let log = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    let line = log
        .lines()
        .find(|l| l.contains("stopping the world has waited over 1 s"))
        .unwrap_or_else(|| panic!("no slow-stop warning in:\n{log}"));
    assert!(line.contains("worker=fibra-worker-0"), "{line}");
}

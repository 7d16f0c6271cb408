//! A stop-the-world that a worker keeps waiting is explained after the
//! restart: which worker and task, for how long, and in what state (here:
//! asleep in a system call, and running user code with the preemption
//! signal blocked). Each case runs in a child process whose `tracing`
//! output goes to stderr.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::child;

fn log_to_stderr() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter("fibra_runtime::safepoint=debug")
        .init();
}

/// Blocks SIGURG (the preemption signal) on the calling thread.
fn block_preemption() {
    // SAFETY: pthread_sigmask with a signal set we own.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGURG);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

fn unblock_preemption() {
    // SAFETY: as above.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGURG);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
    }
}

/// Runs `hold` in a green thread on one worker while the main green thread
/// (on the other) collects once `hold` has begun.
fn collect_beside(hold: fn()) {
    fibra::run(|| {
        let _keep = fibra::gc::Gc::new(1u64);
        let began = Arc::new(AtomicBool::new(false));
        let b = began.clone();
        let holder = fibra::spawn(move || {
            block_preemption();
            b.store(true, Ordering::SeqCst);
            hold();
            unblock_preemption();
        });
        // Block this worker (not yield) until the holder has started, so
        // that the other worker takes it.
        while !began.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(5));
        fibra::gc::collect();
        holder.join().unwrap();
    });
}

fn slow_stop_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.contains("fibra_runtime::safepoint") && l.contains("held_us"))
        .collect()
}

#[test]
fn a_worker_asleep_in_a_system_call_is_named_as_such() {
    const NAME: &str = "a_worker_asleep_in_a_system_call_is_named_as_such";
    if child::is_child(NAME) {
        log_to_stderr();
        collect_beside(|| {
            let ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: 100_000_000,
            };
            // SAFETY: a plain sleep with a timespec we own (SIGURG is
            // blocked, so nothing interrupts it).
            unsafe { libc::nanosleep(&ts, std::ptr::null_mut()) };
        });
        return;
    }
    let out = child::run_ok(NAME, &[("FIBRA_WORKERS", "2")], Duration::from_secs(120));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines = slow_stop_lines(&stderr);
    let line = lines
        .iter()
        .find(|l| l.contains("in a system call"))
        .unwrap_or_else(|| panic!("no slow stop named the sleeping worker:\n{stderr}"));
    let nanosleep = format!("syscall={}", libc::SYS_nanosleep);
    let clock_nanosleep = format!("syscall={}", libc::SYS_clock_nanosleep);
    assert!(
        line.contains(&nanosleep) || line.contains(&clock_nanosleep),
        "{line}"
    );
    // Past the watchdog (1 ms) it is a warning.
    assert!(line.contains("WARN"), "{line}");
}

#[test]
fn a_worker_running_user_code_is_named_as_such() {
    const NAME: &str = "a_worker_running_user_code_is_named_as_such";
    if child::is_child(NAME) {
        log_to_stderr();
        collect_beside(|| {
            let end = std::time::Instant::now() + Duration::from_millis(60);
            let mut n = 0u64;
            while std::time::Instant::now() < end {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        });
        return;
    }
    let out = child::run_ok(NAME, &[("FIBRA_WORKERS", "2")], Duration::from_secs(120));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines = slow_stop_lines(&stderr);
    // On a busy machine the spinner (or the stopper) may also wait for a
    // CPU for much of the stop; the spinner is never asleep in the kernel.
    assert!(
        lines.iter().any(|l| l.contains("running user code")
            || l.contains("descheduled by the OS")
            || l.contains("the stopper was late")),
        "no slow stop named the spinning worker:\n{stderr}"
    );
    assert!(
        !lines.iter().any(|l| l.contains("in a system call")),
        "{stderr}"
    );
}

//! Overflowing a green thread's stack (or a `maybe_grow` segment) prints
//! which task overflowed and aborts; other faults are left to the previous
//! handler. Each case runs in a child process (this test binary re-executed
//! with `FIBRA_OVERFLOW_CHILD` set) whose stderr and exit status we read.

use std::hint::black_box;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output};

const CHILD_ENV: &str = "FIBRA_OVERFLOW_CHILD";

/// Recursion with a real frame on every level and no tail call.
#[inline(never)]
fn recurse(n: u64) -> u64 {
    let buf = black_box([n as u8; 512]);
    if n == u64::MAX {
        return 0;
    }
    recurse(n + 1) + buf[(n % 512) as usize] as u64
}

/// The child side: does what `FIBRA_OVERFLOW_CHILD` says. A no-op in a
/// normal test run.
#[test]
fn child_entry() {
    let Ok(case) = std::env::var(CHILD_ENV) else {
        return;
    };
    let rt = fibra_runtime::Runtime::builder()
        .workers(1)
        .build()
        .unwrap();
    rt.run(|| match case.as_str() {
        "green" => {
            let h = fibra_runtime::task::Builder::new()
                .name("deep-recursion")
                .stack_size(64 * 1024)
                .spawn(|| recurse(0))
                .unwrap();
            let _ = h.join();
        }
        "segment" => {
            let h = fibra_runtime::task::Builder::new()
                .name("segment-overflow")
                .spawn(|| fibra_runtime::stack::maybe_grow(usize::MAX, 128 * 1024, || recurse(0)))
                .unwrap();
            let _ = h.join();
        }
        "neighbours" => {
            // Green threads parked on both sides: the overflowing task's
            // stack sits inside a chunk, between other tasks' stacks.
            let (tx, rx) = fibra_runtime::chan::channel::<()>(0);
            let parked: Vec<_> = (0..20)
                .map(|_| {
                    let rx = rx.clone();
                    fibra_runtime::spawn(move || {
                        let _ = rx.recv();
                    })
                })
                .collect();
            fibra_runtime::yield_now();
            let h = fibra_runtime::task::Builder::new()
                .name("middle-of-a-chunk")
                .spawn(|| recurse(0))
                .unwrap();
            let more: Vec<_> = (0..20)
                .map(|_| {
                    let rx = rx.clone();
                    fibra_runtime::spawn(move || {
                        let _ = rx.recv();
                    })
                })
                .collect();
            let _ = h.join();
            drop((tx, parked, more));
        }
        "wild" => {
            let h = fibra_runtime::task::Builder::new()
                .name("wild-pointer")
                .spawn(|| {
                    // SAFETY: deliberately not safe: a fault that is not a
                    // stack overflow, to check the handler chains.
                    unsafe { std::ptr::read_volatile(16 as *const u64) }
                })
                .unwrap();
            let _ = h.join();
        }
        other => panic!("unknown case {other}"),
    });
    unreachable!("the child should have died");
}

fn run_child(case: &str) -> Output {
    run_child_with(case, "auto")
}

/// `guard` selects the guard mode (`FIBRA_STACK_GUARD`).
fn run_child_with(case: &str, guard: &str) -> Output {
    Command::new(std::env::current_exe().unwrap())
        .args(["child_entry", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, case)
        .env("FIBRA_STACK_GUARD", guard)
        .output()
        .unwrap()
}

#[test]
fn overflow_of_a_green_thread_names_it_and_aborts() {
    let out = run_child("green");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.signal(), Some(libc::SIGABRT), "stderr: {stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("fibra: green thread #"))
        .unwrap_or_else(|| panic!("no report in: {stderr}"));
    assert!(line.contains("'deep-recursion'"), "{line}");
    assert!(line.contains("stack overflow"), "{line}");
    assert!(line.contains("64 KiB stack"), "{line}");
}

#[test]
fn overflow_is_reported_with_guard_pages_too() {
    let out = run_child_with("green", "pages");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.signal(), Some(libc::SIGABRT), "stderr: {stderr}");
    assert!(
        stderr.contains("fibra: green thread #")
            && stderr.contains("'deep-recursion' has overflowed its 64 KiB stack (stack overflow)"),
        "{stderr}"
    );
}

#[test]
fn overflow_of_a_segment_names_the_task() {
    let out = run_child("segment");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.signal(), Some(libc::SIGABRT), "stderr: {stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("fibra: green thread #"))
        .unwrap_or_else(|| panic!("no report in: {stderr}"));
    assert!(line.contains("'segment-overflow'"), "{line}");
    assert!(
        line.contains("128 KiB maybe_grow segment (stack overflow)"),
        "{line}"
    );
}

#[test]
fn other_faults_go_to_the_previous_handler() {
    let out = run_child("wild");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.signal(), Some(libc::SIGSEGV), "stderr: {stderr}");
    assert!(!stderr.contains("stack overflow"), "{stderr}");
    assert!(!stderr.contains("overflowed"), "{stderr}");
}

#[test]
fn overflow_between_neighbours_in_a_chunk_names_the_task() {
    for guard in ["auto", "pages"] {
        let out = run_child_with("neighbours", guard);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGABRT),
            "guard {guard}, stderr: {stderr}"
        );
        assert!(
            stderr
                .contains("'middle-of-a-chunk' has overflowed its 256 KiB stack (stack overflow)"),
            "guard {guard}: {stderr}"
        );
    }
}

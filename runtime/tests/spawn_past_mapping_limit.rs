//! Spawning more green threads than the mapping limit allows fails with the
//! documented error (naming `vm.max_map_count` and the `sysctl` fix), and
//! the runtime keeps working. Runs in a child process with guard pages
//! forced and `FIBRA_MAX_MAP_COUNT` standing in for a low kernel limit.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const CHILD_ENV: &str = "FIBRA_MAPPING_LIMIT_CHILD";
/// 2048 mappings are left for the rest of the process; 2 per stack.
const LIMIT: usize = 2048 + 2 * 300;

#[test]
fn child_entry() {
    if std::env::var(CHILD_ENV).is_err() {
        return;
    }
    let rt = fibra_runtime::Runtime::builder()
        .workers(1)
        .build()
        .unwrap();
    let release = Arc::new(AtomicBool::new(false));
    let (started, err) = rt.run(|| {
        let mut handles = Vec::new();
        let err = loop {
            let release = release.clone();
            match fibra_runtime::task::Builder::new().spawn(move || {
                while !release.load(Ordering::SeqCst) {
                    fibra_runtime::yield_now();
                }
            }) {
                Ok(h) => handles.push(h),
                Err(err) => break err,
            }
            assert!(handles.len() <= 300, "the limit was not enforced");
            // Let it start, so that it holds a stack.
            fibra_runtime::yield_now();
        };
        let started = handles.len();
        release.store(true, Ordering::SeqCst);
        for h in handles {
            h.join().unwrap();
        }
        // Stacks are back in the pool: spawning works again.
        assert_eq!(fibra_runtime::spawn(|| 5).join().unwrap(), 5);
        (started, err)
    });
    println!("started={started}");
    println!("kind={:?}", err.kind());
    println!("message={err}");
}

#[test]
fn spawning_past_the_mapping_limit_returns_the_documented_error() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["child_entry", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .env("FIBRA_STACK_GUARD", "pages")
        .env("FIBRA_MAX_MAP_COUNT", LIMIT.to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed: {stdout}\n{stderr}");
    let field = |name: &str| {
        stdout
            .lines()
            .find_map(|l| l.split_once(name).map(|(_, v)| v))
            .unwrap_or_else(|| panic!("no {name} in {stdout}"))
            .to_string()
    };
    let started: usize = field("started=").parse().unwrap();
    // The main green thread holds one stack too.
    assert!(
        (290..300).contains(&started),
        "{started} green threads before the error"
    );
    assert_eq!(field("kind="), "OutOfMemory");
    let message = field("message=");
    assert!(message.contains("vm.max_map_count"), "{message}");
    assert!(message.contains(&format!("= {LIMIT}")), "{message}");
    assert!(
        message.contains("sudo sysctl -w vm.max_map_count="),
        "{message}"
    );
}

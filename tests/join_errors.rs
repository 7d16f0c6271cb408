//! `JoinError` as a user meets it: `Send + Sync` (so `?` into
//! `Box<dyn Error + Send + Sync>` works), messages that name the task, and a
//! green thread that could not get its stack when first run reported as
//! such, on stderr too, instead of as a panic.

mod common;

use std::time::Duration;

use common::child;

#[test]
fn join_error_is_send_and_sync_and_names_the_task() {
    fn assert_send_sync<T: Send + Sync + std::error::Error + 'static>() {}
    assert_send_sync::<fibra::JoinError>();
    // Two words, so that a task's output slot stays inside the task's own
    // allocation: a bigger error made every spawn allocate twice.
    assert_eq!(std::mem::size_of::<fibra::JoinError>(), 16);
    fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        fibra::run(|| {
            fibra::task::Builder::new()
                .name("parser")
                .spawn(|| panic!("bad input"))
                .unwrap()
                .join()
        })?;
        Ok(())
    }
    let err = run().unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("'parser' panicked: bad input"), "{msg}");
    let unnamed = fibra::run(|| fibra::spawn(|| panic!("plain")).join().unwrap_err());
    assert_eq!(
        unnamed.to_string(),
        format!("task {} panicked: plain", unnamed.id())
    );
}

/// Tasks spawned before the mapping limit is reached, which fail when a
/// worker first runs them.
#[test]
fn a_green_thread_without_a_stack_is_reported_as_such() {
    const NAME: &str = "a_green_thread_without_a_stack_is_reported_as_such";
    if child::is_child(NAME) {
        let rt = fibra::Runtime::builder().workers(1).build().unwrap();
        let (no_stack, ok) = rt.run(|| {
            let (tx, rx) = fibra::chan::channel::<()>(0);
            // All spawned before any runs (the main green thread does not
            // yield), then each parks holding its stack.
            let handles: Vec<_> = (0..600)
                .map(|i| {
                    let rx = rx.clone();
                    fibra::task::Builder::new()
                        .name(format!("parked-{i}"))
                        .spawn(move || {
                            let _ = rx.recv();
                        })
                        .expect("spawning is refused only at the limit")
                })
                .collect();
            fibra::time::sleep(Duration::from_millis(200));
            drop(tx);
            let mut no_stack = 0;
            let mut ok = 0;
            for h in handles {
                match h.join() {
                    Ok(()) => ok += 1,
                    Err(e) => {
                        assert!(e.is_no_stack() && !e.is_panic(), "{e}");
                        assert!(e.to_string().contains("could not start"), "{e}");
                        assert!(e.to_string().contains("'parked-"), "{e}");
                        no_stack += 1;
                    }
                }
            }
            (no_stack, ok)
        });
        println!("no_stack={no_stack} ok={ok}");
        assert!(no_stack > 0 && ok > 0, "no_stack={no_stack} ok={ok}");
        return;
    }
    let out = child::run_ok(
        NAME,
        &[
            ("FIBRA_STACK_GUARD", "pages"),
            ("FIBRA_MAX_MAP_COUNT", &(2048 + 2 * 300).to_string()),
        ],
        Duration::from_secs(60),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.matches("fibra: cannot start green thread").count(),
        1,
        "reported once on stderr: {stderr}"
    );
}

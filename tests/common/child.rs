//! Running one test's body in a child process, for programs that may crash,
//! hang or abort when the code under test is wrong: the parent sees a
//! failed exit or a timeout instead of dying with the child.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The environment variable naming the test a child process should run.
const CASE: &str = "FIBRA_TEST_CHILD_CASE";

/// Whether this process is the child running `name`.
pub fn is_child(name: &str) -> bool {
    std::env::var(CASE).is_ok_and(|c| c == name)
}

/// Runs the test `name` (a top-level `#[test]` fn of the calling test
/// binary) in a child process with `envs` set, killing it after `timeout`.
/// The test must call [`is_child`] and run its body only there.
pub fn run(name: &str, envs: &[(&str, &str)], timeout: Duration) -> Output {
    run_with_stderr(name, envs, timeout, Stdio::piped())
}

/// [`run`], with the child's stderr connected to `stderr` (its output is
/// then empty unless `stderr` is `Stdio::piped()`).
pub fn run_with_stderr(
    name: &str,
    envs: &[(&str, &str)],
    timeout: Duration,
    stderr: Stdio,
) -> Output {
    let mut cmd = Command::new(std::env::current_exe().expect("current_exe"));
    cmd.args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CASE, name)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn the test binary");
    drop(cmd);
    // Drain the pipes on threads, so a chatty child cannot block on them.
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut v);
            }
            v
        })
    };
    let out = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let err = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = String::from_utf8_lossy(&err.join().unwrap()).into_owned();
            panic!("{name}: the child did not finish within {timeout:?} (a hang)\n--- stderr ---\n{stderr}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// [`run`], asserting that the child passed.
pub fn run_ok(name: &str, envs: &[(&str, &str)], timeout: Duration) -> Output {
    let output = run(name, envs, timeout);
    assert!(
        output.status.success(),
        "{name}: the child failed ({})\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

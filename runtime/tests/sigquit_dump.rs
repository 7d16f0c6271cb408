//! SIGQUIT writes a task dump to stderr and the program keeps running.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::Duration;

const CHILD_ENV: &str = "FIBRA_SIGQUIT_CHILD";

fn child() {
    fibra_runtime::run(|| {
        let napper = fibra_runtime::task::Builder::new()
            .name("napper")
            .spawn(|| fibra_runtime::time::sleep(Duration::from_millis(1500)))
            .unwrap();
        println!("ready");
        napper.join().unwrap();
        println!("still running after the dump");
    });
}

#[test]
fn sigquit_dumps_tasks_and_the_program_continues() {
    if std::env::var_os(CHILD_ENV).is_some() {
        child();
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let mut proc = Command::new(exe)
        .args([
            "--exact",
            "sigquit_dumps_tasks_and_the_program_continues",
            "--nocapture",
        ])
        .env(CHILD_ENV, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(proc.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "child exited early"
        );
        if line.trim() == "ready" {
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(100));
    // SAFETY: kill(2) with a child pid we own.
    assert_eq!(unsafe { libc::kill(proc.id() as i32, libc::SIGQUIT) }, 0);
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let mut stderr = String::new();
    proc.stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = proc.wait().unwrap();
    assert!(status.success(), "child failed: {status:?}\n{stderr}");
    assert!(rest.contains("still running after the dump"), "{rest}");
    assert!(stderr.contains("SIGQUIT: fibra task dump"), "{stderr}");
    assert!(
        stderr.contains("'napper'") && stderr.contains("parked on sleep"),
        "{stderr}"
    );
}

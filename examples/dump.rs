//! Go's deadlock report and task dump, on purpose.
//!
//! The program starts itself again as a child process in which two green
//! threads wait on each other's channel; the child's `fibra::run` notices
//! that nothing can ever wake them and panics with "all green threads are
//! asleep - deadlock!" and a dump of every task, which the parent prints.
//!
//! Try it: `cargo run --example dump`
//! (Ctrl-\ in a running fibra program prints the same dump without stopping it.)

use std::process::Command;
use std::time::Duration;

fn deadlock() {
    let rt = fibra::Runtime::builder()
        .deadlock_grace(Some(Duration::from_millis(500)))
        .build()
        .expect("runtime");
    rt.run(|| {
        let (to_philosopher, from_waiter) = fibra::chan::channel::<&str>(0);
        let (to_waiter, from_philosopher) = fibra::chan::channel::<&str>(0);
        let philosopher = fibra::task::Builder::new()
            .name("philosopher")
            .spawn(move || {
                let fork = from_waiter.recv().unwrap(); // waits for the waiter...
                to_waiter.send(fork).unwrap();
            })
            .unwrap();
        let _waiter = fibra::task::Builder::new()
            .name("waiter")
            .spawn(move || {
                let fork = from_philosopher.recv().unwrap(); // ...who waits for the philosopher
                to_philosopher.send(fork).unwrap();
            })
            .unwrap();
        philosopher.join().unwrap();
    });
}

fn main() {
    if std::env::var_os("FIBRA_DUMP_CHILD").is_some() {
        deadlock();
        return;
    }
    let out = Command::new(std::env::current_exe().expect("own path"))
        .env("FIBRA_DUMP_CHILD", "1")
        .output()
        .expect("start the child");
    println!("the child exited with {}; its stderr:\n", out.status);
    println!("{}", String::from_utf8_lossy(&out.stderr));
}

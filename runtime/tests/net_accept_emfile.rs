//! Accepting when the process has run out of file descriptors: the
//! listener backs off and retries (one warning per burst) instead of
//! failing or spinning, and accepts the waiting connections once
//! descriptors are free again.
//!
//! A binary of its own: it lowers the process's RLIMIT_NOFILE.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fibra_runtime::net::{TcpListener, TcpStream};
use fibra_runtime::Runtime;

fn nofile() -> libc::rlimit {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid out-pointer.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    lim
}

fn set_nofile(cur: libc::rlim_t, max: libc::rlim_t) {
    let lim = libc::rlimit {
        rlim_cur: cur,
        rlim_max: max,
    };
    // SAFETY: `lim` is a valid rlimit.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
}

/// The highest open descriptor, by probing with `dup`.
fn next_fd() -> libc::rlim_t {
    // SAFETY: dup of stdin-or-any fd 0..; closed right away.
    let fd = unsafe { libc::dup(2) };
    assert!(fd >= 0);
    // SAFETY: we own `fd`.
    unsafe { libc::close(fd) };
    fd as libc::rlim_t
}

#[test]
fn accept_backs_off_on_emfile_and_recovers() {
    const CLIENTS: usize = 12;
    const ROOM: usize = 4;
    support::install();
    let rt = Runtime::builder().workers(2).build().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // Connections wait in the kernel's backlog until accepted.
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| std::net::TcpStream::connect(addr).unwrap())
        .collect();
    let original = nofile();
    // Room for ROOM more descriptors from here on (`dup` returns the
    // lowest free one).
    set_nofile(next_fd() + ROOM as libc::rlim_t, original.rlim_max);
    let accepted: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
    let acc = accepted.clone();
    let server = rt.spawn(move || {
        for _ in 0..CLIENTS {
            let (s, _) = listener.accept().expect("accept must not fail on EMFILE");
            acc.lock().unwrap().push(s);
        }
    });
    let mut total = 0;
    let mut rounds = 0;
    while total < CLIENTS {
        std::thread::sleep(Duration::from_millis(100));
        let mut held = accepted.lock().unwrap();
        let now = held.len();
        assert!(now <= ROOM, "accepted past the descriptor limit");
        assert!(
            !server.is_finished() || now + total >= CLIENTS,
            "the accept loop died"
        );
        total += now;
        // Free the descriptors: the backed-off accept picks up the rest.
        held.clear();
        rounds += 1;
        assert!(
            rounds < 100,
            "accepting made no progress ({total} of {CLIENTS})"
        );
    }
    set_nofile(original.rlim_cur, original.rlim_max);
    server.join().unwrap();
    drop(clients);
    let warnings = support::events_containing("accept failed");
    assert!(!warnings.is_empty(), "no warning was logged");
    assert!(
        warnings.len() <= rounds + 1,
        "warned {} times in {rounds} bursts: {warnings:?}",
        warnings.len()
    );
}

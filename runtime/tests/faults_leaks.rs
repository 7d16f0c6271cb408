//! Regression tests for leaks found under Valgrind (`scripts/memcheck.sh`).
//! Alone in its binary: it counts the process's open file descriptors.

use fibra_runtime::net::{TcpListener, TcpStream};
use fibra_runtime::Runtime;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Resolving an address (`bind`, `connect`) runs on the blocking pool
/// through a scoped job; each such call used to leak its task, which keeps
/// the runtime's shared state - and its epoll and eventfd descriptors -
/// alive after the runtime is dropped.
#[test]
fn runtimes_that_resolved_addresses_release_their_descriptors() {
    let cycle = || {
        let rt = Runtime::builder().workers(1).build().unwrap();
        rt.run(|| {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let _client = TcpStream::connect(addr).unwrap();
            let _server = listener.accept().unwrap();
        });
    };
    // Warm up (lazily created process-wide state).
    cycle();
    let before = open_fds();
    for _ in 0..20 {
        cycle();
    }
    let after = open_fds();
    assert!(
        after <= before + 2,
        "open descriptors grew from {before} to {after} over 20 runtimes"
    );
}

//! Cleanups: functions that run after an object has become unreachable
//! (Go's `runtime.AddCleanup`), the resurrection-free alternative to
//! finalizers.
//!
//! # Protocol
//!
//! `Gc::add_cleanup` stores the function in `REGISTERED` under the object's
//! address and sets the header's `CLEANUP` bit and its span's
//! `has_cleanups` flag. A sweep that frees an object with the bit moves its
//! functions to `READY` (before the slot can be reused, since the sweeper
//! holds the span's claim). The cleanup thread runs `READY` functions, so
//! user code never runs inside an allocation. The function cannot reach the
//! object (it owns no handle to it, or the object would stay rooted and
//! never die), so nothing is resurrected.

use std::collections::HashMap;
use std::sync::OnceLock;

use parking_lot::{Condvar, Mutex};

type Cleanup = Box<dyn FnOnce() + Send + 'static>;

/// Functions by object address.
static REGISTERED: Mutex<Option<HashMap<usize, Vec<Cleanup>>>> = Mutex::new(None);
/// Functions whose objects died, waiting for the cleanup thread.
static READY: Mutex<Vec<Cleanup>> = Mutex::new(Vec::new());
static READY_CV: Condvar = Condvar::new();
static THREAD: OnceLock<()> = OnceLock::new();

/// Registers `f` for the object at `addr`.
pub(crate) fn register(addr: usize, f: Cleanup) {
    REGISTERED
        .lock()
        .get_or_insert_with(HashMap::new)
        .entry(addr)
        .or_default()
        .push(f);
}

/// Called by a sweep for a dead object whose header has `CLEANUP`.
pub(crate) fn object_died(addr: usize) {
    let fs = REGISTERED.lock().as_mut().and_then(|m| m.remove(&addr));
    if let Some(fs) = fs {
        THREAD.get_or_init(|| {
            std::thread::Builder::new()
                .name("fibra-gc-cleanup".into())
                .spawn(run_cleanups)
                .expect("fibra_gc: cannot start the cleanup thread");
        });
        READY.lock().extend(fs);
        READY_CV.notify_one();
    }
}

fn run_cleanups() {
    loop {
        let batch = {
            let mut ready = READY.lock();
            while ready.is_empty() {
                READY_CV.wait(&mut ready);
            }
            std::mem::take(&mut *ready)
        };
        for f in batch {
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_err() {
                tracing::error!(target: "fibra_gc", "a cleanup function panicked");
            }
        }
    }
}

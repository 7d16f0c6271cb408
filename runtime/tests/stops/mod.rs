//! What the stop-the-world tests share: one stop at a time, a flag that
//! ends their busy tasks even when an assertion fails, and busy tasks that
//! count as they run.

#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};

use fibra_runtime::{task, Runtime};

/// Stops are process-wide: the tests of one file take turns.
static SERIAL: Mutex<()> = Mutex::new(());

/// Takes this test's turn.
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Sets the flag on drop, so that a failed assertion does not leave a
/// busy task behind for the runtime's shutdown to wait on.
pub struct StopOnDrop(pub Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Relaxed);
    }
}

/// How a counting task loops.
#[derive(Clone, Copy)]
pub enum Loop {
    /// Never calls the runtime.
    Spin,
    /// Calls `yield_now` between counts (a safepoint at every switch).
    Yield,
    /// Never calls the runtime, with `SIGURG` (the preemption signal)
    /// blocked while the flag is set.
    SpinBlockingSignalsWhile(&'static AtomicBool),
}

/// Blocks or unblocks `SIGURG` on the calling thread.
fn mask_sigurg(how: libc::c_int) {
    // SAFETY: a sigset we own, then a mask change of this thread only.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGURG);
        libc::pthread_sigmask(how, &set, std::ptr::null_mut());
    }
}

/// Spawns a task named `name` that counts, looping as `how` says, until
/// `stop` is set; waits until it runs.
pub fn counting_task(
    rt: &Runtime,
    name: &str,
    how: Loop,
    stop: &Arc<AtomicBool>,
) -> (Arc<AtomicU64>, task::JoinHandle<()>) {
    let count = Arc::new(AtomicU64::new(0));
    let (c, s) = (count.clone(), stop.clone());
    // Spawned from inside the runtime; the handle is returned, not awaited.
    #[allow(clippy::async_yields_async)]
    let handle = rt.block_on(async {
        task::Builder::new()
            .name(name)
            .spawn(move || {
                if let Loop::SpinBlockingSignalsWhile(_) = how {
                    mask_sigurg(libc::SIG_BLOCK);
                }
                while !s.load(Relaxed) {
                    c.fetch_add(1, Relaxed);
                    match how {
                        Loop::Spin => std::hint::spin_loop(),
                        Loop::Yield => fibra_runtime::yield_now(),
                        Loop::SpinBlockingSignalsWhile(flag) => {
                            if !flag.load(Relaxed) {
                                mask_sigurg(libc::SIG_UNBLOCK);
                            }
                            std::hint::spin_loop();
                        }
                    }
                }
                if let Loop::SpinBlockingSignalsWhile(_) = how {
                    mask_sigurg(libc::SIG_UNBLOCK);
                }
            })
            .unwrap()
    });
    while count.load(Relaxed) == 0 {
        std::thread::yield_now();
    }
    (count, handle)
}

//! The process-wide timer thread, for timers set outside any worker (a
//! `Sleep` polled by another executor or a plain thread).

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

use super::heap::{fire_all, TimerEntry, TimerHeap};

struct Global {
    heap: Mutex<TimerHeap>,
    cvar: Condvar,
}

fn global() -> &'static Global {
    static GLOBAL: OnceLock<&'static Global> = OnceLock::new();
    GLOBAL.get_or_init(|| {
        let g: &'static Global = Box::leak(Box::new(Global {
            heap: Mutex::new(TimerHeap::default()),
            cvar: Condvar::new(),
        }));
        std::thread::Builder::new()
            .name("fibra-timer".into())
            .spawn(move || run(g))
            .expect("fibra: cannot start the timer thread");
        g
    })
}

fn run(g: &'static Global) {
    let mut heap = g.heap.lock();
    loop {
        let due = heap.take_expired(Instant::now());
        if !due.is_empty() {
            drop(heap);
            fire_all(due);
            heap = g.heap.lock();
            continue;
        }
        match heap.next_deadline() {
            Some(deadline) => {
                g.cvar.wait_until(&mut heap, deadline);
            }
            None => g.cvar.wait(&mut heap),
        }
    }
}

/// Arms `entry` on the timer thread.
pub(crate) fn insert(entry: Arc<TimerEntry>) {
    let g = global();
    let mut heap = g.heap.lock();
    let earliest = heap.next_deadline().is_none_or(|d| entry.deadline < d);
    heap.insert(entry);
    drop(heap);
    if earliest {
        g.cvar.notify_one();
    }
}

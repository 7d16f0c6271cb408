//! A started green thread never moves to another worker: code that touches
//! a thread-local before and after parking always sees its own worker's.

use std::cell::Cell;
use std::time::Duration;

use fibra_runtime::{spawn, Runtime};

thread_local! {
    static MARK: Cell<usize> = const { Cell::new(0) };
}

fn marker_addr() -> usize {
    MARK.with(|m| m as *const Cell<usize> as usize)
}

#[test]
fn green_threads_stay_on_their_worker_across_parks() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let moved = rt.run(|| {
        let handles: Vec<_> = (0..2000)
            .map(|i| {
                spawn(move || {
                    let thread = std::thread::current().id();
                    let addr = marker_addr();
                    let mut moves = 0;
                    for round in 0..10 {
                        match (i + round) % 3 {
                            0 => fibra_runtime::yield_now(),
                            1 => fibra_runtime::time::sleep(Duration::from_micros(50)),
                            _ => spawn(|| ()).join().unwrap(),
                        }
                        if std::thread::current().id() != thread || marker_addr() != addr {
                            moves += 1;
                        }
                    }
                    moves
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum::<u32>()
    });
    assert_eq!(moved, 0, "started green threads migrated between workers");
}

#[test]
fn work_spreads_over_both_workers() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let threads = rt.run(|| {
        let handles: Vec<_> = (0..200)
            .map(|_| {
                spawn(|| {
                    // Busy enough that one worker alone would leave the
                    // other's stealing a chance.
                    let start = std::time::Instant::now();
                    while start.elapsed() < Duration::from_micros(500) {}
                    std::thread::current().id()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect::<std::collections::HashSet<_>>()
    });
    assert_eq!(threads.len(), 2, "only one worker ran tasks");
}

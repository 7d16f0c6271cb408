//! Spawning and joining green threads and async tasks, from green threads,
//! OS threads and async code, under one and two workers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use fibra_runtime::{spawn, Runtime};

fn runtimes() -> Vec<Runtime> {
    [1, 2]
        .into_iter()
        .map(|n| Runtime::builder().workers(n).build().unwrap())
        .collect()
}

#[test]
fn many_tasks_joined_from_a_green_thread() {
    for rt in runtimes() {
        let sum = rt.run(|| {
            let handles: Vec<_> = (0..100_000u64).map(|i| spawn(move || i * 2)).collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
        });
        assert_eq!(sum, 100_000 * 99_999);
    }
}

#[test]
fn tasks_joined_from_os_threads() {
    for rt in runtimes() {
        let handles: Vec<_> = (0..1000u64).map(|i| rt.spawn(move || i + 1)).collect();
        let mut chunks: Vec<Vec<_>> = (0..4).map(|_| Vec::new()).collect();
        for (i, h) in handles.into_iter().enumerate() {
            chunks[i % 4].push(h);
        }
        let joiners: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                std::thread::spawn(move || {
                    chunk.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
                })
            })
            .collect();
        let total: u64 = joiners.into_iter().map(|j| j.join().unwrap()).sum();
        assert_eq!(total, (1..=1000).sum::<u64>());
    }
}

fn tree(depth: u32) -> u64 {
    if depth == 0 {
        return 1;
    }
    let left = spawn(move || tree(depth - 1));
    let right = spawn(move || tree(depth - 1));
    left.join().unwrap() + right.join().unwrap()
}

#[test]
fn nested_spawns_form_a_tree() {
    for rt in runtimes() {
        assert_eq!(rt.run(|| tree(12)), 4096);
    }
}

#[test]
fn join_handle_is_a_future() {
    for rt in runtimes() {
        let v = rt.block_on(async {
            let a = spawn(|| 20);
            let b = fibra_runtime::spawn_async(async { 22 });
            a.await.unwrap() + b.await.unwrap()
        });
        assert_eq!(v, 42);
        let v = rt.run(|| {
            let inner = spawn(|| 5);
            fibra_runtime::spawn_async(async move { inner.await.unwrap() * 2 })
                .join()
                .unwrap()
        });
        assert_eq!(v, 10);
    }
}

#[test]
fn every_task_runs_exactly_once() {
    for rt in runtimes() {
        let counts: Arc<Vec<AtomicUsize>> =
            Arc::new((0..20_000).map(|_| AtomicUsize::new(0)).collect());
        let c = counts.clone();
        rt.run(move || {
            let handles: Vec<_> = (0..20_000)
                .map(|i| {
                    let c = c.clone();
                    spawn(move || {
                        fibra_runtime::yield_now();
                        c[i].fetch_add(1, Ordering::Relaxed);
                    })
                })
                .collect();
            for h in handles {
                h.join().unwrap();
            }
        });
        assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 1));
    }
}

#[test]
fn is_finished_turns_true() {
    fibra_runtime::run(|| {
        let h = spawn(|| ());
        while !h.is_finished() {
            fibra_runtime::yield_now();
        }
        h.join().unwrap();
    });
}

#[test]
fn builder_names_and_sizes_tasks() {
    fibra_runtime::run(|| {
        let h = fibra_runtime::task::Builder::new()
            .name("named")
            .stack_size(32 * 1024)
            .spawn(|| {
                // Use some of the stack.
                let buf = [7u8; 8 * 1024];
                buf.iter().map(|&b| b as u32).sum::<u32>()
            })
            .unwrap();
        assert_eq!(h.join().unwrap(), 7 * 8 * 1024);
    });
}

#[test]
fn runs_from_several_os_threads_at_once() {
    let threads: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                (0..5)
                    .map(|_| fibra_runtime::run(move || tree(6) + t))
                    .sum::<u64>()
            })
        })
        .collect();
    let total: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(total, 5 * (4 * 64 + 6));
}

#[test]
fn run_borrows_from_the_caller() {
    let data: Vec<u32> = (1..=10).collect();
    let sum = fibra_runtime::run(|| {
        let d = &data;
        d.iter().sum::<u32>()
    });
    assert_eq!(sum, 55);
}

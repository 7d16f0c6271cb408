//! Memory per parked green thread: parks N green threads (default 100,000)
//! on a channel-like wait (a gate future holding one waker per waiter, as
//! a channel's wait queue does) and reports process RSS growth per task.
//!
//! ```text
//! cargo bench --bench parked_memory                 # 100,000 tasks
//! cargo bench --bench parked_memory -- 1000000      # needs ~5 GiB
//! ```
//!
//! Peers measured on the same kind of machine (2-core EPYC): Go 1.23,
//! 100,000 goroutines blocked on a channel: 2,679 B each; may 0.3.51:
//! 8,490 B each (and may fails past 32,740 coroutines at the default
//! `vm.max_map_count`).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// A future pending until the gate opens; keeps one waker per waiter.
#[derive(Clone, Default)]
struct Gate(Arc<(AtomicBool, Mutex<Vec<Waker>>)>);

impl Gate {
    fn open(&self) {
        self.0 .0.store(true, Ordering::SeqCst);
        let wakers = std::mem::take(&mut *self.0 .1.lock().unwrap());
        for w in wakers {
            w.wake();
        }
    }
}

impl Future for Gate {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 .0.load(Ordering::SeqCst) {
            return Poll::Ready(());
        }
        let mut wakers = self.0 .1.lock().unwrap();
        if self.0 .0.load(Ordering::SeqCst) {
            return Poll::Ready(());
        }
        wakers.push(cx.waker().clone());
        Poll::Pending
    }
}

/// Resident set size of this process, from /proc/self/statm.
fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    // SAFETY: sysconf has no memory-safety preconditions.
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize
}

/// CPU time (user + system) used by the process so far.
fn cpu_time() -> Duration {
    // SAFETY: getrusage fills the zeroed struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn mappings() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .count()
}

fn main() {
    let tasks: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    let workers = std::env::var("FIBRA_WORKERS")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or(2);
    let rt = fibra::Runtime::builder().workers(workers).build().unwrap();
    // Warm up threads, allocator arenas and the stack pools.
    rt.run(|| {
        let hs: Vec<_> = (0..1000).map(|i| fibra::spawn(move || i)).collect();
        hs.into_iter().for_each(|h| drop(h.join()));
    });
    let gate = Gate::default();
    let parked = Arc::new(AtomicUsize::new(0));
    std::thread::sleep(Duration::from_millis(100));
    let rss_before = rss_bytes();
    let stacks_before = fibra::stack::stats();
    let start = Instant::now();
    let cpu_start = cpu_time();
    // Spawned by the main green thread, as a Go program's main goroutine
    // would.
    let handles = rt.run(|| {
        (0..tasks)
            .map(|_| {
                let (gate, parked) = (gate.clone(), parked.clone());
                fibra::spawn(move || {
                    parked.fetch_add(1, Ordering::Relaxed);
                    fibra::block_on(gate);
                })
            })
            .collect::<Vec<_>>()
    });
    while parked.load(Ordering::Relaxed) < tasks {
        std::thread::sleep(Duration::from_millis(5));
    }
    let spawn_time = start.elapsed();
    let spawn_cpu = cpu_time() - cpu_start;
    // Let the workers go idle (trimming pools, probing parked tasks).
    std::thread::sleep(Duration::from_millis(300));
    let rss_after = rss_bytes();
    let stats_start = Instant::now();
    let stacks = fibra::stack::stats();
    let stats_time = stats_start.elapsed();
    let maps = mappings();
    let per_task = (rss_after as f64 - rss_before as f64) / tasks as f64;
    println!("parked green threads:      {tasks} on {workers} workers");
    println!(
        "spawn + start + park:      {:.0} ns per task wall, {:.0} ns CPU (all threads)",
        spawn_time.as_nanos() as f64 / tasks as f64,
        spawn_cpu.as_nanos() as f64 / tasks as f64
    );
    println!(
        "RSS growth per task:       {per_task:.0} B ({:.2} KiB; target <= 4.7 KiB)",
        per_task / 1024.0
    );
    println!(
        "  of which stack pages:    {:.0} B (StackStats::bytes_committed)",
        (stacks.bytes_committed as f64 - stacks_before.bytes_committed as f64) / tasks as f64
    );
    println!("  peers, same machine:     Go 2,679 B, may 8,490 B");
    println!(
        "stacks: in use {}, pooled {}, reserved {} MiB, committed {} MiB; process mappings {maps}",
        stacks.in_use,
        stacks.pooled,
        stacks.bytes_reserved >> 20,
        stacks.bytes_committed >> 20
    );
    println!("stack::stats() took        {stats_time:?} (mincore; sampled beyond 16k stacks)");
    let start = Instant::now();
    let cpu_start = cpu_time();
    gate.open();
    for h in handles {
        h.join().unwrap();
    }
    println!(
        "wake + finish + join:      {:.0} ns per task wall, {:.0} ns CPU",
        start.elapsed().as_nanos() as f64 / tasks as f64,
        (cpu_time() - cpu_start).as_nanos() as f64 / tasks as f64
    );
}

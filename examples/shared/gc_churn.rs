//! GC churn for the example servers, and the pause summary they print on exit.
//!
//! Shared by the http and kv examples (each includes this file with
//! `#[path]`). `FIBRA_GC_CHURN`, read once at start, turns the churn on:
//!
//! * `1`: every request builds a short linked list on fibra's GC heap
//!   ([`LIST_LEN`] nodes of about 96 bytes), walks it, and stores it in a
//!   ring of the most recent [`RING_SLOTS`] lists. The list a store replaces
//!   becomes garbage, so objects die at two ages: the per-request temporaries
//!   at once, ring entries after the ring wraps around. The ring is a bounded
//!   live set (about 3 MiB) that every cycle must mark while the mutators
//!   keep overwriting it.
//! * `N` > 1: N lists per request (the first goes to the ring, the rest are
//!   garbage at once), to make cycles come sooner in short tests.
//! * unset, empty or `0`: no churn; the servers skip it with one branch on
//!   an `Option`.
//!
//! [`pause_summary`] formats the collector's pause figures as the one line
//! `benches/soak.sh` looks for.

use std::sync::atomic::{AtomicU64, Ordering};

use fibra::gc::{Gc, GcCell, Trace};

/// Nodes per list (one list per request, times the churn factor).
pub const LIST_LEN: usize = 8;
/// Lists kept alive in the ring.
pub const RING_SLOTS: usize = 4096;
/// Largest churn factor accepted (more only slows the server to a crawl).
const MAX_FACTOR: usize = 1000;

/// One list node: 8 bytes of header, 88 of fields (a 96-byte size class).
#[derive(Trace)]
struct Node {
    seq: u64,
    payload: [u64; 9],
    next: Option<Gc<Node>>,
}

/// The long-lived part: the most recent lists, in a heap object of their own.
#[derive(Trace)]
struct Ring {
    slots: Vec<GcCell<Option<Gc<Node>>>>,
}

/// Per-request GC garbage plus a bounded ring of recent lists.
pub struct Churn {
    factor: usize,
    ring: Gc<Ring>,
    /// Requests seen; picks the ring slot and seeds the lists.
    requests: AtomicU64,
}

impl Churn {
    /// Reads `FIBRA_GC_CHURN`: `None` when churn is off. A value that is not
    /// a number is reported on stderr and treated as off.
    pub fn from_env() -> Option<Churn> {
        let value = std::env::var("FIBRA_GC_CHURN").ok()?;
        match value.trim() {
            "" | "0" => None,
            v => match v.parse::<usize>() {
                Ok(factor) => Some(Churn::new(factor.min(MAX_FACTOR))),
                Err(_) => {
                    eprintln!("FIBRA_GC_CHURN={value:?} is not a number; GC churn is off");
                    None
                }
            },
        }
    }

    /// Churn with `factor` lists per request (at least one).
    pub fn new(factor: usize) -> Churn {
        Churn {
            factor: factor.max(1),
            ring: Gc::new(Ring {
                slots: (0..RING_SLOTS).map(|_| GcCell::new(None)).collect(),
            }),
            requests: AtomicU64::new(0),
        }
    }

    /// One request's worth of churn. Returns a checksum of what it built
    /// (so that the work cannot be optimised away).
    pub fn request(&self) -> u64 {
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        let mut sum = 0u64;
        for round in 0..self.factor as u64 {
            let list = build(n.wrapping_mul(31).wrapping_add(round));
            sum = sum.wrapping_add(checksum(&list));
            if round == 0 {
                self.ring.slots[n as usize % RING_SLOTS].set(Some(list));
            }
        }
        sum
    }

    /// Lists in the ring and the nodes they hold (the live set).
    #[cfg(test)]
    fn ring_contents(&self) -> (usize, usize) {
        let mut lists = 0;
        let mut nodes = 0;
        for slot in &self.ring.slots {
            if let Some(head) = slot.get() {
                lists += 1;
                let mut at = Some(head);
                while let Some(node) = at {
                    nodes += 1;
                    at = node.next.clone();
                }
            }
        }
        (lists, nodes)
    }
}

/// A fresh list of `LIST_LEN` nodes derived from `seed`.
fn build(seed: u64) -> Gc<Node> {
    let mut head = None;
    for i in 0..LIST_LEN as u64 {
        let seq = seed.wrapping_add(i);
        head = Some(Gc::new(Node {
            seq,
            payload: [seq; 9],
            next: head,
        }));
    }
    head.expect("LIST_LEN > 0")
}

fn checksum(list: &Gc<Node>) -> u64 {
    let mut sum = 0u64;
    let mut at: &Node = list;
    loop {
        sum = sum.wrapping_add(at.seq ^ at.payload[8]);
        match &at.next {
            Some(next) => at = next,
            None => return sum,
        }
    }
}

/// `gc pauses: n=… p50=…us p99=…us max=…us stopping_p99=…us stopping_max=…us
/// cycles=…`: the stop-the-world pauses so far (percentiles are the upper
/// bounds of log-scale buckets, within 19%; `stopping` is the part of a
/// pause spent waiting for the workers to stop).
pub fn pause_summary() -> String {
    let s = fibra::gc::stats();
    let us = |ns: u64| ns as f64 / 1e3;
    format!(
        "gc pauses: n={} p50={:.1}us p99={:.1}us max={:.1}us stopping_p99={:.1}us stopping_max={:.1}us cycles={}",
        s.pauses,
        us(s.pause_histogram.quantile(0.5)),
        us(s.pause_histogram.quantile(0.99)),
        us(s.pause_max_ns),
        us(s.stopping_histogram.quantile(0.99)),
        us(s.stopping_max_ns),
        s.cycles,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_bounds_the_live_set_and_cycles_free_the_rest() {
        let before = fibra::gc::stats();
        let churn = Churn::new(2);
        let requests = RING_SLOTS + 100;
        let mut sum = 0u64;
        for _ in 0..requests {
            sum = sum.wrapping_add(churn.request());
        }
        std::hint::black_box(sum);
        assert_eq!(churn.ring_contents(), (RING_SLOTS, RING_SLOTS * LIST_LEN));
        // A cycle that starts after the requests frees every list but the
        // ring's (two lists per request, one of them stored in the ring).
        fibra::gc::collect();
        let after = fibra::gc::stats();
        assert!(after.cycles > before.cycles);
        let garbage = ((requests * 2 - RING_SLOTS) * LIST_LEN) as u64;
        let freed = after.freed_objects - before.freed_objects;
        assert!(freed >= garbage, "freed {freed} of {garbage} garbage nodes");
        assert_eq!(churn.ring_contents(), (RING_SLOTS, RING_SLOTS * LIST_LEN));
        let line = pause_summary();
        assert!(line.starts_with("gc pauses: n="), "{line}");
        assert!(!line.starts_with("gc pauses: n=0 "), "{line}");
    }
}

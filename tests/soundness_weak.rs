//! `fibra::gc::Weak`: cleared by the sweep that finds its object dead,
//! never keeping it alive, never resurrecting it, and safe to upgrade
//! while the collector marks (the upgraded object survives the cycle).
//!
//! A freed-and-reused object shows up as a wrong value (each node carries
//! its id and the id's complement) or a crash; the stress case runs in a
//! child process with `FIBRA_GC_TORTURE=1` (freed memory poisoned, the
//! heap's invariants checked after every mark) and a thread collecting in
//! a loop. `scripts/memcheck.sh --asan-suite` runs this file under
//! AddressSanitizer.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::child;
use fibra::gc::{collect, Gc, GcCell, Trace, Weak};

/// A node whose fields prove it is still itself.
#[derive(Trace)]
struct Node {
    id: u64,
    check: u64,
    kids: Vec<Gc<Node>>,
    parent: GcCell<Weak<Node>>,
}

impl Node {
    fn new(id: u64, kids: Vec<Gc<Node>>) -> Gc<Node> {
        Gc::new(Node {
            id,
            check: !id,
            kids,
            parent: GcCell::new(Weak::new()),
        })
    }

    /// Checks this node and its subtree; returns the sum of ids.
    #[track_caller]
    fn verify(&self) -> u64 {
        assert!(
            self.check == !self.id,
            "node {:#x} reads check {:#x}: a live object was freed",
            self.id,
            self.check
        );
        self.id + self.kids.iter().map(|k| k.verify()).sum::<u64>()
    }
}

/// A tree of `1 + fan + fan^2` nodes with ids from `base`.
fn tree(base: u64, fan: u64) -> (Gc<Node>, u64) {
    let mut sum = 0;
    let mut id = base;
    let mut next = || {
        id += 1;
        sum += id;
        id
    };
    let kids: Vec<_> = (0..fan)
        .map(|_| {
            let grandkids = (0..fan).map(|_| Node::new(next(), Vec::new())).collect();
            Node::new(next(), grandkids)
        })
        .collect();
    let root = Node::new(next(), kids);
    (root, sum)
}

/// Collects until the heap has dropped what `done` says is gone (a
/// concurrent cycle may have marked it before it became unreachable).
fn collect_until(mut done: impl FnMut() -> bool) {
    for _ in 0..4 {
        collect();
        if done() {
            return;
        }
    }
    panic!("still reachable after four full collections");
}

#[test]
fn upgrade_is_none_after_the_object_is_collected() {
    let (root, sum) = tree(1_000, 3);
    let weak = Gc::downgrade(&root);
    let kid = Gc::downgrade(&root.kids[0]);
    assert_eq!(weak.upgrade().unwrap().verify(), sum);
    collect();
    // Still a root: alive, and so is what it reaches.
    assert_eq!(weak.upgrade().unwrap().verify(), sum);
    assert!(kid.upgrade().is_some());
    drop(root);
    collect_until(|| weak.upgrade().is_none() && kid.upgrade().is_none());
    // And it stays dead while new objects take the freed slots.
    let fresh: Vec<_> = (0..10_000).map(|i| Node::new(i, Vec::new())).collect();
    assert!(weak.upgrade().is_none() && kid.upgrade().is_none());
    drop(fresh);
}

#[test]
fn a_weak_does_not_keep_its_object_alive_and_a_heap_edge_does() {
    let holder = Gc::new(GcCell::new(None::<Gc<Node>>));
    let (kept, sum) = tree(50_000, 2);
    let weak_kept = Gc::downgrade(&kept);
    holder.set(Some(kept)); // now only the heap reaches it
    let lonely = Node::new(7, Vec::new());
    let weak_lonely = Gc::downgrade(&lonely);
    drop(lonely);
    collect_until(|| weak_lonely.upgrade().is_none());
    assert_eq!(weak_kept.upgrade().unwrap().verify(), sum);
    holder.set(None);
    collect_until(|| weak_kept.upgrade().is_none());
}

#[test]
fn weak_parent_links_in_a_cycle_are_collected() {
    let (root, _) = tree(9_000, 3);
    for kid in &root.kids {
        kid.parent.set(Gc::downgrade(&root));
        for gk in &kid.kids {
            gk.parent.set(Gc::downgrade(kid));
        }
    }
    // A weak edge to itself, too.
    root.parent.set(Gc::downgrade(&root));
    let first = root.kids[0].parent.get().upgrade().unwrap();
    assert!(Gc::ptr_eq(&first, &root));
    drop(first);
    let weak_root = Gc::downgrade(&root);
    let weak_leaf = Gc::downgrade(&root.kids[2].kids[2]);
    drop(root);
    collect_until(|| weak_root.upgrade().is_none() && weak_leaf.upgrade().is_none());
}

#[test]
fn weak_outlives_objects_with_destructors() {
    // `String` has drop glue: the object becomes a zombie until the
    // finalizer thread drops it; the weak is cleared when it dies.
    let strings: Vec<_> = (0..1000).map(|i| Gc::new(format!("s{i}"))).collect();
    let weaks: Vec<Weak<String>> = strings.iter().map(Gc::downgrade).collect();
    assert_eq!(weaks[999].upgrade().unwrap().as_str(), "s999");
    drop(strings);
    collect_until(|| weaks.iter().all(|w| w.upgrade().is_none()));
    // Cloned weaks, a never-set weak, and weaks dropped on other threads.
    let clones: Vec<_> = weaks.iter().map(Weak::clone).collect();
    std::thread::spawn(move || drop(weaks)).join().unwrap();
    assert!(clones.iter().all(|w| w.upgrade().is_none()));
    assert!(Weak::<String>::new().upgrade().is_none());
}

#[test]
fn weaks_cross_threads_with_their_objects() {
    let (root, sum) = tree(77_000, 3);
    let weak = Gc::downgrade(&root);
    let seen = std::thread::spawn(move || weak.upgrade().map(|n| n.verify()))
        .join()
        .unwrap();
    assert_eq!(seen, Some(sum));
    drop(root);
    fibra::run(|| {
        let (root, sum) = tree(88_000, 2);
        let weak = Gc::downgrade(&root);
        let h = fibra::spawn(move || weak.upgrade().unwrap().verify());
        assert_eq!(h.join().unwrap(), sum);
    });
}

#[test]
fn upgrades_while_the_collector_marks_keep_their_objects() {
    const NAME: &str = "upgrades_while_the_collector_marks_keep_their_objects";
    if child::is_child(NAME) {
        upgrade_stress();
        return;
    }
    child::run_ok(NAME, &[("FIBRA_GC_TORTURE", "1")], Duration::from_secs(120));
}

fn upgrade_stress() {
    let stop = Arc::new(AtomicBool::new(false));
    let collector = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut cycles = 0u64;
            while !stop.load(Ordering::Relaxed) {
                collect();
                cycles += 1;
            }
            cycles
        })
    };
    // `FIBRA_SOUNDNESS_SECS` stretches or shortens it, as in the other
    // soundness suites (scripts/memcheck.sh --asan-suite).
    let secs = std::env::var("FIBRA_SOUNDNESS_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(1.5);
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let mutators: Vec<_> = (0..3u64)
        .map(|t| {
            std::thread::spawn(move || {
                let mut upgraded = 0u64;
                let mut gone = 0u64;
                let mut round = 0u64;
                while round < 50 || Instant::now() < deadline {
                    round += 1;
                    let base = (t << 40) | (round << 12);
                    let (root, sum) = tree(base, 3);
                    let weak = Gc::downgrade(&root);
                    let weak_kid = Gc::downgrade(&root.kids[1]);
                    // Half the trees lose their last root at once, and
                    // every upgraded root is dropped again before the next
                    // upgrade: each upgrade creates the only root of an
                    // object that no root reached when the running mark
                    // began, the case a missing shade gets wrong.
                    let keep = round.is_multiple_of(2);
                    let root = keep.then_some(root);
                    for i in 0..40u64 {
                        for j in 0..(i % 7) * 8 {
                            std::hint::black_box(Node::new(j, Vec::new()));
                        }
                        match weak.upgrade() {
                            Some(n) => {
                                assert_eq!(n.verify(), sum);
                                // Held as a root to the end of the running
                                // mark and its sweep (`collect` waits for a
                                // whole cycle after it): had the upgrade not
                                // shaded it while marking, the torture
                                // check would find an unmarked root, and
                                // the sweep would free and poison it.
                                if i.is_multiple_of(3) {
                                    collect();
                                } else {
                                    for j in 0..16 {
                                        std::hint::black_box(Node::new(j, Vec::new()));
                                    }
                                }
                                assert_eq!(n.verify(), sum);
                                upgraded += 1;
                            }
                            None => {
                                assert!(!keep, "a rooted object's weak came back empty");
                                gone += 1;
                            }
                        }
                        if let Some(k) = weak_kid.upgrade() {
                            k.verify();
                        }
                    }
                    drop(root);
                }
                (upgraded, gone)
            })
        })
        .collect();
    let mut upgraded = 0;
    for m in mutators {
        let (u, _gone) = m.join().unwrap();
        upgraded += u;
    }
    stop.store(true, Ordering::Relaxed);
    let cycles = collector.join().unwrap();
    assert!(cycles > 0 && upgraded > 0);
    println!("{cycles} cycles, {upgraded} upgrades");
}

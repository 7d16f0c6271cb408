//! Many green threads (and two OS threads) mutate one shared cyclic graph while collections run
//! back to back in torture mode (a cycle every few hundred allocations,
//! heap verified after each mark, freed memory poisoned). Every reachable
//! value is checked; at the end the graph is dropped and live bytes return
//! to the baseline.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use fibra_gc::{Gc, GcCell, Trace};

#[derive(Trace)]
struct Payload {
    seed: u64,
    words: Vec<u64>,
}

#[derive(Trace)]
struct Node {
    id: u64,
    check: u64,
    edges: GcCell<Vec<Gc<Node>>>,
    payload: GcCell<Gc<Payload>>,
}

fn payload(seed: u64) -> Gc<Payload> {
    let n = (seed % 7) as usize + 1;
    Gc::new(Payload {
        seed,
        words: (0..n as u64).map(|i| seed ^ i).collect(),
    })
}

fn check_payload(p: &Payload) {
    let n = (p.seed % 7) as usize + 1;
    assert_eq!(p.words.len(), n);
    for (i, w) in p.words.iter().enumerate() {
        assert_eq!(*w, p.seed ^ i as u64, "payload corrupted");
    }
}

fn node(id: u64) -> Gc<Node> {
    Gc::new(Node {
        id,
        check: !id,
        edges: GcCell::new(Vec::new()),
        payload: GcCell::new(payload(id)),
    })
}

fn check_node(n: &Node) {
    assert_eq!(n.check, !n.id, "node corrupted");
    check_payload(&n.payload.get());
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// One random mutation or check of the shared graph.
fn step(graph: &[Gc<Node>], next_id: &AtomicU64, rng: &mut Rng, held: &mut Vec<Gc<Node>>) {
    let a = &graph[rng.next() as usize % NODES];
    match rng.next() % 6 {
        0 => {
            // Rewire to a fresh chain of new nodes ending in the graph.
            let tail = graph[rng.next() as usize % NODES].clone();
            let id = next_id.fetch_add(1, Ordering::Relaxed);
            let fresh = node(id);
            fresh.edges.set(vec![tail]);
            a.edges.set(vec![fresh]);
        }
        1 => a.payload.set(payload(rng.next())),
        2 => {
            let b = graph[rng.next() as usize % NODES].clone();
            a.edges.with_mut(|e| {
                e.push(b);
                if e.len() > 4 {
                    e.remove(0);
                }
            });
        }
        3 => {
            // Walk and verify.
            let mut cur = a.clone();
            for _ in 0..16 {
                check_node(&cur);
                let next = cur.edges.with(|e| e.first().cloned());
                match next {
                    Some(n) => cur = n,
                    None => break,
                }
            }
            held.push(cur);
            if held.len() > 8 {
                held.remove(0);
            }
        }
        4 => {
            // Garbage cycles.
            let x = node(u64::MAX - 1);
            let y = node(u64::MAX - 2);
            x.edges.set(vec![y.clone()]);
            y.edges.set(vec![x]);
        }
        _ => {
            if fibra_runtime::in_green_thread() {
                fibra_runtime::yield_now();
            }
        }
    }
}

const NODES: usize = 128;
const TASKS: u64 = 64;
const STEPS: u64 = 2000;

#[test]
fn green_and_os_threads_mutate_a_shared_graph_under_torture() {
    std::env::set_var("FIBRA_GC_TORTURE", "300");
    fibra_gc::collect();
    fibra_gc::collect();
    let baseline = fibra_gc::stats().live_bytes;
    let next_id = Arc::new(AtomicU64::new(NODES as u64));
    let graph: Arc<Vec<Gc<Node>>> = Arc::new((0..NODES as u64).map(node).collect());
    for (i, n) in graph.iter().enumerate() {
        n.edges.set(vec![graph[(i + 1) % NODES].clone()]);
    }
    let cycles_before = fibra_gc::stats().cycles;
    // Plain OS threads mutate the same graph meanwhile (they are never
    // stopped; the collector's grace periods cover them).
    let os_threads: Vec<_> = (0..2u64)
        .map(|t| {
            let (graph, next_id) = (graph.clone(), next_id.clone());
            std::thread::spawn(move || {
                let mut rng = Rng(t * 104_729 + 17);
                let mut held = Vec::new();
                for _ in 0..STEPS * 4 {
                    step(&graph, &next_id, &mut rng, &mut held);
                }
                held.iter().for_each(|h| check_node(h));
            })
        })
        .collect();
    let rt = fibra_runtime::Runtime::builder()
        .workers(2)
        .build()
        .unwrap();
    rt.run({
        let graph = graph.clone();
        move || {
            let tasks: Vec<_> = (0..TASKS)
                .map(|t| {
                    let graph = graph.clone();
                    let next_id = next_id.clone();
                    fibra_runtime::spawn(move || {
                        let mut rng = Rng(t * 7919 + 1);
                        let mut held: Vec<Gc<Node>> = Vec::new();
                        for step_no in 0..STEPS {
                            step(&graph, &next_id, &mut rng, &mut held);
                            if step_no % 100 == 50 && t % 8 == 0 {
                                fibra_gc::collect();
                            }
                        }
                        for h in &held {
                            check_node(h);
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.join().unwrap();
            }
        }
    });
    drop(rt);
    for t in os_threads {
        t.join().unwrap();
    }
    for n in graph.iter() {
        check_node(n);
        n.edges.with(|e| e.iter().for_each(|m| check_node(m)));
    }
    assert!(fibra_gc::stats().cycles > cycles_before + 5);
    drop(graph);
    fibra_gc::collect();
    fibra_gc::collect();
    let after = fibra_gc::stats().live_bytes;
    assert!(
        after <= baseline,
        "live bytes {after} > baseline {baseline}"
    );
}

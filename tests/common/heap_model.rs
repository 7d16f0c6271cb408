//! A randomized driver of heap operations checked against a model: a
//! program of bytes is decoded into operations on a small graph of `Gc`
//! nodes (roots in slots, edges in `GcCell`s, moved with every `GcCell`
//! method and with `take`/`swap`/`remove` under `with_mut`), mirrored on a
//! plain model graph, and after every operation everything reachable from
//! the roots is compared with the model. A collector thread runs cycles
//! the whole time (see [`start_collector`]), so a missing barrier or root
//! shows up as a freed node read back (a wrong id or check word), a crash,
//! or an AddressSanitizer report.
//!
//! It checks interleavings broadly rather than aiming at one race: the
//! targeted reproducers live in `tests/soundness_heap.rs`.
//!
//! Used by the `heap_model` test (seeded random programs) and the
//! `heap_ops` fuzz target (`fuzz/`, coverage-guided programs).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;

use fibra::gc::{collect, Gc, GcCell, Trace};

/// Root slots a program can name.
const ROOTS: usize = 8;

#[derive(Trace)]
struct Node {
    id: u64,
    check: u64,
    edges: GcCell<Vec<Gc<Node>>>,
    slot: GcCell<Option<Gc<Node>>>,
    #[trace(skip)]
    payload: Vec<u64>,
}

/// The model of one node: its edges and slot by id.
#[derive(Clone, Default)]
struct ModelNode {
    edges: Vec<u64>,
    slot: Option<u64>,
}

/// Starts (once per process) a thread that collects in a loop; returns the
/// number of cycles it has finished.
pub fn start_collector() -> u64 {
    static CYCLES: AtomicU64 = AtomicU64::new(0);
    static STARTED: OnceLock<()> = OnceLock::new();
    static STOP: AtomicBool = AtomicBool::new(false);
    STARTED.get_or_init(|| {
        // Ballast: a few hundred thousand live objects the marker must
        // trace each cycle, so marking overlaps many operations.
        type Ballast = Vec<Gc<GcCell<Vec<Gc<u64>>>>>;
        static BALLAST: OnceLock<Ballast> = OnceLock::new();
        BALLAST.get_or_init(|| {
            (0..64)
                .map(|_| Gc::new(GcCell::new((0..1024).map(Gc::new).collect())))
                .collect()
        });
        std::thread::spawn(|| {
            while !STOP.load(Ordering::Relaxed) {
                collect();
                CYCLES.fetch_add(1, Ordering::Relaxed);
            }
        });
    });
    CYCLES.load(Ordering::Relaxed)
}

/// The real heap and its model, side by side.
pub struct Machine {
    roots: Vec<Option<Gc<Node>>>,
    model_roots: Vec<Option<u64>>,
    model: HashMap<u64, ModelNode>,
    next_id: u64,
}

impl Default for Machine {
    fn default() -> Self {
        Machine::new()
    }
}

impl Machine {
    pub fn new() -> Machine {
        Machine {
            roots: vec![None; ROOTS],
            model_roots: vec![None; ROOTS],
            model: HashMap::new(),
            next_id: 1,
        }
    }

    fn new_node(&mut self, edges: Vec<Gc<Node>>, model_edges: Vec<u64>) -> Gc<Node> {
        let id = self.next_id;
        self.next_id += 1;
        self.model.insert(
            id,
            ModelNode {
                edges: model_edges,
                slot: None,
            },
        );
        Gc::new(Node {
            id,
            check: !id,
            edges: GcCell::new(edges),
            slot: GcCell::new(None),
            payload: vec![id; (id % 5) as usize],
        })
    }

    /// Runs one operation decoded from `bytes` (consuming what it reads);
    /// returns false when the bytes are used up.
    pub fn step(&mut self, bytes: &mut impl Iterator<Item = u8>) -> bool {
        let Some(op) = bytes.next() else {
            return false;
        };
        let mut arg = || bytes.next().unwrap_or(0);
        let (a, b, c) = (
            arg() as usize % ROOTS,
            arg() as usize % ROOTS,
            arg() as usize,
        );
        match op % 14 {
            0 => {
                let n = self.new_node(Vec::new(), Vec::new());
                self.set_root(a, Some(n));
            }
            1 => self.set_root(a, None),
            2 => {
                let v = self.roots[a].clone();
                self.set_root(b, v);
            }
            3 => {
                // Push root b onto a's edges.
                if let (Some(n), Some(t)) = (&self.roots[a], &self.roots[b]) {
                    n.edges.with_mut(|v| v.push(t.clone()));
                    let (n, t) = (n.id, t.id);
                    self.model.get_mut(&n).unwrap().edges.push(t);
                }
            }
            4 => {
                // Remove an edge of a (moving it out) into root b.
                if let Some(n) = self.roots[a].clone() {
                    let taken = n
                        .edges
                        .with_mut(|v| (!v.is_empty()).then(|| v.remove(c % v.len())));
                    let m = &mut self.model.get_mut(&n.id).unwrap().edges;
                    if !m.is_empty() {
                        m.remove(c % m.len());
                    }
                    if taken.is_some() {
                        self.set_root(b, taken);
                    }
                }
            }
            5 => {
                // a.slot = root b, with `set`.
                if let Some(n) = self.roots[a].clone() {
                    let t = self.roots[b].clone();
                    self.model.get_mut(&n.id).unwrap().slot = t.as_ref().map(|t| t.id);
                    n.slot.set(t);
                }
            }
            6 => {
                // Take a.slot out into root b, through `with_mut`.
                if let Some(n) = self.roots[a].clone() {
                    let taken = n.slot.with_mut(Option::take);
                    self.model.get_mut(&n.id).unwrap().slot = None;
                    self.set_root(b, taken);
                }
            }
            7 => {
                // Swap a.slot and b.slot through nested `with_mut` (distinct
                // nodes only: a cell's lock is not reentrant).
                if let (Some(x), Some(y)) = (self.roots[a].clone(), self.roots[b].clone()) {
                    if !Gc::ptr_eq(&x, &y) {
                        x.slot
                            .with_mut(|p| y.slot.with_mut(|q| std::mem::swap(p, q)));
                        let xs = self.model[&x.id].slot;
                        let ys = self.model[&y.id].slot;
                        self.model.get_mut(&x.id).unwrap().slot = ys;
                        self.model.get_mut(&y.id).unwrap().slot = xs;
                    }
                }
            }
            8 => {
                // Root c's edge of a (a clone of a traced handle) into b.
                if let Some(n) = self.roots[a].clone() {
                    let got = n
                        .edges
                        .with(|v| (!v.is_empty()).then(|| v[c % v.len()].clone()));
                    if got.is_some() {
                        self.set_root(b, got);
                    }
                }
            }
            9 => {
                // `replace` a's slot with a new node; the old one into b.
                if let Some(n) = self.roots[a].clone() {
                    let fresh = self.new_node(Vec::new(), Vec::new());
                    let fresh_id = fresh.id;
                    let old = n.slot.replace(Some(fresh));
                    self.model.get_mut(&n.id).unwrap().slot = Some(fresh_id);
                    self.set_root(b, old);
                }
            }
            10 => {
                // A node made with handles inside it from the start.
                let edges: Vec<Gc<Node>> =
                    self.roots.iter().flatten().take(c % 4).cloned().collect();
                let ids = edges.iter().map(|e| e.id).collect();
                let n = self.new_node(edges, ids);
                self.set_root(a, Some(n));
            }
            11 => {
                // Swap a's whole edge list with b's through `with_mut`
                // and `mem::take` (distinct nodes).
                if let (Some(x), Some(y)) = (self.roots[a].clone(), self.roots[b].clone()) {
                    if !Gc::ptr_eq(&x, &y) {
                        let xs = x.edges.with_mut(std::mem::take);
                        let ys = y.edges.replace(xs);
                        x.edges.set(ys);
                        let mx = std::mem::take(&mut self.model.get_mut(&x.id).unwrap().edges);
                        let my =
                            std::mem::replace(&mut self.model.get_mut(&y.id).unwrap().edges, mx);
                        self.model.get_mut(&x.id).unwrap().edges = my;
                    }
                }
            }
            12 => {
                for i in 0..(c % 64) as u64 {
                    std::hint::black_box(Gc::new(i));
                }
            }
            _ => {
                if c % 16 == 0 {
                    collect();
                }
            }
        }
        true
    }

    fn set_root(&mut self, i: usize, v: Option<Gc<Node>>) {
        self.model_roots[i] = v.as_ref().map(|n| n.id);
        self.roots[i] = v;
    }

    /// Compares everything reachable from the roots with the model.
    pub fn check(&self) {
        let mut seen = HashMap::new();
        let mut stack: Vec<Gc<Node>> = Vec::new();
        for (i, r) in self.roots.iter().enumerate() {
            assert_eq!(r.as_ref().map(|n| n.id), self.model_roots[i], "root {i}");
            stack.extend(r.clone());
        }
        while let Some(n) = stack.pop() {
            assert!(
                n.check == !n.id && n.payload.iter().all(|&p| p == n.id),
                "node {:#x} reads check {:#x}: a live object was freed",
                n.id,
                n.check
            );
            if seen.insert(n.id, ()).is_some() {
                continue;
            }
            let model = self
                .model
                .get(&n.id)
                .unwrap_or_else(|| panic!("node {} is not in the model", n.id));
            let edges: Vec<Gc<Node>> = n.edges.get();
            assert_eq!(
                edges.iter().map(|e| e.id).collect::<Vec<_>>(),
                model.edges,
                "edges of node {}",
                n.id
            );
            let slot = n.slot.get();
            assert_eq!(
                slot.as_ref().map(|s| s.id),
                model.slot,
                "slot of node {}",
                n.id
            );
            stack.extend(edges);
            stack.extend(slot);
        }
    }
}

/// Runs a whole program, checking after every operation.
pub fn run(program: &[u8]) {
    let mut machine = Machine::new();
    let mut bytes = program.iter().copied();
    while machine.step(&mut bytes) {
        machine.check();
    }
}

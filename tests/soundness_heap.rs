//! Adversarial soundness suite, heap side: safe programs that move handles
//! into and out of the GC heap in every way the API allows while another
//! thread collects in a loop, checking every value they read back.
//!
//! A freed-and-reused object shows up as a wrong value (each leaf carries
//! its id and the id's complement), or as a crash; the risky cases run in
//! a child process, so a crash fails one test instead of the whole binary.
//! `scripts/memcheck.sh --asan-suite` runs this file under AddressSanitizer.

mod common;

use std::any::Any;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::child;
use fibra::gc::{collect, Gc, GcCell, Trace};

/// How long each churn loop runs (`FIBRA_SOUNDNESS_SECS` to stretch it).
fn churn_time() -> Duration {
    let secs = std::env::var("FIBRA_SOUNDNESS_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(1.5);
    Duration::from_secs_f64(secs)
}

const CHILD_TIMEOUT: Duration = Duration::from_secs(60);

/// An object whose value proves it is still itself.
#[derive(Trace)]
struct Leaf {
    id: u64,
    check: u64,
}

impl Leaf {
    fn new(id: u64) -> Gc<Leaf> {
        Gc::new(Leaf { id, check: !id })
    }
}

#[track_caller]
fn assert_leaf(leaf: &Leaf, id: u64) {
    assert!(
        leaf.id == id && leaf.check == !id,
        "leaf {id} reads id {:#x}, check {:#x}: a live object was freed",
        leaf.id,
        leaf.check
    );
}

/// A thread calling `collect()` in a loop until dropped.
struct Collecting {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl Collecting {
    fn start() -> Collecting {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut n = 0;
            while !flag.load(Ordering::Relaxed) {
                collect();
                n += 1;
            }
            n
        });
        Collecting {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Collecting {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let cycles = t.join().unwrap();
            if !std::thread::panicking() {
                assert!(cycles > 0, "the collector thread ran no cycle");
            }
        }
    }
}

/// Garbage to make the collector's work overlap the mutator's.
fn churn(n: u64) {
    for i in 0..n {
        std::hint::black_box(Leaf::new(u64::MAX - i));
    }
}

/// The ways safe code can move a handle out through `with_mut`.
#[derive(Clone, Copy, Debug)]
enum MoveOut {
    Take,
    Replace,
    Swap,
    MemTake,
}

fn move_out(cells: &[Gc<GcCell<Option<Gc<Leaf>>>>], how: MoveOut) {
    let deadline = Instant::now() + churn_time();
    let _collector = Collecting::start();
    let mut rounds = 0;
    while rounds < 3 || Instant::now() < deadline {
        let out: Vec<Gc<Leaf>> = cells
            .iter()
            .map(|c| {
                c.with_mut(|slot| match how {
                    MoveOut::Take => slot.take(),
                    #[allow(clippy::mem_replace_option_with_none)] // the point: a replace
                    MoveOut::Replace => std::mem::replace(slot, None),
                    MoveOut::Swap => {
                        let mut other = None;
                        std::mem::swap(slot, &mut other);
                        other
                    }
                    MoveOut::MemTake => std::mem::take(slot),
                })
                .expect("the cell held a leaf")
            })
            .collect();
        churn(cells.len() as u64);
        for (i, leaf) in out.iter().enumerate() {
            assert_leaf(leaf, i as u64);
        }
        for (c, leaf) in cells.iter().zip(out) {
            c.set(Some(leaf));
        }
        rounds += 1;
    }
}

fn leaf_cells(n: u64) -> Vec<Gc<GcCell<Option<Gc<Leaf>>>>> {
    (0..n)
        .map(|i| Gc::new(GcCell::new(Some(Leaf::new(i)))))
        .collect()
}

#[test]
fn with_mut_take_while_collecting() {
    if child::is_child("with_mut_take_while_collecting") {
        move_out(&leaf_cells(20_000), MoveOut::Take);
        return;
    }
    child::run_ok("with_mut_take_while_collecting", &[], CHILD_TIMEOUT);
}

#[test]
fn with_mut_replace_swap_and_mem_take_while_collecting() {
    if child::is_child("with_mut_replace_swap_and_mem_take_while_collecting") {
        let cells = leaf_cells(10_000);
        for how in [MoveOut::Replace, MoveOut::Swap, MoveOut::MemTake] {
            move_out(&cells, how);
        }
        return;
    }
    child::run_ok(
        "with_mut_replace_swap_and_mem_take_while_collecting",
        &[],
        CHILD_TIMEOUT,
    );
}

#[test]
fn with_mut_vec_remove_and_push_while_collecting() {
    if !child::is_child("with_mut_vec_remove_and_push_while_collecting") {
        child::run_ok(
            "with_mut_vec_remove_and_push_while_collecting",
            &[],
            CHILD_TIMEOUT,
        );
        return;
    }
    const N: u64 = 5_000;
    let list = Gc::new(GcCell::new((0..N).map(Leaf::new).collect::<Vec<_>>()));
    let deadline = Instant::now() + churn_time();
    let _collector = Collecting::start();
    let mut rounds = 0;
    while rounds < 3 || Instant::now() < deadline {
        // Move every handle out one by one, from the front (each `remove`
        // shifts the rest), then drain what is left.
        let mut out = Vec::with_capacity(N as usize);
        for _ in 0..N / 2 {
            out.push(list.with_mut(|v| v.remove(0)));
        }
        out.extend(list.with_mut(std::mem::take));
        churn(N);
        for (i, leaf) in out.iter().enumerate() {
            assert_leaf(leaf, i as u64);
        }
        // Back in, a few at a time.
        for chunk in out.chunks(100) {
            list.with_mut(|v| v.extend(chunk.iter().cloned()));
        }
        drop(out);
        churn(N);
        list.with(|v| {
            for (i, leaf) in v.iter().enumerate() {
                assert_leaf(leaf, i as u64);
            }
        });
        rounds += 1;
    }
}

#[test]
fn a_panic_inside_with_mut_leaves_the_cell_consistent() {
    if !child::is_child("a_panic_inside_with_mut_leaves_the_cell_consistent") {
        child::run_ok(
            "a_panic_inside_with_mut_leaves_the_cell_consistent",
            &[],
            CHILD_TIMEOUT,
        );
        return;
    }
    let cells = leaf_cells(2_000);
    let escaped: Mutex<Vec<Gc<Leaf>>> = Mutex::new(Vec::new());
    let deadline = Instant::now() + churn_time();
    let _collector = Collecting::start();
    let mut rounds = 0;
    while rounds < 3 || Instant::now() < deadline {
        for (i, c) in cells.iter().enumerate() {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                c.with_mut(|slot| {
                    // Move the handle out, keep it, put a clone back, and
                    // panic half-way.
                    let leaf = slot.take().unwrap();
                    *slot = Some(leaf.clone());
                    escaped.lock().unwrap().push(leaf);
                    if i % 2 == 0 {
                        panic!("inside with_mut");
                    }
                })
            }));
            assert_eq!(r.is_err(), i % 2 == 0);
        }
        churn(cells.len() as u64);
        for (i, leaf) in escaped.lock().unwrap().drain(..).enumerate() {
            assert_leaf(&leaf, i as u64);
        }
        for (i, c) in cells.iter().enumerate() {
            assert_leaf(&c.get().unwrap(), i as u64);
        }
        rounds += 1;
    }
}

#[test]
fn get_set_replace_and_with_while_collecting() {
    if !child::is_child("get_set_replace_and_with_while_collecting") {
        child::run_ok(
            "get_set_replace_and_with_while_collecting",
            &[],
            CHILD_TIMEOUT,
        );
        return;
    }
    let cells = leaf_cells(5_000);
    let deadline = Instant::now() + churn_time();
    let _collector = Collecting::start();
    let mut rounds = 0u64;
    while rounds < 3 || Instant::now() < deadline {
        // Odd rounds shift every cell's leaf one place along the array
        // through `replace`, even rounds put new leaves with `set`.
        let got: Vec<Gc<Leaf>> = cells.iter().map(|c| c.get().unwrap()).collect();
        if rounds % 2 == 1 {
            let n = cells.len();
            let old: Vec<Gc<Leaf>> = (0..n)
                .map(|i| cells[i].replace(Some(got[(i + 1) % n].clone())).unwrap())
                .collect();
            churn(n as u64);
            for (i, leaf) in old.iter().enumerate() {
                assert_leaf(leaf, got[i].id);
            }
            for (i, c) in cells.iter().enumerate() {
                c.with(|slot| assert_leaf(slot.as_ref().unwrap(), got[(i + 1) % n].id));
            }
        } else {
            for (i, c) in cells.iter().enumerate() {
                c.set(Some(Leaf::new(i as u64)));
            }
            churn(cells.len() as u64);
            for (i, c) in cells.iter().enumerate() {
                assert_leaf(&c.get().unwrap(), i as u64);
            }
        }
        rounds += 1;
    }
}

/// A tree node whose children are traced edges.
#[derive(Trace)]
struct Node {
    id: u64,
    check: u64,
    children: Vec<Gc<Node>>,
    next: GcCell<Option<Gc<Node>>>,
}

fn tree(id: u64, depth: u32) -> Gc<Node> {
    let children = if depth == 0 {
        Vec::new()
    } else {
        (0..3).map(|k| tree(id * 3 + k + 1, depth - 1)).collect()
    };
    Gc::new(Node {
        id,
        check: !id,
        children,
        next: GcCell::new(None),
    })
}

fn check_tree(node: &Node, id: u64, depth: u32) -> u64 {
    assert!(
        node.id == id && node.check == !id,
        "node {id} reads {:#x}: a live object was freed",
        node.id
    );
    assert_eq!(node.children.len(), if depth == 0 { 0 } else { 3 });
    let mut n = 1;
    for (k, c) in node.children.iter().enumerate() {
        n += check_tree(c, id * 3 + k as u64 + 1, depth - 1);
    }
    n
}

#[test]
fn nested_handles_cloned_and_dropped_while_collecting() {
    if !child::is_child("nested_handles_cloned_and_dropped_while_collecting") {
        child::run_ok(
            "nested_handles_cloned_and_dropped_while_collecting",
            &[],
            CHILD_TIMEOUT,
        );
        return;
    }
    const DEPTH: u32 = 6; // 1093 nodes a tree, 121 in each kept subtree
    let deadline = Instant::now() + churn_time();
    let _collector = Collecting::start();
    let mut keep: Vec<Gc<Node>> = Vec::new();
    let mut rounds = 0;
    while rounds < 3 || Instant::now() < deadline {
        let t = tree(0, DEPTH);
        // Keep only interior subtrees through clones, drop the root.
        let inner: Vec<Gc<Node>> = t.children.iter().map(|c| c.children[1].clone()).collect();
        // Link the kept subtrees into a ring through their cells.
        for (k, n) in inner.iter().enumerate() {
            n.next.set(Some(inner[(k + 1) % inner.len()].clone()));
        }
        drop(t);
        churn(2_000);
        for (k, n) in inner.iter().enumerate() {
            let id = (k as u64 + 1) * 3 + 2;
            assert_eq!(check_tree(n, id, DEPTH - 2), 121);
            let next = n.next.get().unwrap();
            assert!(Gc::ptr_eq(&next, &inner[(k + 1) % inner.len()]));
        }
        keep.extend(inner);
        if keep.len() > 30 {
            keep.drain(..15);
        }
        rounds += 1;
    }
}

#[test]
fn channels_carry_handles_between_green_threads_while_collecting() {
    if !child::is_child("channels_carry_handles_between_green_threads_while_collecting") {
        child::run_ok(
            "channels_carry_handles_between_green_threads_while_collecting",
            &[],
            CHILD_TIMEOUT,
        );
        return;
    }
    let _collector = Collecting::start();
    let deadline = Instant::now() + churn_time();
    let total = fibra::run(move || {
        let (tx, rx) = fibra::chan::channel::<Gc<Leaf>>(16);
        let (back_tx, back_rx) = fibra::chan::channel::<Gc<GcCell<Vec<Gc<Leaf>>>>>(0);
        let producers: Vec<_> = (0..4u64)
            .map(|p| {
                let tx = tx.clone();
                fibra::spawn(move || {
                    let mut i = 0;
                    while Instant::now() < deadline {
                        tx.send(Leaf::new(p << 32 | i)).unwrap();
                        i += 1;
                    }
                    i
                })
            })
            .collect();
        drop(tx);
        // A consumer stores what it receives in a heap vector, churning,
        // and hands the vector back when the channel closes.
        let consumer = fibra::spawn(move || {
            let store = Gc::new(GcCell::new(Vec::new()));
            for leaf in rx.iter() {
                store.with_mut(|v| v.push(leaf));
                churn(4);
            }
            back_tx.send(store).unwrap();
        });
        let sent: Vec<u64> = producers.into_iter().map(|h| h.join().unwrap()).collect();
        let store = back_rx.recv().unwrap();
        consumer.join().unwrap();
        let mut next = vec![0u64; 4];
        store.with(|v| {
            for leaf in v {
                let (p, i) = (leaf.id >> 32, leaf.id & 0xffff_ffff);
                assert_leaf(leaf, leaf.id);
                assert_eq!(i, next[p as usize], "producer {p}'s values arrive in order");
                next[p as usize] += 1;
            }
        });
        assert_eq!(next, sent);
        sent.iter().sum::<u64>()
    });
    assert!(total > 0);
}

thread_local! {
    static TLS_ROOT: std::cell::RefCell<Option<Gc<Leaf>>> = const { std::cell::RefCell::new(None) };
}

static STATIC_ROOT: OnceLock<Mutex<Vec<Gc<Leaf>>>> = OnceLock::new();

#[test]
fn roots_in_every_container_keep_their_objects() {
    if !child::is_child("roots_in_every_container_keep_their_objects") {
        child::run_ok(
            "roots_in_every_container_keep_their_objects",
            &[],
            CHILD_TIMEOUT,
        );
        return;
    }
    let _collector = Collecting::start();
    let deadline = Instant::now() + churn_time();
    let mut rounds = 0;
    while rounds < 3 || Instant::now() < deadline {
        let base = rounds * 100;
        let vec: Vec<Gc<Leaf>> = std::iter::once(Leaf::new(base)).collect();
        let map: HashMap<u64, Gc<Leaf>> = [(1, Leaf::new(base + 1))].into();
        let boxed: Box<dyn Any + Send> = Box::new(Leaf::new(base + 2));
        let rc = Rc::new(Leaf::new(base + 3));
        let shared = Arc::new(Mutex::new(Some(Leaf::new(base + 4))));
        TLS_ROOT.with(|r| *r.borrow_mut() = Some(Leaf::new(base + 5)));
        STATIC_ROOT
            .get_or_init(|| Mutex::new(Vec::new()))
            .lock()
            .unwrap()
            .push(Leaf::new(base + 6));
        #[allow(clippy::type_complexity)] // the point: handles deep in std types
        let nested: Box<Vec<Option<(u8, Gc<Leaf>)>>> =
            Box::new(vec![Some((0, Leaf::new(base + 7)))]);
        // Roots held only by another OS thread, then moved back.
        let other = std::thread::spawn(move || {
            let held = Leaf::new(base + 8);
            churn(5_000);
            held
        });
        churn(20_000);
        assert_leaf(&vec[0], base);
        assert_leaf(&map[&1], base + 1);
        assert_leaf(boxed.downcast_ref::<Gc<Leaf>>().unwrap(), base + 2);
        assert_leaf(&rc, base + 3);
        assert_leaf(shared.lock().unwrap().as_ref().unwrap(), base + 4);
        TLS_ROOT.with(|r| assert_leaf(r.borrow().as_ref().unwrap(), base + 5));
        let statics = STATIC_ROOT.get().unwrap().lock().unwrap();
        assert_leaf(statics.last().unwrap(), base + 6);
        drop(statics);
        assert_leaf(&nested[0].as_ref().unwrap().1, base + 7);
        assert_leaf(&other.join().unwrap(), base + 8);
        rounds += 1;
    }
    for (i, leaf) in STATIC_ROOT
        .get()
        .unwrap()
        .lock()
        .unwrap()
        .iter()
        .enumerate()
    {
        assert_leaf(leaf, i as u64 * 100 + 6);
    }
}

#[test]
fn a_green_thread_cannot_park_or_yield_inside_a_cell_borrow() {
    fibra::run(|| {
        let cell = Gc::new(GcCell::new(vec![Leaf::new(1)]));
        let (tx, rx) = fibra::chan::channel::<u8>(0);
        let c = cell.clone();
        let yielded = fibra::spawn(move || c.with_mut(|_| fibra::yield_now()));
        let c = cell.clone();
        let received = fibra::spawn(move || c.with(|_| rx.recv()));
        for h in [yielded.join().unwrap_err(), received.join().unwrap_err()] {
            let msg = h.into_panic();
            let msg = msg
                .downcast_ref::<String>()
                .map(String::as_str)
                .unwrap_or_default();
            assert!(
                msg.contains("cannot park or yield inside GcCell::with/with_mut"),
                "{msg}"
            );
        }
        drop(tx);
        // The cells were released on unwinding, and nothing on this worker
        // counts as holding one: collecting and borrowing work.
        collect();
        cell.with_mut(|v| v.push(Leaf::new(2)));
        cell.with(|v| {
            assert_leaf(&v[0], 1);
            assert_leaf(&v[1], 2);
        });
    });
    // A plain OS thread may block inside a borrow, as with a std Mutex.
    let cell = Gc::new(GcCell::new(0u32));
    let (tx, rx) = fibra::chan::channel::<u32>(0);
    let sender = std::thread::spawn(move || tx.send(7).unwrap());
    cell.with_mut(|v| *v = rx.recv().unwrap());
    sender.join().unwrap();
    assert_eq!(cell.get(), 7);
}

#[test]
fn select_refuses_an_arm_given_twice() {
    use fibra::chan::__private::{select, Mode, Operation, RecvArm};
    let (tx, rx) = fibra::chan::channel::<u8>(1);
    tx.send(1).unwrap();
    let arm = RecvArm::new(&rx);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        select(&[&arm as &dyn Operation, &arm], Mode::Block)
    }));
    let err = r.expect_err("a repeated arm is refused");
    assert!(err
        .downcast_ref::<&str>()
        .is_some_and(|m| m.contains("same arm twice")));
    assert_eq!(
        rx.try_recv(),
        Ok(1),
        "nothing was received by the refused select"
    );
}

/// A program that never uses the GC heap is never sent a preemption
/// signal, so its own system calls (std sockets with timeouts, sleeps) are
/// never interrupted by fibra.
#[test]
fn a_program_without_gc_allocations_gets_no_preemption_signals() {
    if !child::is_child("a_program_without_gc_allocations_gets_no_preemption_signals") {
        child::run_ok(
            "a_program_without_gc_allocations_gets_no_preemption_signals",
            &[],
            CHILD_TIMEOUT,
        );
        return;
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let reader = std::thread::spawn(move || {
        let s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
        let mut interrupted = 0;
        let deadline = Instant::now() + Duration::from_millis(500);
        while Instant::now() < deadline {
            match std::io::Read::read(&mut &s, &mut [0u8; 16]) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => interrupted += 1,
                _ => {}
            }
        }
        interrupted
    });
    let _peer = listener.accept().unwrap();
    fibra::run(|| {
        let talkers: Vec<_> = (0..4)
            .map(|_| {
                fibra::spawn(|| {
                    for _ in 0..200 {
                        fibra::time::sleep(Duration::from_millis(1));
                        fibra::yield_now();
                    }
                })
            })
            .collect();
        talkers.into_iter().for_each(|h| h.join().unwrap());
    });
    assert_eq!(reader.join().unwrap(), 0, "a read was interrupted");
    assert_eq!(fibra::debug::preemptions(), (0, 0));
}

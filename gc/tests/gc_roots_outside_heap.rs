//! A `Gc` held anywhere outside the heap keeps its object alive: in a
//! `Vec`, a `Box`, a channel buffer, a `static`, on other OS threads.

use std::sync::mpsc;
use std::sync::OnceLock;

use fibra_gc::{Gc, GcCell, Trace};

#[derive(Trace)]
struct Leaf {
    id: u64,
    check: u64,
    text: String,
}

fn leaf(id: u64) -> Gc<Leaf> {
    Gc::new(Leaf {
        id,
        check: id.wrapping_mul(0x9E37_79B9_7F4A_7C15),
        text: format!("leaf {id}"),
    })
}

fn assert_leaf(l: &Leaf, id: u64) {
    assert_eq!(l.id, id);
    assert_eq!(l.check, id.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    assert_eq!(l.text, format!("leaf {id}"));
}

/// Allocates garbage (a few MiB) and forces cycles.
fn churn() {
    for round in 0..3 {
        for i in 0..20_000u64 {
            let g = leaf(i + round);
            std::hint::black_box(&g);
        }
        fibra_gc::collect();
    }
}

static GLOBAL: OnceLock<Gc<Leaf>> = OnceLock::new();

#[test]
fn containers_channels_and_statics_keep_objects_alive() {
    GLOBAL.get_or_init(|| leaf(7));
    let in_vec: Vec<Gc<Leaf>> = (0..1000).map(leaf).collect();
    let in_box: Box<Option<Gc<Leaf>>> = Box::new(Some(leaf(5000)));
    let nested: Vec<Vec<Gc<Leaf>>> = (0..10).map(|i| vec![leaf(6000 + i)]).collect();
    let (tx, rx) = mpsc::channel();
    for i in 0..100 {
        tx.send(leaf(9000 + i)).unwrap();
    }
    churn();
    for (i, l) in in_vec.iter().enumerate() {
        assert_leaf(l, i as u64);
    }
    assert_leaf(in_box.as_ref().as_ref().unwrap(), 5000);
    for (i, v) in nested.iter().enumerate() {
        assert_leaf(&v[0], 6000 + i as u64);
    }
    for i in 0..100 {
        assert_leaf(&rx.recv().unwrap(), 9000 + i);
    }
    assert_leaf(GLOBAL.get().unwrap(), 7);
}

#[test]
fn os_threads_hold_and_exchange_gcs_during_collections() {
    let shared = Gc::new(GcCell::new(Vec::<Gc<Leaf>>::new()));
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let (tx, rx) = mpsc::channel::<Gc<Leaf>>();
            let handle = std::thread::spawn(move || {
                let mine: Vec<Gc<Leaf>> = (0..2000).map(|i| leaf(t * 100_000 + i)).collect();
                for round in 0..20u64 {
                    for i in 0..500 {
                        std::hint::black_box(leaf(i + round));
                    }
                    tx.send(leaf(t * 100_000 + 50_000 + round)).unwrap();
                }
                for (i, l) in mine.iter().enumerate() {
                    assert_leaf(l, t * 100_000 + i as u64);
                }
                mine
            });
            (handle, rx)
        })
        .collect();
    let mut received = Vec::new();
    for _ in 0..5 {
        fibra_gc::collect();
    }
    for (t, (handle, rx)) in threads.into_iter().enumerate() {
        let mine = handle.join().unwrap();
        for (round, l) in rx.iter().enumerate() {
            assert_leaf(&l, t as u64 * 100_000 + 50_000 + round as u64);
            received.push(l);
        }
        shared.with_mut(|v| v.extend(mine));
    }
    churn();
    assert_eq!(received.len(), 80);
    shared.with(|v| {
        assert_eq!(v.len(), 8000);
        for (k, l) in v.iter().enumerate() {
            assert_leaf(l, (k / 2000) as u64 * 100_000 + (k % 2000) as u64);
        }
    });
}

#[test]
fn handles_inside_the_heap_are_not_roots() {
    // An object reachable only from an unreachable object is freed.
    fibra_gc::collect();
    let before = fibra_gc::stats().freed_objects;
    {
        let inner = leaf(1);
        let outer = Gc::new(GcCell::new(Some(inner)));
        drop(outer);
    }
    fibra_gc::collect();
    fibra_gc::collect();
    assert!(fibra_gc::stats().freed_objects >= before + 2);
}

#[test]
fn with_mut_can_move_handles_out() {
    let cell = Gc::new(GcCell::new(vec![leaf(1), leaf(2)]));
    let taken = cell.with_mut(|v| v.pop().unwrap());
    let swapped = cell.with_mut(|v| std::mem::replace(&mut v[0], leaf(3)));
    drop(cell);
    churn();
    assert_leaf(&taken, 2);
    assert_leaf(&swapped, 1);
}

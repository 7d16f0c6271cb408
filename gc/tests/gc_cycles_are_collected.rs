//! Cyclic garbage is freed and live bytes return to their baseline.

use fibra_gc::{Gc, GcCell, Trace};

#[derive(Trace)]
struct Node {
    id: u64,
    next: GcCell<Option<Gc<Node>>>,
    payload: Vec<u64>,
}

fn ring(n: u64) -> Gc<Node> {
    let first = Gc::new(Node {
        id: 0,
        next: GcCell::new(None),
        payload: vec![0; 8],
    });
    let mut prev = first.clone();
    for id in 1..n {
        let node = Gc::new(Node {
            id,
            next: GcCell::new(None),
            payload: vec![id; 8],
        });
        prev.next.set(Some(node.clone()));
        prev = node;
    }
    prev.next.set(Some(first.clone()));
    first
}

#[test]
fn cyclic_garbage_is_freed() {
    fibra_gc::collect();
    fibra_gc::collect();
    let baseline = fibra_gc::stats().live_bytes;
    let keep = ring(100);
    for _ in 0..20 {
        let r = ring(1000);
        assert_eq!(r.next.get().unwrap().id, 1);
    }
    fibra_gc::collect();
    let with_keep = fibra_gc::stats().live_bytes;
    assert!(
        with_keep >= baseline + 100 * 24,
        "live {with_keep} baseline {baseline}"
    );
    // The kept ring is intact.
    let mut node = keep.clone();
    for i in 0..100 {
        assert_eq!(node.id, i);
        assert_eq!(node.payload[0], i);
        let next = node.next.get().unwrap();
        node = next;
    }
    assert!(Gc::ptr_eq(&node, &keep));
    drop(node);
    drop(keep);
    fibra_gc::collect();
    let after = fibra_gc::stats().live_bytes;
    assert!(
        after <= baseline,
        "live bytes {after} did not return to baseline {baseline}"
    );
    assert!(fibra_gc::stats().freed_objects >= 20 * 1000 + 100);
}

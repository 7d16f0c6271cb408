//! `#[derive(Trace)]` through the facade: types that name only
//! `fibra::gc` (its re-exports of `Gc`, `GcCell` and the derive). The
//! derive finds the crate path from the package's Cargo.toml; this package
//! depends on `fibra-gc` itself, so here it picks `::fibra_gc`. The path a
//! crate depending only on `fibra` gets, `::fibra::gc`, is checked by
//! naming it with `#[trace(crate = "fibra::gc")]`.

use fibra::gc::{Gc, GcCell, Trace};

/// A list node built on the facade's re-exports.
#[derive(Trace)]
struct Node {
    value: u64,
    next: GcCell<Option<Gc<Node>>>,
}

/// A type that names the crate path explicitly.
#[derive(Trace)]
#[trace(crate = "fibra::gc")]
struct Named(Gc<u64>);

/// Builds a cyclic list of `n` nodes, collects, and returns the sum of its
/// values (plus the value behind a `Named`).
fn ring_sum(n: u64) -> u64 {
    let first = Gc::new(Node {
        value: 0,
        next: GcCell::new(None),
    });
    let mut last = first.clone();
    for value in 1..n {
        let node = Gc::new(Node {
            value,
            next: GcCell::new(None),
        });
        last.next.set(Some(node.clone()));
        last = node;
    }
    last.next.set(Some(first.clone()));
    fibra::gc::collect();
    let mut sum = 0;
    let mut cur = first.clone();
    for _ in 0..n {
        sum += cur.value;
        let next = cur.next.get().unwrap();
        cur = next;
    }
    assert!(Gc::ptr_eq(&cur, &first));
    let named = Gc::new(Named(Gc::new(0)));
    sum + *named.0
}

#[test]
fn derived_types_survive_a_cycle() {
    assert_eq!(ring_sum(4), 6);
    assert_eq!(ring_sum(100), 4950);
}

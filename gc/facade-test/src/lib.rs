//! A crate that depends only on `fibra` and derives `Trace` through
//! `fibra::gc` (the derive finds the crate path from this Cargo.toml).

use fibra::gc::{Gc, GcCell, Trace};

/// A list node built on the facade's re-exports.
#[derive(Trace)]
pub struct Node {
    /// The value.
    pub value: u64,
    /// The rest of the list.
    pub next: GcCell<Option<Gc<Node>>>,
}

/// A type that names the crate explicitly.
#[derive(Trace)]
#[trace(crate = "fibra::gc")]
pub struct Named(pub Gc<u64>);

/// Builds a cyclic list of `n` nodes and returns the sum of its values.
///
/// ```
/// assert_eq!(fibra_gc_facade_test::ring_sum(4), 6);
/// ```
pub fn ring_sum(n: u64) -> u64 {
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

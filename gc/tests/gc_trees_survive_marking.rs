//! binary-trees' allocation pattern (fresh subtrees moved into new parents
//! while the collector marks concurrently): every tree keeps its shape.

use fibra_gc::{Gc, Trace};

#[derive(Trace)]
struct Node {
    left: Option<Gc<Node>>,
    right: Option<Gc<Node>>,
}

fn bottom_up(depth: u32) -> Gc<Node> {
    if depth == 0 {
        Gc::new(Node {
            left: None,
            right: None,
        })
    } else {
        Gc::new(Node {
            left: Some(bottom_up(depth - 1)),
            right: Some(bottom_up(depth - 1)),
        })
    }
}

fn count(n: &Node) -> u64 {
    1 + n.left.as_ref().map_or(0, |l| count(l)) + n.right.as_ref().map_or(0, |r| count(r))
}

#[test]
fn trees_keep_their_shape_across_cycles() {
    let max = 12;
    let long_lived = bottom_up(max);
    let cycles = fibra_gc::stats().cycles;
    for round in 0..6 {
        let mut d = 4;
        while d <= max {
            for _ in 0..(1u64 << (max - d + 2)) {
                assert_eq!(count(&bottom_up(d)), (1 << (d + 1)) - 1);
            }
            d += 2;
        }
        if round % 2 == 0 {
            fibra_gc::collect();
        }
        assert_eq!(count(&long_lived), (1 << (max + 1)) - 1);
    }
    assert!(fibra_gc::stats().cycles >= cycles + 3);
}

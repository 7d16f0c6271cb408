//! `#[derive(Trace)]` on structs, tuple structs, enums and generic types,
//! with `#[trace(skip)]`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use fibra_gc::{Gc, GcCell, Trace};

#[derive(Trace)]
struct Unit;

#[derive(Trace)]
struct Tuple(u32, Gc<String>);

#[derive(Trace)]
enum Shape {
    Empty,
    Leaf(Gc<u64>),
    Pair {
        left: Gc<Shape>,
        right: Gc<Shape>,
    },
    #[trace(skip)]
    Opaque(std::sync::atomic::AtomicU8),
}

#[derive(Trace)]
struct Generic<T> {
    items: Vec<T>,
    #[trace(skip)]
    _counter: std::sync::atomic::AtomicU32,
}

#[derive(Trace)]
struct Everything {
    map: HashMap<String, Gc<u64>>,
    tree: BTreeMap<u32, Gc<u64>>,
    deque: VecDeque<Gc<u64>>,
    boxed: Box<Gc<u64>>,
    array: [Option<Gc<u64>>; 3],
    tuple: (u8, Gc<u64>, String),
    result: Result<Gc<u64>, String>,
    shared: Arc<Vec<u8>>,
    cell: GcCell<Option<Gc<u64>>>,
}

#[derive(Trace)]
struct Plain {
    a: u64,
    b: String,
}

#[test]
fn needs_trace_is_computed() {
    const _: () = assert!(!<Unit as Trace>::NEEDS_TRACE);
    const _: () = assert!(!<Plain as Trace>::NEEDS_TRACE);
    const _: () = assert!(<Tuple as Trace>::NEEDS_TRACE);
    const _: () = assert!(<Shape as Trace>::NEEDS_TRACE);
    const _: () = assert!(!<Generic<u8> as Trace>::NEEDS_TRACE);
    const _: () = assert!(<Generic<Gc<u8>> as Trace>::NEEDS_TRACE);
}

#[test]
fn derived_types_keep_their_fields_alive() {
    let n = |v: u64| Gc::new(v);
    let e = Gc::new(Everything {
        map: [("a".to_string(), n(1))].into_iter().collect(),
        tree: [(2, n(2))].into_iter().collect(),
        deque: [n(3)].into_iter().collect(),
        boxed: Box::new(n(4)),
        array: [Some(n(5)), None, Some(n(6))],
        tuple: (7, n(7), "seven".into()),
        result: Ok(n(8)),
        shared: Arc::new(vec![9]),
        cell: GcCell::new(Some(n(10))),
    });
    let shape = Gc::new(Shape::Pair {
        left: Gc::new(Shape::Leaf(n(11))),
        right: Gc::new(Shape::Empty),
    });
    let tuple = Gc::new(Tuple(12, Gc::new("twelve".to_string())));
    let generic = Gc::new(Generic {
        items: vec![n(13), n(14)],
        _counter: Default::default(),
    });
    let _unit = Gc::new(Unit);
    let opaque = Gc::new(Shape::Opaque(std::sync::atomic::AtomicU8::new(42)));
    for _ in 0..3 {
        for i in 0..10_000u64 {
            std::hint::black_box(Gc::new(Plain {
                a: i,
                b: String::new(),
            }));
        }
        fibra_gc::collect();
    }
    assert_eq!(*e.map["a"], 1);
    assert_eq!(*e.tree[&2], 2);
    assert_eq!(*e.deque[0], 3);
    assert_eq!(**e.boxed, 4);
    assert_eq!(*e.array[2].clone().unwrap(), 6);
    assert_eq!(*e.tuple.1, 7);
    assert_eq!(*e.result.clone().unwrap(), 8);
    assert_eq!(e.shared[0], 9);
    assert_eq!(*e.cell.get().unwrap(), 10);
    match &*shape {
        Shape::Pair { left, right } => {
            assert!(matches!(&**left, Shape::Leaf(v) if **v == 11));
            assert!(matches!(&**right, Shape::Empty));
        }
        _ => panic!("wrong variant"),
    }
    assert!(
        matches!(&*opaque, Shape::Opaque(v) if v.load(std::sync::atomic::Ordering::Relaxed) == 42)
    );
    assert_eq!(tuple.0, 12);
    assert_eq!(*tuple.1, "twelve");
    assert_eq!(generic.items.iter().map(|g| **g).sum::<u64>(), 27);
}
